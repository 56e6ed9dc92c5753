"""``mpm convert``: convert a checkpoint of the authors' MPM code into a ``save_pretrained``
folder (:func:`modeling_mpm.convert_official.convert_official_checkpoint`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional

from . import cli_style, fail

__all__ = ["main", "check_replaceable_model_dir"]


def check_replaceable_model_dir(path: str) -> None:
    """Refuse an output folder whose replacement would lose work: anything but a missing folder,
    an empty one or an MPM ``save_pretrained`` folder (``config.json`` with ``model_type: mpm``),
    and never the working directory or a folder above it."""
    if not os.path.lexists(path):
        return
    if not os.path.isdir(path) or os.path.islink(path):
        raise ValueError(f"{path} exists and is not a folder; choose another output folder")
    from ..data.io import holds_working_directory

    if holds_working_directory(path):
        raise ValueError(f"{path} is the working directory or holds it; choose a new output folder")
    entries = os.listdir(path)
    if not entries:
        return
    try:
        with open(os.path.join(path, "config.json"), encoding="utf-8") as f:
            is_mpm = json.load(f).get("model_type") == "mpm"
    except (OSError, ValueError, AttributeError, RecursionError):
        is_mpm = False
    if not is_mpm:
        raise ValueError(f"{path} holds files that are not an MPM model folder ({len(entries)} entries); "
                         "choose a new output folder or remove it yourself")


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
    from ..atomic import atomic_write_dir, recover_replaced

    try:
        check_replaceable_model_dir(args.output_dir)
        # a previous run killed between its two renames left the old folder under .<name>.old-<hex>
        for line in recover_replaced(args.output_dir):
            print(f"note: {line}", file=sys.stderr)
        check_replaceable_model_dir(args.output_dir)
        model = convert_official_checkpoint(args.checkpoint, args.heads, args.strides, args.refine)
    except ValueError as e:
        return fail(e)
    # an existing model folder is replaced only when the new one is complete
    atomic_write_dir(args.output_dir, model.save_pretrained)
    n = sum(p.numel() for p in model.parameters())
    print(f"wrote {type(model).__name__} ({n:,} parameters) to {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
