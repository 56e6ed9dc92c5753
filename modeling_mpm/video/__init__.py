"""From video to 3D: transformers' RT-DETR (people) -> ViTPose (2D) -> tracks -> MPM (3D).

* :mod:`.vitpose`: reads ``VitPoseImageProcessor.post_process_pose_estimation`` output (the
  ``pose-lifting`` pipeline accepts it directly).
* :mod:`.tracking`: groups people into tracks across frames (:class:`IoUTracker`).
* :mod:`.streaming`: :class:`PoseLiftingStream`, live lifting one frame at a time with a latency.
* :mod:`.lift_video`: :func:`lift_video` and ``mpm lift-video`` (needs the ``video`` extra, PyAV).
* :mod:`.blazepose`: :class:`BlazePoseEstimator`, offline 2D with MediaPipe BlazePose (the
  ``mediapipe`` extra).
"""

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
    "BlazePoseEstimator",
]


def __getattr__(name):
    if name == "lift_video":  # imports PyAV lazily
        from .lift_video import lift_video

        return lift_video
    if name == "BlazePoseEstimator":  # imports MediaPipe only when instantiated
        from .blazepose import BlazePoseEstimator

        return BlazePoseEstimator
    raise AttributeError(name)
