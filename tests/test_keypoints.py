import numpy as np
import pytest

from modeling_mpm.keypoints import (
    BLAZEPOSE_HIP_TO_KNEE,
    BLAZEPOSE_LANDMARKS,
    KEYPOINT_FORMATS,
    fill_missing,
    keypoints_to_h36m,
    normalize_format,
    normalize_screen_coordinates,
    prepare_keypoints,
    unnormalize_screen_coordinates,
    validate_image_size,
    validate_keypoints,
)
from modeling_mpm.skeleton import COCO_17, H36M_17, HALPE_26

RNG = np.random.default_rng(0)


def coco_pose(frames=4):
    return RNG.uniform(50, 450, size=(frames, 17, 2))


def h(name):
    return H36M_17.index(name)


def c(name):
    return COCO_17.index(name)


def test_coco_rules():
    xy = coco_pose()
    valid = np.ones(xy.shape[:2], bool)
    out, v, _ = keypoints_to_h36m(xy, valid, "coco")
    assert v.all()
    pelvis = (xy[:, c("left_hip")] + xy[:, c("right_hip")]) / 2
    thorax = (xy[:, c("left_shoulder")] + xy[:, c("right_shoulder")]) / 2
    ears = (xy[:, c("left_ear")] + xy[:, c("right_ear")]) / 2
    np.testing.assert_allclose(out[:, h("pelvis")], pelvis)
    np.testing.assert_allclose(out[:, h("thorax")], thorax)
    np.testing.assert_allclose(out[:, h("spine")], (pelvis + thorax) / 2)
    np.testing.assert_allclose(out[:, h("neck_nose")], xy[:, c("nose")])
    np.testing.assert_allclose(out[:, h("head_top")], ears + 0.5 * (ears - thorax))
    for name in ("left_knee", "right_wrist", "left_ankle", "right_shoulder"):
        np.testing.assert_allclose(out[:, h(name)], xy[:, c(name)])


def test_coco_missing_propagates_and_head_falls_back_to_eyes():
    xy = coco_pose(2)
    valid = np.ones(xy.shape[:2], bool)
    valid[0, c("left_hip")] = False
    valid[1, c("left_ear")] = False
    out, v, _ = keypoints_to_h36m(xy, valid, "coco")
    assert not v[0, h("pelvis")] and not v[0, h("spine")] and not v[0, h("left_hip")]
    assert np.isnan(out[0, h("pelvis")]).all()
    assert v[0, h("thorax")] and v[0, h("head_top")]
    # frame 1: ears incomplete -> head top from the eyes
    assert v[1, h("head_top")]
    eyes = (xy[1, c("left_eye")] + xy[1, c("right_eye")]) / 2
    thorax = (xy[1, c("left_shoulder")] + xy[1, c("right_shoulder")]) / 2
    np.testing.assert_allclose(out[1, h("head_top")], eyes + 0.5 * (eyes - thorax))


def test_halpe_uses_its_head_neck_hip():
    xy = RNG.uniform(0, 100, size=(3, 26, 2))
    valid = np.ones(xy.shape[:2], bool)
    valid[:, HALPE_26.index("left_hip")] = False  # pelvis still comes from Halpe's own hip
    out, v, _ = keypoints_to_h36m(xy, valid, "halpe26")
    np.testing.assert_allclose(out[:, h("pelvis")], xy[:, HALPE_26.index("hip")])
    np.testing.assert_allclose(out[:, h("thorax")], xy[:, HALPE_26.index("neck")])
    np.testing.assert_allclose(out[:, h("head_top")], xy[:, HALPE_26.index("head")])
    assert v[:, h("pelvis")].all() and not v[:, h("left_hip")].any()


def test_conversion_commutes_with_mirroring():
    """Mirroring the COCO input (x -> W - x, swap sides) mirrors the H36M output."""
    W = 500.0
    xy = coco_pose(3)
    valid = np.ones(xy.shape[:2], bool)
    m = xy[:, COCO_17.flip_permutation].copy()
    m[..., 0] = W - m[..., 0]
    a, _, _ = keypoints_to_h36m(xy, valid, "coco")
    b, _, _ = keypoints_to_h36m(m, valid, "coco")
    b = b[:, H36M_17.flip_permutation]
    b[..., 0] = W - b[..., 0]
    np.testing.assert_allclose(a, b, atol=1e-9)


