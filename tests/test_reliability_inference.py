"""Inference never returns silent garbage: folders with new random heads are refused, every frame
is covered, overflowing joints are reported missing, flags are real booleans; bad files give
'error: <file>: ...' with exit code 2 and outputs are replaced only by complete files."""

import errno
import json
import os

import numpy as np
import pytest
import torch
from transformers import pipeline

from modeling_mpm import MPMConfig, MPMForMaskedPoseModeling, MPMForPoseLifting, MPMModel
from modeling_mpm.cli import main as mpm
from modeling_mpm.loading import load_model_for_task


def tiny(**kw):
    return MPMConfig(num_frames=9, num_layers=1, hidden_size=16, intermediate_size=32, num_attention_heads=2,
                     reduce_strides=[3, 3], **kw)


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    MPMForPoseLifting(tiny()).save_pretrained(d / "lifter")
    MPMForMaskedPoseModeling(tiny()).save_pretrained(d / "pretrain")
    MPMModel(tiny()).save_pretrained(d / "encoder")
    return d


@pytest.fixture(scope="module")
def lift_pipe():
    torch.manual_seed(1)
    return pipeline("pose-lifting", model=MPMForPoseLifting(tiny()))


@pytest.fixture(scope="module")
def complete_pipe():
    torch.manual_seed(2)
    return pipeline("pose-completion", model=MPMForMaskedPoseModeling(tiny()))


def _kp(frames=12, seed=0):
    return np.random.default_rng(seed).uniform(20, 180, (frames, 17, 2))


# ------------------------------------------------------------------ folders with new random heads
def test_lift_refuses_a_pretraining_folder_and_complete_a_lifter(tmp_path, dirs, capsys):
    np.save(tmp_path / "k.npy", _kp())
    rc = mpm(["lift", str(tmp_path / "k.npy"), "--format", "h36m", "--image-size", "200", "200",
              "--model", str(dirs / "pretrain"), "-o", str(tmp_path / "o.npz")])
    err = capsys.readouterr().err
    assert rc == 2 and "pre-training / completion model (MPMForMaskedPoseModeling)" in err
    assert "mpm lift needs a fine-tuned lifter (MPMForPoseLifting)" in err
    assert not (tmp_path / "o.npz").exists()
    np.save(tmp_path / "p.npy", np.zeros((5, 17, 3)))
    rc = mpm(["complete", str(tmp_path / "p.npy"), "--model", str(dirs / "lifter"), "-o", str(tmp_path / "c.npz")])
    err = capsys.readouterr().err
    assert rc == 2 and "is a fine-tuned lifter (MPMForPoseLifting); mpm complete needs a pre-training" in err
    rc = mpm(["export-onnx", "--model", str(dirs / "encoder"), "-o", str(tmp_path / "x.onnx")])
    assert rc == 2 and "bare encoder without task heads (MPMModel)" in capsys.readouterr().err


def test_loader_refuses_missing_head_weights_but_keeps_the_transfer(tmp_path, dirs):
    # a folder without 'architectures' whose weights lack the heads is refused by the weight check
    cfg = json.loads((dirs / "pretrain" / "config.json").read_text())
    cfg.pop("architectures")
    (tmp_path / "noarch").mkdir()
    (tmp_path / "noarch" / "config.json").write_text(json.dumps(cfg))
    os.link(dirs / "pretrain" / "model.safetensors", tmp_path / "noarch" / "model.safetensors")
    with pytest.raises(ValueError, match="without the weights of"):
        load_model_for_task(str(tmp_path / "noarch"), "MPMForPoseLifting", "mpm lift")
    assert isinstance(load_model_for_task(str(dirs / "lifter"), "MPMForPoseLifting"), MPMForPoseLifting)
    # the documented pre-training -> lifter transfer is untouched
    assert isinstance(MPMForPoseLifting.from_pretrained(dirs / "pretrain"), MPMForPoseLifting)


