import subprocess
import sys
from pathlib import Path

import numpy as np

from modeling_mpm.cli.prepare import main
from modeling_mpm.data import load_dataset_dir

ROOT = Path(__file__).resolve().parents[1]


def write_h36m(tmp_path):
    rng = np.random.default_rng(0)
    pos = {"S1": {"Walking": (rng.normal(0, 0.3, (4, 32, 3)) + [0, 0, 1]).astype(np.float32)},
           "S9": {"Sitting 1": (rng.normal(0, 0.3, (3, 32, 3)) + [0, 0, 1]).astype(np.float32)}}
    np.savez(tmp_path / "data_3d_h36m.npz", positions_3d=np.array(pos, dtype=object))
    return tmp_path / "data_3d_h36m.npz"


def test_prepare_h36m_parquet(tmp_path, capsys):
    src = write_h36m(tmp_path)
    out = tmp_path / "h36m"
    assert main(["h36m", "--positions_3d", str(src), "--output", str(out), "--format", "parquet"]) == 0
    dd = load_dataset_dir(out)
    assert len(dd["train"]) == 4 and len(dd["test"]) == 4
    assert dd["train"].features["pose_3d"].shape == (None, 17, 3)
    assert sorted(p.name for p in (out / "train").iterdir()) == ["part-00000-of-00001.parquet"]
    # refuses to overwrite without --overwrite
    assert main(["h36m", "--positions_3d", str(src), "--output", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["h36m", "--positions_3d", str(src), "--output", str(out), "--overwrite", "--num_joints", "16"]) == 0
    assert load_dataset_dir(out)["test"].features["pose_3d"].shape == (None, 16, 3)


def test_push_to_hub_fails_fast_offline(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    src = write_h36m(tmp_path)
    rc = main(["h36m", "--positions_3d", str(src), "--output", str(tmp_path / "o"), "--push_to_hub", "me/h36m"])
    assert rc == 2
    assert "HF_HUB_OFFLINE=1" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_bad_input_gives_clear_error(tmp_path, capsys):
    np.savez(tmp_path / "x.npz", something=np.zeros(3))
    assert main(["h36m", "--positions_3d", str(tmp_path / "x.npz"), "--output", str(tmp_path / "o")]) == 2
    assert "no key 'positions_3d'" in capsys.readouterr().err


def test_runs_as_module():
    r = subprocess.run([sys.executable, "-m", "modeling_mpm.cli", "prepare", "--help"], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0
    for sub in ("h36m", "3dhp", "amass", "bvh", "mocap", "demo"):
        assert sub in r.stdout


def test_wired_as_mpm_prepare(tmp_path):
    from modeling_mpm.cli import main as mpm_main

    names = ["Hips", "Spine1", "Neck", "Head", "LeftArm", "LeftForeArm", "LeftHand", "RightArm", "RightForeArm",
             "RightHand", "LeftUpLeg", "LeftLeg", "LeftFoot", "RightUpLeg", "RightLeg", "RightFoot"]
    (tmp_path / "joint_names.json").write_text(__import__("json").dumps(names))
    np.save(tmp_path / "take.npy", np.random.default_rng(0).normal(size=(25, len(names), 3)).astype(np.float32))
    out = tmp_path / "mocap"
    assert mpm_main(["prepare", "mocap", str(tmp_path / "take.npy"), "--npy_fps", "100", "--fps", "50",
                     "--output", str(out)]) == 0
    row = load_dataset_dir(out)["train"].with_format("numpy")[0]
    assert row["sequence"] == "take" and row["pose_3d"].shape == (13, 17, 3) and row["fps"] == 50.0
