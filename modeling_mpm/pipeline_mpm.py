"""transformers pipelines for MPM: ``"pose-lifting"`` (2D keypoints -> 3D) and ``"pose-completion"``.

After ``import modeling_mpm`` (which calls :func:`register_pipelines`)::

    from transformers import pipeline
    pipe = pipeline("pose-lifting", model="path/or/hub-id")     # or model=MPMForPoseLifting(...)
    out = pipe(keypoints, image_size=(1920, 1080), keypoint_format="coco")
    out["pose_3d"]   # (frames, 17, 3) metres, root-relative, camera frame (x right, y down, z forward)
    out["valid"]     # (frames, 17) bool, False where the 2D joint was missing (masked for the model)

Saved with ``pipe.save_pretrained(dir)`` it also loads without the package (``trust_remote_code=True``): this
module is copied next to the weights as remote code, so it imports only flat sibling modules.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Dict

import numpy as np
from transformers import Pipeline

from .inference import LIFT_MODES, _check_bool, complete_sequence, lift_sequence
from .keypoints import (DEFAULT_CONFIDENCE_THRESHOLD, _to_numeric_array, prepare_keypoints,
                        unnormalize_screen_coordinates, usable_3d_joints)
from .modeling_mpm import zero_root
from .quantization import prepare_model
from .reprojection import match_keypoints_2d, require_pixels, validate_focal_length
from .skeleton import constant_bone_lengths, get_skeleton, h36m17_to_h36m16

__all__ = ["PoseLiftingPipeline", "PoseCompletionPipeline", "register_pipelines"]


def _is_batch(inputs) -> bool:
    """A list/tuple of sequences (each ``(frames, joints, C)``) rather than one nested-list sequence."""
    if not isinstance(inputs, (list, tuple)):
        return False
    if len(inputs) == 0:
        raise ValueError("got an empty list; pass a (frames, joints, 2 or 3) array or a list of them")
    first = inputs[0]
    if hasattr(first, "ndim"):
        return first.ndim == 3
    try:
        return np.asarray(first, dtype=object).ndim == 3
    except ValueError:
        return False


def _vitpose_module():
    """:mod:`modeling_mpm.video.vitpose`, or None where only this file is present (remote code)."""
    try:
        return importlib.import_module("modeling_mpm.video.vitpose")
    except ImportError:
        return None


def _resolve_head(model, class_name: str, task: str):
    """``model`` as a ``class_name`` instance: a bare :class:`MPMModel` (what ``AutoModel`` loads) saved from
    ``class_name`` (``config.architectures``) is reloaded with that head class from the same module."""
    if any(c.__name__ == class_name for c in type(model).__mro__):
        return model
    archs = list(getattr(model.config, "architectures", None) or [])
    module = sys.modules.get(type(model).__module__)
    cls = getattr(module, class_name, None) if module is not None else None
    src = getattr(model, "name_or_path", None) or getattr(model.config, "_name_or_path", None)
    if class_name in archs and cls is not None and src:
        return cls.from_pretrained(src)
    raise TypeError(f"the {task!r} pipeline needs a {class_name} model, got {type(model).__name__} "
                    f"(checkpoint architectures: {archs or 'unknown'}); load it with {class_name}.from_pretrained(...)")


def _skeleton_of(model):
    return get_skeleton(getattr(model.config, "skeleton", "h36m17"))


def _to_model_layout(arr: np.ndarray, skel) -> np.ndarray:
    """H36M-17 ``(..., 17, C)`` -> the model's joint layout (H36M-17 or H36M-16)."""
    if skel.name == "h36m17":
        return arr
    if skel.name == "h36m16":
        return h36m17_to_h36m16(arr)
    raise ValueError(f"the pipelines support H36M-17/16 models, this model uses {skel.name!r}")


def _resolve_format(keypoints, keypoint_format):
    """``keypoint_format`` as given; without one, 26 joints are Halpe-26, 33 BlazePose and anything else (17 joints
    can be H36M or COCO) is refused."""
    if keypoint_format is not None:
        return keypoint_format
    shape = np.shape(keypoints) if isinstance(keypoints, np.ndarray) else None
    if shape is None:
        try:
            shape = np.asarray(keypoints, dtype=object).shape
        except (ValueError, TypeError):
            shape = ()
    joints = shape[1] if len(shape) == 3 else None
    if joints in (26, 33):
        return {26: "halpe26", 33: "blazepose"}[joints]
    raise ValueError(
        f"pass keypoint_format='h36m' or 'coco' (or 'halpe26'): the pipeline does not guess the joint order of "
        f"{'%d-joint' % joints if joints is not None else 'these'} keypoints (17 joints can be H36M or COCO, and "
        "reading one as the other gives wrong 3D)")


