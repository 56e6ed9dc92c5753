"""Calibrated multi-view captures: a Qualisys ``.qca.txt`` calibration reader and linear
multi-view triangulation (DLT) with reprojection errors.

Conventions (the package's, see :mod:`modeling_mpm.cameras`):

* camera frame x right, y down, z forward, metres; a world point ``X`` (metres) maps to the
  camera as ``R @ X + t`` (``R`` world -> camera, ``t`` metres);
* pixel intrinsics are the 9-vector ``[fx, fy, cx, cy, k1, k2, k3, p1, p2]`` and projection is
  :func:`modeling_mpm.cameras.project_to_pixels` (radial + tangential distortion).

The Qualisys ``.qca.txt`` file (XML; facts read off pose2sim's ``calibration.py``, checked here by
reprojection, see ``tests/test_capture.py``):

* ``<intrinsic>`` values are in sensor units of 1/64 pixel: ``focalLengthU/V`` and
  ``centerPointU/V`` divided by 64 give pixels (the principal point is then taken relative to
  the ``fov_video`` window's ``left`` / ``top``);
* the image size is ``fov_video`` ``right - left + 1`` by ``bottom - top + 1``;
* ``<transform>`` holds the camera pose in the world: position ``x, y, z`` in millimetres and
  a rotation ``r11..r33`` whose rows (as written) are the camera's x, y, z axes in world
  coordinates, with the Qualisys camera looking along its **-z** axis and **y up**. Hence the
  package's world -> camera rotation is ``R = diag(1, -1, -1) @ [[r11, r12, r13], ...]`` and
  ``t = -R @ position / 1000``.
* distortion: pose2sim divides the ``radialDistortion`` / ``tangentalDistortion`` values by 64
  as well (which makes them negligible). :func:`read_qualisys_calibration` follows that by default
  (``distortion_scale=1/64``); on the pose2sim demo capture the median reprojection error of
  BlazePose body joints triangulated from all four views is the same to 0.1 px either way
  (16.70 vs 16.69 px, no view left out), so the data cannot tell the two readings apart. The OpenCV (k1, k2, p1, p2) values are put
  into the 9-vector as ``k1, k2, k3=0, p1, p2``; the package's tangential model (the Human3.6M /
  VideoPose3D one) differs from OpenCV's by terms of order ``p r^2`` (below 0.01 px here).

Triangulation (:func:`triangulate`): each view's pixels are undistorted to normalised image-plane
coordinates (:func:`undistort_points`), the homogeneous DLT system of the views that see the point
(weighted by an optional per-view confidence) is solved by SVD, and the point is reprojected into
every view. Outlier rule: while a point has at least ``min_views + 1`` views in use and its worst
used view reprojects more than ``max_reprojection_error`` pixels away, that view is left out and the
point is solved again (so at least ``min_views`` views always remain).
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from modeling_mpm.cameras import project_to_pixels

__all__ = [
    "CaptureCamera",
    "read_qualisys_calibration",
    "undistort_points",
    "triangulate",
    "TriangulationResult",
    "QUALISYS_SUBPIXELS",
]

#: Qualisys sensor units per pixel (the ``.qca.txt`` intrinsics are in 1/64 px)
QUALISYS_SUBPIXELS = 64.0

# Qualisys camera axes (x right, y up, z backward) -> package camera axes (x right, y down, z forward)
_QUALISYS_TO_CAMERA = np.diag([1.0, -1.0, -1.0])


@dataclass
class CaptureCamera:
    """One calibrated view of a capture.

    Attributes:
        name: camera name (the Qualisys ``serial``).
        intrinsics: (9,) pixel intrinsics ``[fx, fy, cx, cy, k1, k2, k3, p1, p2]``.
        width, height: image size in pixels.
        R: (3, 3) world -> camera rotation.
        t: (3,) world -> camera translation, metres (``X_cam = R @ X_world + t``).
    """

    name: str
    intrinsics: np.ndarray
    width: int
    height: int
    R: np.ndarray
    t: np.ndarray

    @property
    def image_size(self):
        return (int(self.width), int(self.height))

    @property
    def center(self) -> np.ndarray:
        """(3,) camera centre in world metres."""
        return -self.R.T @ self.t

    def world_to_camera(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) world metres -> (..., 3) camera metres."""
        p = np.asarray(points, dtype=np.float64)
        if p.shape[-1] != 3:
            raise ValueError(f"expected (..., 3) world points, got shape {p.shape}")
        return p @ self.R.T + self.t

    def project(self, points_world: np.ndarray, distortion: bool = True) -> np.ndarray:
        """(..., 3) world metres -> (..., 2) pixels (NaN in, NaN out)."""
        return project_to_pixels(self.world_to_camera(points_world), self.intrinsics, distortion)


