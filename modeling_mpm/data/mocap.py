"""Motion-capture joint positions -> Human3.6M-17 (world frame, metres): joint-name maps
(:data:`CMU_BVH_TO_H36M17`, :data:`HOLOSOMA_TO_H36M17`, :data:`SMPL_TO_H36M17`, :data:`INTERMIMIC_TO_H36M17`),
resampling and the BVH / climbing ``.npy`` / InterMimic ``.pt`` loaders. Everything returned is in metres,
**Z up**, right-handed.
"""

from __future__ import annotations

import os
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np

from ..skeleton import H36M_17
from .bvh import read_bvh

__all__ = ["CMU_BVH_TO_H36M17", "HOLOSOMA_TO_H36M17", "SMPL_TO_H36M17", "CMU_BVH_SCALE", "map_joints_by_name",
           "resample", "y_up_to_z_up", "load_bvh_h36m17", "load_climb_npy", "INTERMIMIC_JOINTS",
           "INTERMIMIC_TO_H36M17", "load_intermimic_pt"]

# One entry per H36M-17 joint: a source joint name, or ("extrapolate", a, b, k) for a + k * (a - b).
JointMap = Dict[str, Union[str, Tuple[str, str, str, float]]]

CMU_BVH_TO_H36M17: JointMap = {
    "pelvis": "Hips", "right_hip": "RightUpLeg", "right_knee": "RightLeg", "right_ankle": "RightFoot",
    "left_hip": "LeftUpLeg", "left_knee": "LeftLeg", "left_ankle": "LeftFoot", "spine": "Spine1",
    "thorax": "Neck1", "neck_nose": "Head", "head_top": "Head_end",
    "left_shoulder": "LeftArm", "left_elbow": "LeftForeArm", "left_wrist": "LeftHand",
    "right_shoulder": "RightArm", "right_elbow": "RightForeArm", "right_wrist": "RightHand",
}
"""CMU (cgspeed BVH) -> H36M-17; head_top is the End Site of Head. The pelvis is the BVH root ("Hips"), about
10 cm above the line of the hip joints (Human3.6M's pelvis lies on it, as the 2D formats' pelvis does); putting it
at the hips' midpoint made no measured difference to the general lifter (docs/real_footage.md), so the embedded
data keep the BVH root."""

HOLOSOMA_TO_H36M17: JointMap = {**CMU_BVH_TO_H36M17, "thorax": "Neck", "head_top": ("extrapolate", "Head", "Neck", 0.8)}
"""holosoma climbing capture -> H36M-17; head_top = Head + 0.8 (Head - Neck) (approximate)."""

SMPL_TO_H36M17: JointMap = {
    "pelvis": "pelvis", "right_hip": "right_hip", "right_knee": "right_knee",
    "right_ankle": "right_ankle", "left_hip": "left_hip", "left_knee": "left_knee",
    "left_ankle": "left_ankle", "spine": "spine1", "thorax": "spine3", "neck_nose": "neck",
    "head_top": ("extrapolate", "head", "neck", 1.0),
    "left_shoulder": "left_shoulder", "left_elbow": "left_elbow", "left_wrist": "left_wrist",
    "right_shoulder": "right_shoulder", "right_elbow": "right_elbow", "right_wrist": "right_wrist",
}
"""SMPL / SMPL-H / SMPL-X joint names (AMASS) -> H36M-17. Approximate: no head top (head + (head - neck)), and
its spine/neck joints sit at other heights than the Human3.6M markers (a small systematic offset)."""

_HAND = ("Index", "Middle", "Pinky", "Ring", "Thumb")
INTERMIMIC_JOINTS: Tuple[str, ...] = (
    "Pelvis", "L_Hip", "L_Knee", "L_Ankle", "L_Toe", "R_Hip", "R_Knee", "R_Ankle", "R_Toe", "Torso", "Spine", "Chest",
    "Neck", "Head", "L_Thorax", "L_Shoulder", "L_Elbow", "L_Wrist",
    *(f"L_{f}{k}" for f in _HAND for k in (1, 2, 3)), "R_Thorax", "R_Shoulder", "R_Elbow", "R_Wrist",
    *(f"R_{f}{k}" for f in _HAND for k in (1, 2, 3)))
"""The 52 SMPL-H joints of InterMimic's processed OMOMO clips, in column order (as holosoma-retargeting lists them
for its ``smplh`` data format): body, then 15 joints of each hand."""

