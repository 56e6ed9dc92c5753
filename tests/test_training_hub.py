"""Hub ids where folders are accepted (``--init_from org/x``, ``mpm eval --model org/x``, dataset repo
ids in ``data.paths``), the installed ``mpm train`` entry point, trackers and gradient
checkpointing. Hub repos are hand-made offline cache entries (``models--org--name/refs/main`` +
``snapshots/<sha>/``); nothing is downloaded."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from modeling_mpm.training.config import load_config
from remote_code import BLOCK_PACKAGE  # noqa: E402

from tiny_runs import TINY_MODEL  # noqa: E402,F401
from tiny_runs import tiny_run_config as _tiny  # noqa: E402
SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty offline Hub cache (and datasets cache) under ``tmp_path``."""
    import datasets
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets-cache")
    return cache


def _snapshot(cache, kind, repo_id):
    """Folder of a cached ``kind`` ("model" | "dataset") repo at revision main (created empty)."""
    org, name = repo_id.split("/")
    root = cache / f"{kind}s--{org}--{name}"
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(SHA)
    snap = root / "snapshots" / SHA
    snap.mkdir(parents=True)
    return snap




# ----------------------------------------------------------------------------- model repos
def test_init_from_and_eval_accept_hub_model_ids(tmp_path, hub_cache, capsys):
    from modeling_mpm import MPMConfig, MPMForMaskedPoseModeling, MPMForPoseLifting
    from modeling_mpm.cli.eval import main as eval_main
    from modeling_mpm.training import build_model

    torch.manual_seed(0)
    pre = MPMForMaskedPoseModeling(MPMConfig(**TINY_MODEL))
    pre.save_pretrained(_snapshot(hub_cache, "model", "org/mpm-pretrain"))
    for spec in ("org/mpm-pretrain", "org/mpm-pretrain@main"):
        lifter = build_model(_tiny(tmp_path, task="lift", init_from=spec))
        assert isinstance(lifter, MPMForPoseLifting)
        pre_sd, sd = pre.state_dict(), lifter.state_dict()
        shared = [k for k in sd if k.startswith("mpm.") and k in pre_sd]
        assert len(shared) > 10 and all(torch.equal(sd[k], pre_sd[k]) for k in shared)
    with pytest.raises(ValueError, match="not in the local cache"):
        build_model(_tiny(tmp_path, task="lift", init_from="org/absent"))

    lifter.save_pretrained(_snapshot(hub_cache, "model", "org/mpm-lift"))
    out = tmp_path / "eval.json"
    assert eval_main(["--model", "org/mpm-lift", "--data", "synthetic", "--max_windows", "8", "--flip", "off",
                      "--no_progress", "--output_json", str(out)]) == 0
    res = json.loads(out.read_text())["no flip"]
    assert res["windows"] == 8 and res["mpjpe"] > 0
    with pytest.raises(SystemExit):
        eval_main(["--model", "org/absent", "--data", "synthetic"])
    err = capsys.readouterr().err
    assert "org/absent" in err and "--model" in err


# ----------------------------------------------------------------------------- dataset repos
def _demo_windows(cfg_overrides):
    from modeling_mpm.training.data import build_splits

    cfg = load_config(None, cfg_overrides + [f"model.{k}={v}" for k, v in TINY_MODEL.items()])
    train, val, _ = build_splits(cfg, 9)
    return train, val


def test_training_data_from_hub_dataset_repos(tmp_path, hub_cache):
    from modeling_mpm.data import load_demo_dataset
    from modeling_mpm.data.io import save_dataset

    dd = load_demo_dataset()
    # the layout push_to_hub writes, `mpm prepare --format parquet` uploaded as is, a save_to_disk folder
    snap = _snapshot(hub_cache, "dataset", "org/poses-hub")
    for split, ds in dd.items():
        (snap / "data").mkdir(exist_ok=True)
        ds.to_parquet(str(snap / "data" / f"{split}-00000-of-00001.parquet"))
    save_dataset(dd, _snapshot(hub_cache, "dataset", "org/poses-parquet"), format="parquet", overwrite=True)
    save_dataset(dd, _snapshot(hub_cache, "dataset", "org/poses-arrow"), format="arrow", overwrite=True)

    common = ["data.train_stride=7", "data.max_val_windows=16"]
    ref_train, ref_val = _demo_windows(common + ["data.source=demo"])
    for repo in ("org/poses-hub", "org/poses-parquet", "org/poses-arrow"):
        train, val = _demo_windows(common + ["data.source=prepared", f"data.paths=[{repo}]"])
        assert len(train) == len(ref_train) and len(val) == len(ref_val), repo
        for k in (0, len(val) - 1):
            assert torch.equal(torch.as_tensor(val[k]["pose_2d"]), torch.as_tensor(ref_val[k]["pose_2d"])), repo
            assert val[k]["action"] == ref_val[k]["action"]
    with pytest.raises(ValueError, match="not in the local cache"):
        _demo_windows(["data.source=prepared", "data.paths=[org/absent]"])


