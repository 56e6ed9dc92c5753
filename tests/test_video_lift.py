"""Video -> 3D: decoding (PyAV), detector -> ViTPose -> tracks -> MPM, the CLI and the rendering.

Tiny randomly initialised RT-DETR / ViTPose models built from configs stand in for the Hub weights
(``tests/video_fixtures.py``); a short synthetic video is written in the test. Random detectors
find random boxes, so the exact tracking / lifting behaviour is checked with injected detector and
pose callables (the seam ``lift_video`` offers), and the real tiny models check the whole chain runs.
"""

import os

import numpy as np
import pytest
import torch

av = pytest.importorskip("av")

from transformers import pipeline  # noqa: E402

import modeling_mpm  # noqa: E402,F401
from modeling_mpm import MPMConfig, MPMForPoseLifting  # noqa: E402
from modeling_mpm.video.pipeline import (  # noqa: E402
    PersonDetector, ViTPoseEstimator, iter_video_frames, lift_video, video_info,
)
from video_fixtures import build_tiny_pose_models, write_synthetic_video  # noqa: E402

W, H = 128, 96


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny_models")
    det, pose = build_tiny_pose_models(str(d))
    torch.manual_seed(0)
    cfg = MPMConfig(num_frames=9, num_layers=1, hidden_size=32, intermediate_size=64, num_attention_heads=4,
                    reduce_strides=[3, 3], dropout=0.0)
    lifter_dir = str(d / "tiny-mpm")
    MPMForPoseLifting(cfg).eval().save_pretrained(lifter_dir)
    return {"detector": det, "pose": pose, "lifter": lifter_dir}


@pytest.fixture(scope="session")
def video(tmp_path_factory):
    return write_synthetic_video(str(tmp_path_factory.mktemp("video") / "walk.mp4"), frames=10, width=W, height=H)


def test_synthetic_video_decodes(video):
    info = video_info(video)
    assert (info["width"], info["height"], info["fps"]) == (W, H, 10.0)
    frames = list(iter_video_frames(video))
    assert len(frames) == 10 and frames[0].shape == (H, W, 3) and frames[0].dtype == np.uint8
    assert len(list(iter_video_frames(video, max_frames=3))) == 3


def test_whole_chain_with_tiny_hub_format_models(tiny_models, video, tmp_path):
    out = tmp_path / "res.npz"
    res = lift_video(video, tiny_models["lifter"], detector=tiny_models["detector"], pose_model=tiny_models["pose"],
                     detection_threshold=0.0, max_people=2, keypoint_threshold=0.0, batch_size=4,
                     output=str(out), progress=False, max_frames=6)
    assert res["num_frames"] == 6 and res["image_size"] == (W, H) and res["fps"] == 10.0
    assert res["tracks"], "the random detector with threshold 0 returns boxes in every frame"
    detected = np.zeros(6, dtype=int)
    for tid, tr in res["tracks"].items():
        n = len(tr["frames"])
        np.testing.assert_array_equal(tr["frames"], np.arange(tr["frames"][0], tr["frames"][0] + n))
        assert tr["pose_3d"].shape == (n, 17, 3) and np.isfinite(tr["pose_3d"]).all()
        assert tr["keypoints_coco"].shape == (n, 17, 3) and tr["valid"].shape == (n, 17)
        detected[tr["frames"][tr["detected"]]] += 1
    assert (detected == 2).all()   # max_people=2 boxes in every frame, each in exactly one track
    z = np.load(out)
    assert sorted(z["track_ids"].tolist()) == sorted(res["tracks"])
    t0 = int(z["track_ids"][0])
    np.testing.assert_array_equal(z[f"track{t0}_pose_3d"], res["tracks"][t0]["pose_3d"])
    assert set(res["timings"]) >= {"decode", "detect", "pose", "track", "lift"}