class _MPMPipelineBase(Pipeline):
    _load_processor = False
    _load_image_processor = False
    _load_video_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False
    _head_class = ""

    def __init__(self, model, *args, quantize=None, **kwargs):
        # dtype: a model loaded by pipeline(model="dir", dtype=...) already has it; a model object is
        # cast (a copy, norms kept float32). quantize="int8": dynamic int8 linear layers (CPU).
        dtype = kwargs.pop("dtype", None)
        super().__init__(model, *args, **kwargs)
        self.model = _resolve_head(self.model, self._head_class, self.task or type(self).__name__)
        self.model = prepare_model(self.model, dtype, quantize)
        self.model.eval()
        self.skeleton = _skeleton_of(self.model)

    # call arguments by stage: preprocess, _forward, postprocess (``window_batch_size`` -> ``batch_size``)
    _pre = ("image_size", "keypoint_format", "confidence_threshold", "coordinates")
    _fwd = ("window_batch_size", "stride", "flip_augmentation", "progress")
    _post: tuple = ()

    def _sanitize_parameters(self, **kwargs):
        unknown = set(kwargs) - set(self._pre + self._fwd + self._post)
        if unknown:
            raise TypeError(f"unexpected argument(s) {sorted(unknown)} for the {self._task_name} pipeline")
        pre, fwd, post = ({k: kwargs[k] for k in keys if kwargs.get(k) is not None}
                          for keys in (self._pre, self._fwd, self._post))
        if "window_batch_size" in fwd:
            fwd["batch_size"] = fwd.pop("window_batch_size")
        if "mode" in fwd and fwd["mode"] not in LIFT_MODES:
            raise ValueError(f"mode must be one of {LIFT_MODES}, got {fwd['mode']!r}")
        _check_flags(fwd, post)
        if "focal_length" in post:
            post["focal_length"] = validate_focal_length(post["focal_length"])
        return pre, fwd, post

    def _prepare_2d(self, keypoints, image_size, keypoint_format, confidence_threshold, coordinates,
                    fix_left_right_swaps=False) -> Dict[str, Any]:
        """:func:`prepare_keypoints` output with ``pose_2d`` and ``missing`` in the model's joint layout."""
        keypoint_format = _resolve_format(keypoints, keypoint_format)
        prep = prepare_keypoints(keypoints, image_size, keypoint_format, confidence_threshold, coordinates,
                                 fix_left_right_swaps)
        prep["pose_2d"] = _to_model_layout(prep["pose_2d"], self.skeleton)
        prep["missing"] = _to_model_layout(prep["missing"][..., None], self.skeleton)[..., 0]
        return prep

    def _window_batch(self, kwargs: Dict[str, Any]) -> Dict[str, Any]:
        # transformers' Pipeline consumes ``batch_size`` for its DataLoader; here it means windows.
        if "batch_size" in kwargs:
            kwargs["window_batch_size"] = kwargs.pop("batch_size")
        elif self._batch_size is not None and "window_batch_size" not in kwargs:
            kwargs["window_batch_size"] = self._batch_size
        return kwargs