def test_mpm_train_cli_with_hub_data_and_hub_init(tmp_path, hub_cache, capsys):
    """`mpm train pretrain` on a dataset repo, then `mpm train finetune --init_from org/...`."""
    from modeling_mpm.cli import main as mpm

    dd = __import__("modeling_mpm.data", fromlist=["load_demo_dataset"]).load_demo_dataset()
    snap = _snapshot(hub_cache, "dataset", "org/poses")
    (snap / "data").mkdir()
    for split, ds in dd.items():
        ds.to_parquet(str(snap / "data" / f"{split}-00000-of-00001.parquet"))
    tiny = ["--set", "data.max_val_windows=8", "--set", "data.max_test_windows=8", "--set", "data.train_stride=7",
            "--max_steps", "1", "--checkpoint_every", "1", "--no_progress", "--set", "training.tensorboard=false"]
    assert mpm(["train", "pretrain", "--config", "tiny_pretrain", "--data_paths", "org/poses",
                "--output_dir", str(tmp_path / "pre")] + tiny) == 0
    assert "model saved to" in capsys.readouterr().out
    pre_dir = tmp_path / "pre" / "model"
    assert (pre_dir / "config.json").is_file()
    # publish the pre-trained folder as a model repo in the cache and fine-tune from its id
    import shutil

    shutil.copytree(pre_dir, _snapshot(hub_cache, "model", "org/mpm-pretrain"), dirs_exist_ok=True)
    assert mpm(["train", "finetune", "--task", "lift", "--config", "tiny_pretrain", "--data_paths", "org/poses",
                "--init_from", "org/mpm-pretrain", "--output_dir", str(tmp_path / "lift")] + tiny) == 0
    assert (tmp_path / "lift" / "model" / "config.json").is_file()
    card = (tmp_path / "lift" / "model" / "README.md").read_text()
    assert "org/mpm-pretrain" in card  # a Hub id is a valid base_model
    assert mpm(["train", "nope"]) == 2
    # publish the lifter, then use it by Hub id alone: in-process, and as remote code without the package
    shutil.copytree(tmp_path / "lift" / "model", _snapshot(hub_cache, "model", "org/mpm-lift"), dirs_exist_ok=True)
    from transformers import pipeline

    import numpy as np

    keypoints = np.random.default_rng(0).uniform(100, 500, size=(12, 17, 2))
    want = pipeline("pose-lifting", model="org/mpm-lift")(keypoints, image_size=(640, 480), keypoint_format="h36m")["pose_3d"]
    assert want.shape == (12, 17, 3) and np.isfinite(want).all()
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(hub_cache), HF_HOME=str(tmp_path / "hf_home"),
               PYTHONPATH="", OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", REMOTE_HUB_PIPE, "org/mpm-lift"], cwd=tmp_path, env=env,
                       input=json.dumps(keypoints.tolist()), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert not got["module"].startswith("modeling_mpm")
    np.testing.assert_allclose(np.array(got["pose_3d"]), want, atol=1e-5)


REMOTE_HUB_PIPE = BLOCK_PACKAGE + textwrap.dedent(
    """
    import json, sys, importlib.abc
    import numpy as np
    from transformers import pipeline
    pipe = pipeline("pose-lifting", model=sys.argv[1], trust_remote_code=True)
    out = pipe(np.array(json.loads(sys.stdin.read())), image_size=(640, 480), keypoint_format="h36m")["pose_3d"]
    assert "modeling_mpm" not in sys.modules
    print(json.dumps({"pose_3d": out.tolist(), "module": type(pipe).__module__}))
    """
)


