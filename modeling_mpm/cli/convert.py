"""``mpm convert``: convert a checkpoint of the authors' MPM code into a ``save_pretrained``
folder (:func:`modeling_mpm.convert_official.convert_official_checkpoint`)."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from . import cli_style

__all__ = ["main"]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mpm convert",
        description="Convert an official MPM checkpoint into a save_pretrained folder.",
    )
    parser.add_argument("checkpoint", help="authors' .pth/.bin file (pre-training or fine-tuned lifter)")
    parser.add_argument("output_dir", help="folder to write (config.json, model.safetensors, code)")
    parser.add_argument("--heads", type=int, default=8, help="attention heads (not visible in the weights; 8)")
    parser.add_argument("--strides", type=int, nargs="+", default=None, help="reduce strides of a lifter")
    parser.add_argument("--refine", default=None, help="the lifter's refine module (*_refine.pth, post-refine stage)")
    args = cli_style(parser).parse_args(argv)
    from ..convert_official import convert_official_checkpoint
    from ..training.checkpoint import atomic_write_dir

    try:
        model = convert_official_checkpoint(args.checkpoint, args.heads, args.strides, args.refine)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    atomic_write_dir(args.output_dir, model.save_pretrained)  # an existing folder is replaced only when complete
    n = sum(p.numel() for p in model.parameters())
    print(f"wrote {type(model).__name__} ({n:,} parameters) to {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
