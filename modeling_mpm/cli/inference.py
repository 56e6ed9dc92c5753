"""``mpm lift``, ``mpm complete`` and ``mpm render``: command-line inference.

Input files are read by :func:`modeling_mpm.data.io.read_keypoints` (``.npy``, ``.npz`` or
COCO-style ``.json``; its module docstring gives the layouts).

Outputs are ``.npz`` files (see each command's ``--help``), written atomically (a temporary file
next to the target, then renamed: an existing result is only ever replaced by a complete one).
Input files are never unpickled. Bad input ends with ``error: <file>: <what is wrong>`` and exit
code 2.
"""

from __future__ import annotations

import argparse
import os
from typing import List, Optional

import numpy as np

from . import cli_style as _cli_style, fail

__all__ = ["lift_main", "complete_main", "render_main"]


def _guess_format(arr: np.ndarray, fmt: Optional[str], path: str) -> str:
    j = arr.shape[1] if arr.ndim == 3 else None
    if j == 17 and path.lower().endswith(".json"):
        j = "coco"
    fmt = fmt or {26: "halpe26", 33: "blazepose", "coco": "coco"}.get(j)
    if fmt:
        return fmt
    raise ValueError(
        f"pass --format (h36m, coco, halpe26 or blazepose) for {path} ({j} joints; 17 joints can be H36M or COCO)"
    )


def _common_2d_args(ap: argparse.ArgumentParser):
    ap.add_argument("--format", dest="keypoint_format", default=None, choices=["h36m", "coco", "halpe26", "blazepose"],
                    help="2D keypoint layout (default: halpe26 for 26 joints, blazepose for 33, coco for "
                         "17-joint JSON)")
    ap.add_argument("--image-size", nargs=2, type=float, metavar=("W", "H"), default=None,
                    help="frame size in pixels (default: 'image_size' stored in an .npz input, or the width and "
                         "height of a COCO JSON's 'images' entries when they all agree)")
    from ..keypoints import DEFAULT_CONFIDENCE_THRESHOLD

    ap.add_argument("--confidence-threshold", type=float, default=DEFAULT_CONFIDENCE_THRESHOLD,
                    help="joints below this confidence are treated as missing "
                         f"(default {DEFAULT_CONFIDENCE_THRESHOLD}, the pipelines' default too)")


def _parser(prog: str, description: str, model_help: Optional[str], output_help: Optional[str] = None):
    """The command's parser with its ``input``, ``--model`` (when ``model_help``) and ``--output``."""
    ap = argparse.ArgumentParser(prog=prog, description=description)
    ap.add_argument("input")
    if model_help:
        ap.add_argument("--model", required=True, help=model_help)
    ap.add_argument("--output", "-o", required=True, help=output_help)
    return ap


def _run(fn) -> int:
    """``fn()``, with bad input and OS errors reported as ``error: ...`` and exit code 2."""
    try:
        return fn()
    except (ValueError, TypeError) as e:
        return fail(e)
    except OSError as e:  # full disk, permissions: the previous output is intact (atomic writes)
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        return fail(f"{where}{e.strerror or e}")


def lift_main(argv: Optional[List[str]] = None) -> int:
    """``mpm lift INPUT --model DIR --output OUT.npz [--format coco] [--image-size W H] ...``"""
    ap = _parser("mpm lift", "Lift 2D keypoints (.npy/.npz/COCO-style .json) to 3D with an MPM lifter. Writes an .npz "
                 "with pose_3d (frames, 17, 3) metres, root-relative, camera frame (x right, y down, z "
                 "forward), valid (frames, 17) and keypoints_2d (frames, 17, 2) pixels (H36M-17 order).",
                 "MPMForPoseLifting folder or Hub id", "output .npz")
    _common_2d_args(ap)
    ap.add_argument("--mode", choices=["seq2frame", "seq2seq"], default="seq2frame")
    ap.add_argument("--batch-size", type=int, default=64, help="windows per forward pass")
    ap.add_argument("--stride", type=int, default=None,
                    help="seq2seq window stride, at most the window length (default: window length)")
    ap.add_argument("--flip", action="store_true", help="test-time flip augmentation")
    ap.add_argument("--match-2d", action="store_true",
                    help="move the 3D onto the 2D in the image plane, keeping the lifter's depth (real footage)")
    ap.add_argument("--focal-length", type=float, default=None,
                    help="pinhole focal length in pixels for --match-2d (default: the image's long side)")
    ap.add_argument("--render", default=None, help="also write an animation (.gif, or .mp4 with ffmpeg or PyAV)")
    ap.add_argument("--no-progress", action="store_true")
    args = _cli_style(ap).parse_args(argv)
    return _run(lambda: _lift(args))


