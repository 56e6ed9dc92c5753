"""Augmentations for world-frame 3D windows: :class:`MotionAugment` makes new, kinematically valid motion
*before* a virtual camera sees it and changes the camera (roll, principal point, pixel aspect);
:class:`DetectorNoise2D` makes the 2D look like a detector's. Opt-in (``data.augment`` in a run config).

What one window goes through (each step has its own probability / range; ``None`` or 0 turns it off):

1. **speed** (0.5-2x, log-uniform): the window samples the sequence every ``speed`` frames (linear interpolation);
2. **body-part mixing**: with probability ``part_mix_prob`` each limb (arms, legs) takes the bone directions of the
   same limb of another window (relative to that window's torso frame), with this body's bone lengths; then **key
   poses** (``key_pose_prob``: limbs moving between random poses within joint limits, the upper arm's rotation
   about its axis limited by ``arm_rotation_deg``) and **lean** (``lean_prob``:
   the upper body bending and twisting over the window);
3. **bone lengths**: every bone scaled by ``global_scale`` x a per-bone factor (the same left and right), the pose
   rebuilt from the root along the kinematic tree, so the skeleton stays connected and symmetric;
4. **global rotation**: with probability ``non_upright_prob`` a uniformly random 3D rotation (lying, upside down),
   otherwise a tilt of up to ``tilt_deg`` about a random horizontal axis; about the window's mean root;
5. after the virtual camera: **roll** about the optical axis (2D and camera-frame 3D together), **principal
   point** offset and **pixel aspect** ``fy / fx`` (2D and intrinsics).

Arrays: windows ``(n, F, J, 3)`` metres, world frame Z up; 2D ``(n, F, J, 2)`` normalised screen coordinates
(``x / w * 2 - 1``, principal point at 0); camera-frame 3D ``(n, F, J, 3)``. Randomness: the generator passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, Mapping, Optional, Tuple, Union

import numpy as np

from ..cameras import VirtualCameraSampler
from ..skeleton import LIMBS, get_skeleton, rescale_bones
from .windows import PoseNoise2D

__all__ = ["MotionAugment", "DetectorNoise2D", "wide_camera_sampler", "augment_from_config", "AUGMENT_PRESETS",
           "random_rotations", "rescale_bones", "torso_frames"]

#: limbs that body-part mixing swaps: name -> joints from the limb root down (H36M-17 names)
MIX_LIMBS = {name: LIMBS[name] for name in ("left_arm", "right_arm", "left_leg", "right_leg")}


def _check_range(name, r, lo=1e-3):
    if r is None:
        return None
    if len(r) != 2 or not r[0] <= r[1]:
        raise ValueError(f"{name} must be a (low, high) pair with low <= high, got {r!r}")
    if r[0] < lo:
        raise ValueError(f"{name} must lie in [{lo}, None], got {r!r}")
    return (float(r[0]), float(r[1]))


def _check_prob(name, p):
    if not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
    return float(p)


def random_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` rotation matrices (n, 3, 3) uniformly distributed over SO(3) (unit quaternions)."""
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], 1)