def test_confidence_and_nan_give_missing_and_finite_output():
    k = np.concatenate([coco_pose(6), np.ones((6, 17, 1))], -1)
    k[1, c("nose"), 2] = 0.1
    k[2, c("left_wrist"), :2] = np.nan
    k[3, c("right_knee"), 0] = np.inf
    k[4, :, 2] = 0.0  # a frame with no valid joint
    r = prepare_keypoints(k, image_size=(640, 480), keypoint_format="coco", confidence_threshold=0.3)
    miss = r["missing"]
    assert miss[1, h("neck_nose")] and miss[2, h("left_wrist")] and miss[3, h("right_knee")]
    assert miss[4].all() and miss.sum() == 3 + 17
    assert np.isfinite(r["pose_2d"]).all() and r["pose_2d"].dtype == np.float32
    # the empty frame is filled from its neighbours: between frames 3 and 5
    lo = np.minimum(r["pose_2d"][3], r["pose_2d"][5]) - 1e-6
    hi = np.maximum(r["pose_2d"][3], r["pose_2d"][5]) + 1e-6
    ok = ~miss[3] & ~miss[5]
    assert ((r["pose_2d"][4] >= lo) & (r["pose_2d"][4] <= hi))[ok].all()


def test_all_missing_raises():
    k = np.full((3, 17, 2), np.nan)
    with pytest.raises(ValueError, match="no valid joint"):
        prepare_keypoints(k, (100, 100), "h36m")
    k = np.concatenate([coco_pose(2), np.zeros((2, 17, 1))], -1)
    with pytest.raises(ValueError, match="confidence_threshold"):
        prepare_keypoints(k, (100, 100), "coco", confidence_threshold=0.5)


def test_fill_missing_never_valid_joint():
    xy = RNG.normal(size=(5, 4, 2))
    valid = np.ones((5, 4), bool)
    valid[:, 2] = False
    out = fill_missing(xy, valid)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[:, 2], xy[:, [0, 1, 3]].mean(1))
    np.testing.assert_array_equal(out[valid], xy[valid])


def test_screen_normalisation_round_trip():
    xy = np.array([[0.0, 0.0], [640.0, 480.0], [320.0, 240.0]])
    uv = normalize_screen_coordinates(xy, 640, 480)
    np.testing.assert_allclose(uv, [[-1, -0.75], [1, 0.75], [0, 0]])
    np.testing.assert_allclose(unnormalize_screen_coordinates(uv, 640, 480), xy)


@pytest.mark.parametrize(
    "bad, exc, msg",
    [
        (np.zeros((17, 2)), ValueError, r"keypoints\[None\]"),
        (np.zeros((2, 3, 17, 2)), ValueError, "list of"),
        (np.zeros((4, 17, 4)), ValueError, "2 .x, y. or 3"),
        (np.zeros((0, 17, 2)), ValueError, "empty"),
        (np.zeros((4, 16, 2)), ValueError, "16"),
        (np.zeros((4, 26, 2)), ValueError, "halpe26"),
        ([["a", "b"]], TypeError, "numbers"),
        (np.zeros((2, 17, 2), bool), TypeError, "numbers"),
        ("keypoints.npy", TypeError, "numeric array"),
        (None, TypeError, "None"),
        ([[[0, 0]] * 17, [[0, 0]] * 16], ValueError, "rectangular"),
    ],
)
def test_validate_keypoints_errors(bad, exc, msg):
    with pytest.raises(exc, match=msg):
        validate_keypoints(bad, "coco")


def test_unknown_format():
    with pytest.raises(ValueError, match="unknown keypoint_format 'openpose'.*coco"):
        normalize_format("openpose")
    with pytest.raises(TypeError):
        normalize_format(17)
    assert normalize_format("COCO-17") == "coco" and normalize_format("Halpe") == "halpe26"


@pytest.mark.parametrize("bad", [None, (0, 480), (640, -1), (640,), (1, 2, 3), "640x480", (np.nan, 4)])
def test_image_size_errors(bad):
    with pytest.raises((ValueError, TypeError), match="image_size"):
        validate_image_size(bad)


def test_normalized_coordinates_need_no_image_size():
    k = RNG.uniform(-1, 1, size=(3, 17, 2))
    r = prepare_keypoints(k, None, "h36m", coordinates="normalized")
    np.testing.assert_allclose(r["pose_2d"], k, rtol=1e-6)
    with pytest.raises(ValueError, match="image_size"):
        prepare_keypoints(k, None, "h36m")


