"""Baselines of the benchmarks in ``bench/`` (not part of the package): lifters that MPM's
inference cost is compared with and classic pose-completion methods.

Lifters (2D -> 3D), timed by ``bench/bench_inference_scaling.py``; the package trainer trains only
MPM models, so the accuracy benchmarks no longer train them:

* :class:`SingleFrameMLPLifter`: a single-frame MLP in the style of Martinez et al. (2017):
  a linear layer to 1024 features, residual blocks of ``Linear -> BatchNorm -> ReLU -> Dropout``
  (twice per block), a linear output layer.
* :class:`TemporalConvLifter`: dilated temporal convolutions in the style of VideoPose3D
  (Pavllo et al., 2019): an expanding convolution of width ``w_0`` and blocks of a dilated
  convolution (width ``w_i``, dilation ``w_0 ... w_{i-1}``) plus a 1x1 convolution with a
  residual connection; the receptive field ``prod(w_i)`` equals the window (27 = 3 x 3 x 3).

Missing 2D joints: both lifters take ``(x, y, visible)`` per joint, i.e. the 2D of a missing
joint is set to 0 and the mask enters as an extra input channel (:func:`zero_fill_with_mask`).

Completion (3D with missing joints -> 3D):

* :func:`interpolate_in_time`: per joint, linear interpolation between the nearest visible frames
  (constant extrapolation at the window edges); exact for linear motion.
* :class:`NearestNeighbourCompletion`: looks up, per frame, the training pose closest on the
  visible joints and copies its missing joints (works when a limb is missing in every frame).

Shapes: 2D ``(batch, frames, joints, 2)`` normalised screen coordinates; 3D ``(..., joints, 3)``
metres, root-relative; masks bool with True = missing.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn


def _zero_root(pose: torch.Tensor, root: Optional[int]) -> torch.Tensor:
    """``pose (..., J, 3)`` with the root joint set to 0 (the package's output rule)."""
    if root is None:
        return pose
    keep = torch.ones(pose.shape[-2], 1, dtype=pose.dtype, device=pose.device)
    keep[root] = 0
    return pose * keep


__all__ = [
    "zero_fill_with_mask",
    "SingleFrameMLPLifter",
    "TemporalConvLifter",
    "interpolate_in_time",
    "NearestNeighbourCompletion",
]


def zero_fill_with_mask(pose_2d: torch.Tensor, missing: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``(..., J, 2)`` 2D + optional ``(..., J)`` bool missing mask -> ``(..., J, 3)``
    ``[x, y, visible]`` with the 2D of missing joints (and any non-finite value) set to 0."""
    if missing is None:
        missing = ~torch.isfinite(pose_2d).all(-1)
    else:
        missing = missing.bool() | ~torch.isfinite(pose_2d).all(-1)
    x = torch.where(missing[..., None], torch.zeros_like(pose_2d), pose_2d)
    return torch.cat([x, (~missing).to(pose_2d.dtype)[..., None]], dim=-1)


class _MLPBlock(nn.Module):
    """``x + [Linear -> BatchNorm -> ReLU -> Dropout] x 2`` on ``(N, width)``."""

    def __init__(self, width: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(dropout),
        )

    def forward(self, x):
        return x + self.net(x)


class SingleFrameMLPLifter(nn.Module):
    """Martinez-style single-frame lifter: ``(..., J, 2)`` 2D of one frame -> ``(..., J, 3)`` metres.

    Args:
        num_joints: joints per pose J.
        width: hidden width (1024 in the original).
        num_blocks: residual blocks (2 in the original).
        dropout: dropout probability (0.5 in the original).
        root: joint set to 0 in the output (root-relative), ``None`` to leave it free.
    """

    def __init__(self, num_joints: int = 17, width: int = 1024, num_blocks: int = 2, dropout: float = 0.5,
                 root: Optional[int] = 0):
        super().__init__()
        self.num_joints, self.root = num_joints, root
        self.inp = nn.Sequential(nn.Linear(3 * num_joints, width), nn.BatchNorm1d(width), nn.ReLU(),
                                 nn.Dropout(dropout))
        self.blocks = nn.Sequential(*[_MLPBlock(width, dropout) for _ in range(num_blocks)])
        self.out = nn.Linear(width, 3 * num_joints)

    def forward(self, pose_2d: torch.Tensor, missing: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``pose_2d`` ``(..., J, 2)``, ``missing`` ``(..., J)`` bool -> ``(..., J, 3)`` metres."""
        lead = pose_2d.shape[:-2]
        x = zero_fill_with_mask(pose_2d, missing).reshape(-1, 3 * self.num_joints)
        y = self.out(self.blocks(self.inp(x))).reshape(*lead, self.num_joints, 3)
        return _zero_root(y, self.root)


class TemporalConvLifter(nn.Module):
    """VideoPose3D-style lifter: ``(B, F, J, 2)`` window -> ``(B, F - R + 1, J, 3)`` metres, where
    ``R = prod(filter_widths)`` is the receptive field; a window of exactly ``R`` frames gives its
    centre frame ``(B, 1, J, 3)``.

    Args:
        num_joints: joints J.
        filter_widths: convolution widths, e.g. ``(3, 3, 3)`` (R = 27) or ``(3, 3, 3, 3, 3)`` (243).
        channels: feature channels (1024 in VideoPose3D).
        dropout: dropout probability (0.25 in VideoPose3D).
        root: joint set to 0 in the output.
    """

    def __init__(self, num_joints: int = 17, filter_widths: Sequence[int] = (3, 3, 3), channels: int = 1024,
                 dropout: float = 0.25, root: Optional[int] = 0):
        super().__init__()
        widths = [int(w) for w in filter_widths]
        if not widths or any(w < 1 or w % 2 == 0 for w in widths):
            raise ValueError(f"filter_widths must be odd positive ints, got {filter_widths}")
        self.num_joints, self.root = num_joints, root
        self.receptive_field = int(np.prod(widths))
        self.expand = nn.Conv1d(3 * num_joints, channels, widths[0], bias=False)
        self.expand_bn = nn.BatchNorm1d(channels)
        self.drop = nn.Dropout(dropout)
        self.act = nn.ReLU()
        self.dilated, self.dilated_bn, self.pointwise, self.pointwise_bn = (nn.ModuleList() for _ in range(4))
        self.pads = []
        dilation = widths[0]
        for w in widths[1:]:
            self.pads.append((w - 1) * dilation // 2)
            self.dilated.append(nn.Conv1d(channels, channels, w, dilation=dilation, bias=False))
            self.dilated_bn.append(nn.BatchNorm1d(channels))
            self.pointwise.append(nn.Conv1d(channels, channels, 1, bias=False))
            self.pointwise_bn.append(nn.BatchNorm1d(channels))
            dilation *= w
        self.out = nn.Conv1d(channels, 3 * num_joints, 1)

    def forward(self, pose_2d: torch.Tensor, missing: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``pose_2d`` ``(B, F, J, 2)`` with ``F >= receptive_field``, ``missing`` ``(B, F, J)``."""
        b, f, j, _ = pose_2d.shape
        if f < self.receptive_field:
            raise ValueError(f"TemporalConvLifter needs at least {self.receptive_field} frames, got {f}")
        x = zero_fill_with_mask(pose_2d, missing).reshape(b, f, 3 * j).transpose(1, 2)
        x = self.drop(self.act(self.expand_bn(self.expand(x))))
        for pad, conv, bn, pw, pbn in zip(self.pads, self.dilated, self.dilated_bn, self.pointwise,
                                          self.pointwise_bn):
            res = x[:, :, pad: x.shape[2] - pad]
            x = self.drop(self.act(bn(conv(x))))
            x = res + self.drop(self.act(pbn(pw(x))))
        y = self.out(x).transpose(1, 2).reshape(b, -1, j, 3)
        return _zero_root(y, self.root)


def interpolate_in_time(pose: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Fill missing joints by linear interpolation in time, independently per joint and coordinate.

    Args:
        pose: ``(F, J, C)`` or ``(B, F, J, C)``.
        missing: ``(F, J)`` / ``(B, F, J)`` bool, True = missing.
    Returns:
        the filled array (same shape, float64 values as ``pose``'s dtype); before the first / after
        the last visible frame the nearest visible value is repeated; a joint missing in every
        frame is left NaN (interpolation in time has nothing to use).
    """
    pose = np.asarray(pose)
    missing = np.asarray(missing, dtype=bool)
    if pose.ndim == 3:
        return interpolate_in_time(pose[None], missing[None])[0]
    if pose.ndim != 4 or missing.shape != pose.shape[:3]:
        raise ValueError(f"pose must be (B, F, J, C) with missing (B, F, J), got {pose.shape}, {missing.shape}")
    out = np.array(pose, dtype=np.float64, copy=True)
    t = np.arange(pose.shape[1])
    for b in range(pose.shape[0]):
        for j in range(pose.shape[2]):
            m = missing[b, :, j]
            if not m.any():
                continue
            vis = ~m
            if not vis.any():
                out[b, :, j] = np.nan
                continue
            for c in range(pose.shape[3]):
                out[b, m, j, c] = np.interp(t[m], t[vis], out[b, vis, j, c])
    return out.astype(pose.dtype if np.issubdtype(pose.dtype, np.floating) else np.float64)


class NearestNeighbourCompletion:
    """Per-frame nearest-neighbour pose lookup on the visible joints.

    ``database``: ``(N, J, C)`` training poses (root-relative). For a query pose with a missing-joint
    mask, the database pose with the smallest squared distance over the visible joints is found and
    its missing joints are copied into the query; visible joints are kept.
    """

    def __init__(self, database: np.ndarray, chunk: int = 512):
        db = torch.as_tensor(np.asarray(database, dtype=np.float32))
        if db.ndim != 3:
            raise ValueError(f"database must be (N, J, C), got {tuple(db.shape)}")
        self.db = db
        self.flat = db.reshape(db.shape[0], -1)                      # (N, J*C)
        self.sq = (db ** 2).sum(-1)                                  # (N, J)
        self.chunk = int(chunk)

    def lookup(self, pose: np.ndarray, missing: np.ndarray) -> np.ndarray:
        """Indices ``(...,)`` of the nearest database pose for ``pose`` ``(..., J, C)`` given ``missing`` ``(..., J)``."""
        q = torch.as_tensor(np.asarray(pose, dtype=np.float32))
        m = torch.as_tensor(np.asarray(missing, dtype=bool))
        lead = q.shape[:-2]
        J, C = q.shape[-2:]
        q = torch.nan_to_num(q.reshape(-1, J, C))
        vis = (~m.reshape(-1, J)).float()                            # (Q, J)
        out = torch.empty(q.shape[0], dtype=torch.long)
        for s in range(0, q.shape[0], self.chunk):
            qs, vs = q[s:s + self.chunk], vis[s:s + self.chunk]
            qv = (qs * vs[..., None]).reshape(qs.shape[0], -1)       # (Q, J*C)
            # ||v*(q - d)||^2 = v.q^2 - 2 (v q).d + v.d^2 (constant first term dropped)
            d = vs @ self.sq.T - 2.0 * (qv @ self.flat.T)
            out[s:s + self.chunk] = d.argmin(dim=1)
        return out.reshape(lead).numpy()

    def complete(self, pose: np.ndarray, missing: np.ndarray) -> np.ndarray:
        """``pose`` ``(..., J, C)`` with ``missing`` ``(..., J)`` -> the completed poses (same shape)."""
        pose = np.asarray(pose, dtype=np.float32)
        missing = np.asarray(missing, dtype=bool)
        idx = self.lookup(pose, missing)
        nn_pose = self.db.numpy()[idx]
        return np.where(missing[..., None], nn_pose, pose)
