"""Video -> 3D: person detector (RT-DETR) -> ViTPose (COCO-17 2D) -> tracks -> MPM (3D), or
MediaPipe BlazePose (33 landmarks, one person, offline) -> MPM (3D); ``mpm lift-video`` on the command line.

``lift_video("clip.mp4", output="clip_3d.npz", render="clip_3d.mp4")["tracks"][id]["pose_3d"]`` is
``(n, 17, 3)`` metres, camera frame. Frames are decoded with PyAV (the ``video`` extra) ``batch_size`` at a
time and only keypoints and boxes are kept, so memory does not grow with the video. ``detector`` and
``pose_model`` take a Hub id / folder or any callable like :class:`PersonDetector` / :class:`ViTPoseEstimator`.
"""

from __future__ import annotations

import contextlib
import fractions
import itertools
import os
import time
import warnings
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import numpy as np

from ..atomic import atomic_write_file
from ..pretrained import GENERAL_LIFTER
from .blazepose import WORLD_LANDMARKS_WEIGHT, BlazePoseEstimator, blend_world_landmarks, check_blend_weight
from .tracking import IoUTracker, group_tracks
from .vitpose import person_keypoints

__all__ = ["lift_video", "PersonDetector", "ViTPoseEstimator", "iter_video_frames", "video_info",
           "render_video", "save_tracks_npz", "DEFAULT_DETECTOR", "DEFAULT_POSE_MODEL", "BLAZEPOSE_NAMES",
           "DEFAULT_OFFLINE_LIFTER"]

DEFAULT_DETECTOR = "PekingU/rtdetr_r50vd_coco_o365"
DEFAULT_POSE_MODEL = "usyd-community/vitpose-base-simple"
#: ``pose_model`` names that select MediaPipe BlazePose (offline, one person, no detector)
BLAZEPOSE_NAMES = ("mediapipe", "blazepose")
#: the lifter used when none is given: the general lifter shipped in the package (runs offline)
DEFAULT_OFFLINE_LIFTER: Optional[str] = GENERAL_LIFTER


def _av():
    try:
        import av
    except ImportError:
        raise ImportError('video decoding needs PyAV: pip install "modeling-mpm[video]" (or pip install av)') from None
    return av


def video_info(path: str) -> Dict[str, float]:
    """``{"fps", "width", "height", "frames"}`` of the first video stream (``frames`` 0 if unknown)."""
    av = _av()
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no video file at {path!r}")
    try:
        container = av.open(path)
    except av.FFmpegError as e:  # not a video, truncated, unknown container
        raise ValueError(f"{path}: not a readable video ({getattr(e, 'strerror', None) or e})") from None
    with container as c:
        if not c.streams.video:
            raise ValueError(f"{path!r} has no video stream")
        s = c.streams.video[0]
        fps = float(s.average_rate) if s.average_rate else 25.0
        return {"fps": fps, "width": int(s.width), "height": int(s.height), "frames": int(s.frames or 0)}


def iter_video_frames(path: str, max_frames: Optional[int] = None) -> Iterator[np.ndarray]:
    """Decoded frames of ``path`` one at a time, ``(height, width, 3)`` uint8 RGB."""
    av = _av()
    with av.open(path) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        for i, frame in enumerate(c.decode(s)):
            if max_frames is not None and i >= max_frames:
                break
            yield frame.to_ndarray(format="rgb24")


def _unavailable(what: str, model, hint: str) -> OSError:
    """One sentence for a model that could not be loaded (transformers raises OSError offline)."""
    if isinstance(model, str) and not os.path.exists(model):
        from huggingface_hub.utils import HFValidationError, validate_repo_id

        try:
            validate_repo_id(model)
        except HFValidationError:
            return OSError(f"no folder at {model!r} for the {what} (and it is not a Hugging Face Hub id)")
    return OSError(f"could not load the {what} {model!r}: it is not a local folder and not in the Hugging Face "
                   f"cache, and the Hub could not be reached (offline, HF_HUB_OFFLINE=1?) or has no such model; {hint}")


