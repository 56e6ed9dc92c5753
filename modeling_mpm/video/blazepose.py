"""Offline 2D pose with MediaPipe BlazePose (33 landmarks, one person, no Hub download).

``BlazePoseEstimator`` wraps ``mediapipe.solutions.pose.Pose`` (``model_complexity=1``, shipped inside the
``mediapipe`` wheel: ``pip install "modeling-mpm[mediapipe]"``). In video mode the person found first is tracked
from frame to frame: pass the frames of one video in order and :meth:`~BlazePoseEstimator.reset` before the next.
Landmark order: :data:`BLAZEPOSE_LANDMARKS` (``keypoint_format="blazepose"`` converts it to H36M-17).
:func:`blend_world_landmarks` averages BlazePose's own 3D into a lifted pose (``lift_video`` does by default).
"""

from __future__ import annotations

import numbers
import warnings
from typing import Dict, List, Sequence

import numpy as np

from ..keypoints import BLAZEPOSE_LANDMARKS, SWAP_ORDERS, keypoints_to_h36m
from ..metrics import procrustes_align

__all__ = ["BlazePoseEstimator", "BLAZEPOSE_LANDMARKS", "NUM_BLAZEPOSE_LANDMARKS", "WORLD_LANDMARKS_WEIGHT",
           "blend_world_landmarks", "check_blend_weight"]

#: number of BlazePose landmarks (len(BLAZEPOSE_LANDMARKS))
NUM_BLAZEPOSE_LANDMARKS = len(BLAZEPOSE_LANDMARKS)

#: share of BlazePose's own 3D in ``lift_video``'s 3D (:func:`blend_world_landmarks`): the best of 0.1 / 0.2 / 0.3
#: on the real capture's ``Demo_SinglePerson`` (69.4 -> 67.3 mm P-MPJPE), then checked on ``Demo_MultiPerson``
#: (89.5 -> 85.6, with the second person painted out as whole rectangles; as silhouettes now: 84.1 -> 79.7);
#: docs/real_footage.md
WORLD_LANDMARKS_WEIGHT = 0.2


def check_blend_weight(weight) -> float:
    """``weight`` of :func:`blend_world_landmarks` as a float in [0, 1], else ``TypeError`` / ``ValueError``."""
    if isinstance(weight, bool) or not isinstance(weight, numbers.Real):
        raise TypeError(f"weight must be a number in [0, 1], got {weight!r}")
    if not 0.0 <= float(weight) <= 1.0:
        raise ValueError(f"weight must be in [0, 1], got {weight!r}")
    return float(weight)


def blend_world_landmarks(pose_3d: np.ndarray, world: np.ndarray, weight: float = WORLD_LANDMARKS_WEIGHT,
                          root: int = 0) -> np.ndarray:
    """A lifted pose averaged with BlazePose's own 3D of the same frames: two estimates whose errors differ.

    Args:
        pose_3d: ``(frames, 17, 3)`` H36M-17, metres, camera frame, root-relative (the lifter's output).
        world: ``(frames, 33, 3)`` BlazePose world landmarks (metres, hip-centred; NaN where not detected).
        weight: share of BlazePose's 3D, 0 (``pose_3d`` unchanged) to 1.
        root: joint set to 0 in the output.

    BlazePose's landmarks are mapped to H36M-17 (``keypoint_format="blazepose"``'s rules) and similarity-aligned
    per frame onto ``pose_3d`` (rotation, scale, translation: its axes and size are its own), then
    ``(1 - weight) * pose_3d + weight * aligned``. BlazePose's 3D carries its 2D's left/right label swaps, which
    the lifted pose no longer has (``fix_left_right_swaps``): per frame its arms' and legs' labels are taken
    as given or swapped, whichever of the four aligns closest to ``pose_3d``. Frames without all 17 joints in both
    keep ``pose_3d``. Returns float32 ``(frames, 17, 3)``.
    """
    weight = check_blend_weight(weight)
    pose = np.asarray(pose_3d, dtype=np.float64)
    world = np.asarray(world, dtype=np.float64)
    if pose.ndim != 3 or pose.shape[1:] != (17, 3):
        raise ValueError(f"pose_3d must be (frames, 17, 3), got shape {pose.shape}")
    if world.shape != (len(pose), NUM_BLAZEPOSE_LANDMARKS, 3):
        raise ValueError(f"world must be (frames, {NUM_BLAZEPOSE_LANDMARKS}, 3) for the {len(pose)} frames of "
                         f"pose_3d, got shape {world.shape}")
    world17, ok17, _ = keypoints_to_h36m(world, np.isfinite(world).all(-1), "blazepose")
    ok = ok17.all(-1) & np.isfinite(pose).all(axis=(-1, -2))
    out = pose.copy()
    if weight > 0 and ok.any():
        lifted, seen = pose[ok], world17[ok]
        arms, legs = SWAP_ORDERS                                           # as given, arms, legs, both swapped
        labellings = np.stack([procrustes_align(seen[:, order], lifted)
                               for order in (np.arange(17), arms, legs, arms[legs])])   # (4, frames, 17, 3)
        best = np.linalg.norm(labellings - lifted, axis=-1).mean(-1).argmin(0)
        aligned = labellings[best, np.arange(len(best))]
        out[ok] = (1.0 - weight) * lifted + weight * aligned
        out[ok] -= out[ok][:, root:root + 1]
    return out.astype(np.float32)