def test_float32_input_stays_float32_and_agrees():
    k = np.concatenate([coco_pose(5), np.full((5, 17, 1), 0.8)], -1)
    k[1, 3, 2] = 0.1
    a = prepare_keypoints(k, (640, 480), "coco", 0.3)
    b = prepare_keypoints(k.astype(np.float32), (640, 480), "coco", 0.3)
    assert b["keypoints_2d"].dtype == np.float32 and a["keypoints_2d"].dtype == np.float64
    np.testing.assert_array_equal(a["missing"], b["missing"])
    np.testing.assert_allclose(a["pose_2d"], b["pose_2d"], atol=1e-5)
    np.testing.assert_allclose(a["keypoints_2d"], b["keypoints_2d"], rtol=1e-5)


# ----------------------------------------------------------------------------- BlazePose (33)
def b(name):
    return BLAZEPOSE_LANDMARKS.index(name)


def blazepose_pose(frames=3):
    """Constructed BlazePose landmarks: a standing person (y down, pixels) plus noise."""
    base = {"nose": (200, 100), "left_eye": (210, 92), "right_eye": (190, 92), "left_ear": (222, 98),
            "right_ear": (178, 98), "mouth_left": (208, 112), "mouth_right": (192, 112),
            "left_shoulder": (240, 150), "right_shoulder": (160, 150), "left_elbow": (250, 220),
            "right_elbow": (150, 220), "left_wrist": (255, 280), "right_wrist": (145, 280),
            "left_hip": (225, 300), "right_hip": (175, 300), "left_knee": (228, 400), "right_knee": (172, 400),
            "left_ankle": (230, 500), "right_ankle": (170, 500)}
    xy = RNG.uniform(100, 300, size=(frames, 33, 2))  # face/hand/foot extras: anything
    for name, p in base.items():
        xy[:, BLAZEPOSE_LANDMARKS.index(name)] = p
    return xy + RNG.normal(0, 2, size=xy.shape)


def test_blazepose_format_and_aliases():
    assert KEYPOINT_FORMATS["blazepose"] == len(BLAZEPOSE_LANDMARKS) == 33
    assert BLAZEPOSE_LANDMARKS[0] == "nose" and BLAZEPOSE_LANDMARKS[23:25] == ("left_hip", "right_hip")
    for alias in ("blazepose", "BlazePose", "mediapipe", "MediaPipe-Pose", "blazepose33"):
        assert normalize_format(alias) == "blazepose"
    with pytest.raises(ValueError, match="keypoint_format='blazepose' has 33 joints but keypoints has 17"):
        validate_keypoints(np.zeros((2, 17, 3)), "blazepose")
    with pytest.raises(ValueError, match="did you mean keypoint_format='blazepose'"):
        validate_keypoints(np.zeros((2, 33, 3)), "coco")


def test_blazepose_rules():
    k = BLAZEPOSE_HIP_TO_KNEE
    xy = blazepose_pose()
    out, v, _ = keypoints_to_h36m(xy, np.ones(xy.shape[:2], bool), "blazepose")
    assert v.all()
    lhip = (1 - k) * xy[:, b("left_hip")] + k * xy[:, b("left_knee")]
    rhip = (1 - k) * xy[:, b("right_hip")] + k * xy[:, b("right_knee")]
    pelvis = (lhip + rhip) / 2
    thorax = (xy[:, b("left_shoulder")] + xy[:, b("right_shoulder")]) / 2
    ears = (xy[:, b("left_ear")] + xy[:, b("right_ear")]) / 2
    np.testing.assert_allclose(out[:, h("left_hip")], lhip)
    np.testing.assert_allclose(out[:, h("right_hip")], rhip)
    np.testing.assert_allclose(out[:, h("pelvis")], pelvis)
    np.testing.assert_allclose(out[:, h("thorax")], thorax)
    np.testing.assert_allclose(out[:, h("spine")], (pelvis + thorax) / 2)
    np.testing.assert_allclose(out[:, h("neck_nose")], xy[:, b("nose")])
    np.testing.assert_allclose(out[:, h("head_top")], ears + 0.5 * (ears - thorax))
    for name in ("left_knee", "right_wrist", "left_ankle", "right_shoulder", "left_elbow"):
        np.testing.assert_allclose(out[:, h(name)], xy[:, b(name)])
    # the H36M hips sit below the BlazePose hips (image y down), as far apart, and the skeleton is upright
    assert (out[:, h("left_hip"), 1] > xy[:, b("left_hip"), 1]).all()
    np.testing.assert_allclose(out[:, h("left_hip"), 0] - out[:, h("right_hip"), 0],
                               xy[:, b("left_hip"), 0] - xy[:, b("right_hip"), 0], atol=2)
    assert (out[:, h("head_top"), 1] < out[:, h("neck_nose"), 1]).all()
    assert (out[:, h("neck_nose"), 1] < out[:, h("thorax"), 1]).all()
    assert (out[:, h("thorax"), 1] < out[:, h("spine"), 1]).all() and (out[:, h("spine"), 1] < pelvis[:, 1]).all()


