"""Rendering of 2D keypoints next to 3D poses (matplotlib, headless): :func:`render_frame_png` (one frame to a PNG)
and :func:`render_animation` (a GIF, or an MP4 through ``ffmpeg`` on ``PATH``, else PyAV).

3D poses: camera frame (x right, y down, z forward, metres), drawn with ``-y`` up. 2D keypoints: pixels, origin at
the top left. The subject's left side is blue, the right side red.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from typing import Optional, Sequence, Tuple

import numpy as np

from .atomic import atomic_write_file
from .skeleton import get_skeleton

__all__ = ["render_frame_png", "render_animation", "ffmpeg_available", "pyav_available", "setup_camera_axes_3d",
           "plot_skeleton_3d", "bone_colors"]

_LEFT, _RIGHT, _MID = "#1f77b4", "#d62728", "#444444"


def pyav_available() -> bool:
    """True when PyAV (``import av``, the ``video`` extra) can encode MP4."""
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


class _PyAVWriter:
    """The movie-writer interface :func:`render_animation` uses (``saving`` + ``grab_frame``), encoding H.264 (else
    MPEG-4 Part 2) MP4 with PyAV, without an ``ffmpeg`` executable."""

    def __init__(self, fps: float):
        self.fps = fps

    @contextlib.contextmanager
    def saving(self, fig, path: str, dpi: float):
        import av

        fig.set_dpi(dpi)
        self._fig, self._stream = fig, None
        self._container = av.open(path, mode="w", format="mp4")
        try:
            yield self
            if self._stream is not None:
                for packet in self._stream.encode():
                    self._container.mux(packet)
        finally:
            self._container.close()

    def grab_frame(self):
        import av
        from fractions import Fraction

        self._fig.canvas.draw()
        rgb = np.asarray(self._fig.canvas.buffer_rgba())[..., :3]
        h, w = rgb.shape[:2]
        rgb = np.ascontiguousarray(rgb[: h - h % 2, : w - w % 2])  # yuv420p needs even sizes
        if self._stream is None:
            rate = Fraction(self.fps).limit_denominator(1000)
            for codec in ("libx264", "h264", "mpeg4"):
                try:
                    self._stream = self._container.add_stream(codec, rate=rate)
                    break
                except Exception:  # this PyAV build lacks the encoder: try the next one
                    continue
            else:  # pragma: no cover - PyAV builds ship these encoders
                raise ValueError("PyAV has no H.264 or MPEG-4 encoder; install ffmpeg or write a .gif")
            self._stream.width, self._stream.height = rgb.shape[1], rgb.shape[0]
            self._stream.pix_fmt = "yuv420p"
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)


def ffmpeg_available() -> bool:
    """True when an ``ffmpeg`` executable is on ``PATH`` (needed for MP4 output)."""
    return shutil.which("ffmpeg") is not None


def _mpl():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "ps", "cairo"):
        try:
            matplotlib.use("Agg", force=True)
        except Exception:  # pragma: no cover
            pass
    import matplotlib.pyplot as plt

    return plt


def _check_pose(a, name, channels, frames_axis: bool):
    if a is None:
        return None
    arr = np.asarray(a, dtype=np.float64)
    want = 3 if frames_axis else 2
    if arr.ndim != want or arr.shape[-1] != channels or (frames_axis and arr.shape[0] == 0):
        shape = "(frames, joints, %d)" % channels if frames_axis else "(joints, %d)" % channels
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    return arr


def bone_colors(skel):
    """One colour per bone of ``skel.bones``, by its child joint's side: left blue, right red, centre grey."""
    left, right = set(skel.joints_left), set(skel.joints_right)
    return [_LEFT if c in left else _RIGHT if c in right else _MID for _, c in skel.bones]


def _limits_3d(pose: np.ndarray) -> Tuple[np.ndarray, float]:
    pts = pose[np.isfinite(pose).all(-1)]
    if pts.size == 0:
        return np.zeros(3), 1.0
    centre = (pts.max(0) + pts.min(0)) / 2
    radius = max(float((pts.max(0) - pts.min(0)).max()) / 2, 0.5)
    return centre, radius