_INSTALL = 'BlazePose needs MediaPipe: pip install "modeling-mpm[mediapipe]"'


def _mediapipe_pose():
    """``mediapipe.solutions.pose`` or an ImportError saying how to install it."""
    try:
        import mediapipe as mp

        return mp.solutions.pose
    except (ImportError, AttributeError):
        raise ImportError(_INSTALL) from None


def _landmarks(lms, scale_x: float, scale_y: float) -> np.ndarray:
    """MediaPipe landmark list -> ``(33, 3)`` float32 ``x * scale_x, y * scale_y, visibility``."""
    a = np.array([(p.x, p.y, p.visibility) for p in lms.landmark], dtype=np.float32)
    if a.shape != (NUM_BLAZEPOSE_LANDMARKS, 3):
        raise ValueError(f"MediaPipe returned {a.shape[0]} landmarks, expected {NUM_BLAZEPOSE_LANDMARKS}")
    a[:, 0] *= scale_x
    a[:, 1] *= scale_y
    return a


def _check_model_file(pose_module, model_complexity: int) -> None:
    """ValueError when the lite / heavy landmark model is not on this machine (no download here)."""
    import os

    name = {0: "pose_landmark_lite.tflite", 2: "pose_landmark_heavy.tflite"}[model_complexity]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(pose_module.__file__))))
    path = os.path.join(root, "modules", "pose_landmark", name)
    if not os.path.isfile(path):
        raise ValueError(f"model_complexity={model_complexity} needs {name}, which the mediapipe wheel does not ship "
                         f"(MediaPipe would download it); use model_complexity=1 (shipped) or place the file at {path}")


