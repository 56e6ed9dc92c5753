"""Training-time windows over pose sequences (item keys, modes and batches also in docs/data.md).

:class:`PoseWindowDataset` (a ``torch.utils.data.Dataset`` over in-memory NumPy sequences) is indexed by
(sequence, centre frame[, fixed camera][, modality]); every ``stride``-th frame is the centre of a window of
``num_frames`` frames taken every ``tds`` frames, edge-replicated on both sides (``np.pad(mode="edge")``).

Item keys (``torch.Tensor``; F = ``num_frames``, J = joints; zeros for a modality the item lacks): ``pose_2d``
(F, J, 2) normalised screen coordinates ``x/w*2-1``, ``y/w*2-h/w`` (not root-relative); ``pose_3d`` (F, J, 3)
camera frame (x right, y down, z forward), metres, root-relative with the root (joint 0) exactly 0;
``confidence`` (F, J) 1 = visible, 0 = missing/dropped (its 2D set to 0); ``intrinsics`` (9,) normalised
``[fx, fy, cx, cy, k1, k2, k3, p1, p2]`` (zeros = unknown); ``root_3d`` (F, 3) camera-frame root, metres;
``frame_valid`` (F,) bool source validity; ``has_2d``, ``has_3d``, ``flipped`` () bool; ``sequence_index``,
``center_frame``, ``camera_index`` () int64 (camera -1: random or real camera).

Modes: ``"paired"``, ``"unpaired"`` (each window gives a 2D-only and a 3D-only item, the authors' "shuffle"
pre-training; world-frame sources get a camera each), ``"2d"``, ``"3d"``. World-frame sequences (Z up) are seen
through a random :class:`~modeling_mpm.cameras.VirtualCameraSampler` camera per item or fixed
:class:`~modeling_mpm.cameras.VirtualCamera` s (each window repeated per camera), the window's mean root
``distance`` metres in front of the camera. Randomness comes from a NumPy generator seeded from ``seed``, the epoch
and the DataLoader worker id (saved by :meth:`PoseWindowDataset.rng_state`), never the global NumPy seed.
"""

from __future__ import annotations

import collections.abc
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from ..cameras import (VirtualCamera, VirtualCameraSampler, camera_arrays, normalize_intrinsics,
                       normalize_screen_coordinates)
from ..skeleton import get_skeleton

__all__ = ["PoseNoise2D", "PoseWindowDataset", "WindowBatch", "window_indices", "collate_windows", "collate_unpaired",
           "materialize_camera_sequences"]

MODES = ("paired", "unpaired", "2d", "3d")


