"""Lifting on a real four-camera capture: BlazePose 2D per view, lifted by each lifter, scored
against a multi-view triangulated reference.

    python bench/bench_real_capture.py --model demo=/work/cache/demo_base/mpm-lift
    python bench/bench_real_capture.py --model a=DIR_A --model b=DIR_B --official authors.pth
    python bench/bench_real_capture.py --wheel /tmp/dl/pose2sim-0.10.49-py3-none-any.whl --export-dir /work/cache/real_capture
    # re-measure one lifter and put its rows into the committed result (RESULTS.md says so):
    python bench/bench_real_capture.py --model general=modeling_mpm/pretrained/mpm-lift-general --out /tmp/rc.json \\
        --merge-into bench/results/real_capture.json --why "the general lifter was retrained"

The capture: the pose2sim 0.10.49 wheel (BSD-3-Clause; see DATA_NOTES.md) holds two demo
captures, ``Demo_SinglePerson`` and ``Demo_MultiPerson``: four synchronised 60 fps cameras
(100 frames, 1088 x 1920 portrait, mounted high and looking down) and a Qualisys calibration.
Without ``--wheel`` the wheel is fetched with ``pip download --no-deps pose2sim==0.10.49`` into
the cache folder (``bench/extra_capture/``, git-ignored).

Steps (each cached in the cache folder, so later runs take seconds):

1. extract the videos and calibration from the wheel;
2. BlazePose (:class:`modeling_mpm.video.blazepose.BlazePoseEstimator`, full model, video mode)
   on every view -> ``<cache>/<capture>_blazepose.npz`` (2D px + visibility, world landmarks).
   ``Demo_MultiPerson`` has a second person (not the performer of ``Demo_SinglePerson``). She is
   painted out per frame before BlazePose looks for the performer (``--mask silhouettes``, the
   default): BlazePose with segmentation, run on each frame with everything outside the
   rectangles of :data:`MULTIPERSON_MASKS` blacked out (hand-chosen from frames 0, 40, 70 and 99,
   covering where she stands or reaches over the clip), finds her silhouette
   (:func:`second_person_silhouettes`); that silhouette, widened by :data:`SILHOUETTE_MARGIN_PX`,
   is painted black. Where she stands in front of the performer that hides part of him too (an
   occlusion, as in any real capture). ``--mask rectangles`` paints the whole rectangles instead
   (the earlier protocol: it also hid 14-23% of the performer's joints in two views).
   Views where BlazePose still locks on the wrong person show up as large reprojection errors and
   are reported;
3. the reference: all 33 BlazePose landmarks triangulated from the four views
   (:func:`capture.triangulate` in bench/capture.py: DLT on undistorted points, each view weighted
   by its visibility, views with visibility < 0.5 not used, a view left out per joint while its
   reprojection error exceeds 15 px and 3 or more views are in use) ->
   ``<export>/<capture>.npz`` (format: :func:`write_capture_npz`);
4. per view, each lifter lifts that view's BlazePose 2D (``pose-lifting`` pipeline,
   ``keypoint_format="blazepose"``) and is compared with the reference in that camera's frame on
   the 12 body joints :data:`BODY_JOINTS`: P-MPJPE (Procrustes per frame) and root-relative MPJPE
   (root = mid-hip of the two hips), mm. Baselines: BlazePose's own world landmarks, the
   per-sequence mean pose (input-blind: mean of the root-centred reference in that camera), and
   each lifter fed the clean projections of the reference (detector error vs lifting error).

Known limits of the reference (measured while building it, not corrected): in both captures cam01
and cam03 disagree with the other views by a steady 10-25 px in x (a per-view 2D shift fitted to
the data lowers the median reprojection error only from 7.1 to 6.3 px), cam03's 2D agrees best with
the other views when shifted by about +3 frames (50 ms; leave-one-view-out median error 30.5 ->
25.9 px), so cam03 is left out of many joints; and the ``Demo_SinglePerson`` cam01 / cam02 videos
are 1080 px wide while the calibration says 1088 (taking the pixels as they are fits best; scaling
or shifting them by 4-8 px does not help). The views are used as synchronised, with the calibration
as written.

``evaluate_on_capture({label: folder}, capture_cache)`` is the reusable entry point.
Writes ``bench/results/real_capture.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import glob
import os
import subprocess
import sys
import time
import warnings
import zipfile
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402

from capture import read_qualisys_calibration, triangulate  # noqa: E402
from modeling_mpm.metrics import joint_errors, mpjpe_per_frame, p_mpjpe_per_frame, procrustes_align  # noqa: E402

CAPTURES = ("Demo_SinglePerson", "Demo_MultiPerson")
WHEEL_NAME = "pose2sim-0.10.49-py3-none-any.whl"
WHEEL_REQUIREMENT = "pose2sim==0.10.49"
CACHE_DIR = os.path.join(C.ROOT, "bench", "extra_capture")
RESULTS_JSON = os.path.join(C.RESULTS_DIR, "real_capture.json")

# ----------------------------------------------------------------------------- joints
#: the 12 body joints scored, with their index in BlazePose-33 (MediaPipe order; the reference is
#: triangulated BlazePose, so the same indices) and in H36M-17 (VideoPose3D order). "left" is the
#: subject's left in both layouts.
BODY_JOINTS: Tuple[Tuple[str, int, int], ...] = (
    ("right_hip", 24, 1), ("right_knee", 26, 2), ("right_ankle", 28, 3),
    ("left_hip", 23, 4), ("left_knee", 25, 5), ("left_ankle", 27, 6),
    ("left_shoulder", 11, 11), ("left_elbow", 13, 12), ("left_wrist", 15, 13),
    ("right_shoulder", 12, 14), ("right_elbow", 14, 15), ("right_wrist", 16, 16),
)
BODY_NAMES = tuple(n for n, _, _ in BODY_JOINTS)
BLAZEPOSE_BODY = tuple(b for _, b, _ in BODY_JOINTS)
H36M_BODY = tuple(h for _, _, h in BODY_JOINTS)
#: positions of the two hips within BODY_JOINTS (the root is their midpoint)
HIPS = (BODY_NAMES.index("right_hip"), BODY_NAMES.index("left_hip"))

# ----------------------------------------------------------------------------- capture set-up
#: per view of Demo_MultiPerson: rectangles (x0, y0, x1, y1) in pixels painted black before BlazePose,
#: covering the second person over the whole clip (hand-chosen from frames 0, 40, 70, 99)
MULTIPERSON_MASKS: Dict[str, Dict[int, Tuple[Tuple[int, int, int, int], ...]]] = {
    "Demo_MultiPerson": {
        0: ((520, 760, 1000, 1920),),
        1: ((0, 600, 360, 1500),),
        2: ((150, 460, 390, 1020),),
        3: ((620, 380, 1000, 905),),
    },
}
#: how Demo_MultiPerson's second person is painted out: "silhouettes" (her segmented silhouette per frame,
#: found inside MULTIPERSON_MASKS) or "rectangles" (the whole rectangles, the earlier protocol)
MASK_MODES = ("silhouettes", "rectangles")
#: the silhouette is widened by this many pixels (a square structuring element) before it is painted
SILHOUETTE_MARGIN_PX = 15
#: BlazePose landmarks with visibility below this are not used for the reference
REFERENCE_MIN_VISIBILITY = 0.5
#: a view is left out of a joint's triangulation while its reprojection error exceeds this (px)
REFERENCE_MAX_ERROR_PX = 15.0
#: lifters are fed BlazePose 2D with this confidence threshold (the pipeline's default)
CONFIDENCE_THRESHOLD = 0.3


def ensure_wheel(wheel: Optional[str], cache_dir: str = CACHE_DIR) -> str:
    """Path of the pose2sim wheel: ``wheel`` if given, else a cached copy or ``pip download``."""
    if wheel:
        if not os.path.isfile(wheel):
            raise ValueError(f"the pose2sim wheel {wheel!r} does not exist")
        return wheel
    found = glob.glob(os.path.join(cache_dir, "pose2sim-*.whl"))
    if found:
        return sorted(found)[-1]
    os.makedirs(cache_dir, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", WHEEL_REQUIREMENT, "-d", cache_dir],
                   check=True)
    found = glob.glob(os.path.join(cache_dir, "pose2sim-*.whl"))
    if not found:
        raise ValueError(f"pip download {WHEEL_REQUIREMENT} left no wheel in {cache_dir}")
    return sorted(found)[-1]


def extract_capture(wheel: str, name: str, cache_dir: str = CACHE_DIR) -> str:
    """Extract ``Pose2Sim/<name>/{videos,calibration/Calib.qca.txt}`` from the wheel; returns the folder."""
    dest = os.path.join(cache_dir, name)
    want = [f"Pose2Sim/{name}/videos/cam0{i}.mp4" for i in range(1, 5)] + [f"Pose2Sim/{name}/calibration/Calib.qca.txt"]
    if all(os.path.isfile(os.path.join(dest, *w.split("/")[2:])) for w in want):
        return dest
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        for w in want:
            if w not in names:
                raise ValueError(f"{wheel} has no {w}; is it the pose2sim 0.10.49 wheel?")
            out = os.path.join(dest, *w.split("/")[2:])
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with z.open(w) as src, open(out + ".tmp", "wb") as dst:
                dst.write(src.read())
            os.replace(out + ".tmp", out)
    return dest


def read_frames(path: str) -> List[np.ndarray]:
    """All frames of a video as (H, W, 3) uint8 RGB (PyAV)."""
    import av

    with av.open(path) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def rectangles_mask(height: int, width: int, rects) -> np.ndarray:
    """(height, width) bool: True inside any of the rectangles (x0, y0, x1, y1) pixels (clipped to the image)."""
    inside = np.zeros((height, width), dtype=bool)
    for x0, y0, x1, y1 in rects or ():
        inside[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = True
    return inside


def paint_out(frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A copy of ``frame`` (H, W, 3) with the pixels of ``mask`` (H, W) bool painted black."""
    return np.where(mask[..., None], 0, frame).astype(frame.dtype)


