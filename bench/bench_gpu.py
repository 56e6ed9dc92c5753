"""GPU inference: the authors' fp32 lifter vs the package in fp32/bf16/fp16, seq2frame batch sweep and seq2seq.
    python bench/bench_gpu.py --official .authors/MPM --json bench/results/gpu_inference.json   # H200: <= ~90 s (--budget-s 80)
    python bench/bench_gpu.py --official /tmp/MPM --device cpu --quick --json /tmp/gpu_cpu.json  # CPU smoke run, < 60 s
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import traceback

_START = time.perf_counter()  # the budget counts from here (imports and CUDA start-up included)

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

from bench_precision import IMAGE, PAPER, official_centre, official_lifter, rel_diff, windows_runner, zero_root  # noqa: E402
from common import load_average, run_meta, write_json  # noqa: E402

import modeling_mpm  # noqa: E402,F401  (registers the pipelines)
from modeling_mpm.convert_official import convert_official_state_dict  # noqa: E402
from modeling_mpm.inference import lift_sequence, run_seq2seq  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def _ints(s: str):
    return [int(v) for v in s.split(",") if v.strip()]


def _short_error(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"


def _is_oom(e: BaseException) -> bool:
    return isinstance(e, torch.OutOfMemoryError) or "out of memory" in str(e).lower()


def _flag(get):
    """A backend setting for the record (``"unknown"`` where this torch build has no such flag)."""
    try:
        return bool(get())
    except Exception:  # noqa: BLE001
        return "unknown"


def official_seq(model):
    """``(B, 243, J, 2)`` normalised -> ``(B, 243, J, 3)`` all-frames output of the authors' model."""
    def fn(xb):
        _, frames = model(xb.permute(0, 3, 1, 2).unsqueeze(-1).contiguous())
        return frames[..., 0].permute(0, 2, 3, 1)
    return fn


def on_device(fn, dev):
    """Wrap a ``(B, ...)`` CPU-in function: inputs to ``dev``, float32 CPU outputs (as the pipeline returns)."""
    return lambda xb: fn(xb.to(dev, non_blocking=True)).float().cpu()


class Bench:
    def __init__(self, args, res):
        self.args, self.res = args, res
        self.dev = torch.device(args.device)
        self.t0 = _START
        self.reserve = 0.0  # seconds kept back for the sections after this one
        res["errors"] = []

    def left(self) -> float:
        return self.args.budget_s - self.reserve - (time.perf_counter() - self.t0)

    def save(self):
        self.res["elapsed_s"] = time.perf_counter() - self.t0
        if self.args.json:
            write_json(self.res, self.args.json)

    def error(self, where: str, e: BaseException):
        msg = _short_error(e)
        self.res["errors"].append({"where": where, "error": msg, "oom": _is_oom(e)})
        print(f"  [error] {where}: {msg}", flush=True)
        if not _is_oom(e):
            traceback.print_exc(limit=3)
        if self.dev.type == "cuda":
            torch.cuda.empty_cache()

    def sync(self):
        if self.dev.type == "cuda":
            torch.cuda.synchronize()

    def measure(self, section: str, runners: dict, frames: int):
        """Warm-up (outputs kept for agreement), then interleaved timed rounds; failing variants are dropped."""
        outputs = {}
        for name, run in list(runners.items()):
            if self.left() < 0:
                runners.pop(name)
                self.res["errors"].append({"where": f"{section}/{name}", "error": "skipped: time budget spent"})
                continue
            try:
                outputs[name] = run()
                self.sync()
            except Exception as e:  # noqa: BLE001 - record, drop the variant, go on
                self.error(f"{section}/{name} (warm-up)", e)
                runners.pop(name)
        times = {k: [] for k in runners}
        for r in range(self.args.rounds):
            if self.left() < 0:
                self.res["errors"].append({"where": section, "error": f"time budget spent after {r} rounds"})
                break
            for name, run in list(runners.items()):
                try:
                    self.sync()
                    t = time.perf_counter()
                    run()
                    self.sync()
                    times[name].append(time.perf_counter() - t)
                except Exception as e:  # noqa: BLE001
                    self.error(f"{section}/{name} (round {r + 1})", e)
                    runners.pop(name)
            print(f"  {section} round {r + 1}: " + ", ".join(
                f"{k} {frames / v[-1]:.0f}" for k, v in times.items() if v) + " frames/s", flush=True)
        rows = {}
        ref = times.get("authors_fp32", [])
        for name, ts in times.items():
            if not ts:
                continue
            row = {"seconds": ts, "frames_per_s_median": frames / statistics.median(ts),
                   "frames_per_s_best": frames / min(ts)}
            ratios = [a / b for a, b in zip(ref, ts)]
            if ratios:
                row["x_authors_fp32_median"] = statistics.median(ratios)
                row["x_authors_fp32_per_round"] = ratios
            if name in outputs and "mpm_fp32" in outputs:
                row["rel_diff_vs_mpm_fp32"] = rel_diff(outputs[name], outputs["mpm_fp32"])
            rows[name] = row
        parity = None
        if "authors_fp32" in outputs and "mpm_fp32" in outputs:
            parity = float(np.abs(zero_root(outputs["authors_fp32"]) - zero_root(outputs["mpm_fp32"])).max())
        return rows, parity