class BlazePoseEstimator:
    """33 BlazePose landmarks per frame of one video (MediaPipe, CPU, offline).

    Args:
        model_complexity: 0 (lite), 1 (full, default) or 2 (heavy); only the full model ships in the wheel, the
            others raise a ValueError unless their ``.tflite`` is already in place (no download).
        min_detection_confidence: minimum person-detector score to start tracking (0..1).
        min_tracking_confidence: below this landmark-tracking score the detector runs again (0..1).
        static_image_mode: True = detect in every frame independently (no tracking, slower).
        enable_segmentation: also return the person's silhouette per frame (``"segmentation"``, below).

    ``est(images)`` with ``(height, width, 3)`` uint8 RGB frames of one video, in order, returns per frame
    ``{"keypoints": (33, 3) float32 x, y pixels + visibility in [0, 1], "world": (33, 3) float32 world landmarks,
    metres, origin between the hips, "detected": bool}`` (arrays all NaN when nobody was found); with
    ``enable_segmentation=True`` also ``"segmentation": (height, width) float32`` in [0, 1], the probability that a
    pixel belongs to the tracked person (all 0 when nobody was found). Calls continue the
    same video; :meth:`reset` starts a new one. A context manager; :meth:`close` frees the MediaPipe graph.
    """

    def __init__(self, model_complexity: int = 1, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5, static_image_mode: bool = False,
                 enable_segmentation: bool = False):
        if isinstance(model_complexity, bool) or model_complexity not in (0, 1, 2):
            raise ValueError(f"model_complexity must be 0 (lite), 1 (full) or 2 (heavy), got {model_complexity!r}")
        for name, v in (("min_detection_confidence", min_detection_confidence),
                        ("min_tracking_confidence", min_tracking_confidence)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= float(v) <= 1.0:
                raise ValueError(f"{name} must be a number in [0, 1], got {v!r}")
        for name, v in (("static_image_mode", static_image_mode), ("enable_segmentation", enable_segmentation)):
            if not isinstance(v, bool):
                raise TypeError(f"{name} must be True or False, got {v!r}")
        pose = _mediapipe_pose()
        if model_complexity != 1:
            _check_model_file(pose, int(model_complexity))
        self.model_complexity = int(model_complexity)
        self.min_detection_confidence = float(min_detection_confidence)
        self.min_tracking_confidence = float(min_tracking_confidence)
        self.static_image_mode = static_image_mode
        self.enable_segmentation = enable_segmentation
        self._pose = pose.Pose(static_image_mode=static_image_mode, model_complexity=self.model_complexity,
                               smooth_landmarks=not static_image_mode, enable_segmentation=enable_segmentation,
                               min_detection_confidence=self.min_detection_confidence,
                               min_tracking_confidence=self.min_tracking_confidence)

    def __repr__(self) -> str:
        return (f"BlazePoseEstimator(model_complexity={self.model_complexity}, "
                f"min_detection_confidence={self.min_detection_confidence}, "
                f"min_tracking_confidence={self.min_tracking_confidence}, "
                f"static_image_mode={self.static_image_mode}, enable_segmentation={self.enable_segmentation})")

    @staticmethod
    def _check_frame(img, i: int) -> np.ndarray:
        if not isinstance(img, np.ndarray):
            raise TypeError(f"frame {i} must be a NumPy array (height, width, 3) uint8 RGB, got {type(img).__name__}")
        if img.ndim != 3 or img.shape[2] != 3 or img.shape[0] == 0 or img.shape[1] == 0:
            raise ValueError(f"frame {i} must have shape (height, width, 3) RGB, got {img.shape}")
        if img.dtype != np.uint8:
            raise TypeError(f"frame {i} must be uint8 RGB (0..255), got dtype {img.dtype}")
        return np.ascontiguousarray(img)

    def __call__(self, images: Sequence[np.ndarray]) -> List[Dict[str, object]]:
        if self._pose is None:
            raise ValueError("this BlazePoseEstimator was closed; create a new one")
        if isinstance(images, np.ndarray) and images.ndim == 3:
            raise ValueError("pass a list of frames; for one frame of shape (height, width, 3) use [frame]")
        out = []
        for i, img in enumerate(images):
            img = self._check_frame(img, i)
            h, w = img.shape[:2]
            with warnings.catch_warnings():  # protobuf 4's GetPrototype deprecation, once per frame
                warnings.filterwarnings("ignore", message=r"SymbolDatabase\.GetPrototype", category=UserWarning)
                res = self._pose.process(img)
            if res.pose_landmarks is None:
                nan = np.full((NUM_BLAZEPOSE_LANDMARKS, 3), np.nan, dtype=np.float32)
                out.append({"keypoints": nan, "world": nan.copy(), "detected": False})
                if self.enable_segmentation:
                    out[-1]["segmentation"] = np.zeros((h, w), dtype=np.float32)
                continue
            kp = _landmarks(res.pose_landmarks, w, h)
            if res.pose_world_landmarks is not None:
                world = np.array([(p.x, p.y, p.z) for p in res.pose_world_landmarks.landmark], dtype=np.float32)
            else:
                world = np.full((NUM_BLAZEPOSE_LANDMARKS, 3), np.nan, dtype=np.float32)
            out.append({"keypoints": kp, "world": world, "detected": True})
            if self.enable_segmentation:
                seg = res.segmentation_mask
                out[-1]["segmentation"] = (np.zeros((h, w), dtype=np.float32) if seg is None
                                           else np.asarray(seg, dtype=np.float32).reshape(h, w))
        return out

    def reset(self) -> None:
        """Start a new video: forget the tracked person (the next frame runs the detector)."""
        if self._pose is None:
            raise ValueError("this BlazePoseEstimator was closed; create a new one")
        self._pose.reset()

    def close(self) -> None:
        """Free the MediaPipe graph (further calls raise a ValueError)."""
        if self._pose is not None:
            self._pose.close()
            self._pose = None

    def __enter__(self) -> "BlazePoseEstimator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
