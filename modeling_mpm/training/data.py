"""Training / evaluation data for the training loop: map-style datasets whose items are dicts::

    {"pose_2d": float32 (F, J, 2) normalised screen coordinates,
     "pose_3d": float32 (F, J, 3) metres, camera frame, root-relative,
     "action":  str (optional; per-action tables use it)}

:func:`build_splits` returns ``(train, validation, test)`` for ``data.source``: ``demo`` (the embedded
demo data), ``prepared`` (``mpm prepare`` folders, ``data.paths``) or ``synthetic`` (procedural skeletons).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np
from torch.utils.data import Dataset

from ..data.windows import PoseWindowDataset, collate_windows
from ..skeleton import H36M_17, get_skeleton

__all__ = ["ArrayWindowDataset", "synthetic_sequences", "build_splits", "collate_windows", "Subset", "RepeatedWindows",
           "repeat_windows"]


class ArrayWindowDataset(PoseWindowDataset):
    """Windows of ``num_frames`` (odd) frames centred on every ``stride``-th frame of in-memory
    camera-frame sequences, edge-padded, the 2D sampled every ``tds`` frames: a
    :class:`~modeling_mpm.data.PoseWindowDataset` with items ``{"pose_2d", "pose_3d", "action"}``.

    Args:
        sequences: list of dicts with ``pose_2d`` (T, J, 2) normalised screen coordinates,
            ``pose_3d`` (T, J, 3) root-relative metres and optional ``action`` (str).
    """

    def __init__(self, sequences: Sequence[Dict], num_frames: int, tds: int = 1, stride: int = 1,
                 skeleton="h36m17"):
        if num_frames % 2 != 1:
            raise ValueError(f"num_frames must be odd, got {num_frames}")
        super().__init__([dict(s, pose_2d_units="normalized") for s in sequences], num_frames, tds, stride,
                         skeleton=skeleton, labels=[str(s.get("action", "all")) for s in sequences])


class Subset(Dataset):
    """The items ``indices`` of ``dataset`` (keeps ``action`` labels; passes ``set_epoch`` on)."""

    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, np.asarray(indices, dtype=np.int64).reshape(-1)

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, k):
        return self.dataset[int(self.indices[k])]

    def __getitems__(self, ks):
        inner = self.indices[np.asarray(ks, dtype=np.int64)].tolist()
        if hasattr(self.dataset, "__getitems__"):
            return self.dataset.__getitems__(inner)
        return [self.dataset[i] for i in inner]

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)


class RepeatedWindows(Subset):
    """``dataset`` seen ``passes`` times per epoch: item ``k`` is ``dataset[k % len(dataset)]``
    (``training.epoch_multiplier``: the authors' epoch is 2 passes when fine-tuning, 4 when pre-training)."""

    def __init__(self, dataset, passes: int):
        if isinstance(passes, bool) or not isinstance(passes, int) or passes < 1:
            raise ValueError(f"passes must be an int >= 1, got {passes!r}")
        super().__init__(dataset, np.arange(len(dataset) * passes) % len(dataset))
        self.passes = passes


def repeat_windows(dataset, passes: int):
    """``dataset`` itself for one pass, else :class:`RepeatedWindows`."""
    return dataset if passes == 1 else RepeatedWindows(dataset, passes)


# A rough standing H36M-17 pose (metres; x right, y down, z forward), used by the synthetic source.
_REST = np.array([
    [0.0, 0.0, 0.0], [-0.13, 0.0, 0.0], [-0.13, 0.45, 0.0], [-0.13, 0.88, 0.05], [0.13, 0.0, 0.0],
    [0.13, 0.45, 0.0], [0.13, 0.88, 0.05], [0.0, -0.23, 0.0], [0.0, -0.48, 0.0], [0.0, -0.58, -0.05],
    [0.0, -0.70, 0.0], [0.16, -0.45, 0.0], [0.42, -0.45, 0.0], [0.65, -0.45, 0.0],
    [-0.16, -0.45, 0.0], [-0.42, -0.45, 0.0], [-0.65, -0.45, 0.0]], dtype=np.float64)


def synthetic_sequences(n: int, length: int, seed: int, actions: Sequence[str] = ("walk", "wave")) -> List[Dict]:
    """``n`` procedurally animated H36M-17 sequences of ``length`` frames (limbs swinging with
    random phases, the body turning, the camera 4-6 m away; focal length 1.15 in normalised
    units). Each dict holds ``pose_2d`` (T, 17, 2), ``pose_3d`` (T, 17, 3) root-relative metres
    and ``action``."""
    rng = np.random.default_rng(seed)
    parents = H36M_17.parents
    out = []
    t = np.arange(length) / 25.0
    for k in range(n):
        freq = rng.uniform(0.5, 1.5)
        amp = rng.uniform(0.2, 0.6, size=17)
        phase = rng.uniform(0, 2 * np.pi, size=17)
        yaw = rng.uniform(-np.pi, np.pi) + 0.3 * np.sin(2 * np.pi * 0.2 * t)
        poses = np.repeat(_REST[None], length, 0).copy()
        # swing every child joint around its parent in the sagittal plane
        for j in range(1, 17):
            p = parents[j]
            bone = _REST[j] - _REST[p]
            ang = amp[j] * np.sin(2 * np.pi * freq * t + phase[j])
            c, s = np.cos(ang), np.sin(ang)
            rot = np.stack([bone[0] + 0 * ang, c * bone[1] - s * bone[2], s * bone[1] + c * bone[2]], -1)
            poses[:, j] = poses[:, p] + rot
        cy, sy = np.cos(yaw), np.sin(yaw)
        x = cy[:, None] * poses[..., 0] + sy[:, None] * poses[..., 2]
        z = -sy[:, None] * poses[..., 0] + cy[:, None] * poses[..., 2]
        poses = np.stack([x, poses[..., 1], z], -1)
        root = np.stack([rng.uniform(-0.5, 0.5) + 0.3 * np.sin(t), np.full_like(t, -0.1),
                         np.full_like(t, rng.uniform(4.0, 6.0))], -1)
        cam = poses + root[:, None]
        uv = 1.15 * cam[..., :2] / cam[..., 2:3]
        rel = poses - poses[:, :1]
        out.append({"pose_2d": uv.astype(np.float32), "pose_3d": rel.astype(np.float32),
                    "action": actions[k % len(actions)]})
    return out


def _cap(ds, limit: Optional[int]):
    """Evenly spaced subset of at most ``limit`` items (deterministic)."""
    if limit is None or ds is None or len(ds) <= limit:
        return ds
    idx = np.linspace(0, len(ds) - 1, limit).round().astype(np.int64)
    return Subset(ds, idx)


def build_splits(cfg, num_frames: int, skeleton="h36m17"):
    """``(train, val, test)`` datasets for a :class:`~modeling_mpm.training.config.RunConfig`; ``val`` /
    ``test`` are None when disabled, capped at ``data.max_val_windows`` / ``max_test_windows`` windows."""
    d = cfg.data
    skel = get_skeleton(skeleton)
    if d.source == "synthetic":
        if skel.num_joints != 17:
            raise ValueError("data.source=synthetic produces H36M-17 poses; use a 17-joint model")
        seqs = {
            "train": synthetic_sequences(d.synthetic_sequences, d.synthetic_length, seed=1),
            "validation": synthetic_sequences(max(2, d.synthetic_sequences // 4), d.synthetic_length, seed=2),
            "test": synthetic_sequences(max(2, d.synthetic_sequences // 4), d.synthetic_length, seed=3),
        }
        make = lambda split, stride: ArrayWindowDataset(seqs[split], num_frames, d.tds, stride)  # noqa: E731
        train = make("train", d.train_stride)
        val = make("validation", d.eval_stride) if d.val_split else None
        test = make("test", d.eval_stride) if d.test_split else None
    elif d.source in ("demo", "prepared"):
        from .data_sources import load_window_splits

        train, val, test = load_window_splits(cfg, num_frames, skel)
    else:  # pragma: no cover - the config validates the choices
        raise ValueError(f"unknown data.source {d.source!r}")
    return train, _cap(val, d.max_val_windows), _cap(test, d.max_test_windows)
