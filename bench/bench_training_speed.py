"""Training cost on CPU: samples/s and peak memory of a pre-training step and a fine-tuning step,
next to the data loader's windows/s.

    python bench/bench_training_speed.py --budget small     # paper configuration, batch 64, 2 threads
    python bench/bench_training_speed.py --budget smoke --out /tmp/speed.json
    python bench/bench_training_speed.py --budget demo --dropout-ab   # mpm demo's model: dropout's cost per step

* pre-training step: ``MPMForMaskedPoseModeling``, half the batch as a masked 2D pass and half
  as a masked 3D pass (the authors' unpaired pre-training), forward + backward + the package's optimizer step (``training.trainer.build_optimizer``);
* fine-tuning step: ``MPMForPoseLifting`` with all-frames + centre-frame loss, same optimiser.

Each measurement runs in a fresh process; peak memory is that process's peak resident set size
(``ru_maxrss``), reported next to its size after building the model and batch (before the first
step), so the difference is what the training step needs. Samples/s are windows of
``num_frames`` frames per second (best of ``--repeats`` timed blocks of ``--steps`` steps after a
warm-up step). The loader throughput comes from ``bench/bench_data_loader.py`` (the data
engineer's benchmark, ``bench_loader``) on the demo data at the same window length and batch.
The load average is recorded before and after. Writes ``bench/results/training_speed_<budget>.json``.

``--dropout-ab``: in one process, the same steps with the authors' dropout (0.1 in the transformers and
embeddings, 0.2 in the lifter's MLPs) and without (``mpm demo``'s recipe), timed blocks interleaved, and the
ratio; writes ``bench/results/training_speed_<budget>_dropout.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common as C  # noqa: E402
from common import package_optimizer  # noqa: E402

SETTINGS = {
    "smoke": dict(config="tiny", batch_size=8, steps=1, repeats=1, loader_seconds=0.3),
    "small": dict(config="paper", batch_size=64, steps=2, repeats=2, loader_seconds=3.0),
    "full": dict(config="paper", batch_size=64, steps=5, repeats=3, loader_seconds=5.0),
    "demo": dict(config="demo", batch_size=64, steps=20, repeats=3, loader_seconds=3.0),
}


def _config(name: str):
    from modeling_mpm import MPMConfig

    if name == "paper":
        return MPMConfig.h36m_17()
    if name == "demo":  # mpm demo's model (modeling_mpm.demo.PRESETS["full"]) with the authors' dropout (the defaults)
        from modeling_mpm.demo import PRESETS

        sizes = ("num_frames", "hidden_size", "intermediate_size", "num_layers", "num_attention_heads")
        return MPMConfig.h36m_17(**{k: PRESETS["full"][k] for k in sizes})
    return MPMConfig.h36m_17(num_frames=9, hidden_size=32, intermediate_size=64, num_layers=1, num_attention_heads=4)


def _training_step(kind: str, cfg, batch: int):
    """``(model, step)``: one forward + backward + optimizer step of ``kind`` on a fixed random batch."""
    from modeling_mpm import MPMForMaskedPoseModeling, MPMForPoseLifting

    torch.manual_seed(0)
    F, J = cfg.num_frames, cfg.num_joints
    if kind == "pretrain":
        model = MPMForMaskedPoseModeling(cfg).train()
        h = max(1, batch // 2)
        p2, p3 = torch.randn(h, F, J, 2) * 0.3, torch.randn(batch - h, F, J, 3) * 0.3
        p3[:, :, 0] = 0
        gen = torch.Generator().manual_seed(0)
        fn = lambda: model(pose_2d=p2, pose_3d=p3, generator=gen).loss  # noqa: E731
    else:
        model = MPMForPoseLifting(cfg).train()
        p2, p3 = torch.randn(batch, F, J, 2) * 0.3, torch.randn(batch, F, J, 3) * 0.3
        fn = lambda: model(pose_2d=p2, labels=p3).loss  # noqa: E731
    opt = package_optimizer(model)

    def step():
        loss = fn()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return model, step


def worker(kind: str, config: str, batch: int, steps: int, repeats: int, threads: int) -> dict:
    """One measurement in this (fresh) process."""
    torch.set_num_threads(threads)
    cfg = _config(config)
    F = cfg.num_frames
    model, step = _training_step(kind, cfg, batch)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    step()  # warm-up (allocates the optimiser state)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(steps):
            step()
        best = min(best, (time.perf_counter() - t) / steps)
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"kind": kind, "config": config, "num_frames": F, "batch_size": batch, "seconds_per_step": best,
            "samples_per_s": batch / best, "frames_per_s": batch * F / best,
            "parameters": sum(p.numel() for p in model.parameters()),
            "rss_before_mib": rss_before, "rss_peak_mib": rss_peak, "step_memory_mib": rss_peak - rss_before,
            "threads": threads}


def dropout_ab(kind: str, config: str, batch: int, steps: int, repeats: int, threads: int) -> dict:
    """Seconds per ``kind`` step with the config's dropout and with none, timed blocks interleaved in this
    process (best of ``repeats``), and their ratio."""
    from modeling_mpm.demo import NO_DROPOUT

    torch.set_num_threads(threads)
    cfg = _config(config)
    off = cfg.__class__.from_dict({**cfg.to_dict(), **NO_DROPOUT})
    steps_of = {"with": _training_step(kind, cfg, batch)[1], "without": _training_step(kind, off, batch)[1]}
    best = {k: float("inf") for k in steps_of}
    for step in steps_of.values():
        step()  # warm-up
    for _ in range(repeats):
        for name, step in steps_of.items():
            t = time.perf_counter()
            for _ in range(steps):
                step()
            best[name] = min(best[name], (time.perf_counter() - t) / steps)
    return {"kind": kind, "config": config, "batch_size": batch, "num_frames": cfg.num_frames, "threads": threads,
            "dropout": {k: getattr(cfg, k) for k in NO_DROPOUT},
            "seconds_per_step_with_dropout": best["with"], "seconds_per_step_without": best["without"],
            "speedup_without": best["with"] / best["without"]}


def loader_throughput(num_frames: int, batch: int, seconds: float) -> dict:
    """windows/s of the data engineer's loader benchmark on the demo data (paired and unpaired)."""
    try:
        from bench_data_loader import bench_loader
    except Exception as e:  # the data engineer's script is missing or changed
        return {"error": f"bench/bench_data_loader.py unavailable: {e!r}"}
    from modeling_mpm.data import demo_window_datasets

    out = {"source": "bench/bench_data_loader.py:bench_loader", "num_frames": num_frames, "batch_size": batch}
    for mode in ("paired", "unpaired"):
        ds, _ = demo_window_datasets(num_frames=num_frames, mode=mode)
        try:
            out[mode] = bench_loader(ds, batch, seconds)
        except Exception as e:
            out[mode] = {"error": repr(e)}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", choices=sorted(SETTINGS), default="small")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--in-process", action="store_true",
                    help="measure in this process (faster; peak memory then includes earlier work)")
    ap.add_argument("--no-loader", action="store_true", help="skip the loader throughput")
    ap.add_argument("--worker", choices=("pretrain", "finetune"), default=None, help=argparse.SUPPRESS)
    ap.add_argument("--config", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--dropout-ab", action="store_true",
                    help="only time the steps with the config's dropout against none, interleaved in this process")
    args = ap.parse_args(argv)
    s = dict(SETTINGS[args.budget])
    for k in ("batch_size", "steps", "repeats", "config"):
        if getattr(args, k) is not None:
            s[k] = getattr(args, k)
    if args.worker:
        print(json.dumps(worker(args.worker, s["config"], s["batch_size"], s["steps"], s["repeats"], args.threads)))
        return 0

    if args.dropout_ab:
        res = {"meta": C.run_meta(args.budget, args.threads, argv, __file__), "settings": s, "steps": {}}
        for kind in ("pretrain", "finetune"):
            row = res["steps"][kind] = dropout_ab(kind, s["config"], s["batch_size"], s["steps"], s["repeats"],
                                                  args.threads)
            print(f"{kind:9s} {row['seconds_per_step_with_dropout']:.3f} s/step with dropout "
                  f"{row['dropout']}, {row['seconds_per_step_without']:.3f} without: "
                  f"x{row['speedup_without']:.2f}", flush=True)
        res["meta"]["load_after"] = C.load_average()
        path = args.out or os.path.join(C.RESULTS_DIR, f"training_speed_{args.budget}_dropout.json")
        C.write_json(res, path)
        print(f"wrote {path}")
        return 0
    torch.set_num_threads(args.threads)
    res = {"meta": C.run_meta(args.budget, args.threads, argv, __file__), "settings": s, "steps": {}}
    for kind in ("pretrain", "finetune"):
        cmd = [sys.executable, os.path.abspath(__file__), "--budget", args.budget, "--threads", str(args.threads),
               "--worker", kind, "--config", s["config"], "--batch-size", str(s["batch_size"]),
               "--steps", str(s["steps"]), "--repeats", str(s["repeats"])]
        load = C.load_average()
        if args.in_process:
            row = worker(kind, s["config"], s["batch_size"], s["steps"], s["repeats"], args.threads)
            row["in_process"] = True
        else:
            out = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
            if out.returncode != 0:
                print(out.stderr[-3000:], file=sys.stderr)
                return 1
            row = json.loads(out.stdout.strip().splitlines()[-1])
        row["load_before"], row["load_after"] = load, C.load_average()
        res["steps"][kind] = row
        print(f"{kind:9s} batch {row['batch_size']} x {row['num_frames']} frames: {row['seconds_per_step']:.2f} s/step, "
              f"{row['samples_per_s']:.1f} samples/s, peak RSS {row['rss_peak_mib']:.0f} MiB "
              f"(+{row['step_memory_mib']:.0f} MiB over the built model; load {load})", flush=True)
    nf = _config(s["config"]).num_frames
    res["loader"] = {} if args.no_loader else loader_throughput(nf, s["batch_size"], s["loader_seconds"])
    res["loader"]["load_after"] = C.load_average()
    print("loader windows/s:", json.dumps({k: v for k, v in res["loader"].items() if k in ("paired", "unpaired")}))
    res["meta"]["load_after"] = C.load_average()
    path = args.out or os.path.join(C.RESULTS_DIR, f"training_speed_{args.budget}.json")
    C.write_json(res, path)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