def _natural_key(s: str):
    return [int(c) if c.isdigit() else c.lower() for c in re.split(r"(\d+)", s)]


def _float_attr(tag, name: str, path, cam: str) -> float:
    v = tag.get(name)
    if v is None:
        raise ValueError(f"{path}: camera {cam!r} has no {tag.tag} attribute {name!r}")
    try:
        out = float(v)
    except ValueError:
        raise ValueError(f"{path}: camera {cam!r}: {tag.tag} {name}={v!r} is not a number") from None
    if not np.isfinite(out):
        raise ValueError(f"{path}: camera {cam!r}: {tag.tag} {name}={v!r} is not finite")
    return out


def read_qualisys_calibration(path: Union[str, os.PathLike], distortion_scale: float = 1.0 / QUALISYS_SUBPIXELS,
                              binning: int = 1) -> List[CaptureCamera]:
    """Read a Qualisys ``.qca.txt`` calibration (XML) into :class:`CaptureCamera` objects.

    Args:
        path: the ``.qca.txt`` file.
        distortion_scale: factor applied to the file's distortion coefficients (default 1/64, as
            pose2sim does; 1.0 takes them as written).
        binning: pixel binning of the videos (1 = full resolution).

    Returns:
        the active cameras sorted by name in natural order (cam1, cam2, ..., cam10).

    Raises:
        ValueError with a sentence when the file is missing, not XML, or lacks a value.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"calibration file {path!r} does not exist")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise ValueError(f"{path} is not a Qualisys .qca.txt calibration (XML parse error: {e})") from None
    tags = root.findall("cameras/camera")
    if not tags:
        raise ValueError(f"{path} holds no <cameras><camera> entries; is it a Qualisys .qca.txt calibration?")
    if binning < 1:
        raise ValueError(f"binning must be a positive integer, got {binning}")
    cams = []
    for i, tag in enumerate(tags):
        name = tag.get("serial") or f"camera{i}"
        if tag.get("active", "1") == "0":
            continue
        fov, intr, tr = tag.find("fov_video"), tag.find("intrinsic"), tag.find("transform")
        for sub, what in ((fov, "fov_video"), (intr, "intrinsic"), (tr, "transform")):
            if sub is None:
                raise ValueError(f"{path}: camera {name!r} has no <{what}> element")
        left, right = _float_attr(fov, "left", path, name), _float_attr(fov, "right", path, name)
        top, bottom = _float_attr(fov, "top", path, name), _float_attr(fov, "bottom", path, name)
        width, height = (right - left + 1) / binning, (bottom - top + 1) / binning
        if width <= 0 or height <= 0:
            raise ValueError(f"{path}: camera {name!r} has an empty fov_video window")
        s = QUALISYS_SUBPIXELS * binning
        fx, fy = _float_attr(intr, "focalLengthU", path, name) / s, _float_attr(intr, "focalLengthV", path, name) / s
        cx = _float_attr(intr, "centerPointU", path, name) / s - left
        cy = _float_attr(intr, "centerPointV", path, name) / s - top
        k1, k2 = (_float_attr(intr, f"radialDistortion{j}", path, name) * distortion_scale for j in (1, 2))
        k3 = float(intr.get("radialDistortion3", 0.0) or 0.0) * distortion_scale
        p1, p2 = (_float_attr(intr, f"tangentalDistortion{j}", path, name) * distortion_scale for j in (1, 2))
        if fx <= 0 or fy <= 0:
            raise ValueError(f"{path}: camera {name!r} has a non-positive focal length")
        m = np.array([[_float_attr(tr, f"r{a}{b}", path, name) for b in (1, 2, 3)] for a in (1, 2, 3)])
        if not np.allclose(m @ m.T, np.eye(3), atol=1e-4) or np.linalg.det(m) < 0:
            raise ValueError(f"{path}: camera {name!r}: the transform's r11..r33 are not a rotation matrix")
        position = np.array([_float_attr(tr, a, path, name) for a in ("x", "y", "z")]) / 1000.0
        R = _QUALISYS_TO_CAMERA @ m
        cams.append(CaptureCamera(name=name, intrinsics=np.array([fx, fy, cx, cy, k1, k2, k3, p1, p2]),
                                  width=int(round(width)), height=int(round(height)), R=R, t=-R @ position))
    if not cams:
        raise ValueError(f"{path}: no active camera")
    return sorted(cams, key=lambda c: _natural_key(c.name))


def undistort_points(pixels: np.ndarray, intrinsics: np.ndarray, iterations: int = 20) -> np.ndarray:
    """(..., 2) pixels -> (..., 2) undistorted normalised image-plane coordinates ``(X/Z, Y/Z)``.

    Inverts the distortion of :func:`modeling_mpm.cameras.project_to_pixels` by fixed-point
    iteration (exact without distortion; below 1e-6 px for the mild lenses of real cameras).
    NaN in, NaN out.
    """
    uv = np.asarray(pixels, dtype=np.float64)
    k = np.asarray(intrinsics, dtype=np.float64)
    if uv.shape[-1] != 2:
        raise ValueError(f"expected (..., 2) pixel coordinates, got shape {uv.shape}")
    if k.shape != (9,):
        raise ValueError(f"intrinsics must be the 9-vector [fx, fy, cx, cy, k1, k2, k3, p1, p2], got shape {k.shape}")
    target = (uv - k[2:4]) / k[0:2]
    if not np.any(k[4:9]):
        return target
    radial, tangential = k[4:7], k[7:9]
    xy = target.copy()
    for _ in range(iterations):
        r2 = np.sum(xy ** 2, axis=-1, keepdims=True)
        rad = 1 + radial[0] * r2 + radial[1] * r2 ** 2 + radial[2] * r2 ** 3
        tan = np.sum(tangential * xy, axis=-1, keepdims=True)
        xy = (target - tangential * r2) / (rad + tan)
    return xy


@dataclass
class TriangulationResult:
    """Output of :func:`triangulate`.

    Attributes:
        points: (..., 3) world metres; NaN where fewer than ``min_views`` views saw the point.
        reprojection_error: (V, ...) pixels, the distance between each view's observation and the
            projection of the final point (also for left-out views); NaN where the view had no
            observation or the point could not be solved (kept for points set to NaN by
            ``reject_unresolved``).
        used: (V, ...) bool, the views the final point was solved from.
    """

    points: np.ndarray
    reprojection_error: np.ndarray
    used: np.ndarray


def _solve_dlt(xy: np.ndarray, P: np.ndarray, w: np.ndarray) -> np.ndarray:
    """xy (N, V, 2) normalised, P (V, 3, 4), w (N, V) >= 0 -> (N, 3) (NaN where < 2 views)."""
    a = xy[..., 0:1] * P[None, :, 2, :] - P[None, :, 0, :]   # (N, V, 4)
    b = xy[..., 1:2] * P[None, :, 2, :] - P[None, :, 1, :]
    ww = np.concatenate([w, w], axis=1)[..., None]
    A = np.where(ww > 0, np.concatenate([a, b], axis=1), 0.0)  # (N, 2V, 4); unseen views: zero rows
    # each equation scaled to unit norm (conditioning), then by its view's weight
    n = np.linalg.norm(A, axis=-1, keepdims=True)
    A = A / np.where(n > 0, n, 1.0) * ww
    _, _, vt = np.linalg.svd(A)
    X = vt[:, -1, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = X[:, :3] / X[:, 3:4]
    out[(w > 0).sum(axis=1) < 2] = np.nan
    return out


def _triangulation_inputs(points_2d, V: int, weights, max_reprojection_error, min_views: int):
    """Checked inputs of :func:`triangulate`: ``(uv (V, N, 2) px, weights (V, N), 0 where not seen;
    seen (V, N); the leading shape of the points)``."""
    obs = np.asarray(points_2d, dtype=np.float64)
    if V < 2:
        raise ValueError(f"triangulation needs at least 2 cameras, got {V}")
    if obs.ndim < 2 or obs.shape[0] != V or obs.shape[-1] not in (2, 3):
        raise ValueError(f"points_2d must be shaped (views={V}, ..., 2 or 3) pixels, got shape {obs.shape}")
    if min_views < 2:
        raise ValueError(f"min_views must be at least 2 (a point needs two views), got {min_views}")
    if max_reprojection_error is not None and not max_reprojection_error > 0:
        raise ValueError(f"max_reprojection_error must be a positive number of pixels, got {max_reprojection_error}")
    lead = obs.shape[1:-1]
    uv = obs[..., :2].reshape(V, -1, 2)
    if weights is None:
        w = obs[..., 2].reshape(V, -1) if obs.shape[-1] == 3 else np.ones(uv.shape[:2])
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != obs.shape[:-1]:
            raise ValueError(f"weights must be shaped {obs.shape[:-1]} (views, ...), got {w.shape}")
        w = w.reshape(V, -1)
    with np.errstate(invalid="ignore"):
        if np.any(w < 0):
            raise ValueError("weights must be non-negative (0 = view not used)")
    seen = np.isfinite(uv).all(-1) & np.isfinite(w) & (w > 0)
    return uv, np.where(seen, w, 0.0), seen, lead


def triangulate(points_2d, cameras: Sequence[CaptureCamera], weights=None,
                max_reprojection_error: Optional[float] = None, min_views: int = 2,
                reject_unresolved: bool = False) -> TriangulationResult:
    """Linear multi-view triangulation (DLT) with optional outlier views left out.

    Args:
        points_2d: (V, ..., 2) pixels per view (NaN = not seen); or (V, ..., 3) with a confidence
            as the third value (used as the weight when ``weights`` is None).
        cameras: V :class:`CaptureCamera` (same order as ``points_2d``).
        weights: optional (V, ...) non-negative per-view weights (0 = not seen); each view's
            equations are multiplied by its weight.
        max_reprojection_error: pixels; None keeps every view. Otherwise, per point, while at least
            ``min_views + 1`` views are in use and the worst used view's reprojection error exceeds
            it, that view is left out and the point solved again.
        min_views: fewest views a point is solved from (>= 2).
        reject_unresolved: with ``max_reprojection_error``, a point whose used views still reproject
            further than it once only ``min_views`` are left is set to NaN (the views disagree:
            no reliable point), instead of being kept.

    Returns:
        :class:`TriangulationResult` (points in world metres, per-view reprojection errors in px).
    """
    V = len(cameras)
    uv, w, seen, lead = _triangulation_inputs(points_2d, V, weights, max_reprojection_error, min_views)
    xy = np.stack([undistort_points(uv[v], cameras[v].intrinsics) for v in range(V)])  # (V, N, 2)
    P = np.stack([np.concatenate([c.R, np.asarray(c.t, dtype=np.float64)[:, None]], axis=1) for c in cameras])
    xy_n, w_n = np.transpose(xy, (1, 0, 2)), w.T.copy()  # (N, V, 2), (N, V)

    def errors(X, rows=slice(None)):
        err = np.full((len(X), V), np.nan)
        for v, c in enumerate(cameras):
            cam = c.world_to_camera(X)
            with np.errstate(invalid="ignore"):
                front = cam[:, 2] > 1e-6
            proj = project_to_pixels(cam, c.intrinsics)
            e = np.linalg.norm(proj - uv[v][rows], axis=-1)
            err[:, v] = np.where(front | ~np.isfinite(cam[:, 2]), e, np.inf)  # behind the camera: never kept
        return err

    X = _solve_dlt(xy_n, P, w_n)
    err = errors(X)
    if max_reprojection_error is not None:
        for _ in range(V):
            used = w_n > 0
            e_used = np.where(used & np.isfinite(X[:, :1]), np.nan_to_num(err, nan=-1.0, posinf=np.inf), -1.0)
            worst = np.argmax(e_used, axis=1)
            bad = (used.sum(1) >= min_views + 1) & (e_used[np.arange(len(X)), worst] > max_reprojection_error)
            if not bad.any():
                break
            idx = np.flatnonzero(bad)
            w_n[idx, worst[idx]] = 0.0
            X[idx] = _solve_dlt(xy_n[idx], P, w_n[idx])
            err[idx] = errors(X[idx], idx)
    err = np.where(seen.T, err, np.nan)
    err[~np.isfinite(X).all(-1)] = np.nan
    if max_reprojection_error is not None and reject_unresolved:
        # errors of rejected points are kept: they say why the point was rejected
        worst = np.max(np.where(w_n > 0, np.nan_to_num(err, nan=0.0), 0.0), axis=1)
        X[worst > max_reprojection_error] = np.nan
    used = (w_n > 0) & np.isfinite(X).all(-1, keepdims=True)
    return TriangulationResult(points=X.reshape(lead + (3,)), reprojection_error=err.T.reshape((V,) + lead),
                               used=used.T.reshape((V,) + lead))