def test_blazepose_fallbacks_and_confidence():
    xy = blazepose_pose(2)
    valid = np.ones(xy.shape[:2], bool)
    conf = np.full(xy.shape[:2], 0.9)
    conf[:, b("left_knee")] = 0.4
    valid[0, b("left_knee")] = False  # knee missing in frame 0: that hip = BlazePose hip, pelvis = mid-hips
    valid[:, b("nose")] = False  # nose missing: neck_nose = mouth midpoint
    valid[1, b("left_ear")] = False  # an ear missing: head top from the eyes
    out, v, c17 = keypoints_to_h36m(xy, valid, "blazepose", conf)
    assert v[:, [h("left_hip"), h("pelvis"), h("neck_nose"), h("head_top")]].all() and not v[0, h("left_knee")]
    np.testing.assert_allclose(out[0, h("left_hip")], xy[0, b("left_hip")])
    np.testing.assert_allclose(out[0, h("pelvis")], (xy[0, b("left_hip")] + xy[0, b("right_hip")]) / 2)
    np.testing.assert_allclose(out[:, h("neck_nose")], (xy[:, b("mouth_left")] + xy[:, b("mouth_right")]) / 2)
    thorax = (xy[1, b("left_shoulder")] + xy[1, b("right_shoulder")]) / 2
    eyes = (xy[1, b("left_eye")] + xy[1, b("right_eye")]) / 2
    np.testing.assert_allclose(out[1, h("head_top")], eyes + 0.5 * (eyes - thorax))
    # confidence (= visibility) of a synthesised joint: the minimum over its sources
    assert c17[0, h("left_hip")] == pytest.approx(0.9) and c17[1, h("left_hip")] == pytest.approx(0.4)
    assert c17[1, h("pelvis")] == pytest.approx(0.4) and c17[0, h("right_knee")] == pytest.approx(0.9)
    assert np.isnan(out[0, h("left_knee")]).all()


def test_blazepose_commutes_with_mirroring_and_prepare():
    xy = blazepose_pose(4)
    valid = np.ones(xy.shape[:2], bool)
    out, _, _ = keypoints_to_h36m(xy, valid, "blazepose")
    swap = [b(n.replace("left", "@").replace("right", "left").replace("@", "right")) for n in BLAZEPOSE_LANDMARKS]
    mirrored = xy[:, swap] * np.array([-1.0, 1.0])
    out_m, _, _ = keypoints_to_h36m(mirrored, valid, "blazepose")
    perm = [H36M_17.index(n.replace("left", "@").replace("right", "left").replace("@", "right"))
            for n in H36M_17.joint_names]
    np.testing.assert_allclose(out_m[:, perm] * np.array([-1.0, 1.0]), out, atol=1e-9)
    k = np.concatenate([xy, np.full((4, 33, 1), 0.95)], -1)
    k[2, b("left_wrist"), 2] = 0.1  # low visibility -> missing
    r = prepare_keypoints(k, (400, 600), "mediapipe")
    assert r["pose_2d"].shape == (4, 17, 2) and np.isfinite(r["pose_2d"]).all()
    assert r["missing"].sum() == 1 and r["missing"][2, h("left_wrist")]


