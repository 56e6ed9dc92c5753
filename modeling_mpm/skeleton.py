"""Skeleton layouts (:class:`Skeleton`: joint names, parents, left/right lists, flip permutations) and mappings
between them. Indices follow each data set's usual release (Human3.6M: VideoPose3D order, MPI-INF-3DHP: P-STMO
"relevant 17", COCO-17 / Halpe-26: their detectors). "Left" and "right" are the subject's own sides.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np

__all__ = ["Skeleton", "H36M_17", "H36M_16", "MPI_INF_3DHP_17", "COCO_17", "HALPE_26", "SKELETONS", "LIMBS",
           "get_skeleton", "h36m17_to_h36m16", "mpi3dhp17_to_h36m17", "mpi3dhp17_to_h36m16", "rescale_bones",
           "constant_bone_lengths"]


@dataclass(frozen=True)
class Skeleton:
    """A named joint layout.

    Attributes:
        name: short identifier (``"h36m17"``, ``"coco17"``...).
        joint_names: one name per joint, in array order.
        parents: parent index per joint (``-1`` for roots); may be all ``-1`` for 2D detector
            layouts that have no kinematic tree.
        joints_left / joints_right: indices of the subject's left / right joints, paired
            element-wise (``joints_left[i]`` mirrors ``joints_right[i]``).
        root: index of the root joint (pelvis) or ``None`` if the layout has none.
    """

    name: str
    joint_names: Tuple[str, ...]
    parents: Tuple[int, ...]
    joints_left: Tuple[int, ...]
    joints_right: Tuple[int, ...]
    root: int | None = 0
    _index: Dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        n = len(self.joint_names)
        if len(self.parents) != n:
            raise ValueError(f"{self.name}: {len(self.parents)} parents for {n} joints")
        if len(self.joints_left) != len(self.joints_right):
            raise ValueError(f"{self.name}: left and right joint lists must pair up")
        for p in self.parents:
            if not -1 <= p < n:
                raise ValueError(f"{self.name}: parent index {p} out of range")
        self._index.update({j: i for i, j in enumerate(self.joint_names)})

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def index(self, joint_name: str) -> int:
        """Index of a joint by name; raises ``ValueError`` listing the valid names."""
        try:
            return self._index[joint_name]
        except KeyError:
            raise ValueError(f"{self.name} has no joint {joint_name!r}; joints are {list(self.joint_names)}") from None

    @property
    def flip_permutation(self) -> np.ndarray:
        """Index array ``perm`` so that ``pose[..., perm, :]`` swaps left and right joints."""
        perm = np.arange(self.num_joints)
        perm[list(self.joints_left)] = self.joints_right
        perm[list(self.joints_right)] = self.joints_left
        return perm

    @property
    def bones(self) -> List[Tuple[int, int]]:
        """(parent, child) pairs of the kinematic tree."""
        return [(p, c) for c, p in enumerate(self.parents) if p >= 0]

    def to_dict(self) -> dict:
        return {"name": self.name, "joint_names": list(self.joint_names), "parents": list(self.parents),
                "joints_left": list(self.joints_left), "joints_right": list(self.joints_right), "root": self.root}

    @classmethod
    def from_dict(cls, d: dict) -> "Skeleton":
        return cls(name=d["name"], joint_names=tuple(d["joint_names"]), parents=tuple(d["parents"]),
                   joints_left=tuple(d["joints_left"]), joints_right=tuple(d["joints_right"]), root=d.get("root", 0))


#: the four limbs by joint name, from the limb root down (the same names in every skeleton that has them)
LIMBS: Dict[str, Tuple[str, str, str]] = {
    "right_leg": ("right_hip", "right_knee", "right_ankle"),
    "left_leg": ("left_hip", "left_knee", "left_ankle"),
    "right_arm": ("right_shoulder", "right_elbow", "right_wrist"),
    "left_arm": ("left_shoulder", "left_elbow", "left_wrist"),
}


def _mirrored(name: str, joint_names, parents: Tuple[int, ...], root=0) -> Skeleton:
    """A skeleton whose left / right lists pair every ``left_X`` joint with ``right_X`` (in the
    order of the left joints); ``joint_names`` may be one whitespace-separated string."""
    joint_names = tuple(joint_names.split()) if isinstance(joint_names, str) else tuple(joint_names)
    left = [i for i, j in enumerate(joint_names) if j.startswith("left_")]
    right = [joint_names.index("right_" + joint_names[i][len("left_"):]) for i in left]
    return Skeleton(name, joint_names, tuple(parents), tuple(left), tuple(right), root)


# Human3.6M, 17 joints, VideoPose3D order (docs/authors_code.md section 2.1).
H36M_17 = _mirrored("h36m17", """
    pelvis right_hip right_knee right_ankle left_hip left_knee left_ankle spine thorax neck_nose
    head_top left_shoulder left_elbow left_wrist right_shoulder right_elbow right_wrist""",
    (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15))

# Human3.6M, 16 joints: H36M-17 without index 9 (neck/nose) (docs/authors_code.md section 2.2).
H36M_16 = _mirrored("h36m16", """
    pelvis right_hip right_knee right_ankle left_hip left_knee left_ankle spine thorax head_top
    left_shoulder left_elbow left_wrist right_shoulder right_elbow right_wrist""",
    (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 8, 10, 11, 8, 13, 14))

# MPI-INF-3DHP "relevant" 17 joints in the P-STMO npz order (docs/authors_code.md section 2.3); root = pelvis (14).
MPI_INF_3DHP_17 = _mirrored("mpi3dhp17", """
    head_top neck right_shoulder right_elbow right_wrist left_shoulder left_elbow left_wrist
    right_hip right_knee right_ankle left_hip left_knee left_ankle pelvis spine head""",
    (16, 15, 1, 2, 3, 1, 5, 6, 14, 8, 9, 14, 11, 12, -1, 14, 1), root=14)

# COCO-17 keypoints (2D detectors); no pelvis, so no root.
COCO_17 = _mirrored("coco17", """
    nose left_eye right_eye left_ear right_ear left_shoulder right_shoulder left_elbow right_elbow
    left_wrist right_wrist left_hip right_hip left_knee right_knee left_ankle right_ankle""",
    (-1, 0, 0, 1, 2, -1, -1, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14), root=None)

# Halpe-26 keypoints (AlphaPose): COCO-17 + head, neck, hip and six foot points.
HALPE_26 = _mirrored("halpe26", COCO_17.joint_names + tuple("""
    head neck hip left_big_toe right_big_toe left_small_toe right_small_toe left_heel right_heel""".split()),
    (18, 0, 0, 1, 2, 18, 18, 5, 6, 7, 8, 19, 19, 11, 12, 13, 14, 18, 19, -1, 15, 16, 15, 16, 15, 16), root=19)

SKELETONS: Dict[str, Skeleton] = {s.name: s for s in (H36M_17, H36M_16, MPI_INF_3DHP_17, COCO_17, HALPE_26)}


def get_skeleton(name_or_skeleton) -> Skeleton:
    """Look up a skeleton by name (``h36m17``, ``h36m16``, ``mpi3dhp17``, ``coco17``,
    ``halpe26``); a :class:`Skeleton` or a dict from :meth:`Skeleton.to_dict` passes through."""
    if isinstance(name_or_skeleton, Skeleton):
        return name_or_skeleton
    if isinstance(name_or_skeleton, dict):
        return Skeleton.from_dict(name_or_skeleton)
    if not isinstance(name_or_skeleton, str):
        raise TypeError(f"skeleton must be a name or a Skeleton, got {type(name_or_skeleton).__name__}")
    key = name_or_skeleton.lower().replace("-", "").replace("_", "")
    aliases = {"h36m": "h36m17", "mpiinf3dhp17": "mpi3dhp17", "3dhp": "mpi3dhp17", "coco": "coco17",
               "halpe": "halpe26"}
    key = aliases.get(key, key)
    if key not in SKELETONS:
        raise ValueError(f"unknown skeleton {name_or_skeleton!r}; choose one of {sorted(SKELETONS)}")
    return SKELETONS[key]


def _topological_order(parents) -> np.ndarray:
    """Joint indices, every parent before its children."""
    order, seen = [], set()
    while len(order) < len(parents):
        new = [j for j, p in enumerate(parents) if j not in seen and (p < 0 or p in seen)]
        if not new:
            raise ValueError(f"the skeleton's parents {parents} do not form a tree")
        order += new
        seen.update(new)
    return np.array(order)


def rescale_bones(pose: np.ndarray, parents, scale: np.ndarray) -> np.ndarray:
    """Scale every bone and rebuild the pose by forward kinematics from the root.

    ``pose`` (n, F, J, 3), ``scale`` (n, J) (the factor of the bone ending at each joint; the
    root's is ignored). Bone directions are kept; the root stays where it is."""
    out = pose.copy()
    for j in _topological_order(parents):
        p = parents[j]
        if p >= 0:
            out[:, :, j] = out[:, :, p] + (pose[:, :, j] - pose[:, :, p]) * scale[:, None, j, None]
    return out


def constant_bone_lengths(pose: np.ndarray, parents) -> np.ndarray:
    """One person's ``(frames, J, 3)`` poses (metres, any frame) with every bone set to its median length over the
    frames (a body does not change size), directions kept, the root where it was. Frames or bones with NaN keep
    their NaN; a bone NaN in every frame is left as it is."""
    pose = np.asarray(pose)
    if pose.ndim != 3 or pose.shape[-1] != 3 or pose.shape[1] != len(parents):
        raise ValueError(f"expected (frames, {len(parents)}, 3) poses, got shape {pose.shape}")
    parent = np.array([max(p, 0) for p in parents])
    length = np.linalg.norm(pose - pose[:, parent], axis=-1)                     # (frames, J); root: 0
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)                         # all-NaN bones: kept below
        target = np.nanmedian(length, axis=0)
        scale = np.where(np.isfinite(target) & (length > 1e-9), target / length, 1.0)
    return rescale_bones(pose[:, None], parents, scale)[:, 0].astype(pose.dtype)


