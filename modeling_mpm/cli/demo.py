"""``mpm demo``: pre-train, fine-tune and evaluate on the embedded demo data
(:func:`modeling_mpm.demo.run_demo`)."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from . import cli_style, fail

__all__ = ["main"]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mpm demo",
        description="Pre-train, fine-tune (pre-trained vs scratch) and evaluate MPM on the embedded demo "
                    "data, offline on the CPU (11-14 minutes on 2 cores, docs/training.md; --quick: seconds).")
    parser.add_argument("--output-dir", default="mpm-demo", help="where models, results.json and example.png go")
    parser.add_argument("--quick", action="store_true", help="tiny budget (for tests / a smoke run)")
    parser.add_argument("--pretrain-steps", type=int, default=None, help="override the pre-training steps")
    parser.add_argument("--finetune-steps", type=int, default=None, help="override the fine-tuning steps (each lifter)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: min(2, cores), 1 when the machine is busy)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    args = cli_style(parser).parse_args(sys.argv[1:] if argv is None else argv)
    for flag in ("threads", "pretrain_steps", "finetune_steps"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1, got {value}")
    from ..demo import run_demo

    try:
        run_demo(args.output_dir, quick=args.quick, pretrain_steps=args.pretrain_steps,
                 finetune_steps=args.finetune_steps, seed=args.seed, threads=args.threads, progress=args.progress)
    except (ValueError, TypeError) as e:
        return fail(e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
