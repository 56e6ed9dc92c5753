"""Cameras: Human3.6M calibration, projection, screen-coordinate normalisation and random virtual cameras.

Conventions (README, "Coordinate conventions"; docs/data.md, "Conventions"):

* Camera frame: x right, y down, z forward (OpenCV / Human3.6M), metres.
* Pixel intrinsics: 9-vector ``[fx, fy, cx, cy, k1, k2, k3, p1, p2]`` (pixels; k radial,
  p tangential, the Human3.6M / VideoPose3D distortion model).
* Normalised intrinsics (what models see): ``f' = f / w * 2``, ``cx' = cx / w * 2 - 1``,
  ``cy' = cy / w * 2 - h / w``; distortion coefficients unchanged.
* Normalised screen coordinates: ``u = x / w * 2 - 1``, ``v = y / w * 2 - h / w``.
* Human3.6M extrinsics: a unit quaternion ``orientation`` (w, x, y, z) that rotates camera
  axes into world axes and the camera centre ``translation`` in world millimetres; a world
  point X (metres) maps to the camera as ``q^-1 * (X - t/1000)``.

The Human3.6M numbers (``h36m_cameras.json``, read at import) are the data set's standard calibration.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .keypoints import normalize_screen_coordinates  # the one screen normalisation
from .keypoints import unnormalize_screen_coordinates as image_coordinates

__all__ = ["H36M_CAMERA_IDS", "H36M_INTRINSICS", "H36M_EXTRINSICS", "H36M_SUBJECTS", "h36m_camera", "h36m_cameras",
           "load_camera_json", "Camera", "normalize_screen_coordinates", "image_coordinates", "normalize_intrinsics",
           "qrot", "qinverse", "world_to_camera", "camera_to_world", "project_to_pixels", "project_normalized",
           "look_at_rotation", "VirtualCameraSampler", "VirtualCamera", "orbit_rotations", "camera_arrays"]


def _read_h36m_calibration():
    """The Human3.6M tables from ``h36m_cameras.json`` (data next to this module)."""
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "h36m_cameras.json"), encoding="utf-8") as f:
        data = json.load(f)
    return (tuple(data["camera_ids"]), {k: tuple(v) for k, v in data["intrinsics"].items()},
            {s: tuple(tuple(c) for c in cams) for s, cams in data["extrinsics"].items()})


#: ids; id -> (cx, cy, fx, fy, k1, k2, k3, p1, p2, width, height) in pixels; subject -> one
#: (qw, qx, qy, qz, tx_mm, ty_mm, tz_mm) per camera, in H36M_CAMERA_IDS order.
H36M_CAMERA_IDS, H36M_INTRINSICS, H36M_EXTRINSICS = _read_h36m_calibration()
H36M_SUBJECTS: Tuple[str, ...] = tuple(H36M_EXTRINSICS)


@dataclass
class Camera:
    """A calibrated camera: ``intrinsics`` (9,) pixels ``[fx, fy, cx, cy, k1, k2, k3, p1, p2]``, ``width`` /
    ``height`` pixels, ``orientation`` (4,) unit quaternion (w, x, y, z) camera -> world or None, ``translation``
    (3,) camera centre in world **metres** or None."""

    id: str
    intrinsics: np.ndarray
    width: int
    height: int
    orientation: Optional[np.ndarray] = None
    translation: Optional[np.ndarray] = None

    @property
    def image_size(self) -> Tuple[int, int]:
        return (int(self.width), int(self.height))

    def normalized_intrinsics(self) -> np.ndarray:
        """(9,) float32 normalised intrinsics (see module docstring)."""
        return normalize_intrinsics(self.intrinsics, self.width, self.height)

    def world_to_camera(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) world metres -> (..., 3) camera metres."""
        if self.orientation is None or self.translation is None:
            raise ValueError(f"camera {self.id} has no extrinsics")
        return world_to_camera(points, self.orientation, self.translation)

    def project(self, points_camera: np.ndarray) -> np.ndarray:
        """(..., 3) camera metres -> (..., 2) pixels, with distortion."""
        return project_to_pixels(points_camera, self.intrinsics)


