"""Reading transformers' ViTPose output (``VitPoseImageProcessor.post_process_pose_estimation``), NumPy only.

Per image a list over people of ``{"keypoints": (17, 2) x, y pixels, "scores": (17,), "labels": (17,), "bbox": (4,)
x, y, w, h pixels}`` (torch tensors or NumPy arrays); a video gives a list over frames of such lists. Keypoints are
COCO-17 or COCO-WholeBody-133 (its first 17, the COCO body joints, are kept); confidences are the ``scores``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["is_pose_estimation_output", "person_keypoints", "frames_to_detections", "pose_estimation_to_tracks",
           "lift_pose_estimation"]


def _np(x) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch tensor, without importing torch
        x = x.detach().cpu()
        x = (x.float() if str(x.dtype) in ("torch.float16", "torch.bfloat16") else x).numpy()
    return np.asarray(x, dtype=np.float64)


def is_pose_estimation_output(obj) -> bool:
    """True for a list over frames of lists over people of dicts with ``"keypoints"`` (at least one person); a
    flat list of person dicts (one image) raises a ValueError."""
    if not isinstance(obj, (list, tuple)) or len(obj) == 0:
        return False
    if all(isinstance(f, Mapping) for f in obj):
        if all("keypoints" in f for f in obj):
            raise ValueError("got a flat list of person dicts; pass the post-processing output of a video: a list "
                             "over frames of lists over people, e.g. [frame0_people, frame1_people, ...] (for one "
                             "image: [people])")
        return False
    if not all(isinstance(f, (list, tuple)) for f in obj):
        return False
    people = [p for f in obj for p in f]
    if not people or not all(isinstance(p, Mapping) for p in people):
        return False
    if not all("keypoints" in p for p in people):
        missing = [sorted(p) for p in people if "keypoints" not in p][0]
        raise ValueError(f"a person dict has no 'keypoints' entry (keys: {missing}); expected ViTPose "
                         "post-processing output with 'keypoints' (17, 2) and 'scores' (17,)")
    return True


def person_keypoints(person: Mapping) -> Tuple[np.ndarray, str]:
    """One ViTPose person dict -> ``((17, 3) x, y pixels + confidence (1 without ``scores``), "coco")``."""
    kp = _np(person["keypoints"])
    if kp.ndim != 2 or kp.shape[1] != 2:
        raise ValueError(f"ViTPose 'keypoints' must be (joints, 2) pixels, got shape {kp.shape}")
    if kp.shape[0] not in (17, 133):
        raise ValueError(f"ViTPose 'keypoints' has {kp.shape[0]} joints; supported: 17 (COCO) and 133 "
                         "(COCO-WholeBody, first 17 = COCO body)")
    scores = person.get("scores")
    conf = np.ones(kp.shape[0]) if scores is None else _np(scores).reshape(-1)
    if conf.shape[0] != kp.shape[0]:
        raise ValueError(f"ViTPose 'scores' has {conf.shape[0]} values for {kp.shape[0]} keypoints")
    return np.concatenate([kp[:17], conf[:17, None]], axis=1), "coco"


def _box_xyxy(person: Mapping, kp: np.ndarray) -> np.ndarray:
    """``bbox`` (x, y, w, h) -> (x0, y0, x1, y1); without it, the box around the finite keypoints."""
    if person.get("bbox") is not None:
        b = _np(person["bbox"]).reshape(-1)
        if b.shape[0] != 4:
            raise ValueError(f"ViTPose 'bbox' must be 4 numbers (x, y, width, height), got {b.shape[0]}")
        return np.array([b[0], b[1], b[0] + b[2], b[1] + b[3]])
    pts = kp[np.isfinite(kp[:, :2]).all(1), :2]
    if len(pts) == 0:
        return np.full(4, np.nan)
    return np.concatenate([pts.min(0), pts.max(0)])


def frames_to_detections(frames: Sequence[Sequence[Mapping]]) -> List[Dict[str, np.ndarray]]:
    """Per frame: ``{"keypoints": (people, 17, 3), "boxes": (people, 4) x0, y0, x1, y1 pixels}``."""
    out = []
    for people in frames:
        kps = [person_keypoints(p)[0] for p in people]
        boxes = [_box_xyxy(p, k) for p, k in zip(people, kps)]
        out.append({"keypoints": np.stack(kps) if kps else np.zeros((0, 17, 3)),
                    "boxes": np.stack(boxes) if boxes else np.zeros((0, 4))})
    return out


def pose_estimation_to_tracks(frames, tracker=None, min_track_frames: int = 1) -> Dict[int, Dict[str, np.ndarray]]:
    """Group the people of ViTPose output over frames into tracks (:func:`.tracking.group_tracks`): ``{track_id:
    {"frames": (n,) first..last, "keypoints": (n, 17, 3) COCO pixels + confidence (NaN where not detected),
    "detected": (n,) bool, "boxes": (n, 4)}}``."""
    from .tracking import group_tracks, track_boxes

    dets = frames_to_detections(frames)
    ids = track_boxes([d["boxes"] for d in dets], tracker=tracker)
    return group_tracks(dets, ids, min_track_frames=min_track_frames)


def single_person_keypoints(frames) -> Optional[np.ndarray]:
    """``(frames, 17, 3)`` COCO array (NaN in frames without anyone) when no frame has several people, else None."""
    if any(len(people) > 1 for people in frames):
        return None
    out = np.full((len(frames), 17, 3), np.nan)
    for t, people in enumerate(frames):
        if people:
            out[t] = person_keypoints(people[0])[0]
    return out


def lift_pose_estimation(pipe, frames, track_people: Optional[bool] = None, tracker=None, **kwargs):
    """``pipeline("pose-lifting")`` on ViTPose post-processing output (COCO keypoints).

    ``track_people=None``: at most one person per frame -> one result dict, as for the equivalent ``(frames, 17,
    3)`` COCO array; several people in some frame -> a list of per-track results (each with ``track_id`` and
    ``frames`` ``(n,)``, first..last). ``True``: always the list; ``False``: ValueError for several people.
    """
    fmt = kwargs.pop("keypoint_format", None)
    if fmt is not None and str(fmt).lower().replace("-", "").replace("_", "") not in ("coco", "coco17"):
        raise ValueError(f"ViTPose output is COCO-17 keypoints; got keypoint_format={fmt!r} (leave it out)")
    if track_people is not True:
        single = single_person_keypoints(frames)
        if single is not None:
            return pipe(single, keypoint_format="coco", **kwargs)
        if track_people is False:
            raise ValueError("several people in a frame; pass track_people=True (or None) to get one result per track")
    results = []
    thr = float(kwargs.get("confidence_threshold", 0.0))
    for tid, tr in pose_estimation_to_tracks(frames, tracker=tracker).items():
        if not (tr["keypoints"][..., 2] >= thr).any():  # no usable joint in the whole track
            continue
        res = pipe(tr["keypoints"], keypoint_format="coco", **kwargs)
        res["track_id"], res["frames"] = int(tid), tr["frames"]
        results.append(res)
    return results
