"""Lifted 3D that agrees with the 2D it was lifted from ("match the 2D").

A lifter regresses toward poses it has seen: on real footage its 3D, projected back into the image,
can be 100-200 mm off the detected 2D in the image plane (an arm thrown higher than any training pose).
The image plane is what the 2D model measures well; depth is what the lifter adds. Matching keeps
the lifter's depth and takes the in-plane position from the 2D:

1. fit the root's camera-frame translation ``T`` so that the lifted pose projects onto the 2D
   (weighted linear least squares over the joints, per frame);
2. put every joint on its 2D ray at its lifted depth, ``P_j = ray_j * (X_j,z + T_z) - T``;
3. blend: ``weight * P + (1 - weight) * X`` per joint, where 2D that lies far from the lifted pose's
   projection (a detector's failure) gets less weight and, beyond twice ``outlier_share`` of the
   body's projected size, none (two rounds of fitting).

The camera is a pinhole with the principal point at the image centre; its focal length, in pixels,
defaults to the image's long side (measured on the real capture: the calibrated intrinsics gave
the same accuracy, docs/real_footage.md). Coordinates are metres in the camera frame (x right, y down,
z forward).
"""

from __future__ import annotations

import warnings
from typing import Optional

import numpy as np

from .keypoints import _to_numeric_array, validate_image_size

__all__ = ["pixel_rays", "fit_root_translation", "match_keypoints_2d", "validate_focal_length", "require_pixels"]

#: joints with a full-weight 2D needed to fit a frame's translation; frames with fewer keep the lifted pose
MIN_FIT_JOINTS = 3
#: nearest depth (metres) at which a joint is put on its ray; nearer (or behind the camera) keeps the lifted joint
MIN_DEPTH = 0.1


def pixel_rays(keypoints_2d: np.ndarray, image_size, focal_length: Optional[float] = None) -> np.ndarray:
    """``(..., 2)`` pixels -> ``(..., 2)`` rays ``(x/z, y/z)`` of a pinhole camera with the principal point at the
    image centre and ``focal_length`` pixels (default: the long side of ``image_size`` ``(width, height)``)."""
    w, h = validate_image_size(image_size)
    f = _focal(focal_length, w, h)
    xy = np.asarray(keypoints_2d, dtype=np.float64)
    return (xy - np.array([w / 2.0, h / 2.0])) / f


def _focal(focal_length, w: float, h: float) -> float:
    return float(max(w, h)) if focal_length is None else validate_focal_length(focal_length)


def validate_focal_length(focal_length) -> float:
    """A pinhole focal length in pixels as a positive float (``TypeError`` / ``ValueError`` otherwise)."""
    if isinstance(focal_length, bool) or not isinstance(focal_length, (int, float, np.integer, np.floating)):
        raise TypeError(f"focal_length must be a number of pixels or None, got {type(focal_length).__name__}")
    if not np.isfinite(focal_length) or focal_length <= 0:
        raise ValueError(f"focal_length must be a positive number of pixels, got {focal_length!r}")
    return float(focal_length)


