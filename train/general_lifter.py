"""Train the general lifter that the package ships (``modeling_mpm/pretrained/mpm-lift-general``).

    python train/general_lifter.py --output-dir runs/general [--threads 2]

The demo's recipe (``modeling_mpm.demo.PRESETS["general"]``: masked 2D + 3D pre-training with the
lifting pretext, then fine-tuning the lifter from it, both with the ``"real"`` augmentation of
``modeling_mpm/data/augment.py``), longer, on every embedded sequence (``train+validation``: the
held-out demo split is trained on here, so judge this lifter on footage, ``bench/bench_real_capture.py``).
Writes ``OUTPUT/mpm-pretrain`` and ``OUTPUT/mpm-lift-general`` (a ``save_pretrained`` folder);
copy the latter into ``modeling_mpm/pretrained/`` with its measured numbers in the model card.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None) -> int:
    import torch

    from modeling_mpm.demo import PRESETS, _run_config
    from modeling_mpm.training.export import export_model
    from modeling_mpm.training.trainer import train

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--output-dir", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pretrain-steps", type=int, default=None)
    ap.add_argument("--finetune-steps", type=int, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    p = dict(PRESETS["general"])
    for key in ("pretrain_steps", "finetune_steps"):
        if getattr(args, key) is not None:
            p[key] = getattr(args, key)
    runs = os.path.join(args.output_dir, "runs")
    t = time.time()
    cfg = _run_config("pretrain", os.path.join(runs, "pretrain"), p, p["pretrain_steps"], p["pretrain_lr"], args.seed)
    r = train(cfg, progress=False, export=False, overwrite_output_dir=True)
    pre_dir = os.path.join(args.output_dir, "mpm-pretrain")
    export_model(r.model, pre_dir, cfg=cfg, global_step=r.global_step, model_name="mpm-pretrain")
    print(f"pre-training: {p['pretrain_steps']} steps in {time.time() - t:.0f} s", flush=True)
    cfg = _run_config("lift", os.path.join(runs, "lift"), p, p["finetune_steps"], p["finetune_lr"], args.seed,
                      init_from=pre_dir)
    r = train(cfg, progress=False, export=False, overwrite_output_dir=True)
    out = os.path.join(args.output_dir, "mpm-lift-general")
    export_model(r.model, out, cfg=cfg, global_step=r.global_step, model_name="mpm-lift-general")
    print(f"done in {time.time() - t:.0f} s: {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