def test_tiny_detector_and_vitpose_outputs(tiny_models, video):
    frames = list(iter_video_frames(video, max_frames=3))
    det = PersonDetector(tiny_models["detector"], threshold=0.0, max_people=3)
    boxes = det(frames)
    assert len(boxes) == 3 and all(b["boxes"].shape == (3, 4) for b in boxes)
    assert all(np.all(np.diff(b["scores"]) <= 0) for b in boxes)            # sorted by score
    people = ViTPoseEstimator(tiny_models["pose"])(frames, [b["boxes"] for b in boxes[:2]] + [np.zeros((0, 4))])
    assert [len(p) for p in people] == [3, 3, 0]
    assert tuple(people[0][0]["keypoints"].shape) == (17, 2) and tuple(people[0][0]["scores"].shape) == (17,)
    with pytest.raises(ValueError, match="no 'person' class"):
        from transformers import AutoModelForObjectDetection
        m = AutoModelForObjectDetection.from_pretrained(tiny_models["detector"])
        m.config.id2label = {0: "cat", 1: "dog"}
        m.save_pretrained(tiny_models["detector"] + "-nopeople")
        import shutil
        for f in os.listdir(tiny_models["detector"]):
            if "preprocessor" in f:
                shutil.copy(os.path.join(tiny_models["detector"], f), tiny_models["detector"] + "-nopeople")
        PersonDetector(tiny_models["detector"] + "-nopeople")


def _walkers(t):
    """Two people with known keypoints: A walks right over all frames, B (left-moving) in frames 2-6."""
    rng = np.random.default_rng(t)
    out = []
    for cx, present in ((30 + 3 * t, True), (100 - 3 * t, 2 <= t <= 6)):
        if present:
            kp = np.stack([cx + rng.uniform(-8, 8, 17), rng.uniform(20, 80, 17)], 1).astype(np.float32)
            out.append((np.array([cx - 10, 15, cx + 10, 85], dtype=np.float64), kp,
                        rng.uniform(0.5, 1, 17).astype(np.float32)))
    return out


def test_injected_detector_and_pose_model_give_tracks_and_their_3d(tiny_models, video):
    seen = []

    def detector(images):
        assert 1 <= len(images) <= 3    # frames arrive batch by batch (batch_size=3), never the whole video
        res = []
        for img in images:
            t = len(seen)
            seen.append(img.shape)
            people = _walkers(t) if t != 4 else []            # nobody found in frame 4
            res.append({"boxes": np.array([p[0] for p in people]).reshape(-1, 4),
                        "scores": np.ones(len(people))})
        return res

    def pose_model(images, boxes):
        t0 = len(seen) - len(images)
        out = []
        for i, b in enumerate(boxes):
            people = _walkers(t0 + i)
            out.append([{"keypoints": torch.from_numpy(people[k][1]), "scores": torch.from_numpy(people[k][2]),
                         "bbox": torch.tensor([*bx[:2], *(bx[2:] - bx[:2])])} for k, bx in enumerate(b)])
        return out

    lifter = MPMForPoseLifting.from_pretrained(tiny_models["lifter"])
    res = lift_video(video, lifter, detector=detector, pose_model=pose_model, batch_size=3, progress=False,
                     keypoint_threshold=0.6)
    assert len(seen) == 10 and seen[0] == (H, W, 3)
    assert sorted(res["tracks"]) == [0, 1]
    a, b = res["tracks"][0], res["tracks"][1]
    np.testing.assert_array_equal(a["frames"], np.arange(10))
    np.testing.assert_array_equal(a["detected"], np.arange(10) != 4)
    np.testing.assert_array_equal(b["frames"], np.arange(2, 7))
    # the 3D of a track is the pose-lifting pipeline's on that person's keypoints (frame 4 missing)
    kp = np.full((10, 17, 3), np.nan)
    for t in range(10):
        if t != 4:
            p = _walkers(t)[0]
            kp[t] = np.concatenate([p[1], p[2][:, None]], 1)
    pipe = pipeline("pose-lifting", model=lifter)
    # as lift_video lifts a track: a 9-frame window -> seq2frame by default
    ref = pipe(kp, image_size=(W, H), keypoint_format="coco", confidence_threshold=0.6, mode="seq2frame",
               fix_left_right_swaps=True, flip_augmentation=True, constant_bones=True, match_2d=True)
    np.testing.assert_allclose(a["pose_3d"], ref["pose_3d"], atol=1e-6)
    np.testing.assert_array_equal(a["valid"], ref["valid"])
    assert not a["valid"][4].any()
    seen.clear()
    plain = lift_video(video, lifter, detector=detector, pose_model=pose_model, batch_size=3, progress=False,
                       keypoint_threshold=0.6, match_2d=False, constant_bones=False, mode="seq2seq")["tracks"][0]["pose_3d"]
    ref = pipe(kp, image_size=(W, H), keypoint_format="coco", confidence_threshold=0.6, mode="seq2seq",
               fix_left_right_swaps=True, flip_augmentation=True)
    np.testing.assert_allclose(plain, ref["pose_3d"], atol=1e-6)
    assert np.abs(plain - a["pose_3d"]).max() > 1e-3