def fit_root_translation(pose_3d: np.ndarray, rays: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Camera-frame translation ``(frames, 3)`` metres that moves the root-relative ``pose_3d`` ``(frames, J, 3)``
    onto the ``rays`` ``(frames, J, 2)``: minimises ``sum_j w_j |(X_j + T)_xy - ray_j (X_j + T)_z|^2``.

    ``weights`` ``(frames, J)`` >= 0 (0 for a missing joint). NaN in a frame with fewer than :data:`MIN_FIT_JOINTS`
    weighted joints, a singular fit, or a root closer than :data:`MIN_DEPTH`."""
    X = np.asarray(pose_3d, dtype=np.float64)
    m = np.asarray(rays, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    usable = np.isfinite(m).all(-1) & np.isfinite(X).all(-1) & (w > 0)
    w = np.where(usable, w, 0.0)
    X, m = np.where(usable[..., None], X, 0.0), np.where(usable[..., None], m, 0.0)
    a, b = m[..., 0], m[..., 1]
    r1, r2 = a * X[..., 2] - X[..., 0], b * X[..., 2] - X[..., 1]  # T_x - a T_z = r1, T_y - b T_z = r2
    sw, swa, swb = w.sum(-1), (w * a).sum(-1), (w * b).sum(-1)
    normal = np.zeros(w.shape[:-1] + (3, 3))
    normal[..., 0, 0] = normal[..., 1, 1] = sw
    normal[..., 0, 2] = normal[..., 2, 0] = -swa
    normal[..., 1, 2] = normal[..., 2, 1] = -swb
    normal[..., 2, 2] = (w * (a * a + b * b)).sum(-1)
    rhs = np.stack([(w * r1).sum(-1), (w * r2).sum(-1), (w * (-a * r1 - b * r2)).sum(-1)], -1)
    ok = usable.sum(-1) >= MIN_FIT_JOINTS
    ok &= np.abs(np.linalg.det(normal)) > 1e-12 * np.maximum(sw, 1e-12) ** 3
    T = np.full(rhs.shape, np.nan)
    if ok.any():
        T[ok] = np.linalg.solve(normal[ok], rhs[ok][..., None])[..., 0]
    T[T[..., 2] < MIN_DEPTH] = np.nan
    return T


def match_keypoints_2d(pose_3d: np.ndarray, keypoints_2d: np.ndarray, image_size,
                       focal_length: Optional[float] = None, weight: float = 0.8, outlier_share: float = 0.1,
                       root: Optional[int] = 0, iterations: int = 2) -> np.ndarray:
    """The lifted ``pose_3d`` ``(frames, J, 3)`` (metres, camera frame, root-relative) moved toward its 2D.

    Args:
        keypoints_2d: ``(frames, J, 2)`` pixels, same joints as ``pose_3d``; NaN where missing (kept as lifted).
        image_size: ``(width, height)`` pixels; focal_length: pixels (default the long side).
        weight: share of the 2D-matched position, 0 (lifted pose unchanged) to 1 (on the 2D rays).
        outlier_share: 2D further than this share of the projected body size from the lifted pose's projection
            gets less weight, none at twice it; ``None``: every joint full weight.
        root: joint set to 0 in the output (root-relative, as the input); None: no re-centring.

    Returns float32 ``(frames, J, 3)``; frames that cannot be fitted (see :func:`fit_root_translation`) unchanged.
    """
    pose, kp = _check_match_inputs(pose_3d, keypoints_2d, weight, outlier_share, iterations)
    rays = pixel_rays(kp, image_size, focal_length)
    valid = np.isfinite(rays).all(-1) & np.isfinite(pose).all(-1)
    joint_weight = valid.astype(np.float64)
    for _ in range(iterations if outlier_share is not None else 1):
        T = fit_root_translation(pose, rays, joint_weight)
        if outlier_share is not None:
            joint_weight = _agreement(pose + T[:, None], rays, valid, outlier_share)
    depth = pose[..., 2] + T[:, None, 2]
    on_rays = np.concatenate([rays * depth[..., None], depth[..., None]], -1) - T[:, None]
    movable = valid & (depth >= MIN_DEPTH) & np.isfinite(on_rays).all(-1)
    share = np.where(movable, weight * joint_weight, 0.0)[..., None]
    out = share * np.where(movable[..., None], on_rays, 0.0) + (1.0 - share) * pose
    if root is not None:
        out = out - out[:, root:root + 1]
    return out.astype(np.float32)


def _agreement(posed: np.ndarray, rays: np.ndarray, valid: np.ndarray, outlier_share: float) -> np.ndarray:
    """``(frames, J)`` weights: 1 where the 2D is within ``outlier_share`` of the projected body size of the posed
    joints' projection, falling linearly to 0 at twice it; frames with fewer than :data:`MIN_FIT_JOINTS` such
    joints (or no fit) fall back to 1 for every valid joint."""
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN frames: no size, weights fall back below
        proj = posed[..., :2] / posed[..., 2:3]
        size = np.linalg.norm(np.nanmax(np.where(valid[..., None], proj, np.nan), axis=1)
                              - np.nanmin(np.where(valid[..., None], proj, np.nan), axis=1), axis=-1)
        dist = np.linalg.norm(rays - proj, axis=-1) / size[:, None]
        w = np.clip((2.0 * outlier_share - dist) / outlier_share, 0.0, 1.0)
    w = np.where(valid & np.isfinite(w), w, 0.0)
    few = (w > 0).sum(-1) < MIN_FIT_JOINTS
    return np.where(few[:, None], valid.astype(np.float64), w)


def require_pixels(image_size) -> None:
    """``ValueError`` unless there is an ``image_size``: matching works on pixel keypoints."""
    if image_size is None:
        raise ValueError("match_2d needs pixel keypoints with image_size (not coordinates='normalized')")


def _check_share(name: str, v, upper: float) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(v).__name__}")
    if not (0.0 <= v <= upper) or (upper == np.inf and v == 0):
        raise ValueError(f"{name} must be in {'[0, 1]' if upper == 1.0 else '(0, inf)'}, got {v!r}")


def _check_match_inputs(pose_3d, keypoints_2d, weight, outlier_share, iterations):
    _check_share("weight", weight, 1.0)
    if outlier_share is not None:
        _check_share("outlier_share", outlier_share, np.inf)
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations < 1:
        raise ValueError(f"iterations must be a positive int, got {iterations!r}")
    pose = _to_numeric_array(pose_3d, "pose_3d").astype(np.float64)
    kp = _to_numeric_array(keypoints_2d, "keypoints_2d").astype(np.float64)
    if pose.ndim != 3 or pose.shape[-1] != 3:
        raise ValueError(f"pose_3d must be (frames, joints, 3) metres, got shape {pose.shape}")
    if kp.shape != pose.shape[:-1] + (2,):
        raise ValueError(f"keypoints_2d must be (frames, joints, 2) pixels matching pose_3d {pose.shape}, "
                         f"got shape {kp.shape}")
    return pose, kp