_OFFLINE_HINT = ("pose_model='mediapipe' (mpm lift-video --pose-model mediapipe) runs offline, or pass a local "
                 "folder holding the model")


def _from_pretrained(load, model, what: str, hint: str = _OFFLINE_HINT):
    """``load(model)``; an OSError for a Hub id becomes one sentence naming it (a local folder's pass through)."""
    try:
        return load(model)
    except OSError as e:
        if isinstance(model, str) and os.path.isdir(model):
            raise
        raise _unavailable(what, model, hint) from e


def _torch_device(device):
    import torch

    return torch.device("cpu" if device is None else device)


class PersonDetector:
    """Person boxes with a transformers object detector (Hub id / folder; default RT-DETR, COCO classes).

    ``detector(images)`` with ``(height, width, 3)`` uint8 RGB frames returns per frame ``{"boxes": (n, 4) x0, y0,
    x1, y1 pixels, "scores": (n,)}`` above ``threshold``, sorted by score, at most ``max_people``.
    """

    def __init__(self, model: str = DEFAULT_DETECTOR, threshold: float = 0.5, max_people: Optional[int] = None,
                 device=None):
        from transformers import AutoImageProcessor, AutoModelForObjectDetection

        self.device = _torch_device(device)
        self.processor = _from_pretrained(AutoImageProcessor.from_pretrained, model, "person detector")
        self.model = _from_pretrained(AutoModelForObjectDetection.from_pretrained, model,
                                      "person detector").to(self.device).eval()
        labels = {int(k): str(v).lower() for k, v in self.model.config.id2label.items()}
        self.person_ids = sorted(k for k, v in labels.items() if v == "person")
        if not self.person_ids:
            raise ValueError(f"detector {model!r} has no 'person' class (labels: {sorted(labels.values())[:10]}...)")
        self.threshold, self.max_people = float(threshold), max_people

    def __call__(self, images: Sequence[np.ndarray]) -> List[Dict[str, np.ndarray]]:
        import torch

        inputs = self.processor(images=list(images), return_tensors="pt").to(self.device)
        with torch.inference_mode():
            outputs = self.model(**inputs)
        sizes = [img.shape[:2] for img in images]
        res = self.processor.post_process_object_detection(outputs, threshold=self.threshold, target_sizes=sizes)
        out = []
        for r in res:
            keep = np.isin(r["labels"].cpu().numpy(), self.person_ids)
            boxes, scores = r["boxes"].cpu().numpy()[keep], r["scores"].cpu().numpy()[keep]
            order = np.argsort(-scores, kind="stable")[: self.max_people]
            out.append({"boxes": boxes[order].astype(np.float64), "scores": scores[order].astype(np.float64)})
        return out


class ViTPoseEstimator:
    """COCO-17 keypoints of given person boxes with transformers' ViTPose.

    ``estimator(images, boxes)`` (per frame ``(n, 4)`` x0, y0, x1, y1 pixels) returns per frame a list over the
    boxes of ``{"keypoints": (17, 2) pixels, "scores": (17,), "bbox": (4,) x, y, w, h, ...}``.
    """

    def __init__(self, model: str = DEFAULT_POSE_MODEL, device=None):
        from transformers import AutoProcessor, VitPoseForPoseEstimation

        self.device = _torch_device(device)
        self.processor = _from_pretrained(AutoProcessor.from_pretrained, model, "ViTPose model")
        self.model = _from_pretrained(VitPoseForPoseEstimation.from_pretrained, model,
                                      "ViTPose model").to(self.device).eval()
        bb = getattr(self.model.config, "backbone_config", None)
        self.num_experts = int(getattr(bb, "num_experts", 1) or 1)

    def __call__(self, images: Sequence[np.ndarray], boxes: Sequence[np.ndarray]) -> List[list]:
        import torch

        out: List[list] = [[] for _ in images]
        todo = [i for i, b in enumerate(boxes) if len(b)]
        if not todo:
            return out
        coco = []
        for i in todo:  # x0, y0, x1, y1 -> COCO x, y, w, h (what the processor takes)
            b = np.asarray(boxes[i], dtype=np.float32).reshape(-1, 4).copy()
            b[:, 2:] -= b[:, :2]
            coco.append(b)
        inputs = self.processor([images[i] for i in todo], boxes=coco, return_tensors="pt").to(self.device)
        if self.num_experts > 1:  # ViTPose++: pick the COCO expert
            inputs["dataset_index"] = torch.zeros(inputs["pixel_values"].shape[0], dtype=torch.long,
                                                  device=self.device)
        with torch.inference_mode():
            outputs = self.model(**inputs)
        res = self.processor.post_process_pose_estimation(outputs, boxes=coco)
        for i, r in zip(todo, res):
            out[i] = r
        return out


