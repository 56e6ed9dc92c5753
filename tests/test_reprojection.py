"""modeling_mpm.reprojection: lifted 3D moved onto its 2D (root fit, rays, outlier gating, bad input), the
pipeline / CLI switches, and the gain on real detections of the pose2sim capture (tests/data/pose2sim)."""

import os
import sys

import numpy as np
import pytest

from modeling_mpm.reprojection import fit_root_translation, match_keypoints_2d, pixel_rays

W, H = 1080, 1920                     # portrait, as the real capture
F = float(max(W, H))                  # the default focal length


def _body(frames=20, joints=17, seed=0):
    """Root-relative bodies (frames, J, 3) metres (root = joint 0) and camera-frame root positions."""
    rng = np.random.default_rng(seed)
    pose = rng.uniform([-0.4, -0.9, -0.3], [0.4, 0.9, 0.3], size=(frames, joints, 3))
    pose -= pose[:, :1]
    root = np.stack([rng.uniform(-0.5, 0.5, frames), rng.uniform(-0.3, 0.3, frames), rng.uniform(3, 6, frames)], -1)
    return pose, root


def _project(points):
    return points[..., :2] / points[..., 2:3] * F + np.array([W / 2, H / 2])


def test_exact_pose_is_kept_and_its_translation_recovered():
    pose, root = _body()
    kp = _project(pose + root[:, None])
    T = fit_root_translation(pose, pixel_rays(kp, (W, H)), np.ones(pose.shape[:2]))
    np.testing.assert_allclose(T, root, atol=1e-9)
    out = match_keypoints_2d(pose, kp, (W, H), weight=1.0)
    np.testing.assert_allclose(out, pose, atol=1e-5)


def test_in_plane_error_is_removed_and_depth_kept():
    """The lifter's usual failure, an in-plane error (limb at the wrong height) with the depth right: at weight 1
    the output projects onto the 2D and keeps each joint's lifted depth; at 0.8 it moves 80% of the way."""
    pose, root = _body(seed=1)
    kp = _project(pose + root[:, None])
    rng = np.random.default_rng(2)
    lifted = pose.copy()
    lifted[:, 1:, :2] += rng.normal(0, 0.04, size=lifted[:, 1:, :2].shape)
    out = match_keypoints_2d(lifted, kp, (W, H), weight=1.0, outlier_share=None)
    rays = pixel_rays(kp, (W, H))
    T = fit_root_translation(out, rays, np.ones(out.shape[:2]))
    np.testing.assert_allclose(_project(out + T[:, None]), kp, atol=1e-3)        # pixels
    T_lifted = fit_root_translation(lifted, rays, np.ones(out.shape[:2]))
    np.testing.assert_allclose(out[..., 2] + T[:, None, 2], lifted[..., 2] + T_lifted[:, None, 2], atol=1e-5)
    err = lambda p: np.linalg.norm(p - pose, axis=-1).mean()                    # noqa: E731
    assert err(out) < 0.5 * err(lifted)
    part = match_keypoints_2d(lifted, kp, (W, H), weight=0.8, outlier_share=None)
    np.testing.assert_allclose(part - part[:, :1], 0.8 * (out - out[:, :1]) + 0.2 * lifted, atol=1e-5)


def test_a_detector_failure_is_left_out():
    """One joint's 2D 300 px away (a leg on the wrong person): gated, it keeps its lifted position and does not
    pull the rest; ungated, it moves onto the wrong 2D."""
    pose, root = _body(frames=5, seed=3)
    kp = _project(pose + root[:, None])
    kp[:, 5] += 300.0
    gated = match_keypoints_2d(pose, kp, (W, H), weight=1.0)
    np.testing.assert_allclose(gated, pose, atol=1e-4)
    ungated = match_keypoints_2d(pose, kp, (W, H), weight=1.0, outlier_share=None)
    assert np.linalg.norm(ungated[:, 5] - pose[:, 5], axis=-1).min() > 0.1


