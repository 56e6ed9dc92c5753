"""Fine-tuning remedies for a pre-trained encoder under a new lifting head, on the demo's held-out split.

    python bench/bench_transfer_finetune.py --pretrained /tmp/demo_final/mpm-pretrain \\
        --variants scratch,enc_lr0.1,lpft150 --seeds 0 1 2 --out /tmp/ft.jsonl

Re-uses the pre-trained folder written by ``mpm demo`` (no pre-training here) and fine-tunes the
lifter with the demo's own run config and budget (``modeling_mpm.demo._run_config``: 700 steps x
64 windows, lr 2e-3, smooth decay), the variant's overrides applied only to the run from
pre-training (``scratch`` is the demo's scratch lifter). Evaluation is the demo's
(``demo._evaluate`` on the held-out split of ``build_splits``; ``plain`` = no occlusion, no flip).
Appends one JSON line per (variant, seed) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

VARIANTS = {
    "pretrained": [],                                           # the authors' transfer (the demo's before LP-FT + rescaling)
    "demo": ["training.freeze_encoder_steps=150", "training.rescale_encoder_stream=true"],  # the demo's transfer now
    "scratch": None,                                            # no init_from
    "enc_lr0.1": ["training.encoder_lr_scale=0.1"],
    "enc_lr0.3": ["training.encoder_lr_scale=0.3"],
    "lpft150": ["training.freeze_encoder_steps=150"],
    "lpft300": ["training.freeze_encoder_steps=300"],
    "lpft150_enc_lr0.3": ["training.freeze_encoder_steps=150", "training.encoder_lr_scale=0.3"],
    "warmup150": ["training.warmup_steps=150"],
}


def run(variant: str, seed: int, pretrained: str, work: str, steps: int) -> dict:
    import torch

    from modeling_mpm.demo import PRESETS, _evaluate, _run_config
    from modeling_mpm.training.data import build_splits
    from modeling_mpm.training.trainer import train

    p = dict(PRESETS["full"], freeze_encoder_steps=0, rescale_encoder_stream=False)  # variants set their own
    p["finetune_steps"] = steps
    out = os.path.join(work, f"{variant}-s{seed}")
    init = None if VARIANTS[variant] is None else pretrained
    cfg = _run_config("lift", out, p, steps, p["finetune_lr"], seed, init_from=init)
    if init is not None:
        cfg = cfg.with_overrides(VARIANTS[variant])
    t = time.time()
    r = train(cfg, progress=False, export=False, overwrite_output_dir=True)
    secs = time.time() - t
    _, val, _ = build_splits(cfg, p["num_frames"], "h36m17")
    res = _evaluate(r.model, val, p["eval_batch_size"], seed)
    return {"variant": variant, "seed": seed, "steps": steps, "overrides": VARIANTS[variant],
            "mpjpe": {k: v["mpjpe"] for k, v in res.items()}, "train_s": secs, "threads": torch.get_num_threads()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pretrained", required=True, help="the mpm-pretrain folder of an `mpm demo` run")
    ap.add_argument("--variants", default="scratch,enc_lr0.1,lpft150", help=f"comma-separated, of {list(VARIANTS)}")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=700)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--work", default="/tmp/transfer_finetune_runs")
    ap.add_argument("--out", required=True, help="JSON lines file (appended)")
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    for v in a.variants.split(","):
        if v not in VARIANTS:
            raise ValueError(f"unknown variant {v!r}; known: {list(VARIANTS)}")
    for seed in a.seeds:
        for v in a.variants.split(","):
            row = run(v, seed, a.pretrained, a.work, a.steps)
            print(json.dumps(row), flush=True)
            with open(a.out, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