def _lifting_pipeline(model, device=None):
    from transformers import pipeline

    from ..pipeline_mpm import PoseLiftingPipeline

    if isinstance(model, PoseLiftingPipeline):
        return model
    kw = {} if device is None else {"device": device}
    return _from_pretrained(lambda m: pipeline("pose-lifting", model=m, **kw), model, "MPM lifter",
                            hint="pass a local folder holding the lifter (save_pretrained output)")


#: torch threads of the lifting stage on the CPU (see :func:`_lifting_threads`)
LIFT_THREADS = 1


@contextlib.contextmanager
def _lifting_threads(pipe):
    """Run the lifter on :data:`LIFT_THREADS` torch thread(s) when it is on the CPU (restored after): its small
    matrix products ran ~100x slower with more threads on a busy CPU (bench_video_speed.py)."""
    import torch

    dev = getattr(getattr(pipe, "model", None), "device", None)
    n = torch.get_num_threads()
    if dev is None or dev.type != "cpu" or n <= LIFT_THREADS:
        yield
        return
    torch.set_num_threads(LIFT_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _progress(total: Optional[int], enabled: bool):
    if not enabled:
        return contextlib.nullcontext(None)
    from tqdm.auto import tqdm

    return tqdm(total=total or None, desc="frames", unit="frame")


def _is_blazepose(pose_model) -> bool:
    return isinstance(pose_model, BlazePoseEstimator) or (
        isinstance(pose_model, str) and pose_model.strip().lower().replace("-", "") in BLAZEPOSE_NAMES)


def lift_video(video: str, model=None, detector=None, pose_model="mediapipe", output: Optional[str] = None,
               render: Optional[str] = None, batch_size: int = 8, detection_threshold: float = 0.5,
               keypoint_threshold: float = 0.3, max_people: Optional[int] = None, tracker=None,
               min_track_frames: int = 1, mode: Optional[str] = None, flip_augmentation: bool = True, match_2d: bool = True,
               constant_bones: bool = True, blazepose_3d_weight: float = WORLD_LANDMARKS_WEIGHT, device=None,
               max_frames: Optional[int] = None, progress: bool = True) -> dict:
    """Detect, track and lift every person of a video to 3D (or, with BlazePose, the one person).

    Args:
        video: path of a video file (anything FFmpeg/PyAV decodes).
        model: MPM lifter (Hub id / folder, model or ``pose-lifting`` pipeline); None: :data:`DEFAULT_OFFLINE_LIFTER`.
        detector: Hub id / folder of a detector with a ``person`` class (default RT-DETR) or a callable like
            :class:`PersonDetector`; must stay ``None`` with BlazePose.
        pose_model: ``"mediapipe"`` (default) / ``"blazepose"`` / a ``BlazePoseEstimator`` (offline, one person,
            track id 0), or a ViTPose Hub id / folder (several people) or callable like :class:`ViTPoseEstimator`.
        output: optional ``.npz`` (:func:`save_tracks_npz`); render: optional ``.mp4`` (:func:`render_video`).
        batch_size: frames per detector / ViTPose forward pass (frames decoded at a time for BlazePose).
        detection_threshold, max_people: passed to :class:`PersonDetector` (Hub id / folder only).
        keypoint_threshold: 2D joints with a lower score / visibility are missing (masked for MPM).
        tracker: anything with ``update(boxes) -> ids`` (default :class:`IoUTracker`; ViTPose only).
        min_track_frames: drop tracks detected in fewer frames.
        mode: MPM mode, ``"seq2frame"`` (the paper's protocol, one window per frame) or ``"seq2seq"`` (one window
            per window length, much faster for long windows); None: :func:`default_lift_mode` of the lifter.
        flip_augmentation: also lift the mirrored 2D and average (default True; left/right swaps are undone).
        match_2d: move the 3D onto the 2D in the image plane, keeping the lifter's depth (default True; the
            pipeline's ``match_2d``, :mod:`modeling_mpm.reprojection`; 8 mm better on the real capture).
        constant_bones: give each track's bones their median length over the track before ``match_2d`` (default
            True; the pipeline's ``constant_bones``; docs/real_footage.md has what it changes).
        blazepose_3d_weight: BlazePose only: share of BlazePose's own 3D averaged into the lifted 3D
            (:func:`~modeling_mpm.video.blazepose.blend_world_landmarks`; default 0.2, 3 mm better on the real
            capture; 0 = the lifter's 3D alone).
        device: torch device for all models (default CPU; BlazePose always runs on the CPU).
        max_frames: stop after that many frames.

    Returns:
        ``{"tracks": {id: {"frames": (n,) frame indices, "pose_3d": (n, 17, 3) metres root-relative camera frame,
        "valid": (n, 17) bool, "keypoints_2d": (n, 17, 2) H36M-17 pixels (NaN = missing), "keypoints_coco":
        (n, 17, 3) x, y, score, "boxes": (n, 4), "detected": (n,) bool}}, "fps", "image_size": (w, h),
        "num_frames", "timings": seconds per stage}``. BlazePose tracks have ``"keypoints_blazepose"`` and
        ``"world_blazepose"`` (n, 33, 3) (metres) instead of ``"keypoints_coco"``.
    """
    _check_video_args(batch_size, pose_model, detector, blazepose_3d_weight)
    info = video_info(video)
    t_start = time.perf_counter()
    timings = {"load_models": 0.0, "decode": 0.0, "detect": 0.0, "pose": 0.0, "track": 0.0, "lift": 0.0}
    det_fn, pose_fn, own_estimator = _pose_models(pose_model, detector, detection_threshold, max_people, device)
    try:
        pipe = _lifting_pipeline(DEFAULT_OFFLINE_LIFTER if model is None else model, device)
        timings["load_models"] = time.perf_counter() - t_start
        frames2d, n_frames, size = _estimate_2d(video, info, timings, batch_size, max_frames, progress,
                                                det_fn, pose_fn, tracker)
    finally:
        if own_estimator is not None:
            own_estimator.close()
    tracks = _lift_tracks(pipe, frames2d(min_track_frames), size, "coco" if det_fn else "blazepose",
                          keypoint_threshold, mode or default_lift_mode(pipe.model), bool(flip_augmentation),
                          bool(match_2d), bool(constant_bones), float(blazepose_3d_weight), timings)
    result = {"tracks": tracks, "fps": info["fps"], "image_size": size, "num_frames": n_frames, "timings": timings}
    _write_outputs(video, result, output, render, progress)
    return result


def _write_outputs(video: str, result: dict, output: Optional[str], render: Optional[str], progress) -> None:
    """The ``.npz`` (``output``) and the rendered ``.mp4`` (``render``, time in ``timings["render"]``)."""
    if output:
        save_tracks_npz(result, output)
    if render:
        t0 = time.perf_counter()
        render_video(video, result, render, progress=progress)
        result["timings"]["render"] = time.perf_counter() - t0


def _check_video_args(batch_size, pose_model, detector, blazepose_3d_weight) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    check_blend_weight(blazepose_3d_weight)
    if _is_blazepose(pose_model) and detector is not None:
        raise ValueError("BlazePose finds the person itself; leave detector out with pose_model='mediapipe'")


def _pose_models(pose_model, detector, detection_threshold, max_people, device):
    """``(detector callable or None for BlazePose, 2D pose callable, own BlazePose estimator to close or None)``."""
    if not _is_blazepose(pose_model):
        det_fn: Callable = detector if callable(detector) else PersonDetector(
            DEFAULT_DETECTOR if detector is None else detector, threshold=detection_threshold,
            max_people=max_people, device=device)
        return det_fn, pose_model if callable(pose_model) else ViTPoseEstimator(pose_model, device=device), None
    if isinstance(pose_model, BlazePoseEstimator):
        pose_model.reset()  # a new video: forget the person tracked before
        return None, pose_model, None
    own = BlazePoseEstimator()
    return None, own, own


def _estimate_2d(video: str, info: dict, timings: dict, batch_size: int, max_frames, progress, det_fn, pose_fn,
                 tracker):
    """2D of the whole video (BlazePose when ``det_fn`` is None): ``(tracks(min_track_frames), frames, (w, h))``."""
    total = info["frames"] if max_frames is None else min(max_frames, info["frames"] or max_frames)
    with _progress(total, progress) as bar:
        batches = _batches(video, batch_size, max_frames, timings, bar)
        if det_fn is None:
            frames2d, n_frames, size = _blazepose_2d(batches, pose_fn, timings)
        else:
            frames2d, n_frames, size = _vitpose_2d(batches, det_fn, pose_fn, tracker, timings)
    if n_frames == 0:
        raise ValueError(f"no frame could be decoded from {video!r}")
    return frames2d, n_frames, size or (info["width"], info["height"])


#: lifters with windows up to this many frames run ``seq2frame`` in :func:`lift_video` by default
SEQ2FRAME_MAX_WINDOW = 81


def default_lift_mode(model) -> str:
    """``"seq2frame"`` for a lifter whose window is at most :data:`SEQ2FRAME_MAX_WINDOW` frames (the shipped general
    lifter's 27: 2.5 mm better on the real capture than ``seq2seq``, and the chain keeps over 0.8x the 2D model's
    frames/s, ``bench/bench_video_speed.py``), else ``"seq2seq"`` (a 243-frame window per frame would dominate)."""
    return "seq2frame" if int(model.config.num_frames) <= SEQ2FRAME_MAX_WINDOW else "seq2seq"


def _lift_tracks(pipe, tracks2d: dict, size, keypoint_format: str, keypoint_threshold: float, mode: str,
                 flip_augmentation: bool, match_2d: bool, constant_bones: bool, blazepose_3d_weight: float,
                 timings: dict) -> dict:
    """The ``tracks`` of :func:`lift_video`: every 2D track with a usable joint lifted by ``pipe`` (BlazePose tracks
    with its own 3D blended in, :func:`~modeling_mpm.video.blazepose.blend_world_landmarks`)."""
    t0, tracks = time.perf_counter(), {}
    with _lifting_threads(pipe):
        for tid, tr in tracks2d.items():
            kp = tr.pop("keypoints")
            if not (kp[..., 2] >= keypoint_threshold).any():
                continue  # no usable joint in the whole track
            res = pipe(kp, image_size=size, keypoint_format=keypoint_format, confidence_threshold=keypoint_threshold,
                       mode=mode, return_keypoints_2d=True, fix_left_right_swaps=True,
                       flip_augmentation=flip_augmentation, match_2d=match_2d, constant_bones=constant_bones)
            pose_3d = res["pose_3d"]
            if "world_blazepose" in tr and blazepose_3d_weight > 0:
                pose_3d = blend_world_landmarks(pose_3d, tr["world_blazepose"], blazepose_3d_weight)
            tracks[int(tid)] = {"frames": tr.pop("frames"), "pose_3d": pose_3d, "valid": res["valid"],
                                "keypoints_2d": np.asarray(res["keypoints_2d"], dtype=np.float32),
                                f"keypoints_{keypoint_format}": kp.astype(np.float32), **tr}
    timings["lift"] = time.perf_counter() - t0
    return tracks


def _per_frame(fn, batch: list, timings: dict, key: str, what: str) -> list:
    """``fn(batch)``, timed into ``timings[key]``; one result per frame, else ``ValueError``."""
    t0 = time.perf_counter()
    out = fn(batch)
    timings[key] += time.perf_counter() - t0
    if len(out) != len(batch):
        raise ValueError(f"{what} returned {len(out)} results for {len(batch)} frames")
    return out


def _batches(video: str, batch_size: int, max_frames: Optional[int], timings: dict, bar) -> Iterator[list]:
    """Lists of up to ``batch_size`` decoded frames (time in ``timings["decode"]``; ``bar`` advances after each)."""
    frames_it = iter_video_frames(video, max_frames)
    while True:
        t0 = time.perf_counter()
        batch = list(itertools.islice(frames_it, batch_size))
        timings["decode"] += time.perf_counter() - t0
        if not batch:
            return
        yield batch
        if bar is not None:
            bar.update(len(batch))


def _vitpose_2d(batches, det_fn, pose_fn, tracker, timings):
    """Detector -> ViTPose -> IoU tracks: ``(tracks(min_track_frames) -> {id: {"frames", "keypoints" (n, 17, 3),
    "boxes", "detected"}}, frames, (w, h))``."""
    tracker = IoUTracker() if tracker is None else tracker
    detections, ids, n_frames, size = [], [], 0, None
    for batch in batches:
        size = (batch[0].shape[1], batch[0].shape[0])
        dets = _per_frame(det_fn, batch, timings, "detect", "detector")
        t0 = time.perf_counter()
        boxes = [np.asarray(d["boxes"], dtype=np.float64).reshape(-1, 4) for d in dets]
        people = pose_fn(batch, boxes)
        timings["pose"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        for b, ppl in zip(boxes, people):
            if len(ppl) != len(b):
                raise ValueError(f"pose model returned {len(ppl)} people for {len(b)} boxes")
            kps = np.stack([person_keypoints(p)[0] for p in ppl]) if len(ppl) else np.zeros((0, 17, 3))
            detections.append({"keypoints": kps.astype(np.float32), "boxes": b})
            ids.append(np.asarray(tracker.update(b), dtype=np.int64))
        timings["track"] += time.perf_counter() - t0
        n_frames += len(batch)

    def tracks(min_track_frames):
        return group_tracks(detections, ids, min_track_frames=min_track_frames)

    return tracks, n_frames, size


def _blazepose_2d(batches, estimator, timings):
    """BlazePose on every frame, one track (id 0) from the first to the last frame with a person: ``(tracks(
    min_track_frames) -> {0: {"frames", "keypoints" (n, 33, 3), "world_blazepose", "boxes", "detected"}} or {},
    frames, (w, h))``."""
    kps, world, detected, size = [], [], [], None
    for batch in batches:
        size = (batch[0].shape[1], batch[0].shape[0])
        res = _per_frame(estimator, batch, timings, "pose", "BlazePose")
        for r in res:
            kps.append(np.asarray(r["keypoints"], dtype=np.float32))
            world.append(np.asarray(r["world"], dtype=np.float32))
            detected.append(bool(r["detected"]))
    n_frames = len(kps)

    def tracks(min_track_frames):
        seen = np.flatnonzero(detected)
        if len(seen) == 0 or len(seen) < min_track_frames:
            return {}
        first, last = int(seen[0]), int(seen[-1]) + 1
        kp = np.stack(kps[first:last])
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN frames (nobody) -> NaN box
            boxes = np.concatenate([np.nanmin(kp[..., :2], axis=1), np.nanmax(kp[..., :2], axis=1)], axis=1)
        return {0: {"frames": np.arange(first, last), "keypoints": kp, "world_blazepose": np.stack(world[first:last]),
                    "boxes": boxes.astype(np.float64), "detected": np.asarray(detected[first:last], dtype=bool)}}

    return tracks, n_frames, size


def save_tracks_npz(result: dict, path: str) -> str:
    """Write a :func:`lift_video` result atomically: ``track_ids`` (k,), ``fps``, ``image_size``, ``num_frames``
    and per track ``track{id}_<key>`` for every key of the track (shapes as in :func:`lift_video`)."""
    if not str(path).endswith(".npz"):
        raise ValueError(f"output must be a .npz path, got {path!r}")
    arrays = {"track_ids": np.asarray(sorted(result["tracks"]), dtype=np.int64),
              "fps": np.float64(result["fps"]), "image_size": np.asarray(result["image_size"], dtype=np.int64),
              "num_frames": np.int64(result["num_frames"])}
    for tid, tr in result["tracks"].items():
        for k, v in tr.items():
            arrays[f"track{tid}_{k}"] = np.asarray(v)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    return atomic_write_file(path, write)


def render_video(video: str, result: dict, path: str, dpi: int = 80, spacing: float = 1.2,
                 max_frames: Optional[int] = None, progress: bool = False) -> str:
    """Write an MP4 (PyAV): the video with every track's 2D on the left, the 3D skeletons (each track shifted
    ``spacing`` metres along x, labelled by id) on the right; frames decoded again one at a time. Returns ``path``.
    """
    av = _av()
    from ..render import _mpl, bone_colors, plot_skeleton_3d, setup_camera_axes_3d
    from ..skeleton import get_skeleton

    if not str(path).lower().endswith(".mp4"):
        raise ValueError(f"render writes an .mp4, got {path!r}")
    skel = get_skeleton("h36m17")
    plt = _mpl()
    tracks = result["tracks"]
    order = sorted(tracks)
    offsets = {t: np.array([spacing * i, 0.0, 0.0]) for i, t in enumerate(order)}
    w, h = result["image_size"]
    fig = plt.figure(figsize=(10, 5), dpi=dpi)
    ax2, ax3 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2, projection="3d")
    ax2.set_axis_off()
    image = ax2.imshow(np.zeros((h, w, 3), dtype=np.uint8))
    centre = np.array([spacing * (len(order) - 1) / 2, -0.2, 0.0])
    radius = max(1.0, spacing * len(order) / 2)
    setup_camera_axes_3d(ax3, centre, radius, "3D (camera frame)")
    cols = bone_colors(skel)
    n = result["num_frames"] if max_frames is None else min(max_frames, result["num_frames"])
    fig.canvas.draw()
    W, H = fig.canvas.get_width_height()
    W, H = W - W % 2, H - H % 2
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"

    def write(tmp: str) -> None:
        with av.open(tmp, "w") as out, _progress(n, progress) as bar:
            rate = fractions.Fraction(float(result["fps"] or 25.0)).limit_denominator(1001)
            stream = out.add_stream(codec, rate=rate)
            stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
            for t, frame in enumerate(iter_video_frames(video, n)):
                image.set_data(frame)
                for artist in list(ax2.lines) + list(ax2.texts) + list(ax3.lines) + list(ax3.texts):
                    artist.remove()
                ax3.set_title(f"3D (camera frame), frame {t}")
                for tid in order:
                    tr = tracks[tid]
                    i = t - int(tr["frames"][0])
                    if not 0 <= i < len(tr["frames"]):
                        continue
                    k2 = tr["keypoints_2d"][i]
                    for (a, b), col in zip(skel.bones, cols):
                        if np.isfinite(k2[[a, b]]).all():
                            ax2.plot(k2[[a, b], 0], k2[[a, b], 1], color=col, lw=2)
                    if np.isfinite(k2).all(1).any():
                        top = k2[np.isfinite(k2).all(1)].min(0)
                        ax2.text(top[0], top[1] - 5, str(tid), color="yellow", fontsize=9)
                    p3 = tr["pose_3d"][i] + offsets[tid]
                    plot_skeleton_3d(ax3, p3, skel)
                    ax3.text(p3[0, 0], p3[0, 2], -p3[0, 1] + 1.0, str(tid))
                fig.canvas.draw()
                rgb = np.asarray(fig.canvas.buffer_rgba())[:H, :W, :3]
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")):
                    out.mux(packet)
                if bar is not None:
                    bar.update(1)
            for packet in stream.encode():
                out.mux(packet)

    try:
        atomic_write_file(path, write, suffix=".mp4")
    finally:
        plt.close(fig)
    return path