def test_missing_2d_and_unfittable_frames_keep_the_lifted_pose():
    pose, root = _body(frames=4, seed=4)
    kp = _project(pose + root[:, None])
    kp[0] = np.nan                    # nothing detected
    kp[1, 2:] = np.nan                # two joints: too few to fit
    kp[2, 7] = np.nan                 # one joint missing
    lifted = pose.copy()
    lifted[:, 1:, 0] += 0.05
    out = match_keypoints_2d(lifted, kp, (W, H), weight=1.0, outlier_share=None)
    np.testing.assert_allclose(out[:2], lifted[:2], atol=1e-6)
    moved = np.linalg.norm(out[2] - lifted[2], axis=-1)
    assert moved[7] < moved[np.arange(17) != 7].max()          # the missing joint only follows the root
    assert np.isfinite(out).all() and out.dtype == np.float32
    assert np.isnan(fit_root_translation(pose[:1], pixel_rays(kp[1:2], (W, H)), np.ones((1, 17)))).all()
    behind = fit_root_translation(pose[:1], pixel_rays(_project(pose[3:4] - root[3:4, None]), (W, H)),
                                  np.ones((1, 17)))
    assert np.isnan(behind).all()


def test_focal_length_changes_little_of_a_root_relative_pose():
    """The default focal length (the long side) 1.5x off the true one: the matched pose is still closer to the truth
    than the lifted one, and within 15% of what the true focal length gives."""
    pose, root = _body(seed=5)
    true_f = 1.5 * F
    kp = (pose + root[:, None])[..., :2] / (pose + root[:, None])[..., 2:3] * true_f + np.array([W / 2, H / 2])
    lifted = pose + np.random.default_rng(6).normal(0, 0.03, pose.shape)
    lifted -= lifted[:, :1]
    err = lambda p: np.linalg.norm(p - pose, axis=-1).mean()                    # noqa: E731
    good = err(match_keypoints_2d(lifted, kp, (W, H), focal_length=true_f))
    guess = err(match_keypoints_2d(lifted, kp, (W, H)))
    assert good < guess < min(1.15 * good, 0.8 * err(lifted))


@pytest.mark.parametrize("kwargs, exc, msg", [
    (dict(weight=1.5), ValueError, "weight"),
    (dict(weight="a"), TypeError, "weight"),
    (dict(outlier_share=0), ValueError, "outlier_share"),
    (dict(focal_length=-3.0), ValueError, "focal_length"),
    (dict(focal_length="wide"), TypeError, "focal_length"),
    (dict(iterations=0), ValueError, "iterations"),
    (dict(image_size=(0, 10)), ValueError, "image_size"),
    (dict(keypoints_2d=np.zeros((4, 16, 2))), ValueError, "keypoints_2d"),
    (dict(keypoints_2d="abc"), TypeError, "keypoints_2d"),
    (dict(pose_3d=np.zeros((4, 17, 2))), ValueError, "pose_3d"),
])
def test_bad_input(kwargs, exc, msg):
    args = dict(pose_3d=np.zeros((4, 17, 3)), keypoints_2d=np.zeros((4, 17, 2)), image_size=(W, H))
    args.update(kwargs)
    with pytest.raises(exc, match=msg):
        match_keypoints_2d(**args)


@pytest.fixture(scope="module")
def lift_pipe():
    import torch
    from transformers import pipeline

    import modeling_mpm  # noqa: F401
    from modeling_mpm import MPMConfig, MPMForPoseLifting

    torch.manual_seed(0)
    cfg = MPMConfig(num_frames=9, num_layers=1, hidden_size=32, intermediate_size=64, num_attention_heads=4,
                    reduce_strides=[3, 3], dropout=0.0)
    return pipeline("pose-lifting", model=MPMForPoseLifting(cfg).eval())