def window_indices(center, num_frames: int, num_source_frames, tds: int = 1) -> np.ndarray:
    """Frame indices (..., F) of the windows centred at ``center`` (int or array; T = ``num_source_frames``):
    ``center + (k - (F-1)//2) * tds`` clipped to ``[0, T-1]``. The one window rule of the package."""
    offsets = (np.arange(num_frames) - (num_frames - 1) // 2) * tds
    return np.clip(np.asarray(center)[..., None] + offsets, 0, np.asarray(num_source_frames)[..., None] - 1)


@dataclass
class PoseNoise2D:
    """2D detection-like noise for 2D items: Gaussian jitter ``std`` in normalised screen units (0.004 is ~2 px
    on a 1000 px wide image); ``drop_prob`` per joint and frame of a drop (confidence 0, 2D set to 0)."""

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


class PoseWindowDataset(Dataset):
    """Windows over pose sequences (see the module docstring for the item keys).

    Args:
        sequences: dicts, e.g. from :func:`modeling_mpm.data.load_sequences`: ``pose_3d`` (T, J, 3) metres and/or
            ``pose_2d`` (T, J, 2), ``pose_2d_units`` ``"pixels"`` (default) or ``"normalized"``, ``image_size``
            (w, h), ``intrinsics`` (9,) pixels, ``coordinate_frame`` ``"camera"`` (default) or ``"world"`` (Z up),
            ``valid`` (T,), ``confidence`` (T, J) (optional).
        num_frames: window length F.
        tds: temporal down-sampling step inside a window.
        stride: distance between consecutive window centres.
        mode: ``"paired"``, ``"unpaired"``, ``"2d"`` or ``"3d"``.
        flip_prob: probability of the left/right flip (2D x, 3D x, cx and p1 negated, joints swapped).
        skeleton: joint layout name (for the flip permutation); J must match.
        virtual_cameras: for world-frame sequences: a :class:`VirtualCameraSampler` (random camera per item), a
            list of :class:`VirtualCamera` (fixed), or None (a default sampler).
        noise_2d: optional :class:`PoseNoise2D` (or :class:`~modeling_mpm.data.augment.DetectorNoise2D`) for 2D items.
        augment: optional :class:`~modeling_mpm.data.augment.MotionAugment` for windows seen through a *random*
            virtual camera only.
        valid_only: only centres on frames whose ``valid`` flag is set.
        seed: base seed of the item generator.
        labels: optional per-sequence action labels: items become ``{"pose_2d", "pose_3d", "action"}``.

    The sequences are copied once into flat arrays; a batch of windows is one gather (:meth:`get_batch`).
    """

    def __init__(self, sequences: Sequence[dict], num_frames: int = 243, tds: int = 1, stride: int = 1,
                 mode: str = "paired", flip_prob: float = 0.0, skeleton="h36m17",
                 virtual_cameras: Union[VirtualCameraSampler, Sequence[VirtualCamera], None] = None,
                 noise_2d: Optional[PoseNoise2D] = None, valid_only: bool = False, seed: int = 0,
                 augment=None, labels: Optional[Sequence[str]] = None):
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
            self.camera_sampler, self.fixed_cameras, self._fixed = virtual_cameras, None, None
        else:
            self.camera_sampler, self.fixed_cameras = None, list(virtual_cameras)
            if not self.fixed_cameras or not all(isinstance(c, VirtualCamera) for c in self.fixed_cameras):
                raise TypeError("virtual_cameras must be a VirtualCameraSampler or a non-empty list of VirtualCamera")
            self._fixed = camera_arrays(self.fixed_cameras)
        self.noise_2d = noise_2d
        if augment is not None and not (hasattr(augment, "apply_world") and hasattr(augment, "apply_camera")):
            raise TypeError(f"augment must be a modeling_mpm.data.augment.MotionAugment, got {type(augment).__name__}")
        self.augment = augment
        self.seed = int(seed)
        self.labels = None if labels is None else [str(x) for x in labels]
        self.epoch, self._rng, self._rng_key = 0, None, None
        self._offsets = (np.arange(self.num_frames) - (self.num_frames - 1) // 2) * self.tds
        self._pack([self._check(i, s) for i, s in enumerate(sequences)])
        self._build_index(valid_only)

    def _check(self, i: int, s: dict) -> dict:
        if not isinstance(s, dict):
            raise TypeError(f"sequence {i} must be a dict, got {type(s).__name__}")
        J = self.num_joints
        p3, p2 = s.get("pose_3d"), s.get("pose_2d")
        p3 = None if p3 is None or len(p3) == 0 else np.asarray(p3, dtype=np.float32)
        p2 = None if p2 is None or len(p2) == 0 else np.asarray(p2, dtype=np.float32)
        if p3 is None and p2 is None:
            raise ValueError(f"sequence {i} has neither pose_3d nor pose_2d")
        for name, arr, c in (("pose_3d", p3, 3), ("pose_2d", p2, 2)):
            if arr is not None and (arr.ndim != 3 or arr.shape[1:] != (J, c)):
                raise ValueError(f"sequence {i}: {name} must be (T, {J}, {c}) for skeleton "
                                 f"{self.skeleton.name}, got {arr.shape}")
        if p3 is not None and p2 is not None and len(p3) != len(p2):
            raise ValueError(f"sequence {i}: pose_2d has {len(p2)} frames, pose_3d {len(p3)}")
        T = len(p3) if p3 is not None else len(p2)
        world = str(s.get("coordinate_frame", "camera")) == "world"
        if world and p3 is None:
            raise ValueError(f"sequence {i}: a world-frame sequence needs pose_3d")
        w, h = (np.asarray(s.get("image_size", (0, 0))).tolist() + [0, 0])[:2]
        intr = np.asarray(s.get("intrinsics", np.zeros(9)), dtype=np.float64)
        intr = normalize_intrinsics(intr, w, h) if w > 0 else np.zeros(9, np.float32)
        if p2 is not None and not world:
            units = str(s.get("pose_2d_units", "pixels"))
            if units == "pixels":
                if not w > 0:
                    raise ValueError(f"sequence {i}: pixel 2D needs a positive image_size, got {(w, h)}")
                p2 = normalize_screen_coordinates(p2, w, h).astype(np.float32)
            elif units != "normalized":
                raise ValueError(f"sequence {i}: unknown pose_2d_units {units!r}")
        if world:
            p2 = None  # 2D of world-frame motion always comes from the virtual camera
        conf = s.get("confidence")
        conf = None if conf is None else np.asarray(conf, dtype=np.float32)
        if conf is not None and conf.shape != (T, J):
            raise ValueError(f"sequence {i}: confidence must be {(T, J)}, got {conf.shape}")
        valid = s.get("valid")
        valid = np.ones(T, bool) if valid is None or len(valid) == 0 else np.asarray(valid, bool)
        if valid.shape != (T,):
            raise ValueError(f"sequence {i}: valid must have {T} flags, got {valid.shape}")
        return {"p3": p3, "p2": p2, "conf": conf, "intr": intr, "valid": valid, "world": world, "T": T}

    def _pack(self, seqs: List[dict]):
        J = self.num_joints
        self.num_sequences = len(seqs)
        self._T = np.array([q["T"] for q in seqs], dtype=np.int64)
        self._start = np.concatenate([[0], np.cumsum(self._T)[:-1]]).astype(np.int64) if seqs else np.zeros(0, np.int64)
        self._world = np.array([q["world"] for q in seqs], dtype=bool)
        self._has2 = np.array([q["p2"] is not None or q["world"] for q in seqs], dtype=bool)
        self._has3 = np.array([q["p3"] is not None for q in seqs], dtype=bool)
        self._intr = np.stack([q["intr"] for q in seqs]).astype(np.float32) if seqs else np.zeros((0, 9), np.float32)

        def flat(key, shape, fill=0.0):
            parts = [q[key] if q[key] is not None else np.full((q["T"],) + shape, fill, np.float32) for q in seqs]
            return np.concatenate(parts) if parts else np.zeros((0,) + shape, np.float32)

        self._p3 = flat("p3", (J, 3)) if self._has3.any() else None
        self._p2 = flat("p2", (J, 2)) if any(q["p2"] is not None for q in seqs) else None
        self._conf = flat("conf", (J,), 1.0) if any(q["conf"] is not None for q in seqs) else None
        self._valid = np.concatenate([q["valid"] for q in seqs]) if seqs else np.zeros(0, bool)

    def _build_index(self, valid_only: bool):
        parts = []  # (4, n) rows: sequence, centre, camera, modality
        n_cams = len(self.fixed_cameras) if self.fixed_cameras else 1
        for i in range(self.num_sequences):
            c = np.arange(0, self._T[i], self.stride)
            if valid_only:
                c = c[self._valid[self._start[i] + c]]
            has2, has3 = bool(self._has2[i]), bool(self._has3[i])
            # modality codes: 0 = 2D only, 1 = 3D only, 2 = paired
            mods = {"paired": [2] * (has2 and has3), "unpaired": [0] * has2 + [1] * has3,
                    "2d": [0] * has2, "3d": [1] * has3}[self.mode]
            cam_ids = range(n_cams) if (self._world[i] and self.fixed_cameras) else [-1]
            parts += [np.stack([np.full(len(c), i), c, np.full(len(c), cam), np.full(len(c), m)])
                      for cam in cam_ids for m in mods]
        index = np.concatenate(parts, axis=1).astype(np.int64) if parts else np.zeros((4, 0), np.int64)
        if self.mode == "unpaired":
            # interleave so that neighbouring indices alternate 2D / 3D like the authors' index % 2
            index = index[:, np.lexsort(index[[3, 1, 2, 0]])]
        self._seq, self._center, self._cam, self._mod = index

    @classmethod
    def from_dataset(cls, dataset, **kwargs) -> "PoseWindowDataset":
        """Build from a prepared ``datasets.Dataset`` (one split) or a path (:func:`~modeling_mpm.data.load_sequences`);
        ``skeleton`` defaults to the data set's ``skeleton`` column."""
        from .io import load_sequences

        seqs = load_sequences(dataset)
        if "skeleton" not in kwargs and seqs:
            kwargs["skeleton"] = seqs[0].get("skeleton", "h36m17")
        return cls(seqs, **kwargs)

    def set_epoch(self, epoch: int):
        """Change the random stream (call once per epoch for new flips / cameras / noise)."""
        self.epoch = int(epoch)

    def rng_state(self) -> Dict:
        """The item stream (epoch, worker key, generator state), e.g. for a checkpoint."""
        return {"epoch": int(self.epoch), "key": self._rng_key,
                "state": None if self._rng is None else self._rng.bit_generator.state}

    def set_rng_state(self, state: Dict) -> None:
        """Continue the item stream saved by :meth:`rng_state`."""
        self.epoch, self._rng, self._rng_key = int(state["epoch"]), None, None
        if state["state"] is not None:
            self._rng = np.random.default_rng()
            self._rng.bit_generator.state = state["state"]
            self._rng_key = tuple(state["key"])

    @property
    def windows(self) -> "PoseWindowDataset":
        """The dataset itself (code written for the former ``LabelledWindows`` wrapper reads it)."""
        return self

    def _generator(self) -> np.random.Generator:
        info = torch.utils.data.get_worker_info()
        key = (self.epoch, info.id if info is not None else -1)
        if self._rng is None or self._rng_key != key:
            self._rng = np.random.default_rng(np.random.SeedSequence([self.seed, key[0], key[1] + 1]))
            self._rng_key = key
        return self._rng

    def __len__(self) -> int:
        return int(len(self._seq))

    def _check_indices(self, indices) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(self)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"window index out of range for {n} windows")
        return idx % max(n, 1)

    def _views(self, idx: np.ndarray, need2: bool, need3: bool, rng) -> Dict[str, np.ndarray]:
        """Windows ``idx`` (all wanting the same modalities), rows grouped (camera / world x not flipped / flipped)
        so that every copy is one gather; ``order`` gives the input position of each output row."""
        n, F, J = len(idx), self.num_frames, self.num_joints
        si = self._seq[idx]
        world = self._world[si]
        flip = (rng.random(n) < self.flip_prob) if self.flip_prob > 0 else np.zeros(n, bool)
        key = world.astype(np.int64) * 2 + flip
        order = np.argsort(key, kind="stable")
        b = np.concatenate([[0], np.cumsum(np.bincount(key, minlength=4))])
        si, flip = si[order], flip[order]
        center, cam_i = self._center[idx][order], self._cam[idx][order]
        frames = window_indices(center, F, self._T[si], self.tds) + self._start[si][:, None]
        perm = self.flip_perm
        sign2 = np.array([-1.0, 1.0], np.float32)
        sign3 = np.array([-1.0, 1.0, 1.0], np.float32)
        out = {"order": order, "flipped": flip, "sequence_index": si, "center_frame": center,
               "camera_index": cam_i, "frame_valid": self._valid[frames]}
        intr = self._intr[si]  # fancy index: a copy

        def gather(src, shape_tail):
            arr = np.empty((n, F) + shape_tail, np.float32)
            if b[1] > 0:
                np.take(src, frames[: b[1]], axis=0, out=arr[: b[1]])
            if b[2] > b[1]:
                np.take(np.take(src, frames[b[1]: b[2]], axis=0), perm, axis=2, out=arr[b[1]: b[2]])
            return arr

        if need2:
            pose_2d = gather(self._p2, (J, 2)) if b[2] > 0 else np.empty((n, F, J, 2), np.float32)
            if self._conf is not None and b[2] > 0:
                conf = gather(self._conf, (J,))
                conf[b[2]:] = 1.0
            else:
                conf = np.ones((n, F, J), np.float32)
            pose_2d[b[1]: b[2]] *= sign2
        if need3:
            pose_3d = gather(self._p3, (J, 3)) if b[2] > 0 else np.empty((n, F, J, 3), np.float32)
            pose_3d[b[1]: b[2]] *= sign3
            root = np.empty((n, F, 3), np.float32)
            root[: b[2]] = pose_3d[: b[2], :, 0]
            pose_3d[: b[2]] -= root[: b[2], :, None]
        if b[4] > b[2]:  # world-frame rows: virtual cameras
            wframes = frames[b[2]:]
            if self.augment is not None and (cam_i[b[2]:] < 0).all():
                # playback speed: fractional frame positions, interpolated in _world_project
                speed = self.augment.sample_speed(rng, b[4] - b[2])
                if not np.all(speed == 1.0):
                    ws = si[b[2]:]
                    pos = center[b[2]:, None] + self._offsets[None] * speed[:, None]
                    wframes = np.clip(pos, 0, (self._T[ws] - 1)[:, None]) + self._start[ws][:, None]
            w2, w3, wroot, wintr = self._world_project(wframes, cam_i[b[2]:], rng, need2, need3)
            intr[b[2]:] = wintr
            t = b[3] - b[2]  # world rows >= t (relative) are flipped
            if need2:
                pose_2d[b[2]: b[3]] = w2[:t]
                pose_2d[b[3]:] = np.take(w2[t:], perm, axis=2) * sign2
            if need3:
                pose_3d[b[2]: b[3]] = w3[:t]
                pose_3d[b[3]:] = np.take(w3[t:], perm, axis=2) * sign3
                root[b[2]:] = wroot
                root[b[3]:] *= sign3
        intr[flip, 2] *= -1
        intr[flip, 7] *= -1
        out["intrinsics"] = intr
        if need2:
            if self.noise_2d is not None:
                pose_2d, conf = self.noise_2d.apply(pose_2d, conf, rng)
            if self.noise_2d is not None or self._conf is not None:
                pose_2d[conf == 0] = 0.0
            out["pose_2d"], out["confidence"] = pose_2d, conf
        if need3:
            pose_3d[:, :, 0] = 0.0
            out["pose_3d"], out["root_3d"] = pose_3d, root
        return out

    def _world_project(self, frames: np.ndarray, cam_i: np.ndarray, rng, need2: bool = True, need3: bool = True):
        """World-frame windows ``frames`` (n, F) through fixed (``cam_i`` >= 0) or random virtual cameras -> (2D
        normalised (n,F,J,2), root-relative camera 3D (n,F,J,3), root (n,F,3), normalised intrinsics (n,9))."""
        n, F, J = frames.shape[0], frames.shape[1], self.num_joints
        if np.issubdtype(frames.dtype, np.floating):  # fractional positions (speed augmentation)
            lo = np.floor(frames).astype(np.int64)
            frac = (frames - lo).astype(np.float32)
            hi = np.where(frac > 0, lo + 1, lo)
            world = np.take(self._p3, lo, axis=0)
            world += (np.take(self._p3, hi, axis=0) - world) * frac[..., None, None]
        else:
            world = np.take(self._p3, frames, axis=0)
        augment = self.augment if (self.augment is not None and (cam_i < 0).all()) else None
        if augment is not None:
            world = augment.apply_world(world, rng, donors=lambda k: self._donor_windows(rng, k))
        center = world[:, :, 0].mean(axis=1)
        fixed = cam_i >= 0
        if fixed.all():
            cams = {k: v[cam_i] for k, v in self._fixed.items()}
        elif not fixed.any():
            cams = self.camera_sampler.sample_arrays(rng, n)
        else:
            drawn = self.camera_sampler.sample_arrays(rng, int((~fixed).sum()))
            cams = {}
            for k, v in drawn.items():
                arr = np.empty((n,) + v.shape[1:])
                arr[~fixed] = v
                arr[fixed] = self._fixed[k][cam_i[fixed]]
                cams[k] = arr
        R = cams["rotation"].astype(np.float32)
        Rt = R.transpose(0, 2, 1)
        # camera = R (X - centre) + t = R X + (t - R centre)
        shift = (cams["translation"] - np.einsum("nij,nj->ni", cams["rotation"], center)).astype(np.float32)
        root = np.matmul(world[:, :, 0], Rt) + shift[:, None]
        scale = (2 * cams["focal"] / cams["width"]).astype(np.float32)  # normalised focal length
        pose_2d = pose_3d = None
        if need2:
            cam = np.matmul(world.reshape(n, F * J, 3), Rt)
            cam += shift[:, None]
            inv_z = scale[:, None] / np.clip(cam[..., 2], 1e-6, None)
            pose_2d = (cam[..., :2] * inv_z[..., None]).reshape(n, F, J, 2)
        if need3:
            rel = world - world[:, :, :1]
            pose_3d = np.matmul(rel.reshape(n, F * J, 3), Rt).reshape(n, F, J, 3)
        intr = np.zeros((n, 9), np.float32)
        intr[:, 0] = intr[:, 1] = scale  # principal point at the image centre -> cx' = cy' = 0
        if augment is not None:
            augment.apply_camera(rng, n, pose_2d, pose_3d, root, intr)
        return pose_2d, pose_3d, root, intr

    def _donor_windows(self, rng: np.random.Generator, k: int) -> np.ndarray:
        """``k`` random world-frame windows (k, F, J, 3), the donors of body-part mixing."""
        seqs = np.flatnonzero(self._world & self._has3)
        weights = self._T[seqs] / self._T[seqs].sum()
        si = seqs[rng.choice(len(seqs), size=k, p=weights)]
        centre = (rng.random(k) * self._T[si]).astype(np.int64)
        frames = window_indices(centre, self.num_frames, self._T[si], self.tds) + self._start[si][:, None]
        return np.take(self._p3, frames, axis=0)

    def get_batch(self, indices) -> Dict[str, np.ndarray]:
        """Windows ``indices`` (B,) as a dict of NumPy arrays (the item keys with a leading batch dimension)."""
        idx = self._check_indices(indices)
        B, F, J = len(idx), self.num_frames, self.num_joints
        mod = self._mod[idx]
        needs_rng = (self.flip_prob > 0 or self.noise_2d is not None
                     or bool((self._world[self._seq[idx]] & (self._cam[idx] < 0)).any()))
        rng = self._generator() if needs_rng else None
        out = {
            "pose_2d": np.zeros((B, F, J, 2), np.float32), "pose_3d": np.zeros((B, F, J, 3), np.float32),
            "confidence": np.zeros((B, F, J), np.float32), "intrinsics": np.zeros((B, 9), np.float32),
            "root_3d": np.zeros((B, F, 3), np.float32), "frame_valid": np.zeros((B, F), bool),
            "has_2d": mod != 1, "has_3d": mod != 0, "flipped": np.zeros(B, bool),
            "sequence_index": np.zeros(B, np.int64), "center_frame": np.zeros(B, np.int64),
            "camera_index": np.zeros(B, np.int64),
        }
        for m, need2, need3 in ((2, True, True), (0, True, False), (1, False, True)):
            rows = np.flatnonzero(mod == m)
            if rows.size == 0:
                continue
            v = self._views(idx[rows], need2, need3, rng)
            dest = rows[v.pop("order")]
            for k, val in v.items():
                out[k][dest] = val
        return out

    def get_unpaired_batch(self, indices) -> Dict[str, np.ndarray]:
        """Windows ``indices`` in the :func:`collate_unpaired` layout (2D and 3D sub-batches)."""
        return {k: v.numpy() for k, v in
                _split_unpaired({k: torch.from_numpy(v) for k, v in self.get_batch(indices).items()}).items()}

    def __getitem__(self, index: int) -> Dict[str, torch.Tensor]:
        index = int(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} windows")
        batch = self.get_batch([index])
        if self.labels is not None:
            return self._labelled(batch)[0]
        return {k: torch.from_numpy(np.ascontiguousarray(v[0])) for k, v in batch.items()}

    def __getitems__(self, indices):
        """Batched fetch used by ``DataLoader`` (torch >= 2.1): a lazy :class:`WindowBatch` (with ``labels``: the
        labelled items of one :meth:`get_batch` call)."""
        if self.labels is not None:
            return self._labelled(self.get_batch(indices))
        return WindowBatch(self, indices)

    def _labelled(self, b: Dict[str, np.ndarray]) -> List[Dict]:
        p2, p3 = torch.from_numpy(b["pose_2d"]), torch.from_numpy(b["pose_3d"])
        return [{"pose_2d": p2[k], "pose_3d": p3[k], "action": self.labels[int(b["sequence_index"][k])]}
                for k in range(len(p2))]

    def iter_batches(self, batch_size: int, shuffle: bool = True, drop_last: bool = False,
                     generator: Optional[np.random.Generator] = None, unpaired: Optional[bool] = None):
        """Yield collated batches (dicts of tensors) without a DataLoader: the :func:`collate_unpaired` layout when
        ``unpaired`` (default: ``mode == "unpaired"``), else :func:`collate_windows`'s. ``generator`` shuffles
        (default: seeded from ``seed`` and the epoch)."""
        n = len(self)
        if shuffle:
            g = generator or np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch, 1_000_003]))
            order = g.permutation(n)
        else:
            order = np.arange(n)
        unpaired = self.mode == "unpaired" if unpaired is None else unpaired
        stop = n - n % batch_size if drop_last else n
        for s in range(0, stop, batch_size):
            chunk = order[s:s + batch_size]
            batch = self.get_unpaired_batch(chunk) if unpaired else self.get_batch(chunk)
            yield {k: torch.from_numpy(v) for k, v in batch.items()}