def _axis_angle(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rodrigues: unit axes (n, 3), angles (n,) radians -> (n, 3, 3)."""
    k = axis / np.linalg.norm(axis, axis=1, keepdims=True)
    K = np.zeros((len(k), 3, 3))
    K[:, 0, 1], K[:, 0, 2], K[:, 1, 2] = -k[:, 2], k[:, 1], -k[:, 0]
    K = K - K.transpose(0, 2, 1)
    s, c = np.sin(angle)[:, None, None], np.cos(angle)[:, None, None]
    return np.eye(3)[None] + s * K + (1 - c) * (K @ K)


def torso_frames(pose: np.ndarray, skeleton="h36m17") -> np.ndarray:
    """Orthonormal torso frames (..., 3, 3) (columns: right-to-left hip axis, pelvis-to-thorax
    axis made orthogonal to it, their cross product) of poses (..., J, 3)."""
    s = get_skeleton(skeleton)
    lh, rh, pel, tho = (s.index(n) for n in ("left_hip", "right_hip", "pelvis", "thorax"))
    a = pose[..., lh, :] - pose[..., rh, :]
    a = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-8)
    u = pose[..., tho, :] - pose[..., pel, :]
    u = u - (u * a).sum(-1, keepdims=True) * a
    u = u / np.maximum(np.linalg.norm(u, axis=-1, keepdims=True), 1e-8)
    return np.stack([a, u, np.cross(a, u)], axis=-1)


def _descends_from(parents, j: int, ancestor: int) -> bool:
    while j >= 0:
        if j == ancestor:
            return True
        j = parents[j]
    return False


def _smoothstep(F: int) -> np.ndarray:
    """(F,) weights going smoothly from 0 at the first frame to 1 at the last."""
    t = np.linspace(0.0, 1.0, F) if F > 1 else np.zeros(1)
    return t * t * (3 - 2 * t)


def _forearm_neutral(upper: np.ndarray) -> np.ndarray:
    """(k, 3) unit directions, perpendicular to the upper arms ``upper`` (k, 3) (torso frame), in which the forearm
    bends at no rotation of the upper arm: forward (+z) for a hanging arm, carried along by the shortest rotation
    from hanging (-y) to ``upper`` (about x for an arm straight up)."""
    down = np.array([0.0, -1.0, 0.0])
    axis = np.cross(down, upper)
    sin = np.linalg.norm(axis, axis=1)
    axis = np.where(sin[:, None] > 1e-6, axis, [[1.0, 0.0, 0.0]])       # hanging or straight up: about x
    rotated = _axis_angle(axis, np.arctan2(sin, upper @ down)) @ np.array([0.0, 0.0, 1.0])
    rotated -= (rotated * upper).sum(1, keepdims=True) * upper
    return rotated / np.linalg.norm(rotated, axis=1, keepdims=True)


def _limb_key_pose(rng: np.random.Generator, k: int, side: float, arm: bool,
                   arm_rotation_deg: Optional[Tuple[float, float]] = None) -> Tuple[np.ndarray, np.ndarray]:
    """``k`` random key poses of one limb (``side`` +1 left, -1 right) as unit bone directions in the torso frame
    (x left, y up, z forward): (upper (k, 3), lower (k, 3)). Joint limits: an upper arm anywhere but deep across
    the chest, an elbow bent 0-145 degrees; a thigh 30 degrees back to 110 forward and up to 45 out, a knee 0-130.

    ``arm_rotation_deg`` (external, internal): the upper arm's rotation about its own axis, degrees from neutral
    (the hanging arm's forearm pointing forward, carried to the upper arm's direction by the shortest rotation),
    external turning the forearm outward; None: any rotation (the forearm anywhere on its cone)."""
    if arm:
        upper = rng.normal(size=(k, 3))
        upper /= np.linalg.norm(upper, axis=1, keepdims=True)
        across = upper[:, 0] * side < -0.4                         # deep across the chest: mirror it out
        upper[across, 0] *= -1
        if arm_rotation_deg is None:
            ref = np.where(np.abs(upper[:, 1:2]) < 0.9, [[0.0, 1.0, 0.0]], [[0.0, 0.0, 1.0]])
            perp = np.cross(upper, ref)
            perp /= np.linalg.norm(perp, axis=1, keepdims=True)
            spin = rng.uniform(0, 2 * np.pi, k)
            axis = np.cos(spin)[:, None] * perp + np.sin(spin)[:, None] * np.cross(upper, perp)
            bend = np.radians(rng.uniform(0.0, 145.0, k))
            return upper, np.einsum("kij,kj->ki", _axis_angle(axis, bend), upper)
        bend = np.radians(rng.uniform(0.0, 145.0, k))
        neutral = _forearm_neutral(upper)
        medial = side * np.cross(upper, neutral)                    # where internal rotation turns the forearm
        turn = np.radians(rng.uniform(-arm_rotation_deg[0], arm_rotation_deg[1], k))[:, None]
        swing = np.cos(turn) * neutral + np.sin(turn) * medial
        return upper, np.cos(bend)[:, None] * upper + np.sin(bend)[:, None] * swing
    flex = np.radians(rng.uniform(-30.0, 110.0, k))
    out = np.radians(rng.uniform(-10.0, 45.0, k))
    knee = np.radians(rng.uniform(0.0, 130.0, k))
    upper = np.stack([side * np.sin(out), -np.cos(out) * np.cos(flex), np.cos(out) * np.sin(flex)], -1)
    lower = np.stack([side * np.sin(out), -np.cos(out) * np.cos(flex - knee), np.cos(out) * np.sin(flex - knee)], -1)
    return upper, lower


@dataclass
class MotionAugment:
    """Random, kinematically consistent changes of world-frame windows and of the camera (order: module docstring).

    Attributes:
        speed_range: playback-speed factors (low, high), drawn log-uniformly; None = off.
        part_mix_prob: probability that a window mixes limbs from another window.
        part_mix_limb_prob: in a mixing window, probability of each limb to be swapped.
        global_scale_range: body-size factor (low, high), uniform; None = off.
        bone_scale_range: extra per-bone factor (low, high), uniform, same left and right.
        non_upright_prob: probability of a uniformly random 3D orientation of the body.
        tilt_deg: otherwise, tilt of up to this many degrees about a random horizontal axis.
        roll_deg: camera roll up to +-this many degrees.
        principal_point_range: principal-point offset, normalised units (2 = image width), +-.
        aspect_range: pixel aspect ``fy / fx`` (low, high); None = off.
        lean_prob: probability that the upper body (spine and above) leans and twists about the pelvis.
        lean_deg: the largest lean (forward / backward, sideways, twist about the vertical), degrees.
        key_pose_prob: probability that a window's limbs move between two random key poses within joint limits.
        key_pose_limb_prob: in such a window, probability of each limb to take key poses.
        arm_rotation_deg: key poses' upper-arm rotation about its axis, (external, internal) degrees from neutral
            (:func:`_limb_key_pose`); None: unlimited.
        skeleton: joint layout of the windows (needs a kinematic tree).
    """

    speed_range: Optional[Tuple[float, float]] = (0.5, 2.0)
    part_mix_prob: float = 0.3
    part_mix_limb_prob: float = 0.5
    global_scale_range: Optional[Tuple[float, float]] = (0.8, 1.2)
    bone_scale_range: Optional[Tuple[float, float]] = (0.9, 1.1)
    non_upright_prob: float = 0.2
    tilt_deg: float = 20.0
    roll_deg: float = 15.0
    principal_point_range: float = 0.1
    aspect_range: Optional[Tuple[float, float]] = (0.9, 1.1)
    lean_prob: float = 0.0
    lean_deg: Tuple[float, float, float] = (45.0, 25.0, 45.0)
    key_pose_prob: float = 0.0
    key_pose_limb_prob: float = 0.5
    arm_rotation_deg: Optional[Tuple[float, float]] = None
    skeleton: str = "h36m17"

    def __post_init__(self):
        for name in ("speed_range", "global_scale_range", "bone_scale_range", "aspect_range"):
            setattr(self, name, _check_range(name, getattr(self, name)))
        for name in ("part_mix_prob", "part_mix_limb_prob", "non_upright_prob", "lean_prob", "key_pose_prob",
                     "key_pose_limb_prob"):
            setattr(self, name, _check_prob(name, getattr(self, name)))
        if len(self.lean_deg) != 3 or min(float(a) for a in self.lean_deg) < 0:
            raise ValueError(f"lean_deg must be three angles >= 0 (forward, sideways, twist), got {self.lean_deg!r}")
        self.lean_deg = tuple(float(a) for a in self.lean_deg)
        if self.arm_rotation_deg is not None:
            rot = tuple(self.arm_rotation_deg)
            if len(rot) != 2 or not all(0.0 <= float(a) <= 180.0 for a in rot):
                raise ValueError("arm_rotation_deg must be None or two angles in [0, 180] degrees (external, "
                                 f"internal), got {self.arm_rotation_deg!r}")
            self.arm_rotation_deg = tuple(float(a) for a in rot)
        for name in ("tilt_deg", "roll_deg", "principal_point_range"):
            if float(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
            setattr(self, name, float(getattr(self, name)))
        skel = get_skeleton(self.skeleton)
        if any(p < 0 for p in skel.parents[1:]) or skel.root is None:
            raise ValueError(f"MotionAugment needs a skeleton with a kinematic tree, got {skel.name!r}")
        self._skel = skel
        self._limbs = [np.array([skel.index(n) for n in joints]) for joints in MIX_LIMBS.values()] \
            if all(n in skel.joint_names for joints in MIX_LIMBS.values() for n in joints) else []
        spine = skel.index("spine") if "spine" in skel.joint_names else None
        self._upper = np.array([j for j in range(len(skel.parents)) if spine is not None
                                and _descends_from(skel.parents, j, spine)], dtype=np.int64)

    def sample_speed(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """(n,) playback-speed factors (ones when off)."""
        if self.speed_range is None or self.speed_range[0] == self.speed_range[1] == 1.0:
            return np.ones(n)
        lo, hi = np.log(self.speed_range[0]), np.log(self.speed_range[1])
        return np.exp(lo + (hi - lo) * rng.random(n))

    def apply_world(self, world: np.ndarray, rng: np.random.Generator,
                    donors: Optional[Callable[[int], np.ndarray]] = None) -> np.ndarray:
        """Augmented copy of world-frame windows ``world`` (n, F, J, 3) metres (Z up); ``donors(k)`` returns
        k random other windows (k, F, J, 3) for body-part mixing."""
        world = np.asarray(world, dtype=np.float64)
        n = world.shape[0]
        parents = self._skel.parents
        out = world.copy()
        if self.part_mix_prob > 0 and self._limbs and donors is not None:
            mix = rng.random(n) < self.part_mix_prob
            limb_hit = rng.random((n, len(self._limbs))) < self.part_mix_limb_prob
            rows = np.flatnonzero(mix & limb_hit.any(1))
            if rows.size:
                donor = np.asarray(donors(rows.size), dtype=np.float64)
                out[rows] = self._mix_limbs(out[rows], donor, limb_hit[rows])
        if self.key_pose_prob > 0 and self._limbs:
            hit = (rng.random(n) < self.key_pose_prob)[:, None] & (
                rng.random((n, len(self._limbs))) < self.key_pose_limb_prob)
            rows = np.flatnonzero(hit.any(1))
            if rows.size:
                out[rows] = self._key_pose_limbs(out[rows], hit[rows], rng)
        if self.lean_prob > 0 and self._upper.size:
            rows = np.flatnonzero(rng.random(n) < self.lean_prob)
            if rows.size:
                out[rows] = self._lean(out[rows], rng)
        scale = np.ones((n, len(parents)))
        if self.global_scale_range is not None:
            scale *= rng.uniform(*self.global_scale_range, size=(n, 1))
        if self.bone_scale_range is not None:
            per_bone = rng.uniform(*self.bone_scale_range, size=(n, len(parents)))
            perm = self._skel.flip_permutation
            scale *= np.where(np.arange(len(parents)) < perm, per_bone, per_bone[:, perm])  # left = right
        if not np.all(scale == 1.0):
            out = rescale_bones(out, parents, scale)
        R = self.sample_body_rotations(rng, n)
        if R is not None:
            centre = out[:, :, self._skel.root].mean(axis=1)[:, None, None]
            out = np.matmul(out - centre, R.transpose(0, 2, 1)[:, None]) + centre
        return out.astype(np.float32)

    def sample_body_rotations(self, rng: np.random.Generator, n: int) -> Optional[np.ndarray]:
        """(n, 3, 3) body rotations (world frame, Z up) or None when off."""
        if self.non_upright_prob == 0 and self.tilt_deg == 0:
            return None
        axis_angle = rng.uniform(0, 2 * np.pi, n)
        axes = np.stack([np.cos(axis_angle), np.sin(axis_angle), np.zeros(n)], -1)
        R = _axis_angle(axes, np.radians(self.tilt_deg) * rng.uniform(-1, 1, n))
        free = rng.random(n) < self.non_upright_prob
        if free.any():
            R[free] = random_rotations(rng, int(free.sum()))
        return R

    def _mix_limbs(self, pose: np.ndarray, donor: np.ndarray, limb_hit: np.ndarray) -> np.ndarray:
        """Limbs ``limb_hit`` (n, L) of ``pose`` (n, F, J, 3) take the donor's bone directions
        (relative to the donor's torso) with ``pose``'s bone lengths."""
        parents = self._skel.parents
        Rp = torso_frames(pose, self._skel)           # (n, F, 3, 3)
        Rd = torso_frames(donor, self._skel)
        to_pose = Rp @ np.swapaxes(Rd, -1, -2)        # donor world -> pose world
        out = pose.copy()
        for li, joints in enumerate(self._limbs):
            rows = np.flatnonzero(limb_hit[:, li])
            if rows.size == 0:
                continue
            for j in joints[1:]:  # the limb root (hip / shoulder) stays on this torso
                p = parents[j]
                length = np.linalg.norm(pose[rows, :, j] - pose[rows, :, p], axis=-1, keepdims=True)
                d = donor[rows, :, j] - donor[rows, :, p]
                d = np.matmul(to_pose[rows], d[..., None])[..., 0]
                d /= np.maximum(np.linalg.norm(d, axis=-1, keepdims=True), 1e-8)
                out[rows, :, j] = out[rows, :, p] + d * length
        return out

    def _lean(self, pose: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Bend the upper body of ``pose`` (n, F, J, 3) about the pelvis (forward / backward, sideways, twist), each
        angle going smoothly from one random value to another over the window (up to ``lean_deg``)."""
        n, F = pose.shape[:2]
        root = self._skel.root
        frame = torso_frames(pose[:, F // 2], self._skel)            # (n, 3, 3): left, up, forward
        left, forward = frame[..., 0], frame[..., 2]
        up = np.broadcast_to(np.array([0.0, 0.0, 1.0]), left.shape)
        ease = _smoothstep(F)                                          # (F,)
        out = pose.copy()
        centre = pose[:, :, root:root + 1]
        for axis, limit in ((left, self.lean_deg[0]), (forward, self.lean_deg[1]), (up, self.lean_deg[2])):
            if limit == 0:
                continue
            a0, a1 = np.radians(limit) * rng.uniform(-1, 1, (2, n))
            angle = a0[:, None] + (a1 - a0)[:, None] * ease[None]      # (n, F)
            R = _axis_angle(np.repeat(axis, F, axis=0), angle.reshape(-1)).reshape(n, F, 3, 3)
            upper = out[:, :, self._upper] - centre
            out[:, :, self._upper] = np.einsum("nfij,nfkj->nfki", R, upper) + centre
        return out

    def _key_pose_limbs(self, pose: np.ndarray, hit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Limbs ``hit`` (n, L) of ``pose`` (n, F, J, 3) move from one random key pose (:func:`_limb_key_pose`) to
        another over the window (bone directions interpolated in the torso frame, this body's bone lengths)."""
        n, F = pose.shape[:2]
        parents = self._skel.parents
        frames = torso_frames(pose, self._skel)                       # (n, F, 3, 3) columns left, up, forward
        ease = _smoothstep(F)[None, :, None]
        out = pose.copy()
        for li, (name, joints) in enumerate(zip(MIX_LIMBS, self._limbs)):
            rows = np.flatnonzero(hit[:, li])
            if rows.size == 0:
                continue
            side = 1.0 if name.startswith("left") else -1.0
            keys = [_limb_key_pose(rng, rows.size, side, name.endswith("arm"), self.arm_rotation_deg) for _ in range(2)]
            for b, j in enumerate(joints[1:]):
                d0, d1 = keys[0][b], keys[1][b]                       # (k, 3) local directions
                d = d0[:, None] * (1 - ease) + d1[:, None] * ease
                d /= np.maximum(np.linalg.norm(d, axis=-1, keepdims=True), 1e-8)
                d = np.einsum("kfij,kfj->kfi", frames[rows], d)      # local -> world
                p = parents[j]
                length = np.linalg.norm(pose[rows, :, j] - pose[rows, :, p], axis=-1, keepdims=True)
                out[rows, :, j] = out[rows, :, p] + d * length
        return out

    def apply_camera(self, rng: np.random.Generator, n: int, pose_2d: Optional[np.ndarray] = None,
                     pose_3d: Optional[np.ndarray] = None, root: Optional[np.ndarray] = None,
                     intrinsics: Optional[np.ndarray] = None) -> None:
        """In place: camera roll (2D ``(n, F, J, 2)``, camera-frame 3D ``(n, F, J, 3)`` and root ``(n, F, 3)``), then
        pixel aspect and principal-point offset (2D, normalised intrinsics ``(n, 9)``); the same draws always."""
        roll = np.radians(self.roll_deg) * rng.uniform(-1, 1, n)
        aspect = rng.uniform(*self.aspect_range, n) if self.aspect_range is not None else np.ones(n)
        pp = self.principal_point_range * rng.uniform(-1, 1, (n, 2))
        c, s = np.cos(roll), np.sin(roll)
        R2t = np.stack([np.stack([c, s], -1), np.stack([-s, c], -1)], 1).astype(np.float32)  # (n, 2, 2), transposed
        if self.roll_deg > 0:
            if pose_3d is not None:
                pose_3d[..., :2] = np.matmul(pose_3d[..., :2], R2t[:, None])
            if root is not None:
                root[..., :2] = np.matmul(root[..., :2], R2t)
            if pose_2d is not None:
                pose_2d[...] = np.matmul(pose_2d, R2t[:, None])
        if pose_2d is not None:
            if self.aspect_range is not None:
                pose_2d[..., 1] *= aspect[:, None, None].astype(np.float32)
            if self.principal_point_range > 0:
                pose_2d += pp[:, None, None].astype(np.float32)
        if intrinsics is not None:
            intrinsics[:, 1] *= aspect.astype(np.float32)
            intrinsics[:, 2:4] += pp.astype(np.float32)


@dataclass
class DetectorNoise2D(PoseNoise2D):
    """2D keypoint noise that looks like a detector's (a drop-in for :class:`PoseNoise2D`).

    Attributes (normalised screen units; 0.004 is ~2 px on a 1000 px wide image):
        std: base Gaussian jitter; each window and joint gets ``std * U(0.5, 2)``.
        drop_prob: probability that a joint in a frame is dropped (confidence 0, 2D set to 0).
        bias_std: a constant offset per window and joint (a detector's systematic error).
        outlier_prob: probability that a joint in a frame jumps by ``N(0, outlier_std)``.
        outlier_std: size of those jumps.
        swap_prob: probability that a frame has one left/right joint pair swapped.
        frame_drop_prob: probability that a whole frame is lost (every joint's confidence 0).
        relative: when True, ``std``, ``bias_std`` and ``outlier_std`` are shares of the person's size in the
            window (median over frames of the 2D bounding-box diagonal) instead of normalised screen units.
        skeleton: joint layout (for the left/right pairs).
    """

    bias_std: float = 0.004
    outlier_prob: float = 0.01
    outlier_std: float = 0.05
    swap_prob: float = 0.02
    frame_drop_prob: float = 0.0
    relative: bool = False
    skeleton: str = "h36m17"

    def __post_init__(self):
        super().__post_init__()
        if self.bias_std < 0 or self.outlier_std < 0:
            raise ValueError(f"DetectorNoise2D needs bias_std >= 0 and outlier_std >= 0, got {self}")
        for name in ("outlier_prob", "swap_prob", "frame_drop_prob"):
            _check_prob(name, getattr(self, name))
        if not isinstance(self.relative, bool):
            raise TypeError(f"DetectorNoise2D.relative must be a bool, got {type(self.relative).__name__}")
        s = get_skeleton(self.skeleton)
        self._pairs = np.array(list(zip(s.joints_left, s.joints_right)), dtype=np.int64).reshape(-1, 2)

    def apply(self, pose_2d: np.ndarray, confidence: np.ndarray, rng: np.random.Generator):
        n, F, J = pose_2d.shape[:3]
        pose_2d = np.array(pose_2d, dtype=np.float32, copy=True)
        if self.swap_prob > 0 and len(self._pairs):
            hit = np.argwhere(rng.random((n, F)) < self.swap_prob)
            if len(hit):
                pair = self._pairs[rng.integers(0, len(self._pairs), len(hit))]
                a = pose_2d[hit[:, 0], hit[:, 1], pair[:, 0]].copy()
                pose_2d[hit[:, 0], hit[:, 1], pair[:, 0]] = pose_2d[hit[:, 0], hit[:, 1], pair[:, 1]]
                pose_2d[hit[:, 0], hit[:, 1], pair[:, 1]] = a
        unit = np.ones((n, 1, 1, 1), np.float32)
        if self.relative:  # person size per window: median bounding-box diagonal over frames
            extent = pose_2d.max(axis=2) - pose_2d.min(axis=2)                    # (n, F, 2)
            unit = np.median(np.linalg.norm(extent, axis=-1), axis=1).reshape(n, 1, 1, 1).astype(np.float32)
        if self.std > 0:
            sd = self.std * rng.uniform(0.5, 2.0, (n, 1, J, 1))
            pose_2d += (rng.normal(size=pose_2d.shape) * sd * unit).astype(np.float32)
        if self.bias_std > 0:
            pose_2d += (rng.normal(0.0, self.bias_std, (n, 1, J, 2)) * unit).astype(np.float32)
        if self.outlier_prob > 0:
            jump = rng.random((n, F, J)) < self.outlier_prob
            pose_2d += (jump[..., None] * rng.normal(0.0, self.outlier_std, pose_2d.shape) * unit).astype(np.float32)
        if self.drop_prob > 0:
            drop = rng.random(confidence.shape) < self.drop_prob
            confidence = np.where(drop, 0.0, confidence).astype(np.float32)
        if self.frame_drop_prob > 0:
            lost = rng.random((n, F)) < self.frame_drop_prob
            confidence = np.where(lost[..., None], 0.0, confidence).astype(np.float32)
        return pose_2d, confidence


def wide_camera_sampler(**overrides) -> VirtualCameraSampler:
    """A :class:`VirtualCameraSampler` with every yaw, elevation -20..60 degrees, 2.5-10 m, focal 500-2000 px
    (on 1000 px), subject up to 1 m off the optical axis."""
    kw = dict(yaw_range=(-math.pi, math.pi), elevation_range=(math.radians(-20.0), math.radians(60.0)),
              distance_range=(2.5, 10.0), focal_range=(500.0, 2000.0), max_offset=1.0)
    return VirtualCameraSampler(**{**kw, **overrides})


#: ``data.augment`` presets: "none", "motion" (3D changes only), "wide" (3D, wide cameras, detector noise) and
#: "real" (phones and lab cameras 2-8 m away, portrait to landscape, key poses and leaning, relative noise).
AUGMENT_PRESETS: Dict[str, Optional[Dict]] = {
    "none": None,
    "motion": {"motion": {"roll_deg": 0.0, "principal_point_range": 0.0, "aspect_range": None},
               "camera": None, "noise_2d": None},
    "wide": {"motion": {}, "camera": {}, "noise_2d": {}},
    "real": {
        "motion": {"part_mix_prob": 0.5, "non_upright_prob": 0.05, "tilt_deg": 15.0, "roll_deg": 25.0,
                   "principal_point_range": 0.05, "aspect_range": (0.95, 1.05), "lean_prob": 0.7,
                   "key_pose_prob": 0.7, "key_pose_limb_prob": 0.5, "arm_rotation_deg": (90.0, 70.0),
                   "bone_scale_range": (0.8, 1.25)},
        "camera": {"elevation_range": (math.radians(-15.0), math.radians(60.0)), "distance_range": (2.0, 8.0),
                   "focal_range": (700.0, 2200.0), "frame_aspects": (0.5625, 0.75, 1.0, 1.3333, 1.7778),
                   "in_frame": 0.7},
        "noise_2d": {"std": 0.006, "bias_std": 0.012, "outlier_prob": 0.01, "outlier_std": 0.06,
                     "swap_prob": 0.01, "drop_prob": 0.02, "frame_drop_prob": 0.01, "relative": True},
    },
}


def augment_from_config(spec: Union[None, str, Mapping], skeleton: str = "h36m17"):
    """``(MotionAugment, VirtualCameraSampler, DetectorNoise2D)`` (each or None) from a ``data.augment`` value: None,
    a name of :data:`AUGMENT_PRESETS`, or ``{"motion": {MotionAugment fields}, "camera": {wide_camera_sampler
    overrides}, "noise_2d": {DetectorNoise2D fields}}`` (a missing or null key = off)."""
    if spec is None:
        return None, None, None
    if isinstance(spec, str):
        if spec not in AUGMENT_PRESETS:
            raise ValueError(f"data.augment must be one of {list(AUGMENT_PRESETS)} or a mapping, got {spec!r}")
        spec = AUGMENT_PRESETS[spec]
        if spec is None:
            return None, None, None
    if not isinstance(spec, Mapping):
        raise TypeError(f"data.augment must be a preset name or a mapping, got {type(spec).__name__}")
    bad = set(spec) - {"motion", "camera", "noise_2d"}
    if bad:
        raise ValueError(f"unknown data.augment key(s) {sorted(bad)}; valid: motion, camera, noise_2d")

    def make(key, factory):
        v = spec.get(key)
        if v is None:
            return None
        if not isinstance(v, Mapping):
            raise TypeError(f"data.augment.{key} must be a mapping or null, got {type(v).__name__}")
        try:
            return factory(**dict(v))
        except TypeError as err:
            raise ValueError(f"data.augment.{key}: {err}") from None

    motion = make("motion", lambda **kw: MotionAugment(**{"skeleton": skeleton, **kw}))
    camera = make("camera", wide_camera_sampler)
    noise = make("noise_2d", lambda **kw: DetectorNoise2D(**{"skeleton": skeleton, **kw}))
    return motion, camera, noise