def _read_2d(args):
    """``(keypoints, format, image_size)`` of a 2D input file (format and size from the file when not given)."""
    from ..data.io import read_keypoints

    arr, meta = read_keypoints(args.input)
    fmt = _guess_format(np.asarray(arr), args.keypoint_format, args.input)
    image_size = args.image_size or meta.get("image_size")
    if image_size is None:
        raise ValueError("pass --image-size W H (pixels), store 'image_size' in the .npz input or list the "
                         "images with their width and height in the COCO JSON")
    return arr, fmt, tuple(image_size)


def _lift(args) -> int:
    from transformers import pipeline

    from ..data.io import save_npz_atomic
    from ..loading import load_model_for_task

    arr, fmt, image_size = _read_2d(args)
    pipe = pipeline("pose-lifting", model=load_model_for_task(args.model, "MPMForPoseLifting", "mpm lift"))
    out = pipe(arr, image_size=image_size, keypoint_format=fmt, confidence_threshold=args.confidence_threshold,
               mode=args.mode, batch_size=args.batch_size, stride=args.stride, flip_augmentation=args.flip,
               match_2d=args.match_2d, focal_length=args.focal_length, return_keypoints_2d=True, progress=False if args.no_progress else None)
    args.output = save_npz_atomic(
        args.output, pose_3d=out["pose_3d"], valid=out["valid"], keypoints_2d=out["keypoints_2d"],
        image_size=np.asarray(image_size, dtype=np.float64), joint_names=np.array(pipe.skeleton.joint_names),
        mode=np.array(args.mode))
    print(f"wrote {args.output}: {out['pose_3d'].shape[0]} frames, {int((~out['valid']).sum())} missing joints")
    if args.render:
        from ..render import render_animation

        render_animation(out["pose_3d"], args.render, keypoints_2d=out["keypoints_2d"], image_size=image_size,
                         skeleton=pipe.skeleton)
        print(f"wrote {args.render}")
    return 0


def complete_main(argv: Optional[List[str]] = None) -> int:
    """``mpm complete INPUT --model DIR --output OUT.npz`` (3D with NaN) or ``--from-2d`` (occluded 2D)."""
    ap = _parser("mpm complete", "Complete poses with an MPMForMaskedPoseModeling model. 3D input: (frames, 17, 3) "
                 "metres with NaN at missing joints (.npy, or .npz under 'pose_3d'); writes pose_3d with the "
                 "given joints kept and missing (frames, 17). With --from-2d: 2D keypoints as for "
                 "'mpm lift'; writes pose_3d lifted from the occluded 2D, keypoints_2d completed, valid.",
                 "MPMForMaskedPoseModeling folder or Hub id")
    ap.add_argument("--from-2d", action="store_true", help="input is occluded 2D keypoints")
    _common_2d_args(ap)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--flip", action="store_true")
    args = _cli_style(ap).parse_args(argv)
    return _run(lambda: _complete(args))


