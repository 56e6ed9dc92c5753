"""Motion / camera / 2D-noise augmentation (modeling_mpm.data.augment) on the real demo motion."""

import numpy as np
import pytest

from modeling_mpm.data import (DetectorNoise2D, MotionAugment, PoseWindowDataset, augment_from_config,
                               load_demo_dataset, wide_camera_sampler)
from modeling_mpm.data.augment import _forearm_neutral, _limb_key_pose, random_rotations, rescale_bones, torso_frames
from modeling_mpm.skeleton import H36M_17

OFF = dict(speed_range=None, part_mix_prob=0.0, global_scale_range=None, bone_scale_range=None,
           non_upright_prob=0.0, tilt_deg=0.0, roll_deg=0.0, principal_point_range=0.0, aspect_range=None)
BONES = [(c, p) for c, p in enumerate(H36M_17.parents) if p >= 0]


@pytest.fixture(scope="module")
def train_seqs():
    from modeling_mpm.data import load_sequences

    return load_sequences(load_demo_dataset()["train"])


def _windows(seqs, n=64, F=9, seed=0):
    """n real world-frame windows (n, F, 17, 3) from the demo training motion."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        s = seqs[rng.integers(len(seqs))]["pose_3d"]
        c = rng.integers(0, len(s) - F)
        out.append(np.asarray(s[c:c + F], np.float64))
    return np.stack(out)


def _bone_lengths(pose):
    return np.stack([np.linalg.norm(pose[..., c, :] - pose[..., p, :], axis=-1) for c, p in BONES], -1)


def _pairwise(pose):
    return np.linalg.norm(pose[..., :, None, :] - pose[..., None, :, :], axis=-1)


def test_rescale_bones_scales_each_bone_and_keeps_directions(train_seqs):
    pose = _windows(train_seqs, 8)
    scale = np.random.default_rng(1).uniform(0.7, 1.3, (8, 17))
    out = rescale_bones(pose, H36M_17.parents, scale)
    ratio = _bone_lengths(out) / _bone_lengths(pose)
    np.testing.assert_allclose(ratio, np.broadcast_to(scale[:, None, 1:], ratio.shape), rtol=1e-6)
    for c, p in BONES:
        a, b = out[..., c, :] - out[..., p, :], pose[..., c, :] - pose[..., p, :]
        cos = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
        assert cos.min() > 1 - 1e-9
    np.testing.assert_array_equal(out[..., 0, :], pose[..., 0, :])


def test_bone_scaling_is_per_sample_and_left_right_symmetric(train_seqs):
    pose = _windows(train_seqs, 32)
    aug = MotionAugment(**{**OFF, "global_scale_range": (0.8, 1.2), "bone_scale_range": (0.9, 1.1)})
    out = aug.apply_world(pose, np.random.default_rng(0))
    ratio = _bone_lengths(out.astype(np.float64)) / _bone_lengths(pose)
    # constant over the frames of a window (a body does not grow) ...
    assert np.abs(ratio - ratio[:, :1]).max() < 1e-4
    r = ratio[:, 0]
    # ... differs between samples, within the configured product range ...
    assert r.std(axis=0).min() > 0.02 and r.min() > 0.8 * 0.9 - 1e-4 and r.max() < 1.2 * 1.1 + 1e-4
    # ... and the left and right bones of a pair get the same factor
    child = [c for c, _ in BONES]
    for left, right in zip(H36M_17.joints_left, H36M_17.joints_right):
        np.testing.assert_allclose(r[:, child.index(left)], r[:, child.index(right)], rtol=1e-4)


def test_rotations_keep_the_body_rigid_and_can_turn_it_upside_down(train_seqs):
    pose = _windows(train_seqs, 200)
    R = random_rotations(np.random.default_rng(0), 500)
    np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), R.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)
    aug = MotionAugment(**{**OFF, "non_upright_prob": 1.0})
    out = aug.apply_world(pose, np.random.default_rng(1)).astype(np.float64)
    np.testing.assert_allclose(_pairwise(out), _pairwise(pose), atol=1e-4)
    # the demo climbers are upright (head above the pelvis, Z up); uniform rotations put many
    # bodies lying or inverted
    up = lambda p: (p[:, :, 10, 2] - p[:, :, 0, 2]).mean(1)  # noqa: E731
    assert (up(pose) > 0).mean() > 0.9
    assert (up(out) < 0).mean() > 0.3
    tilt = MotionAugment(**{**OFF, "tilt_deg": 20.0}).apply_world(pose, np.random.default_rng(2)).astype(np.float64)
    assert (up(tilt) > 0).mean() > 0.85


def test_part_mixing_moves_limbs_onto_another_torso_consistently(train_seqs):
    pose = _windows(train_seqs, 16, seed=3)
    donor = _windows(train_seqs, 16, seed=4)
    aug = MotionAugment(**{**OFF, "part_mix_prob": 1.0, "part_mix_limb_prob": 1.0})
    out = aug.apply_world(pose, np.random.default_rng(0), donors=lambda k: donor[:k]).astype(np.float64)
    # bone lengths and torso untouched, limbs moved
    np.testing.assert_allclose(_bone_lengths(out), _bone_lengths(pose), rtol=1e-4, atol=1e-5)
    torso = [0, 1, 4, 7, 8, 9, 10, 11, 14]
    np.testing.assert_allclose(out[:, :, torso], pose[:, :, torso], atol=1e-5)
    assert np.abs(out[:, :, [3, 6, 13, 16]] - pose[:, :, [3, 6, 13, 16]]).max() > 0.1
    # each limb bone points where the donor's does, relative to the torso
    Ro, Rd = torso_frames(out), torso_frames(donor)
    for c, p in ((2, 1), (3, 2), (12, 11), (16, 15)):
        local_out = np.einsum("nfji,nfj->nfi", Ro, out[:, :, c] - out[:, :, p])
        local_don = np.einsum("nfji,nfj->nfi", Rd, donor[:, :, c] - donor[:, :, p])
        local_out /= np.linalg.norm(local_out, axis=-1, keepdims=True)
        local_don /= np.linalg.norm(local_don, axis=-1, keepdims=True)
        np.testing.assert_allclose(local_out, local_don, atol=1e-4)


def test_speed_two_equals_every_second_frame(train_seqs):
    """Playback speed 2 through the dataset = a window taking every second frame (tds=2)."""
    kw = dict(num_frames=9, mode="3d", flip_prob=0.0, skeleton="h36m17", stride=37)
    fast = PoseWindowDataset(train_seqs, augment=MotionAugment(**{**OFF, "speed_range": (2.0, 2.0)}), **kw)
    tds2 = PoseWindowDataset(train_seqs, tds=2, **kw)
    idx = np.arange(len(fast))
    a, b = fast.get_batch(idx)["pose_3d"], tds2.get_batch(idx)["pose_3d"]
    np.testing.assert_allclose(_pairwise(a), _pairwise(b), atol=1e-5)  # cameras differ, shapes do not
    half = PoseWindowDataset(train_seqs, augment=MotionAugment(**{**OFF, "speed_range": (0.5, 0.5)}), **kw)
    c = half.get_batch(idx)["pose_3d"]
    one = PoseWindowDataset(train_seqs, **kw).get_batch(idx)["pose_3d"]
    # speed 0.5: even frames of the slow window are the normal window's frames 2..6 around the centre
    np.testing.assert_allclose(_pairwise(c[:, ::2]), _pairwise(one[:, 2:7]), atol=1e-5)


def test_augmented_2d_is_the_projection_of_the_augmented_3d(train_seqs):
    """Paired windows with every augmentation on (flips included): the 2D is exactly the pinhole
    projection of root + root-relative 3D with the returned normalised intrinsics."""
    ds = PoseWindowDataset(train_seqs, num_frames=9, mode="paired", flip_prob=0.5, skeleton="h36m17",
                           virtual_cameras=wide_camera_sampler(), augment=MotionAugment(non_upright_prob=0.5),
                           stride=11, seed=3)
    b = ds.get_batch(np.arange(len(ds)))
    cam = b["pose_3d"].astype(np.float64) + b["root_3d"][:, :, None].astype(np.float64)
    fx, fy, cx, cy = (b["intrinsics"][:, k, None, None].astype(np.float64) for k in range(4))
    u = fx * cam[..., 0] / cam[..., 2] + cx
    v = fy * cam[..., 1] / cam[..., 2] + cy
    np.testing.assert_allclose(np.stack([u, v], -1), b["pose_2d"], atol=2e-4)
    assert (cam[..., 2] > 0.3).all()  # in front of the camera
    assert b["flipped"].any() and (~b["flipped"]).any()
    # roll, aspect and principal point really vary
    assert np.ptp(b["intrinsics"][:, 1] / b["intrinsics"][:, 0]) > 0.1 and np.ptp(b["intrinsics"][:, 2]) > 0.1


def test_augmentation_is_reproducible_and_off_for_fixed_cameras(train_seqs):
    from modeling_mpm.data import DEMO_VALIDATION_CAMERAS

    mk = lambda **kw: PoseWindowDataset(train_seqs, num_frames=9, mode="paired", flip_prob=0.5,  # noqa: E731
                                        skeleton="h36m17", stride=50, seed=5, **kw)
    a = mk(augment=MotionAugment()).get_batch(np.arange(20))
    b = mk(augment=MotionAugment()).get_batch(np.arange(20))
    for k in ("pose_2d", "pose_3d"):
        np.testing.assert_array_equal(a[k], b[k])
    fixed_a = mk(augment=MotionAugment(), virtual_cameras=DEMO_VALIDATION_CAMERAS).get_batch(np.arange(20))
    fixed_b = mk(virtual_cameras=DEMO_VALIDATION_CAMERAS).get_batch(np.arange(20))
    np.testing.assert_array_equal(fixed_a["pose_3d"], fixed_b["pose_3d"])


def test_detector_noise():
    rng = np.random.default_rng(0)
    pose = rng.normal(size=(200, 27, 17, 2)).astype(np.float32)
    conf = np.ones((200, 27, 17), np.float32)
    clean = DetectorNoise2D(std=0.0, bias_std=0.0, outlier_prob=0.0, swap_prob=0.0)
    np.testing.assert_array_equal(clean.apply(pose, conf, rng)[0], pose)
    noisy, c2 = DetectorNoise2D(std=0.004, drop_prob=0.1, swap_prob=0.0, outlier_prob=0.0).apply(pose, conf, rng)
    assert 0.08 < (c2 == 0).mean() < 0.12
    d = noisy - pose
    assert 0.003 < d.std() < 0.01
    swapped, _ = DetectorNoise2D(std=0.0, bias_std=0.0, outlier_prob=0.0, swap_prob=1.0).apply(pose, conf, rng)
    changed = (swapped != pose).any(-1)  # (n, F, J): exactly one left/right pair per frame
    assert (changed.sum(-1) == 2).all()
    with pytest.raises(ValueError, match="outlier_prob"):
        DetectorNoise2D(outlier_prob=2.0)


def test_augment_config_and_errors():
    assert augment_from_config(None) == (None, None, None)
    assert augment_from_config("none") == (None, None, None)
    m, c, n = augment_from_config("wide")
    assert isinstance(m, MotionAugment) and c.distance_range == (2.5, 10.0) and isinstance(n, DetectorNoise2D)
    m, c, n = augment_from_config({"motion": {"non_upright_prob": 0.5}})
    assert m.non_upright_prob == 0.5 and c is None and n is None
    with pytest.raises(ValueError, match="data.augment"):
        augment_from_config("strong")
    with pytest.raises(ValueError, match="unknown data.augment"):
        augment_from_config({"motions": {}})
    with pytest.raises(ValueError, match="data.augment.motion"):
        augment_from_config({"motion": {"speed": 2}})
    with pytest.raises(ValueError, match="speed_range"):
        MotionAugment(speed_range=(2.0, 1.0))
    with pytest.raises(ValueError, match="non_upright_prob"):
        MotionAugment(non_upright_prob=1.5)
    with pytest.raises(ValueError, match="kinematic tree"):
        MotionAugment(skeleton="coco17")
    with pytest.raises(TypeError, match="MotionAugment"):
        PoseWindowDataset([{"pose_3d": np.zeros((5, 17, 3))}], num_frames=3, augment="wide")


def test_run_config_augment_and_training_sequences():
    from modeling_mpm.training.config import RunConfig
    from modeling_mpm.training.data import build_splits

    cfg = RunConfig({"data": {"source": "demo", "augment": "wide", "train_sequences": ["climb_seq_1"],
                              "max_val_windows": 16, "eval_stride": 50}})
    train, val, _ = build_splits(cfg, 9, "h36m17")
    w = train.windows
    assert w.num_sequences == 1 and len(train) == 1010 and isinstance(w.augment, MotionAugment)
    assert isinstance(w.noise_2d, DetectorNoise2D) and val.dataset.windows.augment is None
    with pytest.raises(ValueError, match="train_sequences"):
        build_splits(RunConfig({"data": {"source": "demo", "train_sequences": ["cmu_01_03"]}}), 9, "h36m17")
    with pytest.raises(TypeError, match="train_sequences"):
        RunConfig({"data": {"train_sequences": [1]}})
    # every embedded sequence: "train+validation" concatenates the demo's splits
    both = RunConfig({"data": {"source": "demo", "train_split": "train+validation", "max_val_windows": 16,
                               "eval_stride": 50}})
    train, _, _ = build_splits(both, 9, "h36m17")
    assert train.windows.num_sequences == 6
    with pytest.raises(ValueError, match="no split 'tset'"):
        build_splits(RunConfig({"data": {"source": "demo", "train_split": "train+tset"}}), 9, "h36m17")


# ----------------------------------------------------------------------------- the "real" preset
def test_key_poses_keep_bone_lengths_and_the_torso(train_seqs):
    pose = _windows(train_seqs, 32, F=27)
    aug = MotionAugment(**{**OFF, "key_pose_prob": 1.0, "key_pose_limb_prob": 1.0})
    out = aug.apply_world(pose, np.random.default_rng(0)).astype(np.float64)
    np.testing.assert_allclose(_bone_lengths(out), _bone_lengths(pose), rtol=1e-4, atol=1e-5)
    torso = [H36M_17.index(n) for n in ("pelvis", "spine", "thorax", "neck_nose", "head_top", "left_hip",
                                        "right_hip", "left_shoulder", "right_shoulder")]
    np.testing.assert_allclose(out[:, :, torso], pose[:, :, torso], atol=1e-5)
    wrist = H36M_17.index("left_wrist")
    moved = np.linalg.norm(out[:, :, wrist] - pose[:, :, wrist], axis=-1).mean()
    assert moved > 0.1  # the arms really took new poses
    # smooth in time: frame-to-frame wrist steps stay small (one key pose to another over 27 frames)
    step = np.linalg.norm(np.diff(out[:, :, wrist], axis=1), axis=-1)
    assert step.max() < 0.25


def _arm_turn_deg(upper, lower, side):
    """Rotation of the upper arm about its axis (degrees, + internal) that the forearm directions show."""
    neutral = _forearm_neutral(upper)
    medial = side * np.cross(upper, neutral)
    swing = lower - (lower * upper).sum(-1, keepdims=True) * upper
    return np.degrees(np.arctan2((swing * medial).sum(-1), (swing * neutral).sum(-1)))


def test_arm_key_poses_keep_the_upper_arm_rotation_within_its_limits(train_seqs):
    # neutral: a hanging arm bends forward; an arm straight up bends backward; an arm out to the side, forward
    np.testing.assert_allclose(_forearm_neutral(np.array([[0.0, -1.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])),
                               [[0, 0, 1], [0, 0, -1], [0, 0, 1]], atol=1e-12)
    for side in (1.0, -1.0):
        upper, lower = _limb_key_pose(np.random.default_rng(0), 20000, side, True, (90.0, 70.0))
        bent = np.degrees(np.arccos(np.clip((upper * lower).sum(-1), -1, 1))) > 5
        turn = _arm_turn_deg(upper, lower, side)[bent]
        assert -90.01 < turn.min() < -85 and 65 < turn.max() < 70.01
        np.testing.assert_allclose(np.linalg.norm(lower, axis=-1), 1.0, atol=1e-9)
        # external rotation turns a hanging arm's forearm outward (to the body's side), internal across the belly
        hanging = (upper[:, 1] < -0.95) & ((upper * lower).sum(-1) < 0.5)      # elbow bent > 60 degrees
        out = hanging & (_arm_turn_deg(upper, lower, side) < -60)
        assert (lower[out, 0] * side > 0.3).all() and (lower[hanging & (_arm_turn_deg(upper, lower, side) > 50), 0]
                                                       * side < -0.3).all()
        free = _arm_turn_deg(*_limb_key_pose(np.random.default_rng(0), 20000, side, True), side)
        assert np.abs(free).max() > 175  # unlimited: the forearm anywhere on its cone
    # in windows: the first and last frames are the key poses themselves
    pose = _windows(train_seqs, 32, F=9)
    aug = MotionAugment(**{**OFF, "key_pose_prob": 1.0, "key_pose_limb_prob": 1.0, "arm_rotation_deg": (30.0, 20.0)})
    out = aug.apply_world(pose, np.random.default_rng(0)).astype(np.float64)
    frames = torso_frames(out)
    for side, (s, e, w) in ((1.0, ("left_shoulder", "left_elbow", "left_wrist")),
                            (-1.0, ("right_shoulder", "right_elbow", "right_wrist"))):
        j = [H36M_17.index(n) for n in (s, e, w)]
        for f in (0, -1):
            local = [np.einsum("nij,ni->nj", frames[:, f], out[:, f, b] - out[:, f, a]) for a, b in zip(j, j[1:])]
            upper, lower = (v / np.linalg.norm(v, axis=-1, keepdims=True) for v in local)
            bent = np.degrees(np.arccos(np.clip((upper * lower).sum(-1), -1, 1))) > 5
            turn = _arm_turn_deg(upper, lower, side)[bent]
            assert turn.min() > -30.5 and turn.max() < 20.5
    with pytest.raises(ValueError, match="arm_rotation_deg"):
        MotionAugment(arm_rotation_deg=(90.0, -1.0))
    assert augment_from_config("real")[0].arm_rotation_deg == (90.0, 70.0)


def test_lean_bends_the_upper_body_only(train_seqs):
    pose = _windows(train_seqs, 32, F=9)
    aug = MotionAugment(**{**OFF, "lean_prob": 1.0, "lean_deg": (45.0, 25.0, 45.0)})
    out = aug.apply_world(pose, np.random.default_rng(0)).astype(np.float64)
    lower = [H36M_17.index(n) for n in ("pelvis", "left_hip", "left_knee", "left_ankle", "right_hip",
                                        "right_knee", "right_ankle")]
    np.testing.assert_allclose(out[:, :, lower], pose[:, :, lower], atol=1e-5)
    np.testing.assert_allclose(_bone_lengths(out), _bone_lengths(pose), rtol=1e-4, atol=1e-5)
    head = H36M_17.index("head_top")
    assert np.linalg.norm(out[:, :, head] - pose[:, :, head], axis=-1).mean() > 0.05
    with pytest.raises(ValueError, match="lean_deg"):
        MotionAugment(lean_deg=(10.0, -1.0, 0.0))
    with pytest.raises(ValueError, match="key_pose_prob"):
        MotionAugment(key_pose_prob=1.5)


def test_relative_detector_noise_grows_with_the_person():
    rng = np.random.default_rng(0)
    base = rng.uniform(-0.2, 0.2, (64, 9, 17, 2)).astype(np.float32)
    noise = DetectorNoise2D(std=0.01, bias_std=0.0, outlier_prob=0.0, swap_prob=0.0, relative=True)
    conf = np.ones(base.shape[:3], np.float32)
    err_small = np.abs(noise.apply(base, conf, np.random.default_rng(1))[0] - base).mean()
    err_large = np.abs(noise.apply(base * 4, conf, np.random.default_rng(1))[0] - base * 4).mean()
    np.testing.assert_allclose(err_large / err_small, 4.0, rtol=1e-3)
    lost = DetectorNoise2D(std=0.0, bias_std=0.0, outlier_prob=0.0, swap_prob=0.0, frame_drop_prob=0.5)
    _, c = lost.apply(base, conf, np.random.default_rng(2))
    whole = (c == 0).all(-1)
    assert 0.3 < whole.mean() < 0.7 and ((c == 0).any(-1) == whole).all()  # whole frames, not joints
    with pytest.raises(TypeError, match="relative"):
        DetectorNoise2D(relative="yes")


def test_real_camera_preset_keeps_the_subject_in_frames_of_every_shape(train_seqs):
    motion, cameras, noise = augment_from_config("real")
    rng = np.random.default_rng(0)
    cams = cameras.sample_arrays(rng, 4000)
    aspects = np.unique(np.round(cams["height"] / cams["width"], 3))
    assert len(aspects) == 5 and aspects.min() < 0.6 and aspects.max() > 1.7  # landscape .. portrait
    # the subject's centre projects inside the central 70% of each frame, whatever lens and distance
    t = cams["translation"]
    u = cams["focal"] * t[:, 0] / t[:, 2] / (cams["width"] / 2)
    v = cams["focal"] * t[:, 1] / t[:, 2] / (cams["height"] / 2)
    assert np.abs(u).max() <= 0.7 + 1e-9 and np.abs(v).max() <= 0.7 + 1e-9
    assert np.abs(u).max() > 0.6 and np.abs(v).max() > 0.6
    # cameras from below the subject to 60 degrees above it, 2-8 m away
    forward = cams["rotation"][:, 2]
    down_angle = np.degrees(np.arcsin(-forward[:, 2]))
    assert down_angle.min() < -10 and 55 < down_angle.max() <= 60 + 1e-6
    assert 2.0 <= t[:, 2].min() and t[:, 2].max() <= 8.0
    w = PoseWindowDataset(train_seqs, num_frames=9, virtual_cameras=cameras, augment=motion, noise_2d=noise, seed=0)
    b = w.get_batch(np.arange(0, 2000, 10))
    assert np.isfinite(b["pose_2d"]).all() and np.isfinite(b["pose_3d"]).all()
    with pytest.raises(ValueError, match="in_frame"):
        wide_camera_sampler(in_frame=1.5)
    with pytest.raises(ValueError, match="frame_aspects"):
        wide_camera_sampler(frame_aspects=(1.0, 0.0))