def setup_camera_axes_3d(ax, centre, radius: float, title: Optional[str] = None, elev: float = 15.0,
                         labels=("x (m, right)", "z (m, forward)", "-y (m, up)")):
    """A matplotlib 3D axis for camera-frame poses drawn as ``(x, z, -y)`` (up is up): a cube of half-size
    ``radius`` metres around ``centre`` (3,)."""
    ax.set_xlim(centre[0] - radius, centre[0] + radius)
    ax.set_ylim(centre[2] - radius, centre[2] + radius)
    ax.set_zlim(-centre[1] - radius, -centre[1] + radius)
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_zlabel(labels[2])
    ax.view_init(elev=elev, azim=-70.0)
    if title:
        ax.set_title(title)


def plot_skeleton_3d(ax, pose_3d: np.ndarray, skeleton="h36m17") -> None:
    """Draw one camera-frame pose ``(joints, 3)`` metres on a 3D axis as ``(x, z, -y)``, bones coloured by side."""
    skel = get_skeleton(skeleton)
    pose_3d = np.asarray(pose_3d)
    for (p, c), col in zip(skel.bones, bone_colors(skel)):
        ax.plot(pose_3d[[p, c], 0], pose_3d[[p, c], 2], -pose_3d[[p, c], 1], color=col, lw=2)


def _setup(skel, pose_3d, keypoints_2d, image_size, title, figsize):
    plt = _mpl()
    n = 2 if keypoints_2d is not None else 1
    fig = plt.figure(figsize=figsize or (5 * n, 5))
    axes = {}
    if keypoints_2d is not None:
        ax2 = fig.add_subplot(1, n, 1)
        if image_size is not None:
            w, h = image_size
            ax2.set_xlim(0, w)
            ax2.set_ylim(h, 0)
        else:
            pts = keypoints_2d[np.isfinite(keypoints_2d).all(-1)]
            if pts.size:
                lo, hi = pts.min(0), pts.max(0)
                pad = 0.1 * max(float((hi - lo).max()), 1.0)
                ax2.set_xlim(lo[0] - pad, hi[0] + pad)
                ax2.set_ylim(hi[1] + pad, lo[1] - pad)
            else:
                ax2.invert_yaxis()
        ax2.set_aspect("equal")
        ax2.set_title("2D input (pixels)")
        axes["2d"] = ax2
    ax3 = fig.add_subplot(1, n, n, projection="3d")
    centre, radius = _limits_3d(pose_3d)
    setup_camera_axes_3d(ax3, centre, radius, "3D (camera frame)")
    axes["3d"] = ax3
    if title:
        fig.suptitle(title)
    cols = bone_colors(skel)
    lines = {"2d": [], "3d": []}
    for col in cols:
        if "2d" in axes:
            lines["2d"].append(axes["2d"].plot([], [], color=col, lw=2)[0])
        lines["3d"].append(axes["3d"].plot([], [], [], color=col, lw=2)[0])
    return fig, axes, lines


def _draw(skel, lines, p3, p2):
    for k, (a, b) in enumerate(skel.bones):
        seg = p3[[a, b]]
        ln = lines["3d"][k]
        if np.isfinite(seg).all():
            ln.set_data_3d(seg[:, 0], seg[:, 2], -seg[:, 1])
        else:
            ln.set_data_3d([], [], [])
        if p2 is not None:
            s2 = p2[[a, b]]
            if np.isfinite(s2).all():
                lines["2d"][k].set_data(s2[:, 0], s2[:, 1])
            else:
                lines["2d"][k].set_data([], [])


