"""Checks of the demo data shipped in modeling_mpm/demo_data (no external files needed)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from modeling_mpm.data import (DEMO_VALIDATION_CAMERAS, demo_validation_sequences, demo_window_datasets,
                               load_demo_dataset, load_sequences, materialize_camera_sequences)
from modeling_mpm.data.demo import DEMO_DATA_DIR
from modeling_mpm.skeleton import H36M_17

MOCAP_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mocap"


@pytest.fixture(scope="module")
def demo():
    dd = load_demo_dataset()
    return {split: load_sequences(dd[split]) for split in dd}


def test_layout_and_split(demo):
    assert set(demo) == {"train", "validation"}
    train = {s["sequence"] for s in demo["train"]}
    val = {s["sequence"] for s in demo["validation"]}
    assert train == {"cmu_01_01", "climb_seq_0", "climb_seq_1", "climb_seq_2"}
    assert val == {"cmu_01_03", "climb_seq_3"}
    for s in demo["train"] + demo["validation"]:
        assert s["fps"] == 50.0 and s["skeleton"] == "h36m17" and s["coordinate_frame"] == "world"
        assert s["pose_3d"].dtype == np.float32 and s["pose_3d"].shape[1:] == (17, 3)
        assert len(s["pose_3d"]) > 900 and len(s["pose_2d"]) == 0
    size = sum(f.stat().st_size for f in DEMO_DATA_DIR.rglob("*") if f.is_file())
    assert size < 5e6


# H36M-17 bones that span several source joints (spine: pelvis -> Spine1 over LowerBack/Spine;
# thorax -> shoulder over the clavicle) bend a little; limbs and the head are single rigid bones.
FLEXIBLE = {"spine", "thorax", "left_shoulder", "right_shoulder"}


def test_bone_lengths_constant(demo):
    for s in demo["train"] + demo["validation"]:
        p = s["pose_3d"]
        for parent, child in H36M_17.bones:
            name = H36M_17.joint_names[child]
            length = np.linalg.norm(p[:, child] - p[:, parent], axis=-1)
            assert 0.05 < length.mean() < 0.6, (s["sequence"], name)
            tol = 0.1 if name in FLEXIBLE else 0.01
            assert length.std() < tol * length.mean(), (s["sequence"], name, length.std())


def test_upright_metres_and_smooth(demo):
    for s in demo["train"] + demo["validation"]:
        p = s["pose_3d"]
        feet = np.minimum(p[:, 3, 2], p[:, 6, 2])
        assert (p[:, 10, 2] > feet).mean() > 0.99  # Z up: head top above the feet
        assert (p[:, 10, 2] > p[:, 0, 2]).mean() > 0.99
        height = np.percentile(p[:, 10, 2] - feet, 95)
        assert 1.3 < height < 2.0, (s["sequence"], height)  # metres, not inches or centimetres
        speed = np.linalg.norm(np.diff(p[:, 0], axis=0), axis=-1) * s["fps"]
        assert speed.max() < 5.0, (s["sequence"], speed.max())  # no teleports (e.g. a rest-pose frame)


def test_left_right_not_swapped(demo):
    for s in demo["train"] + demo["validation"]:
        p = s["pose_3d"].astype(np.float64)
        # left shoulder and left hip on the same side of the body
        assert (np.sum((p[:, 11] - p[:, 14]) * (p[:, 4] - p[:, 1]), -1) > 0).mean() > 0.99
        # chirality: forward = cross(left_hip - right_hip, up); knees bend forward
        fwd = np.cross(p[:, 4] - p[:, 1], [0.0, 0.0, 1.0])
        for hip, knee, ankle in ((1, 2, 3), (4, 5, 6)):
            bend = p[:, knee] - (p[:, hip] + p[:, ankle]) / 2
            bent = np.linalg.norm(bend, axis=-1) > 0.05
            assert bent.sum() > 100
            assert (np.sum(bend * fwd, -1)[bent] > 0).mean() > 0.95, s["sequence"]


def test_demo_windows_and_reproducible_validation():
    train, val = demo_window_datasets(num_frames=27, validation_stride=50)
    assert len(val) == sum(len(range(0, n, 50)) for n in (1879, 1001)) * len(DEMO_VALIDATION_CAMERAS)
    _, val2 = demo_window_datasets(num_frames=27, validation_stride=50, seed=123)
    for i in (0, 7, len(val) - 1):
        torch.testing.assert_close(val[i]["pose_2d"], val2[i]["pose_2d"])
        assert np.abs(val[i]["pose_2d"].numpy()).max() < 1.0  # inside the virtual image
    item = train[500]
    assert item["pose_3d"].shape == (27, 17, 3) and (item["pose_3d"][:, 0] == 0).all()
    # camera frame: y down, so the head top is above (smaller y than) the ankles
    assert (item["pose_3d"][:, 10, 1] < item["pose_3d"][:, 3, 1]).float().mean() > 0.9
    full = materialize_camera_sequences(load_sequences(load_demo_dataset()["validation"]), DEMO_VALIDATION_CAMERAS)
    assert len(full) == 8 and full[0]["pose_2d"].shape == (1879, 17, 2)
    again = demo_validation_sequences()
    np.testing.assert_array_equal(again[5]["pose_2d"], full[5]["pose_2d"])
    # the validation window of camera c, centre t equals frames of the materialised sequence
    # up to the window's own centring (root-relative 3D is independent of the placement)
    item = val[0]
    seq_i, cam_i, t = int(item["sequence_index"]), int(item["camera_index"]), int(item["center_frame"])
    ref = full[seq_i * len(DEMO_VALIDATION_CAMERAS) + cam_i]["pose_3d"][max(0, t - 13): t + 14]
    np.testing.assert_allclose(item["pose_3d"].numpy()[13 - min(t, 13):], ref, atol=1e-5)


@pytest.mark.skipif(not MOCAP_DIR.exists(), reason=f"raw mocap not available ({MOCAP_DIR} missing); "
                                                   "the shipped demo data is still tested above")
def test_shipped_demo_matches_rebuild(tmp_path):
    from modeling_mpm.cli.prepare import main

    out = tmp_path / "demo"
    assert main(["demo", "--mocap_dir", str(MOCAP_DIR), "--output", str(out)]) == 0
    rebuilt = load_demo_dataset(out)
    shipped = load_demo_dataset()
    for split in ("train", "validation"):
        a, b = load_sequences(rebuilt[split]), load_sequences(shipped[split])
        assert [x["sequence"] for x in a] == [x["sequence"] for x in b]
        for x, y in zip(a, b):
            np.testing.assert_allclose(x["pose_3d"], y["pose_3d"], atol=1e-6)
