"""ViTPose post-processing output into the pose-lifting pipeline, and tracking people across frames."""

import numpy as np
import pytest
import torch
from transformers import pipeline

import modeling_mpm  # noqa: F401  (registers the pipelines)
from modeling_mpm.video import IoUTracker, group_tracks, is_pose_estimation_output, track_boxes
from modeling_mpm.video.tracking import box_iou
from modeling_mpm.video.vitpose import frames_to_detections, pose_estimation_to_tracks

T = 9
W, H = 640, 480


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def pipe(tiny_lifter_9):
    return pipeline("pose-lifting", model=tiny_lifter_9)


def person(centre, rng, scale=60.0, as_tensor=True):
    """A ViTPose post-processing person dict (float32 tensors like transformers returns)."""
    kp = (np.asarray(centre) + rng.normal(0, scale / 3, (17, 2))).astype(np.float32)
    sc = rng.uniform(0.2, 1.0, 17).astype(np.float32)
    x0, y0 = kp.min(0) - 5
    w, h = kp.max(0) - kp.min(0) + 10
    box = np.array([x0, y0, w, h], dtype=np.float32)
    conv = torch.from_numpy if as_tensor else (lambda a: a)
    return {"keypoints": conv(kp), "scores": conv(sc), "labels": conv(np.arange(17)), "bbox": conv(box)}


def as_array(people):
    return np.concatenate([np.asarray(people["keypoints"], dtype=np.float64),
                           np.asarray(people["scores"], dtype=np.float64)[:, None]], 1)


@pytest.mark.parametrize("as_tensor", [True, False])
def test_vitpose_output_and_the_equivalent_array_give_identical_3d(pipe, as_tensor):
    rng = np.random.default_rng(1)
    frames = [[person((320 + 3 * t, 240), rng, as_tensor=as_tensor)] for t in range(14)]
    frames[4] = []   # nobody detected in frame 4 -> all its joints missing
    arr = np.full((14, 17, 3), np.nan)
    for t, ppl in enumerate(frames):
        if ppl:
            arr[t] = as_array(ppl[0])
    kw = dict(image_size=(W, H), confidence_threshold=0.3, mode="seq2seq")
    a = pipe(frames, **kw)
    b = pipe(arr, keypoint_format="coco", **kw)
    assert set(a) == {"pose_3d", "valid"}
    np.testing.assert_array_equal(a["pose_3d"], b["pose_3d"])
    np.testing.assert_array_equal(a["valid"], b["valid"])
    assert not a["valid"][4].any() and a["valid"][3].any()
    # confidences come from "scores": a joint below the threshold is missing
    low = np.flatnonzero(arr[0, :, 2] < 0.3)
    from modeling_mpm.skeleton import COCO_17, H36M_17
    limb = [j for j in low if COCO_17.joint_names[j] in H36M_17.joint_names]
    for j in limb:
        assert not a["valid"][0, H36M_17.joint_names.index(COCO_17.joint_names[j])]


def test_several_people_give_one_result_per_track(pipe):
    rng = np.random.default_rng(2)
    frames = []
    for t in range(12):
        ppl = [person((150 + 2 * t, 240), rng, scale=30)]
        if 3 <= t < 10:
            ppl.append(person((480 - 2 * t, 240), rng, scale=30))
        frames.append(ppl[::-1] if t % 2 else ppl)   # order within a frame does not matter
    res = pipe(frames, image_size=(W, H))
    assert isinstance(res, list) and [r["track_id"] for r in res] == [0, 1]
    np.testing.assert_array_equal(res[0]["frames"], np.arange(12))
    np.testing.assert_array_equal(res[1]["frames"], np.arange(3, 10))
    assert res[1]["pose_3d"].shape == (7, 17, 3)
    # each track's 3D is the pipeline's on that person's keypoints alone
    second = np.stack([as_array(next(p for p in frames[t] if float(p["keypoints"][:, 0].mean()) > 320))
                       for t in range(3, 10)])
    np.testing.assert_array_equal(res[1]["pose_3d"], pipe(second, image_size=(W, H), keypoint_format="coco")["pose_3d"])
    # track_people=True always gives the per-track list, False refuses several people
    single = [[person((300, 240), rng)] for _ in range(5)]
    one = pipe(single, image_size=(W, H), track_people=True)
    assert len(one) == 1 and one[0]["track_id"] == 0
    with pytest.raises(ValueError, match="several people"):
        pipe(frames, image_size=(W, H), track_people=False)