class PoseLiftingPipeline(_MPMPipelineBase):
    """2D keypoint sequences -> 3D poses with an :class:`MPMForPoseLifting`.

    Call: ``pipe(keypoints, image_size=(w, h), keypoint_format="h36m", mode="seq2frame", ...)``.

    Args:
        keypoints: ``(frames, joints, 2)`` pixels, or ``(frames, joints, 3)`` with confidences; a
            list of them gives a list of results. Any number of frames >= 1. Also ViTPose
            post-processing output (list over frames of lists of person dicts), see
            :func:`modeling_mpm.video.vitpose.lift_pose_estimation` (``track_people``, ``tracker``).
        image_size: ``(width, height)`` in pixels (required unless ``coordinates="normalized"``).
        keypoint_format: ``"h36m"`` (17), ``"coco"`` (17), ``"halpe26"`` (26) or ``"blazepose"`` (33);
            missing H36M joints are synthesised (see :mod:`modeling_mpm.keypoints`). Required for
            17 joints (H36M and COCO cannot be told apart); 26 joints default to ``"halpe26"``.
        confidence_threshold: joints whose confidence is below it (default 0.3, as ``mpm lift``), and
            NaN/inf joints or joints too far outside the image to represent, are missing and masked.
        coordinates: ``"pixels"`` (default) or ``"normalized"`` (model coordinates).
        fix_left_right_swaps: relabel frames where a 2D detector swapped left and right arms or legs
            (:func:`modeling_mpm.keypoints.undo_left_right_swaps`; default False; ``lift_video`` turns it on).
        mode: ``"seq2frame"`` (centre-frame head, one window per frame, the paper's protocol) or
            ``"seq2seq"`` (all-frames head over windows every ``stride`` frames; much faster).
        batch_size: windows per forward pass (default 64).
        stride: seq2seq window stride, at most the window length (default: the window length, no overlap).
        flip_augmentation: average with the mirrored input (mask mirrored too).
        return_keypoints_2d: also return the H36M-17 2D (pixels, NaN where missing) that was used.
        match_2d: move the 3D toward its 2D (:func:`modeling_mpm.reprojection.match_keypoints_2d`: the lifter's
            depth, the detector's image-plane position, detector failures left out; default False; ``lift_video``
            turns it on; needs pixel coordinates). focal_length: its pinhole focal length in pixels (default:
            the image's long side).
        constant_bones: one person's sequence: every bone set to its median length over the frames, before
            ``match_2d`` (:func:`modeling_mpm.skeleton.constant_bone_lengths`; default False; ``lift_video`` turns it
            on).
        progress: tqdm bar over windows (default: on from 1,000 windows).

    Returns ``pose_3d`` float32 ``(frames, J, 3)`` metres, root-relative (root = 0), camera frame (x right, y down,
    z forward); ``valid`` bool ``(frames, J)``; optionally ``keypoints_2d`` ``(frames, 17, 2)``.
    """

    _head_class, _task_name = "MPMForPoseLifting", "pose-lifting"
    _pre = _MPMPipelineBase._pre + ("fix_left_right_swaps",)
    _fwd = _MPMPipelineBase._fwd + ("mode",)
    _post = ("return_keypoints_2d", "match_2d", "focal_length", "constant_bones")

    def __call__(self, keypoints=None, **kwargs):
        if keypoints is None:
            keypoints = kwargs.pop("inputs", None)
        if keypoints is None:
            raise ValueError("pass keypoints: a (frames, joints, 2 or 3) array, or a list of them")
        vitpose = _vitpose_module()  # ViTPose post-processing output: list over frames of lists of dicts
        if vitpose is not None and vitpose.is_pose_estimation_output(keypoints):
            return vitpose.lift_pose_estimation(self, keypoints, **kwargs)
        kwargs = self._window_batch(kwargs)
        if _is_batch(keypoints):
            return [self(k, **kwargs) for k in keypoints]
        if isinstance(keypoints, (list, tuple)):  # one nested-list sequence (the base class would batch it)
            keypoints = _to_numeric_array(keypoints, "keypoints")
        return super().__call__(keypoints, **kwargs)

    def preprocess(self, keypoints, image_size=None, keypoint_format=None,
                   confidence_threshold=DEFAULT_CONFIDENCE_THRESHOLD, coordinates="pixels",
                   fix_left_right_swaps=False):
        return self._prepare_2d(keypoints, image_size, keypoint_format, confidence_threshold, coordinates,
                                fix_left_right_swaps)

    def _forward(self, inputs, mode="seq2frame", batch_size=64, stride=None, flip_augmentation=False,
                 progress=None):
        pose = lift_sequence(self.model, inputs["pose_2d"], inputs["missing"], mode=mode, batch_size=batch_size,
                             stride=stride, flip_augmentation=bool(flip_augmentation), progress=progress)
        return {"pose_3d": pose, "missing": inputs["missing"], "keypoints_2d": inputs["keypoints_2d"],
                "image_size": inputs["image_size"]}

    def postprocess(self, outputs, return_keypoints_2d=False, match_2d=False, focal_length=None,
                    constant_bones=False):
        pose = outputs["pose_3d"]
        if constant_bones:
            pose = constant_bone_lengths(pose, self.skeleton.parents)
        if match_2d:
            require_pixels(outputs["image_size"])
            pose = match_keypoints_2d(pose, _to_model_layout(np.asarray(outputs["keypoints_2d"]), self.skeleton),
                                      outputs["image_size"], focal_length, root=self.skeleton.root)
        valid = ~np.asarray(outputs["missing"], dtype=bool) & _finite_joints(pose, self.skeleton)
        res = {"pose_3d": pose, "valid": valid}
        if return_keypoints_2d:
            res["keypoints_2d"] = outputs["keypoints_2d"]
        return res