def _complete(args) -> int:
    from transformers import pipeline

    from ..data.io import read_npy, read_npz, save_npz_atomic
    from ..loading import load_model_for_task

    if os.path.isdir(args.input):
        raise ValueError(f"{args.input}: is a folder, expected a .npy/.npz/.json file")
    if not os.path.isfile(args.input):
        raise ValueError(f"input file not found: {args.input}")
    model = load_model_for_task(args.model, "MPMForMaskedPoseModeling", "mpm complete")
    pipe = pipeline("pose-completion", model=model)
    if args.from_2d:
        arr, fmt, image_size = _read_2d(args)
        out = pipe(keypoints=arr, image_size=image_size, keypoint_format=fmt,
                   confidence_threshold=args.confidence_threshold, batch_size=args.batch_size,
                   flip_augmentation=args.flip)
        args.output = save_npz_atomic(args.output, **out, image_size=np.asarray(image_size, dtype=np.float64))
    else:
        ext = os.path.splitext(args.input)[1].lower()
        if ext == ".npy":
            pose = read_npy(args.input)
        elif ext == ".npz":
            z = read_npz(args.input)
            if "pose_3d" not in z:
                raise ValueError(f"{args.input}: put the (frames, joints, 3) array under 'pose_3d'")
            pose = z["pose_3d"]
        else:
            raise ValueError("3D input must be .npy or .npz (use --from-2d for 2D keypoints)")
        out = pipe(pose, batch_size=args.batch_size, flip_augmentation=args.flip)
        args.output = save_npz_atomic(args.output, **out)
    print(f"wrote {args.output}: {out['pose_3d'].shape[0]} frames")
    return 0


def render_main(argv: Optional[List[str]] = None) -> int:
    """``mpm render RESULT.npz --output OUT.gif`` (the .npz written by ``mpm lift``)."""
    ap = _parser("mpm render", "Render a 2D + 3D side-by-side animation from the .npz of 'mpm lift' (pose_3d, and "
                 "keypoints_2d / image_size when present). .gif uses Pillow; .mp4 uses ffmpeg, else PyAV; .png "
                 "writes one frame (--frame).", None, ".gif, .mp4 or .png")
    ap.add_argument("--fps", type=float, default=25.0)
    ap.add_argument("--frame-step", type=int, default=1, help="render every n-th frame")
    ap.add_argument("--max-frames", type=int, default=None)
    ap.add_argument("--frame", type=int, default=0, help="frame for .png output")
    args = _cli_style(ap).parse_args(argv)
    if args.max_frames is not None and args.max_frames < 1:
        ap.error(f"--max-frames must be at least 1 (leave it out for every frame), got {args.max_frames}")
    if args.frame_step < 1:
        ap.error(f"--frame-step must be at least 1, got {args.frame_step}")
    if not args.fps > 0 or args.fps == float("inf"):
        ap.error(f"--fps must be a positive number, got {args.fps}")
    return _run(lambda: _render(args))


def _render(args) -> int:
    from ..data.io import read_npz
    from ..render import render_animation, render_frame_png

    if not os.path.exists(args.input):
        raise ValueError(f"input file not found: {args.input}")
    z = read_npz(args.input)
    if "pose_3d" not in z:
        raise ValueError(f"{args.input}: no 'pose_3d' array (expected the output of 'mpm lift')")
    pose = z["pose_3d"]
    kp = z["keypoints_2d"] if "keypoints_2d" in z else None
    size = tuple(z["image_size"].tolist()) if "image_size" in z else None
    skel = "h36m16" if pose.ndim == 3 and pose.shape[1] == 16 else "h36m17"
    if kp is not None and kp.shape[:2] != pose.shape[:2]:
        kp = None
    if args.output.lower().endswith(".png"):
        if not 0 <= args.frame < pose.shape[0]:
            raise ValueError(f"--frame must be in [0, {pose.shape[0] - 1}]")
        render_frame_png(pose[args.frame], args.output, None if kp is None else kp[args.frame], skel, size)
    else:
        render_animation(pose, args.output, kp, skel, size, fps=args.fps, frame_step=args.frame_step,
                         max_frames=args.max_frames)
    print(f"wrote {args.output}")
    return 0
