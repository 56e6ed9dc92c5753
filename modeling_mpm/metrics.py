"""Pose metrics: MPJPE (protocol 1), P-MPJPE (protocol 2), N-MPJPE, MPJVE, per-action
aggregation, MPI-INF-3DHP PCK / AUC (official 14-joint protocol) and completion metrics.

Inputs are NumPy arrays or torch tensors ``(..., J, C)`` (``C`` = 2 or 3), computed in float64; errors are in
the input units (metres in, metres out). ``*_per_frame`` functions return shape ``(...)``, the others a float
averaged over all poses. :func:`load_pose_metric` loads the shipped ``mpm_pose`` evaluate module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable, Mapping, Optional, Sequence, Tuple

import numpy as np

from .skeleton import get_skeleton

__all__ = ["to_numpy", "joint_errors", "mpjpe", "mpjpe_per_frame", "procrustes_align", "p_mpjpe", "p_mpjpe_per_frame",
           "n_mpjpe", "n_mpjpe_per_frame", "mpjve", "ActionErrorMeter", "PCK_JOINTS", "AUC_THRESHOLDS_MM", "pck",
           "auc", "pck_3dhp", "auc_3dhp", "evaluate_3dhp_sequences", "completion_errors", "flip_mask",
           "EVALUATE_METRIC_DIR", "load_pose_metric"]


def to_numpy(x) -> np.ndarray:
    """NumPy float64 copy of an array-like or torch tensor (detached, on the CPU)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().double().numpy()
    x = np.asarray(x)
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise TypeError(f"expected a numeric array or tensor, got dtype {x.dtype}")
    return x.astype(np.float64)


def _pair(pred, target, min_ndim: int = 2) -> Tuple[np.ndarray, np.ndarray]:
    p, t = to_numpy(pred), to_numpy(target)
    if p.shape != t.shape:
        raise ValueError(f"prediction shape {p.shape} != target shape {t.shape}")
    if p.ndim < min_ndim:
        raise ValueError(f"expected poses shaped (..., joints, coords), got shape {p.shape}")
    if p.shape[-1] not in (2, 3):
        raise ValueError(f"last axis must hold 2 or 3 coordinates, got {p.shape[-1]}")
    return p, t


def _joint_mask(mask, shape: Tuple[int, ...]) -> Optional[np.ndarray]:
    """Broadcast a bool joint mask to ``shape[:-1]`` (one flag per joint)."""
    if mask is None:
        return None
    m = to_numpy(mask).astype(bool)
    try:
        return np.broadcast_to(m, shape[:-1])
    except ValueError:
        raise ValueError(f"mask of shape {m.shape} does not broadcast to the joints {shape[:-1]}") from None


def joint_errors(pred, target) -> np.ndarray:
    """Euclidean distance per joint: ``(..., J, C) -> (..., J)``."""
    p, t = _pair(pred, target)
    return np.linalg.norm(p - t, axis=-1)


def mpjpe_per_frame(pred, target, joints: Optional[Sequence[int]] = None) -> np.ndarray:
    """Mean per-joint position error of each pose: ``(..., J, C) -> (...)``, over ``joints`` if given."""
    e = joint_errors(pred, target)
    if joints is not None:
        e = e[..., list(joints)]
    return e.mean(axis=-1)


def mpjpe(pred, target, joints: Optional[Sequence[int]] = None, mask=None) -> float:
    """MPJPE (protocol 1): mean joint error of ``(..., J, C)`` poses, over ``joints`` and where the bool ``mask``
    ``(..., J)`` (broadcastable) is True if given."""
    e = joint_errors(pred, target)
    if joints is not None:
        e = e[..., list(joints)]
    if mask is not None:
        m = _joint_mask(mask, e.shape + (1,))
        if joints is not None:
            m = m[..., list(joints)]
        if not m.any():
            raise ValueError("mask selects no joint")
        return float(e[m].mean())
    return float(e.mean())


