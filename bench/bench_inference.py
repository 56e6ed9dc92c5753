"""Inference speed and memory of the paper-size lifter (random weights) on CPU.

    python bench/bench_inference.py --threads 2 --frames 20000 --seq2frame-frames 1000 \
        --memory-frames 200000 [--batch-sizes 32,64,128] [--dtypes float32,bfloat16] [--json out.json]

Reports, for ``MPMConfig.h36m_17()`` (243 frames, 4 layers, width 256):

* the FLOP/s of a large fp32 matmul (4096^3) measured in the same run (the machine's practical peak),
  and of a matmul in every other ``--dtypes`` entry;
* for every ``--dtypes`` entry (the model cast with ``modeling_mpm.quantization.cast_model``):
* seq2seq lifting (``lift_sequence(..., mode="seq2seq")``, non-overlapping windows) of ``--frames``
  frames: frames/s, FLOPs per window (``torch.utils.flop_counter.FlopCounterMode`` on the
  computation actually run) and achieved FLOP/s as a fraction of the matmul's;
* the same through the pipeline (keypoint validation, normalisation, windowing);
* seq2frame lifting (one 243-frame window per frame) of ``--seq2frame-frames`` frames;
* peak resident memory of a fresh process while it lifts ``--memory-frames`` frames with the
  pipeline in seq2seq mode (``VmHWM`` after resetting it through ``/proc/self/clear_refs`` just
  before the call; ``ru_maxrss`` where that is not possible), next to its resident memory before.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from modeling_mpm import MPMConfig, MPMForPoseLifting  # noqa: E402
from modeling_mpm.inference import _lifter_head_fn, lift_sequence  # noqa: E402


def load_average() -> str:
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "n/a"


def matmul_flops(n: int = 4096, repeats: int = 3, dtype=torch.float32) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    with torch.inference_mode():
        a @ b
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def flops_per_window(model, head: str) -> float:
    """Forward FLOPs of one window, CPU attention included (torch 2.13's FlopCounterMode has no
    formula for the CPU flash-attention op; bench/common.py registers one)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from common import register_cpu_attention_flops

    register_cpu_attention_flops()
    fn = _lifter_head_fn(model, head)
    x = torch.randn(2, model.config.num_frames, model.config.num_joints, 2)
    with torch.inference_mode():
        fc = FlopCounterMode(display=False)
        with fc:
            fn(x, None)
    return fc.get_total_flops() / 2


def timed(fn, repeats: int = 1) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


