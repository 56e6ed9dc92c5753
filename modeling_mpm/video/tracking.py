"""Grouping per-frame person detections into tracks (why no tracking library: docs/inference.md).

:class:`IoUTracker`, a simple rule: every frame, the boxes are matched one-to-one to the live tracks by maximum
total IoU with each track's last matched box (Hungarian assignment), pairs below ``min_iou`` unmatched; an
unmatched box starts a new track (ids 0, 1, 2, ... in order of appearance); a track without a match for more than
``max_missed`` frames ends (its id is never reused). It suits people who move less than about their own width
between frames and do not cross for long; any tracker with the same ``update`` call can replace it (``tracker=``).
"""

from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np

__all__ = ["IoUTracker", "box_iou", "track_boxes", "group_tracks"]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes ``a`` ``(n, 4)`` and ``b`` ``(m, 4)`` (x0, y0, x1, y1) -> ``(n, m)``; NaN boxes give 0."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = lambda x: np.clip(x[:, 2] - x[:, 0], 0, None) * np.clip(x[:, 3] - x[:, 1], 0, None)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return np.nan_to_num(iou, nan=0.0)


class IoUTracker:
    """Online IoU tracker (the rule in the module docstring): ``min_iou`` links a box to a track, ``max_missed``
    frames a track may go unmatched. ``update(boxes)`` with ``(n, 4)`` (x0, y0, x1, y1) pixels of one frame returns
    ``(n,)`` int track ids."""

    def __init__(self, min_iou: float = 0.3, max_missed: int = 30):
        if not 0.0 <= float(min_iou) <= 1.0:
            raise ValueError(f"min_iou must be in [0, 1], got {min_iou!r}")
        if int(max_missed) < 0:
            raise ValueError(f"max_missed must be >= 0, got {max_missed!r}")
        self.min_iou, self.max_missed = float(min_iou), int(max_missed)
        self.reset()

    def reset(self) -> None:
        self._boxes: Dict[int, np.ndarray] = {}   # live track id -> last matched box
        self._missed: Dict[int, int] = {}
        self._next_id = 0

    def update(self, boxes, scores=None) -> np.ndarray:
        from scipy.optimize import linear_sum_assignment

        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        ids = np.full(len(boxes), -1, dtype=np.int64)
        live = list(self._boxes)
        if live and len(boxes):
            iou = box_iou(boxes, np.stack([self._boxes[t] for t in live]))
            rows, cols = linear_sum_assignment(-iou)
            for r, c in zip(rows, cols):
                if iou[r, c] >= self.min_iou and iou[r, c] > 0:
                    ids[r] = live[c]
        for r in np.flatnonzero(ids < 0):
            ids[r] = self._next_id
            self._next_id += 1
        matched = set(ids.tolist())
        for t in live:
            if t not in matched:
                self._missed[t] += 1
                if self._missed[t] > self.max_missed:
                    del self._boxes[t], self._missed[t]
        for r, t in enumerate(ids.tolist()):
            self._boxes[t] = boxes[r]
            self._missed[t] = 0
        return ids


def track_boxes(boxes_per_frame: Sequence[np.ndarray], tracker=None) -> List[np.ndarray]:
    """Track ids ``(n_t,)`` for the boxes ``(n_t, 4)`` of every frame (``tracker``: default :class:`IoUTracker`)."""
    tracker = IoUTracker() if tracker is None else tracker
    out = []
    for b in boxes_per_frame:
        ids = np.asarray(tracker.update(np.asarray(b, dtype=np.float64).reshape(-1, 4)), dtype=np.int64)
        if ids.shape != (len(b),):
            raise ValueError(f"tracker.update returned {ids.shape} ids for {len(b)} boxes")
        out.append(ids)
    return out


def group_tracks(detections: Sequence[Dict[str, np.ndarray]], ids: Sequence[np.ndarray],
                 min_track_frames: int = 1) -> Dict[int, Dict[str, np.ndarray]]:
    """Per-frame detections (``keypoints`` ``(n_t, K, C)``, ``boxes`` ``(n_t, 4)``) + their track ids -> ``{id:
    {"frames": (n,) first..last frame, "keypoints": (n, K, C), "boxes": (n, 4) (NaN where not detected),
    "detected": (n,) bool}}`` for tracks detected in at least ``min_track_frames`` frames, sorted by id (an id twice
    in a frame: the first kept)."""
    seen: Dict[int, List[tuple]] = {}
    for t, (d, tid) in enumerate(zip(detections, ids)):
        for i, k in enumerate(np.asarray(tid).tolist()):
            if k < 0:
                continue
            lst = seen.setdefault(int(k), [])
            if lst and lst[-1][0] == t:
                continue
            lst.append((t, d["keypoints"][i], d["boxes"][i]))
    tracks = {}
    for k in sorted(seen):
        items = seen[k]
        if len(items) < min_track_frames:
            continue
        t0, t1 = items[0][0], items[-1][0]
        n = t1 - t0 + 1
        kp = np.full((n,) + np.shape(items[0][1]), np.nan)
        bx = np.full((n, 4), np.nan)
        det = np.zeros(n, dtype=bool)
        for t, kpt, box in items:
            kp[t - t0], bx[t - t0], det[t - t0] = kpt, box, True
        tracks[k] = {"frames": np.arange(t0, t1 + 1), "keypoints": kp, "boxes": bx, "detected": det}
    return tracks
