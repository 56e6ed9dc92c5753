"""PoseLiftingStream: live lifting one frame at a time, against the offline lifter."""

import numpy as np
import pytest
import torch

from modeling_mpm.inference import lift_sequence
from modeling_mpm.keypoints import prepare_keypoints
from modeling_mpm.video import PoseLiftingStream

T = 9
W, H = 640, 480


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def lifter(tiny_lifter_9):
    return tiny_lifter_9


@pytest.fixture(scope="module")
def coco_sequence():
    rng = np.random.default_rng(0)
    F = 23
    kp = np.concatenate([rng.uniform([100, 50], [540, 430], (F, 17, 2)), rng.uniform(0.4, 1.0, (F, 17, 1))], -1)
    kp[3, :5, 2] = 0.1          # occluded joints
    kp[7, 9:11] = np.nan        # undetected joints
    return kp


def _prep(kp):
    return prepare_keypoints(kp, (W, H), "coco", 0.3)


def test_half_window_latency_equals_offline_seq2frame(lifter, coco_sequence):
    """Latency = half the window reads the centre head on the same edge-padded windows as the
    paper's seq2frame protocol: identical 3D for every frame (start and end included)."""
    prep = _prep(coco_sequence)
    ref = lift_sequence(lifter, prep["pose_2d"], prep["missing"], mode="seq2frame")
    stream = PoseLiftingStream(lifter, (W, H), "coco", latency=T // 2, confidence_threshold=0.3)
    assert stream.use_center_head
    out = stream.run(coco_sequence)
    assert out.shape == ref.shape == (len(coco_sequence), 17, 3)
    np.testing.assert_allclose(out, ref, atol=2e-5)


@pytest.mark.parametrize("latency", [0, 2])
def test_low_latency_reads_the_all_frames_head_at_its_slot(lifter, coco_sequence, latency):
    prep = _prep(coco_sequence)
    x, m = torch.as_tensor(prep["pose_2d"]), torch.as_tensor(prep["missing"])
    F = len(coco_sequence)
    stream = PoseLiftingStream(lifter, (W, H), "coco", latency=latency, confidence_threshold=0.3)
    got = stream.run(coco_sequence)
    slot = T - 1 - latency
    for t in (0, 5, 14, F - 1):  # window ends at t + latency (clipped: edge padding at both ends)
        idx = np.clip(t - slot + np.arange(T), 0, F - 1)
        with torch.no_grad():
            ref = lifter(pose_2d=x[idx][None], spatial_mask=m[idx][None]).pose_3d[0, slot].numpy()
        ref[0] = 0.0
        np.testing.assert_allclose(got[t], ref, atol=2e-5)


def test_push_returns_frames_in_order_after_the_latency(lifter, coco_sequence):
    stream = PoseLiftingStream(lifter, (W, H), "coco", latency=3, confidence_threshold=0.3)
    outs = [stream.push(k) for k in coco_sequence[:6]]
    assert outs[:3] == [None, None, None]
    assert [o["frame"] for o in outs[3:]] == [0, 1, 2]
    # frame 3 had 5 joints below the threshold -> their H36M joints are reported missing
    rest = stream.flush()
    assert [o["frame"] for o in rest] == [3, 4, 5]
    assert not rest[0]["valid"].all() and rest[1]["valid"].all()
    assert rest[0]["pose_3d"].shape == (17, 3) and rest[0]["pose_3d"].dtype == np.float32
    assert np.all(rest[0]["pose_3d"][0] == 0)  # root-relative


def test_each_frame_is_embedded_once(lifter, coco_sequence):
    """Work is reused between frames: the joint embedding runs on one frame per push."""
    calls = []
    h = lifter.mpm.joint_embedding_2d.register_forward_hook(lambda mod, i, o: calls.append(i[0].shape))
    try:
        stream = PoseLiftingStream(lifter, (W, H), "coco", latency=0)
        for k in coco_sequence[:12]:
            stream.push(k)
    finally:
        h.remove()
    assert len(calls) == 12 and all(s[-1] == 1 for s in calls)  # (1, J*2, 1 frame)


def test_missing_person_and_vitpose_dict(lifter, coco_sequence):
    kp = coco_sequence[:10]
    a = PoseLiftingStream(lifter, (W, H), "coco", latency=0)
    b = PoseLiftingStream(lifter, (W, H), "coco", latency=0)
    for t, k in enumerate(kp):
        ra = a.push(None if t == 4 else k)
        person = {"keypoints": torch.tensor(k[:, :2]), "scores": torch.tensor(k[:, 2])}
        rb = b.push(None if t == 4 else person)
        np.testing.assert_array_equal(ra["pose_3d"], rb["pose_3d"])
        if t == 4:
            assert not ra["valid"].any() and np.isfinite(ra["pose_3d"]).all()


def test_reset_starts_a_new_stream(lifter, coco_sequence):
    s = PoseLiftingStream(lifter, (W, H), "coco", latency=1)
    first = s.run(coco_sequence[:8])
    for k in coco_sequence[8:15]:
        s.push(k)
    again = s.run(coco_sequence[:8])   # run() resets
    np.testing.assert_array_equal(first, again)
    assert s.frames_seen == 8


@pytest.mark.parametrize("latency", [-1, T // 2 + 1, 1.5, True])
def test_bad_latency(lifter, latency):
    with pytest.raises(ValueError, match="latency"):
        PoseLiftingStream(lifter, (W, H), latency=latency)


def test_bad_frame_shape(lifter):
    s = PoseLiftingStream(lifter, (W, H), "coco")
    with pytest.raises(ValueError, match="one frame"):
        s.push(np.zeros((2, 17, 2)))
    with pytest.raises(ValueError, match="17 joints"):
        s.push(np.zeros((16, 2)))
    with pytest.raises(ValueError, match="image_size"):
        PoseLiftingStream(lifter, None)


def test_bench_streaming_smoke(tmp_path):
    """bench/bench_streaming.py runs (smoke budget) and its half-window latency reproduces the
    offline seq2frame error on whole validation sequences."""
    import importlib
    import json
    import os
    import sys

    bench = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench")
    if bench not in sys.path:
        sys.path.insert(0, bench)
    threads = torch.get_num_threads()
    try:
        rc = importlib.import_module("bench_streaming").main(
            ["--budget", "smoke", "--part", "streaming", "--threads", "1", "--max-frames", "20",
             "--out", str(tmp_path / "s.json")])
    finally:
        torch.set_num_threads(threads)
    assert rc == 0
    res = json.loads((tmp_path / "s.json").read_text())["streaming"]
    assert set(res["latency"]) == {"0", "4"} and res["validation_frames"] == 8 * 20
    assert res["latency"]["4"]["head"] == "centre" and res["latency"]["0"]["head"] == "all-frames"
    assert abs(res["latency"]["4"]["mpjpe_mm"] - res["offline_seq2frame"]["mpjpe_mm"]) < 1e-2


def test_match_2d_equals_the_pipeline_and_checks_its_arguments(lifter, coco_sequence):
    """``match_2d=True`` at half-window latency: the pipeline's seq2frame 3D moved onto its 2D, frame by frame
    (missing joints included); bad switches are refused when the stream is made."""
    from transformers import pipeline

    import modeling_mpm  # noqa: F401

    want = pipeline("pose-lifting", model=lifter)(coco_sequence, image_size=(W, H), keypoint_format="coco",
                                                   confidence_threshold=0.3, match_2d=True, focal_length=700.0)
    stream = PoseLiftingStream(lifter, (W, H), "coco", latency=T // 2, confidence_threshold=0.3, match_2d=True,
                               focal_length=700.0)
    got = stream.run(coco_sequence)
    np.testing.assert_allclose(got, want["pose_3d"], atol=1e-4)
    plain = PoseLiftingStream(lifter, (W, H), "coco", latency=T // 2, confidence_threshold=0.3).run(coco_sequence)
    assert np.abs(got - plain).max() > 1e-3
    with pytest.raises(TypeError, match="match_2d"):
        PoseLiftingStream(lifter, (W, H), "coco", match_2d="yes")
    with pytest.raises(ValueError, match="image_size"):
        PoseLiftingStream(lifter, None, "coco", coordinates="normalized", match_2d=True)
    with pytest.raises(ValueError, match="focal_length"):
        PoseLiftingStream(lifter, (W, H), "coco", match_2d=True, focal_length=-1.0)
