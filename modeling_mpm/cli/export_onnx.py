"""``mpm export-onnx``: export a lifting model to ONNX (:func:`modeling_mpm.export.export_onnx`)."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from . import cli_style, fail

__all__ = ["main"]


def main(argv: Optional[List[str]] = None) -> int:
    from .. import export

    ap = argparse.ArgumentParser(prog="mpm export-onnx", description=export.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="MPMForPoseLifting folder or Hub id")
    ap.add_argument("--output", "-o", required=True, help="output .onnx")
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--no-mask", action="store_true", help="no spatial_mask input")
    ap.add_argument("--no-check", action="store_true", help="skip the onnxruntime comparison")
    ap.add_argument("--atol", type=float, default=1e-4)
    ap.add_argument("--int8", default=None, metavar="PATH",
                    help="also write a dynamically int8-quantised copy of the graph (onnxruntime) to PATH")
    args = cli_style(ap).parse_args(argv)
    from ..loading import load_model_for_task

    try:
        model = load_model_for_task(args.model, "MPMForPoseLifting", "mpm export-onnx")
    except ValueError as e:
        return fail(e)
    info = export.export_onnx(model, args.output, opset=args.opset, with_mask=not args.no_mask,
                              check=not args.no_check, atol=args.atol)
    msg = f"wrote {args.output}"
    if info:
        msg += f" (onnxruntime vs PyTorch max abs diff {info['max_abs_diff']:.2e})"
    if args.int8:
        export.quantize_onnx_int8(args.output, args.int8)
        msg += f"; int8 graph {args.int8}"
    print(msg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
