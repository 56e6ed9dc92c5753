"""Converted official checkpoints reproduce the authors' numerics."""

import pathlib
import subprocess
import sys

import numpy as np
import pytest
import torch

from modeling_mpm import MPMForMaskedPoseModeling, MPMForPoseLifting
from modeling_mpm.convert_official import convert_official_checkpoint, convert_official_state_dict

from official_reference import lifter_forward, pretrain_forward, random_official_state_dicts
from unsafe_pickle import RunsCodeWhenUnpickled

# the authors' checkpoints and outputs (copied from ../shared/fixtures, so every clone checks parity)
FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "official_mpm_compat"


def _max_abs(a, b):
    return float(np.abs(np.asarray(a) - np.asarray(b)).max())


def test_official_fixture_parity():
    d = FIXTURE
    io = np.load(d / "io.npz")
    pre = convert_official_checkpoint(d / "official_pretrain.pth")
    lift = convert_official_checkpoint(d / "official_finetune.pth")
    assert isinstance(pre, MPMForMaskedPoseModeling) and isinstance(lift, MPMForPoseLifting)
    assert not pre.training and not lift.training
    x2, x3 = torch.from_numpy(io["input_2d"]), torch.from_numpy(io["input_3d"])
    s, t = torch.from_numpy(io["spatial_mask"]), torch.from_numpy(io["temporal_mask"])
    with torch.no_grad():
        o = pre(pose_2d=x2, pose_3d=x3, spatial_mask=s, temporal_mask=t)
        lo = lift(pose_2d=x2)
    assert _max_abs(o.pose_2d, io["pretrain_out_2d"]) < 1e-5
    assert _max_abs(o.pose_3d, io["pretrain_out_3d"]) < 1e-5
    assert _max_abs(lo.pose_3d_center, io["lift_center"]) < 1e-5
    assert _max_abs(lo.pose_3d, io["lift_all"]) < 1e-5


def test_reference_implementation_matches_the_authors_outputs():
    """Validates tests/official_reference.py itself on the authors' own outputs."""
    d = FIXTURE
    io = np.load(d / "io.npz")
    pre = torch.load(d / "official_pretrain.pth", weights_only=True)
    fin = torch.load(d / "official_finetune.pth", weights_only=True)
    s, t = torch.from_numpy(io["spatial_mask"]), torch.from_numpy(io["temporal_mask"])
    x2, x3 = torch.from_numpy(io["input_2d"]), torch.from_numpy(io["input_3d"])
    assert _max_abs(pretrain_forward(pre, x2, s, t), io["pretrain_out_2d"]) < 1e-5
    assert _max_abs(pretrain_forward(pre, x3, s, t), io["pretrain_out_3d"]) < 1e-5
    c, a = lifter_forward(fin, x2, [3, 3, 3])
    assert _max_abs(c, io["lift_center"]) < 1e-5 and _max_abs(a, io["lift_all"]) < 1e-5