def _prepare(pose_3d, keypoints_2d, skeleton, image_size, frames_axis):
    skel = get_skeleton(skeleton)
    p3 = _check_pose(pose_3d, "pose_3d", 3, frames_axis)
    p2 = _check_pose(keypoints_2d, "keypoints_2d", 2, frames_axis)
    J = p3.shape[-2]
    if J != skel.num_joints:
        raise ValueError(f"pose_3d has {J} joints but skeleton {skel.name!r} has {skel.num_joints}")
    if p2 is not None and p2.shape[:-1] != p3.shape[:-1]:
        raise ValueError(f"keypoints_2d {p2.shape} must match pose_3d {p3.shape} in frames and joints "
                         "(pass the H36M-17 2D returned with return_keypoints_2d=True)")
    if image_size is not None:
        from .keypoints import validate_image_size

        image_size = validate_image_size(image_size)
    return skel, p3, p2, image_size


def render_frame_png(pose_3d, path: str, keypoints_2d=None, skeleton="h36m17",
                     image_size: Optional[Sequence[float]] = None, title: Optional[str] = None, dpi: int = 100) -> str:
    """Save one frame (2D | 3D side by side) as the PNG ``path``; returns ``path``.

    ``pose_3d``: ``(joints, 3)`` metres, camera frame; ``keypoints_2d``: optional ``(joints, 2)`` pixels;
    ``skeleton``: name or :class:`~modeling_mpm.skeleton.Skeleton`; ``image_size``: optional ``(width, height)``.
    """
    skel, p3, p2, image_size = _prepare(pose_3d, keypoints_2d, skeleton, image_size, frames_axis=False)
    plt = _mpl()
    fig, _, lines = _setup(skel, p3[None], None if p2 is None else p2[None], image_size, title, None)
    _draw(skel, lines, p3, p2)
    try:
        atomic_write_file(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"), suffix=".png")
    finally:
        plt.close(fig)
    return path


def render_animation(pose_3d, path: str, keypoints_2d=None, skeleton="h36m17",
                     image_size: Optional[Sequence[float]] = None, fps: float = 25.0, frame_step: int = 1,
                     max_frames: Optional[int] = None, dpi: int = 72, title: Optional[str] = None) -> str:
    """Render a 2D + 3D side-by-side animation to ``path`` (``.gif``, or ``.mp4``: ffmpeg, else PyAV); returns it.

    ``pose_3d``: ``(frames, joints, 3)`` metres, camera frame; ``keypoints_2d``: optional ``(frames, joints, 2)``
    pixels (NaN = missing); ``image_size``: optional ``(width, height)``; ``fps`` of the output; every
    ``frame_step``-th frame is rendered, at most ``max_frames``.
    """
    skel, p3, p2, image_size = _prepare(pose_3d, keypoints_2d, skeleton, image_size, frames_axis=True)
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".gif", ".mp4"):
        raise ValueError(f"render_animation writes .gif or .mp4, got {path!r}")
    if ext == ".mp4" and not ffmpeg_available() and not pyav_available():
        raise ValueError("MP4 output needs ffmpeg on PATH or PyAV (pip install av); install one or write a .gif "
                         "instead")
    if isinstance(frame_step, bool) or not isinstance(frame_step, (int, np.integer)) or frame_step < 1:
        raise ValueError(f"frame_step must be a positive int, got {frame_step!r}")
    if not (isinstance(fps, (int, float)) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    if max_frames is not None and (isinstance(max_frames, bool) or not isinstance(max_frames, (int, np.integer))
                                   or max_frames < 1):
        raise ValueError(f"max_frames must be a positive int (or None for all frames), got {max_frames!r}")
    frames = np.arange(0, p3.shape[0], int(frame_step))
    if max_frames is not None:
        frames = frames[: int(max_frames)]
    plt = _mpl()
    from matplotlib import animation

    fig, _, lines = _setup(skel, p3[frames], None if p2 is None else p2[frames], image_size, title, None)
    if ext == ".gif":
        writer = animation.PillowWriter(fps=fps)
    else:
        writer = animation.FFMpegWriter(fps=fps) if ffmpeg_available() else _PyAVWriter(fps)
    try:
        def write(tmp: str) -> None:
            with writer.saving(fig, tmp, dpi=dpi):
                for t in frames:
                    _draw(skel, lines, p3[t], None if p2 is None else p2[t])
                    writer.grab_frame()

        atomic_write_file(path, write, suffix=ext)
    finally:
        plt.close(fig)
    return path


