"""Lifting accuracy and occlusion robustness on real motion (the embedded demo data), trained and
evaluated by the package (``modeling_mpm.training.trainer.train``, ``modeling_mpm.evaluation``).

    python bench/bench_accuracy.py --budget small            # the report's run (3 seeds)
    python bench/bench_accuracy.py --budget smoke --out /tmp/acc.json

For every seed, on the same training windows (4 demo sequences, random virtual cameras, flips)
and the same number of optimiser steps (``finetune_steps`` x ``batch_size`` windows, the
package's Adam with amsgrad and smooth decay, ``common.run_config``):

* ``mpm_pretrained``: ``training.task: pretrain`` (masked 2D + 3D pose modeling, ``pretrain_steps``),
  then ``training.task: lift`` with ``init_from`` the pre-trained model;
* ``mpm_scratch``: the same lifter from random weights, fine-tuned with the same budget.

Both lifters train with the lifting task's random missing joints (``common.OCCLUSION_PROB`` of the
windows hide 1..``OCCLUSION_MAX_JOINTS`` random joints per frame, fed as ``spatial_mask``). The
single-frame MLP and temporal-conv baselines (``bench/baselines.py``) are not trained here: the
package trainer trains MPM models only.

Evaluation on the held-out sequences (CMU 01_03, climbing seq_3; 4 fixed cameras) with
``evaluate_lifting``: centre-frame MPJPE / P-MPJPE (mm), and MPJPE with ``k`` random joints missing
in every frame (``common.OCCLUDED_JOINTS``) or one whole limb missing. Writes
``bench/results/accuracy_<budget>.json``; the pre-trained models go to
``bench/results/checkpoints/`` (not committed) for ``bench_completion.py``. More seeds can be run
separately (``--seeds 3 --out bench/results/accuracy_small_seed3.json``); ``make_report.py``
merges ``accuracy_<budget>_*.json`` files of the same budget into the main one.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402

MODELS = ("mpm_pretrained", "mpm_scratch")


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
            "occlusion": {
                "joints": [{"joints": row["joints"], "missing_fraction": row["missing_fraction"],
                            "mpjpe_mm": C.mean_std([r["occlusion"]["joints"][i]["mpjpe_mm"] for r in per])}
                           for i, row in enumerate(per[0]["occlusion"]["joints"])],
                "limb": {"missing_fraction": per[0]["occlusion"]["limb"]["missing_fraction"],
                         "mpjpe_mm": C.mean_std([r["occlusion"]["limb"]["mpjpe_mm"] for r in per])}},
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
           "training": {k: v for k, v in C.run_config("lift", b, 0, "-", 1).training.items()
                        if k in ("lr_schedule", "lr_decay", "amsgrad", "weight_decay", "max_grad_norm")},
           "runs": {}}
    t_all = time.perf_counter()
    val = C.validation_windows(b)
    res["validation_windows"] = len(val)
    for seed in b["seeds"]:
        runs = {}
        pre_dir = None
        with tempfile.TemporaryDirectory() as tmp:
            if "mpm_pretrained" in models:
                pre, plog = C.train_run("pretrain", b, seed, b["pretrain_steps"])
                res.setdefault("pretrain", {})[str(seed)] = plog
                print(f"[seed {seed}] pretrain {plog['steps']} steps: {plog['seconds']:.0f} s, "
                      f"loss {plog['loss_curve'][0][1]:.3f} -> {plog['loss_curve'][-1][1]:.3f}", flush=True)
                pre_dir = (os.path.join(C.RESULTS_DIR, "checkpoints", f"pretrain_{args.budget}_seed{seed}")
                           if save_ckpt else os.path.join(tmp, "pretrain"))
                pre.save_pretrained(pre_dir)
            for name in models:
                init = pre_dir if name == "mpm_pretrained" else None
                model, log = C.train_run("lift", b, seed, b["finetune_steps"], init_from=init)
                ev = C.lifting_errors(model, val, b)
                runs[name] = {"train": log, "clean": ev["clean"], "occlusion": ev["occlusion"],
                              "parameters": sum(p.numel() for p in model.parameters())}
                j3 = [r for r in ev["occlusion"]["joints"] if r["joints"] == 5]
                print(f"[seed {seed}] {name:15s} {log['seconds']:6.0f} s train, "
                      f"MPJPE {ev['clean']['mpjpe_mm']:.1f} mm, "
                      f"P-MPJPE {ev['clean']['p_mpjpe_mm']:.1f} mm; 5 joints missing "
                      f"{j3[0]['mpjpe_mm'] if j3 else float('nan'):.1f} mm; one limb missing "
                      f"{ev['occlusion']['limb']['mpjpe_mm']:.1f} mm", flush=True)
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