def procrustes_align(pred, target) -> np.ndarray:
    """Similarity-align each predicted pose to its target (rotation, scale, translation): ``(..., J, C)`` -> same.

    Per pose: centre both, divide by the Frobenius norms, SVD of ``H = X0^T Y0``, ``R = V U^T`` with the
    reflection fix (``det(R) < 0``: negate V's last column and the last singular value), ``a = tr(S) |X0| / |Y0|``.
    """
    p, t = _pair(pred, target)
    shape = p.shape
    p, t = p.reshape(-1, shape[-2], shape[-1]), t.reshape(-1, shape[-2], shape[-1])
    mu_t, mu_p = t.mean(axis=1, keepdims=True), p.mean(axis=1, keepdims=True)
    x0, y0 = t - mu_t, p - mu_p
    # degenerate poses (all joints at one point) keep a unit norm: they align to the centroid
    norm_x, norm_y = (np.sqrt((a ** 2).sum(axis=(1, 2), keepdims=True)) for a in (x0, y0))
    norm_x, norm_y = np.where(norm_x > 0, norm_x, 1.0), np.where(norm_y > 0, norm_y, 1.0)
    x0, y0 = x0 / norm_x, y0 / norm_y
    h = np.matmul(np.transpose(x0, (0, 2, 1)), y0)
    u, s, vt = np.linalg.svd(h)
    v = np.transpose(vt, (0, 2, 1))
    r = np.matmul(v, np.transpose(u, (0, 2, 1)))
    # reflection fix: make det(R) = +1
    sign = np.sign(np.linalg.det(r))
    sign = np.where(sign == 0, 1.0, sign)
    v[:, :, -1] *= sign[:, None]
    s[:, -1] *= sign
    r = np.matmul(v, np.transpose(u, (0, 2, 1)))
    a = s.sum(axis=1)[:, None, None] * norm_x / norm_y
    return (a * np.matmul(p, r) + (mu_t - a * np.matmul(mu_p, r))).reshape(shape)


def p_mpjpe_per_frame(pred, target) -> np.ndarray:
    """P-MPJPE of each pose after per-pose Procrustes alignment: ``(..., J, C) -> (...)``."""
    p, t = _pair(pred, target)
    return np.linalg.norm(procrustes_align(p, t) - t, axis=-1).mean(axis=-1)


def p_mpjpe(pred, target) -> float:
    """P-MPJPE (protocol 2): MPJPE after per-pose similarity Procrustes alignment."""
    return float(p_mpjpe_per_frame(pred, target).mean())


def n_mpjpe_per_frame(pred, target) -> np.ndarray:
    """Scale-normalised MPJPE per pose: the prediction is scaled by the least-squares factor
    ``s = <pred, target> / <pred, pred>`` (per pose) before the error. ``(..., J, C) -> (...)``."""
    p, t = _pair(pred, target)
    num = (p * t).sum(axis=(-2, -1), keepdims=True)
    den = (p * p).sum(axis=(-2, -1), keepdims=True)
    scale = np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0)
    return np.linalg.norm(scale * p - t, axis=-1).mean(axis=-1)


def n_mpjpe(pred, target) -> float:
    """N-MPJPE: MPJPE after the per-pose least-squares scale alignment."""
    return float(n_mpjpe_per_frame(pred, target).mean())


def mpjve(pred, target, axis: int = -3) -> float:
    """Mean per-joint velocity error of ``(..., F, J, C)`` poses (``F >= 2`` on ``axis``), input units per step."""
    p, t = _pair(pred, target, min_ndim=3)
    if p.shape[axis] < 2:
        raise ValueError(f"mpjve needs at least 2 frames on axis {axis}, got shape {p.shape}")
    return float(np.linalg.norm(np.diff(p, axis=axis) - np.diff(t, axis=axis), axis=-1).mean())