def test_accumulation_must_come_from_the_run_config(tmp_path):
    """An accelerator accumulating differently from the config (e.g. `accelerate config`) would
    change the global batch silently: refused before anything is written."""
    from accelerate import Accelerator, DataLoaderConfiguration
    from accelerate.state import AcceleratorState, GradientState

    from modeling_mpm.training import train

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    acc = Accelerator(cpu=True, gradient_accumulation_steps=2,
                      dataloader_config=DataLoaderConfiguration(split_batches=True, use_seedable_sampler=True))
    with pytest.raises(ValueError, match="gradient_accumulation_steps is 1"):
        train(_tiny(tmp_path / "run"), accelerator=acc)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_fsdp2_ram_efficient_loading_is_turned_off(monkeypatch):
    """``accelerate launch --use_fsdp --fsdp_version 2`` enables cpu_ram_efficient_loading, whose
    re-broadcast fails on the BatchNorm buffers (seen on an H200, Accelerate 1.15): the trainer turns
    it off for FSDP v2 only. (FSDP plugins cannot be built without a GPU: plain objects stand in.)"""
    from types import SimpleNamespace

    from modeling_mpm.training.trainer import _fit_fsdp2_loading

    monkeypatch.setenv("FSDP_CPU_RAM_EFFICIENT_LOADING", "true")
    v1 = SimpleNamespace(fsdp_version=1, cpu_ram_efficient_loading=True)
    _fit_fsdp2_loading(SimpleNamespace(state=SimpleNamespace(fsdp_plugin=v1)))
    assert v1.cpu_ram_efficient_loading is True and os.environ["FSDP_CPU_RAM_EFFICIENT_LOADING"] == "true"
    _fit_fsdp2_loading(SimpleNamespace(state=SimpleNamespace(fsdp_plugin=None)))
    v2 = SimpleNamespace(fsdp_version=2, cpu_ram_efficient_loading=True)
    _fit_fsdp2_loading(SimpleNamespace(state=SimpleNamespace(fsdp_plugin=v2)))
    assert v2.cpu_ram_efficient_loading is False and os.environ["FSDP_CPU_RAM_EFFICIENT_LOADING"] == "False"


# ----------------------------------------------------------------------------- trackers
def test_log_with_unknown_or_missing_tracker_is_a_clear_error(tmp_path):
    from accelerate.tracking import get_available_trackers

    from modeling_mpm.training import train

    with pytest.raises(ValueError, match="unknown tracker 'tensorbored'"):
        train(_tiny(tmp_path / "a", log_with=["tensorbored"]))
    missing = [t for t in ("wandb", "mlflow", "trackio", "aim")
               if t not in {str(getattr(x, "value", x)) for x in get_available_trackers()}]
    if missing:
        with pytest.raises(ValueError, match=f"'{missing[0]}' is not installed"):
            train(_tiny(tmp_path / "b", log_with=[missing[0]]))
    with pytest.raises(TypeError, match="training.log_with"):
        _tiny(tmp_path).with_overrides(["training.log_with=[1]"])


def test_tensorboard_tracker_logs_the_csv_scalars(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (pip install tensorboard)")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from modeling_mpm.training import train

    train(_tiny(tmp_path, tensorboard=True, tracker_project="tiny"), export=False)
    runs = [os.path.join(r, "") for r, _, files in os.walk(tmp_path / "tensorboard")
            if any(f.startswith("events.") for f in files)]
    assert runs and all("tiny" in r for r in runs)
    ea = EventAccumulator(runs[0])
    ea.Reload()
    tags = set(ea.Tags()["scalars"])
    assert {"train/loss", "train/lr", "val/loss"} <= tags
    rows = [line.split(",") for line in open(tmp_path / "metrics.csv").read().splitlines()[1:]]
    csv_loss = {int(r[0]): float(r[4]) for r in rows if r[2] == "train" and r[3] == "loss"}
    tb_loss = {e.step: e.value for e in ea.Scalars("train/loss")}
    assert csv_loss.keys() == tb_loss.keys() == {1, 2}
    assert all(abs(csv_loss[s] - tb_loss[s]) <= 1e-5 * abs(tb_loss[s]) for s in tb_loss)


# ----------------------------------------------------------------------------- gradient checkpointing
def test_gradient_checkpointing_flag(tmp_path):
    from modeling_mpm import MPMForMaskedPoseModeling
    from modeling_mpm.training import train
    from modeling_mpm.training.trainer import _enable_gradient_checkpointing

    with pytest.raises(ValueError, match="does not support gradient checkpointing"):
        _enable_gradient_checkpointing(torch.nn.Linear(2, 2))
    if not getattr(MPMForMaskedPoseModeling, "supports_gradient_checkpointing", False):
        pytest.skip("MPMForMaskedPoseModeling.gradient_checkpointing_enable() is not supported on this branch "
                    "(supports_gradient_checkpointing is False); the model side lands with the hf-conventions work")
    plain = train(_tiny(tmp_path / "plain", select_best=False), export=False)
    ckpt = train(_tiny(tmp_path / "ckpt", select_best=False, gradient_checkpointing=True), export=False)
    on = getattr(type(ckpt.model), "is_activation_checkpointing", None) or type(ckpt.model).is_gradient_checkpointing
    assert on.fget(ckpt.model) and not on.fget(plain.model)
    a, b = plain.model.state_dict(), ckpt.model.state_dict()
    for k in a:  # recomputation replays the same dropout: the same training
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-6), k