def _check_joints(pose: np.ndarray, n: int, what: str) -> np.ndarray:
    pose = np.asarray(pose)
    if pose.ndim < 2 or pose.shape[-2] != n:
        raise ValueError(f"{what} expects (..., {n}, C) arrays, got shape {pose.shape}")
    return pose


def h36m17_to_h36m16(pose: np.ndarray) -> np.ndarray:
    """H36M-17 (..., 17, C) -> H36M-16 (..., 16, C): drops joint 9 (neck/nose)."""
    pose = _check_joints(pose, 17, "h36m17_to_h36m16")
    return np.concatenate([pose[..., :9, :], pose[..., 10:, :]], axis=-2)


# 3DHP index for each H36M-17 joint. The natural anatomical mapping:
# thorax <- neck (1), neck/nose <- head (16), head_top <- head_top (0).
_MPI_TO_H36M17 = [14, 8, 9, 10, 11, 12, 13, 15, 1, 16, 0, 5, 6, 7, 2, 3, 4]


def mpi3dhp17_to_h36m17(pose: np.ndarray) -> np.ndarray:
    """MPI-INF-3DHP-17 (..., 17, C) -> H36M-17 (..., 17, C): thorax <- neck, neck/nose <- head, the rest by name."""
    pose = _check_joints(pose, 17, "mpi3dhp17_to_h36m17")
    return pose[..., _MPI_TO_H36M17, :]


def mpi3dhp17_to_h36m16(pose: np.ndarray, legacy: bool = False) -> np.ndarray:
    """MPI-INF-3DHP-17 (..., 17, C) -> H36M-16 (..., 16, C): thorax <- neck (1), head_top <- head_top (0).
    ``legacy=True``: the MPM authors' mapping (docs/authors_code.md section 2.3): head_top := mean(head_top, head),
    thorax <- head (16), neck dropped."""
    pose = _check_joints(pose, 17, "mpi3dhp17_to_h36m16")
    if legacy:
        pose = pose.copy()
        pose[..., 0, :] = (pose[..., 16, :] + pose[..., 0, :]) / 2
        return pose[..., [14, 8, 9, 10, 11, 12, 13, 15, 16, 0, 5, 6, 7, 2, 3, 4], :]
    return h36m17_to_h36m16(mpi3dhp17_to_h36m17(pose))
