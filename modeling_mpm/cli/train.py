"""Command lines of ``mpm train pretrain|finetune``, ``python -m modeling_mpm.cli.train`` and the
scripts ``train/pretrain.py`` / ``train/finetune.py`` (thin wrappers over
:func:`modeling_mpm.training.train`).

Examples::

    mpm train pretrain --config demo_pretrain --set training.max_steps=200 --resume
    mpm train finetune --task lift --config finetune_lift_h36m17 --init_from org/mpm-pretrain --lr 7e-4
    accelerate launch -m modeling_mpm.cli.train pretrain --config pretrain_h36m17
    ACCELERATE_USE_CPU=1 torchrun --nproc_per_node 2 -m modeling_mpm.cli.train pretrain --config tiny_pretrain
    mpm train configs                       # the shipped configs
    accelerate launch train/pretrain.py --config configs/pretrain_h36m17.yaml   # from a checkout

``--config`` takes a shipped config's name or a YAML path. Any config key can be overridden with
``--set section.key=value`` (repeatable, YAML values); the shortcut flags below are the same as
``--set training.<flag>=...``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional

from ..training.config import TASKS, load_config
from . import cli_style, fail

__all__ = ["build_parser", "pretrain_main", "finetune_main", "train_main", "main", "run"]

_SHORTCUTS = {
    # flag: (config key, type, help)
    "output_dir": ("training.output_dir", str, "output folder (checkpoints, logs, exported model)"),
    "lr": ("training.lr", float, "learning rate"),
    "batch_size": ("training.batch_size", int, "global windows per optimizer step"),
    "epochs": ("training.epochs", int, "epochs (ignored when --max_steps is given)"),
    "max_steps": ("training.max_steps", int, "optimizer steps to run"),
    "seed": ("training.seed", int, "random seed"),
    "mixed_precision": ("training.mixed_precision", str, "no | bf16 | fp16"),
    "gradient_accumulation_steps": ("training.gradient_accumulation_steps", int,
                                    "micro-batches per optimizer step"),
    "checkpoint_every": ("training.checkpoint_every", int, "checkpoint every N optimizer steps"),
    "eval_every": ("training.eval_every", int, "validate every N optimizer steps (default: every epoch)"),
    "init_from": ("training.init_from", str,
                  "save_pretrained folder or Hub model repo id (org/name) to start from (pre-trained encoder)"),
    "data": ("data.source", str, "demo | prepared | synthetic"),
}


def build_parser(prog: str, finetune: bool) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description=("Fine-tune an MPM model (lift, complete3d, occluded2d)." if finetune else
                     "Pre-train MPM with masked 2D + masked 3D pose modeling.")
        + " Configs: a shipped name (`mpm train configs` lists them) or a YAML path; docs/training.md "
          "explains every key.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--config", help="shipped config name (e.g. pretrain_h36m17) or YAML path (default: built-in "
                                    "defaults)")
    if finetune:
        p.add_argument("--task", choices=[t for t in TASKS if t != "pretrain"],
                       help="downstream task (default: the config's training.task)")
        p.add_argument("--pretrained", dest="init_from_alias",
                       help="alias of --init_from: a pre-trained save_pretrained folder or Hub model repo id")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override any config key (repeatable), e.g. --set training.lr=3e-4")
    for flag, (_, typ, help_) in _SHORTCUTS.items():
        p.add_argument(f"--{flag}", type=typ, default=None, help=f"{help_} (= --set {_SHORTCUTS[flag][0]}=...)")
    p.add_argument("--data_paths", nargs="+", default=None,
                   help="prepared data sets: folders or Hub dataset repo ids (= --set data.paths=[...] and "
                        "data.source=prepared)")
    p.add_argument("--resume", nargs="?", const=True, default=None, metavar="CHECKPOINT",
                   help="continue from the newest complete checkpoint in output_dir (or the given folder)")
    p.add_argument("--overwrite_output_dir", action="store_true",
                   help="start over in an output_dir that holds a previous run (its checkpoints, model and "
                        "logs are deleted); without it or --resume a non-empty output_dir is refused")
    p.add_argument("--push_to_hub", metavar="REPO_ID", default=None,
                   help="push the exported model to this Hub repo (checked before training)")
    prog_group = p.add_mutually_exclusive_group()
    prog_group.add_argument("--progress", dest="progress", action="store_true", default=None,
                            help="show a progress bar")
    prog_group.add_argument("--no_progress", dest="progress", action="store_false", help="no progress bar")
    p.add_argument("--print_config", action="store_true", help="print the resolved config and exit")
    return cli_style(p)  # --kebab-case flags, --snake_case aliases


def _overrides(args, finetune: bool, forced_task: Optional[str]) -> List[str]:
    out = []
    for flag, (key, _, _) in _SHORTCUTS.items():
        v = getattr(args, flag)
        if v is not None:
            out.append(f"{key}={json.dumps(v) if isinstance(v, str) else v}")
    if finetune and getattr(args, "init_from_alias", None):
        out.append(f"training.init_from={json.dumps(args.init_from_alias)}")
    if args.data_paths:
        out += ["data.source=prepared", f"data.paths={json.dumps(list(args.data_paths))}"]
    out += list(args.overrides)
    if forced_task:
        out.append(f"training.task={forced_task}")
    return out


def run(argv: Optional[List[str]], finetune: bool, prog: str) -> int:
    parser = build_parser(prog, finetune)
    args = parser.parse_args(argv)
    task = "pretrain" if not finetune else args.task
    try:
        cfg = load_config(args.config, _overrides(args, finetune, task))
    except (ValueError, TypeError) as err:
        parser.error(str(err))
    if finetune and cfg.training.task == "pretrain":
        parser.error("finetune.py needs a downstream task: --task lift | complete3d | occluded2d | refine")
    if args.print_config:
        print(cfg.to_yaml())
        return 0
    from ..training.checkpoint import CheckpointError
    from ..training.output_dir import OutputDirError
    from ..training.trainer import train

    try:
        result = train(cfg, resume=args.resume, push_to_hub=args.push_to_hub, progress=args.progress,
                       overwrite_output_dir=args.overwrite_output_dir)
    except (OutputDirError, CheckpointError) as err:  # a sentence, not a traceback
        return fail(err)
    if result.model_dir:
        print(f"model saved to {result.model_dir}")
        if result.eval_results:
            print(json.dumps({k: {m: v for m, v in r.items() if not isinstance(v, dict)}
                              for k, r in result.eval_results.items()}, indent=2))
    return 0


def pretrain_main(argv: Optional[List[str]] = None) -> int:
    return run(sys.argv[1:] if argv is None else argv, finetune=False, prog="pretrain.py")


def finetune_main(argv: Optional[List[str]] = None) -> int:
    return run(sys.argv[1:] if argv is None else argv, finetune=True, prog="finetune.py")


def _list_configs() -> int:
    from ..training.config import shipped_configs

    for name, path in shipped_configs().items():
        with open(path, "r", encoding="utf-8") as f:
            first = next((line.lstrip("# ").rstrip() for line in f if line.startswith("#")), "")
        print(f"{name:<24} {first}")
    return 0


_TRAIN_USAGE = """usage: mpm train {pretrain,finetune,configs} [options]

  pretrain   masked 2D + 3D pose modeling (see `mpm train pretrain --help`)
  finetune   lift | complete3d | occluded2d (see `mpm train finetune --help`)
  configs    list the configs shipped with the package (--config NAME)

Multi-process / multi-node: accelerate launch -m modeling_mpm.cli.train pretrain --config NAME
(the engine - DDP, FSDP, DeepSpeed - comes from `accelerate config`)."""


def train_main(argv: Optional[List[str]] = None, prog: str = "mpm train") -> int:
    """``mpm train pretrain|finetune|configs ...``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_TRAIN_USAGE)
        return 0
    stage, rest = argv[0], argv[1:]
    if stage == "pretrain":
        return run(rest, finetune=False, prog=f"{prog} pretrain")
    if stage == "finetune":
        return run(rest, finetune=True, prog=f"{prog} finetune")
    if stage == "configs":
        return _list_configs()
    print(f"{prog}: unknown stage {stage!r}\n\n{_TRAIN_USAGE}", file=sys.stderr)
    return 2


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m modeling_mpm.cli.train pretrain|finetune ...`` (and ``accelerate launch -m``)."""
    return train_main(argv, prog="python -m modeling_mpm.cli.train")


if __name__ == "__main__":
    sys.exit(main())
