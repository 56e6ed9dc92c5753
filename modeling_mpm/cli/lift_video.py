"""``mpm lift-video``: video -> MediaPipe BlazePose (offline, one person; the default) -> 3D, or
``--pose-model <ViTPose>``: video -> person detector -> ViTPose -> tracks -> 3D per person
(:func:`modeling_mpm.video.lift_video`)."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from . import cli_style

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from ..video.blazepose import WORLD_LANDMARKS_WEIGHT
    from ..video.pipeline import DEFAULT_DETECTOR, DEFAULT_POSE_MODEL

    ap = argparse.ArgumentParser(
        prog="mpm lift-video",
        description="Video -> 3D: RT-DETR person boxes -> ViTPose 2D -> tracks -> MPM 3D per person; "
                    "--pose-model mediapipe: MediaPipe BlazePose 2D (offline, one person) -> MPM 3D.",
    )
    ap.add_argument("video", help="input video file")
    ap.add_argument("-o", "--output", required=True, help="output .npz (per-track 3D, see lift_video)")
    ap.add_argument("--render", default=None, help="optional .mp4: video + 2D left, 3D right")
    ap.add_argument("--model", default=None,
                    help="MPM lifter: Hub id or folder (default: the general lifter shipped in the package, "
                         "modeling_mpm/pretrained/mpm-lift-general)")
    ap.add_argument("--detector", default=None,
                    help=f"person detector, Hub id or folder (default {DEFAULT_DETECTOR}; not with mediapipe)")
    ap.add_argument("--pose-model", default="mediapipe",
                    help="'mediapipe' (default): BlazePose, offline, one person, no detector; or a ViTPose model, "
                         f"Hub id or folder (e.g. {DEFAULT_POSE_MODEL}: several people, RT-DETR boxes + tracking)")
    ap.add_argument("--batch-size", type=int, default=8, help="frames per detector / 2D model pass")
    ap.add_argument("--detection-threshold", type=float, default=0.5)
    ap.add_argument("--keypoint-threshold", type=float, default=0.3)
    ap.add_argument("--max-people", type=int, default=None, help="people per frame (highest scores)")
    ap.add_argument("--min-track-frames", type=int, default=1, help="drop tracks seen in fewer frames")
    ap.add_argument("--mode", default=None, choices=["seq2seq", "seq2frame"],
                    help="MPM mode (default: seq2frame for lifters with windows up to 81 frames, as the shipped "
                         "one, else seq2seq)")
    ap.add_argument("--no-flip", action="store_true",
                    help="lift the 2D only as given (default: also the mirrored 2D, averaged; about 10 mm better "
                         "on real footage, twice the lifting time)")
    ap.add_argument("--no-match-2d", action="store_true",
                    help="keep the lifter's 3D as it is (default: move it onto the 2D in the image plane, keeping "
                         "its depth; 8 mm better on the real capture, docs/real_footage.md)")
    ap.add_argument("--no-constant-bones", action="store_true",
                    help="keep each frame's bone lengths as lifted (default: each bone its median length over the "
                         "track, before matching; docs/real_footage.md)")
    ap.add_argument("--blazepose-3d-weight", type=float, default=WORLD_LANDMARKS_WEIGHT,
                    help=f"mediapipe only: share of BlazePose's own 3D averaged into the lifted 3D (default "
                         f"{WORLD_LANDMARKS_WEIGHT}: 3 mm better on the real capture; 0 = the lifter's 3D alone)")
    ap.add_argument("--max-frames", type=int, default=None)
    ap.add_argument("--device", default=None, help="torch device, e.g. cuda (default cpu)")
    ap.add_argument("--no-progress", action="store_true")
    return cli_style(ap)


def main(argv: Optional[List[str]] = None) -> int:
    from ..video.pipeline import lift_video

    args = build_parser().parse_args(argv)
    try:
        res = lift_video(args.video, args.model, detector=args.detector, pose_model=args.pose_model,
                         output=args.output, render=args.render, batch_size=args.batch_size,
                         detection_threshold=args.detection_threshold, keypoint_threshold=args.keypoint_threshold,
                         max_people=args.max_people, min_track_frames=args.min_track_frames, mode=args.mode,
                         flip_augmentation=not args.no_flip, match_2d=not args.no_match_2d,
                         constant_bones=not args.no_constant_bones,
                         blazepose_3d_weight=args.blazepose_3d_weight, device=args.device, max_frames=args.max_frames,
                         progress=not args.no_progress)
    except (ValueError, OSError, ImportError) as e:  # OSError: a model not on this machine, offline
        print(f"mpm lift-video: error: {e}", file=sys.stderr)
        return 2
    lens = {t: len(tr["frames"]) for t, tr in res["tracks"].items()}
    print(f"{res['num_frames']} frames, {len(lens)} track(s) {lens} -> {args.output}"
          + (f", {args.render}" if args.render else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