def test_truncated_weights_and_missing_folders_are_sentences(tmp_path, dirs, capsys):
    import shutil

    bad = tmp_path / "cut"
    shutil.copytree(dirs / "lifter", bad)
    data = (bad / "model.safetensors").read_bytes()
    (bad / "model.safetensors").write_bytes(data[: len(data) // 2])
    np.save(tmp_path / "k.npy", _kp())
    args = ["--format", "h36m", "--image-size", "200", "200", "-o", str(tmp_path / "o.npz")]
    assert mpm(["lift", str(tmp_path / "k.npy"), "--model", str(bad)] + args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}: could not load the weights") and "Traceback" not in err
    assert mpm(["lift", str(tmp_path / "k.npy"), "--model", str(tmp_path / "nope")] + args) == 2
    assert "no such model folder" in capsys.readouterr().err
    # mpm complete: missing input, a folder as input, a missing output folder (created)
    assert mpm(["complete", str(tmp_path / "none.npy"), "--model", str(dirs / "pretrain"), "-o", "x.npz"]) == 2
    assert "input file not found" in capsys.readouterr().err
    assert mpm(["complete", str(tmp_path), "--model", str(dirs / "pretrain"), "-o", "x.npz"]) == 2
    assert "is a folder" in capsys.readouterr().err
    pose = np.random.default_rng(0).normal(0, 0.3, (6, 17, 3))
    pose[:, 4] = np.nan
    np.save(tmp_path / "p.npy", pose)
    out = tmp_path / "new" / "sub" / "c.npz"
    assert mpm(["complete", str(tmp_path / "p.npy"), "--model", str(dirs / "pretrain"), "-o", str(out)]) == 0
    assert np.isfinite(np.load(out)["pose_3d"]).all()


@pytest.mark.parametrize("name,content,msg", [
    ("empty.npy", b"", "not a NumPy .npy file (it is empty (0 bytes))"),
    ("rand.npz", bytes(range(7, 107)), "not a NumPy .npz file (its first bytes"),
    ("pickle.npy", b"\x80\x04K\x01.", "not a NumPy .npy file (it holds a raw Python pickle"),
])
def test_bad_input_files(tmp_path, dirs, capsys, name, content, msg):
    (tmp_path / name).write_bytes(content)
    rc = mpm(["lift", str(tmp_path / name), "--format", "h36m", "--image-size", "200", "200",
              "--model", str(dirs / "lifter"), "-o", str(tmp_path / "o.npz")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith(f"error: {tmp_path / name}: ") and msg in err


def test_truncated_npz_and_object_arrays(tmp_path, dirs, capsys):
    np.savez(tmp_path / "k.npz", keypoints=_kp(200), image_size=np.array([200, 200]))
    data = (tmp_path / "k.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[:-100])
    args = ["--format", "h36m", "--model", str(dirs / "lifter"), "-o", str(tmp_path / "o.npz")]
    assert mpm(["lift", str(tmp_path / "cut.npz")] + args) == 2
    assert "cut.npz: unreadable .npz file" in capsys.readouterr().err
    np.savez(tmp_path / "obj.npz", keypoints=np.array([{"a": 1}], dtype=object))
    assert mpm(["lift", str(tmp_path / "obj.npz")] + args) == 2
    assert "array 'keypoints' holds pickled Python objects" in capsys.readouterr().err


@pytest.mark.parametrize("entry,msg", [
    ({"image_id": [1], "keypoints": [1.0, 2.0, 1.0] * 17}, "entry 0: 'image_id' must be an integer or a string"),
    ({"image_id": 1, "keypoints": [1.0, 2.0, 1.0] * 17, "score": "high"}, "entry 0: 'score' must be a number"),
])
def test_coco_json_field_errors(tmp_path, dirs, capsys, entry, msg):
    (tmp_path / "d.json").write_text(json.dumps([entry]))
    rc = mpm(["lift", str(tmp_path / "d.json"), "--image-size", "200", "200", "--model", str(dirs / "lifter"),
              "-o", str(tmp_path / "o.npz")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith(f"error: {tmp_path / 'd.json'}: {msg}")


def test_coco_json_frame_range_is_bounded(tmp_path):
    from modeling_mpm.data.io import read_coco_json

    kp = [10.0, 20.0, 1.0] * 17
    (tmp_path / "d.json").write_text(json.dumps([{"image_id": 0, "keypoints": kp}, {"image_id": 10**9, "keypoints": kp}]))
    with pytest.raises(ValueError, match=r"span 1,000,000,001 frames .* limited to 1,000,000"):
        read_coco_json(str(tmp_path / "d.json"))


def test_failed_write_keeps_the_previous_result(tmp_path, dirs, capsys, monkeypatch):
    np.save(tmp_path / "k.npy", _kp())
    out = tmp_path / "existing.npz"
    out.write_bytes(b"previous result")

    def full_disk(file, *a, **k):
        f = open(file, "wb") if isinstance(file, (str, os.PathLike)) else file
        f.write(b"PK\x03\x04partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full_disk)
    rc = mpm(["lift", str(tmp_path / "k.npy"), "--format", "h36m", "--image-size", "200", "200",
              "--model", str(dirs / "lifter"), "-o", str(out)])
    assert rc == 2 and "No space left on device" in capsys.readouterr().err
    assert out.read_bytes() == b"previous result"
    assert sorted(os.listdir(tmp_path)) == ["existing.npz", "k.npy"]  # no temporary file left


# ------------------------------------------------------------------ pipelines
def test_stride_larger_than_window_is_refused(lift_pipe, complete_pipe, tmp_path, dirs, capsys):
    kp = _kp(40)
    with pytest.raises(ValueError, match="stride 20 is larger than the window of 9 frames"):
        lift_pipe(kp, image_size=(200, 200), keypoint_format="h36m", mode="seq2seq", stride=20)
    pose = np.random.default_rng(0).normal(0, 0.3, (40, 17, 3))
    pose[:, 5] = np.nan
    with pytest.raises(ValueError, match="larger than the window"):
        complete_pipe(pose, stride=20)
    out = lift_pipe(kp, image_size=(200, 200), keypoint_format="h36m", mode="seq2seq", stride=9)
    assert np.isfinite(out["pose_3d"]).all()
    np.save(tmp_path / "k.npy", kp)
    rc = mpm(["lift", str(tmp_path / "k.npy"), "--format", "h36m", "--image-size", "200", "200", "--mode",
              "seq2seq", "--stride", "20", "--model", str(dirs / "lifter"), "-o", str(tmp_path / "o.npz")])
    assert rc == 2 and "larger than the window" in capsys.readouterr().err


def test_overflowing_joint_is_reported_missing(lift_pipe, complete_pipe):
    kp = _kp()
    kp[3, 5] = [1e39, 50.0]          # finite in float64, inf in float32
    kp[4, 6] = [-1e7, 50.0]          # 50,000 image widths outside the frame
    out = lift_pipe(kp, image_size=(200, 200), keypoint_format="h36m")
    assert not out["valid"][3, 5] and not out["valid"][4, 6]
    assert out["valid"].sum() == kp.shape[0] * 17 - 2
    assert np.isfinite(out["pose_3d"]).all()
    pose = np.random.default_rng(0).normal(0, 0.3, (8, 17, 3))
    pose[2, 7] = [1e39, 0.0, 0.0]
    res = complete_pipe(pose)
    assert res["missing"][2, 7] and res["missing"].sum() == 1
    assert np.isfinite(res["pose_3d"]).all()


def test_one_confidence_default(lift_pipe, capsys):
    from modeling_mpm.keypoints import DEFAULT_CONFIDENCE_THRESHOLD

    with pytest.raises(SystemExit):
        mpm(["lift", "--help"])
    assert f"(default {DEFAULT_CONFIDENCE_THRESHOLD}, the pipelines' default too)" in " ".join(
        capsys.readouterr().out.split())

    kp = np.concatenate([_kp(), np.ones((12, 17, 1))], -1)
    kp[:, 4] = [0.0, 0.0, 0.0]       # undetected joint: confidence 0 at the origin
    kp[:, 5, 2] = 0.2
    out = lift_pipe(kp, image_size=(200, 200), keypoint_format="h36m")
    assert DEFAULT_CONFIDENCE_THRESHOLD == 0.3
    assert not out["valid"][:, 4].any() and not out["valid"][:, 5].any() and out["valid"][:, 6].all()


@pytest.mark.parametrize("flag", ["flip_augmentation", "return_keypoints_2d"])
def test_boolean_options_must_be_booleans(lift_pipe, complete_pipe, flag):
    with pytest.raises(TypeError, match=f"{flag} must be True or False, got 'no'"):
        lift_pipe(_kp(), image_size=(200, 200), keypoint_format="h36m", **{flag: "no"})
    if flag == "flip_augmentation":
        with pytest.raises(TypeError, match="flip_augmentation must be True or False"):
            complete_pipe(np.zeros((5, 17, 3)), flip_augmentation="no")
    out = lift_pipe(_kp(), image_size=(200, 200), keypoint_format="h36m", **{flag: np.bool_(True)})
    assert np.isfinite(out["pose_3d"]).all()
