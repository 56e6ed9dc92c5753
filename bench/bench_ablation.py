"""Ablations of the pre-training, measured by the lifting error after fine-tuning; every run is
the package's trainer (``common.train_run``) with one ``model.*`` key changed.

    python bench/bench_ablation.py --budget small            # the report's run (seed 0)
    python bench/bench_ablation.py --budget smoke --out /tmp/abl.json

Variants (everything else as ``bench_accuracy.py``'s ``mpm_pretrained``: same data, pre-training
steps, fine-tuning steps and missing-joint augmentation):

* mask ratios: temporal mask ratio x spatially masked joints per frame, the paper's 0.6 / 5 against
  0.3 / 5, 0.8 / 5, 0.6 / 2, 0.6 / 9;
* pretext tasks: masked 2D only (``loss_weight_3d: 0``), masked 3D only (``loss_weight_2d: 0``),
  both (the paper's 5 : 2);
* masks per sample (this package's default) against one mask shared by the batch (the authors'
  code, ``share_mask_across_batch: true``);
* ``none``: no pre-training (the lifter from scratch with the fine-tuning budget);
* ``dropped_frames_as_mask_token``: temporally dropped frames enter the joint embedding as the mask
  token instead of with their real coordinates (the authors' code and the package default;
  ``MPMConfig.dropped_frames_input``).

Reports centre-frame MPJPE / P-MPJPE (mm) on the held-out sequences, MPJPE with 5 of the 17 2D
joints missing in every frame (``evaluate_lifting(occluded_joints=5)``), and the final
pre-training loss. Writes ``bench/results/ablation_<budget>.json``.
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

PAPER = dict(temporal_mask_ratio=0.6, spatial_mask_joints=5)
# name -> (pretext, model.* keys of the pre-training run); None = no pre-training
VARIANTS = {
    "paper_0.6_5_both": ("both", PAPER),
    "tmr0.3_smj5": ("both", dict(temporal_mask_ratio=0.3, spatial_mask_joints=5)),
    "tmr0.8_smj5": ("both", dict(temporal_mask_ratio=0.8, spatial_mask_joints=5)),
    "tmr0.6_smj2": ("both", dict(temporal_mask_ratio=0.6, spatial_mask_joints=2)),
    "tmr0.6_smj9": ("both", dict(temporal_mask_ratio=0.6, spatial_mask_joints=9)),
    "pretext_2d_only": ("2d", dict(PAPER, loss_weight_3d=0.0)),
    "pretext_3d_only": ("3d", dict(PAPER, loss_weight_2d=0.0)),
    "shared_batch_mask": ("both", dict(PAPER, share_mask_across_batch=True)),
    "none": None,
    "dropped_frames_as_mask_token": ("both", dict(PAPER, dropped_frames_input="mask_token")),
}
GROUPS = {
    "mask ratio": ["paper_0.6_5_both", "tmr0.3_smj5", "tmr0.8_smj5", "tmr0.6_smj2", "tmr0.6_smj9"],
    "pretext": ["paper_0.6_5_both", "pretext_2d_only", "pretext_3d_only", "none"],
    "mask sharing": ["paper_0.6_5_both", "shared_batch_mask"],
    "dropped-frame embedding": ["paper_0.6_5_both", "dropped_frames_as_mask_token"],
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", choices=sorted(C.BUDGETS), default="small")
    ap.add_argument("--seeds", default="0", help="comma list of seeds (default 0)")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--tag", default="", help="suffix of the output file (ablation_<budget><tag>.json)")
    ap.add_argument("--pretrain-steps", type=int, default=None)
    ap.add_argument("--finetune-steps", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    b = dict(C.BUDGETS[args.budget])
    b["seeds"] = [int(s) for s in args.seeds.split(",")]
    if args.pretrain_steps is not None:
        b["pretrain_steps"] = args.pretrain_steps
    if args.finetune_steps is not None:
        b["finetune_steps"] = args.finetune_steps
    names = args.variants.split(",")
    out_path = args.out or os.path.join(C.RESULTS_DIR, f"ablation_{args.budget}{args.tag}.json")
    res = {"meta": C.run_meta(args.budget, args.threads, argv, __file__), "budget": b, "groups": GROUPS, "runs": {}}
    t_all = time.perf_counter()
    val = C.validation_windows(b)
    for seed in b["seeds"]:
        for name in names:
            spec = VARIANTS[name]
            row = {"variant": name}
            with tempfile.TemporaryDirectory() as tmp:
                init = None
                if spec is not None:
                    pretext, over = spec
                    pre, plog = C.train_run("pretrain", b, seed, b["pretrain_steps"], model=over)
                    row.update(pretext=pretext, config=dict(over), pretrain_final_loss=plog["loss_curve"][-1][1],
                               pretrain_seconds=plog["seconds"])
                    init = os.path.join(tmp, "pretrain")
                    pre.save_pretrained(init)
                lifter, log = C.train_run("lift", b, seed, b["finetune_steps"], init_from=init)
            ev = C.lifting_errors(lifter, val, b, joints=(5,), limb=False)
            row.update(ev["clean"])
            row["mpjpe_5_joints_missing_mm"] = ev["occlusion"]["joints"][0]["mpjpe_mm"]
            row["finetune_seconds"] = log["seconds"]
            row["finetune_final_loss"] = log["loss_curve"][-1][1]
            res["runs"].setdefault(str(seed), {})[name] = row
            print(f"[seed {seed}] {name:18s} MPJPE {row['mpjpe_mm']:.1f} mm, P-MPJPE {row['p_mpjpe_mm']:.1f} mm, "
                  f"5 joints missing {row['mpjpe_5_joints_missing_mm']:.1f} mm", flush=True)
            res["meta"]["load_after"] = C.load_average()
            res["meta"]["wall_seconds"] = time.perf_counter() - t_all
            C.write_json(res, out_path)
    res["summary"] = {
        name: {k: C.mean_std([res["runs"][s][name][k] for s in res["runs"] if name in res["runs"][s]])
               for k in ("mpjpe_mm", "p_mpjpe_mm", "mpjpe_5_joints_missing_mm")}
        for name in names
    }
    res["meta"]["wall_seconds"] = time.perf_counter() - t_all
    C.write_json(res, out_path)
    print(f"wrote {out_path} ({res['meta']['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
