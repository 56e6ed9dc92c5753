"""2D keypoint formats, input validation and conversion to the H36M-17 layout (NumPy only, no torch).

Formats (``keypoint_format``): ``"h36m"`` (17, VideoPose3D order), ``"coco"`` (17), ``"halpe26"`` (26) and
``"blazepose"`` (33 MediaPipe landmarks, :data:`BLAZEPOSE_LANDMARKS`; confidence = visibility). H36M joints a
detector lacks are synthesised by fixed affine rules (weights sum to 1; table in docs/inference.md, "Keypoint
formats"): the first rule whose source joints are all valid is used, a joint with no such rule is missing, and
its confidence is the minimum of its sources'. BlazePose hips move :data:`BLAZEPOSE_HIP_TO_KNEE` of the thigh
toward the knee (its hip landmarks sit higher than mocap hip centres).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .skeleton import COCO_17, H36M_17, HALPE_26, LIMBS

__all__ = ["KEYPOINT_FORMATS", "BLAZEPOSE_LANDMARKS", "BLAZEPOSE_HIP_TO_KNEE", "normalize_format", "validate_keypoints",
           "validate_image_size", "keypoints_to_h36m", "fill_missing", "normalize_screen_coordinates",
           "unnormalize_screen_coordinates", "prepare_keypoints", "usable_3d_joints", "DEFAULT_CONFIDENCE_THRESHOLD",
           "MAX_ABS_NORMALIZED", "MAX_ABS_METRES", "SWAP_GROUPS", "SWAP_ORDERS", "undo_left_right_swaps"]

#: joints whose confidence is below this are missing (the pipelines and ``mpm lift`` alike)
DEFAULT_CONFIDENCE_THRESHOLD = 0.3
#: a 2D joint further than this from the image centre (normalised units, half image widths) is missing
MAX_ABS_NORMALIZED = 1e4
#: a 3D joint coordinate beyond this many metres is missing (same reason)
MAX_ABS_METRES = 1e4

#: the 33 MediaPipe BlazePose landmarks, in MediaPipe's order (``keypoint_format="blazepose"``)
BLAZEPOSE_LANDMARKS: Tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)

#: canonical format name -> number of joints
KEYPOINT_FORMATS: Dict[str, int] = {"h36m": 17, "coco": 17, "halpe26": 26, "blazepose": 33}
_FORMAT_ALIASES = {
    "h36m": "h36m", "h36m17": "h36m", "human36m": "h36m",
    "coco": "coco", "coco17": "coco",
    "halpe": "halpe26", "halpe26": "halpe26",
    "blazepose": "blazepose", "blazepose33": "blazepose", "mediapipe": "blazepose", "mediapipepose": "blazepose",
}


def normalize_format(keypoint_format: str) -> str:
    """Canonical name (``"h36m"``, ``"coco"``, ``"halpe26"``, ``"blazepose"``) of a format; ValueError if unknown."""
    if not isinstance(keypoint_format, str):
        raise TypeError(f"keypoint_format must be a string, one of {sorted(KEYPOINT_FORMATS)}; "
                        f"got {type(keypoint_format).__name__}")
    key = keypoint_format.lower().replace("-", "").replace("_", "").replace(" ", "")
    if key not in _FORMAT_ALIASES:
        raise ValueError(f"unknown keypoint_format {keypoint_format!r}; pass one of {sorted(KEYPOINT_FORMATS)} "
                         "(h36m: 17 joints in the Human3.6M/VideoPose3D order, coco: 17 COCO keypoints, "
                         "halpe26: 26 Halpe/AlphaPose keypoints, blazepose: 33 MediaPipe BlazePose landmarks)")
    return _FORMAT_ALIASES[key]


def _to_numeric_array(x, name: str) -> np.ndarray:
    """np.asarray(x) as float32/float64, with TypeError/ValueError messages instead of NumPy's."""
    if x is None:
        raise TypeError(f"{name} is None; pass an array of shape (frames, joints, 2 or 3)")
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch tensor without importing torch
        x = x.detach().cpu().numpy()
    if isinstance(x, (str, bytes, dict)):
        raise TypeError(f"{name} must be a numeric array of shape (frames, joints, 2 or 3), got {type(x).__name__}")
    try:
        arr = np.asarray(x)
    except ValueError as e:  # ragged nested lists
        raise ValueError(f"{name} could not be turned into an array ({e}); pass a rectangular array of shape "
                         "(frames, joints, 2 or 3) (every frame with the same number of joints)") from None
    if arr.dtype == object:
        raise ValueError(f"{name} is ragged or holds non-numbers; pass a rectangular numeric array of shape "
                         "(frames, joints, 2 or 3)")
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold numbers (int or float), got dtype {arr.dtype}; pass pixel coordinates "
                        "as a float array of shape (frames, joints, 2 or 3)")
    # float32 input stays float32 (half the memory on long sequences); everything else -> float64
    return arr if arr.dtype in (np.float32, np.float64) else arr.astype(np.float64)