def test_undo_left_right_swaps_repairs_runs_and_single_frames():
    from modeling_mpm.keypoints import undo_left_right_swaps
    from modeling_mpm.skeleton import H36M_17

    rng = np.random.default_rng(0)
    F = 60
    base = rng.uniform(200, 800, (17, 2))
    drift = np.cumsum(rng.normal(0, 1.0, (F, 1, 2)), axis=0)          # smooth motion, ~1 px per frame
    truth = base[None] + drift
    valid = np.ones((F, 17), bool)
    perm = H36M_17.flip_permutation
    seen = truth.copy()
    seen[20:35] = seen[20:35][:, perm]                                  # a run of whole-body swaps
    legs = [H36M_17.index(n) for n in ("left_hip", "left_knee", "left_ankle", "right_hip", "right_knee", "right_ankle")]
    seen[45, legs] = truth[45][[perm[j] for j in legs]]                # one frame with only the legs swapped
    fixed, v, swapped = undo_left_right_swaps(seen, valid)
    np.testing.assert_allclose(fixed, truth)
    assert swapped[20:35].all() and swapped[45].tolist() == [False, True] and swapped.sum() == 31
    # clean motion is left alone, and a body seen side-on (left over right) is never relabelled
    np.testing.assert_array_equal(undo_left_right_swaps(truth, valid)[0], truth)
    left, right = list(H36M_17.joints_left), list(H36M_17.joints_right)
    side = truth.copy()
    side[:, left] = side[:, right] + [3.0, 0.0]                          # left just beside right
    side += rng.normal(0, 1.0, side.shape)                               # with a detector's jitter
    assert not undo_left_right_swaps(side, valid)[2].any()


def test_undo_left_right_swaps_untwists_a_torso_on_real_motion():
    """The detector turned the legs only (the person 'faces away' from the hips down) from the first frame on, so no
    jump shows it: the torso check relabels them; correct labels of real motion seen from all around, and a twist
    seen in one frame only (the shoulders' labels exchanged), stay as they are."""
    from modeling_mpm.cameras import orbit_rotations
    from modeling_mpm.data import load_demo_dataset, load_sequences
    from modeling_mpm.keypoints import SWAP_GROUPS, undo_left_right_swaps

    pose = np.asarray(load_sequences(load_demo_dataset()["validation"])[0]["pose_3d"][:60], np.float64)
    yaw, elevation = np.meshgrid(np.linspace(-np.pi, np.pi, 16, endpoint=False), np.radians([0.0, 30.0, 60.0]))
    cams = orbit_rotations(yaw.ravel(), elevation.ravel())
    valid = np.ones(pose.shape[:2], bool)
    width = []
    for R in cams:
        truth = (pose - pose[:, :1]) @ R.T
        truth = truth[..., :2] * 400 + 500                                    # pixels, orthographic
        fixed, _, swapped = undo_left_right_swaps(truth, valid)
        assert not swapped.any()                                             # side views included
        ls, rs = H36M_17.index("left_shoulder"), H36M_17.index("right_shoulder")
        sh = np.linalg.norm(truth[:, ls] - truth[:, rs], axis=-1)
        width.append((sh.min(), truth))
    truth = max(width, key=lambda w: w[0])[1]                                # the view that sees the torso widest
    (la, ra), (ll, rl) = SWAP_GROUPS
    seen = truth.copy()
    seen[:, np.concatenate([ll, rl])] = truth[:, np.concatenate([rl, ll])]
    fixed, _, swapped = undo_left_right_swaps(seen, valid)
    np.testing.assert_allclose(fixed, truth)
    assert swapped[:, 1].all() and not swapped[:, 0].any()
    once = truth.copy()
    shoulders = [H36M_17.index("left_shoulder"), H36M_17.index("right_shoulder")]
    once[30, shoulders] = truth[30, shoulders[::-1]]
    fixed, _, swapped = undo_left_right_swaps(once, valid)
    np.testing.assert_allclose(fixed, once)
    assert not swapped.any()
    with pytest.raises(ValueError, match="min_twisted_frames"):
        undo_left_right_swaps(once, valid, min_twisted_frames=0)


def test_pipeline_takes_the_swap_repair_flag(tiny_lifter_9):
    from modeling_mpm.pipeline_mpm import PoseLiftingPipeline

    pipe = PoseLiftingPipeline(model=tiny_lifter_9)
    kp = np.random.default_rng(0).uniform(100, 500, (12, 17, 2))
    out = pipe(kp, image_size=(640, 480), keypoint_format="h36m", fix_left_right_swaps=True)
    assert out["pose_3d"].shape == (12, 17, 3)
    with pytest.raises(TypeError, match="fix_left_right_swaps"):
        pipe(kp, image_size=(640, 480), keypoint_format="h36m", fix_left_right_swaps="yes")
