"""bench/bench_heldout_mocap.py on tiny committed excerpts of the held-out motion (no network):
60 frames of assimp's Boxing_Toes.bvh (BSD-3-Clause) and 72 frames of holosoma-retargeting's
climb_seq_4 (Apache-2.0); see DATA_NOTES.md."""

import math
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

import bench_heldout_mocap as B  # noqa: E402
from modeling_mpm.skeleton import H36M_17  # noqa: E402

DATA = os.path.join(ROOT, "tests", "data", "heldout_mocap")
FILES = {"assimp_boxing": os.path.join(DATA, "boxing_toes_excerpt.bvh"),
         "holosoma_climb_seq_4": os.path.join(DATA, "climb_seq_4_excerpt.npy")}
J = {n: i for i, n in enumerate(H36M_17.joint_names)}


@pytest.fixture(scope="module")
def motions():
    return B.load_motions(list(FILES), files=FILES)


def test_conversion_h36m17_metres_z_up(motions):
    poses, info = motions
    assert set(poses) == set(FILES)
    # 60 frames at 100 Hz -> 30 at 50 Hz; 72 at 120 Hz -> 30 at 50 Hz
    assert poses["assimp_boxing"].shape == (30, 17, 3)
    assert poses["holosoma_climb_seq_4"].shape == (30, 17, 3)
    for name, pose in poses.items():
        assert pose.dtype == np.float32 and np.isfinite(pose).all()
        bones = info[name]["bone_lengths_m"]
        assert len(bones) == 16
        for bone, length in bones.items():  # metres: every bone between 5 cm and 60 cm
            assert 0.05 < length < 0.6, (name, bone, length)
        thigh = bones["right_hip-right_knee"]
        shin = bones["right_knee-right_ankle"]
        assert 0.3 < thigh < 0.55 and 0.3 < shin < 0.55
        # left and right limbs about equally long (the map did not mix sides)
        assert abs(bones["left_shoulder-left_elbow"] - bones["right_shoulder-right_elbow"]) < 0.02
        # the wrist is nearer its own shoulder than the other one's in (almost) every frame
        assert np.mean(np.linalg.norm(pose[:, J["left_wrist"]] - pose[:, J["left_shoulder"]], axis=-1)
                       < np.linalg.norm(pose[:, J["left_wrist"]] - pose[:, J["right_shoulder"]], axis=-1) + 0.3) > 0.9
    box = poses["assimp_boxing"]
    # Z up: a standing boxer's head top is well above the pelvis, which is above the ankles
    assert (box[:, J["head_top"], 2] > box[:, J["pelvis"], 2] + 0.4).all()
    assert (box[:, J["pelvis"], 2] > box[:, J["right_ankle"], 2] + 0.5).all()
    assert 1.4 < info["assimp_boxing"]["head_top_height_m"] < 2.0
    assert info["assimp_boxing"]["upright_fraction"] == 1.0


def test_joint_names_parsed_without_import(tmp_path):
    src = tmp_path / "data_type.py"
    src.write_text("import does_not_exist\nOTHER = [1]\nMOCAP_DEMO_JOINTS = ['Hips', 'Spine']\n")
    assert B.holosoma_joint_names(str(src)) == ["Hips", "Spine"]
    (tmp_path / "bad.py").write_text("X = 1\n")
    with pytest.raises(ValueError, match="MOCAP_DEMO_JOINTS"):
        B.holosoma_joint_names(str(tmp_path / "bad.py"))


def test_camera_sets():
    fixed, real = B.camera_set("fixed"), B.camera_set("real")
    assert len(fixed) == 4 and len(real) == B.REAL_CAMERAS
    assert [c.height for c in B.camera_set("real")] == [c.height for c in real]  # fixed seed
    for c in real:
        assert 2.0 <= c.distance <= 8.0 and 700 <= c.focal <= 2200
        assert math.radians(-15.01) <= c.elevation <= math.radians(60.01)
    # the VirtualCamera rebuilt from the sampler's arrays has the sampler's rotation
    from modeling_mpm.cameras import orbit_rotations
    from modeling_mpm.data.augment import augment_from_config

    a = augment_from_config("real")[1].sample_arrays(np.random.default_rng(B.REAL_CAMERA_SEED), B.REAL_CAMERAS)
    np.testing.assert_allclose(orbit_rotations([c.yaw for c in real], [c.elevation for c in real]), a["rotation"],
                               atol=1e-9)
    with pytest.raises(ValueError):
        B.camera_set("nope")


def test_evaluation_runs_and_beats_nothing_trivially_wrong(motions):
    poses, info = motions
    res = B.evaluate_heldout({"general": B.GENERAL_LIFTER}, poses, stride=5, flip=False)
    res["sources"] = info
    for cset in B.CAMERA_SETS:
        for nz in B.NOISE:
            r = res["results"][cset][nz]
            assert set(r) == {"general", "general+match_2d", "mean_pose"}
            for name in FILES:
                mp, lift = r["mean_pose"][name], r["general"][name]
                assert r["general+match_2d"][name]["windows"] == lift["windows"]
                assert mp["mpjpe_mm"] > 10 and mp["p_mpjpe_mm"] > 5  # the motion moves: the mean pose errs
                assert np.isfinite(lift["mpjpe_mm"]) and np.isfinite(lift["p_mpjpe_mm"])
                assert 0 < lift["p_mpjpe_mm"] <= lift["mpjpe_mm"] + 1e-6
                assert lift["windows"] == mp["windows"] == 6 * len(B.camera_set(cset))
    # the lifter reads its input: detector noise changes its error, not the input-blind baseline's
    a, b = res["results"]["fixed"]["clean"], res["results"]["fixed"]["detector"]
    assert a["general"]["mean"]["mpjpe_mm"] != b["general"]["mean"]["mpjpe_mm"]
    assert a["mean_pose"]["mean"] == b["mean_pose"]["mean"]
    # moved onto clean projections, the 3D gets closer to the truth
    for cset in B.CAMERA_SETS:
        r = res["results"][cset]["clean"]
        assert r["general+match_2d"]["mean"]["p_mpjpe_mm"] < r["general"]["mean"]["p_mpjpe_mm"] - 1.0, cset
    lines = B.report_section(res)
    assert lines[0].startswith("## ") and any("`assimp_boxing`" in line for line in lines)
    assert sum(line.startswith("| `general` |") for line in lines) == 4
    assert sum(line.startswith("| `general`, constant bone lengths, 3D moved onto its 2D") for line in lines) == 4
