"""From video to 3D: transformers' RT-DETR (people) -> ViTPose (2D) -> tracks -> MPM (3D), or
offline MediaPipe BlazePose (one person, 2D) -> MPM (3D).

* :mod:`.vitpose`: reads ``VitPoseImageProcessor.post_process_pose_estimation`` output (the
  ``pose-lifting`` pipeline accepts it directly).
* :mod:`.tracking`: groups people into tracks across frames (:class:`IoUTracker`).
* :mod:`.streaming`: :class:`PoseLiftingStream`, live lifting one frame at a time with a latency.
* :mod:`.pipeline`: :func:`lift_video`, :class:`PersonDetector`, :class:`ViTPoseEstimator` and
  ``mpm lift-video`` (needs the ``video`` extra, PyAV).
* :mod:`.blazepose`: :class:`BlazePoseEstimator`, offline 2D with MediaPipe BlazePose (the
  ``mediapipe`` extra).

Importing this package imports neither PyAV, transformers' models nor MediaPipe; they are
imported when a video is opened or a model is built.
"""

from .blazepose import BlazePoseEstimator
from .pipeline import PersonDetector, ViTPoseEstimator, lift_video
from .streaming import PoseLiftingStream
from .tracking import IoUTracker, group_tracks, track_boxes
from .vitpose import is_pose_estimation_output, pose_estimation_to_tracks

__all__ = [
    "PoseLiftingStream",
    "IoUTracker",
    "group_tracks",
    "track_boxes",
    "is_pose_estimation_output",
    "pose_estimation_to_tracks",
    "lift_video",
    "PersonDetector",
    "ViTPoseEstimator",
    "BlazePoseEstimator",
]
