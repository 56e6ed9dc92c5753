"""``mpm eval`` / ``train/eval_lifting.py``: per-action and overall MPJPE / P-MPJPE of a lifting model.

Examples::

    mpm eval --model runs/finetune_lift_h36m17/model --data-paths data/h36m17 --split test --flip both
    mpm eval --model mpm-demo/mpm-lift --data demo --occluded-joints 3
    mpm eval --model org/mpm-lift --data demo --occluded-limb --output-json eval.json

--model takes a save_pretrained folder or a Hub model id (from the local cache when offline).
The data section defaults to the model's training_config.yaml (written by the trainer), so tds
and the data set match the training run unless overridden. The errors are computed by the
package's evaluate module (modeling_mpm/evaluate_metric/mpm_pose, also adds N-MPJPE).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict, List, Optional

from . import cli_style, fail

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mpm eval", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="MPMForPoseLifting save_pretrained folder or Hub model id")
    p.add_argument("--config", default=None,
                   help="run config whose data section to use (default: the model's training_config.yaml)")
    p.add_argument("--data", choices=("demo", "prepared", "synthetic"), default=None, help="data source")
    p.add_argument("--data_paths", nargs="+", default=None, help="prepared data set folders or Hub dataset repo ids")
    p.add_argument("--split", default=None, help="split to evaluate (default: the config's test split)")
    p.add_argument("--tds", type=int, default=None, help="temporal downsampling of the 2D window")
    p.add_argument("--eval_stride", type=int, default=None,
                   help="distance between window centres (1 = every frame, the paper's protocol)")
    p.add_argument("--max_windows", type=int, default=None, help="evaluate an evenly spaced subset")
    p.add_argument("--flip", choices=("off", "on", "both"), default="both", help="test-time flip augmentation")
    p.add_argument("--occluded_joints", type=int, default=0,
                   help="hide K random non-root joints per frame in the 2D input (fed as spatial_mask)")
    p.add_argument("--occluded_limb", action="store_true", help="hide one random limb per window instead")
    p.add_argument("--seed", type=int, default=0, help="seed of the occlusion masks")
    p.add_argument("--mode", choices=("center", "all_frames"), default="center")
    p.add_argument("--batch_size", type=int, default=256)
    p.add_argument("--output_json", default=None, help="also write the results here")
    p.add_argument("--no_progress", dest="progress", action="store_false")
    return cli_style(p)


def _data_overrides(args) -> List[str]:
    """The run-config overrides that the data options of ``mpm eval`` give."""
    overrides = ["training.init_from=null", "training.task=lift"]
    if args.data:
        overrides.append(f"data.source={args.data}")
    if args.data_paths:
        overrides += ["data.source=prepared", f"data.paths={json.dumps(args.data_paths)}"]
    for option, key in (("split", "test_split"), ("tds", "tds"), ("eval_stride", "eval_stride")):
        if getattr(args, option):
            overrides.append(f"data.{key}={getattr(args, option)}")
    return overrides + [f"data.max_test_windows={args.max_windows if args.max_windows else 'null'}"]


def _print_extra_metrics(results: Dict[str, Dict]) -> None:
    """N-MPJPE / MPJVE (the ``mpm_pose`` metric) and the MPI-INF-3DHP PCK / AUC lines, where present."""
    for name, r in results.items():
        extra = r.get("metric") or {}
        if extra:
            line = f"{name}: N-MPJPE {extra['n_mpjpe']:.1f} mm"
            if extra.get("mpjve") is not None:
                line += f", MPJVE {extra['mpjve']:.2f} mm/frame (within windows)"
            print(line + " (evaluate module mpm_pose; mean over actions)")
        if r.get("pck") is not None:
            print(f"{name}: PCK@150mm {r['pck']:.1f} %, AUC {r['auc']:.1f} %, MPJPE {r['mpjpe_3dhp']:.1f} mm "
                  f"(MPI-INF-3DHP protocol: 14 joints, frame-weighted over {r['windows']} windows)")


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    from ..training.hub import resolve_model_dir

    try:
        args.model = resolve_model_dir(args.model, "--model")  # a folder, or a Hub model repo id (cached)
    except ValueError as err:
        parser.error(str(err))
    if args.occluded_joints < 0 or args.batch_size <= 0:
        parser.error("--occluded_joints must be >= 0 and --batch_size > 0")

    from ..evaluation import evaluate_lifting, format_table
    from ..metrics import load_pose_metric
    from ..training.config import load_config
    from ..training.data import build_splits

    cfg_path = args.config
    if cfg_path is None and os.path.isfile(os.path.join(args.model, "training_config.yaml")):
        cfg_path = os.path.join(args.model, "training_config.yaml")
    try:
        cfg = load_config(cfg_path, _data_overrides(args))
        if cfg.data.test_split is None:
            cfg = cfg.with_overrides(["data.test_split=test"])
    except (ValueError, TypeError) as err:
        parser.error(str(err))
    if args.split:
        known = _split_names(cfg)
        if known is not None and args.split not in known:
            parser.error(f"--split {args.split!r}: the {cfg.data.source} data has no such split; it has "
                         f"{', '.join(sorted(known))}")
    if args.output_json:  # checked before the (long) evaluation, not after it
        _check_writable_file(parser, args.output_json)

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    from ..loading import load_model_for_task

    try:
        model = load_model_for_task(args.model, "MPMForPoseLifting", "mpm eval")
    except ValueError as err:
        return fail(err)
    model.eval()
    _, _, test = build_splits(cfg.with_overrides(["data.val_split=null"]), model.config.num_frames,
                              model.config.get_skeleton())
    if test is None or len(test) == 0:
        parser.error(f"split {cfg.data.test_split!r} of the {cfg.data.source} data is empty or missing")
    flips = {"off": [False], "on": [True], "both": [False, True]}[args.flip]
    results = {}
    for flip in flips:
        name = "flip" if flip else "no flip"
        results[name] = evaluate_lifting(model, test, batch_size=args.batch_size, flip=flip,
                                         occluded_joints=args.occluded_joints, occluded_limb=args.occluded_limb,
                                         seed=args.seed, mode=args.mode, progress=args.progress,
                                         metric=load_pose_metric())
    occl = (" one limb missing" if args.occluded_limb else
            f" {args.occluded_joints} joints missing per frame" if args.occluded_joints else "")
    label = repr(cfg.data.test_split)
    if cfg.data.source == "demo" and cfg.data.test_split not in (_split_names(cfg) or {cfg.data.test_split}):
        label = f"'validation' (the demo data has no {cfg.data.test_split!r} split)"
    title = (f"{args.model} on {cfg.data.source} split {label}: {len(test)} windows, "
             f"{args.mode} frame{occl}; MPJPE / P-MPJPE in mm (per action: mean over frames; Average: over actions)")
    print(format_table(results, title=title))
    _print_extra_metrics(results)
    if args.output_json:
        from ..atomic import atomic_write_text

        atomic_write_text(args.output_json, json.dumps(results, indent=2))
    return 0


def _split_names(cfg) -> Optional[set]:
    """The split names the configured data has (None when unknown, e.g. a Hub data set)."""
    d = cfg.data
    if d.source == "synthetic":
        return {"train", "validation", "test"}
    if d.source == "demo":
        from ..data.demo import load_demo_dataset

        return set(load_demo_dataset())
    names: set = set()
    from ..data.io import load_dataset_dir

    for path in d.paths:
        if not os.path.isdir(path):
            return None  # a Hub id or a missing folder: loading it says what is wrong
        try:
            ds = load_dataset_dir(path)
        except (OSError, ValueError):
            return None
        names |= set(ds.keys()) if hasattr(ds, "keys") else {d.train_split}
    return names


def _check_writable_file(parser, path: str) -> None:
    if os.path.isdir(path):
        parser.error(f"--output-json {path} is a folder; give a file name such as eval.json")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        parser.error(f"--output-json {path}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        parser.error(f"--output-json {path}: not writable")


if __name__ == "__main__":
    sys.exit(main())
