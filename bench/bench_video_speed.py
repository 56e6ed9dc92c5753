"""Speed of offline video -> 3D: is the MPM lifter the bottleneck next to MediaPipe BlazePose?

In one run, on the same video, alternating over ``--rounds``:

* (a) decode + BlazePose alone: a new :class:`~modeling_mpm.video.BlazePoseEstimator`, every frame
  decoded (PyAV) and passed to it, ``--batch-size`` frames at a time (what ``lift_video`` does);
* (b) ``lift_video(video, lifter_folder, pose_model="mediapipe")`` end to end (loading BlazePose
  and the lifter from its folder, decode, 2D, lifting; no render, no output file).

Frames/s = frames / wall seconds of the whole call. The ratio (b) / (a) of the medians is the
share of BlazePose-only throughput that the full chain keeps (target >= 0.8). One warm-up call of
each comes first (MediaPipe's and transformers' first-use costs in a fresh process; reported as
``first_call_s``). The lifter is the default of the offline path, the general lifter that ships in
the package (``modeling_mpm.pretrained.GENERAL_LIFTER``: 27 frames, width 128, 2 layers), with
lift_video's defaults (left/right swap repair, flip test-time augmentation, constant bone lengths, match_2d,
BlazePose's 3D blended in, seq2frame for this 27-frame window).

    python bench/bench_video_speed.py                       # the shipped 12-frame test clip
    python bench/bench_video_speed.py --video /tmp/p2s/Pose2Sim/Demo_SinglePerson/videos/cam01.mp4

torch runs on ``--threads`` threads; MediaPipe's legacy ``solutions`` API has no thread setting
(its TFLite/XNNPACK graph picks its own), so the process is also pinned to ``--threads`` CPUs
where the OS allows it. Writes ``bench/results/video_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

DEFAULT_VIDEO = os.path.join(ROOT, "tests", "data", "pose2sim_cam01.mp4")
DEFAULT_OUT = os.path.join(ROOT, "bench", "results", "video_speed.json")
TARGET = 0.8


def blazepose_only(video: str, batch_size: int) -> int:
    """(a): decode every frame and run BlazePose on it; returns the number of frames."""
    import itertools

    from modeling_mpm.video import BlazePoseEstimator
    from modeling_mpm.video.pipeline import iter_video_frames

    n = 0
    with BlazePoseEstimator() as est:
        frames = iter_video_frames(video)
        while True:
            batch = list(itertools.islice(frames, batch_size))
            if not batch:
                return n
            est(batch)
            n += len(batch)


def end_to_end(video: str, lifter_dir: str, batch_size: int) -> dict:
    """(b): ``lift_video(..., pose_model="mediapipe")`` without render; returns its result."""
    from modeling_mpm.video import lift_video

    return lift_video(video, lifter_dir, pose_model="mediapipe", batch_size=batch_size, progress=False)


def _timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", default=DEFAULT_VIDEO, help="video file (default: the shipped test clip)")
    ap.add_argument("--rounds", type=int, default=3, help="timed (a), (b) pairs after the warm-up")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    if args.rounds < 1:
        raise SystemExit("--rounds must be at least 1")

    import torch

    threads_before = torch.get_num_threads()
    cpus_before = os.sched_getaffinity(0) if hasattr(os, "sched_setaffinity") else None
    torch.set_num_threads(args.threads)
    try:
        if cpus_before is not None and len(cpus_before) > args.threads:
            os.sched_setaffinity(0, set(sorted(cpus_before)[: args.threads]))
        out = _measure(args, torch)
    finally:  # restored: main() is also called in-process (tests)
        torch.set_num_threads(threads_before)
        if cpus_before is not None:
            os.sched_setaffinity(0, cpus_before)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = f"{args.out}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(out, f, indent=1)
    os.replace(tmp, args.out)
    print(f"median: (a) {out['a_fps']:.1f} frames/s, (b) {out['b_fps']:.1f} frames/s, (b)/(a) = "
          f"{out['ratio_b_over_a']:.3f} (target >= {TARGET}) -> {args.out}")
    return 0


def _measure(args, torch) -> dict:
    """The warm-up and the timed rounds; returns the JSON object."""
    from modeling_mpm.pretrained import GENERAL_LIFTER
    from modeling_mpm.video.pipeline import video_info

    pinned = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    load_before = " ".join(open("/proc/loadavg").read().split()[:3]) if os.path.exists("/proc/loadavg") else "n/a"
    info = video_info(args.video)

    with tempfile.TemporaryDirectory() as tmp:
        lifter_dir = GENERAL_LIFTER
        first_a, n = _timed(blazepose_only, args.video, args.batch_size)
        first_b, _ = _timed(end_to_end, args.video, lifter_dir, args.batch_size)
        rounds = []
        for r in range(args.rounds):
            ta, n = _timed(blazepose_only, args.video, args.batch_size)
            tb, res = _timed(end_to_end, args.video, lifter_dir, args.batch_size)
            rounds.append({"a_s": ta, "a_fps": n / ta, "b_s": tb, "b_fps": n / tb, "ratio": ta / tb,
                           "b_timings_s": {k: round(v, 4) for k, v in res["timings"].items()}})
            print(f"round {r}: (a) decode + BlazePose {n / ta:.1f} frames/s, (b) lift_video {n / tb:.1f} frames/s, "
                  f"(b)/(a) {ta / tb:.3f}; lift_video stages {rounds[-1]['b_timings_s']}", flush=True)
    a_fps = statistics.median(x["a_fps"] for x in rounds)
    b_fps = statistics.median(x["b_fps"] for x in rounds)
    ratio = b_fps / a_fps
    import mediapipe

    return {
        "meta": {"command": "python bench/bench_video_speed.py " + " ".join(args.argv),
                 "started_utc": started, "load_before": load_before,
                 "load_after": " ".join(open("/proc/loadavg").read().split()[:3])
                 if os.path.exists("/proc/loadavg") else "n/a",
                 "torch_threads": args.threads, "cpus_pinned": pinned, "cpu_count": os.cpu_count(),
                 "torch": torch.__version__, "mediapipe": mediapipe.__version__},
        "video": {"path": os.path.relpath(os.path.abspath(args.video), ROOT) if args.video == DEFAULT_VIDEO
                  else args.video, "frames": n, "width": info["width"], "height": info["height"], "fps": info["fps"]},
        "lifter": "modeling_mpm/pretrained/mpm-lift-general", "batch_size": args.batch_size,
        "first_call_s": {"a": first_a, "b": first_b},
        "rounds": rounds,
        "a_fps": a_fps, "b_fps": b_fps, "ratio_b_over_a": ratio, "target": TARGET, "meets_target": ratio >= TARGET,
    }


if __name__ == "__main__":
    sys.exit(main())