class PoseCompletionPipeline(_MPMPipelineBase):
    """Completion with an :class:`MPMForMaskedPoseModeling` (docs/authors_code.md section 9).

    Two calls:

    * 3D completion: ``pipe(pose_3d)`` with ``pose_3d`` ``(frames, J, 3)`` metres, missing joints NaN
      (or ``missing=(frames, J)`` bool). Returns ``pose_3d`` with the given joints kept exactly and
      the missing ones from the model, plus ``missing``. Each frame is made root-relative before the
      model (pelvis, else mid-hips, else interpolated from neighbouring frames) and shifted back after.
    * occluded 2D -> 3D: ``pipe(keypoints=..., image_size=(w, h), keypoint_format="coco")`` (same 2D
      input rules as the lifting pipeline). Returns ``pose_3d`` ``(frames, J, 3)`` (root-relative
      metres, camera frame, root = 0) lifted from the masked 2D, ``keypoints_2d`` ``(frames, J, 2)``
      with the missing joints filled by the model's 2D reconstruction (pixels, or normalised
      coordinates for ``coordinates="normalized"``), and ``valid``.

    Common options: ``batch_size`` (windows per pass), ``stride`` (window stride; default the window
    length), ``flip_augmentation`` (mask mirrored with the joints), ``progress``.
    """

    _head_class, _task_name = "MPMForMaskedPoseModeling", "pose-completion"
    _pre = _MPMPipelineBase._pre + ("missing",)

    def __call__(self, pose_3d=None, *, keypoints=None, **kwargs):
        if pose_3d is None:
            pose_3d = kwargs.pop("inputs", None)
        if (pose_3d is None) == (keypoints is None):
            raise ValueError("pass exactly one of pose_3d=(frames, joints, 3) metres with NaN for missing joints "
                             "(3D completion) or keypoints=(frames, joints, 2|3) with image_size (occluded 2D -> 3D)")
        kwargs = self._window_batch(kwargs)
        if keypoints is not None:
            if _is_batch(keypoints):
                return [self(keypoints=k, **kwargs) for k in keypoints]
            item = {"keypoints": keypoints}
        else:
            if _is_batch(pose_3d):
                return [self(p, **kwargs) for p in pose_3d]
            item = {"pose_3d": pose_3d}
        return super().__call__(item, **kwargs)

    def preprocess(self, item, image_size=None, keypoint_format=None,
                   confidence_threshold=DEFAULT_CONFIDENCE_THRESHOLD, coordinates="pixels", missing=None):
        if "keypoints" in item:
            prep = self._prepare_2d(item["keypoints"], image_size, keypoint_format, confidence_threshold, coordinates)
            prep["pose"] = prep.pop("pose_2d")
            prep["kind"] = "2d"
            return prep
        return self._prepare_3d(item["pose_3d"], missing)

    def _prepare_3d(self, pose_3d, missing):
        J = self.skeleton.num_joints
        p = _to_numeric_array(pose_3d, "pose_3d")
        if p.ndim != 3 or p.shape[1] != J or p.shape[2] != 3:
            hint = f" (a single frame? pass pose_3d[None])" if p.ndim == 2 else ""
            raise ValueError(f"pose_3d must be (frames, {J}, 3) metres in the {self.skeleton.name} layout, "
                             f"got shape {p.shape}{hint}")
        if p.shape[0] == 0:
            raise ValueError("pose_3d is empty (0 frames); pass at least one frame")
        miss = ~usable_3d_joints(p)
        if missing is not None:
            m = np.asarray(missing)
            if m.shape != miss.shape or m.dtype.kind not in "biu":
                raise ValueError(f"missing must be a bool array of shape {miss.shape}, got {m.dtype} {m.shape}")
            miss |= m.astype(bool)
        if miss.all():
            raise ValueError("every joint of pose_3d is missing; nothing to complete from")
        # per-frame root: given pelvis, else mid-hips, else interpolated over time from the frames
        # that have one (all frames without: the input is taken as root-relative)
        root = np.zeros((p.shape[0], 3))
        r = self.skeleton.root if self.skeleton.root is not None else 0
        names = self.skeleton.joint_names
        lh, rh = names.index("left_hip"), names.index("right_hip")
        has_root = ~miss[:, r]
        hips = ~has_root & ~miss[:, lh] & ~miss[:, rh]
        root[has_root] = p[has_root, r]
        root[hips] = (p[hips, lh] + p[hips, rh]) / 2
        known = has_root | hips
        if known.any() and not known.all():
            t = np.arange(p.shape[0])
            for c in range(3):
                root[~known, c] = np.interp(t[~known], t[known], root[known, c])
        rel = np.where(miss[..., None], 0.0, p - root[:, None])
        rel[:, r] = 0.0
        return {"pose": rel.astype(np.float32), "missing": miss, "given": p, "root": root, "kind": "3d"}

    def _forward(self, inputs, batch_size=64, stride=None, flip_augmentation=False, progress=None):
        res = complete_sequence(self.model, inputs["pose"], inputs["missing"], batch_size=batch_size, stride=stride,
                                flip_augmentation=bool(flip_augmentation), progress=progress)
        return {**inputs, **{"out_" + k: v for k, v in res.items()}}

    def postprocess(self, out):
        miss = np.asarray(out["missing"], dtype=bool)
        if out["kind"] == "3d":
            pred = out["out_pose_3d"].astype(np.float64) + out["root"][:, None]
            pose = np.where(miss[..., None], pred, out["given"])
            return {"pose_3d": pose.astype(np.float32), "missing": miss}
        pose = zero_root(out["out_pose_3d"].astype(np.float32), self.skeleton.root)
        rec = out["out_pose_2d"].astype(np.float64)
        if out["image_size"] is not None:
            rec = unnormalize_screen_coordinates(rec, *out["image_size"])
        given = _to_model_layout(out["keypoints_2d"], self.skeleton)
        kp = np.where(miss[..., None], rec, given)
        return {"pose_3d": pose, "keypoints_2d": kp, "valid": ~miss & _finite_joints(pose, self.skeleton)}


