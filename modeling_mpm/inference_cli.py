"""``mpm lift``, ``mpm complete`` and ``mpm render``: command-line inference.

Input files (``read_keypoints``):

* ``.npy``: one array ``(frames, joints, 2 or 3)`` (pixels, optional confidence channel).
* ``.npz``: the array under ``keypoints`` (else ``keypoints_2d``, ``pose_2d``, ``poses``, or the
  only array); optional ``scores``/``confidence`` ``(frames, joints)`` appended as confidences and
  ``image_size`` ``(width, height)``.
* ``.json``: COCO-style keypoint results of 2D detectors (a list of ``{"image_id", "category_id",
  "keypoints": [x, y, c] * K, "score"}``, or a dict with such a list under ``"annotations"``).
  Only people (``category_id`` 1 or absent) are read; one person per frame: the highest
  ``score`` for each ``image_id``. Frames are ordered by ``image_id``; with integer ids, ids
  missing between the first and the last (frames without a detection) become empty frames (all
  joints missing, filled from their neighbours by the lifter), so the output has one frame per id.

  Integer ids are bounded: at most :data:`MAX_JSON_FRAMES` frames between the first and the last.

Outputs are ``.npz`` files (see each command's ``--help``), written atomically (a temporary file
next to the target, then renamed: an existing result is only ever replaced by a complete one).
Input files are never unpickled. Bad input ends with ``error: <file>: <what is wrong>`` and exit
code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict, List, Optional, Tuple

import numpy as np

from .cli import cli_style as _cli_style

__all__ = ["read_keypoints", "read_coco_json", "lift_main", "complete_main", "render_main", "MAX_JSON_FRAMES"]

#: most frames a COCO JSON may span from its first to its last integer image id (missing ids
#: become empty frames; this bounds the memory a file with ids 0 and 10**9 would ask for)
MAX_JSON_FRAMES = 1_000_000


def read_coco_json(path: str, fill_gaps: bool = True) -> Tuple[np.ndarray, List]:
    """COCO-style keypoint results -> ``((frames, K, 3) float64 x, y, confidence, image ids)``.

    One person per ``image_id`` (highest ``score``; ``category_id`` 1 or absent); see the module
    docstring for ordering and gaps.
    """
    with open(path, "rb") as f:
        try:
            data = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from None
    if isinstance(data, dict):
        data = data.get("annotations")
    if not isinstance(data, list):
        raise ValueError(
            f"{path}: expected a list of COCO keypoint results [{{'image_id', 'keypoints': [x, y, c, ...], "
            "'score'}, ...] (or a dict with 'annotations')"
        )
    best: Dict = {}
    k_len = None
    for i, det in enumerate(data):
        if not isinstance(det, dict) or "keypoints" not in det or "image_id" not in det:
            raise ValueError(f"{path}: entry {i} needs 'image_id' and 'keypoints'")
        if det.get("category_id", 1) != 1:
            continue
        kps = det["keypoints"]
        if not isinstance(kps, list) or len(kps) % 3 or not kps:
            raise ValueError(f"{path}: entry {i}: 'keypoints' must be a flat list [x, y, c] * K")
        if k_len is None:
            k_len = len(kps)
        elif len(kps) != k_len:
            raise ValueError(f"{path}: entry {i} has {len(kps) // 3} keypoints, earlier ones {k_len // 3}")
        score = det.get("score", 1.0)
        if score is None:
            score = 1.0
        if isinstance(score, bool) or not isinstance(score, (int, float)) or score != score:
            raise ValueError(f"{path}: entry {i}: 'score' must be a number, got {score!r}")
        score = float(score)
        iid = det["image_id"]
        if isinstance(iid, bool) or not isinstance(iid, (int, float, str)):
            raise ValueError(f"{path}: entry {i}: 'image_id' must be an integer or a string, got {iid!r}")
        if iid not in best or score > best[iid][0]:
            best[iid] = (score, kps)
    if not best:
        raise ValueError(f"{path}: no person keypoints found")
    ids = list(best)
    integer = all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
    ids = sorted(ids) if integer else sorted(ids, key=str)
    if integer and fill_gaps:
        span = ids[-1] - ids[0] + 1
        if span > MAX_JSON_FRAMES:
            raise ValueError(
                f"{path}: integer image ids span {span:,} frames ({ids[0]} to {ids[-1]}) for {len(best):,} "
                f"detections; ids between them become empty frames, which is limited to {MAX_JSON_FRAMES:,} "
                "frames to bound memory; number the images by frame index")
        ids = list(range(ids[0], ids[-1] + 1))
    k = k_len // 3
    out = np.full((len(ids), k, 3), np.nan)
    for n, iid in enumerate(ids):
        if iid in best:
            try:
                out[n] = np.asarray(best[iid][1], dtype=np.float64).reshape(k, 3)
            except (TypeError, ValueError):
                raise ValueError(f"{path}: image_id {iid!r}: keypoints are not numbers") from None
        else:
            out[n, :, 2] = 0.0
    return out, ids


def read_keypoints(path: str) -> Tuple[np.ndarray, Dict]:
    """Read 2D keypoints from ``.npy``, ``.npz`` or COCO-style ``.json``.

    Returns ``(array (frames, joints, 2 or 3), meta)`` with ``meta`` possibly holding
    ``image_size`` and ``image_ids``.
    """
    from .data.io import read_npy, read_npz

    if os.path.isdir(path):
        raise ValueError(f"{path}: is a folder, expected a keypoint file")
    if not os.path.isfile(path):
        raise ValueError(f"input file not found: {path}")
    ext = os.path.splitext(path)[1].lower()
    meta: Dict = {}
    if ext == ".json":
        arr, ids = read_coco_json(path)
        meta["image_ids"] = ids
        return arr, meta
    if ext == ".npy":
        return read_npy(path), meta
    if ext == ".npz":
        z = read_npz(path)
        keys = list(z.keys())
        for key in ("keypoints", "keypoints_2d", "pose_2d", "poses"):
            if key in z:
                arr = z[key]
                break
        else:
            cands = [k for k in keys if k not in ("image_size", "scores", "confidence")]
            if len(cands) != 1:
                raise ValueError(f"{path}: put the (frames, joints, 2|3) array under 'keypoints' (found {keys})")
            arr = z[cands[0]]
        for key in ("scores", "confidence"):
            if key in z and arr.ndim == 3 and arr.shape[-1] == 2:
                conf = z[key]
                if conf.shape != arr.shape[:2]:
                    raise ValueError(f"{path}: '{key}' must be (frames, joints) = {arr.shape[:2]}, got {conf.shape}")
                arr = np.concatenate([arr, conf[..., None]], -1)
                break
        if "image_size" in z:
            meta["image_size"] = tuple(float(v) for v in np.asarray(z["image_size"]).reshape(-1))
        return arr, meta
    raise ValueError(f"unsupported input {path!r}: use .npy, .npz or COCO-style .json")


def _guess_format(arr: np.ndarray, fmt: Optional[str], path: str) -> str:
    if fmt:
        return fmt
    j = arr.shape[1] if arr.ndim == 3 else None
    if j == 26:
        return "halpe26"
    if j == 17 and path.lower().endswith(".json"):
        return "coco"
    raise ValueError(
        f"pass --format (h36m, coco or halpe26) for {path} ({j} joints; 17 joints can be H36M or COCO)"
    )


def _load_model(model_dir: str, cls_name: str, command: str = "this command"):
    from .loading import load_model_for_task

    return load_model_for_task(model_dir, cls_name, command)


def _common_2d_args(ap: argparse.ArgumentParser):
    ap.add_argument("--format", dest="keypoint_format", default=None, choices=["h36m", "coco", "halpe26"],
                    help="2D keypoint layout (default: halpe26 for 26 joints, coco for 17-joint JSON)")
    ap.add_argument("--image-size", nargs=2, type=float, metavar=("W", "H"), default=None,
                    help="frame size in pixels (default: 'image_size' stored in an .npz input)")
    from .keypoints import DEFAULT_CONFIDENCE_THRESHOLD

    ap.add_argument("--confidence-threshold", type=float, default=DEFAULT_CONFIDENCE_THRESHOLD,
                    help=f"joints below this confidence are treated as missing (default {DEFAULT_CONFIDENCE_THRESHOLD}, "
                         "the pipelines' default too)")


def _run(fn, argv) -> int:
    try:
        return fn(argv)
    except (ValueError, TypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # full disk, permissions: the previous output is intact (atomic writes)
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        print(f"error: {where}{e.strerror or e}", file=sys.stderr)
        return 2


def lift_main(argv: Optional[List[str]] = None) -> int:
    """``mpm lift INPUT --model DIR --output OUT.npz [--format coco] [--image-size W H] ...``"""
    ap = argparse.ArgumentParser(
        prog="mpm lift",
        description="Lift 2D keypoints (.npy/.npz/COCO-style .json) to 3D with an MPM lifter. Writes an .npz "
                    "with pose_3d (frames, 17, 3) metres, root-relative, camera frame (x right, y down, z "
                    "forward), valid (frames, 17) and keypoints_2d (frames, 17, 2) pixels (H36M-17 order).",
    )
    ap.add_argument("input")
    ap.add_argument("--model", required=True, help="MPMForPoseLifting folder or Hub id")
    ap.add_argument("--output", "-o", required=True, help="output .npz")
    _common_2d_args(ap)
    ap.add_argument("--mode", choices=["seq2frame", "seq2seq"], default="seq2frame")
    ap.add_argument("--batch-size", type=int, default=64, help="windows per forward pass")
    ap.add_argument("--stride", type=int, default=None,
                    help="seq2seq window stride, at most the window length (default: window length)")
    ap.add_argument("--flip", action="store_true", help="test-time flip augmentation")
    ap.add_argument("--render", default=None, help="also write an animation (.gif, or .mp4 with ffmpeg)")
    ap.add_argument("--no-progress", action="store_true")
    args = _cli_style(ap).parse_args(argv)
    return _run(lambda _: _lift(args), None)


def _lift(args) -> int:
    from transformers import pipeline

    from .data.io import save_npz_atomic

    arr, meta = read_keypoints(args.input)
    fmt = _guess_format(np.asarray(arr), args.keypoint_format, args.input)
    image_size = args.image_size or meta.get("image_size")
    if image_size is None:
        raise ValueError("pass --image-size W H (pixels) or store 'image_size' in the .npz input")
    model = _load_model(args.model, "MPMForPoseLifting", "mpm lift")
    pipe = pipeline("pose-lifting", model=model)
    out = pipe(arr, image_size=tuple(image_size), keypoint_format=fmt, confidence_threshold=args.confidence_threshold,
               mode=args.mode, batch_size=args.batch_size, stride=args.stride, flip_augmentation=args.flip,
               return_keypoints_2d=True, progress=False if args.no_progress else None)
    args.output = save_npz_atomic(
        args.output, pose_3d=out["pose_3d"], valid=out["valid"], keypoints_2d=out["keypoints_2d"],
        image_size=np.asarray(image_size, dtype=np.float64), joint_names=np.array(pipe.skeleton.joint_names),
        mode=np.array(args.mode))
    print(f"wrote {args.output}: {out['pose_3d'].shape[0]} frames, {int((~out['valid']).sum())} missing joints")
    if args.render:
        from .render import render_animation

        render_animation(out["pose_3d"], args.render, keypoints_2d=out["keypoints_2d"], image_size=image_size,
                         skeleton=pipe.skeleton)
        print(f"wrote {args.render}")
    return 0


def complete_main(argv: Optional[List[str]] = None) -> int:
    """``mpm complete INPUT --model DIR --output OUT.npz`` (3D with NaN) or ``--from-2d`` (occluded 2D)."""
    ap = argparse.ArgumentParser(
        prog="mpm complete",
        description="Complete poses with an MPMForMaskedPoseModeling model. 3D input: (frames, 17, 3) metres "
                    "with NaN at missing joints (.npy, or .npz under 'pose_3d'); writes pose_3d with the "
                    "given joints kept and missing (frames, 17). With --from-2d: 2D keypoints as for "
                    "'mpm lift'; writes pose_3d lifted from the occluded 2D, keypoints_2d completed, valid.",
    )
    ap.add_argument("input")
    ap.add_argument("--model", required=True, help="MPMForMaskedPoseModeling folder or Hub id")
    ap.add_argument("--output", "-o", required=True)
    ap.add_argument("--from-2d", action="store_true", help="input is occluded 2D keypoints")
    _common_2d_args(ap)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--flip", action="store_true")
    args = _cli_style(ap).parse_args(argv)
    return _run(lambda _: _complete(args), None)


def _complete(args) -> int:
    from transformers import pipeline

    from .data.io import read_npy, read_npz, save_npz_atomic

    if os.path.isdir(args.input):
        raise ValueError(f"{args.input}: is a folder, expected a .npy/.npz/.json file")
    if not os.path.isfile(args.input):
        raise ValueError(f"input file not found: {args.input}")
    model = _load_model(args.model, "MPMForMaskedPoseModeling", "mpm complete")
    pipe = pipeline("pose-completion", model=model)
    if args.from_2d:
        arr, meta = read_keypoints(args.input)
        fmt = _guess_format(np.asarray(arr), args.keypoint_format, args.input)
        image_size = args.image_size or meta.get("image_size")
        if image_size is None:
            raise ValueError("pass --image-size W H (pixels) or store 'image_size' in the .npz input")
        out = pipe(keypoints=arr, image_size=tuple(image_size), keypoint_format=fmt,
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
    ap = argparse.ArgumentParser(
        prog="mpm render",
        description="Render a 2D + 3D side-by-side animation from the .npz of 'mpm lift' (pose_3d, and "
                    "keypoints_2d / image_size when present). .gif uses Pillow; .mp4 needs ffmpeg; .png "
                    "writes one frame (--frame).",
    )
    ap.add_argument("input")
    ap.add_argument("--output", "-o", required=True, help=".gif, .mp4 or .png")
    ap.add_argument("--fps", type=float, default=25.0)
    ap.add_argument("--frame-step", type=int, default=1, help="render every n-th frame")
    ap.add_argument("--max-frames", type=int, default=None)
    ap.add_argument("--frame", type=int, default=0, help="frame for .png output")
    args = _cli_style(ap).parse_args(argv)
    return _run(lambda _: _render(args), None)


def _render(args) -> int:
    from .render import render_animation, render_frame_png

    from .data.io import read_npz

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
