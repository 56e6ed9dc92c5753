"""Lifting accuracy and occlusion robustness on real motion (the embedded demo data).

    python bench/bench_accuracy.py --budget small            # the report's run (3 seeds)
    python bench/bench_accuracy.py --budget smoke --out /tmp/acc.json

For every seed, on the same training windows (4 demo sequences, random virtual cameras, flips)
and the same number of optimiser steps (``finetune_steps`` x ``batch_size`` windows):

* ``mpm_pretrained``: MPM pre-trained with masked 2D + 3D pose modeling (``pretrain_steps``),
  encoder transferred to :class:`MPMForPoseLifting`, then fine-tuned;
* ``mpm_scratch``: the same lifter from random weights, fine-tuned with the same budget;
* ``mlp``: single-frame Martinez-style MLP (1024 wide, 2 residual blocks, BatchNorm, dropout 0.5),
  trained on every frame of the same windows;
* ``tcn``: VideoPose3D-style dilated temporal convolutions, receptive field = window.

All lifters train with the same random joint dropout (``common.OCCLUSION_PROB`` of the windows
hide 1..``OCCLUSION_MAX_JOINTS`` random joints per frame); MPM feeds missing joints as its mask
token, the baselines get them zero-filled with a visibility channel.

Evaluation on the held-out sequences (CMU 01_03, climbing seq_3; 4 fixed cameras): centre-frame
MPJPE / P-MPJPE (mm), and MPJPE with missing 2D joints (random joints / whole limbs / whole
frames, see ``common.occlusion_masks``). Writes ``bench/results/accuracy_<budget>.json``; the
pre-trained checkpoints go to ``bench/results/checkpoints/`` (not committed) for
``bench_completion.py``. More seeds can be run separately (``--seeds 3 --out
bench/results/accuracy_small_seed3.json``); ``make_report.py`` merges ``accuracy_<budget>_*.json``
files of the same budget into the main one.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402

MODELS = ("mpm_pretrained", "mpm_scratch", "mlp", "tcn")


def summarize(res: dict, models=MODELS) -> dict:
    """Mean / std over the seeds in ``res["runs"]`` of every number of every model."""
    summ = {}
    for name in models:
        per = [res["runs"][s][name] for s in res["runs"] if name in res["runs"][s]]
        if not per:
            continue
        summ[name] = {
            "mpjpe_mm": C.mean_std([r["clean"]["mpjpe_mm"] for r in per]),
            "p_mpjpe_mm": C.mean_std([r["clean"]["p_mpjpe_mm"] for r in per]),
            "train_seconds": C.mean_std([r["train"]["seconds"] for r in per]),
            "occlusion": {kind: [{"level": row["level"], "missing_fraction": row["missing_fraction"],
                                  "mpjpe_mm": C.mean_std([r["occlusion"][kind][i]["mpjpe_mm"] for r in per])}
                                 for i, row in enumerate(per[0]["occlusion"][kind])]
                          for kind in per[0]["occlusion"]},
            "parameters": per[0]["parameters"],
        }
    return summ


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", choices=sorted(C.BUDGETS), default="small")
    ap.add_argument("--seeds", default=None, help="comma list overriding the budget's seeds")
    ap.add_argument("--pretrain-steps", type=int, default=None)
    ap.add_argument("--finetune-steps", type=int, default=None)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None, help="JSON path (default bench/results/accuracy_<budget>.json)")
    ap.add_argument("--save-checkpoints", dest="save_checkpoints", action="store_true", default=None)
    ap.add_argument("--no-checkpoints", dest="save_checkpoints", action="store_false")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    b = dict(C.BUDGETS[args.budget])
    if args.seeds:
        b["seeds"] = [int(s) for s in args.seeds.split(",")]
    if args.pretrain_steps is not None:
        b["pretrain_steps"] = args.pretrain_steps
    if args.finetune_steps is not None:
        b["finetune_steps"] = args.finetune_steps
    models = args.models.split(",")
    out_path = args.out or os.path.join(C.RESULTS_DIR, f"accuracy_{args.budget}.json")
    save_ckpt = args.save_checkpoints if args.save_checkpoints is not None else args.budget != "smoke"
    res = {"meta": C.run_meta(args.budget, args.threads, argv, __file__), "budget": b,
           "occlusion_training": {"prob": C.OCCLUSION_PROB, "max_joints": C.OCCLUSION_MAX_JOINTS},
           "runs": {}}
    t_all = time.perf_counter()
    for seed in b["seeds"]:
        train, val = C.demo_data(b["num_frames"], seed, b["max_val_windows"])
        res["validation_windows"] = int(val["pose_2d"].shape[0])
        res["train_windows"] = len(train)
        runs = {}
        pre = None
        if "mpm_pretrained" in models:
            pre, plog = C.pretrain_mpm(b, seed, train, b["pretrain_steps"])
            res.setdefault("pretrain", {})[str(seed)] = plog
            print(f"[seed {seed}] pretrain {b['pretrain_steps']} steps: {plog['seconds']:.0f} s, "
                  f"loss {plog['loss_curve'][0][1]:.3f} -> {plog['loss_curve'][-1][1]:.3f}", flush=True)
            if save_ckpt:
                pre.save_pretrained(os.path.join(C.RESULTS_DIR, "checkpoints", f"pretrain_{args.budget}_seed{seed}"))
        for name in models:
            if name == "mpm_pretrained":
                model, kind = C.lifter_from(pre, b, seed), "mpm"
            elif name == "mpm_scratch":
                model, kind = C.lifter_from(None, b, seed), "mpm"
            else:
                model, kind = C.build_baseline(name, b, seed), name
            log = C.finetune(model, kind, b, seed, train, b["finetune_steps"])
            pred = C.centre_predictor(model, kind)
            clean = C.evaluate_lifter(pred, val, None, b["eval_batch"])
            curves = C.robustness_curves(pred, val, b["eval_batch"])
            runs[name] = {"train": log, "clean": clean, "occlusion": curves,
                          "parameters": sum(p.numel() for p in model.parameters())}
            print(f"[seed {seed}] {name:15s} {log['seconds']:6.0f} s train, MPJPE {clean['mpjpe_mm']:.1f} mm, "
                  f"P-MPJPE {clean['p_mpjpe_mm']:.1f} mm; 30% joints missing "
                  f"{curves['joints'][3]['mpjpe_mm'] if len(curves['joints']) > 3 else float('nan'):.1f} mm",
                  flush=True)
        res["runs"][str(seed)] = runs
        res["meta"]["load_after"] = C.load_average()
        res["meta"]["wall_seconds"] = time.perf_counter() - t_all
        C.write_json(res, out_path)       # after every seed, so a cut-off run keeps its seeds
    res["summary"] = summarize(res, models)
    res["meta"]["load_after"] = C.load_average()
    res["meta"]["wall_seconds"] = time.perf_counter() - t_all
    C.write_json(res, out_path)
    print(f"wrote {out_path} ({res['meta']['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
