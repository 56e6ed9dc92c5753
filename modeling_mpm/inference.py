"""Windowed inference over sequences of any length, usable without the pipeline wrapper.

Sequences are cut into ``config.num_frames`` windows (out-of-range frames edge-padded), batched and stitched:
``mode="seq2frame"`` (the paper's protocol) runs one window centred on every frame through the centre-frame
head; ``mode="seq2seq"`` runs windows every ``stride`` frames (the last aligned to the end) through the
all-frames head and averages overlaps. Memory is bounded by ``batch_size`` windows plus input and output.
Inputs are model coordinates: normalised 2D ``(frames, J, 2)`` and/or root-relative metres ``(frames, J, 3)``;
masks are bool, True = missing.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from .masking import flip_pose, mirror_mask
from .modeling_mpm import zero_root
from .skeleton import get_skeleton

__all__ = ["window_starts", "seq2frame_indices", "lift_sequence", "complete_sequence", "run_seq2seq", "run_seq2frame"]

LIFT_MODES = ("seq2frame", "seq2seq")


def window_starts(num_frames: int, window: int, stride: int) -> np.ndarray:
    """Start frames of seq2seq windows covering ``num_frames`` frames (the last one ends at the end; one centred,
    edge-padded window for short sequences); ``stride > window`` is a ValueError."""
    if stride > window:
        raise ValueError(f"stride {stride} is larger than the window of {window} frames: the frames between "
                         f"windows would get no prediction; use a stride of at most {window}")
    if num_frames <= window:
        return np.array([-((window - num_frames) // 2)], dtype=np.int64)
    starts = np.arange(0, num_frames - window + 1, stride, dtype=np.int64)
    if starts[-1] != num_frames - window:
        starts = np.append(starts, num_frames - window)
    return starts


def seq2frame_indices(centres: np.ndarray, window: int, num_frames: int) -> np.ndarray:
    """``(len(centres), window)`` frame indices of windows centred on ``centres``, edge-padded."""
    half = window // 2
    idx = np.asarray(centres)[:, None] + np.arange(-half, window - half)[None, :]
    return np.clip(idx, 0, num_frames - 1)


def _progress(total: int, enabled: Optional[bool], desc: str):
    """tqdm bar over ``total`` windows; ``enabled=None`` shows it from 1,000 windows (~10 s on CPU)."""
    if enabled is None:
        enabled = total >= 1000
    if not enabled:
        return contextlib.nullcontext(None)
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return contextlib.nullcontext(None)
    return tqdm(total=total, desc=desc, unit="window")


@contextlib.contextmanager
def _eval_mode(model: torch.nn.Module):
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


def _with_flipped(x: torch.Tensor, mask: torch.Tensor, skel):
    """Append the mirrored batch to ``x`` and ``mask``; the mask is mirrored with the joints, so the
    flipped pass hides the same limb (the authors' code does not: docs/authors_code.md section 11.8)."""
    return torch.cat([x, flip_pose(x, skel)], 0), torch.cat([mask, mirror_mask(mask, skel)], 0)


def _merge_flipped(out: torch.Tensor, skel) -> torch.Tensor:
    """Average the plain half of a :func:`_with_flipped` batch with the mirrored-back second half."""
    n = out.shape[0] // 2
    return (out[:n] + flip_pose(out[n:], skel)) / 2


def run_seq2seq(forward_fn: Callable[..., Sequence[torch.Tensor]], inputs: Sequence[torch.Tensor], window: int,
                stride: Optional[int] = None, batch_size: int = 64, progress: Optional[bool] = None,
                desc: str = "windows") -> List[torch.Tensor]:
    """Run ``forward_fn`` (one ``(B, window, ...)`` tensor per input -> ``(B, window, ...)`` outputs) over seq2seq
    windows of ``inputs`` ``(frames, ...)``; returns one float32 ``(frames, ...)`` per output, overlaps averaged."""
    F = int(inputs[0].shape[0])
    stride = window if stride is None else int(stride)
    starts = window_starts(F, window, stride)
    sums: Optional[List[torch.Tensor]] = None
    count = torch.zeros(F, dtype=torch.float32)
    offs = torch.arange(window)
    with _progress(len(starts), progress, desc) as bar:
        for b0 in range(0, len(starts), batch_size):
            st = torch.as_tensor(starts[b0:b0 + batch_size])
            pos = st[:, None] + offs[None, :]                    # (B, window) frame of each slot
            idx = pos.clamp(0, F - 1)
            outs = forward_fn(*[x[idx] for x in inputs])
            keep = (pos >= 0) & (pos < F)                        # padded slots are dropped
            tgt = pos[keep]
            if sums is None:
                sums = [torch.zeros((F,) + tuple(o.shape[2:]), dtype=torch.float32) for o in outs]
            for s, o in zip(sums, outs):
                s.index_add_(0, tgt, o[keep].float())
            count.index_add_(0, tgt, torch.ones(tgt.shape[0]))
            if bar is not None:
                bar.update(len(st))
    shape = lambda s: count.view((F,) + (1,) * (s.dim() - 1))  # noqa: E731
    return [s / shape(s) for s in sums]


def run_seq2frame(forward_fn: Callable[..., Sequence[torch.Tensor]], inputs: Sequence[torch.Tensor], window: int,
                  batch_size: int = 64, progress: Optional[bool] = None, desc: str = "windows") -> List[torch.Tensor]:
    """Run ``forward_fn`` (``(B, window, ...)`` inputs -> ``(B, ...)`` centre-frame outputs) on one edge-padded
    window centred on every frame; returns one float32 tensor ``(frames, ...)`` per output."""
    F = int(inputs[0].shape[0])
    outs_all: Optional[List[torch.Tensor]] = None
    half = window // 2
    offs = torch.arange(-half, window - half)
    with _progress(F, progress, desc) as bar:
        for c0 in range(0, F, batch_size):
            c = torch.arange(c0, min(F, c0 + batch_size))
            idx = (c[:, None] + offs[None, :]).clamp(0, F - 1)
            outs = forward_fn(*[x[idx] for x in inputs])
            if outs_all is None:
                outs_all = [torch.empty((F,) + tuple(o.shape[1:]), dtype=torch.float32) for o in outs]
            for a, o in zip(outs_all, outs):
                a[c0:c0 + len(c)] = o
            if bar is not None:
                bar.update(len(c))
    return outs_all


def _as_inputs(pose: np.ndarray, missing: Optional[np.ndarray], channels: int, num_joints: int, what: str):
    x = torch.as_tensor(np.ascontiguousarray(pose), dtype=torch.float32)
    if x.dim() != 3 or x.shape[1] != num_joints or x.shape[2] != channels or x.shape[0] == 0:
        raise ValueError(f"{what} must be (frames >= 1, {num_joints}, {channels}) for this model, got {tuple(x.shape)}")
    if missing is None:
        m = ~torch.isfinite(x).all(-1)
    else:
        m = torch.as_tensor(np.asarray(missing), dtype=torch.bool)
        if tuple(m.shape) != tuple(x.shape[:2]):
            raise ValueError(f"missing mask must be (frames, joints) = {tuple(x.shape[:2])}, got {tuple(m.shape)}")
        m = m | ~torch.isfinite(x).all(-1)
    if bool(m.all()):
        raise ValueError(f"{what}: every joint of every frame is missing; nothing to infer from")
    x = torch.where(m[..., None], torch.zeros((), dtype=x.dtype), x)
    return x.contiguous(), m.contiguous()


def _lifter_head_fn(model, head: str):
    """``f(pose_2d, spatial_mask) -> (B, F|1, J, 3)`` computing only the head that is used (the full forward for
    models without these parts or with a refiner; the caller zeroes the root)."""
    enc = getattr(model, "mpm", None)
    frames_head = getattr(model, "frames_head", None)
    reduce, center_head = getattr(model, "reduce", None), getattr(model, "center_head", None)
    plain = enc is not None and getattr(model, "refiner", None) is None
    if plain and head == "pose_3d" and frames_head is not None:
        return lambda x, m: frames_head(enc(pose_2d=x, spatial_mask=m).last_hidden_state)
    if plain and head == "pose_3d_center" and reduce is not None and center_head is not None:
        return lambda x, m: center_head(reduce(enc(pose_2d=x, spatial_mask=m).last_hidden_state))
    return lambda x, m: getattr(model(pose_2d=x, spatial_mask=m), head)


def _seq2frame_reuse_fns(model, chunk: int = 4096):
    """``(embed, run_windows)`` for seq2frame with per-frame features computed once, or ``None``.

    The joint embedding and spatial MLP act on each frame alone (eval mode), so ``embed(pose (F, J, 2), mask
    (F, J) | None) -> (F, C)`` runs them once per frame and ``run_windows((B, window, C)) -> (B, J, 3)`` runs the
    rest on gathered windows. Only for plain lifters (no refiner) whose encoder has ``embed_frames``.
    """
    enc = getattr(model, "mpm", None)
    reduce, center_head = getattr(model, "reduce", None), getattr(model, "center_head", None)
    if enc is None or reduce is None or center_head is None or getattr(model, "refiner", None) is not None \
            or not hasattr(enc, "embed_frames") or not hasattr(enc, "layers"):
        return None

    def embed(pose: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
        parts = []
        for s in range(0, pose.shape[0], chunk):
            m = None if mask is None else mask[None, s:s + chunk]
            parts.append(enc.embed_frames(pose[None, s:s + chunk], m, add_position_embedding=False)[0])
        return torch.cat(parts, 0)

    def run_windows(feats: torch.Tensor) -> torch.Tensor:
        h = feats + enc.position_embedding
        for layer in enc.layers:
            h = layer(h)
        return center_head(reduce(h))[:, 0]

    return embed, run_windows


def _device(model) -> torch.device:
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def _skeleton(model):
    return get_skeleton(getattr(model.config, "skeleton", "h36m17"))


def lift_sequence(model, pose_2d: np.ndarray, missing: Optional[np.ndarray] = None, mode: str = "seq2frame",
                  batch_size: int = 64, stride: Optional[int] = None, flip_augmentation: bool = False,
                  progress: Optional[bool] = None) -> np.ndarray:
    """Lift one normalised 2D sequence to 3D with an :class:`MPMForPoseLifting`.

    Args:
        model: the lifter (``config.num_frames`` frames per window, ``config.num_joints`` joints).
        pose_2d: ``(frames, J, 2)`` normalised screen coordinates; NaN/inf entries count as missing.
        missing: optional ``(frames, J)`` bool, True = missing joint (fed as ``spatial_mask``).
        mode: ``"seq2frame"`` (centre-frame head, one window per frame) or ``"seq2seq"``.
        batch_size: windows per forward pass; stride: seq2seq window stride (default ``num_frames``: no overlap).
        flip_augmentation: also run the mirrored input (mask mirrored too) and average.
        progress: tqdm progress bar over windows (default: on from 1,000 windows).

    Returns float32 ``(frames, J, 3)``: root-relative metres, camera frame (x right, y down, z forward), root 0.
    """
    if mode not in LIFT_MODES:
        raise ValueError(f"mode must be one of {LIFT_MODES}, got {mode!r}")
    flip_augmentation, batch_size, stride = _check_run_args(flip_augmentation, batch_size, stride)
    cfg = model.config
    x, m = _as_inputs(pose_2d, missing, 2, cfg.num_joints, "pose_2d")
    use_mask = bool(m.any())
    skel, dev = _skeleton(model), _device(model)
    run_model = _lifter_head_fn(model, "pose_3d" if mode == "seq2seq" else "pose_3d_center")

    def fwd(xb, mb):
        xb, mb = xb.to(dev), mb.to(dev)
        if flip_augmentation:
            xb, mb = _with_flipped(xb, mb, skel)
        out = run_model(xb.contiguous(), mb.contiguous() if use_mask else None)
        if mode == "seq2frame":
            out = out[:, 0] if out.dim() == 4 else out
        if flip_augmentation:
            out = _merge_flipped(out, skel)
        return (out.float().cpu(),)

    reuse = _seq2frame_reuse_fns(model) if mode == "seq2frame" else None
    with _eval_mode(model):
        if mode == "seq2seq":
            (pred,) = run_seq2seq(fwd, [x, m], cfg.num_frames, stride, batch_size, progress, "lifting")
        elif reuse is not None:  # per-frame features once, then windows of features (same result)
            embed, run_windows = reuse
            xd, md = x.to(dev), (m.to(dev) if use_mask else None)
            feats = [embed(xd, md)]
            if flip_augmentation:
                feats.append(embed(flip_pose(xd, skel), None if md is None else mirror_mask(md, skel)))

            def fwd_feats(*fb):
                out = run_windows(torch.cat(fb, 0) if len(fb) > 1 else fb[0])
                return ((_merge_flipped(out, skel) if flip_augmentation else out).float().cpu(),)

            (pred,) = run_seq2frame(fwd_feats, feats, cfg.num_frames, batch_size, progress, "lifting")
        else:
            (pred,) = run_seq2frame(fwd, [x, m], cfg.num_frames, batch_size, progress, "lifting")
    return zero_root(pred.numpy().astype(np.float32, copy=False), skel.root)


def complete_sequence(model, pose: np.ndarray, missing: Optional[np.ndarray] = None, batch_size: int = 64,
                      stride: Optional[int] = None, flip_augmentation: bool = False,
                      progress: Optional[bool] = None) -> Dict[str, np.ndarray]:
    """Run an :class:`MPMForMaskedPoseModeling` over seq2seq windows with the missing joints masked.

    Args:
        pose: ``(frames, J, 3)`` root-relative metres (3D completion) or ``(frames, J, 2)``
            normalised 2D (occluded 2D -> 3D); NaN/inf entries count as missing.
        missing: optional ``(frames, J)`` bool, True = missing (the spatial mask); no frame is
            temporally masked.
        flip_augmentation: average with the mirrored input (mask mirrored as well).

    Returns float32 ``{"pose_3d": (frames, J, 3)}`` (3D input: every joint reconstructed; 2D input: lifted from the
    masked 2D, plus ``"pose_2d": (frames, J, 2)`` the 2D reconstruction); nothing is copied from the input here.
    """
    flip_augmentation, batch_size, stride = _check_run_args(flip_augmentation, batch_size, stride)
    cfg = model.config
    arr = np.asarray(pose)
    channels = arr.shape[-1] if arr.ndim == 3 else -1
    if channels not in (2, 3):
        raise ValueError(f"pose must be (frames, {cfg.num_joints}, 2 or 3), got shape {arr.shape}")
    x, m = _as_inputs(arr, missing, channels, cfg.num_joints, "pose")
    skel, dev = _skeleton(model), _device(model)

    def fwd(xb, mb):
        xb, mb = xb.to(dev), mb.to(dev)
        if flip_augmentation:
            xb, mb = _with_flipped(xb, mb, skel)
        tmask = torch.zeros(xb.shape[:2], dtype=torch.bool, device=xb.device)
        if channels == 3:
            out = model(pose_3d=xb.contiguous(), spatial_mask_3d=mb.contiguous(), temporal_mask_3d=tmask)
            outs = [out.pose_3d]
        else:
            out = model(pose_2d=xb.contiguous(), spatial_mask=mb.contiguous(), temporal_mask=tmask)
            outs = [out.pose_3d_from_2d, out.pose_2d]
        if flip_augmentation:
            outs = [_merge_flipped(o, skel) for o in outs]
        return [o.float().cpu() for o in outs]

    with _eval_mode(model):
        res = run_seq2seq(fwd, [x, m], cfg.num_frames, stride, batch_size, progress, "completion")
    if channels == 3:
        return {"pose_3d": res[0].numpy()}
    return {"pose_3d": res[0].numpy(), "pose_2d": res[1].numpy()}


def _check_run_args(flip_augmentation, batch_size, stride):
    """``(flip_augmentation, batch_size, stride)`` checked: a bool, a positive int, None or a positive int."""
    return (_check_bool(flip_augmentation, "flip_augmentation"), _check_positive_int(batch_size, "batch_size"),
            None if stride is None else _check_positive_int(stride, "stride"))


def _check_positive_int(v, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name} must be a positive int, got {v!r}")
    if v <= 0:
        raise ValueError(f"{name} must be a positive int, got {v}")
    return int(v)


def _check_bool(v, name: str) -> bool:
    """``v`` if it is a bool (Python or NumPy); TypeError otherwise (``"no"`` is not False)."""
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {v!r}")
    return bool(v)