def h36m_camera(subject: str, camera: int | str) -> Camera:
    """The Human3.6M camera ``camera`` (index 0-3 or id string) for ``subject`` ("S1".."S11")."""
    if subject not in H36M_EXTRINSICS:
        raise ValueError(f"unknown Human3.6M subject {subject!r}; known: {list(H36M_SUBJECTS)}")
    if isinstance(camera, str):
        if camera not in H36M_CAMERA_IDS:
            raise ValueError(f"unknown Human3.6M camera id {camera!r}; known: {list(H36M_CAMERA_IDS)}")
        index = H36M_CAMERA_IDS.index(camera)
    else:
        index = int(camera)
        if not 0 <= index < 4:
            raise ValueError(f"Human3.6M camera index must be 0..3, got {camera}")
    cam_id = H36M_CAMERA_IDS[index]
    cx, cy, fx, fy, k1, k2, k3, p1, p2, w, h = H36M_INTRINSICS[cam_id]
    ext = H36M_EXTRINSICS[subject][index]
    return Camera(id=cam_id, intrinsics=np.array([fx, fy, cx, cy, k1, k2, k3, p1, p2], dtype=np.float64),
                  width=int(w), height=int(h), orientation=_unit(np.array(ext[:4], dtype=np.float64)),
                  translation=np.array(ext[4:], dtype=np.float64) / 1000.0)


def _unit(q: np.ndarray) -> np.ndarray:
    return q / np.linalg.norm(q)  # the published quaternions are float32-rounded: make q^-1 = conj(q) exact


def h36m_cameras(subject: str) -> List[Camera]:
    """The four Human3.6M cameras of ``subject``, in the standard order."""
    return [h36m_camera(subject, i) for i in range(4)]


def load_camera_json(path: str) -> Dict[str, List[Camera]]:
    """Cameras from a JSON file ``{subject: [{id, width, height, intrinsics (9, pixels), orientation (w,x,y,z),
    translation (3, millimetres)}, ...]}`` (a user's own calibration)."""
    from .data.io import read_json  # bounded: size and nesting checked before parsing

    data = read_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object subject -> list of cameras")
    out: Dict[str, List[Camera]] = {}
    for subject, cams in data.items():
        if not isinstance(cams, list) or not all(isinstance(c, dict) for c in cams):
            raise ValueError(f"{path}: the cameras of {subject!r} must be a list of JSON objects")
        out[subject] = []
        for i, c in enumerate(cams):
            missing = {"id", "width", "height", "intrinsics", "orientation", "translation"} - set(c)
            if missing:
                raise ValueError(f"{path}: camera {i} of {subject} lacks {sorted(missing)}")
            intr = np.asarray(c["intrinsics"], dtype=np.float64)
            if intr.shape != (9,):
                raise ValueError(f"{path}: intrinsics of camera {i} of {subject} must have 9 values")
            out[subject].append(Camera(str(c["id"]), intr, int(c["width"]), int(c["height"]),
                                       _unit(np.asarray(c["orientation"], dtype=np.float64)),
                                       np.asarray(c["translation"], dtype=np.float64) / 1000.0))
    return out


def normalize_intrinsics(intrinsics: np.ndarray, w: float, h: float) -> np.ndarray:
    """(..., 9) pixel intrinsics -> (..., 9) normalised ``[fx', fy', cx', cy', k1..k3, p1, p2]``."""
    k = np.array(intrinsics, dtype=np.float64)
    if k.shape[-1] != 9:
        raise ValueError(f"intrinsics must have 9 values [fx,fy,cx,cy,k1,k2,k3,p1,p2], got {k.shape}")
    k[..., 0:2] = k[..., 0:2] / w * 2
    k[..., 2] = k[..., 2] / w * 2 - 1
    k[..., 3] = k[..., 3] / w * 2 - h / w
    return k.astype(np.float32)


