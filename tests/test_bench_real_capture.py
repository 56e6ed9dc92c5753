"""bench/bench_real_capture.py: joint mapping, metrics over views, the reference (triangulation and
left/right swap repair) and evaluate_on_capture on a small synthetic capture (no MediaPipe, no video)."""

import importlib
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CALIB = os.path.join(ROOT, "tests", "data", "pose2sim", "Calib.qca.txt")


@pytest.fixture(scope="module")
def rc():
    bench = os.path.join(ROOT, "bench")
    if bench not in sys.path:
        sys.path.insert(0, bench)
    return importlib.import_module("bench_real_capture")


def _template():
    """(33, 3) a standing person in BlazePose order, world metres, Z up, facing -Y (subject's left
    at +X)."""
    from modeling_mpm.keypoints import BLAZEPOSE_LANDMARKS

    base = {"nose": (0, -0.1, 1.65), "eye": (0.03, -0.08, 1.7), "ear": (0.08, 0, 1.68), "mouth": (0.03, -0.09, 1.6),
            "shoulder": (0.19, 0, 1.45), "elbow": (0.22, 0.02, 1.15), "wrist": (0.24, -0.05, 0.9),
            "pinky": (0.25, -0.07, 0.82), "index": (0.24, -0.08, 0.81), "thumb": (0.22, -0.08, 0.84),
            "hip": (0.1, 0, 0.95), "knee": (0.11, -0.03, 0.52), "ankle": (0.11, 0.02, 0.1),
            "heel": (0.11, 0.06, 0.05), "foot_index": (0.12, -0.12, 0.03)}
    out = []
    for n in BLAZEPOSE_LANDMARKS:
        side = 1.0 if n.startswith("left") else -1.0 if n.startswith("right") else 0.0
        key = next(k for k in sorted(base, key=len, reverse=True) if k in n)
        x, y, z = base[key]
        if "inner" in n:
            x *= 0.5
        if "outer" in n:
            x *= 1.5
        out.append((side * x if side else 0.0, y, z))
    return np.array(out) + np.array([-0.9, 0.0, 0.0])


