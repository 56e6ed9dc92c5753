"""Offline video -> 3D with MediaPipe BlazePose, on real frames.

``tests/data/pose2sim_cam01.mp4`` / ``pose2sim_cam03.mp4``: 12 real frames (540 x 960, 15 fps) of a
person throwing, from the pose2sim demo capture (BSD-3-Clause, see DATA_NOTES.md). The tests that
run MediaPipe skip (with the reason) only when ``mediapipe`` cannot be imported; the offline error
of the Hub path, the package exports and the missing-MediaPipe message need no MediaPipe.
"""

import os
import sys

import numpy as np
import pytest

pytest.importorskip("av")

from conftest import REPO  # noqa: E402

from modeling_mpm.keypoints import BLAZEPOSE_LANDMARKS  # noqa: E402

try:
    import mediapipe  # noqa: F401

    _NO_MEDIAPIPE = None
except ImportError as e:  # pragma: no cover - the dev extra installs it
    _NO_MEDIAPIPE = f"mediapipe cannot be imported ({e}); pip install 'modeling-mpm[mediapipe]'"

needs_mediapipe = pytest.mark.skipif(_NO_MEDIAPIPE is not None, reason=_NO_MEDIAPIPE or "")

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CAM01 = str(REPO / "tests" / "data" / "pose2sim_cam01.mp4")
CAM03 = str(REPO / "tests" / "data" / "pose2sim_cam03.mp4")
I = {n: i for i, n in enumerate(BLAZEPOSE_LANDMARKS)}
BODY = [I[n] for n in ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
                       "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")]


@pytest.fixture(scope="module")
def lifter_dir(tmp_path_factory, tiny_lifter_9):
    d = str(tmp_path_factory.mktemp("lifter") / "tiny-mpm")
    tiny_lifter_9.save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def frames01():
    from modeling_mpm.video.pipeline import iter_video_frames

    return list(iter_video_frames(CAM01))


@pytest.fixture(scope="module")
def blaze01(frames01):
    from modeling_mpm.video import BlazePoseEstimator

    with BlazePoseEstimator() as est:
        return est(frames01)


# ----------------------------------------------------------------------------- no MediaPipe needed
def test_package_exports_stay_the_function_and_classes():
    import modeling_mpm.video.pipeline  # noqa: F401  (the submodule import must not shadow the function)
    from modeling_mpm.video import BlazePoseEstimator, PersonDetector, ViTPoseEstimator, lift_video
    from modeling_mpm.video.pipeline import lift_video as lv

    assert callable(lift_video) and lift_video is lv
    assert PersonDetector.__name__ == "PersonDetector" and ViTPoseEstimator.__name__ == "ViTPoseEstimator"
    assert BlazePoseEstimator.__module__ == "modeling_mpm.video.blazepose"


def test_missing_mediapipe_is_one_sentence(monkeypatch):
    from modeling_mpm.video import BlazePoseEstimator

    monkeypatch.setitem(sys.modules, "mediapipe", None)  # import mediapipe -> ImportError
    with pytest.raises(ImportError, match=r'^BlazePose needs MediaPipe: pip install "modeling-mpm\[mediapipe\]"$'):
        BlazePoseEstimator()


