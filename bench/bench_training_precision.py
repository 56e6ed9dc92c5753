"""One training step against the authors' code, bf16 autocast training, torch.compile (CPU).

    python bench/bench_training_precision.py --official /tmp/MPM --threads 2 --batch-size 16 \
        --rounds 3 [--compile] --json bench/results/training_precision.json
    python bench/bench_training_precision.py --skip-speed --threads 1 --accuracy-steps 300 \
        --json bench/results/training_precision_accuracy.json

Speed (paper configuration: 17 joints, 243 frames, 4 layers, width 256, strides 3x5), in one
process, interleaved rounds, same weights (the authors' fine-tuning ``Model`` from ``--official``
with random weights, converted with :mod:`modeling_mpm.convert_official`):

* ``authors_fp32``: their model in train mode, loss = MPJPE(centre frame) + MPJPE(all frames)
  (their fine-tuning losses), backward, Adam (amsgrad) step;
* ``mpm_fp32``: ``MPMForPoseLifting(pose_2d, labels=...)`` (same two losses), same optimiser;
* ``mpm_bf16_autocast``: the same under ``torch.autocast("cpu", dtype=torch.bfloat16)`` (weights,
  gradients and optimiser state float32);
* ``mpm_fp32_compiled`` (``--compile``): ``torch.compile(model)``; the compile time is reported.

A step's time is the best of ``--steps`` steps in a round; the speed-up is the median over rounds of
the authors' step time / the variant's step time in the same round.

Accuracy cost (``--accuracy-steps N > 0``): the demo lifter configuration (27 frames, width 128,
2 layers) trained by the package trainer (``training.mixed_precision: no`` / ``bf16``) from the same
seed on the same batches (demo training split, random virtual cameras) for N steps, then the
centre-frame MPJPE / P-MPJPE (mm) on the held-out demo validation windows, in fp32
(``evaluate_lifting``).
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import common as C  # noqa: E402
from bench_precision import PAPER, official_lifter  # noqa: E402

from modeling_mpm.convert_official import convert_official_state_dict  # noqa: E402
from modeling_mpm.modeling_mpm import mpjpe_loss  # noqa: E402


def _batch(batch: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    T, J = PAPER["frames"], PAPER["n_joints"]
    x = torch.cumsum(torch.randn(batch, T, J, 2, generator=g) * 0.004, 1) + torch.randn(batch, 1, J, 2, generator=g) * 0.2
    y = torch.cumsum(torch.randn(batch, T, J, 3, generator=g) * 0.003, 1) + torch.randn(batch, 1, J, 3, generator=g) * 0.2
    y[..., 0, :] = 0
    return x, y


def authors_step(model, opt, x, y):
    c = PAPER["frames"] // 2
    centre, all_frames = model(x.permute(0, 3, 1, 2).unsqueeze(-1))
    centre = centre[..., 0].permute(0, 2, 3, 1)        # (B, 1, J, 3)
    all_frames = all_frames[..., 0].permute(0, 2, 3, 1)  # (B, T, J, 3)
    loss = mpjpe_loss(centre, y[:, c:c + 1]) + mpjpe_loss(all_frames, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


def mpm_step(model, opt, x, y, autocast: bool = False):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        loss = model(pose_2d=x, labels=y).loss
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


def speed(args, res):
    official = official_lifter(args.official, seed=0).train()
    sd = {"module." + k: v for k, v in official.state_dict().items()}
    mpm = convert_official_state_dict(sd, reduce_strides=PAPER["stride_num"])
    # the authors' loss weights: all frames and centre frame with weight 1
    mpm.config.lift_all_frames_loss_weight = 1.0
    mpm.config.lift_center_loss_weight = 1.0
    mpm.config.zero_root_output = False
    x, y = _batch(args.batch_size)
    variants = {"authors_fp32": (official, lambda m, o: authors_step(m, o, x, y))}
    variants["mpm_fp32"] = (mpm.train(), lambda m, o: mpm_step(m, o, x, y))
    variants["mpm_bf16_autocast"] = (copy.deepcopy(mpm).train(), lambda m, o: mpm_step(m, o, x, y, autocast=True))
    if args.compile:
        compiled = torch.compile(copy.deepcopy(mpm).train())
        variants["mpm_fp32_compiled"] = (compiled, lambda m, o: mpm_step(m, o, x, y))
    opts = {k: C.package_optimizer(m) for k, (m, _) in variants.items()}  # the trainer's Adam for every arm
    first = {}
    for k, (m, step) in list(variants.items()):  # warm-up (and compilation)
        t = time.perf_counter()
        try:
            first[k] = step(m, opts[k])
        except Exception as e:  # torch.compile needs a C++ toolchain; record why it did not run
            if k != "mpm_fp32_compiled":
                raise
            res["compile_error"] = f"{type(e).__name__}: {str(e)[:300]}"
            print(f"torch.compile failed: {res['compile_error']}")
            del variants[k]
            continue
        res.setdefault("first_step_seconds", {})[k] = time.perf_counter() - t
    res["first_step_loss"] = first
    times = {k: [] for k in variants}
    for r in range(args.rounds):
        for k, (m, step) in variants.items():
            best = float("inf")
            for _ in range(args.steps):
                t = time.perf_counter()
                step(m, opts[k])
                best = min(best, time.perf_counter() - t)
            times[k].append(best)
        print(f"round {r + 1}/{args.rounds} (load {C.load_average()}): "
              + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()), flush=True)
    res["train_step"] = {}
    for k, ts in times.items():
        ratios = [a / b for a, b in zip(times["authors_fp32"], ts)]
        res["train_step"][k] = {"seconds": ts, "samples_per_s_best": args.batch_size / min(ts),
                                "speedup_vs_authors_median": statistics.median(ratios)}
    print(f"\ntraining step, batch {args.batch_size} x 243 frames, {args.threads} threads:")
    for k, row in res["train_step"].items():
        print(f"  {k:<20s} {row['samples_per_s_best']:7.2f} samples/s  x{row['speedup_vs_authors_median']:.2f} "
              f"authors (first step {res['first_step_seconds'][k]:.1f} s, loss {first[k]:.4f})")


def accuracy(args, res):
    """fp32 against bf16 autocast training (``training.mixed_precision``) of the demo-size lifter by the
    package trainer, same seed and batches; evaluated in fp32 with ``evaluate_lifting``."""
    b = dict(C.BUDGETS["small"], batch_size=args.accuracy_batch_size, max_val_windows=args.val_windows)
    val = C.validation_windows(b)
    out = {}
    for name, mp in (("fp32", "no"), ("bf16_autocast", "bf16")):
        model, log = C.train_run("lift", b, 0, args.accuracy_steps, training={"mixed_precision": mp})
        ev = C.lifting_errors(model.float(), val, b, joints=(), limb=False)["clean"]
        out[name] = {**ev, "train_seconds": log["seconds"], "final_loss": log["loss_curve"][-1][1]}
        print(f"  {name:<14s} MPJPE {ev['mpjpe_mm']:.1f} mm, P-MPJPE {ev['p_mpjpe_mm']:.1f} mm, "
              f"{log['seconds']:.0f} s for {args.accuracy_steps} steps (load {C.load_average()})", flush=True)
    res["accuracy"] = {"config": "demo lifter (27 frames, width 128, 2 layers), package trainer",
                       "steps": args.accuracy_steps, "batch_size": args.accuracy_batch_size, "val_windows": len(val),
                       "results": out}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official", default=None, help="path to a checkout of the authors' MPM repository (speed part)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=2, help="timed steps per variant and round (best)")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile(model)")
    ap.add_argument("--accuracy-steps", type=int, default=0)
    ap.add_argument("--accuracy-batch-size", type=int, default=64)
    ap.add_argument("--val-windows", type=int, default=1024)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if args.official is None and not args.skip_speed:
        ap.error("--official is needed for the speed part (or pass --skip-speed)")
    torch.set_num_threads(args.threads)
    res = C.run_meta("paper" if not args.skip_speed else "demo", args.threads, argv,
                     script="bench/bench_training_precision.py")
    if not args.skip_speed:
        res.update(batch_size=args.batch_size, rounds=args.rounds, config=PAPER)
        speed(args, res)
    if args.accuracy_steps > 0:
        accuracy(args, res)
    res["load_after"] = C.load_average()
    if args.json:
        C.write_json(res, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