def _float(a) -> np.ndarray:
    a = np.asarray(a)
    return a if a.dtype in (np.float32, np.float64) else a.astype(np.float64)


def validate_keypoints(keypoints, keypoint_format: str = "h36m",
                       name: str = "keypoints") -> Tuple[np.ndarray, Optional[np.ndarray], str]:
    """Check ``(frames, joints, 2)`` (x, y) or ``(frames, joints, 3)`` (x, y, confidence) keypoints.

    Returns ``(xy (frames, joints, 2), confidence (frames, joints) or None, canonical format)``, float32 for
    float32 input, else float64; TypeError / ValueError saying what to pass instead.
    """
    fmt = normalize_format(keypoint_format)
    arr = _to_numeric_array(keypoints, name)
    n = KEYPOINT_FORMATS[fmt]
    if arr.ndim != 3:
        hint = ""
        if arr.ndim == 2 and arr.shape[0] == n and arr.shape[1] in (2, 3):
            hint = f" (a single frame? pass {name}[None] to make it (1, {n}, {arr.shape[1]}))"
        elif arr.ndim == 4:
            hint = " (several sequences? pass a list of (frames, joints, C) arrays)"
        raise ValueError(f"{name} must have 3 dimensions (frames, joints, 2 or 3), got shape {arr.shape}{hint}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 frames); pass at least one frame of shape ({n}, 2 or 3)")
    if arr.shape[2] not in (2, 3):
        raise ValueError(f"{name} must have 2 (x, y) or 3 (x, y, confidence) values per joint, got {arr.shape[2]} "
                         f"(shape {arr.shape})")
    if arr.shape[1] != n:
        guess = [f for f, k in KEYPOINT_FORMATS.items() if k == arr.shape[1]]
        hint = f"; did you mean keypoint_format={guess[0]!r}?" if guess and fmt not in guess else ""
        raise ValueError(f"keypoint_format={fmt!r} has {n} joints but {name} has {arr.shape[1]} (shape {arr.shape}); "
                         f"pass (frames, {n}, 2 or 3) arrays or choose the matching format "
                         f"({', '.join(f'{k}: {v}' for k, v in KEYPOINT_FORMATS.items())}){hint}")
    return arr[..., :2], (arr[..., 2] if arr.shape[2] == 3 else None), fmt