INTERMIMIC_TO_H36M17: JointMap = {
    "pelvis": "Pelvis", "right_hip": "R_Hip", "right_knee": "R_Knee", "right_ankle": "R_Ankle",
    "left_hip": "L_Hip", "left_knee": "L_Knee", "left_ankle": "L_Ankle", "spine": "Torso", "thorax": "Chest",
    "neck_nose": "Neck", "head_top": ("extrapolate", "Head", "Neck", 1.0),
    "left_shoulder": "L_Shoulder", "left_elbow": "L_Elbow", "left_wrist": "L_Wrist",
    "right_shoulder": "R_Shoulder", "right_elbow": "R_Elbow", "right_wrist": "R_Wrist",
}
"""InterMimic's SMPL-H names -> H36M-17, the rules of :data:`SMPL_TO_H36M17` (Torso / Chest are SMPL's spine1 /
spine3; head top approximate)."""

#: where the 52 joints' world positions lie in an InterMimic clip's feature columns (x, y, z per joint)
INTERMIMIC_JOINT_COLUMNS = slice(162, 162 + 52 * 3)

CMU_BVH_SCALE = 2.54 / 0.45 / 100.0
"""cgspeed CMU BVH units -> metres (inches scaled by 1/0.45)."""


def map_joints_by_name(positions: np.ndarray, joint_names: Sequence[str], joint_map: JointMap) -> np.ndarray:
    """(T, J_src, 3) positions with ``joint_names`` -> (T, 17, 3) H36M-17 using ``joint_map``."""
    positions = np.asarray(positions)
    if positions.ndim != 3 or positions.shape[-1] != 3:
        raise ValueError(f"positions must be (T, J, 3), got shape {positions.shape}")
    if positions.shape[1] != len(joint_names):
        raise ValueError(f"positions have {positions.shape[1]} joints but {len(joint_names)} names were given")
    index = {n: i for i, n in enumerate(joint_names)}
    missing_targets = [n for n in H36M_17.joint_names if n not in joint_map]
    if missing_targets:
        raise ValueError(f"joint map lacks H36M-17 joints {missing_targets}")

    def get(name: str) -> np.ndarray:
        if name not in index:
            raise ValueError(f"source has no joint {name!r}; joints are {list(joint_names)}")
        return positions[:, index[name]]

    out = np.empty((positions.shape[0], 17, 3), dtype=np.float64)
    for j, target in enumerate(H36M_17.joint_names):
        src = joint_map[target]
        if isinstance(src, str):
            out[:, j] = get(src)
        else:
            kind, a, b, k = src
            if kind != "extrapolate":
                raise ValueError(f"unknown joint-map rule {kind!r} for {target}")
            pa = get(a)
            out[:, j] = pa + k * (pa - get(b))
    return out


def resample(positions: np.ndarray, source_fps: float, target_fps: float) -> np.ndarray:
    """Linear-interpolation resampling along axis 0: (T, ...) at ``source_fps`` -> (T', ...) at ``target_fps``,
    output frame k at time k / target_fps (T' covers [0, (T-1)/source_fps])."""
    x = np.asarray(positions)
    if source_fps <= 0 or target_fps <= 0:
        raise ValueError(f"frame rates must be positive, got {source_fps} -> {target_fps}")
    T = x.shape[0]
    if T == 0 or source_fps == target_fps:
        return x.copy()
    duration = (T - 1) / source_fps
    n_out = int(np.floor(duration * target_fps + 1e-9)) + 1
    t = np.arange(n_out) * (source_fps / target_fps)  # position in source frames
    i0 = np.clip(np.floor(t).astype(np.int64), 0, T - 1)
    i1 = np.clip(i0 + 1, 0, T - 1)
    w = (t - i0).reshape((-1,) + (1,) * (x.ndim - 1))
    out = x[i0] * (1 - w) + x[i1] * w
    return out.astype(x.dtype if x.dtype.kind == "f" else np.float64)


def y_up_to_z_up(positions: np.ndarray) -> np.ndarray:
    """Rotate (..., 3) from a Y-up world (x, y up, z) to Z up: (x, y, z) -> (x, -z, y)."""
    p = np.asarray(positions)
    return np.stack([p[..., 0], -p[..., 2], p[..., 1]], axis=-1)


def to_z_up_at_rate(h36m: np.ndarray, fps: float, up_axis: str = "z", target_fps: Optional[float] = None
                    ) -> Tuple[np.ndarray, float]:
    """(T, 17, 3) positions with ``up_axis`` ("y" or "z") at ``fps`` -> ((T', 17, 3) float32 Z up, resampled to
    ``target_fps`` unless None; the frame rate)."""
    if up_axis.lower() == "y":
        h36m = y_up_to_z_up(h36m)
    elif up_axis.lower() != "z":
        raise ValueError(f"up_axis must be 'y' or 'z', got {up_axis!r}")
    if target_fps is None:
        return h36m.astype(np.float32), float(fps)
    return resample(h36m, fps, target_fps).astype(np.float32), float(target_fps)