def second_person_silhouettes(frames: Sequence[np.ndarray], rects, margin: int = SILHOUETTE_MARGIN_PX) -> np.ndarray:
    """(T, H, W) bool: the person inside the rectangles (x0, y0, x1, y1), per frame of one video.

    BlazePose with segmentation (video mode) runs on each frame with everything outside the rectangles black, so
    it can only find the person standing there; her silhouette (probability > 0.5), clipped to the rectangles and
    widened by ``margin`` pixels, is the mask. Frames where she is not found: the whole rectangles."""
    import cv2  # ships with mediapipe

    from modeling_mpm.video.blazepose import BlazePoseEstimator

    h, w = frames[0].shape[:2]
    inside = rectangles_mask(h, w, rects)
    kernel = np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)
    out = np.zeros((len(frames), h, w), dtype=bool)
    with BlazePoseEstimator(model_complexity=1, enable_segmentation=True) as est:
        for i, f in enumerate(frames):
            r = est([paint_out(f, ~inside)])[0]
            sil = (r["segmentation"] > 0.5) & inside if r["detected"] else inside
            out[i] = cv2.dilate(sil.astype(np.uint8), kernel) > 0 if margin > 0 else sil
    return out


def _masking(name: str, mask: str) -> str:
    """What a detections cache was made with (a cache made otherwise is redone)."""
    rects = MULTIPERSON_MASKS.get(name, {})
    if not rects:
        return repr(rects)
    return repr(rects) if mask == "rectangles" else f"silhouettes(margin={SILHOUETTE_MARGIN_PX}) in {rects!r}"


def _cached_masking(det: str, name: str) -> Optional[str]:
    """How the detections cache ``det`` was made (None: no cache); a cache without the record counts as unmasked
    for a capture with nobody to paint out."""
    if not os.path.isfile(det):
        return None
    with np.load(det) as z:
        if "masks" in z.files:
            return str(z["masks"])
    return None if MULTIPERSON_MASKS.get(name) else _masking(name, "rectangles")