class ActionErrorMeter:
    """Per-sample errors by action (each sample adds its OWN error, never the batch mean: the authors' bug).

    ``per_action()`` averages each action over its frames; ``mean_over_actions()`` averages the
    per-action means (the H36M protocol); ``mean_over_frames()`` weights every frame equally.
    """

    def __init__(self):
        self._sum: Dict[str, float] = {}
        self._count: Dict[str, int] = {}

    def update(self, errors, actions) -> None:
        """Add ``errors`` (N,) with their ``actions`` (N strings, or one string for all)."""
        e = to_numpy(errors).reshape(-1)
        if isinstance(actions, str):
            actions = [actions] * len(e)
        actions = list(actions)
        if len(actions) != len(e):
            raise ValueError(f"{len(e)} errors but {len(actions)} action labels")
        for a, v in zip(actions, e):
            a = str(a)
            self._sum[a] = self._sum.get(a, 0.0) + float(v)
            self._count[a] = self._count.get(a, 0) + 1

    def __len__(self) -> int:
        return sum(self._count.values())

    def per_action(self) -> Dict[str, float]:
        """Mean error per action (sorted by action name)."""
        return {a: self._sum[a] / self._count[a] for a in sorted(self._sum)}

    def counts(self) -> Dict[str, int]:
        return {a: self._count[a] for a in sorted(self._count)}

    def mean_over_actions(self) -> float:
        """Average of the per-action means (each action weighs the same)."""
        if not self._sum:
            raise ValueError("no errors were added")
        return float(np.mean(list(self.per_action().values())))

    def mean_over_frames(self) -> float:
        """Average over all samples (each frame weighs the same)."""
        if not self._sum:
            raise ValueError("no errors were added")
        return float(sum(self._sum.values()) / sum(self._count.values()))


# The official MPI-INF-3DHP 14 joints (head_top, neck, shoulders, elbows, wrists, hips, knees, ankles) per layout
# (H36M layouts: neck <- thorax).
PCK_JOINTS: Dict[str, Tuple[int, ...]] = {
    "mpi3dhp17": tuple(range(14)),
    "h36m17": (10, 8, 14, 15, 16, 11, 12, 13, 1, 2, 3, 4, 5, 6),
    "h36m16": (9, 8, 13, 14, 15, 10, 11, 12, 1, 2, 3, 4, 5, 6),
}

#: AUC thresholds of the official protocol: 0, 5, ..., 150 mm (31 values).
AUC_THRESHOLDS_MM = np.arange(0.0, 151.0, 5.0)

_UNIT_TO_MM = {"m": 1000.0, "mm": 1.0, "cm": 10.0}


def _errors_mm(pred, target, unit: str, joints: Optional[Sequence[int]]) -> np.ndarray:
    if unit not in _UNIT_TO_MM:
        raise ValueError(f"unit must be one of {sorted(_UNIT_TO_MM)}, got {unit!r}")
    e = joint_errors(pred, target) * _UNIT_TO_MM[unit]
    if joints is not None:
        e = e[..., list(joints)]
    return e


def pck(pred, target, threshold_mm: float = 150.0, unit: str = "m",
        joints: Optional[Sequence[int]] = None) -> float:
    """Percentage (0-100) of joints whose error is strictly below ``threshold_mm``."""
    return float((_errors_mm(pred, target, unit, joints) < threshold_mm).mean() * 100.0)


def auc(pred, target, thresholds_mm: Iterable[float] = AUC_THRESHOLDS_MM, unit: str = "m",
        joints: Optional[Sequence[int]] = None) -> float:
    """Area under the PCK curve (0-100): the mean PCK over ``thresholds_mm``."""
    e = _errors_mm(pred, target, unit, joints)
    th = np.asarray(list(thresholds_mm), dtype=np.float64)
    return float(np.mean([(e < x).mean() for x in th]) * 100.0)