def _finite_joints(pose, skeleton) -> np.ndarray:
    """``(frames, J)``: True where the model's output joint is finite; in a frame whose other joints
    are all non-finite (e.g. NaN weights) the root, set to 0 by construction, is not usable either."""
    finite = np.isfinite(np.asarray(pose)).all(axis=-1)
    root = skeleton.root
    if root is not None and finite.shape[-1] > 1:
        others = np.delete(finite, root, axis=-1).any(axis=-1)
        finite[..., root] &= others
    return finite


def _check_flags(*groups: Dict[str, Any]) -> None:
    """``flip_augmentation="no"`` would count as True: only real booleans (``progress`` may be None)."""
    for d in groups:
        for k in ("flip_augmentation", "return_keypoints_2d", "match_2d", "constant_bones", "progress"):
            if k in d and d[k] is not None:
                d[k] = _check_bool(d[k], k)


def register_pipelines() -> None:
    """Register ``"pose-lifting"`` and ``"pose-completion"`` with transformers (idempotent)."""
    from transformers import AutoModel, AutoModelForPreTraining
    from transformers.pipelines import PIPELINE_REGISTRY

    # Saved masked models name their class under AutoModelForPreTraining in auto_map (remote code);
    # AutoModel is tried first (in-process it picks the class from config.architectures).
    for task, cls, pt in (("pose-lifting", PoseLiftingPipeline, AutoModel),
                          ("pose-completion", PoseCompletionPipeline, (AutoModel, AutoModelForPreTraining))):
        current = PIPELINE_REGISTRY.supported_tasks.get(task)
        if current is not None and current.get("impl") is cls:
            continue
        PIPELINE_REGISTRY.register_pipeline(task, pipeline_class=cls, pt_model=pt, type="multimodal")


# Importing the installed package (``import modeling_mpm``) registers the tasks; a copy loaded as
# remote code does not touch the registry (transformers resolves it from config.custom_pipelines).
if __name__.split(".")[0] == "modeling_mpm":
    register_pipelines()
