"""pose-lifting / pose-completion pipelines on tiny random models (CPU, a few seconds)."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from transformers import pipeline

import modeling_mpm  # noqa: F401  (registers the pipelines)
from modeling_mpm import MPMConfig, MPMForMaskedPoseModeling, MPMForPoseLifting
from modeling_mpm.keypoints import normalize_screen_coordinates
from modeling_mpm.pipeline_mpm import PoseCompletionPipeline, PoseLiftingPipeline
from modeling_mpm.skeleton import COCO_17, H36M_17
from remote_code import BLOCK_PACKAGE  # noqa: E402

T = 9
W, H = 640, 480


def tiny_config(**kw):
    base = dict(num_frames=T, num_layers=1, hidden_size=32, intermediate_size=64, num_attention_heads=4,
                reduce_strides=[3, 3], dropout=0.0)
    base.update(kw)
    return MPMConfig(**base)


@pytest.fixture(scope="module")
def lifter():
    torch.manual_seed(0)
    return MPMForPoseLifting(tiny_config()).eval()


@pytest.fixture(scope="module")
def lift_pipe(lifter):
    return pipeline("pose-lifting", model=lifter)


@pytest.fixture(scope="module")
def completer():
    torch.manual_seed(1)
    return MPMForMaskedPoseModeling(tiny_config(decoder_layers=2)).eval()


def pixels(frames, joints=17, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform([100, 50], [540, 430], size=(frames, joints, 2))


def model_3d(model, kp_px, mask=None, head="pose_3d"):
    x = torch.as_tensor(normalize_screen_coordinates(kp_px, W, H), dtype=torch.float32)[None]
    m = None if mask is None else torch.as_tensor(mask)[None]
    if m is not None:
        x = torch.where(m[..., None], torch.zeros(()), x)
    with torch.no_grad():
        out = getattr(model(pose_2d=x, spatial_mask=m), head)[0].numpy().copy()
    out[:, 0] = 0
    return out


def test_registered_and_class(lift_pipe):
    assert isinstance(lift_pipe, PoseLiftingPipeline)


def test_one_window_matches_the_model(lift_pipe, lifter):
    kp = pixels(T)
    out = lift_pipe(kp, image_size=(W, H), keypoint_format="h36m", mode="seq2seq")
    np.testing.assert_allclose(out["pose_3d"], model_3d(lifter, kp), atol=1e-5)
    assert out["valid"].all() and out["pose_3d"].dtype == np.float32
    out = lift_pipe(kp, image_size=(W, H), keypoint_format="h36m", mode="seq2frame")
    np.testing.assert_allclose(out["pose_3d"][T // 2], model_3d(lifter, kp, head="pose_3d_center")[0], atol=1e-5)


@pytest.mark.parametrize("frames", [1, 2, 40])
@pytest.mark.parametrize("mode", ["seq2frame", "seq2seq"])
def test_any_length(lift_pipe, frames, mode):
    out = lift_pipe(pixels(frames), image_size=(W, H), keypoint_format="h36m", mode=mode, batch_size=7)
    assert out["pose_3d"].shape == (frames, 17, 3)
    assert np.isfinite(out["pose_3d"]).all()
    assert np.all(out["pose_3d"][:, 0] == 0)


def test_missing_joints_are_masked(lift_pipe, lifter):
    kp = np.concatenate([pixels(T), np.ones((T, 17, 1))], -1)
    kp[2, 5, :2] = np.nan
    kp[4, 13, 2] = 0.05
    kp[6, 3, 0] = np.inf
    out = lift_pipe(kp, image_size=(W, H), keypoint_format="h36m", confidence_threshold=0.2, mode="seq2seq", return_keypoints_2d=True)
    mask = np.zeros((T, 17), bool)
    mask[2, 5] = mask[4, 13] = mask[6, 3] = True
    np.testing.assert_array_equal(out["valid"], ~mask)
    assert np.isfinite(out["pose_3d"]).all()
    filled = np.where(mask[..., None], 0.0, kp[..., :2])
    np.testing.assert_allclose(out["pose_3d"], model_3d(lifter, filled, mask), atol=1e-5)
    assert np.isnan(out["keypoints_2d"][2, 5]).all()
    np.testing.assert_allclose(out["keypoints_2d"][0], kp[0, :, :2])


def test_empty_frame_filled_and_all_missing_raises(lift_pipe):
    kp = np.concatenate([pixels(12), np.ones((12, 17, 1))], -1)
    kp[5, :, 2] = 0.0
    out = lift_pipe(kp, image_size=(W, H), keypoint_format="h36m", confidence_threshold=0.5)
    assert not out["valid"][5].any() and out["valid"][[4, 6]].all()
    assert np.isfinite(out["pose_3d"]).all()
    kp[:, :, 2] = 0.0
    with pytest.raises(ValueError, match="no valid joint"):
        lift_pipe(kp, image_size=(W, H), keypoint_format="h36m", confidence_threshold=0.5)


def test_flip_augmentation_mirrors_mask(lift_pipe, lifter):
    kp = pixels(T, seed=3)
    mask = np.zeros((T, 17), bool)
    mask[:, H36M_17.index("left_elbow")] = True
    kp_in = kp.copy()
    kp_in[mask] = np.nan
    out = lift_pipe(kp_in, image_size=(W, H), keypoint_format="h36m", mode="seq2seq", flip_augmentation=True)
    # manual: mirrored pixels x -> W - x is u -> -u; swap sides of the joints and of the mask
    perm = H36M_17.flip_permutation
    flipped = kp[:, perm].copy()
    flipped[..., 0] = W - flipped[..., 0]
    a = model_3d(lifter, np.where(mask[..., None], 0, kp), mask)
    b = model_3d(lifter, np.where(mask[:, perm][..., None], 0, flipped), mask[:, perm])
    b = b[:, perm]
    b[..., 0] *= -1
    np.testing.assert_allclose(out["pose_3d"], (a + b) / 2, atol=1e-5)
    # the leaky variant (mask not mirrored) is different
    c = model_3d(lifter, np.where(mask[..., None], 0, flipped), mask)[:, perm]
    c[..., 0] *= -1
    assert not np.allclose(out["pose_3d"], (a + c) / 2, atol=1e-4)


def test_coco_and_halpe_input(lift_pipe):
    coco = np.concatenate([pixels(5), np.full((5, 17, 1), 0.9)], -1)
    out = lift_pipe(coco, image_size=(W, H), keypoint_format="coco", return_keypoints_2d=True)
    kp2 = out["keypoints_2d"]
    np.testing.assert_allclose(kp2[:, 0], (coco[:, COCO_17.index("left_hip"), :2] + coco[:, COCO_17.index("right_hip"), :2]) / 2)
    halpe = pixels(5, joints=26)
    out = lift_pipe(halpe, image_size=(W, H), keypoint_format="halpe26")
    assert out["pose_3d"].shape == (5, 17, 3)


def test_list_in_list_out(lift_pipe):
    res = lift_pipe([pixels(3), pixels(11)], image_size=(W, H), keypoint_format="h36m")
    assert isinstance(res, list) and [r["pose_3d"].shape[0] for r in res] == [3, 11]
    # a nested Python list is one sequence
    one = lift_pipe(pixels(2).tolist(), image_size=(W, H), keypoint_format="h36m")
    assert one["pose_3d"].shape == (2, 17, 3)


def test_batch_size_bounds_windows(lifter):
    seen = []
    # windows per pass through the temporal transformer (seq2frame embeds each frame once, outside it)
    h = lifter.mpm.layers[0].register_forward_pre_hook(lambda mod, args: seen.append(args[0].shape[0]))
    try:
        pipe = pipeline("pose-lifting", model=lifter)
        pipe(pixels(50), image_size=(W, H), keypoint_format="h36m", mode="seq2frame", batch_size=8)
    finally:
        h.remove()
    assert max(seen) == 8 and sum(seen) == 50


@pytest.mark.parametrize(
    "kwargs, exc, msg",
    [
        (dict(keypoints=np.zeros((17, 2))), ValueError, "3 dimensions"),
        (dict(keypoints=np.zeros((4, 17, 5))), ValueError, "2 .x, y. or 3"),
        (dict(keypoints=np.zeros((0, 17, 2))), ValueError, "empty"),
        (dict(keypoints=[]), ValueError, "empty list"),
        (dict(keypoints=[[["a", "b"]] * 17]), TypeError, "numbers"),
        (dict(keypoints=np.zeros((4, 16, 2))), ValueError, "16"),
        (dict(keypoints=np.zeros((4, 17, 2)), image_size=(0, 480)), ValueError, "image_size"),
        (dict(keypoints=np.zeros((4, 17, 2)), image_size=(640, -2)), ValueError, "image_size"),
        (dict(keypoints=np.zeros((4, 17, 2)), image_size=None), ValueError, "image_size=.width, height."),
        (dict(keypoints=np.zeros((4, 17, 2)), keypoint_format="openpose"), ValueError, "unknown keypoint_format"),
        (dict(keypoints=np.zeros((4, 17, 2)), mode="frames"), ValueError, "mode"),
        (dict(keypoints=np.zeros((4, 17, 2)), batch_size=0), ValueError, "batch_size"),
        (dict(keypoints=np.zeros((4, 17, 2)), windows=3), TypeError, "unexpected argument"),
    ],
)
def test_lifting_errors(lift_pipe, kwargs, exc, msg):
    kwargs.setdefault("image_size", (W, H))
    kwargs.setdefault("keypoint_format", "h36m")
    kp = kwargs.pop("keypoints")
    with pytest.raises(exc, match=msg):
        lift_pipe(kp, **kwargs)


def test_completion_3d_keeps_given_joints(completer):
    pipe = pipeline("pose-completion", model=completer)
    assert isinstance(pipe, PoseCompletionPipeline)
    rng = np.random.default_rng(0)
    pose = rng.normal(scale=0.3, size=(T, 17, 3))
    pose[:, 0] = 0
    pose += np.array([0.1, -0.2, 4.0])  # absolute camera position: pipeline makes it root-relative
    miss = np.zeros((T, 17), bool)
    miss[:, [14, 15, 16]] = True
    x = pose.copy()
    x[miss] = np.nan
    out = pipe(x)
    np.testing.assert_array_equal(out["missing"], miss)
    np.testing.assert_allclose(out["pose_3d"][~miss], pose[~miss], atol=1e-6)
    rel = torch.as_tensor(np.where(miss[..., None], 0, pose - pose[:, :1]), dtype=torch.float32)[None]
    with torch.no_grad():
        ref = completer(pose_3d=rel, spatial_mask_3d=torch.as_tensor(miss)[None],
                        temporal_mask_3d=torch.zeros(1, T, dtype=torch.bool)).pose_3d[0].numpy()
    np.testing.assert_allclose(out["pose_3d"][miss], (ref + pose[:, :1])[miss], atol=1e-5)
    # a frame with no joint at all gets the root of its neighbours (absolute input stays absolute)
    x2 = x.copy()
    x2[4] = np.nan
    out2 = pipe(x2)
    assert np.isfinite(out2["pose_3d"]).all() and out2["missing"][4].all()
    assert np.abs(out2["pose_3d"][4].mean(0) - pose[4].mean(0)).max() < 2.0  # near the person, not at 0
    # any length, list input
    res = pipe([x[:4], np.concatenate([x, x, x])])
    assert [r["pose_3d"].shape[0] for r in res] == [4, 3 * T]
    assert all(np.isfinite(r["pose_3d"]).all() for r in res)


def test_completion_from_occluded_2d(completer):
    pipe = pipeline("pose-completion", model=completer)
    kp = np.concatenate([pixels(T), np.ones((T, 17, 1))], -1)
    kp[:, [1, 2, 3], 2] = 0.0
    out = pipe(keypoints=kp, image_size=(W, H), keypoint_format="h36m", confidence_threshold=0.5)
    assert out["pose_3d"].shape == (T, 17, 3) and np.isfinite(out["pose_3d"]).all()
    assert not out["valid"][:, [1, 2, 3]].any() and out["valid"][:, 4:].all()
    np.testing.assert_allclose(out["keypoints_2d"][:, 4:], kp[:, 4:, :2])
    assert np.isfinite(out["keypoints_2d"]).all()
    uv = torch.as_tensor(normalize_screen_coordinates(np.where(out["valid"][..., None], kp[..., :2], 0), W, H),
                         dtype=torch.float32)[None]
    with torch.no_grad():
        ref = completer(pose_2d=uv, spatial_mask=torch.as_tensor(~out["valid"])[None],
                        temporal_mask=torch.zeros(1, T, dtype=torch.bool)).pose_3d_from_2d[0].numpy()
    ref[:, 0] = 0
    np.testing.assert_allclose(out["pose_3d"], ref, atol=1e-5)


@pytest.mark.parametrize(
    "call, exc, msg",
    [
        (lambda p: p(), ValueError, "exactly one"),
        (lambda p: p(np.zeros((3, 17, 2))), ValueError, r"\(frames, 17, 3\)"),
        (lambda p: p(np.zeros((17, 3))), ValueError, r"pose_3d\[None\]"),
        (lambda p: p(np.full((3, 17, 3), np.nan)), ValueError, "every joint"),
        (lambda p: p(np.zeros((3, 17, 3)), missing=np.zeros((2, 17), bool)), ValueError, "missing"),
        (lambda p: p(keypoints=np.zeros((3, 17, 2)), keypoint_format="coco"), ValueError, "image_size"),
        (lambda p: p(keypoints=np.zeros((3, 17, 2)), image_size=(W, H)), ValueError, "pass keypoint_format"),
    ],
)
def test_completion_errors(completer, call, exc, msg):
    pipe = pipeline("pose-completion", model=completer)
    with pytest.raises(exc, match=msg):
        call(pipe)


def test_wrong_model_class(completer):
    with pytest.raises(TypeError, match="MPMForPoseLifting"):
        pipeline("pose-lifting", model=completer)


def test_saved_dir_in_process(tmp_path, lift_pipe, lifter):
    kp = pixels(5)
    want = lift_pipe(kp, image_size=(W, H), keypoint_format="h36m")["pose_3d"]
    # a model folder (model.save_pretrained) loads by task name
    lifter.save_pretrained(tmp_path / "model")
    pipe = pipeline("pose-lifting", model=str(tmp_path / "model"))
    assert isinstance(pipe, PoseLiftingPipeline) and isinstance(pipe.model, MPMForPoseLifting)
    np.testing.assert_allclose(pipe(kp, image_size=(W, H), keypoint_format="h36m")["pose_3d"], want, atol=1e-6)
    # a pipeline folder (with custom_pipelines) needs trust_remote_code, or the installed class
    lift_pipe.save_pretrained(tmp_path / "pipe")
    pipe = pipeline("pose-lifting", model=str(tmp_path / "pipe"), pipeline_class=PoseLiftingPipeline)
    assert isinstance(pipe.model, MPMForPoseLifting)
    np.testing.assert_allclose(pipe(kp, image_size=(W, H), keypoint_format="h36m")["pose_3d"], want, atol=1e-6)


REMOTE_SCRIPT = BLOCK_PACKAGE + textwrap.dedent(
    """
    import json, sys
    import numpy as np

    from transformers import pipeline

    lifter_dir, completer_dir, kp_path, pose_path = sys.argv[1:5]
    lift = pipeline(model=lifter_dir, trust_remote_code=True)          # task from config.json
    comp = pipeline("pose-completion", model=completer_dir, trust_remote_code=True)
    a = lift(np.load(kp_path), image_size=(640, 480), keypoint_format="coco", mode="seq2seq")
    b = comp(np.load(pose_path))
    hub = pipeline(model="mpm-test/lifter", trust_remote_code=True)   # Hub id, from the offline cache
    h = hub(np.load(kp_path), image_size=(640, 480), keypoint_format="coco", mode="seq2seq")
    assert np.array_equal(h["pose_3d"], a["pose_3d"])
    assert "modeling_mpm" not in sys.modules
    print(json.dumps({"lift_cls": type(lift).__name__, "lift_model": type(lift.model).__name__,
                      "lift_module": type(lift).__module__, "comp_model": type(comp.model).__name__,
                      "lift": a["pose_3d"].tolist(), "comp": b["pose_3d"].tolist()}))
    """
)


def test_remote_code_without_package(tmp_path, lifter, completer):
    """Saved pipelines load with trust_remote_code=True (folder and Hub id) in a process that cannot
    import modeling_mpm."""
    lift = pipeline("pose-lifting", model=lifter)
    lift.save_pretrained(tmp_path / "lifter")
    comp = pipeline("pose-completion", model=completer)
    comp.save_pretrained(tmp_path / "completer")
    cfg = json.loads((tmp_path / "lifter" / "config.json").read_text())
    assert "pose-lifting" in cfg["custom_pipelines"] and "AutoModel" in cfg["auto_map"]
    assert (tmp_path / "lifter" / "pipeline_mpm.py").exists()
    kp = np.concatenate([pixels(12), np.full((12, 17, 1), 0.9)], -1)
    pose = np.random.default_rng(0).normal(scale=0.3, size=(11, 17, 3))
    pose[:, 0] = 0
    pose[:, 12] = np.nan
    np.save(tmp_path / "kp.npy", kp)
    np.save(tmp_path / "pose.npy", pose)
    script = tmp_path / "remote.py"
    script.write_text(REMOTE_SCRIPT)
    # a hand-made Hub cache entry makes the Hub id "mpm-test/lifter" resolve offline
    snap = tmp_path / "hf" / "hub" / "models--mpm-test--lifter" / "snapshots" / ("0" * 40)
    shutil.copytree(tmp_path / "lifter", snap)
    (snap.parent.parent / "refs").mkdir()
    (snap.parent.parent / "refs" / "main").write_text("0" * 40)
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"),
               HF_HOME=str(tmp_path / "hf"), PYTHONPATH="", OMP_NUM_THREADS="1")
    env.pop("HF_HUB_CACHE", None)
    args = [str(tmp_path / n) for n in ("lifter", "completer", "kp.npy", "pose.npy")]
    res = subprocess.run([sys.executable, str(script), *args], cwd=str(tmp_path), env=env,
                         capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["lift_cls"] == "PoseLiftingPipeline" and got["lift_model"] == "MPMForPoseLifting"
    assert not got["lift_module"].startswith("modeling_mpm")
    assert got["comp_model"] == "MPMForMaskedPoseModeling"
    want = lift(kp, image_size=(640, 480), keypoint_format="coco", mode="seq2seq")["pose_3d"]
    np.testing.assert_allclose(np.array(got["lift"]), want, atol=1e-5)
    np.testing.assert_allclose(np.array(got["comp"]), comp(pose)["pose_3d"], atol=1e-5)


def test_h36m16_model_gets_16_joints():
    torch.manual_seed(0)
    model = MPMForPoseLifting(tiny_config(num_joints=16, skeleton="h36m16"))
    pipe = pipeline("pose-lifting", model=model)
    kp = np.concatenate([pixels(4), np.ones((4, 17, 1))], -1)
    kp[:, 10, 2] = 0  # head top missing -> H36M-16 joint 9
    out = pipe(kp, image_size=(W, H), keypoint_format="h36m", confidence_threshold=0.5, return_keypoints_2d=True)
    assert out["pose_3d"].shape == (4, 16, 3) and out["valid"].shape == (4, 16)
    assert not out["valid"][:, 9].any() and out["valid"][:, [8, 10]].all()
    assert out["keypoints_2d"].shape == (4, 17, 2)


def test_ragged_nested_list_is_a_clear_error(lift_pipe):
    with pytest.raises(ValueError, match="rectangular"):
        lift_pipe([[[0.0, 0.0]] * 17, [[0.0, 0.0]] * 16], image_size=(W, H), keypoint_format="h36m")
