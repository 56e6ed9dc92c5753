"""Train the general lifter that the package ships (``modeling_mpm/pretrained/mpm-lift-general``).

    python train/general_lifter.py --output-dir runs/general [--threads 2]
    python train/general_lifter.py --output-dir runs/more --continue-from modeling_mpm/pretrained/mpm-lift-general \
        --finetune-steps 5000                                 # train the shipped lifter further

The demo's recipe (``modeling_mpm.demo.PRESETS["general"]``: masked 2D + 3D pre-training with the
lifting pretext, then fine-tuning the lifter from it, both with the ``"real"`` augmentation of
``modeling_mpm/data/augment.py``), longer, on every embedded sequence (``train+validation``: the
held-out demo split is trained on here, so judge this lifter on footage, ``bench/bench_real_capture.py``).
The shipped lifter is that run trained further in 5,000-step stages (``--continue-from``, the last six with
``--omomo``; its model card lists every command). Writes ``OUTPUT/mpm-pretrain`` and ``OUTPUT/mpm-lift-general`` (a ``save_pretrained`` folder);
copy the latter into ``modeling_mpm/pretrained/`` with its measured numbers in the model card.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


#: encoder sizes (``--size``); the demo's is PRESETS["full"]'s
SIZES = {"demo": {}, "large": dict(hidden_size=256, intermediate_size=512, num_layers=4, num_attention_heads=8)}


def _with_workers(cfg, workers: int):
    from modeling_mpm.training.config import RunConfig

    raw = cfg.to_dict()
    raw["training"]["num_workers"] = workers
    return RunConfig(raw)


def _with_omomo(source: str, out: str, repeat: int = 1) -> str:
    """The embedded data (its train and validation splits, as ``train+validation``) plus the OMOMO clips of ``source``
    (each ``repeat`` times, copies named ``<clip>_copy<k>``) as the ``train`` split of a data set written to ``out``
    (validation: the embedded validation split, for the logs)."""
    from datasets import DatasetDict, concatenate_datasets

    from dataset_scripts.omomo_clips import omomo_rows
    from modeling_mpm.data.demo import load_demo_dataset
    from modeling_mpm.data.io import rows_to_dataset, save_dataset

    dd = load_demo_dataset()
    rows = omomo_rows(source)
    rows += [dict(r, sequence=f"{r['sequence']}_copy{k}") for k in range(1, repeat) for r in rows]
    extra = rows_to_dataset(rows, 17).cast(dd["train"].features)
    train = concatenate_datasets([dd["train"], dd["validation"], extra])
    save_dataset(DatasetDict(train=train, validation=dd["validation"]), out, overwrite=True)
    print(f"training data: {', '.join(train['sequence'])} -> {out}", flush=True)
    return out


def _seconds_per_step(p, out: str, seed: int, workers: int = 0, warmup: int = 20, steps: int = 80) -> float:
    """Seconds per pre-training step of recipe ``p`` here, from two short runs (their difference
    leaves out set-up and evaluation)."""
    from modeling_mpm.demo import _run_config
    from modeling_mpm.training.trainer import train

    took = []
    for n in (warmup, steps):
        cfg = _with_workers(_run_config("pretrain", f"{out}-{n}", p, n, p["pretrain_lr"], seed), workers)
        t = time.time()
        train(cfg, progress=False, export=False, overwrite_output_dir=True)
        took.append(time.time() - t)
    return max((took[1] - took[0]) / (steps - warmup), 1e-4)


def main(argv=None) -> int:
    import torch

    from modeling_mpm.demo import NO_DROPOUT, PRESETS, _run_config
    from modeling_mpm.training.export import export_model
    from modeling_mpm.training.trainer import train

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--output-dir", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pretrain-steps", type=int, default=None)
    ap.add_argument("--finetune-steps", type=int, default=None)
    ap.add_argument("--size", choices=sorted(SIZES), default="demo",
                    help="encoder size: 'demo' (the demo's, 1.1M parameters) or 'large' (256 wide, 4 layers)")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--num-workers", type=int, default=0, help="data-loader worker processes (training.num_workers)")
    ap.add_argument("--budget-seconds", type=float, default=None,
                    help="time the first pre-training steps, then give pre-training and fine-tuning half of "
                         "this budget each (overrides --pretrain-steps / --finetune-steps)")
    ap.add_argument("--continue-from", default=None, metavar="FOLDER",
                    help="train a lifting folder (e.g. the shipped one) further: no pre-training, --finetune-steps "
                         "more steps at --continue-lr, every weight trained from the start (no frozen encoder)")
    ap.add_argument("--continue-lr", type=float, default=5e-4, help="with --continue-from: the peak learning rate")
    ap.add_argument("--omomo", default=None, metavar="WHEEL_OR_FOLDER",
                    help="also train on the two OMOMO clips of holosoma-retargeting 0.1.0 (the wheel, fetched with "
                         "`pip download --no-deps holosoma-retargeting==0.1.0`, or a folder of its .pt clips; "
                         "dataset_scripts/omomo_clips.py): the shipped lifter's last six stages used them")
    ap.add_argument("--omomo-repeat", type=int, default=3,
                    help="with --omomo: each clip this many times in the training data (default 3: about a fifth "
                         "of the training windows)")
    ap.add_argument("--no-dropout", action="store_true",
                    help="train without dropout, as mpm demo does (modeling_mpm.demo.NO_DROPOUT; the shipped lifter "
                         "keeps the authors' dropout: a stage without it was mixed, docs/real_footage.md)")
    ap.add_argument("--scratch", action="store_true",
                    help="no pre-training: the lifter trains from scratch for pre-training + fine-tuning steps "
                         "(the compute-matched arm of bench/RESULTS.md section 12)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    p = dict(PRESETS["general"], **SIZES[args.size], **(NO_DROPOUT if args.no_dropout else {}))
    for key in ("pretrain_steps", "finetune_steps", "batch_size"):
        if getattr(args, key) is not None:
            p[key] = getattr(args, key)
    runs = os.path.join(args.output_dir, "runs")
    if args.budget_seconds:
        per_step = _seconds_per_step(p, os.path.join(runs, "timing"), args.seed, args.num_workers)
        p["pretrain_steps"] = p["finetune_steps"] = max(10, int(args.budget_seconds / 2 / per_step))
        print(f"{per_step * 1000:.1f} ms per pre-training step: {p['pretrain_steps']} steps per stage", flush=True)
    if args.continue_from and (args.scratch or args.budget_seconds):
        ap.error("--continue-from goes without --scratch and --budget-seconds")
    if args.omomo:
        if args.omomo_repeat < 1:
            ap.error("--omomo-repeat must be at least 1")
        p.update(data_dir=_with_omomo(args.omomo, os.path.join(runs, "data"), args.omomo_repeat), train_split="train")
    t = time.time()
    steps, pre_dir, lr = p["pretrain_steps"] + p["finetune_steps"], None, p["finetune_lr"]
    if args.continue_from:
        p.update(freeze_encoder_steps=0, rescale_encoder_stream=False)
        steps, pre_dir, lr = p["finetune_steps"], args.continue_from, args.continue_lr
    elif not args.scratch:
        cfg = _with_workers(_run_config("pretrain", os.path.join(runs, "pretrain"), p, p["pretrain_steps"],
                                        p["pretrain_lr"], args.seed), args.num_workers)
        r = train(cfg, progress=False, export=False, overwrite_output_dir=True)
        pre_dir = os.path.join(args.output_dir, "mpm-pretrain")
        export_model(r.model, pre_dir, cfg=cfg, global_step=r.global_step, model_name="mpm-pretrain")
        print(f"pre-training: {p['pretrain_steps']} steps in {time.time() - t:.0f} s", flush=True)
        steps = p["finetune_steps"]
    cfg = _with_workers(_run_config("lift", os.path.join(runs, "lift"), p, steps, lr, args.seed,
                                    init_from=pre_dir), args.num_workers)
    r = train(cfg, progress=False, export=False, overwrite_output_dir=True)
    out = os.path.join(args.output_dir, "mpm-lift-general")
    export_model(r.model, out, cfg=cfg, global_step=r.global_step, model_name="mpm-lift-general")
    print(f"done in {time.time() - t:.0f} s: {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