@pytest.mark.parametrize(
    "joints, frames, layers, channel, d_hid, strides, dec_layers",
    [(16, 9, 3, 32, 48, [3, 3], 1), (17, 27, 1, 48, 96, [3, 3, 3], 2)],
)
def test_tiny_official_layout_parity(joints, frames, layers, channel, d_hid, strides, dec_layers):
    """Any joint count / depth / width / frame count converts (config read off the shapes)."""
    pre_sd, lift_sd = random_official_state_dicts(joints, frames, layers, channel, d_hid, strides, dec_layers, seed=5)
    pre = convert_official_state_dict(pre_sd)
    lift = convert_official_state_dict(lift_sd, reduce_strides=strides)
    cfg = pre.config
    assert (cfg.num_joints, cfg.num_frames, cfg.num_layers, cfg.hidden_size, cfg.intermediate_size,
            cfg.decoder_layers) == (joints, frames, layers, channel, d_hid, dec_layers)
    g = torch.Generator().manual_seed(0)
    x2 = torch.randn(2, frames, joints, 2, generator=g)
    x3 = torch.randn(2, frames, joints, 3, generator=g)
    s = torch.rand(frames, joints, generator=g) < 0.25
    t = torch.zeros(frames, dtype=torch.bool)
    t[torch.randperm(frames, generator=g)[: frames // 2]] = True
    with torch.no_grad():
        o = pre(pose_2d=x2, pose_3d=x3, spatial_mask=s, temporal_mask=t)
        lo = lift(pose_2d=x2)
    assert _max_abs(o.pose_2d, pretrain_forward(pre_sd, x2, s, t, heads=8)) < 1e-5
    assert _max_abs(o.pose_3d, pretrain_forward(pre_sd, x3, s, t, heads=8)) < 1e-5
    c, a = lifter_forward(lift_sd, x2, strides)
    assert _max_abs(lo.pose_3d_center, c) < 1e-5 and _max_abs(lo.pose_3d, a) < 1e-5


def test_converted_lifter_accepts_pretraining_encoder():
    pre_sd, _ = random_official_state_dicts(17, 27, 2, 32, 64, [3, 3, 3], seed=1)
    pre = convert_official_state_dict(pre_sd)
    lift = MPMForPoseLifting(pre.config)
    missing, unexpected = lift.load_state_dict(pre.state_dict(), strict=False)
    assert not [k for k in missing if k.startswith("mpm.")]
    assert set(unexpected) >= {"temporal_mask_token", "decoder_position_embedding"}


def test_cli_writes_a_loadable_folder(tmp_path):
    from transformers import AutoModel

    _, lift_sd = random_official_state_dicts(17, 27, 1, 32, 64, [3, 3, 3], seed=2)
    ckpt = tmp_path / "official.pth"
    torch.save(lift_sd, ckpt)
    out = tmp_path / "converted"
    r = subprocess.run([sys.executable, "-m", "modeling_mpm.cli", "convert", str(ckpt), str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    model = AutoModel.from_pretrained(out).eval()
    x2 = torch.randn(1, 27, 17, 2)
    with torch.no_grad():
        c, _ = lifter_forward(lift_sd, x2, [3, 3, 3])
        assert _max_abs(model(pose_2d=x2).pose_3d_center, c) < 1e-5


def test_bad_checkpoints_rejected(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        convert_official_checkpoint(tmp_path / "nope.pth")
    torch.save({"module.foo.weight": torch.zeros(2)}, tmp_path / "x.pth")
    with pytest.raises(ValueError, match="not an MPM checkpoint"):
        convert_official_checkpoint(tmp_path / "x.pth")
    _, lift_sd = random_official_state_dicts(17, 27, 1, 32, 64, [3, 3, 3], seed=2)
    with pytest.raises(ValueError, match="pass reduce_strides"):
        convert_official_state_dict(lift_sd, reduce_strides=[3, 9])
    r = subprocess.run([sys.executable, "-m", "modeling_mpm.cli", "convert", str(tmp_path / "x.pth"),
                        str(tmp_path / "o")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "not an MPM checkpoint" in r.stderr


def test_cli_never_replaces_a_folder_that_is_not_a_model(tmp_path, monkeypatch, capsys):
    """`mpm convert CKPT OUT` replaces OUT only when it is empty or an MPM model folder: a folder
    with other files, the working directory and its parents are refused, and nothing in them moves."""
    from modeling_mpm.cli.convert import main as convert

    _, lift_sd = random_official_state_dicts(17, 27, 1, 32, 64, [3, 3, 3], seed=2)
    ckpt = tmp_path / "official.pth"
    torch.save(lift_sd, ckpt)
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("keep me")
    monkeypatch.chdir(work)
    for out in (work, tmp_path, "."):
        assert convert([str(ckpt), str(out)]) == 2
        assert "working directory" in capsys.readouterr().err
    other = tmp_path / "other"
    other.mkdir()
    (other / "data.csv").write_text("1,2")
    assert convert([str(ckpt), str(other)]) == 2
    assert "not an MPM model folder" in capsys.readouterr().err
    assert (other / "data.csv").read_text() == "1,2" and (work / "notes.txt").read_text() == "keep me"
    # a model folder (here: the previous conversion) is replaced
    model_dir = tmp_path / "model"
    assert convert([str(ckpt), str(model_dir)]) == 0
    assert convert([str(ckpt), str(model_dir)]) == 0
    assert (model_dir / "config.json").is_file() and not list(tmp_path.glob(".model.old-*"))


def test_unreadable_or_unsafe_checkpoints_are_a_sentence(tmp_path, capsys):
    """Empty, truncated, random-bytes and code-carrying files: a ValueError naming the file (exit 2
    from `mpm convert`), never a traceback, and nothing in the file runs."""
    from modeling_mpm.cli.convert import main as convert
    from modeling_mpm.convert_official import load_official_state_dict

    _, lift_sd = random_official_state_dicts(17, 27, 1, 32, 64, [3, 3, 3], seed=2)
    good = tmp_path / "good.pth"
    torch.save(lift_sd, good)
    marker = tmp_path / "ran.txt"
    files = {"empty.pth": b"", "random.pth": bytes(range(256)) * 4, "truncated.pth": good.read_bytes()[:5000]}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    torch.save({"model_pos": lift_sd, "args": RunsCodeWhenUnpickled(str(marker))}, tmp_path / "code.pth")
    for name in list(files) + ["code.pth"]:
        with pytest.raises(ValueError, match="refused to load .*tensors, numbers") as err:
            load_official_state_dict(tmp_path / name)
        assert name in str(err.value) and "weights_only=False" not in str(err.value)
        assert convert([str(tmp_path / name), str(tmp_path / "out")]) == 2
        assert name in capsys.readouterr().err
    assert not marker.exists() and not (tmp_path / "out").exists()