def test_cli_writes_npz_and_side_by_side_render(tiny_models, tmp_path):
    from modeling_mpm.cli import main

    clip = write_synthetic_video(str(tmp_path / "short.mp4"), frames=3, width=W, height=H)
    out, mp4 = tmp_path / "o.npz", tmp_path / "o.mp4"
    rc = main(["lift-video", clip, "-o", str(out), "--render", str(mp4), "--model", tiny_models["lifter"],
               "--detector", tiny_models["detector"], "--pose-model", tiny_models["pose"],
               "--detection-threshold", "0", "--max-people", "1", "--keypoint-threshold", "0",
               "--batch-size", "2", "--no-progress"])
    assert rc == 0
    z = np.load(out)
    assert int(z["num_frames"]) == 3 and z["image_size"].tolist() == [W, H]
    info = video_info(str(mp4))
    assert info["width"] > info["height"] > 0          # 2D | 3D side by side
    frames = list(iter_video_frames(str(mp4)))
    assert len(frames) == 3
    left, right = frames[0][:, : frames[0].shape[1] // 2], frames[0][:, frames[0].shape[1] // 2:]
    assert left.std() > 5 and right.std() > 5          # both panels drawn
    assert not [f for f in os.listdir(tmp_path) if ".tmp" in f]


def test_cli_errors(tiny_models, tmp_path, capsys):
    from modeling_mpm.cli import main

    rc = main(["lift-video", str(tmp_path / "none.mp4"), "-o", str(tmp_path / "o.npz"), "--model",
               tiny_models["lifter"]])
    assert rc == 2 and "no video file" in capsys.readouterr().err
    (tmp_path / "junk.mp4").write_bytes(bytes(range(256)) * 8)  # not a video: a sentence, exit 2
    rc = main(["lift-video", str(tmp_path / "junk.mp4"), "-o", str(tmp_path / "o.npz"), "--model",
               tiny_models["lifter"]])
    assert rc == 2 and "junk.mp4: not a readable video" in capsys.readouterr().err
    assert not (tmp_path / "o.npz").exists()
    with pytest.raises(ValueError, match="batch_size"):
        lift_video(str(tmp_path / "x.mp4"), tiny_models["lifter"], batch_size=0)


def test_readme_video_snippet_runs(tiny_models, video):
    """The documented transformers chain (docs/inference.md) runs as written, with the tiny models in
    place of the Hub ids."""
    import re

    from conftest import REPO

    doc = (REPO / "docs" / "inference.md").read_text()
    section = doc[doc.index("### RT-DETR -> ViTPose -> MPM by hand"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    for real, local in (("PekingU/rtdetr_r50vd_coco_o365", tiny_models["detector"]),
                        ("usyd-community/vitpose-base-simple", tiny_models["pose"]),
                        ("demo_out/mpm-lift", tiny_models["lifter"]), ("clip.mp4", video),
                        ("threshold=0.5", "threshold=0.0"),    # random detector scores are ~0.3
                        ('== 0].numpy()', '== 0].numpy()[:2]')):  # 2 of its random boxes: fast
        assert real in code, real
        code = code.replace(real, local)
    ns = {}
    exec(compile(code, "docs/inference.md", "exec"), ns)
    tracks = ns["tracks"]
    assert len(ns["people"]) == 10 and tracks
    for t in tracks:
        assert t["pose_3d"].shape == (len(t["frames"]), 17, 3) and np.isfinite(t["pose_3d"]).all()


def test_default_mode_follows_the_window_length():
    """seq2frame for short windows (the shipped general lifter's 27 frames), seq2seq for the paper's 243."""
    from types import SimpleNamespace

    from modeling_mpm.pretrained import GENERAL_LIFTER
    from modeling_mpm.video.pipeline import SEQ2FRAME_MAX_WINDOW, default_lift_mode

    general = MPMForPoseLifting.from_pretrained(GENERAL_LIFTER)
    assert default_lift_mode(general) == "seq2frame"
    assert default_lift_mode(SimpleNamespace(config=SimpleNamespace(num_frames=SEQ2FRAME_MAX_WINDOW))) == "seq2frame"
    assert default_lift_mode(SimpleNamespace(config=SimpleNamespace(num_frames=243))) == "seq2seq"