def test_vitpose_input_errors(pipe):
    rng = np.random.default_rng(3)
    with pytest.raises(ValueError, match="flat list of person dicts"):
        pipe([person((300, 200), rng)], image_size=(W, H))
    bad = person((300, 200), rng)
    bad["keypoints"] = bad["keypoints"][:10]
    with pytest.raises(ValueError, match="10 joints"):
        pipe([[bad]], image_size=(W, H))
    with pytest.raises(ValueError, match="COCO-17"):
        pipe([[person((300, 200), rng)]], image_size=(W, H), keypoint_format="h36m")
    assert not is_pose_estimation_output([[], []])
    assert not is_pose_estimation_output(np.zeros((3, 17, 2)).tolist())


def test_wholebody_keeps_the_coco_body_joints():
    rng = np.random.default_rng(4)
    p = person((300, 200), rng, as_tensor=False)
    wb = {"keypoints": np.concatenate([p["keypoints"], rng.normal(size=(116, 2))]),
          "scores": np.concatenate([p["scores"], np.ones(116)]), "bbox": p["bbox"]}
    d = frames_to_detections([[wb]])[0]
    np.testing.assert_array_equal(d["keypoints"][0], as_array(p))
    np.testing.assert_allclose(d["boxes"][0], [p["bbox"][0], p["bbox"][1], p["bbox"][0] + p["bbox"][2],
                                               p["bbox"][1] + p["bbox"][3]])


# ----------------------------------------------------------------------------- tracking
def test_box_iou():
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10]])
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [np.nan] * 4])
    np.testing.assert_allclose(box_iou(a, b), [[1 / 3, 0, 0], [1 / 3, 0, 0]])


def test_iou_tracker_keeps_ids_through_order_changes_gaps_and_crossing_boxes():
    tr = IoUTracker(min_iou=0.3, max_missed=2)
    left = lambda t: [10 + t, 10, 60 + t, 110]      # noqa: E731
    right = lambda t: [200 - t, 10, 250 - t, 110]   # noqa: E731
    assert tr.update(np.array([left(0), right(0)])).tolist() == [0, 1]
    assert tr.update(np.array([right(1), left(1)])).tolist() == [1, 0]
    assert tr.update(np.zeros((0, 4))).tolist() == []               # nobody this frame
    assert tr.update(np.array([left(3)])).tolist() == [0]          # back after a gap
    for t in range(4, 7):                                          # right is gone > max_missed frames
        tr.update(np.array([left(t)]))
    assert tr.update(np.array([right(7), left(7)])).tolist() == [2, 0]  # a new id, never reused
    assert tr.update(np.array([[400, 300, 450, 400]])).tolist() == [3]  # far away: new track


def test_group_tracks_fill_gaps_with_missing():
    dets = [{"keypoints": np.full((n, 17, 3), t, dtype=float), "boxes": np.zeros((n, 4))}
            for t, n in enumerate([1, 0, 2, 1])]
    ids = [np.array([5]), np.array([], dtype=int), np.array([5, 7]), np.array([7])]
    tracks = group_tracks(dets, ids)
    assert list(tracks) == [5, 7]
    np.testing.assert_array_equal(tracks[5]["frames"], [0, 1, 2])
    np.testing.assert_array_equal(tracks[5]["detected"], [True, False, True])
    assert np.isnan(tracks[5]["keypoints"][1]).all() and (tracks[5]["keypoints"][2] == 2).all()
    np.testing.assert_array_equal(tracks[7]["frames"], [2, 3])
    assert list(group_tracks(dets, ids, min_track_frames=2)) == [5, 7]
    assert list(group_tracks(dets, [np.array([5]), ids[1], np.array([5, 8]), np.array([9])], 2)) == [5]


def test_custom_tracker_is_used():
    class Every(object):   # gives each box of a frame the id of its position
        def update(self, boxes):
            return np.arange(len(boxes))
    rng = np.random.default_rng(5)
    frames = [[person((100, 100), rng), person((400, 300), rng)] for _ in range(3)]
    tracks = pose_estimation_to_tracks(frames, tracker=Every())
    assert list(tracks) == [0, 1] and tracks[1]["detected"].all()
    with pytest.raises(ValueError, match="ids for 2 boxes"):
        track_boxes([np.zeros((2, 4))], tracker=type("Bad", (), {"update": lambda self, b: [0]})())