def setup(args, bench):
    from transformers import pipeline

    from modeling_mpm import MPMForPoseLifting

    dev = bench.dev
    official = official_lifter(args.official, seed=args.seed)
    sd = {"module." + k: v for k, v in official.state_dict().items()}  # as their DataParallel saves it
    mpm = convert_official_state_dict(sd, reduce_strides=PAPER["stride_num"]).eval()
    folder = tempfile.mkdtemp(prefix="mpm_bench_gpu_")
    mpm.save_pretrained(folder)
    official = official.to(dev)
    models, pipes = {}, {}
    for name in args.dtypes:
        try:
            models[name] = MPMForPoseLifting.from_pretrained(folder, dtype=DTYPES[name]).to(dev).eval()
        except Exception as e:  # noqa: BLE001
            bench.error(f"load mpm_{name}", e)
        if args.pipeline:
            try:
                pipes[name] = pipeline("pose-lifting", model=folder, device=dev, dtype=DTYPES[name])
            except Exception as e:  # noqa: BLE001
                bench.error(f"load pipeline_{name}", e)
    return official, models, pipes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official", required=True, help="checkout of the authors' MPM repository")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (CPU smoke run)")
    ap.add_argument("--frames", type=int, default=None, help="frames per seq2frame call (default 2048; quick 24)")
    ap.add_argument("--batch-sizes", default=None, help="seq2frame windows per forward (default 16,64,256,1024)")
    ap.add_argument("--seq2seq-batch-sizes", default=None, help="seq2seq windows per forward (default 256,1024)")
    ap.add_argument("--seq2seq-forwards", type=int, default=2, help="forwards per seq2seq call")
    ap.add_argument("--pipeline-batch-size", type=int, default=None, help="batch of the pipeline rows (default 256)")
    ap.add_argument("--dtypes", default=None, help="package dtypes (default fp32,bf16,fp16 on cuda; fp32,bf16 on cpu)")
    ap.add_argument("--no-pipeline", dest="pipeline", action="store_false")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default all on cuda, 2 on cpu)")
    ap.add_argument("--budget-s", type=float, default=None,
                    help="no new round or warm-up starts after this many seconds from start-up (default 80; quick 40)")
    ap.add_argument("--seq2seq-reserve-s", type=float, default=None,
                    help="seconds of the budget kept for seq2seq (default 20; quick 5)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    q = args.quick
    args.frames = args.frames or (24 if q else 2048)
    args.batch_sizes = _ints(args.batch_sizes or ("8,24" if q else "16,64,256,1024"))
    args.seq2seq_batch_sizes = _ints(args.seq2seq_batch_sizes or ("2" if q else "256,1024"))
    args.pipeline_batch_size = args.pipeline_batch_size or (24 if q else 256)
    args.dtypes = [d.strip() for d in (args.dtypes or ("fp32,bf16,fp16" if args.device == "cuda" else "fp32,bf16"))
                   .split(",") if d.strip()]
    args.budget_s = args.budget_s if args.budget_s is not None else (40.0 if q else 80.0)
    args.seq2seq_reserve_s = args.seq2seq_reserve_s if args.seq2seq_reserve_s is not None else (5.0 if q else 20.0)
    if q:
        args.rounds = min(args.rounds, 2)
    if any(d not in DTYPES for d in args.dtypes) or "fp32" not in args.dtypes:
        raise SystemExit(f"--dtypes must include fp32 and use {sorted(DTYPES)}, got {args.dtypes}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda but torch.cuda.is_available() is False (use --device cpu --quick)")
    threads = args.threads or (os.cpu_count() if args.device == "cuda" else 2)
    torch.set_num_threads(threads)

    import transformers

    res = run_meta("gpu" if args.device == "cuda" else "cpu-quick", threads, argv, script="bench/bench_gpu.py")
    res.update(device=args.device, transformers=transformers.__version__, config=PAPER, rounds=args.rounds,
               seq2frame_frames=args.frames, batch_sizes=args.batch_sizes, dtypes=args.dtypes,
               seq2seq_batch_sizes=args.seq2seq_batch_sizes, pipeline_batch_size=args.pipeline_batch_size)
    if args.device == "cuda":
        p = torch.cuda.get_device_properties(0)
        res.update(gpu=torch.cuda.get_device_name(0), gpu_memory_gib=round(p.total_memory / 2**30, 1),
                   cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                   tf32_matmul=_flag(lambda: torch.backends.cuda.matmul.allow_tf32),
                   tf32_cudnn=_flag(lambda: torch.backends.cudnn.allow_tf32))
    print(f"{res['started_utc']} torch {torch.__version__} transformers {transformers.__version__} "
          f"device {res.get('gpu', 'cpu')} commit {res['git_commit']}", flush=True)
    bench = Bench(args, res)
    bench.save()
    try:
        official, models, pipes = setup(args, bench)
    except Exception as e:  # noqa: BLE001
        bench.error("setup", e)
        bench.save()
        return 1
    res["setup_s"] = time.perf_counter() - bench.t0
    dev, T = bench.dev, PAPER["frames"]

    rng = np.random.default_rng(args.seed)

    def track(frames):
        """A smooth random walk in pixels (a plausible 2D track) and its normalised form (as the pipeline)."""
        kp = 500 + np.cumsum(rng.normal(0, 2, size=(frames, 17, 2)), axis=0) + rng.normal(0, 60, size=(1, 17, 2))
        return kp, (kp / IMAGE[0] * 2 - np.array([1, IMAGE[1] / IMAGE[0]])).astype(np.float32)

    kp, x_norm = track(args.frames)
    res["seq2frame"] = {}
    bench.reserve = args.seq2seq_reserve_s
    for bs in args.batch_sizes:
        runners = {"authors_fp32": windows_runner(on_device(official_centre(official), dev), x_norm, bs, T)}
        for name, m in models.items():
            runners[f"mpm_{name}"] = (lambda m, bs: lambda: lift_sequence(
                m, x_norm, mode="seq2frame", batch_size=bs, progress=False))(m, bs)
        if bs == args.pipeline_batch_size:
            for name, p in pipes.items():
                runners[f"pipeline_{name}"] = (lambda p, bs: lambda: p(
                    kp, image_size=IMAGE, keypoint_format="h36m", mode="seq2frame", batch_size=bs, progress=False)["pose_3d"])(p, bs)
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        rows, parity = bench.measure(f"seq2frame b{bs}", runners, args.frames)
        res["seq2frame"][str(bs)] = {"variants": rows, "parity_authors_vs_mpm_fp32_max_abs_m": parity}
        if dev.type == "cuda":
            res["seq2frame"][str(bs)]["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
        bench.save()

    res["seq2seq"] = {}
    bench.reserve = 0.0
    for bs in args.seq2seq_batch_sizes:
        frames = T * bs * args.seq2seq_forwards
        _, xs = track(frames)
        xt = torch.from_numpy(xs)
        fn = on_device(official_seq(official), dev)

        def authors_seq(fn=fn, xt=xt, bs=bs):
            with torch.inference_mode():
                (out,) = run_seq2seq(lambda xb: (fn(xb),), [xt], T, batch_size=bs, progress=False)
            return out.numpy()
        runners = {"authors_fp32": authors_seq}
        for name, m in models.items():
            runners[f"mpm_{name}"] = (lambda m, bs, xs: lambda: lift_sequence(
                m, xs, mode="seq2seq", batch_size=bs, progress=False))(m, bs, xs)
        rows, parity = bench.measure(f"seq2seq b{bs}", runners, frames)
        res["seq2seq"][str(bs)] = {"frames": frames, "variants": rows, "parity_authors_vs_mpm_fp32_max_abs_m": parity}
        bench.save()

    res["load_after"] = load_average()
    bench.save()
    print_table(res)
    print(f"elapsed {res['elapsed_s']:.1f} s (budget {args.budget_s:.0f} s), errors: {len(res['errors'])}")
    if args.json:
        print(f"wrote {args.json}")
    return 0


def print_table(res):
    print(f"\n{res.get('gpu', 'cpu')}, torch {res['torch']}, transformers {res['transformers']}, {res['started_utc']}")
    for mode in ("seq2frame", "seq2seq"):
        for bs, block in res.get(mode, {}).items():
            print(f"\n{mode}, batch {bs} windows" + (f", {block['frames']} frames" if "frames" in block else "")
                  + (f", authors vs mpm fp32 max abs {block['parity_authors_vs_mpm_fp32_max_abs_m']:.1e} m"
                     if block.get("parity_authors_vs_mpm_fp32_max_abs_m") is not None else ""))
            print(f"  {'variant':<16s} {'frames/s (median)':>18s} {'x authors fp32':>15s} {'rel. diff to fp32':>18s}")
            for name, row in block["variants"].items():
                x = row.get("x_authors_fp32_median")
                d = row.get("rel_diff_vs_mpm_fp32")
                print(f"  {name:<16s} {row['frames_per_s_median']:18.1f} {'-' if x is None else f'{x:.2f}':>15s} "
                      f"{'-' if d is None else f'{d:.2e}':>18s}")
    for e in res.get("errors", []):
        print(f"  error {e['where']}: {e['error']}")


if __name__ == "__main__":
    sys.exit(main())
