"""How inference time grows with sequence length and window size, with FLOPs per frame and the
achieved FLOP/s relative to a same-run fp32 matmul; MPM lifter next to the baselines.

    python bench/bench_inference_scaling.py --budget small --threads 2
    python bench/bench_inference_scaling.py --budget smoke --out /tmp/inf.json

The 20,000-frame headline number and the pipeline / memory measurements are
``bench/bench_inference.py`` (the inference engineer's); this script adds the scaling study.

For each window size ``W`` (``MPMConfig.h36m_17(num_frames=W)``: 4 layers, width 256, random
weights; 243 is the paper's model) and sequence length ``T`` it times
``modeling_mpm.inference.lift_sequence`` in ``seq2seq`` mode (non-overlapping windows, all-frames
head) and ``seq2frame`` mode (one window per frame, centre head), batch 64 windows, best of
``--repeats``. FLOPs per frame are counted with ``torch.utils.flop_counter.FlopCounterMode``
around the same call on a short sequence (multiply-adds count 2; CPU attention, which torch 2.13's
counter leaves out, is added by ``common.register_cpu_attention_flops``). Baselines: the single-frame MLP
(every frame independently) and the temporal convolution (VideoPose3D style, receptive field W,
one pass over the edge-padded sequence). Also the batch-1 latency of one window (median), the
figure peer systems quote. Writes ``bench/results/inference_scaling_<budget>.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
from modeling_mpm import MPMConfig, MPMForPoseLifting  # noqa: E402
from baselines import SingleFrameMLPLifter, TemporalConvLifter  # noqa: E402
from modeling_mpm.inference import lift_sequence  # noqa: E402

SETTINGS = {
    "smoke": dict(windows=[9], seq2seq_lengths=[60, 120], seq2frame_lengths=[20], repeats=1, latency_repeats=3, tiny=True,
                  matmul_n=256),
    "small": dict(windows=[27, 81, 243], seq2seq_lengths=[1000, 4000, 16000], seq2frame_lengths=[250, 1000],
                  repeats=2, latency_repeats=21, tiny=False, matmul_n=4096),
    "full": dict(windows=[27, 81, 243], seq2seq_lengths=[1000, 4000, 16000, 64000],
                 seq2frame_lengths=[250, 1000, 4000], repeats=3, latency_repeats=51, tiny=False, matmul_n=4096),
}


def matmul_gflops(n: int, repeats: int = 3) -> float:
    """Best fp32 ``n x n @ n x n`` throughput in GFLOP/s (2 n^3 FLOPs)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    with torch.inference_mode():
        a @ b
        best = min(_time(lambda: a @ b) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def count_flops(fn) -> float:
    with torch.inference_mode():
        fc = FlopCounterMode(display=False)
        with fc:
            fn()
    return float(fc.get_total_flops())


def best_time(fn, repeats: int) -> float:
    with torch.inference_mode():
        fn()  # warm-up
        return min(_time(fn) for _ in range(repeats))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", choices=sorted(SETTINGS), default="small")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    s = SETTINGS[args.budget]
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    res = {"meta": C.run_meta(args.budget, args.threads, argv, __file__), "settings": s, "batch_size": args.batch_size,
           "cpu_attention_flops_counted": C.register_cpu_attention_flops()}
    res["matmul_gflops"] = matmul_gflops(s["matmul_n"])
    print(f"fp32 matmul {s['matmul_n']}^3: {res['matmul_gflops']:.1f} GFLOP/s (load {C.load_average()})", flush=True)
    rng = np.random.default_rng(0)
    rows, latency = [], []
    for W in s["windows"]:
        kw = dict(hidden_size=32, intermediate_size=64, num_layers=1, num_attention_heads=4) if s["tiny"] else {}
        model = MPMForPoseLifting(MPMConfig.h36m_17(num_frames=W, **kw)).eval()
        mlp = SingleFrameMLPLifter(17, width=64 if s["tiny"] else 1024).eval()
        tcn = TemporalConvLifter(17, C.tcn_widths(W), channels=32 if s["tiny"] else 1024).eval()
        params = {"mpm": sum(p.numel() for p in model.parameters()), "mlp": sum(p.numel() for p in mlp.parameters()),
                  "tcn": sum(p.numel() for p in tcn.parameters())}
        short = rng.uniform(-1, 1, size=(4 * W, 17, 2)).astype(np.float32)
        n_s2f = min(64, 4 * W)

        def runner(name, x):
            if name == "seq2seq":
                return lambda: lift_sequence(model, x, mode="seq2seq", batch_size=args.batch_size, progress=False)
            if name == "seq2frame":
                return lambda: lift_sequence(model, x, mode="seq2frame", batch_size=args.batch_size, progress=False)
            xt = torch.from_numpy(x)
            if name == "mlp":
                return lambda: mlp(xt)
            pad = (W - 1) // 2                                                 # edge padding, one pass
            xp = torch.cat([xt[:1].expand(pad, -1, -1), xt, xt[-1:].expand(pad, -1, -1)])[None]
            return lambda: tcn(xp)

        # batch-1 latency of one window (the usual per-clip latency of peer systems)
        clip = torch.from_numpy(short[:W])[None]
        for head in ("pose_3d_center", "pose_3d"):
            fn = lambda: getattr(model(pose_2d=clip), head)  # noqa: E731
            with torch.inference_mode():
                fn()
                ts = sorted(_time(fn) for _ in range(s["latency_repeats"]))
            lat = {"window": W, "head": head, "median_ms": 1000 * ts[len(ts) // 2], "min_ms": 1000 * ts[0],
                   "flops": count_flops(fn), "load": C.load_average()}
            latency.append(lat)
            print(f"W={W:3d} batch-1 latency ({head}): median {lat['median_ms']:.1f} ms, "
                  f"{lat['flops'] / 1e9:.3f} GFLOP per window", flush=True)
        flops_pf = {
            "seq2seq": count_flops(runner("seq2seq", short)) / len(short),
            "seq2frame": count_flops(runner("seq2frame", short[:n_s2f])) / n_s2f,
            "mlp": count_flops(runner("mlp", short)) / len(short),
            "tcn": count_flops(runner("tcn", short)) / len(short),
        }
        for mode, lengths in (("seq2seq", s["seq2seq_lengths"]), ("seq2frame", s["seq2frame_lengths"]),
                              ("mlp", s["seq2seq_lengths"]), ("tcn", s["seq2seq_lengths"])):
            for T in lengths:
                x = rng.uniform(-1, 1, size=(T, 17, 2)).astype(np.float32)
                load = C.load_average()
                dt = best_time(runner(mode, x), s["repeats"])
                g = flops_pf[mode] * T / dt / 1e9
                row = {"model": "mpm" if mode in ("seq2seq", "seq2frame") else mode, "mode": mode, "window": W,
                       "frames": T, "seconds": dt, "frames_per_s": T / dt, "flops_per_frame": flops_pf[mode],
                       "gflops": g, "fraction_of_matmul": g / res["matmul_gflops"], "parameters":
                       params["mpm" if mode in ("seq2seq", "seq2frame") else mode], "load": load}
                rows.append(row)
                print(f"W={W:3d} {mode:9s} T={T:6d}: {dt:7.3f} s, {T / dt:9.0f} frames/s, "
                      f"{flops_pf[mode] / 1e6:8.2f} MFLOP/frame, {g:6.1f} GFLOP/s "
                      f"({100 * g / res['matmul_gflops']:.0f}% of matmul), load {load}", flush=True)
    res["rows"] = rows
    res["latency_batch1"] = latency
    res["meta"]["load_after"] = C.load_average()
    path = args.out or os.path.join(C.RESULTS_DIR, f"inference_scaling_{args.budget}.json")
    C.write_json(res, path)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