def load_bvh_h36m17(path, joint_map: JointMap = CMU_BVH_TO_H36M17, scale: float = CMU_BVH_SCALE, up_axis: str = "y",
                    target_fps: Optional[float] = 50.0, skip_frames: int = 0) -> Tuple[np.ndarray, float]:
    """BVH file -> ((T, 17, 3) float32 H36M-17 world positions in metres, Z up; fps). ``scale``: file units to
    metres (default: cgspeed CMU); ``up_axis``: the file's ("y" or "z"); ``target_fps``: resample (None keeps the
    rate); ``skip_frames``: leading frames dropped (cgspeed CMU files start with one rest-pose frame)."""
    motion = read_bvh(path)
    pos = motion.joint_positions(scale=scale)[skip_frames:]
    return to_z_up_at_rate(map_joints_by_name(pos, motion.joint_names, joint_map), motion.fps, up_axis, target_fps)


def load_climb_npy(path, joint_names: Union[str, Sequence[str], None] = None, source_fps: float = 120.0,
                   target_fps: Optional[float] = 50.0, joint_map: JointMap = HOLOSOMA_TO_H36M17
                   ) -> Tuple[np.ndarray, float]:
    """holosoma climbing ``(T, 53, 3)`` ``.npy`` (metres, Z up) -> ((T', 17, 3) float32 H36M-17, fps).
    ``joint_names``: a list or the path of ``joint_names.json`` (default: next to the file). The capture's frame
    rate is undocumented; 120 Hz is assumed (DATA_NOTES.md)."""
    from .io import read_json, read_npy

    pos = read_npy(path)
    if pos.ndim != 3 or pos.shape[-1] != 3:
        raise ValueError(f"{path}: expected (T, J, 3) joint positions, got shape {pos.shape}")
    if joint_names is None:
        joint_names = os.path.join(os.path.dirname(os.path.abspath(path)), "joint_names.json")
    if isinstance(joint_names, (str, os.PathLike)):
        names_path = joint_names
        if not os.path.isfile(names_path):
            raise ValueError(f"{names_path}: no such file (the joint names of {path}; pass joint_names or put "
                             "joint_names.json next to the .npy)")
        joint_names = read_json(names_path)
        if not isinstance(joint_names, list) or not all(isinstance(n, str) for n in joint_names):
            raise ValueError(f"{names_path}: expected a JSON list of joint names")
    return to_z_up_at_rate(map_joints_by_name(pos, list(joint_names), joint_map), source_fps, "z", target_fps)


def load_intermimic_pt(path, source_fps: float = 30.0, target_fps: Optional[float] = 50.0
                       ) -> Tuple[np.ndarray, float]:
    """An InterMimic-processed OMOMO clip (a ``.pt`` holding one ``(T, 591)`` float tensor, as holosoma-retargeting
    0.1.0 ships two in ``demo_data/OMOMO_new``; the 52 SMPL-H joints' world positions in columns 162-317, metres,
    Z up) -> ((T', 17, 3) float32 H36M-17, fps). OMOMO is captured at 30 Hz (the clips' walking cadence, 0.8-0.95
    strides/s, agrees). ``path``: a file or an open binary file object. Only plain tensors are read
    (``torch.load(weights_only=True)``)."""
    import torch

    where = getattr(path, "name", path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for foreign or truncated files
        raise ValueError(f"{where}: not a readable torch tensor file ({type(e).__name__}: {e})") from None
    if not isinstance(data, torch.Tensor) or data.ndim != 2 or data.shape[1] < INTERMIMIC_JOINT_COLUMNS.stop:
        got = tuple(data.shape) if isinstance(data, torch.Tensor) else type(data).__name__
        raise ValueError(f"{where}: expected one (frames, 591) InterMimic feature tensor, got {got}")
    joints = data.detach().to(torch.float64).numpy()[:, INTERMIMIC_JOINT_COLUMNS].reshape(-1, 52, 3)
    if not np.isfinite(joints).all():
        raise ValueError(f"{where}: joint positions contain NaN or inf")
    return to_z_up_at_rate(map_joints_by_name(joints, INTERMIMIC_JOINTS, INTERMIMIC_TO_H36M17), source_fps, "z",
                           target_fps)