def _pck_joints(skeleton) -> Tuple[int, ...]:
    name = get_skeleton(skeleton).name
    if name not in PCK_JOINTS:
        raise ValueError(f"no 3DHP PCK joint set for skeleton {name!r}; known: {sorted(PCK_JOINTS)}")
    return PCK_JOINTS[name]


def pck_3dhp(pred, target, threshold_mm: float = 150.0, unit: str = "m",
             skeleton="mpi3dhp17") -> float:
    """MPI-INF-3DHP PCK@150 mm over the official 14 joints of root-relative ``(..., J, 3)`` poses in the
    ``skeleton`` layout (every frame weighs the same)."""
    return pck(pred, target, threshold_mm, unit, _pck_joints(skeleton))


def auc_3dhp(pred, target, unit: str = "m", skeleton="mpi3dhp17") -> float:
    """MPI-INF-3DHP AUC over thresholds 0:5:150 mm on the official 14 joints."""
    return auc(pred, target, AUC_THRESHOLDS_MM, unit, _pck_joints(skeleton))


def evaluate_3dhp_sequences(sequences: Mapping[str, Tuple[object, object]], unit: str = "m",
                            skeleton="mpi3dhp17") -> Dict[str, Dict[str, float]]:
    """Official-protocol 3DHP evaluation of ``{name: (pred, target)}`` (each ``(T, J, 3)`` root-relative, valid
    frames only): ``{name: {"pck", "auc", "mpjpe", "frames"}, ..., "all": frame-weighted total}`` (%, mm)."""
    joints = _pck_joints(skeleton)
    out: Dict[str, Dict[str, float]] = {}
    all_e = []
    for name, (p, t) in sequences.items():
        all_e.append(_errors_mm(p, t, unit, joints).reshape(-1, len(joints)))
        out[name] = _pck_summary(all_e[-1])
    if not all_e:
        raise ValueError("no sequence given")
    out["all"] = _pck_summary(np.concatenate(all_e, axis=0))
    return out


def _pck_summary(e: np.ndarray) -> Dict[str, float]:
    return {"pck": float((e < 150.0).mean() * 100.0),
            "auc": float(np.mean([(e < x).mean() for x in AUC_THRESHOLDS_MM]) * 100.0),
            "mpjpe": float(e.mean()), "frames": int(e.shape[0])}


def completion_errors(pred, target, mask) -> Dict[str, float]:
    """Completion errors for joints hidden by ``mask`` (True = missing, broadcasts to ``(..., J)``), input units:
    ``mpjpe_masked`` over the masked joints, ``mpjpe_all`` the authors' diluted mean over ALL joints (visible 0)."""
    e = joint_errors(pred, target)
    m = _joint_mask(mask, e.shape + (1,))
    if not m.any():
        raise ValueError("mask selects no joint: nothing was completed")
    return {"mpjpe_masked": float(e[m].mean()), "mpjpe_all": float(np.where(m, e, 0.0).mean())}


def flip_mask(mask, skeleton) -> np.ndarray:
    """Mirror a joint mask ``(..., J)`` left/right with the skeleton's flip permutation."""
    from .masking import mirror_mask

    return mirror_mask(np.asarray(to_numpy(mask)).astype(bool), skeleton)


#: The ``evaluate`` metric module shipped with the package (``evaluate.load(str(EVALUATE_METRIC_DIR))``).
EVALUATE_METRIC_DIR = Path(__file__).resolve().parent / "evaluate_metric" / "mpm_pose"


def load_pose_metric(**kwargs):
    """The ``mpm_pose`` :mod:`evaluate` module (MPJPE, P-MPJPE, N-MPJPE, MPJVE, 3DHP PCK/AUC in
    mm / %), loaded offline from :data:`EVALUATE_METRIC_DIR`; ``kwargs`` go to ``evaluate.load``."""
    try:
        import evaluate
    except ImportError as err:  # pragma: no cover - declared dependency
        raise ImportError("the pose metric needs `pip install evaluate`") from err
    return evaluate.load(str(EVALUATE_METRIC_DIR), **kwargs)
