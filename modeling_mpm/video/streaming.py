"""Live 2D -> 3D lifting, one frame at a time, with a chosen latency.

:class:`PoseLiftingStream` embeds each new frame once (:meth:`MPMModel.embed_frames`, no position embedding)
and reuses the cached embeddings of the last ``num_frames`` frames; per frame only the temporal transformer and
one head run. With latency ``L`` the 3D of frame ``t - L`` (window slot ``num_frames - 1 - L``, edge-padded as
:func:`~modeling_mpm.inference.lift_sequence` pads) is returned when frame ``t`` arrives: ``L = 0`` is causal;
half the window uses the centre-frame head (exactly ``mode="seq2frame"`` for odd windows); other latencies read
the all-frames head at their slot. Accuracy against latency: ``bench/bench_streaming.py``. With BlazePose, pass each
frame's world landmarks too (``push(keypoints, world)``) and its own 3D is blended in as ``lift_video`` does.
"""

from __future__ import annotations

import collections
from typing import Dict, List, Optional

import numpy as np
import torch

from ..inference import _check_bool
from ..keypoints import keypoints_to_h36m, normalize_screen_coordinates, validate_image_size, validate_keypoints
from ..modeling_mpm import zero_root
from ..pipeline_mpm import _resolve_head, _skeleton_of, _to_model_layout
from ..reprojection import match_keypoints_2d, require_pixels, validate_focal_length
from .blazepose import NUM_BLAZEPOSE_LANDMARKS, WORLD_LANDMARKS_WEIGHT, blend_world_landmarks, check_blend_weight

__all__ = ["PoseLiftingStream"]


