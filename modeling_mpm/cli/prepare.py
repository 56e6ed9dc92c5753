"""``mpm prepare <source>``: convert released pose data to one-row-per-sequence data sets
(``save_to_disk`` folders or Parquet shards).

Sub-commands:
  h36m    Human3.6M, VideoPose3D npz layout (data_3d_h36m.npz [+ data_2d_h36m_{gt,cpn_ft_h36m_dbb}.npz])
  3dhp    MPI-INF-3DHP, P-STMO npz layout (data_train_3dhp.npz / data_test_3dhp.npz)
  amass   AMASS: the MPM authors' amass.npz, or plain joint-position npz files
  bvh     motion capture: BVH files and climbing-style .npy files (alias: mocap)
  demo    rebuild the embedded demo data set from data/mocap

Every sub-command takes --output, --format {arrow,parquet}, --overwrite and --push-to-hub REPO_ID
(only pushes when given; fails at once with a clear message when HF_HUB_OFFLINE=1).

What is trusted: nothing in the input files is run. The released h36m / 3dhp / amass npz files
store pickled dicts; they are read with a restricted unpickler that builds only builtin
containers (dict, list, tuple, set), numbers, strings, bytes and NumPy arrays, and refuses any
other object (a crafted file gets "refused to load <module>.<name>", exit code 2). Plain npz/npy
arrays are read without unpickling; BVH, JSON and camera files are parsed as text.
--overwrite replaces only a folder that is a prepared data set (written by this command);
interrupted writes (.<name>.tmp-* / .<name>.old-* next to --output) are cleaned up or restored
on the next run. Bad input ends with "error: <file>: <what is wrong>" and exit code 2.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import List, Optional

from . import cli_style, fail

__all__ = ["main", "build_parser"]


def _common(p: argparse.ArgumentParser, default_output: Optional[str] = None):
    p.add_argument("--output", required=default_output is None, default=default_output,
                   help="output folder (written atomically: temp folder next to it, then renamed)")
    p.add_argument("--format", choices=("arrow", "parquet"), default="arrow",
                   help="arrow = save_to_disk folder (default); parquet = <split>/part-*.parquet shards")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing output folder, only if it is a prepared data set")
    p.add_argument("--push_to_hub", metavar="REPO_ID", default=None,
                   help="also push the result to this Hub data set repository (needs network and a login)")
    p.add_argument("--public", action="store_true", help="with --push_to_hub: create a public repository")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mpm prepare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="{h36m,3dhp,amass,bvh,mocap,demo}")

    trust = ("The npz files hold pickled dicts: they are read with a restricted unpickler that builds only "
             "builtin containers, numbers, strings and NumPy arrays; any other object is refused and nothing "
             "in the file is run.")
    p = sub.add_parser("h36m", help="Human3.6M (VideoPose3D npz layout)", description=trust)
    p.add_argument("--positions_3d", required=True,
                   help="data_3d_h36m.npz (pickled dict; read with the restricted unpickler, see above)")
    p.add_argument("--positions_2d", default=None,
                   help="data_2d_h36m_gt.npz or data_2d_h36m_cpn_ft_h36m_dbb.npz (pickled dict; restricted "
                        "unpickler; default: project the 3D)")
    p.add_argument("--num_joints", type=int, choices=(17, 16), default=17)
    p.add_argument("--cameras_json", default=None,
                   help="camera JSON overriding the built-in calibration (see modeling_mpm.cameras.load_camera_json)")
    _common(p)

    p = sub.add_parser("3dhp", help="MPI-INF-3DHP (P-STMO npz layout)", description=trust)
    p.add_argument("--train", default=None, help="data_train_3dhp.npz (pickled dict; restricted unpickler)")
    p.add_argument("--test", default=None, help="data_test_3dhp.npz (pickled dict; restricted unpickler)")
    p.add_argument("--num_joints", type=int, choices=(17, 16), default=17)
    p.add_argument("--legacy", action="store_true",
                   help="reproduce the MPM authors' head/neck mapping and 2D/1000 (16 joints only)")
    _common(p)

    p = sub.add_parser("amass", help="AMASS (authors' amass.npz or plain joint npz)", description=trust)
    p.add_argument("--input", required=True,
                   help="amass.npz (authors; pickled dict, restricted unpickler) or a joints npz file / folder "
                        "(plain arrays, never unpickled)")
    p.add_argument("--layout", choices=("authors", "joints"), default="authors")
    p.add_argument("--up_axis", choices=("y", "z"), default="z", help="joints layout: up axis of the files")
    p.add_argument("--fps", type=float, default=50.0, help="authors: assumed rate; joints: target rate")
    _common(p)

    for name in ("bvh", "mocap"):
        p = sub.add_parser(name, help="BVH / climbing .npy motion capture -> H36M-17 world motion")
        p.add_argument("inputs", nargs="+", help="files or folders (*.bvh, *.npy with joint_names.json)")
        p.add_argument("--fps", type=float, default=50.0, help="target frame rate")
        p.add_argument("--scale", type=float, default=None,
                       help="BVH units -> metres (default: cgspeed CMU 2.54/0.45/100)")
        p.add_argument("--up_axis", choices=("y", "z"), default="y", help="BVH up axis")
        p.add_argument("--skip_frames", type=int, default=0, help="leading BVH frames to drop (rest pose)")
        p.add_argument("--npy_fps", type=float, default=120.0, help="frame rate of .npy captures")
        p.add_argument("--validation", nargs="*", default=[], help="sequence names (file stems) for validation")
        _common(p)

    p = sub.add_parser("demo", help="rebuild the embedded demo data set")
    p.add_argument("--mocap_dir", required=True, help="folder of the source recordings (CMU BVH files, climbing .npy)")
    p.add_argument("--fps", type=float, default=50.0)
    _common(p, default_output="modeling_mpm/demo_data")
    return cli_style(parser)  # --kebab-case flags, --snake_case aliases


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    a = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if a.command is None:
        parser.print_help()
        return 2
    for flag in ("fps", "scale", "npy_fps"):
        v = getattr(a, flag, None)
        if v is not None and not (math.isfinite(v) and v > 0):
            parser.error(f"--{flag.replace('_', '-')} must be a finite number > 0, got {v}")
    if getattr(a, "skip_frames", 0) < 0:
        parser.error(f"--skip-frames must be >= 0, got {a.skip_frames}")
    from ..data import io

    if a.push_to_hub:
        from ..data.dataset_card import licence_warning
        if a.public and licence_warning(a.command):
            print(licence_warning(a.command), file=sys.stderr)
        try:
            io._check_push_allowed()  # fail before the (possibly long) conversion
        except io.HubOfflineError as e:
            return fail(e)
    try:
        with io.dataset_write_lock(a.output):  # one writer at a time: a second one is refused at once
            return _prepare(a, parser)
    except io.DatasetLockError as e:
        return fail(e)


def _prepare(a, parser) -> int:
    from ..data import io, sources

    try:
        if a.command == "h36m":
            cameras = None
            if a.cameras_json:
                from ..cameras import load_camera_json
                cameras = load_camera_json(a.cameras_json)
            dd = sources.prepare_h36m(a.positions_3d, a.positions_2d, a.num_joints, cameras=cameras)
        elif a.command == "3dhp":
            dd = sources.prepare_mpi3dhp(a.train, a.test, a.num_joints, a.legacy)
        elif a.command == "amass":
            kw = {"fps": a.fps} if a.layout == "authors" else {"up_axis": a.up_axis, "target_fps": a.fps}
            dd = sources.prepare_amass(a.input, a.layout, **kw)
        elif a.command in ("bvh", "mocap"):
            kw = dict(target_fps=a.fps, bvh_up_axis=a.up_axis, bvh_skip_frames=a.skip_frames, npy_fps=a.npy_fps)
            if a.scale is not None:
                kw["bvh_scale"] = a.scale
            dd = sources.prepare_mocap(a.inputs, validation=a.validation, **kw)
        elif a.command == "demo":
            from dataset_scripts.build_demo import build_demo
            dd = build_demo(a.mocap_dir, None, a.fps)
        else:  # pragma: no cover - argparse guards this
            parser.error(f"unknown command {a.command}")
    except (ValueError, TypeError, FileNotFoundError) as e:
        return fail(e)
    for split in [k for k, v in dd.items() if len(v) == 0]:
        print(f"note: split {split!r} has no sequences and is not written", file=sys.stderr)
        del dd[split]
    if not dd:
        return fail("the inputs gave no sequences; nothing written")
    for line in io.clean_interrupted_writes(a.output):
        print(f"note: {line}", file=sys.stderr)
    try:
        io.save_dataset(dd, a.output, format=a.format, overwrite=a.overwrite)
    except (FileExistsError, ValueError) as e:
        return fail(e)
    summary = ", ".join(f"{k}: {len(v)} sequences" for k, v in dd.items())
    print(f"wrote {a.output} ({a.format}; {summary})")
    if a.push_to_hub:
        from ..data.dataset_card import push_dataset_with_card
        push_dataset_with_card(dd, a.push_to_hub, a.command, private=not a.public)  # data + dataset card
        print(f"pushed to https://huggingface.co/datasets/{a.push_to_hub}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