def validate_image_size(image_size) -> Tuple[float, float]:
    """Check ``image_size = (width, height)`` in pixels; returns two positive floats."""
    if image_size is None:
        raise ValueError("image_size is required for pixel keypoints; pass image_size=(width, height) of the video "
                         "frames in pixels (or coordinates='normalized' for keypoints already normalised)")
    if isinstance(image_size, (str, bytes, dict)):
        raise TypeError(f"image_size must be (width, height) in pixels, got {image_size!r}")
    try:
        vals = np.asarray(image_size, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise TypeError(f"image_size must be two numbers (width, height) in pixels, got {image_size!r}") from None
    if vals.size != 2:
        raise ValueError(f"image_size must be (width, height), two numbers in pixels; got {image_size!r}")
    w, h = float(vals[0]), float(vals[1])
    if not (np.isfinite(w) and np.isfinite(h)) or w <= 0 or h <= 0:
        raise ValueError(f"image_size must be positive finite (width, height) in pixels; got {image_size!r}")
    return w, h


def normalize_screen_coordinates(xy: np.ndarray, width: float, height: float) -> np.ndarray:
    """Pixels ``(..., 2)`` -> model coordinates ``u = x / w * 2 - 1``, ``v = y / w * 2 - h / w`` (float32 stays)."""
    xy = _float(xy)
    if xy.shape[-1] != 2:
        raise ValueError(f"expected (..., 2) pixel coordinates, got shape {xy.shape}")
    return (xy / width * 2 - np.array([1.0, height / width])).astype(xy.dtype)


def unnormalize_screen_coordinates(uv: np.ndarray, width: float, height: float) -> np.ndarray:
    """Inverse of :func:`normalize_screen_coordinates` (model coordinates -> pixels)."""
    uv = _float(uv)
    return ((uv + np.array([1.0, height / width])) * width / 2).astype(uv.dtype)


# Format conversion: per H36M joint a list of rules ((source index, weight), ...), weights summing to 1.
#: BlazePose hip -> H36M hip: this fraction of the hip -> knee vector is added
BLAZEPOSE_HIP_TO_KNEE = 0.1


def _coco_like_rules(names: Sequence[str], halpe: bool = False,
                     blazepose: bool = False) -> List[List[Tuple[Tuple[int, float], ...]]]:
    idx = {n: i for i, n in enumerate(names)}
    lh, rh, ls, rs = idx["left_hip"], idx["right_hip"], idx["left_shoulder"], idx["right_shoulder"]
    le, re, ley, rey = idx["left_ear"], idx["right_ear"], idx["left_eye"], idx["right_eye"]
    pelvis = [((lh, 0.5), (rh, 0.5))]
    thorax = [((ls, 0.5), (rs, 0.5))]
    if halpe:
        pelvis = [((idx["hip"], 1.0),)] + pelvis
        thorax = [((idx["neck"], 1.0),)] + thorax
    extra = {}
    if blazepose:
        k = BLAZEPOSE_HIP_TO_KNEE
        lk, rk = idx["left_knee"], idx["right_knee"]
        pelvis = [((lh, 0.5 * (1 - k)), (rh, 0.5 * (1 - k)), (lk, 0.5 * k), (rk, 0.5 * k))] + pelvis
        extra = {
            "left_hip": [((lh, 1 - k), (lk, k)), ((lh, 1.0),)],
            "right_hip": [((rh, 1 - k), (rk, k)), ((rh, 1.0),)],
            "neck_nose": [((idx["nose"], 1.0),), ((idx["mouth_left"], 0.5), (idx["mouth_right"], 0.5))],
        }
    # spine = (pelvis + thorax) / 2 for every combination of pelvis and thorax rules
    spine = [tuple((i, w * 0.5) for i, w in p + t) for p in pelvis for t in thorax]
    head_top = []
    for a, b in ((le, re), (ley, rey)):
        for t in thorax:  # E + 0.5 (E - T) = 1.5 E - 0.5 T, E = (a + b) / 2
            head_top.append(((a, 0.75), (b, 0.75)) + tuple((i, -0.5 * w) for i, w in t))
    if halpe:
        head_top = [((idx["head"], 1.0),)] + head_top

    rules = {"pelvis": pelvis, "spine": spine, "thorax": thorax, "neck_nose": [((idx["nose"], 1.0),)],
             "head_top": head_top, **extra}
    return [rules[jn] if jn in rules else [((idx[jn], 1.0),)] for jn in H36M_17.joint_names]


_RULES = {
    "coco": _coco_like_rules(COCO_17.joint_names, halpe=False),
    "halpe26": _coco_like_rules(HALPE_26.joint_names, halpe=True),
    "blazepose": _coco_like_rules(BLAZEPOSE_LANDMARKS, blazepose=True),
}


def keypoints_to_h36m(xy: np.ndarray, valid: np.ndarray, keypoint_format: str,
                      confidence: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """``(frames, J, C)`` keypoints (any unit; C = 2, or 3 for 3D landmarks), ``valid`` ``(frames, J)`` bool and
    optional confidence ``(frames, J)`` -> ``(xy17 (frames, 17, C) NaN where invalid, valid17 (frames, 17),
    confidence17 or None)``."""
    fmt = normalize_format(keypoint_format)
    xy = _float(xy)
    valid = np.asarray(valid, dtype=bool)
    if fmt == "h36m":
        out = np.where(valid[..., None], xy, xy.dtype.type(np.nan))
        return out, valid.copy(), None if confidence is None else _float(confidence).copy()
    rules = _RULES[fmt]
    F = xy.shape[0]
    out = np.full((F, 17, xy.shape[-1]), np.nan, dtype=xy.dtype)
    v_out = np.zeros((F, 17), dtype=bool)
    c_out = None if confidence is None else np.full((F, 17), np.nan, dtype=xy.dtype)
    safe = np.where(valid[..., None], xy, xy.dtype.type(0))
    for j, joint_rules in enumerate(rules):
        todo = ~v_out[:, j]
        for rule in joint_rules:
            src = [i for i, _ in rule]
            ok = todo & valid[:, src].all(axis=1)
            if ok.any():
                out[ok, j] = sum(w * safe[ok, i] for i, w in rule)
                v_out[ok, j] = True
                if c_out is not None:
                    c_out[ok, j] = np.min(confidence[ok][:, src], axis=1)
            todo = todo & ~ok
            if not todo.any():
                break
    return out, v_out, c_out


def fill_missing(xy: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Finite placeholders for invalid joints of ``xy`` ``(frames, J, C)`` (``valid`` ``(frames, J)`` bool).

    Per joint, missing frames are interpolated over time (edge values outside); a joint never valid takes the
    mean of its frame's valid joints (of the nearest frame that has one). Returns ``(frames, J, C)``, float32
    for float32 input, else float64, equal to ``xy`` where ``valid``.
    """
    xy = _float(xy).copy()
    valid = np.asarray(valid, dtype=bool)
    F, J, C = xy.shape
    if not valid.any():
        raise ValueError("no valid joint in the whole sequence; nothing to lift")
    t = np.arange(F)
    for j in range(J):
        vj = valid[:, j]
        if vj.all() or not vj.any():
            continue
        for c in range(C):
            xy[~vj, j, c] = np.interp(t[~vj], t[vj], xy[vj, j, c])
    never = ~valid.any(axis=0)
    if never.any():
        frame_ok = valid.any(axis=1)
        w = valid.astype(xy.dtype)[..., None]
        mean = (np.where(valid[..., None], xy, xy.dtype.type(0)) * w).sum(1) / np.maximum(w.sum(1), 1.0)
        # frames with no valid joint: nearest frame that has one
        if not frame_ok.all():
            ok_idx = np.flatnonzero(frame_ok)
            pos = np.clip(np.searchsorted(ok_idx, t), 0, len(ok_idx) - 1)
            prev = np.clip(pos - 1, 0, len(ok_idx) - 1)
            nearest = np.where(np.abs(ok_idx[prev] - t) <= np.abs(ok_idx[pos] - t), ok_idx[prev], ok_idx[pos])
            mean = mean[nearest]
        xy[:, never, :] = mean[:, None, :]
    return xy


def usable_3d_joints(pose: np.ndarray) -> np.ndarray:
    """``(frames, J)`` bool: joints of ``(frames, J, 3)`` metres whose coordinates are finite and
    within :data:`MAX_ABS_METRES` (the others are treated as missing)."""
    p = np.asarray(pose)
    with np.errstate(invalid="ignore"):
        return (np.isfinite(p) & (np.abs(p) <= MAX_ABS_METRES)).all(-1)


#: left / right H36M-17 joint groups whose labels a 2D detector swaps together (arms, legs)
SWAP_GROUPS = tuple((np.array([H36M_17.index(n) for n in LIMBS[f"left_{part}"]]),
                     np.array([H36M_17.index(n) for n in LIMBS[f"right_{part}"]])) for part in ("arm", "leg"))


def _swap_order(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    order = np.arange(len(H36M_17.joint_names))
    order[np.concatenate([left, right])] = np.concatenate([right, left])
    return order


#: per group of :data:`SWAP_GROUPS`, the H36M-17 joint order with that group's left and right labels exchanged
SWAP_ORDERS = tuple(_swap_order(left, right) for left, right in SWAP_GROUPS)


_SHOULDERS = (H36M_17.index("left_shoulder"), H36M_17.index("right_shoulder"))
_HIPS = (H36M_17.index("left_hip"), H36M_17.index("right_hip"))


def _torso_twisted(xy: np.ndarray, valid: np.ndarray) -> bool:
    """True when one frame's H36M-17 2D ``xy`` (17, 2) shows the shoulders' left-to-right direction more than 120
    degrees from the hips', both at least a fifth of the torso's length: a body cannot twist that far, so the arms'
    or the legs' labels are swapped (a body seen side-on, with short shoulder and hip lines, is never flagged)."""
    if not valid[list(_SHOULDERS + _HIPS)].all():
        return False
    across_shoulders, across_hips = xy[_SHOULDERS[0]] - xy[_SHOULDERS[1]], xy[_HIPS[0]] - xy[_HIPS[1]]
    torso = np.linalg.norm(xy[list(_SHOULDERS)].mean(0) - xy[list(_HIPS)].mean(0))
    ns, nh = np.linalg.norm(across_shoulders), np.linalg.norm(across_hips)
    return bool(min(ns, nh) > 0.2 * torso and across_shoulders @ across_hips < -0.5 * ns * nh)


def undo_left_right_swaps(xy: np.ndarray, valid: np.ndarray, ratio: float = 0.5,
                          min_twisted_frames: int = 3) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Undo a 2D detector's left/right label swaps in ``xy`` ``(frames, 17, 2)`` H36M-17 (``valid`` ``(frames, 17)``).

    Frame by frame each group (arms, legs) is swapped when the swapped labels lie nearer to where those joints
    last were than ``ratio`` times the given ones; the first frames are taken as given. Then, in every run of at
    least ``min_twisted_frames`` frames whose torso is twisted more than a body can (:func:`_torso_twisted`: the
    detector took the person to face the other way for the arms or the legs only, and the change came without a
    jump), the group whose left and right joints lie closer together in the image (whose labels continuity
    decides less surely) is swapped. Returns ``(xy, valid, swapped)``: relabelled copies and ``(frames, 2)`` bool
    (arms, legs swapped).
    """
    if isinstance(min_twisted_frames, bool) or not isinstance(min_twisted_frames, int) or min_twisted_frames < 1:
        raise ValueError(f"min_twisted_frames must be an int >= 1, got {min_twisted_frames!r}")
    xy, valid = np.array(xy, copy=True), np.array(valid, dtype=bool, copy=True)
    F = xy.shape[0]
    swapped = np.zeros((F, len(SWAP_GROUPS)), dtype=bool)
    last = np.full(xy.shape[1:], np.nan)

    def swap_group(frames: np.ndarray, g: int) -> None:
        xy[frames], valid[frames] = xy[frames][:, SWAP_ORDERS[g]], valid[frames][:, SWAP_ORDERS[g]]
        swapped[frames, g] = ~swapped[frames, g]

    for t in range(F):
        for g, (left, right) in enumerate(SWAP_GROUPS):
            ok = valid[t, left] & valid[t, right] & np.isfinite(last[left]).all(-1) & np.isfinite(last[right]).all(-1)
            if not ok.any():
                continue
            a, b = xy[t, left[ok]], xy[t, right[ok]]
            pa, pb = last[left[ok]], last[right[ok]]
            keep = np.linalg.norm(a - pa, axis=-1).sum() + np.linalg.norm(b - pb, axis=-1).sum()
            swap = np.linalg.norm(b - pa, axis=-1).sum() + np.linalg.norm(a - pb, axis=-1).sum()
            if swap < ratio * keep:
                swap_group(np.array([t]), g)
        last[valid[t]] = xy[t, valid[t]]
    twisted = np.array([_torso_twisted(xy[t], valid[t]) for t in range(F)] + [False])
    edges = np.flatnonzero(np.diff(np.concatenate([[False], twisted]).astype(np.int8)))
    for start, stop in zip(edges[::2], edges[1::2]):
        if stop - start >= min_twisted_frames:
            run = np.arange(start, stop)
            spread = [np.nanmean(np.linalg.norm(xy[run][:, l] - xy[run][:, r], axis=-1)) for l, r in SWAP_GROUPS]
            swap_group(run, int(np.argmin(spread)))
    return xy, valid, swapped


def prepare_keypoints(keypoints, image_size=None, keypoint_format: str = "h36m",
                      confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD, coordinates: str = "pixels",
                      fix_left_right_swaps: bool = False) -> Dict[str, np.ndarray]:
    """Validate, convert to H36M-17 and normalise one 2D sequence ``(frames, J, 2 or 3)`` for the lifter.

    Joints below ``confidence_threshold``, NaN/inf or beyond :data:`MAX_ABS_NORMALIZED` are missing;
    ``image_size`` ``(width, height)`` pixels is required for ``coordinates="pixels"``. Returns ``pose_2d``
    float32 ``(frames, 17, 2)`` normalised and finite, ``missing`` ``(frames, 17)`` bool, ``keypoints_2d``
    ``(frames, 17, 2)`` in the input units (NaN where missing) and ``image_size``.
    """
    xy, conf, fmt = validate_keypoints(keypoints, keypoint_format)
    if not isinstance(fix_left_right_swaps, bool):
        raise TypeError(f"fix_left_right_swaps must be a bool, got {type(fix_left_right_swaps).__name__}")
    if coordinates not in ("pixels", "normalized"):
        raise ValueError(f"coordinates must be 'pixels' or 'normalized', got {coordinates!r}")
    w, h = validate_image_size(image_size) if coordinates == "pixels" else (None, None)
    try:
        thr = float(confidence_threshold)
    except (TypeError, ValueError):
        raise TypeError(f"confidence_threshold must be a number, got {confidence_threshold!r}") from None
    if thr != thr:
        raise ValueError("confidence_threshold must be a number, got nan")
    valid = np.isfinite(xy).all(axis=-1)
    if conf is not None:
        valid &= np.isfinite(conf) & (conf >= thr)
    # joints whose normalised coordinates would be absurd (or overflow float32) are missing too
    valid &= _in_range(_normalize(np.where(valid[..., None], xy, 0.0).astype(np.float64), w, h))
    xy17, valid17, _ = keypoints_to_h36m(xy, valid, fmt, conf)
    if fix_left_right_swaps:
        xy17, valid17, _ = undo_left_right_swaps(xy17, valid17)
    for _ in range(2):  # a synthesised joint (weighted sum) can still leave the range: mask it, refill
        if not valid17.any():
            raise ValueError("no valid joint in the whole sequence (all NaN/inf or far outside the image, or all "
                             f"confidences below confidence_threshold={thr}); pass keypoints with at least one "
                             "detected joint")
        filled = fill_missing(xy17, valid17)
        uv = _normalize(filled, w, h)
        ok = _in_range(uv)
        if ok.all():
            break
        valid17 &= ok
        xy17 = np.where(valid17[..., None], xy17, xy17.dtype.type(np.nan))
    return {"pose_2d": np.ascontiguousarray(uv, dtype=np.float32), "missing": ~valid17, "keypoints_2d": xy17,
            "image_size": None if w is None else (w, h)}


def _normalize(xy: np.ndarray, w: Optional[float], h: Optional[float]) -> np.ndarray:
    """Pixels -> model coordinates when ``w`` is given, else unchanged (already normalised)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return normalize_screen_coordinates(xy, w, h) if w is not None else xy


def _in_range(uv: np.ndarray) -> np.ndarray:
    """``(..., J)`` bool: finite and within :data:`MAX_ABS_NORMALIZED` in every coordinate."""
    with np.errstate(invalid="ignore"):
        return (np.isfinite(uv) & (np.abs(uv) <= MAX_ABS_NORMALIZED)).all(-1)