class PoseLiftingStream:
    """Streaming lifter for one person: ``push`` one frame's 2D keypoints, get 3D back.

    Args:
        model: an :class:`~modeling_mpm.MPMForPoseLifting` (or a Hub id / folder of one).
        image_size: ``(width, height)`` pixels of the frames (``None`` with ``coordinates="normalized"``).
        keypoint_format: ``"coco"`` (default, ViTPose/RT-DETR output), ``"h36m"``, ``"halpe26"`` or
            ``"blazepose"``.
        latency: frames between input and output, ``0`` (causal) to half the window.
        confidence_threshold: joints with a lower confidence are missing (masked for the model).
        coordinates: ``"pixels"`` or ``"normalized"`` (model coordinates).
        match_2d: move each frame's 3D onto its 2D, keeping the lifter's depth (as the pipelines' ``match_2d``;
            pixels only); focal_length: its pinhole focal length in pixels (default: the image's long side).
        blazepose_3d_weight: share of BlazePose's own 3D in frames pushed with their world landmarks
            (:func:`~modeling_mpm.video.blazepose.blend_world_landmarks`, after ``match_2d``; 0 = never blend;
            the default is ``lift_video``'s). H36M-17 lifters only.

    ``push(keypoints, world=None)`` takes ``(joints, 2)`` / ``(joints, 3)`` (x, y[, confidence]) in pixels, one
    ViTPose person dict (``keypoints`` ``(17, 2)``, ``scores`` ``(17,)``), or ``None`` for a frame
    without the person (all joints missing); ``world``: that frame's BlazePose world landmarks ``(33, 3)`` metres
    (NaN or None: not blended). It returns ``None`` during the first ``latency`` frames,
    then a dict for frame ``t - latency``: ``frame`` (int), ``pose_3d`` float32 ``(J, 3)`` metres,
    root-relative, camera frame (x right, y down, z forward), ``valid`` bool ``(J,)`` (False = that
    2D joint was missing). ``flush()`` returns the last ``latency`` frames at the end of the stream.
    """

    def __init__(self, model, image_size=None, keypoint_format: str = "coco", latency: int = 0,
                 confidence_threshold: float = 0.0, coordinates: str = "pixels", match_2d: bool = False,
                 focal_length: Optional[float] = None, blazepose_3d_weight: float = WORLD_LANDMARKS_WEIGHT):
        if isinstance(model, str):
            from ..modeling_mpm import MPMForPoseLifting

            model = MPMForPoseLifting.from_pretrained(model)
        self.model = _resolve_head(model, "MPMForPoseLifting", "streaming lifting").eval()
        self.skeleton = _skeleton_of(self.model)
        cfg = self.model.config
        self.num_frames = int(cfg.num_frames)
        self.max_latency = self.num_frames - 1 - cfg.center_frame
        if isinstance(latency, bool) or not isinstance(latency, (int, np.integer)) \
                or not 0 <= latency <= self.max_latency:
            raise ValueError(f"latency must be an int from 0 (causal) to {self.max_latency} (half the model's "
                             f"{self.num_frames}-frame window), got {latency!r}")
        self.latency = int(latency)
        self.slot = self.num_frames - 1 - self.latency
        self.use_center_head = self.slot == cfg.center_frame
        if coordinates not in ("pixels", "normalized"):
            raise ValueError(f"coordinates must be 'pixels' or 'normalized', got {coordinates!r}")
        self.coordinates = coordinates
        self.image_size = validate_image_size(image_size) if coordinates == "pixels" else None
        self.keypoint_format = keypoint_format
        self.match_2d = _check_bool(match_2d, "match_2d")
        if self.match_2d:
            require_pixels(self.image_size)
        self.focal_length = None if focal_length is None else validate_focal_length(focal_length)
        self.blazepose_3d_weight = check_blend_weight(blazepose_3d_weight)
        try:
            self.confidence_threshold = float(confidence_threshold)
        except (TypeError, ValueError):
            raise TypeError(f"confidence_threshold must be a number, got {confidence_threshold!r}") from None
        if getattr(self.model, "mpm", None) is None:
            raise TypeError("PoseLiftingStream needs an MPMForPoseLifting (with its .mpm encoder)")
        self.device = next(self.model.parameters()).device
        self.reset()

    def reset(self) -> None:
        """Forget all frames (start a new stream)."""
        self._embeddings: collections.deque = collections.deque(maxlen=self.num_frames)
        self._missing: collections.deque = collections.deque(maxlen=self.num_frames)
        self._pixels: collections.deque = collections.deque(maxlen=self.num_frames)  # for match_2d
        self._world: collections.deque = collections.deque(maxlen=self.num_frames)   # BlazePose's 3D, or None
        self._frames_seen = 0      # frames pushed so far
        self._frames_out = 0       # frames returned so far

    @property
    def frames_seen(self) -> int:
        return self._frames_seen

    def _frame_input(self, keypoints):
        """One frame -> (pose_2d (1, 1, J, 2) float32 model coordinates, missing (J,) bool, (J, 2) input units
        with NaN where missing)."""
        if keypoints is None:
            xy, valid, fmt = np.zeros((1, 17, 2)), np.zeros((1, 17), dtype=bool), "h36m"
        else:
            fmt = self.keypoint_format
            if isinstance(keypoints, dict):
                from .vitpose import person_keypoints

                keypoints, fmt = person_keypoints(keypoints)
            if hasattr(keypoints, "detach"):
                keypoints = keypoints.detach().cpu().numpy()
            arr = np.asarray(keypoints)
            if arr.ndim != 2:
                raise ValueError(f"push() takes one frame's keypoints, shape (joints, 2 or 3); got shape {arr.shape}")
            xy, conf, fmt = validate_keypoints(arr[None], fmt)
            valid = np.isfinite(xy).all(-1)
            if conf is not None:
                valid &= np.isfinite(conf) & (conf >= self.confidence_threshold)
        xy17, valid17, _ = keypoints_to_h36m(xy, valid, fmt)
        xy17 = np.where(valid17[..., None], xy17, 0.0)
        uv = xy17
        if self.coordinates == "pixels":
            uv = np.where(valid17[..., None], normalize_screen_coordinates(xy17, *self.image_size), 0.0)
        uv = _to_model_layout(uv, self.skeleton)
        missing = ~_to_model_layout(valid17[..., None], self.skeleton)[..., 0]
        given = _to_model_layout(np.where(valid17[..., None], xy17, np.nan), self.skeleton)[0]
        return torch.as_tensor(np.asarray(uv, dtype=np.float32))[None], missing[0], given

    @torch.inference_mode()
    def _embed(self, pose_2d: torch.Tensor, missing: np.ndarray) -> torch.Tensor:
        m = torch.as_tensor(missing)[None, None].to(self.device) if missing.any() else None
        x = self.model.mpm.embed_frames(pose_2d.to(self.device), m, add_position_embedding=False)
        return x[0, 0]  # (hidden,)

    @torch.inference_mode()
    def _lift_target(self, target: int, last: int) -> Dict[str, np.ndarray]:
        """3D of frame ``target`` from the cached embeddings (frames ``<= last`` are known)."""
        first = last - len(self._embeddings) + 1        # oldest cached frame
        idx = np.clip(target - self.slot + np.arange(self.num_frames), max(first, 0), last) - first
        emb = list(self._embeddings)
        mpm = self.model.mpm
        x = torch.stack([emb[i] for i in idx])[None] + mpm.position_embedding
        for layer in mpm.layers:
            x = layer(x)
        if self.use_center_head:
            out = self.model.center_head(self.model.reduce(x))[0, 0]
        else:
            out = self.model.frames_head(x[:, self.slot:self.slot + 1])[0, 0]
        pose = zero_root(out.float().cpu().numpy(), self.skeleton.root)
        missing = self._missing[target - first]
        if self.match_2d:
            pose = match_keypoints_2d(pose[None], self._pixels[target - first][None], self.image_size,
                                      self.focal_length, root=self.skeleton.root)[0]
        world = self._world[target - first]
        if world is not None and self.blazepose_3d_weight > 0:
            pose = blend_world_landmarks(pose[None], world[None], self.blazepose_3d_weight, self.skeleton.root)[0]
        return {"frame": int(target), "pose_3d": pose.astype(np.float32), "valid": ~missing}

    def _check_world(self, world) -> Optional[np.ndarray]:
        if world is None:
            return None
        if hasattr(world, "detach"):
            world = world.detach().cpu().numpy()
        try:
            arr = np.asarray(world, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"world must be BlazePose world landmarks, an array ({NUM_BLAZEPOSE_LANDMARKS}, 3) in "
                            f"metres, got {type(world).__name__}") from None
        if arr.shape != (NUM_BLAZEPOSE_LANDMARKS, 3):
            raise ValueError(f"world must be one frame's BlazePose world landmarks, shape ({NUM_BLAZEPOSE_LANDMARKS}, "
                             f"3) metres, got shape {arr.shape}")
        if self.skeleton.name != "h36m17":
            raise ValueError(f"blending BlazePose's 3D needs an H36M-17 lifter; this one is {self.skeleton.name!r}")
        return arr

    def push(self, keypoints, world=None) -> Optional[Dict[str, np.ndarray]]:
        """Add the next frame (and, with BlazePose, its world landmarks); return the result for frame
        ``frames_seen - 1 - latency`` (or None)."""
        world = self._check_world(world)
        pose_2d, missing, given = self._frame_input(keypoints)
        # frames that a pending output still needs must stay cached: keep the window's length
        self._embeddings.append(self._embed(pose_2d, missing))
        self._missing.append(missing)
        self._pixels.append(given)
        self._world.append(world)
        t = self._frames_seen
        self._frames_seen += 1
        target = t - self.latency
        if target < 0:
            return None
        self._frames_out += 1
        return self._lift_target(target, t)

    def flush(self) -> List[Dict[str, np.ndarray]]:
        """Results of the frames still pending (the last ``latency`` ones), edge-padded with the last
        frame; the stream can then be :meth:`reset`."""
        last = self._frames_seen - 1
        outs = [self._lift_target(s, last) for s in range(self._frames_out, self._frames_seen)]
        self._frames_out = self._frames_seen
        return outs

    def run(self, keypoints, world=None) -> np.ndarray:
        """Convenience: stream a whole ``(frames, joints, 2|3)`` sequence (from a reset state), with BlazePose's
        ``(frames, 33, 3)`` world landmarks if given; returns float32 ``(frames, J, 3)``."""
        if world is not None and len(world) != len(keypoints):
            raise ValueError(f"world has {len(world)} frames but keypoints {len(keypoints)}")
        self.reset()
        worlds = [None] * len(keypoints) if world is None else world
        outs = [o for k, w in zip(keypoints, worlds) for o in [self.push(k, w)] if o is not None] + self.flush()
        return np.stack([o["pose_3d"] for o in outs])
