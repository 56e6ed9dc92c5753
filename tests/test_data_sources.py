"""Converters on tiny files written in the exact original layouts."""

import json

import numpy as np
import pytest

from modeling_mpm.cameras import h36m_camera, qrot
from modeling_mpm.data import sources as S


def save_pickled(path, **arrays):
    np.savez(path, **{k: np.array(v, dtype=object) if isinstance(v, dict) else v for k, v in arrays.items()})


# ----------------------------------------------------------------------------- Human3.6M

def h36m_files(tmp_path, T=6, extra_2d=3):
    rng = np.random.default_rng(0)
    pos3d = {}
    for subject, actions in {"S1": ["Walking 1", "Directions"], "S9": ["Greeting"],
                             "S11": ["Directions", "Phoning 2"]}.items():
        pos3d[subject] = {a: (rng.normal(0, 0.3, (T, 32, 3)) + [0, 0, 1]).astype(np.float32) for a in actions}
    # joint k of S1/Walking 1, frame 0, is a point 3 m straight in front of camera 0
    cam = h36m_camera("S1", 0)
    pos3d["S1"]["Walking 1"][0, 13] = cam.translation + qrot(cam.orientation, np.array([0.0, 0.0, 3.0]))
    pos2d = {s: {a: [rng.uniform(0, 1000, (T + extra_2d, 17, 2)).astype(np.float32) for _ in range(4)]
                 for a in acts} for s, acts in pos3d.items()}
    meta = {"layout_name": "h36m", "num_joints": 17, "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}
    save_pickled(tmp_path / "data_3d_h36m.npz", positions_3d=pos3d)
    save_pickled(tmp_path / "data_2d_h36m_gt.npz", positions_2d=pos2d, metadata=meta)
    return pos3d, pos2d


def test_h36m_camera_frame_projection_selection_truncation(tmp_path):
    pos3d, pos2d = h36m_files(tmp_path)
    rows = list(S.h36m_rows(tmp_path / "data_3d_h36m.npz", subjects=["S1"]))
    assert [r["sequence"] for r in rows[:4]] == [f"S1/Directions/{c}" for c in
                                                  ("54138969", "55011271", "58860488", "60457274")]
    walk0 = next(r for r in rows if r["sequence"] == "S1/Walking 1/54138969")
    assert walk0["pose_3d"].shape == (6, 17, 3) and walk0["fps"] == 50.0
    assert walk0["image_size"] == [1000, 1002] and walk0["coordinate_frame"] == "camera"
    # 32-joint index 13 is H36M-17 joint 8 (thorax): 3 m in front of the camera, projected at (cx, cy)
    np.testing.assert_allclose(walk0["pose_3d"][0, 8], [0, 0, 3], atol=1e-5)
    np.testing.assert_allclose(walk0["pose_2d"][0, 8], [512.5415, 515.4515], atol=1e-3)
    np.testing.assert_allclose(walk0["intrinsics"][:4], [1145.0494, 1143.7811, 512.5415, 515.4515], atol=1e-3)
    # the other joints are the world points of the 17 selected mocap joints in the camera frame
    cam = h36m_camera("S1", 0)
    sel = pos3d["S1"]["Walking 1"][:, S.H36M_32_TO_17]
    np.testing.assert_allclose(walk0["pose_3d"], cam.world_to_camera(sel.astype(np.float64)), atol=1e-5)
    # with a 2D file: the 2D is passed through, truncated to the mocap length
    rows2 = list(S.h36m_rows(tmp_path / "data_3d_h36m.npz", tmp_path / "data_2d_h36m_gt.npz", subjects=["S9"]))
    assert len(rows2) == 4
    np.testing.assert_allclose(rows2[2]["pose_2d"], pos2d["S9"]["Greeting"][2][:6])


def test_h36m_splits_16_joints_and_corrupted_take(tmp_path):
    h36m_files(tmp_path)
    dd = S.prepare_h36m(tmp_path / "data_3d_h36m.npz", tmp_path / "data_2d_h36m_gt.npz", num_joints=16)
    assert set(dd) == {"train", "test"}
    assert sorted(set(dd["train"]["subject"])) == ["S1"] and len(dd["train"]) == 8
    # S11 Directions is dropped (corrupted video), S11 Phoning 2 and S9 Greeting stay
    assert sorted(set(dd["test"]["sequence"])) == sorted(
        [f"S9/Greeting/{c}" for c in ("54138969", "55011271", "58860488", "60457274")]
        + [f"S11/Phoning 2/{c}" for c in ("54138969", "55011271", "58860488", "60457274")])
    assert dd["train"].features["pose_3d"].shape == (None, 16, 3)
    full = list(S.h36m_rows(tmp_path / "data_3d_h36m.npz", subjects=["S1"]))
    r16 = dd["train"].with_format("numpy")[0]
    np.testing.assert_allclose(r16["pose_3d"], np.delete(full[0]["pose_3d"], 9, axis=1), atol=1e-6)
    assert r16["skeleton"] == "h36m16"


def test_h36m_bad_input(tmp_path):
    pos3d, pos2d = h36m_files(tmp_path)
    with pytest.raises(ValueError, match="no key 'positions_3d'"):
        list(S.h36m_rows(tmp_path / "data_2d_h36m_gt.npz"))
    with pytest.raises(ValueError, match="unknown Human3.6M subject 'S2'"):
        list(S.h36m_rows({"S2": {"Walk": np.zeros((3, 32, 3))}}))
    with pytest.raises(ValueError, match=r"3D must be \(T, 32, 3\)"):
        list(S.h36m_rows({"S1": {"Walk": np.zeros((3, 31, 3))}}))
    short = {s: {a: [v[:2] for v in views] for a, views in acts.items()} for s, acts in pos2d.items()}
    with pytest.raises(ValueError, match="fewer than the 6 mocap frames"):
        list(S.h36m_rows(pos3d, short))
    with pytest.raises(ValueError, match="2D file has no S1/Directions"):
        list(S.h36m_rows(pos3d, {"S1": {}}))
    with pytest.raises(ValueError, match="not in the 3D file"):
        list(S.h36m_rows(pos3d, subjects=["S5"]))


# ----------------------------------------------------------------------------- MPI-INF-3DHP

def mpi_files(tmp_path, T=5):
    rng = np.random.default_rng(1)
    d = lambda c, s: rng.uniform(0, s, (T, 17, c)).astype(np.float32)  # noqa: E731
    train = {"S1 Seq1": [{"0": {"data_2d": d(2, 2048), "data_3d": d(3, 1000)},
                          "4": {"data_2d": d(2, 2048), "data_3d": d(3, 1000)}}, 25],
             "S2 Seq2": [{"1": {"data_2d": d(2, 2048), "data_3d": d(3, 1000)}}, 50]}
    test = {"TS1": {"data_2d": d(2, 2048), "data_3d": d(3, 1000), "valid": np.array([1, 1, 0, 1, 1.0])},
            "TS5": {"data_2d": d(2, 1920), "data_3d": d(3, 1000), "valid": np.array([0, 1, 1, 1, 1.0])}}
    save_pickled(tmp_path / "data_train_3dhp.npz", data=train)
    save_pickled(tmp_path / "data_test_3dhp.npz", data=test)
    return train, test


def test_mpi3dhp_mapping_units_and_valid(tmp_path):
    train, test = mpi_files(tmp_path)
    dd = S.prepare_mpi3dhp(tmp_path / "data_train_3dhp.npz", tmp_path / "data_test_3dhp.npz")
    assert len(dd["train"]) == 3 and len(dd["test"]) == 2
    rows = list(S.mpi3dhp_train_rows(tmp_path / "data_train_3dhp.npz"))
    r = rows[1]
    assert r["sequence"] == "S1 Seq1/4" and r["fps"] == 25 and r["image_size"] == [2048, 2048]
    src = train["S1 Seq1"][0]["4"]
    # thorax (8) <- neck (1), neck/nose (9) <- head (16), head_top (10) <- head_top (0), pelvis <- 14
    for h36m, mpi in ((0, 14), (8, 1), (9, 16), (10, 0), (11, 5), (14, 2)):
        np.testing.assert_allclose(r["pose_3d"][:, h36m], src["data_3d"][:, mpi] / 1000, rtol=1e-6)
        np.testing.assert_allclose(r["pose_2d"][:, h36m], src["data_2d"][:, mpi], rtol=1e-6)
    assert r["pose_2d_units"] == "pixels"
    t = list(S.mpi3dhp_test_rows(tmp_path / "data_test_3dhp.npz"))
    assert [x["sequence"] for x in t] == ["TS1", "TS5"]
    assert t[1]["image_size"] == [1920, 1080] and t[1]["fps"] == 25.0 and t[0]["fps"] == 50.0
    assert t[0]["valid"] == [True, True, False, True, True]


def test_mpi3dhp_legacy_flag_reproduces_authors_processing(tmp_path):
    train, test = mpi_files(tmp_path)
    r = list(S.mpi3dhp_test_rows(tmp_path / "data_test_3dhp.npz", num_joints=16, legacy=True))[1]
    src = test["TS5"]
    p2 = (src["data_2d"].astype(np.float64) / 1920 * 2 - [1, 1080 / 1920]) / 1000
    # legacy: H36M-16 head (9) = mean(head_top, head), thorax (8) <- head (16)
    np.testing.assert_allclose(r["pose_2d"][:, 9], (p2[:, 0] + p2[:, 16]) / 2, rtol=1e-5)
    np.testing.assert_allclose(r["pose_2d"][:, 8], p2[:, 16], rtol=1e-5)
    np.testing.assert_allclose(r["pose_3d"][:, 8], src["data_3d"][:, 16] / 1000, rtol=1e-6)
    assert r["pose_2d_units"] == "normalized" and np.abs(r["pose_2d"]).max() < 2e-3
    correct = list(S.mpi3dhp_test_rows(tmp_path / "data_test_3dhp.npz", num_joints=16))[1]
    np.testing.assert_allclose(correct["pose_3d"][:, 8], src["data_3d"][:, 1] / 1000, rtol=1e-6)  # neck
    with pytest.raises(ValueError, match="num_joints=16"):
        list(S.mpi3dhp_test_rows(tmp_path / "data_test_3dhp.npz", num_joints=17, legacy=True))


def test_mpi3dhp_bad_input(tmp_path):
    with pytest.raises(ValueError, match="missing"):
        list(S.mpi3dhp_test_rows({"TS1": {"data_2d": np.zeros((2, 17, 2))}}))
    with pytest.raises(ValueError, match="unknown 3DHP test sequence"):
        list(S.mpi3dhp_test_rows({"TS9": {}}))
    with pytest.raises(ValueError, match=r"data_3d must be \(T, 17, 3\)"):
        list(S.mpi3dhp_train_rows({"S1 Seq1": [{"0": {"data_2d": np.zeros((2, 17, 2)),
                                                      "data_3d": np.zeros((2, 16, 3))}}, 25]}))


# ----------------------------------------------------------------------------- AMASS

def test_amass_authors_schema(tmp_path):
    rng = np.random.default_rng(2)
    poses = {"CMU/01_01": {"length": 7, "pose2d": rng.normal(size=(7, 16, 2)), "pose3d": rng.normal(size=(7, 16, 3))},
             "BMLrub/x": {"length": 4, "pose2d": rng.normal(size=(4, 16, 2)), "pose3d": rng.normal(size=(4, 16, 3))}}
    save_pickled(tmp_path / "amass.npz", poses=poses)
    dd = S.prepare_amass(tmp_path / "amass.npz")
    assert list(dd) == ["train"] and len(dd["train"]) == 2
    r = dd["train"].with_format("numpy")[1]
    assert r["sequence"] == "CMU/01_01" and r["skeleton"] == "h36m16" and r["pose_2d_units"] == "normalized"
    np.testing.assert_allclose(r["pose_3d"], poses["CMU/01_01"]["pose3d"], rtol=1e-6)
    poses["BMLrub/x"]["length"] = 5
    with pytest.raises(ValueError, match="length 5 but"):
        list(S.amass_authors_rows(poses))
    np.savez(tmp_path / "other.npz", other=np.zeros(1))
    with pytest.raises(ValueError, match="no key 'poses'"):
        list(S.amass_authors_rows(tmp_path / "other.npz"))


SMPL_NAMES = ["pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
              "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
              "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist"]


def test_amass_plain_joints_npz(tmp_path):
    T = 21
    pos = np.zeros((T, 22, 3), np.float32)
    pos[:, :, 1] = np.arange(22)[None] * 0.05  # y is up in this file
    pos[:, :, 0] = np.linspace(0, 1, T)[:, None]
    np.savez(tmp_path / "walk.npz", joint_names=np.array(SMPL_NAMES), fps=np.array(60.0), positions=pos)
    rows = list(S.amass_joints_rows(tmp_path, up_axis="y", target_fps=30.0))
    assert len(rows) == 1
    r = rows[0]
    assert r["coordinate_frame"] == "world" and r["fps"] == 30.0 and r["pose_3d"].shape == (11, 17, 3)
    head, neck = 15 * 0.05, 12 * 0.05
    np.testing.assert_allclose(r["pose_3d"][:, 10, 2], head + (head - neck), rtol=1e-5)  # head top, now Z up
    np.testing.assert_allclose(r["pose_3d"][:, 0, 0], np.linspace(0, 1, T)[::2], atol=1e-6)
    np.savez(tmp_path / "bad.npz", joint_names=np.array(SMPL_NAMES[:-1]), fps=np.array(60.0), positions=pos)
    with pytest.raises(ValueError, match=r"expected \(T, 21, 3\)"):
        list(S.amass_joints_rows(tmp_path / "bad.npz"))


# ----------------------------------------------------------------------------- motion capture

def test_mocap_rows_from_bvh_and_npy(tmp_path):
    names = ["Hips", "Spine", "Spine1", "Neck", "Head", "LeftArm", "LeftForeArm", "LeftHand", "RightArm",
             "RightForeArm", "RightHand", "LeftUpLeg", "LeftLeg", "LeftFoot", "RightUpLeg", "RightLeg", "RightFoot"]
    (tmp_path / "joint_names.json").write_text(json.dumps(names))
    T = 13
    pos = np.random.default_rng(3).normal(size=(T, len(names), 3)).astype(np.float32)
    np.save(tmp_path / "climb.npy", pos)
    dd = S.prepare_mocap([tmp_path], validation=["climb"], target_fps=60.0, npy_fps=120.0)
    assert len(dd["validation"]) == 1 and len(dd["train"]) == 0
    r = dd["validation"].with_format("numpy")[0]
    assert r["pose_3d"].shape == (7, 17, 3) and r["fps"] == 60.0
    np.testing.assert_allclose(r["pose_3d"][:, 8], pos[::2, 3], rtol=1e-6)  # thorax <- Neck
    np.testing.assert_allclose(r["pose_3d"][:, 10], pos[::2, 4] + 0.8 * (pos[::2, 4] - pos[::2, 3]), rtol=1e-5)
    with pytest.raises(ValueError, match="validation sequences not found"):
        S.prepare_mocap([tmp_path], validation=["nope"])
