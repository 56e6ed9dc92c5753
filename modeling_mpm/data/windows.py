"""Training-time windows over pose sequences.

:class:`PoseWindowDataset` is a ``torch.utils.data.Dataset`` over in-memory NumPy sequences,
indexed by (sequence, centre frame[, fixed camera][, modality]). Every frame (or every
``stride``-th frame) is the centre of one window of ``num_frames`` frames taken every ``tds``
frames; frames outside the sequence are edge-replicated on **both** sides (identical to
``np.pad(..., mode="edge")``).

Item keys (all ``torch.Tensor``; F = ``num_frames``, J = joints):

=================  ===========  =================================================================
key                shape/dtype  meaning
=================  ===========  =================================================================
``pose_2d``        (F, J, 2) f  normalised screen coordinates ``x/w*2-1``, ``y/w*2-h/w`` (not
                                root-relative); zeros when ``has_2d`` is False
``pose_3d``        (F, J, 3) f  camera frame (x right, y down, z forward), metres, root-relative
                                with the root (joint 0) exactly 0; zeros when ``has_3d`` is False
``confidence``     (F, J) f     1 = joint visible, 0 = missing/dropped (its 2D is set to 0);
                                zeros when ``has_2d`` is False
``intrinsics``     (9,) f       normalised ``[fx, fy, cx, cy, k1, k2, k3, p1, p2]`` (zeros = unknown)
``root_3d``        (F, 3) f     camera-frame position of the root, metres (zeros without 3D)
``frame_valid``    (F,) bool    per-frame validity flag of the source (3DHP test ``valid``)
``has_2d``         () bool      the item carries a 2D sequence
``has_3d``         () bool      the item carries a 3D sequence
``flipped``        () bool      left/right flip augmentation was applied
``sequence_index`` () int64     index of the source sequence
``center_frame``   () int64     centre frame of the window in the source sequence
``camera_index``   () int64     fixed virtual camera used (-1: random camera or real camera)
=================  ===========  =================================================================

Modes: ``"paired"`` (2D and 3D of the same window and camera), ``"unpaired"`` (every window
gives one 2D-only and one 3D-only item, the authors' "shuffle" pre-training; for world-frame
sources each gets its own random camera), ``"2d"`` / ``"3d"`` (one modality only).

World-frame sequences (3D-only sources: AMASS joints, motion capture, the demo) are seen
through virtual cameras: a random :class:`~modeling_mpm.cameras.VirtualCameraSampler` camera per
item, or a fixed list of :class:`~modeling_mpm.cameras.VirtualCamera` (deterministic, for
evaluation; each window is repeated once per camera). The window's mean root position is put
``distance`` metres in front of the camera, projected to pixels and normalised.

Randomness (flip, virtual cameras, 2D noise) comes from a NumPy generator seeded from
``seed``, the epoch (:meth:`PoseWindowDataset.set_epoch`) and the DataLoader worker id; the
global NumPy seed is never touched.

:func:`collate_unpaired` returns separate 2D and 3D sub-batches; :func:`collate_windows` stacks
paired items.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from ..cameras import (VirtualCamera, VirtualCameraSampler, normalize_intrinsics,
                       normalize_screen_coordinates)
from ..skeleton import get_skeleton

__all__ = [
    "PoseNoise2D",
    "PoseWindowDataset",
    "window_indices",
    "collate_windows",
    "collate_unpaired",
    "materialize_camera_sequences",
]

MODES = ("paired", "unpaired", "2d", "3d")


def window_indices(center: int, num_frames: int, num_source_frames: int, tds: int = 1) -> np.ndarray:
    """Frame indices (F,) of the window centred at ``center``: ``center + (k - (F-1)//2) * tds``
    clipped to ``[0, T-1]`` (edge padding on both sides)."""
    left = (num_frames - 1) // 2
    idx = center + (np.arange(num_frames) - left) * tds
    return np.clip(idx, 0, num_source_frames - 1)


@dataclass
class PoseNoise2D:
    """2D detection-like noise for 2D items.

    Attributes:
        std: Gaussian jitter standard deviation in normalised screen units (0.004 is ~2 px on a
            1000 px wide image).
        drop_prob: probability that a joint in a frame is dropped (confidence 0, 2D set to 0).
    """

    std: float = 0.004
    drop_prob: float = 0.0

    def __post_init__(self):
        if self.std < 0 or not 0 <= self.drop_prob <= 1:
            raise ValueError(f"PoseNoise2D needs std >= 0 and 0 <= drop_prob <= 1, got {self}")

    def apply(self, pose_2d: np.ndarray, confidence: np.ndarray, rng: np.random.Generator):
        if self.std > 0:
            pose_2d = pose_2d + rng.normal(0.0, self.std, size=pose_2d.shape).astype(np.float32)
        if self.drop_prob > 0:
            drop = rng.random(confidence.shape) < self.drop_prob
            confidence = np.where(drop, 0.0, confidence).astype(np.float32)
        return pose_2d, confidence


class _Seq:
    __slots__ = ("p3", "p2", "conf", "intr", "valid", "world", "T")


class PoseWindowDataset(Dataset):
    """Windows over pose sequences (see the module docstring for the item keys).

    Args:
        sequences: list of dicts, e.g. from :func:`modeling_mpm.data.load_sequences`. Keys:
            ``pose_3d`` (T, J, 3) metres (optional), ``pose_2d`` (T, J, 2) (optional or (0, J, 2)),
            ``pose_2d_units`` ``"pixels"`` (default) or ``"normalized"``, ``image_size`` (w, h),
            ``intrinsics`` (9,) pixels, ``coordinate_frame`` ``"camera"`` (default) or
            ``"world"`` (Z up), ``valid`` (T,), ``confidence`` (T, J) (optional).
        num_frames: window length F.
        tds: temporal down-sampling step inside a window.
        stride: distance between consecutive window centres.
        mode: ``"paired"``, ``"unpaired"``, ``"2d"`` or ``"3d"``.
        flip_prob: probability of the left/right flip (2D x, 3D x, camera cx and p1 negated,
            left/right joints swapped).
        skeleton: joint layout name (for the flip permutation); J must match.
        virtual_cameras: for world-frame sequences: a :class:`VirtualCameraSampler` (random
            camera per item), a list of :class:`VirtualCamera` (fixed), or None (a default
            sampler).
        noise_2d: optional :class:`PoseNoise2D` applied to 2D items.
        valid_only: only centres on frames whose ``valid`` flag is set.
        seed: base seed of the item generator.
    """

    def __init__(self, sequences: Sequence[dict], num_frames: int = 243, tds: int = 1, stride: int = 1,
                 mode: str = "paired", flip_prob: float = 0.0, skeleton="h36m17",
                 virtual_cameras: Union[VirtualCameraSampler, Sequence[VirtualCamera], None] = None,
                 noise_2d: Optional[PoseNoise2D] = None, valid_only: bool = False, seed: int = 0):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if num_frames < 1 or tds < 1 or stride < 1:
            raise ValueError(f"num_frames, tds and stride must be >= 1, got {num_frames}, {tds}, {stride}")
        if not 0.0 <= flip_prob <= 1.0:
            raise ValueError(f"flip_prob must be in [0, 1], got {flip_prob}")
        self.num_frames, self.tds, self.stride, self.mode = int(num_frames), int(tds), int(stride), mode
        self.flip_prob = float(flip_prob)
        self.skeleton = get_skeleton(skeleton)
        self.num_joints = self.skeleton.num_joints
        self.flip_perm = self.skeleton.flip_permutation
        if virtual_cameras is None:
            virtual_cameras = VirtualCameraSampler()
        if isinstance(virtual_cameras, VirtualCameraSampler):
            self.camera_sampler, self.fixed_cameras = virtual_cameras, None
        else:
            self.camera_sampler, self.fixed_cameras = None, list(virtual_cameras)
            if not self.fixed_cameras or not all(isinstance(c, VirtualCamera) for c in self.fixed_cameras):
                raise TypeError("virtual_cameras must be a VirtualCameraSampler or a non-empty list of VirtualCamera")
        self.noise_2d = noise_2d
        self.seed = int(seed)
        self.epoch = 0
        self._rng = None
        self._rng_key = None
        self.sequences: List[_Seq] = [self._prepare(i, s) for i, s in enumerate(sequences)]
        self._build_index(valid_only)

    # ------------------------------------------------------------------ construction
    def _prepare(self, i: int, s: dict) -> _Seq:
        if not isinstance(s, dict):
            raise TypeError(f"sequence {i} must be a dict, got {type(s).__name__}")
        J = self.num_joints
        q = _Seq()
        p3 = s.get("pose_3d")
        p2 = s.get("pose_2d")
        q.p3 = None if p3 is None or len(p3) == 0 else np.ascontiguousarray(p3, dtype=np.float32)
        q.p2 = None if p2 is None or len(p2) == 0 else np.asarray(p2, dtype=np.float32)
        if q.p3 is None and q.p2 is None:
            raise ValueError(f"sequence {i} has neither pose_3d nor pose_2d")
        for name, arr, c in (("pose_3d", q.p3, 3), ("pose_2d", q.p2, 2)):
            if arr is not None and (arr.ndim != 3 or arr.shape[1:] != (J, c)):
                raise ValueError(f"sequence {i}: {name} must be (T, {J}, {c}) for skeleton "
                                 f"{self.skeleton.name}, got {arr.shape}")
        if q.p3 is not None and q.p2 is not None and len(q.p3) != len(q.p2):
            raise ValueError(f"sequence {i}: pose_2d has {len(q.p2)} frames, pose_3d {len(q.p3)}")
        q.T = len(q.p3) if q.p3 is not None else len(q.p2)
        q.world = str(s.get("coordinate_frame", "camera")) == "world"
        if q.world and q.p3 is None:
            raise ValueError(f"sequence {i}: a world-frame sequence needs pose_3d")
        w, h = (np.asarray(s.get("image_size", (0, 0))).tolist() + [0, 0])[:2]
        intr = np.asarray(s.get("intrinsics", np.zeros(9)), dtype=np.float64)
        q.intr = normalize_intrinsics(intr, w, h) if w > 0 else np.zeros(9, np.float32)
        if q.p2 is not None and not q.world:
            units = str(s.get("pose_2d_units", "pixels"))
            if units == "pixels":
                if not w > 0:
                    raise ValueError(f"sequence {i}: pixel 2D needs a positive image_size, got {(w, h)}")
                q.p2 = normalize_screen_coordinates(q.p2, w, h).astype(np.float32)
            elif units != "normalized":
                raise ValueError(f"sequence {i}: unknown pose_2d_units {units!r}")
        if q.world:
            q.p2 = None  # 2D of world-frame motion always comes from the virtual camera
        conf = s.get("confidence")
        q.conf = None if conf is None else np.asarray(conf, dtype=np.float32)
        if q.conf is not None and q.conf.shape != (q.T, J):
            raise ValueError(f"sequence {i}: confidence must be {(q.T, J)}, got {q.conf.shape}")
        valid = s.get("valid")
        q.valid = np.ones(q.T, bool) if valid is None or len(valid) == 0 else np.asarray(valid, bool)
        if q.valid.shape != (q.T,):
            raise ValueError(f"sequence {i}: valid must have {q.T} flags, got {q.valid.shape}")
        return q

    def _build_index(self, valid_only: bool):
        seq_idx, centers, cams, modality = [], [], [], []
        n_cams = len(self.fixed_cameras) if self.fixed_cameras else 1
        for i, q in enumerate(self.sequences):
            c = np.arange(0, q.T, self.stride)
            if valid_only:
                c = c[q.valid[c]]
            has2 = q.p2 is not None or q.world
            has3 = q.p3 is not None
            if self.mode == "paired":
                if not (has2 and has3):
                    continue
                mods = [2]
            elif self.mode == "unpaired":
                mods = ([0] if has2 else []) + ([1] if has3 else [])
            elif self.mode == "2d":
                mods = [0] if has2 else []
            else:
                mods = [1] if has3 else []
            cam_ids = range(n_cams) if (q.world and self.fixed_cameras) else [-1]
            for cam in cam_ids:
                for m in mods:
                    seq_idx.append(np.full(len(c), i))
                    centers.append(c)
                    cams.append(np.full(len(c), cam))
                    modality.append(np.full(len(c), m))
        cat = lambda xs: np.concatenate(xs).astype(np.int64) if xs else np.zeros(0, np.int64)  # noqa: E731
        self._seq, self._center, self._cam, self._mod = cat(seq_idx), cat(centers), cat(cams), cat(modality)
        if self.mode == "unpaired" and len(self._seq):
            # interleave so that neighbouring indices alternate 2D / 3D like the authors' index % 2
            order = np.lexsort((self._mod, self._center, self._cam, self._seq))
            self._seq, self._center, self._cam, self._mod = (a[order] for a in
                                                             (self._seq, self._center, self._cam, self._mod))

    @classmethod
    def from_dataset(cls, dataset, **kwargs) -> "PoseWindowDataset":
        """Build from a prepared ``datasets.Dataset`` (one split) or a path: the columns are read
        once as NumPy (:func:`modeling_mpm.data.load_sequences`); ``skeleton`` defaults to the
        data set's ``skeleton`` column."""
        from .io import load_sequences

        seqs = load_sequences(dataset)
        if "skeleton" not in kwargs and seqs:
            kwargs["skeleton"] = seqs[0].get("skeleton", "h36m17")
        return cls(seqs, **kwargs)

    # ------------------------------------------------------------------ randomness
    def set_epoch(self, epoch: int):
        """Change the random stream (call once per epoch for new flips / cameras / noise)."""
        self.epoch = int(epoch)

    def _generator(self) -> np.random.Generator:
        info = torch.utils.data.get_worker_info()
        key = (self.epoch, info.id if info is not None else -1)
        if self._rng is None or self._rng_key != key:
            self._rng = np.random.default_rng(np.random.SeedSequence([self.seed, key[0], key[1] + 1]))
            self._rng_key = key
        return self._rng

    # ------------------------------------------------------------------ items
    def __len__(self) -> int:
        return int(len(self._seq))

    def _world_to_view(self, q: _Seq, idx: np.ndarray, cam: VirtualCamera):
        world = q.p3[idx].astype(np.float64)
        center = world[:, 0].mean(axis=0)
        cam3d = cam.to_camera(world, center)
        p2 = normalize_screen_coordinates(cam.project(cam3d), cam.width, cam.height).astype(np.float32)
        intr = normalize_intrinsics(cam.intrinsics, cam.width, cam.height)
        return p2, cam3d.astype(np.float32), intr

    def __getitem__(self, index: int) -> Dict[str, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} windows")
        index = int(index) % len(self)
        si, center, cam_i, mod = (int(a[index]) for a in (self._seq, self._center, self._cam, self._mod))
        q = self.sequences[si]
        F, J = self.num_frames, self.num_joints
        idx = window_indices(center, F, q.T, self.tds)
        want2, want3 = mod in (0, 2), mod in (1, 2)
        needs_rng = self.flip_prob > 0 or self.noise_2d is not None or (q.world and cam_i < 0)
        rng = self._generator() if needs_rng else None

        pose_2d = np.zeros((F, J, 2), np.float32)
        pose_3d = np.zeros((F, J, 3), np.float32)
        root = np.zeros((F, 3), np.float32)
        conf = np.zeros((F, J), np.float32)
        intr = q.intr
        if q.world:
            cam = self.fixed_cameras[cam_i] if cam_i >= 0 else self.camera_sampler.sample(rng)
            p2, p3, intr = self._world_to_view(q, idx, cam)
        else:
            p2 = q.p2[idx] if (want2 and q.p2 is not None) else None
            p3 = q.p3[idx] if (want3 and q.p3 is not None) else None
        if want2:
            pose_2d = np.array(p2, dtype=np.float32)
            conf = q.conf[idx].copy() if q.conf is not None else np.ones((F, J), np.float32)
        if want3:
            root = np.array(p3[:, 0], dtype=np.float32)
            pose_3d = (p3 - p3[:, :1]).astype(np.float32)
            pose_3d[:, 0] = 0.0
        flipped = bool(self.flip_prob > 0 and rng.random() < self.flip_prob)
        if flipped:
            perm = self.flip_perm
            pose_2d = pose_2d[:, perm] * np.array([-1.0, 1.0], np.float32)
            pose_3d = pose_3d[:, perm] * np.array([-1.0, 1.0, 1.0], np.float32)
            conf = conf[:, perm]
            root = root * np.array([-1.0, 1.0, 1.0], np.float32)
            intr = intr.copy()
            intr[2] *= -1
            intr[7] *= -1
        if want2 and self.noise_2d is not None:
            pose_2d, conf = self.noise_2d.apply(pose_2d, conf, rng)
        if want2:
            pose_2d = np.where(conf[..., None] > 0, pose_2d, 0.0).astype(np.float32)
        return {
            "pose_2d": torch.from_numpy(np.ascontiguousarray(pose_2d)),
            "pose_3d": torch.from_numpy(np.ascontiguousarray(pose_3d)),
            "confidence": torch.from_numpy(np.ascontiguousarray(conf)),
            "intrinsics": torch.from_numpy(np.array(intr, dtype=np.float32)),
            "root_3d": torch.from_numpy(root),
            "frame_valid": torch.from_numpy(q.valid[idx]),
            "has_2d": torch.tensor(want2),
            "has_3d": torch.tensor(want3),
            "flipped": torch.tensor(flipped),
            "sequence_index": torch.tensor(si, dtype=torch.int64),
            "center_frame": torch.tensor(center, dtype=torch.int64),
            "camera_index": torch.tensor(cam_i, dtype=torch.int64),
        }


def collate_windows(batch: Sequence[Dict[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
    """Stack items key by key: every value gets a leading batch dimension B."""
    if not batch:
        raise ValueError("empty batch")
    return {k: torch.stack([b[k] for b in batch]) for k in batch[0]}


def collate_unpaired(batch: Sequence[Dict[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
    """Split a batch into a 2D and a 3D sub-batch (items with both modalities go to both).

    Returns ``pose_2d`` (B2, F, J, 2), ``confidence`` (B2, F, J), ``intrinsics_2d`` (B2, 9),
    ``frame_valid_2d`` (B2, F), ``pose_3d`` (B3, F, J, 3), ``intrinsics_3d`` (B3, 9),
    ``root_3d`` (B3, F, 3), ``frame_valid_3d`` (B3, F), and ``index_2d`` / ``index_3d`` (positions
    in the input batch). An empty sub-batch has a leading dimension 0 and the right trailing
    shape.
    """
    if not batch:
        raise ValueError("empty batch")
    i2 = [i for i, b in enumerate(batch) if bool(b["has_2d"])]
    i3 = [i for i, b in enumerate(batch) if bool(b["has_3d"])]

    def stack(key, ids):
        if ids:
            return torch.stack([batch[i][key] for i in ids])
        ref = batch[0][key]
        return ref.new_zeros((0,) + tuple(ref.shape))

    return {
        "pose_2d": stack("pose_2d", i2),
        "confidence": stack("confidence", i2),
        "intrinsics_2d": stack("intrinsics", i2),
        "frame_valid_2d": stack("frame_valid", i2),
        "pose_3d": stack("pose_3d", i3),
        "intrinsics_3d": stack("intrinsics", i3),
        "root_3d": stack("root_3d", i3),
        "frame_valid_3d": stack("frame_valid", i3),
        "index_2d": torch.tensor(i2, dtype=torch.int64),
        "index_3d": torch.tensor(i3, dtype=torch.int64),
    }


def materialize_camera_sequences(sequences: Sequence[dict], cameras: Sequence[VirtualCamera]) -> List[dict]:
    """Whole world-frame sequences seen by fixed virtual cameras, for reproducible evaluation.

    For each sequence (``pose_3d`` (T, J, 3) world metres, Z up) and camera returns a dict with
    ``pose_2d`` (T, J, 2) normalised screen coordinates, ``pose_3d`` (T, J, 3) camera-frame
    root-relative metres (root = 0), ``root_3d`` (T, 3), ``intrinsics`` (9,) normalised,
    ``sequence_index``, ``camera_index``. The sequence's mean root is placed in front of the camera.
    """
    out = []
    for si, s in enumerate(sequences):
        world = np.asarray(s["pose_3d"], dtype=np.float64)
        if world.ndim != 3 or world.shape[-1] != 3:
            raise ValueError(f"sequence {si}: pose_3d must be (T, J, 3), got {world.shape}")
        center = world[:, 0].mean(axis=0)
        for ci, cam in enumerate(cameras):
            cam3d = cam.to_camera(world, center)
            p2 = normalize_screen_coordinates(cam.project(cam3d), cam.width, cam.height)
            rel = cam3d - cam3d[:, :1]
            rel[:, 0] = 0.0
            out.append({
                "pose_2d": p2.astype(np.float32), "pose_3d": rel.astype(np.float32),
                "root_3d": cam3d[:, 0].astype(np.float32),
                "intrinsics": normalize_intrinsics(cam.intrinsics, cam.width, cam.height),
                "sequence_index": si, "camera_index": ci,
                "sequence": str(s.get("sequence", si)),
            })
    return out