def test_hub_models_offline_are_one_sentence(lifter_dir, tmp_path, capsys):
    """HF_HUB_OFFLINE=1 (conftest): transformers raises at once; the CLI prints one line, exit 2."""
    from modeling_mpm.cli import main
    from modeling_mpm.video import lift_video

    assert os.environ["HF_HUB_OFFLINE"] == "1"
    rc = main(["lift-video", CAM01, "-o", str(tmp_path / "o.npz"), "--model", lifter_dir, "--no-progress",
               "--pose-model", "usyd-community/vitpose-base-simple"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert "'PekingU/rtdetr_r50vd_coco_o365'" in err and "--pose-model mediapipe" in err and "local folder" in err
    assert "Traceback" not in err and not (tmp_path / "o.npz").exists()
    with pytest.raises(OSError, match="ViTPose model 'usyd-community/vitpose-base-simple'.*pose_model='mediapipe'"):
        lift_video(CAM01, lifter_dir, detector=lambda imgs: [{"boxes": np.zeros((0, 4))} for _ in imgs],
                   pose_model="usyd-community/vitpose-base-simple", progress=False)
    with pytest.raises(OSError, match="MPM lifter 'nobody/no-lifter'.*local folder"):
        lift_video(CAM01, "nobody/no-lifter", pose_model="mediapipe", progress=False)
    with pytest.raises(OSError, match=r"no folder at '\./no/such/dir' for the ViTPose model"):
        lift_video(CAM01, lifter_dir, pose_model="./no/such/dir",
                   detector=lambda imgs: [{"boxes": np.zeros((0, 4))} for _ in imgs], progress=False)


# ----------------------------------------------------------------------------- BlazePose on real frames
@needs_mediapipe
def test_blazepose_finds_the_person_in_every_real_frame(frames01, blaze01):
    h, w = frames01[0].shape[:2]
    assert (w, h) == (540, 960) and len(blaze01) == 12
    for r in blaze01:
        kp, world = r["keypoints"], r["world"]
        assert r["detected"] is True
        assert kp.shape == world.shape == (33, 3) and kp.dtype == world.dtype == np.float32
        assert np.isfinite(kp).all() and np.isfinite(world).all()
        assert ((kp[:, 2] >= 0) & (kp[:, 2] <= 1)).all() and (kp[BODY, 2] > 0.5).all()
        body = kp[BODY, :2]
        assert (body >= 0).all() and (body[:, 0] < w).all() and (body[:, 1] < h).all()   # inside the image
        assert kp[[I["left_ankle"], I["right_ankle"]], 1].min() > kp[[I["left_hip"], I["right_hip"]], 1].max()
        assert kp[[I["left_hip"], I["right_hip"]], 1].min() > kp[[I["left_shoulder"], I["right_shoulder"]], 1].max()
        shoulders = np.linalg.norm(kp[I["left_shoulder"], :2] - kp[I["right_shoulder"], :2])
        assert 25 < shoulders < 150, shoulders        # the person is ~450 px tall here
        # world landmarks: metres, origin between the hips, a human-sized leg
        np.testing.assert_allclose((world[I["left_hip"]] + world[I["right_hip"]]) / 2, 0, atol=0.05)
        thigh = np.linalg.norm(world[I["left_hip"]] - world[I["left_knee"]])
        assert 0.25 < thigh < 0.6, thigh


@needs_mediapipe
def test_blazepose_reset_close_and_bad_input(frames01, blaze01):
    from modeling_mpm.video import BlazePoseEstimator

    est = BlazePoseEstimator()
    first = est(frames01[:3])
    est.reset()                                   # a new video: the same frames give the same landmarks
    again = est(frames01[:3])
    for a, b, ref in zip(first, again, blaze01[:3]):
        np.testing.assert_allclose(a["keypoints"][:, :2], b["keypoints"][:, :2], atol=1.0)
        np.testing.assert_allclose(a["keypoints"][:, :2], ref["keypoints"][:, :2], atol=1.0)
    nobody = est([np.zeros((64, 48, 3), np.uint8)])[0]
    assert nobody["detected"] is False and np.isnan(nobody["keypoints"]).all() and np.isnan(nobody["world"]).all()
    with pytest.raises(TypeError, match="uint8"):
        est([frames01[0].astype(np.float32)])
    with pytest.raises(ValueError, match=r"\(height, width, 3\)"):
        est([frames01[0][..., 0]])
    with pytest.raises(ValueError, match=r"use \[frame\]"):
        est(frames01[0])
    est.close()
    est.close()                                   # twice is fine
    with pytest.raises(ValueError, match="closed"):
        est(frames01[:1])
    with pytest.raises(ValueError, match="model_complexity"):
        BlazePoseEstimator(model_complexity=3)
    heavy = os.path.join(os.path.dirname(mediapipe.__file__), "modules", "pose_landmark", "pose_landmark_heavy.tflite")
    if not os.path.exists(heavy):  # not in the wheel: a sentence, never a download
        with pytest.raises(ValueError, match="does not ship .*model_complexity=1"):
            BlazePoseEstimator(model_complexity=2)
    with pytest.raises(ValueError, match="min_detection_confidence"):
        BlazePoseEstimator(min_detection_confidence=1.5)


@needs_mediapipe
def test_blazepose_segmentation_is_the_persons_silhouette(frames01, blaze01):
    from modeling_mpm.video import BlazePoseEstimator

    with BlazePoseEstimator(enable_segmentation=True) as est:
        res = est(frames01[:4])
        nobody = est([np.zeros((64, 48, 3), np.uint8)])[0]
    h, w = frames01[0].shape[:2]
    for r, ref in zip(res, blaze01[:4]):
        seg = r["segmentation"]
        assert seg.shape == (h, w) and seg.dtype == np.float32 and 0 <= seg.min() and seg.max() <= 1
        np.testing.assert_allclose(r["keypoints"][:, :2], ref["keypoints"][:, :2], atol=1.0)  # landmarks unchanged
        inside = seg > 0.5
        assert 0.02 < inside.mean() < 0.3, inside.mean()     # one standing person ~450 px tall in 540 x 960
        xy = np.round(r["keypoints"][BODY, :2]).astype(int)
        assert inside[xy[:, 1], xy[:, 0]].mean() >= 0.8      # the body landmarks lie on the silhouette
        ys, xs = np.nonzero(inside)                          # and the silhouette on the body's box
        box = r["keypoints"][BODY, :2]
        assert np.median(xs) == pytest.approx(np.median(box[:, 0]), abs=60)
        assert box[:, 1].min() - 120 < np.median(ys) < box[:, 1].max()
    assert nobody["detected"] is False and nobody["segmentation"].shape == (64, 48) and not nobody["segmentation"].any()
    assert "segmentation" not in blaze01[0]
    with pytest.raises(TypeError, match="enable_segmentation"):
        BlazePoseEstimator(enable_segmentation="yes")


@needs_mediapipe
def test_blend_world_landmarks_on_real_landmarks(blaze01):
    from modeling_mpm.keypoints import keypoints_to_h36m
    from modeling_mpm.metrics import procrustes_align
    from modeling_mpm.video.blazepose import BLAZEPOSE_LANDMARKS, blend_world_landmarks

    world = np.stack([r["world"] for r in blaze01]).astype(np.float64)              # (12, 33, 3) metres
    w17 = keypoints_to_h36m(world, np.isfinite(world).all(-1), "blazepose")[0]
    c, s_ = np.cos(0.7), np.sin(0.7)
    R = np.array([[c, 0, s_], [0, 1, 0], [-s_, 0, c]])
    same = 1.1 * w17 @ R.T
    same -= same[:, :1]                                   # the same body, turned, scaled, root-relative
    for weight in (0.0, 0.2, 1.0):
        np.testing.assert_allclose(blend_world_landmarks(same, world, weight), same, atol=1e-5)
    other = same + np.random.default_rng(0).normal(0, 0.05, same.shape)
    other -= other[:, :1]
    aligned = procrustes_align(w17, other)
    expect = 0.7 * other + 0.3 * aligned
    out = blend_world_landmarks(other, world, 0.3)
    assert out.dtype == np.float32 and np.abs(out[:, 0]).max() < 1e-6          # root-relative
    np.testing.assert_allclose(out, expect - expect[:, :1], atol=1e-5)
    np.testing.assert_allclose(blend_world_landmarks(other, world, 0.0), other, atol=1e-6)
    # BlazePose's 3D with its 2D's left/right swaps (arms in frame 2, legs in 5, both in 7): relabelled per frame
    swapped = world.copy()
    pairs = {"arm": ("shoulder", "elbow", "wrist"), "leg": ("hip", "knee", "ankle")}
    for frame, parts in ((2, ("arm",)), (5, ("leg",)), (7, ("arm", "leg"))):
        for part in parts:
            left = [BLAZEPOSE_LANDMARKS.index(f"left_{j}") for j in pairs[part]]
            right = [BLAZEPOSE_LANDMARKS.index(f"right_{j}") for j in pairs[part]]
            swapped[frame, left + right] = world[frame, right + left]
    np.testing.assert_allclose(blend_world_landmarks(other, swapped, 0.3), out, atol=1e-5)
    gone = world.copy()
    gone[3] = np.nan                                      # BlazePose lost the person in frame 3: the lifter's 3D
    np.testing.assert_allclose(blend_world_landmarks(other, gone, 0.3)[3], other[3], atol=1e-6)
    for bad, err in ((True, TypeError), ("0.2", TypeError), (1.5, ValueError), (-0.1, ValueError)):
        with pytest.raises(err, match="weight"):
            blend_world_landmarks(other, world, bad)
    with pytest.raises(ValueError, match=r"world must be \(frames, 33, 3\)"):
        blend_world_landmarks(other, world[:5])
    with pytest.raises(ValueError, match=r"pose_3d must be \(frames, 17, 3\)"):
        blend_world_landmarks(other[..., :2], world)


@needs_mediapipe
def test_lift_video_with_mediapipe_writes_npz_and_render(lifter_dir, tmp_path):
    from modeling_mpm.video import lift_video
    from modeling_mpm.video.pipeline import iter_video_frames, video_info

    out, mp4 = tmp_path / "cam03.npz", tmp_path / "cam03.mp4"
    res = lift_video(CAM03, lifter_dir, pose_model="mediapipe", output=str(out), render=str(mp4), progress=False)
    assert res["num_frames"] == 12 and res["image_size"] == (544, 960) and list(res["tracks"]) == [0]
    tr = res["tracks"][0]
    n = len(tr["frames"])
    assert n >= 10 and tr["frames"].tolist() == list(range(tr["frames"][0], tr["frames"][0] + n))
    assert tr["detected"][0] and tr["detected"][-1] and tr["detected"].sum() >= 10  # first..last seen frame
    assert tr["pose_3d"].shape == (n, 17, 3) and np.isfinite(tr["pose_3d"]).all()
    assert tr["keypoints_2d"].shape == (n, 17, 2) and tr["valid"].shape == (n, 17)
    assert tr["keypoints_blazepose"].shape == tr["world_blazepose"].shape == (n, 33, 3)
    assert "keypoints_coco" not in tr and tr["boxes"].shape == (n, 4)
    assert res["timings"]["detect"] == 0.0 and res["timings"]["pose"] > 0
    z = np.load(out)
    assert z["track_ids"].tolist() == [0] and z["track0_pose_3d"].shape == (n, 17, 3)
    np.testing.assert_array_equal(z["track0_world_blazepose"], tr["world_blazepose"])
    assert video_info(str(mp4))["width"] > video_info(str(mp4))["height"]          # 2D | 3D side by side
    assert len(list(iter_video_frames(str(mp4)))) == 12
    assert not [f for f in os.listdir(tmp_path) if ".tmp" in f]
    # the 3D is the lifter's, matched to its 2D, with BlazePose's own 3D blended in (0 = the lifter's alone)
    from modeling_mpm.video.blazepose import WORLD_LANDMARKS_WEIGHT, blend_world_landmarks

    alone = lift_video(CAM03, lifter_dir, pose_model="mediapipe", blazepose_3d_weight=0.0, progress=False)["tracks"][0]
    np.testing.assert_allclose(tr["pose_3d"], blend_world_landmarks(alone["pose_3d"], tr["world_blazepose"],
                                                                    WORLD_LANDMARKS_WEIGHT), atol=1e-5)
    assert np.abs(tr["pose_3d"] - alone["pose_3d"]).max() > 1e-3
    with pytest.raises(ValueError, match="weight must be in"):
        lift_video(CAM03, lifter_dir, pose_model="mediapipe", blazepose_3d_weight=2.0)


@needs_mediapipe
def test_lift_video_takes_an_estimator_and_the_cli_runs(lifter_dir, tmp_path, capsys, blaze01):
    from modeling_mpm.cli import main
    from modeling_mpm.video import BlazePoseEstimator, lift_video

    with BlazePoseEstimator() as est:
        est([np.zeros((64, 48, 3), np.uint8)])            # state from an earlier "video" is reset
        res = lift_video(CAM01, lifter_dir, pose_model=est, max_frames=6, progress=False)
        tr = res["tracks"][0]
        assert tr["frames"].tolist() == list(range(6)) and tr["detected"].all()
        np.testing.assert_allclose(tr["keypoints_blazepose"][:, :, :2],
                                   np.stack([r["keypoints"][:, :2] for r in blaze01[:6]]), atol=1.0)
        assert est([np.zeros((64, 48, 3), np.uint8)])      # still open: lift_video closes only its own
    with pytest.raises(ValueError, match="leave detector out"):
        lift_video(CAM01, lifter_dir, detector="PekingU/rtdetr_r50vd_coco_o365", pose_model="mediapipe")

    # the README's offline command, as written, with the clip (and the lifter that ships in the package)
    readme = (REPO / "README.md").read_text()
    block = readme[readme.index("## Video to 3D offline"):].split("```bash\n", 1)[1].split("```", 1)[0]
    line = [ln for ln in block.splitlines() if ln.startswith("mpm lift-video")][0]
    out, mp4 = tmp_path / "o.npz", tmp_path / "o.mp4"
    for real, local in (("clip.mp4", CAM01), ("clip_3d.npz", str(out)), ("clip_3d.mp4", str(mp4))):
        assert real in line, real
        line = line.replace(real, local)
    rc = main(line.split()[1:] + ["--max-frames", "4", "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    assert "4 frames, 1 track(s) {0: 4}" in capsys.readouterr().out
    z = np.load(out)
    assert z["track0_pose_3d"].shape == (4, 17, 3) and np.isfinite(z["track0_pose_3d"]).all()
    assert z["track0_keypoints_blazepose"].shape == (4, 33, 3) and mp4.exists()


@needs_mediapipe
def test_bench_video_speed_smoke(tmp_path):
    """bench/bench_video_speed.py runs on the shipped clip and writes its JSON (one round)."""
    import importlib
    import json

    import torch

    sys.path.insert(0, str(REPO / "bench"))
    threads = torch.get_num_threads()
    try:
        bench = importlib.import_module("bench_video_speed")
        assert bench.main(["--rounds", "1", "--threads", "1", "--out", str(tmp_path / "v.json")]) == 0
    finally:
        sys.path.remove(str(REPO / "bench"))
        torch.set_num_threads(threads)
    res = json.loads((tmp_path / "v.json").read_text())
    assert res["video"]["frames"] == 12 and res["a_fps"] > 0 and res["b_fps"] > 0
    assert res["ratio_b_over_a"] == pytest.approx(res["b_fps"] / res["a_fps"]) and res["target"] == 0.8


@needs_mediapipe
def test_streaming_blends_blazepose_world_landmarks(lifter_dir, blaze01):
    """PoseLiftingStream with each frame's world landmarks = the same stream without them, blended afterwards
    (as lift_video does: match_2d first, then the blend); frames without landmarks keep the lifted 3D."""
    from modeling_mpm.video import PoseLiftingStream
    from modeling_mpm.video.blazepose import WORLD_LANDMARKS_WEIGHT, blend_world_landmarks

    kp = np.stack([r["keypoints"] for r in blaze01])
    world = np.stack([r["world"] for r in blaze01])
    world[3] = np.nan                                      # BlazePose lost the person's 3D in one frame
    stream = PoseLiftingStream(lifter_dir, image_size=(540, 960), keypoint_format="blazepose", latency=4,
                               match_2d=True)
    assert stream.blazepose_3d_weight == WORLD_LANDMARKS_WEIGHT
    lifted = stream.run(kp)
    blended = stream.run(kp, world)
    np.testing.assert_allclose(blended, blend_world_landmarks(lifted, world, WORLD_LANDMARKS_WEIGHT), atol=1e-5)
    np.testing.assert_array_equal(blended[3], lifted[3])
    assert np.abs(blended - lifted).max() > 1e-3           # the blend changed the other frames
    off = PoseLiftingStream(lifter_dir, image_size=(540, 960), keypoint_format="blazepose", latency=4,
                            match_2d=True, blazepose_3d_weight=0)
    np.testing.assert_array_equal(off.run(kp, world), lifted)
    with pytest.raises(ValueError, match=r"world must be one frame's BlazePose world landmarks, shape \(33, 3\)"):
        stream.push(kp[0], world[0, :17])
    with pytest.raises(TypeError, match="world must be BlazePose world landmarks"):
        stream.push(kp[0], {"x": 1})
    with pytest.raises(ValueError, match="world has 2 frames but keypoints 12"):
        stream.run(kp, world[:2])
    with pytest.raises(ValueError, match=r"weight must be in \[0, 1\]"):
        PoseLiftingStream(lifter_dir, image_size=(540, 960), blazepose_3d_weight=1.5)