def qrot(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors ``v`` (..., 3) by unit quaternions ``q`` (..., 4) (w, x, y, z)."""
    q, v = np.asarray(q, dtype=np.float64), np.asarray(v, dtype=np.float64)
    uv = np.cross(q[..., 1:], v)
    return v + 2 * (q[..., :1] * uv + np.cross(q[..., 1:], uv))


def qinverse(q: np.ndarray) -> np.ndarray:
    """Inverse of a unit quaternion (w, x, y, z)."""
    q = np.array(q, dtype=np.float64)
    q[..., 1:] *= -1
    return q


def world_to_camera(points: np.ndarray, orientation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """(..., 3) world metres -> camera metres: ``q^-1 (X - t)``; t in metres."""
    points = np.asarray(points)
    if points.shape[-1] != 3:
        raise ValueError(f"expected (..., 3) points, got shape {points.shape}")
    q = np.broadcast_to(qinverse(orientation), points.shape[:-1] + (4,))
    out = qrot(q, points - np.asarray(translation, dtype=np.float64))
    return out.astype(points.dtype if points.dtype.kind == "f" else np.float64)


def camera_to_world(points: np.ndarray, orientation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """(..., 3) camera metres -> world metres: ``q X + t``."""
    points = np.asarray(points)
    q = np.broadcast_to(np.asarray(orientation, dtype=np.float64), points.shape[:-1] + (4,))
    out = qrot(q, points) + np.asarray(translation, dtype=np.float64)
    return out.astype(points.dtype if points.dtype.kind == "f" else np.float64)


def _distort(xy: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Apply the Human3.6M distortion to normalised image-plane points xy = X/Z (..., 2)."""
    radial, tangential = k[..., 4:7], k[..., 7:9]
    r2 = np.sum(xy ** 2, axis=-1, keepdims=True)
    rad = 1 + radial[..., 0:1] * r2 + radial[..., 1:2] * r2 ** 2 + radial[..., 2:3] * r2 ** 3
    tan = np.sum(tangential * xy, axis=-1, keepdims=True)
    return xy * (rad + tan) + tangential * r2


def project_to_pixels(points_camera: np.ndarray, intrinsics: np.ndarray, distortion: bool = True) -> np.ndarray:
    """(..., 3) camera-frame points -> (..., 2) pixels with the 9-vector pixel intrinsics (VideoPose3D model):
    ``xy = X/Z`` (z clipped to 1e-6, clamped to [-1, 1] with distortion),
    ``xy' = xy (1 + k1 r^2 + k2 r^4 + k3 r^6 + p . xy) + p r^2``, ``uv = f xy' + c``."""
    p = np.asarray(points_camera, dtype=np.float64)
    if p.shape[-1] != 3:
        raise ValueError(f"expected (..., 3) camera points, got shape {p.shape}")
    k = np.asarray(intrinsics, dtype=np.float64)
    if k.shape[-1] != 9:
        raise ValueError(f"intrinsics must have 9 values, got shape {k.shape}")
    k = np.broadcast_to(k, p.shape[:-1] + (9,)) if k.ndim == 1 else k
    xy = p[..., :2] / np.clip(p[..., 2:3], 1e-6, None)
    if distortion:
        xy = _distort(np.clip(xy, -1.0, 1.0), k)
    return xy * k[..., 0:2] + k[..., 2:4]


def project_normalized(points_camera: np.ndarray, intrinsics_normalized: np.ndarray,
                       distortion: bool = True) -> np.ndarray:
    """Projection with normalised intrinsics -> normalised screen coordinates (..., 2)
    (= ``normalize_screen_coordinates(project_to_pixels(X, K), w, h)``)."""
    return project_to_pixels(points_camera, intrinsics_normalized, distortion)


def look_at_rotation(position: np.ndarray, target: np.ndarray, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """(3, 3) world -> camera rotation (rows: camera x right, y down, z forward) for a camera at
    ``position`` looking at ``target`` with world ``up`` (default Z up)."""
    forward = np.asarray(target, dtype=np.float64) - np.asarray(position, dtype=np.float64)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, np.asarray(up, dtype=np.float64))
    n = np.linalg.norm(right)
    if n < 1e-8:
        raise ValueError("camera looks along the up axis; the look-at rotation is undefined")
    right /= n
    down = np.cross(forward, right)
    return np.stack([right, down, forward])


def orbit_rotations(yaw: np.ndarray, elevation: np.ndarray) -> np.ndarray:
    """(n, 3, 3) world -> camera rotations of cameras on a sphere around the origin (world Z
    up) at azimuth ``yaw`` and height angle ``elevation`` (radians, (n,)), looking at the origin.
    Same as :func:`look_at_rotation` for each camera."""
    yaw = np.asarray(yaw, dtype=np.float64).reshape(-1)
    el = np.asarray(elevation, dtype=np.float64).reshape(-1)
    cy, sy, ce, se = np.cos(yaw), np.sin(yaw), np.cos(el), np.sin(el)
    forward = -np.stack([ce * cy, ce * sy, se], axis=-1)
    right = np.stack([-sy, cy, np.zeros_like(yaw)], axis=-1)
    down = np.cross(forward, right)
    return np.stack([right, down, forward], axis=1)


def camera_arrays(cameras: Sequence["VirtualCamera"]) -> Dict[str, np.ndarray]:
    """Stack virtual cameras into arrays: ``rotation`` (n,3,3), ``translation`` (n,3) (added
    after rotating: offset x, offset y, distance), ``focal`` (n,), ``width`` / ``height`` (n,)."""
    col = lambda k: np.array([getattr(c, k) for c in cameras], dtype=np.float64)  # noqa: E731
    return {"rotation": orbit_rotations(col("yaw"), col("elevation")),
            "translation": np.array([[c.offset[0], c.offset[1], c.distance] for c in cameras], dtype=np.float64),
            "focal": col("focal"), "width": col("width"), "height": col("height")}


@dataclass
class VirtualCamera:
    """A pinhole camera looking at the subject (world Z up): ``yaw`` azimuth (radians, 0 = +X side), ``elevation``
    (radians), ``distance`` (metres), ``focal`` (pixels, fx = fy), ``width`` / ``height`` (pixels, principal point
    at the centre), ``offset`` (2,) shift of the subject in the image plane (metres at its depth)."""

    yaw: float
    elevation: float
    distance: float
    focal: float
    width: int = 1000
    height: int = 1000
    offset: Tuple[float, float] = (0.0, 0.0)

    @property
    def intrinsics(self) -> np.ndarray:
        """(9,) pixel intrinsics, no distortion."""
        return np.array([self.focal, self.focal, self.width / 2, self.height / 2, 0, 0, 0, 0, 0], dtype=np.float64)

    @property
    def rotation(self) -> np.ndarray:
        """(3, 3) world -> camera rotation."""
        direction = np.array([math.cos(self.elevation) * math.cos(self.yaw),
                              math.cos(self.elevation) * math.sin(self.yaw),
                              math.sin(self.elevation)])
        return look_at_rotation(direction, np.zeros(3))

    def to_camera(self, points_world: np.ndarray, center: np.ndarray) -> np.ndarray:
        """(..., 3) world metres -> camera metres; ``center`` (3,) world point placed at
        ``distance`` in front of the camera (shifted by ``offset``)."""
        rel = np.asarray(points_world, dtype=np.float64) - np.asarray(center, dtype=np.float64)
        return rel @ self.rotation.T + np.array([self.offset[0], self.offset[1], self.distance])

    def project(self, points_camera: np.ndarray) -> np.ndarray:
        """(..., 3) camera metres -> (..., 2) pixels (no distortion)."""
        return project_to_pixels(points_camera, self.intrinsics, distortion=False)


def _lerp(r, t):
    return r[0] + (r[1] - r[0]) * t


@dataclass
class VirtualCameraSampler:
    """Random virtual cameras for 3D-only (world-frame) motion, Human3.6M-like by default.

    Uniform ranges: yaw / elevation (radians), distance (metres), focal (pixels), subject offset up to
    ``max_offset`` metres. :meth:`sample_arrays` only: ``frame_aspects`` (height / width ratios) draws each
    frame's height from that list; ``in_frame`` > 0 places the subject's centre within that share of the frame's
    half size (``max_offset`` then unused). Both off by default (the random stream is unchanged).
    """

    yaw_range: Tuple[float, float] = (-math.pi, math.pi)
    elevation_range: Tuple[float, float] = (math.radians(-5.0), math.radians(30.0))
    distance_range: Tuple[float, float] = (3.5, 7.0)
    focal_range: Tuple[float, float] = (900.0, 1400.0)
    width: int = 1000
    height: int = 1000
    max_offset: float = 0.5
    frame_aspects: Optional[Tuple[float, ...]] = None
    in_frame: float = 0.0

    def __post_init__(self):
        if self.frame_aspects is not None:
            self.frame_aspects = tuple(float(a) for a in self.frame_aspects)
            if not self.frame_aspects or min(self.frame_aspects) <= 0:
                raise ValueError(f"frame_aspects must be positive height / width ratios, got {self.frame_aspects!r}")
        if not 0.0 <= float(self.in_frame) <= 1.0:
            raise ValueError(f"in_frame must lie in [0, 1] (a share of the frame's half size), got {self.in_frame!r}")
        self.in_frame = float(self.in_frame)

    def sample(self, rng: np.random.Generator) -> VirtualCamera:
        """One random camera drawn with the NumPy generator ``rng``."""
        return self.sample_many(rng, 1)[0]

    def sample_many(self, rng: np.random.Generator, n: int) -> List[VirtualCamera]:
        """``n`` random cameras (one ``rng.random((n, 6))`` draw)."""
        return [VirtualCamera(
            yaw=float(_lerp(self.yaw_range, v[0])), elevation=float(_lerp(self.elevation_range, v[1])),
            distance=float(_lerp(self.distance_range, v[2])), focal=float(_lerp(self.focal_range, v[3])),
            width=self.width, height=self.height,
            offset=(float(self.max_offset * (2 * v[4] - 1)), float(self.max_offset * (2 * v[5] - 1) * 0.5)),
        ) for v in rng.random((n, 6))]

    def sample_arrays(self, rng: np.random.Generator, n: int) -> Dict[str, np.ndarray]:
        """``n`` random cameras as :func:`camera_arrays` (same draws as :meth:`sample_many`)."""
        u = rng.random((n, 6))
        distance, focal = _lerp(self.distance_range, u[:, 2]), _lerp(self.focal_range, u[:, 3])
        height = np.full(n, float(self.height))
        if self.frame_aspects is not None:
            height = float(self.width) * np.asarray(self.frame_aspects)[rng.integers(0, len(self.frame_aspects), n)]
        if self.in_frame > 0:  # image position (pixels from the centre) -> metres at the subject's depth
            px = self.in_frame * (2 * u[:, 4] - 1) * self.width / 2
            py = self.in_frame * (2 * u[:, 5] - 1) * height / 2
            offset = np.stack([px, py], axis=-1) * (distance / focal)[:, None]
        else:
            offset = np.stack([self.max_offset * (2 * u[:, 4] - 1), self.max_offset * (2 * u[:, 5] - 1) * 0.5], -1)
        return {"rotation": orbit_rotations(_lerp(self.yaw_range, u[:, 0]), _lerp(self.elevation_range, u[:, 1])),
                "translation": np.concatenate([offset, distance[:, None]], axis=-1), "focal": focal,
                "width": np.full(n, float(self.width)), "height": height}

    def fixed(self, n: int = 4, elevation: float = math.radians(10.0), distance: float = 5.0,
              focal: float = 1150.0, yaw0: float = math.radians(45.0)) -> List[VirtualCamera]:
        """``n`` deterministic cameras evenly spaced in yaw (for reproducible evaluation)."""
        if n < 1:
            raise ValueError("need at least one fixed camera")
        return [VirtualCamera(yaw=yaw0 + 2 * math.pi * i / n, elevation=elevation, distance=distance,
                              focal=focal, width=self.width, height=self.height) for i in range(n)]