def _motion(T=24, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(T)[:, None, None] / 60.0
    amp = rng.uniform(0.02, 0.15, size=(1, 33, 3))
    phase = rng.uniform(0, 2 * np.pi, size=(1, 33, 3))
    return _template()[None] + amp * np.sin(2 * np.pi * 1.5 * t + phase)


def test_joint_mapping_is_explicit_and_consistent(rc):
    from modeling_mpm.keypoints import BLAZEPOSE_LANDMARKS
    from modeling_mpm.skeleton import H36M_17

    assert len(rc.BODY_JOINTS) == 12 and len(set(rc.BLAZEPOSE_BODY)) == 12 and len(set(rc.H36M_BODY)) == 12
    for name, b, h in rc.BODY_JOINTS:
        assert BLAZEPOSE_LANDMARKS[b] == name
        assert H36M_17.joint_names[h] == name
    assert [rc.BODY_NAMES[i] for i in rc.HIPS] == ["right_hip", "left_hip"]
    flip = np.array(rc.BLAZEPOSE_FLIP)
    np.testing.assert_array_equal(flip[flip], np.arange(33))
    assert BLAZEPOSE_LANDMARKS[flip[BLAZEPOSE_LANDMARKS.index("left_hip")]] == "right_hip"
    assert flip[0] == 0                                   # the nose has no side
    pose33 = np.random.default_rng(0).normal(size=(5, 33, 3))
    pose17 = np.random.default_rng(1).normal(size=(5, 17, 3))
    np.testing.assert_array_equal(rc.body_joints(pose33, "blazepose"), pose33[:, list(rc.BLAZEPOSE_BODY)])
    np.testing.assert_array_equal(rc.body_joints(pose17, "h36m"), pose17[:, list(rc.H36M_BODY)])
    with pytest.raises(ValueError, match="33 joints"):
        rc.body_joints(pose17, "blazepose")
    with pytest.raises(ValueError, match="layout"):
        rc.body_joints(pose17, "coco")


def test_scores_and_mean_over_views(rc):
    ref = rc.body_joints(_motion(10), "blazepose")
    s = rc.score(ref, ref)
    assert s["frames"] == 10 and s["p_mpjpe_mm"] < 1e-6 and s["mpjpe_mm"] == 0.0
    c, s_ = np.cos(np.pi / 6), np.sin(np.pi / 6)
    rot = np.array([[c, -s_, 0.0], [s_, c, 0.0], [0.0, 0.0, 1.0]])
    moved = 1.3 * ref @ rot.T + np.array([1.0, 2.0, 3.0])        # similarity transform
    s = rc.score(moved, ref)
    assert s["p_mpjpe_mm"] < 1e-6 and s["mpjpe_mm"] > 50
    shifted = ref + np.array([0.5, 0.0, 0.0])                     # root-relative MPJPE ignores translation
    assert rc.score(shifted, ref)["mpjpe_mm"] < 1e-6
    wrist = ref.copy()
    wrist[:, rc.BODY_NAMES.index("right_wrist"), 2] += 0.3           # one joint wrong: per-joint error names it
    s = rc.score(wrist, ref)
    worst = max(s["p_mpjpe_per_joint_mm"], key=s["p_mpjpe_per_joint_mm"].get)
    assert worst == "right_wrist" and s["p_mpjpe_mm"] == pytest.approx(np.mean(list(s["p_mpjpe_per_joint_mm"].values())))
    np.testing.assert_allclose(rc.root_centre(ref)[:, list(rc.HIPS)].mean(axis=1), 0.0, atol=1e-12)
    assert rc.score(ref[:0], ref[:0])["frames"] == 0
    with pytest.raises(ValueError, match="frames, 12, 3"):
        rc.score(ref[:, :11], ref[:, :11])
    per_view = {"cam01": {"a": {"p_mpjpe_mm": 10.0, "mpjpe_mm": 20.0, "frames": 5}},
                "cam02": {"a": {"p_mpjpe_mm": 30.0, "mpjpe_mm": 40.0, "frames": 5},
                          "b": {"p_mpjpe_mm": 1.0, "mpjpe_mm": 2.0, "frames": 5}},
                "cam03": {"a": {"p_mpjpe_mm": float("nan"), "mpjpe_mm": float("nan"), "frames": 0}}}
    m = rc.mean_over_views(per_view)
    assert m["a"] == {"p_mpjpe_mm": 20.0, "mpjpe_mm": 30.0, "views": 2}
    assert m["b"] == {"p_mpjpe_mm": 1.0, "mpjpe_mm": 2.0, "views": 1}


def _synthetic_capture(rc, tmp_path, swap_view=1, swap_frames=slice(5, 12)):
    """Noise-free BlazePose-like detections of a synthetic person in the four pose2sim cameras."""
    from capture import read_qualisys_calibration

    cams = read_qualisys_calibration(CALIB)
    X = _motion()
    kp = np.stack([np.concatenate([c.project(X), np.ones(X.shape[:2] + (1,))], -1) for c in cams])
    world = np.stack([rc.root_centre(c.world_to_camera(X)[:, list(rc.BLAZEPOSE_BODY)]) for c in cams])
    # BlazePose's world landmarks cover 33 joints; only the body joints are scored
    world33 = np.zeros(kp.shape)
    world33[:, :, list(rc.BLAZEPOSE_BODY)] = world
    det = kp.copy()
    det[swap_view, swap_frames] = kp[swap_view, swap_frames][:, list(rc.BLAZEPOSE_FLIP)]
    path = tmp_path / "synthetic_blazepose.npz"
    np.savez(path, keypoints=det.astype(np.float32), world=world33.astype(np.float32),
             detected=np.ones(kp.shape[:2], bool), image_size=np.array([c.image_size for c in cams]))
    return str(path), X


def test_reference_triangulates_and_repairs_left_right_swaps(rc, tmp_path):
    det, X = _synthetic_capture(rc, tmp_path)
    arrays = rc.build_reference(det, CALIB)
    swapped = arrays["left_right_swapped"]
    assert swapped[1, 5:12].all() and swapped.sum() == 7
    np.testing.assert_allclose(arrays["reference_world"], X, atol=1e-3)   # float32 pixels
    assert np.nanmax(arrays["reprojection_error_px"]) < 0.01
    out = rc.write_capture_npz(str(tmp_path / "Synthetic.npz"), arrays, "Synthetic")
    with np.load(out) as z:
        for key, shape in (("keypoints", (4, 24, 33, 3)), ("world_blazepose", (4, 24, 33, 3)),
                           ("reference_world", (24, 33, 3)), ("reprojection_error_px", (4, 24, 33)),
                           ("R", (4, 3, 3)), ("t", (4, 3)), ("intrinsics", (4, 9)), ("image_size", (4, 2))):
            assert z[key].shape == shape, key
        assert str(z["name"]) == "Synthetic" and list(z["body_h36m"]) == list(rc.H36M_BODY)


def test_evaluate_on_capture_smoke(rc, tmp_path):
    import torch

    from modeling_mpm import MPMConfig, MPMForPoseLifting

    det, X = _synthetic_capture(rc, tmp_path)
    cache = rc.write_capture_npz(str(tmp_path / "Synthetic.npz"), rc.build_reference(det, CALIB), "Synthetic")
    torch.manual_seed(0)
    cfg = MPMConfig.h36m_17(num_frames=9, hidden_size=32, intermediate_size=64, num_layers=1, num_attention_heads=4)
    MPMForPoseLifting(cfg).save_pretrained(str(tmp_path / "lifter"))
    res = rc.evaluate_on_capture({"random": str(tmp_path / "lifter")}, cache, mode="seq2seq")
    cap = res["captures"]["Synthetic"]
    assert set(cap["views"]) == {"cam01", "cam02", "cam03", "cam04"}
    assert set(cap["mean_over_views"]) == {"random", "random+clean", "random+unmatched", "random+clean+unmatched",
                                           "blazepose_3d", "mean_pose"}
    assert cap["frames"] == 24
    # the synthetic "BlazePose 3D" is the truth in each camera frame
    assert cap["mean_over_views"]["blazepose_3d"]["p_mpjpe_mm"] < 1.0
    assert cap["mean_over_views"]["blazepose_3d"]["mpjpe_mm"] < 1.0
    # moved onto exact projections, even a random lifter's 3D gets closer to the truth
    mo = cap["mean_over_views"]
    assert mo["random+clean"]["p_mpjpe_mm"] < mo["random+clean+unmatched"]["p_mpjpe_mm"]
    for m in ("random", "random+clean", "random+unmatched", "mean_pose"):
        assert np.isfinite(cap["mean_over_views"][m]["p_mpjpe_mm"]) and cap["mean_over_views"][m]["mpjpe_mm"] > 0
    assert cap["reprojection_error_px"]["body_used_median"] < 0.01
    assert res["mean_over_captures"]["mean_pose"] == {k: cap["mean_over_views"]["mean_pose"][k]
                                                      for k in ("p_mpjpe_mm", "mpjpe_mm")}
    table = rc.format_table(res)
    assert "blazepose_3d" in table and "Synthetic" in table
    # BlazePose's 3D blended in, as lift_video does: here it is the truth, so even a random lifter's 3D gets closer
    half = rc.evaluate_on_capture({"random": str(tmp_path / "lifter")}, cache, mode="seq2seq", clean_projections=False,
                                  blazepose_3d_weight=0.5)
    hv = half["captures"]["Synthetic"]["mean_over_views"]
    assert set(hv) == {"random", "random+unblended", "random+unmatched", "blazepose_3d", "mean_pose"}
    assert half["blazepose_3d_weight"] == 0.5 and res["blazepose_3d_weight"] == 0.0
    assert hv["random+unblended"] == mo["random"] and hv["random+unmatched"] == mo["random+unmatched"]
    assert hv["random"]["p_mpjpe_mm"] < 0.95 * hv["random+unblended"]["p_mpjpe_mm"]
    with pytest.raises(ValueError, match="does not exist"):
        rc.evaluate_on_capture({}, str(tmp_path / "nothing.npz"))


def test_command_line_with_an_official_checkpoint(rc, tmp_path):
    """main(): cached detections + calibration in the cache folder -> reference, an authors'-layout
    checkpoint converted and scored next to a --model folder, JSON written, report section rendered."""
    import json
    import shutil

    import torch

    from official_reference import random_official_state_dicts

    det, _ = _synthetic_capture(rc, tmp_path)
    cache = tmp_path / "cache"
    (cache / "Synthetic" / "calibration").mkdir(parents=True)
    shutil.copy(CALIB, cache / "Synthetic" / "calibration" / "Calib.qca.txt")
    shutil.copy(det, cache / "Synthetic_blazepose.npz")
    _, lift_sd = random_official_state_dicts(17, 27, 1, 32, 64, [3, 3, 3], seed=2)
    torch.save(lift_sd, tmp_path / "official.pth")
    out = tmp_path / "real_capture.json"
    threads = torch.get_num_threads()
    try:
        assert rc.main(["--cache-dir", str(cache), "--captures", "Synthetic", "--official", str(tmp_path / "official.pth"),
                        "--mode", "seq2seq", "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)
    res = json.loads(out.read_text())
    assert set(res["mean_over_captures"]) == {"official", "official+unblended", "official+clean", "official+unmatched",
                                              "official+clean+unmatched", "blazepose_3d", "mean_pose"}
    assert res["meta"]["command"].startswith("python bench/bench_real_capture.py")
    assert (cache / "Synthetic.npz").is_file()
    section = "\n".join(rc.report_section(res))
    assert section.startswith("## 11. Real capture") and "`official` fed clean projections" in section
    assert "`official` (BlazePose 2D), 3D as lifted (no 2D match)" in section and "moved onto its 2D" in section
    assert "BlazePose's own 3D blended in at 0.2" in section and res["blazepose_3d_weight"] == 0.2
    assert "`official` (BlazePose 2D), without BlazePose's 3D blended in" in section


def test_retarget_body_keeps_directions_and_sets_lengths(rc):
    body = rc.body_joints(np.repeat(_template()[None], 4, axis=0), "blazepose")
    own = rc.body_bone_lengths(body)
    np.testing.assert_allclose(rc.retarget_body(body, own), body, atol=1e-9)  # its own body: unchanged
    other = {k: v * (1.3 if "knee" in k or "ankle" in k else 0.8) for k, v in own.items()}
    moved = rc.retarget_body(body, other)
    got = rc.body_bone_lengths(moved)
    scale = own["left_knee"] / other["left_knee"]  # the left thigh keeps its length
    for k in own:
        assert got[k] == pytest.approx(other[k] * scale, rel=1e-6)
    from modeling_mpm.metrics import p_mpjpe_per_frame
    assert p_mpjpe_per_frame(moved, body).mean() > 0.01  # other proportions cost millimetres


def test_detections_cache_is_redone_when_the_masking_differs(rc, tmp_path):
    """A cache records how the second person was painted out; another --mask redoes it, the same one reuses it."""
    name = "Demo_MultiPerson"
    det = tmp_path / f"{name}_blazepose.npz"
    np.savez(det, keypoints=np.zeros((4, 2, 33, 3), np.float32), masks=rc._masking(name, "rectangles"))
    assert rc._cached_masking(str(det), name) == repr(rc.MULTIPERSON_MASKS[name])
    assert rc.detect_capture("unused", name, str(tmp_path), mask="rectangles") == str(det)   # reused, nothing run
    assert rc._masking(name, "silhouettes") != rc._masking(name, "rectangles")
    assert f"margin={rc.SILHOUETTE_MARGIN_PX}" in rc._masking(name, "silhouettes")
    # a capture without a second person: one masking either way, old caches without the record count as it
    np.savez(tmp_path / "Other_blazepose.npz", keypoints=np.zeros((4, 2, 33, 3), np.float32))
    assert rc._cached_masking(str(tmp_path / "Other_blazepose.npz"), "Other") == rc._masking("Other", "silhouettes")
    assert rc._cached_masking(str(tmp_path / "none.npz"), name) is None
    with pytest.raises(ValueError, match="mask must be one of"):
        rc.detect_capture("unused", name, str(tmp_path), mask="boxes")


def test_second_person_silhouette_on_real_frames(rc):
    """On real frames (one person): the silhouette found inside a generous rectangle around her is far smaller than
    the rectangle and covers her body landmarks; a rectangle with nobody in it is painted whole."""
    pytest.importorskip("av")
    try:
        import mediapipe  # noqa: F401
    except Exception as e:  # pragma: no cover - Python without the wheels
        pytest.skip(f"mediapipe cannot be imported ({e})")
    from modeling_mpm.video import BlazePoseEstimator
    from modeling_mpm.video.pipeline import iter_video_frames

    frames = list(iter_video_frames(os.path.join(ROOT, "tests", "data", "pose2sim_cam01.mp4")))[:3]
    with BlazePoseEstimator() as est:
        kp = np.stack([r["keypoints"] for r in est(frames)])
    body = kp[:, list(rc.BLAZEPOSE_BODY), :2]
    h, w = frames[0].shape[:2]
    x0, y0 = np.maximum(body.min(axis=(0, 1)) - 80, 0).astype(int)
    x1, y1 = np.minimum(body.max(axis=(0, 1)) + 80, (w, h)).astype(int)
    sil = rc.second_person_silhouettes(frames, [(x0, y0, x1, y1)], margin=5)
    assert sil.shape == (3, h, w) and sil.dtype == bool
    area = (x1 - x0) * (y1 - y0)
    for t in range(3):
        assert 0.1 * area < sil[t].sum() < 0.6 * area, sil[t].sum() / area
        xy = np.round(body[t]).astype(int)
        assert sil[t][xy[:, 1], xy[:, 0]].mean() >= 0.8
        assert not sil[t][:, : max(x0 - 5, 0)].any() and not sil[t][: max(y0 - 5, 0)].any()   # nothing outside
    empty = rc.second_person_silhouettes(frames[:1], [(0, 0, 40, 40)], margin=0)
    assert empty[0, :40, :40].all() and empty[0].sum() == 1600