def test_pipeline_match_2d(lift_pipe):
    """``match_2d=True`` is the lifted 3D passed through match_keypoints_2d with the pipeline's own 2D."""
    pose, root = _body(frames=12, seed=7)
    kp = _project(pose + root[:, None])
    kp[3, 4] = np.nan
    plain = lift_pipe(kp, image_size=(W, H), keypoint_format="h36m", return_keypoints_2d=True)
    matched = lift_pipe(kp, image_size=(W, H), keypoint_format="h36m", match_2d=True, focal_length=1.2 * F)
    np.testing.assert_allclose(matched["pose_3d"],
                               match_keypoints_2d(plain["pose_3d"], plain["keypoints_2d"], (W, H), 1.2 * F), atol=1e-5)
    assert np.abs(matched["pose_3d"] - plain["pose_3d"]).max() > 0.01
    assert (matched["pose_3d"][:, 0] == 0).all()
    np.testing.assert_array_equal(matched["valid"], plain["valid"])
    with pytest.raises(ValueError, match="image_size"):
        lift_pipe(kp / np.array([W, H]), coordinates="normalized", keypoint_format="h36m", match_2d=True)
    with pytest.raises(TypeError, match="match_2d"):
        lift_pipe(kp, image_size=(W, H), keypoint_format="h36m", match_2d="yes")
    with pytest.raises(ValueError, match="focal_length"):
        lift_pipe(kp, image_size=(W, H), keypoint_format="h36m", match_2d=True, focal_length=0)


def test_lift_video_switch():
    from modeling_mpm.cli.lift_video import build_parser

    assert build_parser().parse_args(["v.mp4", "-o", "o.npz"]).no_match_2d is False
    assert build_parser().parse_args(["v.mp4", "-o", "o.npz", "--no-match-2d"]).no_match_2d is True


def test_mpm_lift_match_2d_writes_matched_3d(tmp_path, lift_pipe):
    """``mpm lift --match-2d --focal-length F``: the written 3D is the pipeline's matched 3D."""
    from modeling_mpm.cli import main

    lift_pipe.model.save_pretrained(tmp_path / "m")
    pose, root = _body(frames=10, seed=8)
    kp = _project(pose + root[:, None])
    np.savez(tmp_path / "kp.npz", keypoints=kp, image_size=np.array([W, H]))
    assert main(["lift", str(tmp_path / "kp.npz"), "--model", str(tmp_path / "m"), "-o", str(tmp_path / "o.npz"),
                 "--format", "h36m", "--match-2d", "--focal-length", str(F), "--no-progress"]) == 0
    got = np.load(tmp_path / "o.npz")["pose_3d"]
    want = lift_pipe(kp, image_size=(W, H), keypoint_format="h36m", match_2d=True, focal_length=F)["pose_3d"]
    plain = lift_pipe(kp, image_size=(W, H), keypoint_format="h36m")["pose_3d"]
    np.testing.assert_allclose(got, want, atol=1e-3)          # the file's 2D goes through float32
    assert np.abs(got - plain).max() > 0.01


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: H36M-17 index of each landmark in tests/data/pose2sim/single_person_blazepose_body.npz (BlazePose 11-16, 23-28)
_BODY_TO_H36M = [11, 14, 12, 15, 13, 16, 4, 1, 5, 2, 6, 3]


def test_real_detections_match_the_triangulated_reference_better():
    """Real BlazePose 2D of the pose2sim capture (four calibrated views, six frames): each view lifted alone by the
    shipped general lifter is closer to the multi-view reference (P-MPJPE, 12 body joints) with match_2d."""
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    from capture import read_qualisys_calibration, triangulate
    from transformers import pipeline

    from modeling_mpm.metrics import p_mpjpe_per_frame
    from modeling_mpm.pretrained import GENERAL_LIFTER

    cams = read_qualisys_calibration(os.path.join(ROOT, "tests", "data", "pose2sim", "Calib.qca.txt"))
    d = np.load(os.path.join(ROOT, "tests", "data", "pose2sim", "single_person_blazepose_body.npz"))
    kp = d["keypoints"].astype(np.float64)                                  # (4 views, 6 frames, 12, 3)
    ref = triangulate(kp[..., :2], cams, weights=np.where(kp[..., 2] >= 0.5, kp[..., 2], 0.0),
                      max_reprojection_error=15.0).points                   # (6, 12, 3) world metres
    pipe = pipeline("pose-lifting", model=GENERAL_LIFTER)
    errs = {False: [], True: []}
    for v, cam in enumerate(cams):
        h36m = np.full((kp.shape[1], 17, 3), np.nan)
        h36m[:, _BODY_TO_H36M] = kp[v]
        ref_cam = cam.world_to_camera(ref)
        ok = np.isfinite(ref_cam).all((-1, -2))
        for match in (False, True):
            pose = pipe(h36m, image_size=tuple(d["image_size"][v]), keypoint_format="h36m", mode="seq2seq",
                        match_2d=match)["pose_3d"][:, _BODY_TO_H36M]
            errs[match].append(1000 * p_mpjpe_per_frame(pose[ok], ref_cam[ok]).mean())
    assert np.mean(errs[True]) < np.mean(errs[False]) - 5.0, errs