def detect_capture(folder: str, name: str, cache_dir: str = CACHE_DIR, force: bool = False,
                   mask: str = "silhouettes") -> str:
    """Run BlazePose on the four views (cached): ``<cache>/<name>_blazepose.npz`` with
    ``keypoints`` (4, T, 33, 3) px + visibility, ``world`` (4, T, 33, 3) m, ``detected`` (4, T),
    ``image_size`` (4, 2) w, h of the videos, ``masks`` (how the second person was painted out)."""
    if mask not in MASK_MODES:
        raise ValueError(f"mask must be one of {MASK_MODES}, got {mask!r}")
    out = os.path.join(cache_dir, f"{name}_blazepose.npz")
    masking = _masking(name, mask)
    if os.path.isfile(out) and not force and _cached_masking(out, name) == masking:
        return out
    from modeling_mpm.video.blazepose import BlazePoseEstimator

    rects = MULTIPERSON_MASKS.get(name, {})
    kps, worlds, dets, sizes = [], [], [], []
    with BlazePoseEstimator(model_complexity=1) as est:
        for v in range(4):
            t0 = time.time()
            frames = read_frames(os.path.join(folder, "videos", f"cam0{v + 1}.mp4"))
            sizes.append((frames[0].shape[1], frames[0].shape[0]))
            if rects.get(v):
                hidden = (second_person_silhouettes(frames, rects[v]) if mask == "silhouettes"
                          else [rectangles_mask(*frames[0].shape[:2], rects[v])] * len(frames))
                frames = [paint_out(f, m) for f, m in zip(frames, hidden)]
            est.reset()
            res = est(frames)
            kps.append(np.stack([r["keypoints"] for r in res]))
            worlds.append(np.stack([r["world"] for r in res]))
            dets.append(np.array([r["detected"] for r in res]))
            print(f"[real-capture] {name} cam0{v + 1}: BlazePose on {len(frames)} frames, "
                  f"{int(dets[-1].sum())} detected, {time.time() - t0:.0f} s", flush=True)
            del frames
    T = min(len(k) for k in kps)
    np.savez_compressed(out + ".tmp.npz", keypoints=np.stack([k[:T] for k in kps]),
                        world=np.stack([w[:T] for w in worlds]), detected=np.stack([d[:T] for d in dets]),
                        image_size=np.array(sizes, dtype=np.int64), masks=masking)
    os.replace(out + ".tmp.npz", out)
    return out


def _blazepose_flip() -> Tuple[int, ...]:
    from modeling_mpm.keypoints import BLAZEPOSE_LANDMARKS as names

    swap = {"left": "right", "right": "left"}
    return tuple(names.index("_".join(swap.get(p, p) for p in n.split("_"))) for n in names)


#: BlazePose landmark index of each landmark's mirror (left <-> right)
BLAZEPOSE_FLIP = _blazepose_flip()


def left_right_swaps(keypoints: np.ndarray, cams, weights: np.ndarray, ratio: float = 0.5) -> np.ndarray:
    """(V, T) bool: views / frames where BlazePose swapped the person's left and right.

    Per view and frame, the other views are triangulated (same rule as the reference) and projected
    into the view; the frame counts as swapped when the mirrored labels' median body-joint distance
    to that projection is below ``ratio`` times the labels' own."""
    V = len(cams)
    out = np.zeros(keypoints.shape[:2], dtype=bool)
    body = list(BLAZEPOSE_BODY)
    for v in range(V):
        others = [o for o in range(V) if o != v]
        r = triangulate(keypoints[others][..., :2], [cams[o] for o in others], weights=weights[others],
                        max_reprojection_error=REFERENCE_MAX_ERROR_PX)
        proj = cams[v].project(r.points)[:, body]
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # frames with nothing to compare: all-NaN medians
            own = np.nanmedian(np.linalg.norm(proj - keypoints[v][:, body, :2], axis=-1), axis=1)
            mirrored = np.nanmedian(np.linalg.norm(proj - keypoints[v][:, list(BLAZEPOSE_FLIP)][:, body, :2], axis=-1),
                                    axis=1)
            out[v] = mirrored < ratio * own
    return out


def build_reference(detections: str, calibration: str) -> Dict[str, np.ndarray]:
    """Triangulate the 33 BlazePose landmarks of the four views; returns the arrays of
    :func:`write_capture_npz`."""
    d = np.load(detections)
    cams = read_qualisys_calibration(calibration)
    kp = d["keypoints"].astype(np.float64)
    if kp.shape[0] != len(cams):
        raise ValueError(f"{detections} has {kp.shape[0]} views but {calibration} {len(cams)} cameras")
    vis = np.nan_to_num(kp[..., 2], nan=0.0)
    weights = np.where(vis >= REFERENCE_MIN_VISIBILITY, vis, 0.0)
    flipped = left_right_swaps(kp, cams, weights)
    kp_ref = kp.copy()
    kp_ref[flipped] = kp[flipped][:, BLAZEPOSE_FLIP]
    w_ref = weights.copy()
    w_ref[flipped] = weights[flipped][:, BLAZEPOSE_FLIP]
    res = triangulate(kp_ref[..., :2], cams, weights=w_ref, max_reprojection_error=REFERENCE_MAX_ERROR_PX,
                      reject_unresolved=True)
    return {
        "keypoints": d["keypoints"].astype(np.float32),
        "world_blazepose": d["world"].astype(np.float32),
        "detected": d["detected"].astype(bool),
        "reference_world": res.points.astype(np.float64),
        "reprojection_error_px": res.reprojection_error.astype(np.float32),
        "used_views": res.used,
        "left_right_swapped": flipped,
        "R": np.stack([c.R for c in cams]),
        "t": np.stack([c.t for c in cams]),
        "intrinsics": np.stack([c.intrinsics for c in cams]),
        "image_size": d["image_size"].astype(np.int64),
        "calibration_image_size": np.array([c.image_size for c in cams], dtype=np.int64),
        "camera_names": np.array([c.name for c in cams]),
    }


