"""The OMOMO clips of holosoma-retargeting (InterMimic layout) as training motion: reader, rows, general-lifter flag."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from dataset_scripts.omomo_clips import OMOMO_WHEEL, omomo_rows
from modeling_mpm.data.mocap import INTERMIMIC_JOINTS, load_intermimic_pt
from modeling_mpm.skeleton import H36M_17

REPO = Path(__file__).resolve().parents[1]
WHEEL = REPO / "bench" / "extra_mocap" / "heldout" / "downloads" / OMOMO_WHEEL   # bench_heldout_mocap's fetch


def _clip(frames=31, seed=0):
    """A (frames, 591) InterMimic feature tensor: random features, a random walk of the 52 joints in 162-317."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(frames, 591, generator=g, dtype=torch.float32)
    joints = torch.cumsum(0.01 * torch.randn(frames, 52, 3, generator=g), 0) + torch.randn(1, 52, 3, generator=g)
    x[:, 162:318] = joints.reshape(frames, -1)
    return x, joints.double().numpy()


def test_columns_names_and_rate(tmp_path):
    x, joints = _clip()
    torch.save(x, tmp_path / "sub1_box_000.pt")
    pose, fps = load_intermimic_pt(tmp_path / "sub1_box_000.pt")
    assert fps == 50.0 and pose.dtype == np.float32 and pose.shape == (51, 17, 3)   # 1 s at 30 Hz -> 50 Hz
    src = {n: i for i, n in enumerate(INTERMIMIC_JOINTS)}
    for target, name in (("pelvis", "Pelvis"), ("right_wrist", "R_Wrist"), ("left_knee", "L_Knee"),
                         ("thorax", "Chest"), ("spine", "Torso"), ("left_shoulder", "L_Shoulder")):
        # output frame 5k is source frame 3k exactly
        np.testing.assert_allclose(pose[::5, H36M_17.index(target)], joints[::3, src[name]], atol=1e-6)
    head, neck = joints[::3, src["Head"]], joints[::3, src["Neck"]]
    np.testing.assert_allclose(pose[::5, H36M_17.index("head_top")], 2 * head - neck, atol=1e-5)
    assert load_intermimic_pt(tmp_path / "sub1_box_000.pt", target_fps=None)[0].shape == (31, 17, 3)


def test_bad_files_are_sentences(tmp_path):
    torch.save({"joints": torch.zeros(3, 591)}, tmp_path / "d.pt")
    torch.save(torch.zeros(3, 200), tmp_path / "s.pt")
    (tmp_path / "t.pt").write_bytes(b"not a torch file")
    bad = torch.zeros(3, 591)
    bad[1, 170] = float("nan")
    torch.save(bad, tmp_path / "n.pt")
    for name, says in (("d.pt", "got dict"), ("s.pt", r"got \(3, 200\)"), ("t.pt", "not a readable"), ("n.pt", "NaN")):
        with pytest.raises(ValueError, match=says):
            load_intermimic_pt(tmp_path / name)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="holds no OMOMO"):
        omomo_rows(empty)
    with pytest.raises(ValueError, match="does not exist"):
        omomo_rows(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="neither a folder"):
        omomo_rows(tmp_path / "t.pt")


def test_rows_from_a_folder_and_the_general_lifter_flag(tmp_path, tiny_lifter_9):
    clips = tmp_path / "clips"
    clips.mkdir()
    torch.save(_clip(90)[0], clips / "sub7_chair_001.pt")
    (row,) = omomo_rows(clips)
    assert row["sequence"] == "omomo_sub7_chair_001" and row["subject"] == "omomo_sub7" and row["fps"] == 50.0
    spec = importlib.util.spec_from_file_location("general_lifter", REPO / "train" / "general_lifter.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    tiny_lifter_9.save_pretrained(tmp_path / "start")
    out = tmp_path / "more"
    assert script.main(["--output-dir", str(out), "--continue-from", str(tmp_path / "start"), "--finetune-steps", "1",
                        "--batch-size", "4", "--threads", "1", "--omomo", str(clips)]) == 0
    from datasets import load_from_disk

    data = load_from_disk(str(out / "runs" / "data"))
    assert sorted(data["train"]["sequence"]) == sorted(["cmu_01_01", "climb_seq_0", "climb_seq_1", "climb_seq_2",
                                                        "cmu_01_03", "climb_seq_3", "omomo_sub7_chair_001",
                                                        "omomo_sub7_chair_001_copy1", "omomo_sub7_chair_001_copy2"])
    assert sorted(data["validation"]["sequence"]) == ["climb_seq_3", "cmu_01_03"]
    with pytest.raises(SystemExit):
        script.main(["--output-dir", str(out), "--continue-from", str(tmp_path / "start"), "--omomo", str(clips),
                     "--omomo-repeat", "0"])
    assert (out / "mpm-lift-general" / "model.safetensors").exists()


@pytest.mark.skipif(not WHEEL.exists(), reason=f"{OMOMO_WHEEL} not fetched (bench/bench_heldout_mocap.py fetches it)")
def test_the_real_clips_are_upright_people_in_metres():
    rows = omomo_rows(WHEEL)
    assert [r["sequence"] for r in rows] == ["omomo_sub10_largebox_049", "omomo_sub3_largebox_003"]
    for r in rows:
        p = r["pose_3d"].astype(np.float64)
        feet = np.minimum(p[:, 3, 2], p[:, 6, 2])
        assert 1.3 < np.percentile(p[:, 10, 2] - feet, 95) < 2.0                       # metres, Z up
        assert (np.sum((p[:, 11] - p[:, 14]) * (p[:, 4] - p[:, 1]), -1) > 0).mean() > 0.99   # left is left
        thigh = np.linalg.norm(p[:, 5] - p[:, 4], axis=-1)
        assert 0.3 < thigh.mean() < 0.5 and thigh.std() < 0.01 * thigh.mean()           # a rigid bone
        walk = np.linalg.norm(np.diff(p[:, 0, :2], axis=0), axis=-1) * r["fps"]
        assert 0.2 < np.percentile(walk, 75) < 1.5                                      # walking speed at 30 Hz
