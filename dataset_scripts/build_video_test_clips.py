"""Rebuild the real-video test clips ``tests/data/pose2sim_cam01.mp4`` and ``pose2sim_cam03.mp4``
from the pose2sim wheel (BSD-3-Clause, see DATA_NOTES.md).

    pip download --no-deps pose2sim==0.10.49 -d /tmp/p2s
    python dataset_scripts/build_video_test_clips.py /tmp/p2s/pose2sim-0.10.49-py3-none-any.whl tests/data

Each clip: frames 40, 44, ..., 84 (12 frames, every 4th of the 60 fps capture, so 15 fps) of
``Pose2Sim/Demo_SinglePerson/videos/camXX.mp4``, downscaled to half size (area filter), H.264
(libx264, CRF 26, yuv420p). Written atomically.
"""

from __future__ import annotations

import argparse
import io
import os
import zipfile
from typing import Sequence

import numpy as np

__all__ = ["build_clip", "main", "CAMERAS", "FRAMES"]

CAMERAS = ("cam01", "cam03")
#: frame indices of the 60 fps capture kept (the throwing motion, every 4th frame -> 15 fps)
FRAMES = tuple(range(40, 88, 4))
FPS = 15


def _half(frame: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8 -> (h // 2, w // 2, 3) uint8, mean of each 2 x 2 block (even size kept)."""
    h, w = (frame.shape[0] // 4) * 4, (frame.shape[1] // 4) * 4  # half size stays even (yuv420p)
    f = frame[:h, :w].astype(np.float32)
    f = (f[0::2, 0::2] + f[1::2, 0::2] + f[0::2, 1::2] + f[1::2, 1::2]) / 4
    return np.clip(np.rint(f), 0, 255).astype(np.uint8)


def build_clip(video_bytes: bytes, out_path: str, frames: Sequence[int] = FRAMES, fps: int = FPS) -> str:
    """Decode ``video_bytes`` (an .mp4), keep ``frames`` at half size, write ``out_path`` (H.264)."""
    import av

    keep = set(frames)
    picked = []
    with av.open(io.BytesIO(video_bytes)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            if i in keep:
                picked.append(_half(frame.to_ndarray(format="rgb24")))
            if i >= max(frames):
                break
    if len(picked) != len(keep):
        raise ValueError(f"the video has {i + 1} frames; frames {sorted(keep)} were asked for")
    tmp = f"{out_path}.{os.getpid()}.tmp.mp4"
    try:
        with av.open(tmp, "w") as out:
            s = out.add_stream("libx264", rate=fps, options={"crf": "26", "preset": "veryslow"})
            s.height, s.width, s.pix_fmt = picked[0].shape[0], picked[0].shape[1], "yuv420p"
            for f in picked:
                for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                    out.mux(p)
            for p in s.encode():
                out.mux(p)
        os.replace(tmp, out_path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return out_path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("wheel", help="pose2sim-0.10.49-py3-none-any.whl")
    ap.add_argument("out_dir", help="folder for pose2sim_camXX.mp4 (tests/data)")
    args = ap.parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)
    with zipfile.ZipFile(args.wheel) as z:
        for cam in CAMERAS:
            data = z.read(f"Pose2Sim/Demo_SinglePerson/videos/{cam}.mp4")
            path = build_clip(data, os.path.join(args.out_dir, f"pose2sim_{cam}.mp4"))
            print(path, os.path.getsize(path), "bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