def _split_unpaired(batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    i2 = torch.nonzero(batch["has_2d"].reshape(-1)).reshape(-1)  # items hold (1,) flags
    i3 = torch.nonzero(batch["has_3d"].reshape(-1)).reshape(-1)
    return {
        "pose_2d": batch["pose_2d"][i2], "confidence": batch["confidence"][i2],
        "intrinsics_2d": batch["intrinsics"][i2], "frame_valid_2d": batch["frame_valid"][i2],
        "pose_3d": batch["pose_3d"][i3], "intrinsics_3d": batch["intrinsics"][i3],
        "root_3d": batch["root_3d"][i3], "frame_valid_3d": batch["frame_valid"][i3],
        "index_2d": i2, "index_3d": i3,
    }


class WindowBatch(collections.abc.Sequence):
    """The windows ``indices`` of ``dataset``, fetched lazily by one :meth:`PoseWindowDataset.get_batch`;
    indexing gives item dicts (views)."""

    def __init__(self, dataset: PoseWindowDataset, indices):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        self._full = None

    def __len__(self) -> int:
        return len(self.indices)

    def stacked(self) -> Dict[str, torch.Tensor]:
        if self._full is None:
            self._full = {k: torch.from_numpy(v) for k, v in self.dataset.get_batch(self.indices).items()}
        return self._full

    def __getitem__(self, i):
        full = self.stacked()
        if isinstance(i, slice):
            return [{k: v[j] for k, v in full.items()} for j in range(*i.indices(len(self)))]
        return {k: v[i] for k, v in full.items()}


def collate_windows(batch: Sequence[Dict]) -> Dict:
    """Stack window items key by key (leading batch dimension B): tensors (floating point ones float32), strings
    a list of B strings, None values left out; ``action`` defaults to ``"all"``. A :class:`WindowBatch`: one gather."""
    if isinstance(batch, WindowBatch):
        out = dict(batch.stacked())
    elif not len(batch):
        raise ValueError("empty batch")
    else:
        out = {}
        for k, v in batch[0].items():
            if isinstance(v, str):
                out[k] = [str(b[k]) for b in batch]
            elif v is not None:
                t = torch.as_tensor(np.stack([np.asarray(b[k]) for b in batch]))
                out[k] = t.float() if t.is_floating_point() else t
    out.setdefault("action", ["all"] * len(batch))
    return out


def collate_unpaired(batch: Sequence[Dict[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
    """Split a batch into a 2D and a 3D sub-batch (items with both modalities go to both): ``pose_2d``
    (B2, F, J, 2), ``confidence`` (B2, F, J), ``intrinsics_2d`` (B2, 9), ``frame_valid_2d`` (B2, F), ``pose_3d``
    (B3, F, J, 3), ``intrinsics_3d`` (B3, 9), ``root_3d`` (B3, F, 3), ``frame_valid_3d`` (B3, F), ``index_2d`` /
    ``index_3d`` (positions in the input batch). An empty sub-batch has a leading dimension 0."""
    return _split_unpaired(collate_windows(batch))


def materialize_camera_sequences(sequences: Sequence[dict], cameras: Sequence[VirtualCamera]) -> List[dict]:
    """Whole world-frame sequences (``pose_3d`` (T, J, 3) metres, Z up) seen by fixed virtual cameras: per
    sequence and camera a dict with ``pose_2d`` (T, J, 2) normalised, ``pose_3d`` (T, J, 3) camera-frame
    root-relative metres (root = 0), ``root_3d`` (T, 3), ``intrinsics`` (9,) normalised, ``sequence_index``,
    ``camera_index``, ``sequence``. The sequence's mean root is placed in front of the camera."""
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
            out.append({"pose_2d": p2.astype(np.float32), "pose_3d": rel.astype(np.float32),
                        "root_3d": cam3d[:, 0].astype(np.float32),
                        "intrinsics": normalize_intrinsics(cam.intrinsics, cam.width, cam.height),
                        "sequence_index": si, "camera_index": ci, "sequence": str(s.get("sequence", si))})
    return out