def test_constant_bone_lengths_on_embedded_motion():
    """A real motion's bones stretched per frame (as a lifter's are) get back one length each, the median; every
    bone keeps its direction and the root its place; NaN frames stay NaN and do not move the median."""
    from modeling_mpm.data import load_demo_dataset, load_sequences
    from modeling_mpm.skeleton import H36M_17, constant_bone_lengths, rescale_bones

    pose = load_sequences(load_demo_dataset()["validation"])[0]["pose_3d"][:200].astype(np.float64)
    parents = H36M_17.parents
    stretch = np.random.default_rng(0).uniform(0.8, 1.25, size=(len(pose), 17))
    lifted = rescale_bones(pose[:, None], parents, stretch)[:, 0]
    lifted[7] = np.nan
    out = constant_bone_lengths(lifted, parents)
    assert np.isnan(out[7]).all() and np.isfinite(np.delete(out, 7, 0)).all()
    ok = np.delete(np.arange(len(pose)), 7)
    for j, p in enumerate(parents):
        if p < 0:
            np.testing.assert_array_equal(out[ok, j], lifted[ok, j])
            continue
        bone, was = out[ok, j] - out[ok, p], lifted[ok, j] - lifted[ok, p]
        length = np.linalg.norm(bone, axis=-1)
        np.testing.assert_allclose(length, np.median(np.linalg.norm(was, axis=-1)), rtol=1e-9)
        np.testing.assert_allclose(bone / length[:, None], was / np.linalg.norm(was, axis=-1, keepdims=True), atol=1e-9)
    # the true lengths are nearer than the stretched ones (the stretch is centred near 1)
    true = np.linalg.norm(pose[:, 1:] - pose[:, parents[1:]], axis=-1)[ok]
    got = np.linalg.norm(out[ok, 1:] - out[ok][:, parents[1:]], axis=-1)
    stretched = np.linalg.norm(lifted[ok, 1:] - lifted[ok][:, parents[1:]], axis=-1)
    assert np.abs(got - true).mean() < 0.5 * np.abs(stretched - true).mean()
    with pytest.raises(ValueError, match="poses"):
        constant_bone_lengths(pose[0], parents)


def test_pipeline_constant_bones(lift_pipe):
    """``constant_bones=True``: the lifted sequence's bones at one length each, applied before ``match_2d``."""
    from modeling_mpm.skeleton import H36M_17, constant_bone_lengths

    pose, root = _body(frames=12, seed=8)
    kp = _project(pose + root[:, None])
    plain = lift_pipe(kp, image_size=(W, H), keypoint_format="h36m", return_keypoints_2d=True)
    fixed = lift_pipe(kp, image_size=(W, H), keypoint_format="h36m", constant_bones=True)["pose_3d"]
    np.testing.assert_allclose(fixed, constant_bone_lengths(plain["pose_3d"], H36M_17.parents), atol=1e-6)
    lengths = np.linalg.norm(fixed[:, 1:] - fixed[:, H36M_17.parents[1:]], axis=-1)
    assert lengths.std(0).max() < 1e-5 < np.linalg.norm(plain["pose_3d"][:, 1:] - plain["pose_3d"][:, H36M_17.parents[1:]],
                                                        axis=-1).std(0).max()
    both = lift_pipe(kp, image_size=(W, H), keypoint_format="h36m", constant_bones=True, match_2d=True)["pose_3d"]
    np.testing.assert_allclose(both, match_keypoints_2d(fixed, plain["keypoints_2d"], (W, H)), atol=1e-5)
    with pytest.raises(TypeError, match="constant_bones"):
        lift_pipe(kp, image_size=(W, H), keypoint_format="h36m", constant_bones="yes")
    from modeling_mpm.cli.lift_video import build_parser

    assert build_parser().parse_args(["v.mp4", "-o", "o.npz"]).no_constant_bones is False
    assert build_parser().parse_args(["v.mp4", "-o", "o.npz", "--no-constant-bones"]).no_constant_bones is True