MEMORY_SCRIPT = textwrap.dedent(
    """
    import resource, sys, json
    sys.path.insert(0, {root!r})
    import numpy as np, torch
    torch.set_num_threads({threads})
    from transformers import pipeline
    import modeling_mpm
    from modeling_mpm import MPMConfig, MPMForPoseLifting
    torch.manual_seed(0)
    model = MPMForPoseLifting(MPMConfig.h36m_17()).eval()
    pipe = pipeline("pose-lifting", model=model)
    rng = np.random.default_rng(0)
    kp = rng.uniform(0, 1000, size=({frames}, 17, 3)).astype(np.float32)
    kp[..., 2] = rng.uniform(0.2, 1.0, size=kp.shape[:2])
    import gc, os
    def hwm_kib():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM"):
                return float(line.split()[1])
    gc.collect()
    current = int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:  # reset the high-water mark so that the peak below is the lifting's own (Linux)
        open("/proc/self/clear_refs", "w").write("5")
        reset = True
    except OSError:
        reset = False
    out = pipe(kp, image_size=(1000, 1000), keypoint_format="h36m", mode="seq2seq", batch_size={batch}, confidence_threshold=0.3,
               progress=False)
    after = hwm_kib() if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert out["pose_3d"].shape == ({frames}, 17, 3) and np.isfinite(out["pose_3d"]).all()
    print(json.dumps({{"rss_before_mib": before / 1024, "rss_peak_mib": after / 1024,
                       "rss_current_before_lift_mib": current / 1024,
                       "input_mib": kp.nbytes / 2**20}}))
    """
)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frames", type=int, default=20000, help="frames for the seq2seq run")
    ap.add_argument("--seq2frame-frames", type=int, default=1000)
    ap.add_argument("--memory-frames", default="20000,200000",
                    help="comma list of input lengths for the memory runs (0 skips them)")
    ap.add_argument("--batch-sizes", default="64", help="comma list of windows per forward (seq2seq)")
    ap.add_argument("--seq2frame-batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--profile", action="store_true", help="print the top ops of one seq2seq batch")
    ap.add_argument("--dtypes", default="float32",
                    help="comma list of model dtypes for the seq2seq runs, e.g. float32,bfloat16 (the "
                         "fraction of matmul is always against the same-run fp32 matmul)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    res = {"threads": args.threads, "load_before": load_average(), "torch": torch.__version__}
    model = MPMForPoseLifting(MPMConfig.h36m_17()).eval()
    T = model.config.num_frames
    rng = np.random.default_rng(0)

    res["matmul_gflops"] = matmul_flops() / 1e9
    print(f"fp32 matmul 4096^3: {res['matmul_gflops']:.1f} GFLOP/s  (load {res['load_before']})")

    # seq2seq
    f_s2s = flops_per_window(model, "pose_3d")
    res["seq2seq_gflop_per_window"] = f_s2s / 1e9
    x = rng.uniform(-1, 1, size=(args.frames, 17, 2)).astype(np.float32)
    n_windows = -(-args.frames // T) if args.frames > T else 1
    res["seq2seq"] = []
    from modeling_mpm.quantization import cast_model, resolve_dtype

    models = {}
    for dtype_name in args.dtypes.split(","):
        dtype = resolve_dtype(dtype_name)
        models[dtype_name] = model if dtype == torch.float32 else cast_model(model, dtype)
        if dtype != torch.float32:
            key = f"matmul_gflops_{dtype_name}"
            res[key] = matmul_flops(dtype=dtype) / 1e9
            print(f"{dtype_name} matmul 4096^3: {res[key]:.1f} GFLOP/s")
    windows = len(range(0, args.frames - T + 1, T)) + (1 if args.frames % T else 0)
    for bs in [int(b) for b in args.batch_sizes.split(",")]:
        best = {}
        for m_d in models.values():
            lift_sequence(m_d, x[: T * 4], mode="seq2seq", batch_size=bs, progress=False)  # warm-up
        for _ in range(args.repeats):  # dtypes interleaved, so that a change of load hits all of them
            for dtype_name, m_d in models.items():
                dt = timed(lambda: lift_sequence(m_d, x, mode="seq2seq", batch_size=bs, progress=False), 1)
                best[dtype_name] = min(best.get(dtype_name, float("inf")), dt)
        for dtype_name, dt in best.items():
            gflops = windows * f_s2s / dt / 1e9
            row = {"dtype": dtype_name, "batch_size": bs, "seconds": dt, "frames_per_s": args.frames / dt,
                   "windows": windows, "gflops": gflops, "fraction_of_matmul": gflops / res["matmul_gflops"]}
            res["seq2seq"].append(row)
            print(f"seq2seq  {dtype_name} {args.frames} frames, batch {bs}: {dt:.2f} s, "
                  f"{row['frames_per_s']:.0f} frames/s, {gflops:.1f} GFLOP/s = "
                  f"{100 * row['fraction_of_matmul']:.0f}% of the fp32 matmul ({f_s2s / 1e9:.3f} GFLOP/window)")
    del n_windows

    if args.profile:
        from torch.profiler import profile

        for dtype_name in args.dtypes.split(","):
            dtype = resolve_dtype(dtype_name)
            m_d = model if dtype == torch.float32 else cast_model(model, dtype)
            fn = _lifter_head_fn(m_d, "pose_3d")
            nb = max(1, min(64, len(x) // T))
            xb = torch.as_tensor(x[: T * nb].reshape(nb, T, 17, 2))
            with torch.inference_mode():
                fn(xb, None)
                with profile() as prof:
                    fn(xb, None)
            table = prof.key_averages()
            total = sum(e.self_cpu_time_total for e in table)
            top = sorted(table, key=lambda e: -e.self_cpu_time_total)[:12]
            key = "profile_seq2seq_batch64" + ("" if dtype == torch.float32 else f"_{dtype_name}")
            res[key] = {e.key: e.self_cpu_time_total / total for e in top}
            res[key + "_total_ms"] = total / 1e3
            print(f"seq2seq {dtype_name}, batch of {nb} windows, {total / 1e3:.0f} ms self CPU time in all, shares:")
            for e in top:
                print(f"  {e.key:<50s} {100 * e.self_cpu_time_total / total:5.1f}%  ({e.count} calls)")

    # pipeline, seq2seq, pixels with confidences (includes validation and normalisation)
    from transformers import pipeline

    pipe = pipeline("pose-lifting", model=model)
    kp = rng.uniform(0, 1000, size=(args.frames, 17, 3))
    kp[..., 2] = rng.uniform(0.2, 1.0, size=kp.shape[:2])
    bs = max((r for r in res["seq2seq"] if r["dtype"] == "float32"), key=lambda r: r["frames_per_s"])["batch_size"]
    dt = timed(lambda: pipe(kp, image_size=(1000, 1000), keypoint_format="coco", confidence_threshold=0.3,
                            mode="seq2seq", batch_size=bs, progress=False), 1)
    res["pipeline_seq2seq_frames_per_s"] = args.frames / dt
    print(f"pipeline seq2seq (coco, confidences): {args.frames / dt:.0f} frames/s")

    # seq2frame
    f_s2f = flops_per_window(model, "pose_3d_center")
    res["seq2frame_gflop_per_window"] = f_s2f / 1e9
    n = args.seq2frame_frames
    lift_sequence(model, x[:64], mode="seq2frame", batch_size=args.seq2frame_batch_size, progress=False)
    dt = timed(lambda: lift_sequence(model, x[:n], mode="seq2frame", batch_size=args.seq2frame_batch_size,
                                     progress=False), 1)
    g = n * f_s2f / dt / 1e9
    res["seq2frame"] = {"frames": n, "seconds": dt, "frames_per_s": n / dt, "gflops": g,
                        "fraction_of_matmul": g / res["matmul_gflops"], "batch_size": args.seq2frame_batch_size}
    print(f"seq2frame {n} frames, batch {args.seq2frame_batch_size}: {n / dt:.1f} frames/s, {g:.1f} GFLOP/s = "
          f"{100 * g / res['matmul_gflops']:.0f}% of matmul ({f_s2f / 1e9:.3f} GFLOP/window)")

    mem_frames = [int(f) for f in str(args.memory_frames).split(",") if int(f) > 0]
    res["memory"] = []
    for frames in mem_frames:
        script = MEMORY_SCRIPT.format(root=ROOT, threads=args.threads, frames=frames, batch=bs)
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             env=dict(os.environ, HF_HUB_OFFLINE="1"))
        if out.returncode != 0:
            print(out.stderr[-2000:], file=sys.stderr)
            return 1
        mem = json.loads(out.stdout.strip().splitlines()[-1])
        mem["frames"] = frames
        mem["seconds"] = time.perf_counter() - t
        res["memory"].append(mem)
        print(f"memory: {frames} frames through the pipeline (seq2seq, batch {bs}): peak RSS while lifting "
              f"{mem['rss_peak_mib']:.0f} MiB, resident before {mem['rss_current_before_lift_mib']:.0f} MiB "
              f"(+{mem['rss_peak_mib'] - mem['rss_current_before_lift_mib']:.0f} MiB; input "
              f"{mem['input_mib']:.0f} MiB), {mem['seconds']:.0f} s with start-up")
    res["load_after"] = load_average()
    print(f"load average after: {res['load_after']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