def write_capture_npz(path: str, arrays: Dict[str, np.ndarray], name: str) -> str:
    """Write one capture's cache file. Keys (V = 4 views, T frames, 33 BlazePose landmarks):

    ``keypoints`` (V, T, 33, 3) BlazePose x, y px + visibility per view (NaN: not detected);
    ``world_blazepose`` (V, T, 33, 3) BlazePose world landmarks (m, origin mid-hips, axes of that
    camera's image: x right, y down, z away from the camera); ``detected`` (V, T);
    ``reference_world`` (T, 33, 3) triangulated world metres (Z up; NaN where not triangulated);
    ``reprojection_error_px`` (V, T, 33) (also for left-out views; NaN where the view had no
    usable observation); ``used_views`` (V, T, 33) bool; ``R`` (V, 3, 3), ``t`` (V, 3) world ->
    camera (m, camera x right, y down, z forward); ``intrinsics`` (V, 9) pixel
    ``[fx, fy, cx, cy, k1, k2, k3, p1, p2]``; ``image_size`` (V, 2) w, h of the videos;
    ``calibration_image_size`` (V, 2); ``left_right_swapped`` (V, T) bool (BlazePose mirrored the
    person in that view: the reference used the mirrored labels there; ``keypoints`` are as
    detected); ``camera_names``; ``name``; ``fps``; ``body_joints``
    (12 names), ``body_blazepose`` (12 BlazePose indices), ``body_h36m`` (12 H36M-17 indices).
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp.npz"
    np.savez_compressed(tmp, **arrays, name=np.array(name), fps=np.array(60.0),
                        body_joints=np.array(BODY_NAMES), body_blazepose=np.array(BLAZEPOSE_BODY),
                        body_h36m=np.array(H36M_BODY))
    os.replace(tmp, path)
    return path


def prepare_captures(wheel: Optional[str] = None, cache_dir: str = CACHE_DIR, export_dir: Optional[str] = None,
                     captures: Sequence[str] = CAPTURES, force: bool = False, mask: str = "silhouettes") -> List[str]:
    """Extract, detect (cached; redone when the cache was made with another ``mask``), triangulate; returns the
    capture .npz paths (in ``export_dir``, default the cache folder)."""
    export_dir = export_dir or cache_dir
    paths = []
    whl = None
    for name in captures:
        out = os.path.join(export_dir, f"{name}.npz")
        det = os.path.join(cache_dir, f"{name}_blazepose.npz")
        folder = os.path.join(cache_dir, name)
        if (force or _cached_masking(det, name) != _masking(name, mask)
                or not os.path.isfile(os.path.join(folder, "calibration", "Calib.qca.txt"))):
            whl = whl or ensure_wheel(wheel, cache_dir)
            folder = extract_capture(whl, name, cache_dir)
            det = detect_capture(folder, name, cache_dir, force=force, mask=mask)
        arrays = build_reference(det, os.path.join(folder, "calibration", "Calib.qca.txt"))
        paths.append(write_capture_npz(out, arrays, name))
    return paths


# ----------------------------------------------------------------------------- evaluation
def body_joints(pose: np.ndarray, layout: str) -> np.ndarray:
    """(..., J, 3) in ``layout`` ("blazepose": 33 landmarks, "h36m": H36M-17) -> (..., 12, 3) in
    :data:`BODY_JOINTS` order."""
    idx = {"blazepose": BLAZEPOSE_BODY, "h36m": H36M_BODY}.get(layout)
    if idx is None:
        raise ValueError(f"layout must be 'blazepose' or 'h36m', got {layout!r}")
    pose = np.asarray(pose)
    need = 33 if layout == "blazepose" else 17
    if pose.shape[-2] != need:
        raise ValueError(f"a {layout} pose has {need} joints, got shape {pose.shape}")
    return pose[..., list(idx), :]


def root_centre(body: np.ndarray) -> np.ndarray:
    """(..., 12, 3) -> the same minus the mid-hip (mean of the two hips)."""
    return body - body[..., list(HIPS), :].mean(axis=-2, keepdims=True)


def score(pred_body: np.ndarray, ref_body: np.ndarray) -> Dict[str, float]:
    """P-MPJPE (per-frame Procrustes) and root-relative MPJPE (mid-hip root) in mm over frames;
    both (T, 12, 3) metres in the same camera frame."""
    pred_body, ref_body = np.asarray(pred_body, np.float64), np.asarray(ref_body, np.float64)
    if pred_body.shape != ref_body.shape or pred_body.shape[-2:] != (12, 3):
        raise ValueError(f"expected two (frames, 12, 3) arrays, got {pred_body.shape} and {ref_body.shape}")
    if len(pred_body) == 0:
        return {"p_mpjpe_mm": float("nan"), "mpjpe_mm": float("nan"), "frames": 0}
    per_joint = joint_errors(procrustes_align(pred_body, ref_body), ref_body).mean(axis=0) * 1000
    return {"p_mpjpe_mm": float(per_joint.mean()),
            "mpjpe_mm": float(mpjpe_per_frame(root_centre(pred_body), root_centre(ref_body)).mean() * 1000),
            "frames": int(len(pred_body)), "p_mpjpe_per_joint_mm": dict(zip(BODY_NAMES, map(float, per_joint)))}


def mean_over_views(per_view: Dict[str, Dict[str, Dict[str, float]]]) -> Dict[str, Dict[str, float]]:
    """{view: {method: score}} -> {method: mean of the views' scores} (views where it is finite)."""
    methods = []
    for v in per_view.values():
        methods += [m for m in v if m not in methods]
    out = {}
    for m in methods:
        rows = [v[m] for v in per_view.values() if m in v and v[m]["frames"] > 0]
        out[m] = {k: float(np.mean([r[k] for r in rows])) if rows else float("nan") for k in ("p_mpjpe_mm", "mpjpe_mm")}
        if rows and all("p_mpjpe_per_joint_mm" in r for r in rows):
            out[m]["p_mpjpe_per_joint_mm"] = {j: float(np.mean([r["p_mpjpe_per_joint_mm"][j] for r in rows]))
                                              for j in rows[0]["p_mpjpe_per_joint_mm"]}
        out[m]["views"] = len(rows)
    return out


def _lifter_input(keypoints33: np.ndarray) -> Tuple[np.ndarray, str]:
    """BlazePose (T, 33, 3) -> what the pose-lifting pipeline takes: as is with
    ``keypoint_format="blazepose"`` when the package knows it, else the COCO-17 subset."""
    from modeling_mpm.keypoints import KEYPOINT_FORMATS

    if "blazepose" in KEYPOINT_FORMATS:
        return keypoints33, "blazepose"
    coco_from_blazepose = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
    return keypoints33[:, list(coco_from_blazepose)], "coco"


def _load_capture(path: str) -> Dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _capture_files(capture_cache) -> List[str]:
    if isinstance(capture_cache, (list, tuple)):
        return [str(p) for p in capture_cache]
    capture_cache = os.fspath(capture_cache)
    if os.path.isdir(capture_cache):
        files = [os.path.join(capture_cache, f"{n}.npz") for n in CAPTURES
                 if os.path.isfile(os.path.join(capture_cache, f"{n}.npz"))]
        files = files or sorted(f for f in glob.glob(os.path.join(capture_cache, "*.npz")) if not f.endswith("_blazepose.npz"))
        if not files:
            raise ValueError(f"{capture_cache} holds no capture .npz; make them with bench/bench_real_capture.py")
        return files
    if not os.path.isfile(capture_cache):
        raise ValueError(f"capture cache {capture_cache!r} does not exist")
    return [capture_cache]


def evaluate_on_capture(lifter_paths: Dict[str, str], capture_cache, mode: str = "seq2frame",
                        clean_projections: bool = True, progress: bool = False,
                        fix_left_right_swaps: bool = True, flip_augmentation: bool = True,
                        match_2d: bool = True, blazepose_3d_weight: float = 0.0, constant_bones: bool = True) -> Dict:
    """Score lifters on the real captures.

    Args:
        lifter_paths: ``{label: folder}`` of ``MPMForPoseLifting`` folders (or loaded models).
        capture_cache: a capture ``.npz`` (:func:`write_capture_npz`), a list of them, or a folder
            holding ``Demo_SinglePerson.npz`` / ``Demo_MultiPerson.npz``.
        mode: the pipeline's mode (``"seq2frame"``: the paper's protocol; ``"seq2seq"``: faster).
        clean_projections: also lift the reference projected into each camera (``<label>+clean``).
        fix_left_right_swaps: relabel BlazePose's left/right swaps before lifting, as ``lift_video``
            does (``keypoints.undo_left_right_swaps``); False lifts the 2D exactly as detected.
        flip_augmentation: average with the mirrored input, as ``lift_video`` does by default.
        match_2d: score each lifter's 3D moved onto its 2D (``match_2d``, as ``lift_video`` does by default) and,
            as ``<label>+unmatched``, the 3D as lifted; False: only the 3D as lifted, under ``<label>``.
        blazepose_3d_weight: > 0: BlazePose's own 3D blended into each lifter's 3D from BlazePose's 2D, as
            ``lift_video`` does (``blend_world_landmarks``; the 3D without it: ``<label>+unblended``).
        constant_bones: each bone its median length over the take before matching, as ``lift_video`` does
            (the pipeline's ``constant_bones``; the ``+unmatched`` rows are scored after it too).

    Returns:
        ``{"captures": {name: {"views": {camera: {method: {"p_mpjpe_mm", "mpjpe_mm", "frames"}}},
        "mean_over_views": {method: ...}, "reprojection_error_px": {...}}}, "mean_over_captures":
        {method: ...}, "body_joints": [...], "protocol": "..."}``. Methods: each label, ``<label>+clean`` (and
        their ``+unmatched``; ``<label>+unblended``),
        ``blazepose_3d``, ``mean_pose``. Frames scored per view: all 12 reference joints
        triangulated and BlazePose found the person in that view.
    """
    from transformers import pipeline

    import modeling_mpm  # noqa: F401  (registers the pose-lifting task)

    pipes = {label: pipeline("pose-lifting", model=path) for label, path in lifter_paths.items()}
    out = {"captures": {}, "body_joints": list(BODY_NAMES),
           "protocol": "per view: BlazePose 2D of that view lifted, compared with the multi-view triangulated "
                       "reference in that camera's frame on 12 body joints; P-MPJPE = per-frame Procrustes, "
                       "MPJPE = root-relative (mid-hip), mm", "mode": mode,
           "fix_left_right_swaps": fix_left_right_swaps, "flip_augmentation": flip_augmentation, "match_2d": match_2d,
           "blazepose_3d_weight": blazepose_3d_weight, "constant_bones": constant_bones}
    for path in _capture_files(capture_cache):
        cap = _load_capture(path)
        name = str(cap.get("name", os.path.splitext(os.path.basename(path))[0]))
        ref_w = cap["reference_world"]
        ref_ok = np.isfinite(body_joints(ref_w, "blazepose")).all(axis=(-1, -2))
        views = {}
        names = [str(n) for n in cap.get("camera_names", [f"cam{v + 1:02d}" for v in range(len(cap["R"]))])]
        for v, cam_name in enumerate(names):
            R, t, K = cap["R"][v], cap["t"][v], cap["intrinsics"][v]
            w, h = (float(x) for x in cap["image_size"][v])
            frames = ref_ok & cap["detected"][v].astype(bool)
            ref_cam = ref_w @ R.T + t                                   # (T, 33, 3) camera metres
            ref_body = root_centre(body_joints(ref_cam, "blazepose"))[frames]
            res = {}
            kp, fmt = _lifter_input(cap["keypoints"][v].astype(np.float64))
            clean = _clean_input(ref_cam, K) if clean_projections else None
            for label, pipe in pipes.items():
                pred = pipe(kp, image_size=(w, h), keypoint_format=fmt, confidence_threshold=CONFIDENCE_THRESHOLD,
                            mode=mode, progress=progress, fix_left_right_swaps=fix_left_right_swaps,
                            flip_augmentation=flip_augmentation, return_keypoints_2d=True,
                            constant_bones=constant_bones)
                res.update(_score_lifted(label, pred, (w, h), match_2d, frames, ref_body, cap["world_blazepose"][v],
                                         blazepose_3d_weight))
                if clean is not None:
                    pred = pipe(clean, image_size=(w, h), keypoint_format=fmt, confidence_threshold=0.5,
                                mode=mode, progress=progress, flip_augmentation=flip_augmentation,
                                return_keypoints_2d=True, constant_bones=constant_bones)
                    res.update(_score_lifted(label + "+clean", pred, (w, h), match_2d, frames, ref_body))
            res["blazepose_3d"] = score(body_joints(cap["world_blazepose"][v], "blazepose")[frames], ref_body)
            mean_pose = ref_body.mean(axis=0, keepdims=True) if len(ref_body) else ref_body
            res["mean_pose"] = score(np.broadcast_to(mean_pose, ref_body.shape), ref_body)
            views[cam_name] = res
        err = cap["reprojection_error_px"]
        used = cap["used_views"] if "used_views" in cap else np.isfinite(err)
        body_err = err[:, :, list(BLAZEPOSE_BODY)]
        body_used = used[:, :, list(BLAZEPOSE_BODY)]
        out["captures"][name] = {
            "views": views,
            "mean_over_views": mean_over_views(views),
            "frames": int(ref_ok.sum()), "total_frames": int(len(ref_ok)),
            "reprojection_error_px": {
                "body_used_median": float(np.nanmedian(np.where(body_used, body_err, np.nan))),
                "body_used_mean": float(np.nanmean(np.where(body_used, body_err, np.nan))),
                "all33_used_median": float(np.nanmedian(np.where(used, err, np.nan))),
                "body_views_left_out_fraction": float(1 - body_used.sum() / max(np.isfinite(body_err).sum(), 1)),
                "per_view_body_median": {n: float(np.nanmedian(body_err[v])) for v, n in enumerate(names)},
            },
        }
    caps = list(out["captures"].values())
    methods = list(caps[0]["mean_over_views"]) if caps else []
    out["mean_over_captures"] = {
        m: {k: float(np.mean([c["mean_over_views"][m][k] for c in caps])) for k in ("p_mpjpe_mm", "mpjpe_mm")}
        for m in methods}
    return out


def _clean_input(ref_cam: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """The reference (T, 33, 3) camera metres projected into the view: the lifter's 2D input without detector
    error (visibility 1 where the projection is finite)."""
    from modeling_mpm.cameras import project_to_pixels

    uv = project_to_pixels(ref_cam, intrinsics)
    ok = np.isfinite(uv).all(-1)
    clean = np.concatenate([np.where(ok[..., None], uv, np.nan), ok[..., None].astype(np.float64)], -1)
    return _lifter_input(clean)[0]


def _score_lifted(label: str, lifted: Dict, image_size, match_2d: bool, frames: np.ndarray, ref_body: np.ndarray,
                  world: Optional[np.ndarray] = None, blazepose_3d_weight: float = 0.0) -> Dict[str, Dict]:
    """Scores of a pipeline output (``return_keypoints_2d=True``) as ``lift_video`` makes it, under ``label``: matched
    to its 2D (``match_2d``), BlazePose's 3D ``world`` (T, 33, 3) blended in (``blazepose_3d_weight`` > 0); and
    without the last step(s): ``<label>+unblended`` (matched, not blended), ``<label>+unmatched`` (as lifted)."""
    from modeling_mpm.reprojection import match_keypoints_2d
    from modeling_mpm.video.blazepose import blend_world_landmarks

    def scored(pose):
        return score(body_joints(pose, "h36m")[frames], ref_body)

    raw = lifted["pose_3d"]
    pose = match_keypoints_2d(raw, lifted["keypoints_2d"], image_size) if match_2d else raw
    rows = {}
    if world is not None and blazepose_3d_weight > 0:
        rows[label + "+unblended"] = scored(pose)
        pose = blend_world_landmarks(pose, world, blazepose_3d_weight)
    rows = {label: scored(pose), **rows}
    if match_2d:
        rows[label + "+unmatched"] = scored(raw)
    return rows


#: the 12-joint body as a tree for :func:`retarget_body`: (joint, parent); "mid_hip" / "mid_shoulder" are the
#: midpoints of the two hips / shoulders
_BODY_TREE = (("left_hip", "mid_hip"), ("right_hip", "mid_hip"), ("left_knee", "left_hip"), ("right_knee", "right_hip"),
              ("left_ankle", "left_knee"), ("right_ankle", "right_knee"), ("mid_shoulder", "mid_hip"),
              ("left_shoulder", "mid_shoulder"), ("right_shoulder", "mid_shoulder"), ("left_elbow", "left_shoulder"),
              ("right_elbow", "right_shoulder"), ("left_wrist", "left_elbow"), ("right_wrist", "right_elbow"))


def _with_midpoints(body: np.ndarray) -> Dict[str, np.ndarray]:
    j = {n: body[..., i, :] for i, n in enumerate(BODY_NAMES)}
    j["mid_hip"] = (j["left_hip"] + j["right_hip"]) / 2
    j["mid_shoulder"] = (j["left_shoulder"] + j["right_shoulder"]) / 2
    return j


def body_bone_lengths(body: np.ndarray) -> Dict[str, float]:
    """Mean length of every bone of :data:`_BODY_TREE` over the frames of ``body`` (T, 12, 3)."""
    j = _with_midpoints(np.asarray(body, np.float64))
    return {c: float(np.nanmean(np.linalg.norm(j[c] - j[p], axis=-1))) for c, p in _BODY_TREE}


def retarget_body(body: np.ndarray, lengths: Dict[str, float]) -> np.ndarray:
    """``body`` (T, 12, 3) with every bone's direction kept and its length from ``lengths``
    (scaled so that the left thigh keeps its length): the same poses by a body of other proportions."""
    body = np.asarray(body, np.float64)
    j = _with_midpoints(body)
    scale = body_bone_lengths(body)["left_knee"] / lengths["left_knee"]
    out = {"mid_hip": j["mid_hip"]}
    for c, p in _BODY_TREE:
        d = j[c] - j[p]
        out[c] = out[p] + d / np.linalg.norm(d, axis=-1, keepdims=True) * lengths[c] * scale
    return np.stack([out[n] for n in BODY_NAMES], axis=-2)


def proportion_floor(capture_files: Sequence[str]) -> Dict[str, Dict[str, float]]:
    """P-MPJPE (mm) of each capture's reference against itself retargeted to each embedded
    sequence's body (the demo data): what a lifter that got every pose exactly right, in that
    body's proportions, would score. ``{sequence: {capture: mm}}``."""
    from modeling_mpm.data import load_demo_dataset

    demo = load_demo_dataset()
    refs = {}
    for path in capture_files:
        cap = _load_capture(path)
        ref = body_joints(cap["reference_world"], "blazepose")
        refs[str(cap.get("name", os.path.basename(path)))] = ref[np.isfinite(ref).all(axis=(-1, -2))]
    out = {}
    for split in demo:
        for row in demo[split]:
            lengths = body_bone_lengths(body_joints(np.asarray(row["pose_3d"], np.float64), "h36m"))
            out[row["sequence"]] = {name: float(p_mpjpe_per_frame(retarget_body(ref, lengths), ref).mean() * 1000)
                                    for name, ref in refs.items()}
    return out


def format_table(result: Dict) -> str:
    """The result as a text table (mm): one row per method, columns per capture and the mean."""
    caps = list(result["captures"])
    methods = list(result["mean_over_captures"])
    head = "| method | " + " | ".join(f"{c} P-MPJPE / MPJPE" for c in caps) + " | mean P-MPJPE / MPJPE |"
    lines = [head, "|" + "---|" * (len(caps) + 2)]
    for m in methods:
        cells = [f"{result['captures'][c]['mean_over_views'][m]['p_mpjpe_mm']:.1f} / "
                 f"{result['captures'][c]['mean_over_views'][m]['mpjpe_mm']:.1f}" for c in caps]
        mo = result["mean_over_captures"][m]
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {mo['p_mpjpe_mm']:.1f} / {mo['mpjpe_mm']:.1f} |")
    lines.append("")
    for c in caps:
        r = result["captures"][c]["reprojection_error_px"]
        lines.append(f"{c}: {result['captures'][c]['frames']}/{result['captures'][c]['total_frames']} frames with the "
                     f"12 body joints triangulated; reprojection error of the body joints (views used) median "
                     f"{r['body_used_median']:.1f} px, mean {r['body_used_mean']:.1f} px; "
                     f"{100 * r['body_views_left_out_fraction']:.0f}% of body observations left out")
        per = result["captures"][c]["views"]
        for view, res in per.items():
            lines.append(f"  {view}: " + ", ".join(f"{m} {s['p_mpjpe_mm']:.0f}/{s['mpjpe_mm']:.0f}" for m, s in res.items()))
    return "\n".join(lines)


METHOD_NOTES = {
    "blazepose_3d": "BlazePose's own 3D (world landmarks)",
    "mean_pose": "per-sequence mean pose (input-blind)",
}


def _method_name(m: str) -> str:
    if m in METHOD_NOTES:
        return METHOD_NOTES[m]
    if m.endswith("+unmatched"):
        return _method_name(m[:-len("+unmatched")]) + ", 3D as lifted (no 2D match)"
    if m.endswith("+unblended"):
        return _method_name(m[:-len("+unblended")]) + ", without BlazePose's 3D blended in"
    if m.endswith("+clean"):
        return f"`{m[:-6]}` fed clean projections of the reference"
    return f"`{m}` (BlazePose 2D)"


def report_section(res: Dict, number: int = 11) -> List[str]:
    """The bench/RESULTS.md section (Markdown lines) for a ``real_capture.json`` result."""
    m = res.get("meta", {})
    caps = list(res["captures"])
    L = [f"## {number}. Real capture: BlazePose 2D -> 3D on a four-camera recording", "",
         f"Command: `{m.get('command', 'n/a')}` (commit {m.get('git_commit', 'n/a')}, {m.get('started_utc', 'n/a')}, "
         f"torch {m.get('torch', 'n/a')}, {m.get('threads', 'n/a')} thread(s), load average before "
         f"{m.get('load_before', 'n/a')}, after {m.get('load_after', 'n/a')}, {m.get('wall_s', 0):.0f} s wall-clock, "
         "BlazePose detections cached after the first run). Lifters: "
         + (", ".join(f"`{k}` = `{v}`" for k, v in (m.get("lifters") or {}).items()) or "none (baselines only)")
         + "." + C.updated_rows_note(m), "",
         "Data: the two demo captures of the pose2sim 0.10.49 wheel (BSD-3-Clause, DATA_NOTES.md): four "
         "synchronised 60 fps cameras mounted high, 100 frames of a throwing-like motion; in `Demo_MultiPerson` a "
         + ("second person is painted out per frame: her silhouette (BlazePose segmentation inside the "
            f"rectangles of `MULTIPERSON_MASKS`, widened by {SILHOUETTE_MARGIN_PX} px; `--mask silhouettes`). "
            "The earlier protocol painted the whole rectangles, which also hid 14-23% of the performer's "
            "joints in two views (bench/results/real_capture_rectangles.json). "
            if str(m.get("multiperson_masking", "")).startswith("silhouettes") else
            "second person is painted out per view (fixed black rectangles, `MULTIPERSON_MASKS`; `--mask "
            "rectangles`). ")
         + "Reference: the 33 "
         "BlazePose landmarks of the four views triangulated (DLT, visibility >= "
         f"{m.get('reference_rule', {}).get('min_visibility', REFERENCE_MIN_VISIBILITY)}, the worst view left out "
         f"per joint while it reprojects > {m.get('reference_rule', {}).get('max_reprojection_error_px', REFERENCE_MAX_ERROR_PX)} px "
         "and >= 3 views are in use, joints whose last two views still disagree dropped, BlazePose's left/right "
         "swaps in a view undone for the reference by leave-one-view-out consistency). Each view's BlazePose 2D "
         f"is lifted alone (`pose-lifting` pipeline, the detector's left/right swaps relabelled, flip test-time augmentation, "
         + ("each bone its median length over the take (`constant_bones`), " if res.get("constant_bones") else "")
         + f"{'the 3D moved onto its 2D (`match_2d`)' if res.get('match_2d') else 'no 2D match'}"
         + (f", BlazePose's own 3D blended in at {res['blazepose_3d_weight']:g} (`blend_world_landmarks`)"
            if res.get("blazepose_3d_weight") else "")
         + f", as `lift_video` does, `keypoint_format=\"blazepose\"`, mode {res.get('mode')}) and "
         "compared with the reference in that camera's frame on 12 body joints (hips, knees, ankles, shoulders, "
         "elbows, wrists): P-MPJPE (per-frame Procrustes) / root-relative MPJPE (root = mid-hip), mm, mean of "
         "the four views; frames where all 12 reference joints exist and BlazePose found the person in the view. "
         "The numbers depend on the reference rule: a reference that keeps BlazePose's left/right swaps and the "
         "joints whose views disagree is noisier and raises every method's error (also the input-blind mean "
         "pose's), so compare methods within one run, not with numbers made from another reference.", ""]
    L += ["| method | " + " | ".join(f"{c} P-MPJPE / MPJPE" for c in caps) + " | mean P-MPJPE / MPJPE |",
          "|" + "---|" * (len(caps) + 2)]
    for meth, mo in res["mean_over_captures"].items():
        cells = [f"{res['captures'][c]['mean_over_views'][meth]['p_mpjpe_mm']:.1f} / "
                 f"{res['captures'][c]['mean_over_views'][meth]['mpjpe_mm']:.1f}" for c in caps]
        L.append(f"| {_method_name(meth)} | " + " | ".join(cells) + f" | {mo['p_mpjpe_mm']:.1f} / {mo['mpjpe_mm']:.1f} |")
    L.append("")
    views = list(next(iter(res["captures"].values()))["views"])
    L += ["P-MPJPE per view (mm):", "", "| capture | method | " + " | ".join(views) + " |",
          "|" + "---|" * (len(views) + 2)]
    for c in caps:
        for meth in res["mean_over_captures"]:
            L.append(f"| {c} | {meth} | " + " | ".join(
                f"{res['captures'][c]['views'][v][meth]['p_mpjpe_mm']:.1f}" for v in views) + " |")
    L.append("")
    for c in caps:
        r, cap = res["captures"][c]["reprojection_error_px"], res["captures"][c]
        L.append(f"- {c}: {cap['frames']} of {cap['total_frames']} frames with all 12 body joints triangulated; "
                 f"reprojection error of the body joints over the views used: median {r['body_used_median']:.1f} px, "
                 f"mean {r['body_used_mean']:.1f} px (all 33 landmarks: median {r['all33_used_median']:.1f} px); "
                 f"{100 * r['body_views_left_out_fraction']:.0f}% of the body-joint observations left out; per view, "
                 "median over all observations: " + ", ".join(f"{v} {e:.1f}" for v, e in r["per_view_body_median"].items())
                 + " px.")
    L.append("")
    return L


def convert_official(ckpt: str, out_dir: str, refine: Optional[str] = None) -> str:
    """Convert an authors'-layout lifter checkpoint with the package's converter; returns the folder."""
    from modeling_mpm.convert_official import convert_official_checkpoint
    from modeling_mpm import MPMForPoseLifting

    model = convert_official_checkpoint(ckpt, refine_path=refine)
    if not isinstance(model, MPMForPoseLifting):
        raise ValueError(f"{ckpt} is a pre-training checkpoint ({type(model).__name__}); pass a fine-tuned lifter")
    model.save_pretrained(out_dir)
    return out_dir


def _parse_model(spec: str) -> Tuple[str, str]:
    if "=" in spec:
        label, path = spec.split("=", 1)
    else:
        label, path = os.path.basename(os.path.normpath(spec)), spec
    if not label or not path:
        raise argparse.ArgumentTypeError(f"--model takes LABEL=FOLDER or FOLDER, got {spec!r}")
    return label, path


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", type=_parse_model, default=[], metavar="LABEL=FOLDER",
                    help="a pose-lifting folder to score (repeatable)")
    ap.add_argument("--official", default=None, help="an authors'-layout lifter checkpoint, converted and scored")
    ap.add_argument("--official-refine", default=None, help="its refine module checkpoint (optional)")
    ap.add_argument("--wheel", default=None, help=f"the {WHEEL_NAME} (default: cached or pip download)")
    ap.add_argument("--cache-dir", default=CACHE_DIR)
    ap.add_argument("--export-dir", default=None, help="where the capture .npz files go (default: the cache folder)")
    ap.add_argument("--captures", default=",".join(CAPTURES))
    ap.add_argument("--mode", default="seq2frame", choices=("seq2frame", "seq2seq"))
    ap.add_argument("--redetect", action="store_true", help="run BlazePose again even when cached")
    ap.add_argument("--mask", default="silhouettes", choices=MASK_MODES,
                    help="Demo_MultiPerson's second person painted out as her silhouette per frame (default) or as "
                         "the whole fixed rectangles (the earlier protocol)")
    ap.add_argument("--no-flip", action="store_true", help="no flip test-time augmentation (lift_video's --no-flip)")
    ap.add_argument("--no-match-2d", action="store_true",
                    help="score only the 3D as lifted (default: also moved onto its 2D, as lift_video does)")
    ap.add_argument("--no-constant-bones", action="store_true",
                    help="keep each frame's lifted bone lengths (lift_video's --no-constant-bones)")
    ap.add_argument("--blazepose-3d-weight", type=float, default=None,
                    help="share of BlazePose's own 3D blended into the lifted 3D, as lift_video does (default: "
                         "lift_video's, modeling_mpm.video.blazepose.WORLD_LANDMARKS_WEIGHT; 0 = none)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=RESULTS_JSON)
    C.add_merge_arguments(ap)
    ap.add_argument("--proportion-floor", action="store_true",
                    help="only print proportion_floor() of the cached captures (perfect poses in each embedded body)")
    args = ap.parse_args(argv)
    C.check_merge_arguments(ap, args)
    if args.proportion_floor:
        paths = prepare_captures(args.wheel, args.cache_dir, args.export_dir, [c for c in args.captures.split(",") if c],
                                 mask=args.mask)
        print(json.dumps(proportion_floor(paths), indent=1))
        return 0
    import torch

    torch.set_num_threads(args.threads)
    meta = C.run_meta("real_capture", args.threads, argv, script=os.path.abspath(__file__))
    t0 = time.time()
    paths = prepare_captures(args.wheel, args.cache_dir, args.export_dir,
                             [c for c in args.captures.split(",") if c], force=args.redetect, mask=args.mask)
    lifters = dict(args.model)
    if len(lifters) != len(args.model):
        raise SystemExit("--model labels must be unique")
    if args.official:
        lifters["official"] = convert_official(args.official, os.path.join(args.cache_dir, "official_converted"),
                                               args.official_refine)
    from modeling_mpm.video.blazepose import WORLD_LANDMARKS_WEIGHT

    weight = WORLD_LANDMARKS_WEIGHT if args.blazepose_3d_weight is None else args.blazepose_3d_weight
    result = evaluate_on_capture(lifters, paths, mode=args.mode, flip_augmentation=not args.no_flip,
                                 match_2d=not args.no_match_2d, blazepose_3d_weight=weight,
                                 constant_bones=not args.no_constant_bones)
    result["meta"] = dict(meta, wall_s=round(time.time() - t0, 1), load_after=C.load_average(),
                          lifters=lifters, capture_files=paths,
                          reference_rule={"min_visibility": REFERENCE_MIN_VISIBILITY,
                                          "max_reprojection_error_px": REFERENCE_MAX_ERROR_PX},
                          multiperson_masks={k: {str(v): r for v, r in m.items()} for k, m in MULTIPERSON_MASKS.items()},
                          multiperson_masking=_masking("Demo_MultiPerson", args.mask))
    print(format_table(result))
    C.write_json(result, args.out)
    print(f"[real-capture] wrote {args.out}")
    C.merge_if_asked(args, result, list(lifters), tag="real-capture",
                     same=("mode", "flip_augmentation", "match_2d", "blazepose_3d_weight", "fix_left_right_swaps",
                           "constant_bones",
                           "body_joints", "protocol", "mean_over_captures.mean_pose", "mean_over_captures.blazepose_3d"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
