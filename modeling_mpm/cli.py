"""The ``mpm`` command line: a thin dispatcher over the library.

Each sub-command lives in its own module and exposes ``main(argv) -> int``; they are imported
lazily so that ``mpm --help`` stays fast.
"""

from __future__ import annotations

import importlib
import sys
from typing import List, Optional

# name -> (module, help text)
SUBCOMMANDS = {
    "demo": ("modeling_mpm.demo", "run the whole pipeline on the embedded real-motion demo data"),
    "lift": ("modeling_mpm.inference_cli", "lift 2D keypoints (npy/npz/COCO JSON) to 3D"),
    "complete": ("modeling_mpm.inference_cli", "complete 3D poses with missing joints"),
    "render": ("modeling_mpm.inference_cli", "render a 2D+3D side-by-side animation"),
    "lift-video": ("modeling_mpm.video.lift_video", "video -> detector -> ViTPose -> tracks -> 3D per person"),
    "export-onnx": ("modeling_mpm.export", "export a lifting model to ONNX"),
    "convert": ("modeling_mpm.convert_official", "convert an official MPM checkpoint"),
    "eval": ("modeling_mpm.evaluation_cli", "evaluate a lifting model on a prepared data set"),
    "prepare": ("dataset_scripts.cli", "prepare Human3.6M / MPI-INF-3DHP / AMASS / BVH data sets"),
}


def _usage() -> str:
    lines = ["usage: mpm <command> [options]", "", "commands:"]
    for name, (_, text) in SUBCOMMANDS.items():
        lines.append(f"  {name:<12} {text}")
    lines.append("")
    lines.append("Run 'mpm <command> --help' for the options of one command.")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"mpm: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    entry = getattr(module, f"{name.replace('-', '_')}_main", None) or getattr(module, "main")
    return int(entry(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
