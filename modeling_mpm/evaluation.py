"""Evaluation of MPM models on window datasets (items ``{"pose_2d", "pose_3d", "action"}``, see
:mod:`modeling_mpm.training.data`): lifting (:func:`evaluate_lifting`, with optional flip augmentation and
occluded joints), pre-training validation (:func:`evaluate_masked_modeling`) and completion
(:func:`evaluate_completion`). Errors are in millimetres (3D) and 1/1000 normalised screen units (2D); masks
come from a generator seeded with ``seed``, so numbers are reproducible.
"""

from __future__ import annotations

import contextlib
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from . import metrics as M
from .masking import (flip_pose, mirror_mask, random_joint_mask, random_limb_mask, sample_spatiotemporal_mask,
                      tube_mask)
from .modeling_mpm import zero_root

__all__ = ["flip_pose", "predict_lifting", "evaluate_lifting", "evaluate_masked_modeling", "evaluate_completion",
           "random_joint_mask", "random_limb_mask", "format_table"]


@contextlib.contextmanager
def _evaluating(model):
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was)


def _device(model, device):
    if device is not None:
        return torch.device(device)
    try:
        return next(model.parameters()).device
    except StopIteration:  # pragma: no cover
        return torch.device("cpu")


def predict_lifting(model, pose_2d: torch.Tensor, spatial_mask: Optional[torch.Tensor] = None,
                    flip: bool = False, mode: str = "center", camera_intrinsics: Optional[torch.Tensor] = None,
                    root_depth: Optional[torch.Tensor] = None) -> torch.Tensor:
    """3D prediction (metres) of a lifter for ``pose_2d`` ``(B, F, J, 2)`` normalised windows.

    ``spatial_mask`` ``(B, F, J)`` bool (True = missing); ``flip`` averages with the mirrored pass (mask mirrored);
    ``mode`` ``"center"`` -> ``(B, 1, J, 3)``, ``"all_frames"`` -> ``(B, F, J, 3)``. With a refiner, ``"center"``
    refines after the flip average given ``camera_intrinsics`` ``(B, 4+)`` normalised and ``root_depth`` ``(B,)`` m.
    """
    if mode not in ("center", "all_frames"):
        raise ValueError(f"mode must be 'center' or 'all_frames', got {mode!r}")
    skel = model.config.get_skeleton()
    refine = mode == "center" and getattr(model, "refiner", None) is not None \
        and camera_intrinsics is not None and root_depth is not None
    key = "pose_3d_center" if mode == "center" else "pose_3d"

    def run(x, m):  # the refiner refines after the flip average, so it takes the raw centre head
        if refine:
            return model.center_head(model.reduce(model.mpm(pose_2d=x, spatial_mask=m).last_hidden_state))
        return getattr(model(pose_2d=x, spatial_mask=m), key)

    pred = run(pose_2d, spatial_mask)
    if flip:
        fm = mirror_mask(spatial_mask, skel) if spatial_mask is not None else None
        pred = (pred + flip_pose(run(flip_pose(pose_2d, skel), fm), skel)) / 2
    if not refine:
        return pred
    c = model.config.center_frame
    intr = torch.as_tensor(camera_intrinsics, dtype=pred.dtype, device=pred.device)
    depth = torch.as_tensor(root_depth, dtype=pred.dtype, device=pred.device)
    pred = model.refiner(pred, pose_2d[:, c:c + 1].to(pred.dtype), intr, depth)
    return zero_root(pred, skel.root) if model.config.zero_root_output else pred


def _loader(dataset, batch_size):
    from .training.data import collate_windows

    return DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_windows, num_workers=0)


def _progress(total, enabled, desc):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="window", leave=False)


def _occlusion(b: int, f: int, skel, joints: int, limb: bool, gen) -> Optional[torch.Tensor]:
    """Evaluation's missing joints ``(b, f, J)``: one random limb, ``joints`` random non-root joints, or None."""
    if limb:
        return random_limb_mask(b, f, skel, gen)
    if joints > 0:
        return random_joint_mask(b, f, skel.num_joints, joints, gen, exclude=[] if skel.root is None else [skel.root])
    return None


def _predicted_and_target(model, batch: Dict, mask, flip: bool, mode: str, refine: bool, dev):
    """One batch's prediction and target ``(B, 1 | F, J, 3)`` (CPU float32), root joints set to 0."""
    x = batch["pose_2d"].to(dev)
    f = x.shape[1]
    cam = depth = None
    if refine:
        cam, depth = batch["intrinsics"].to(dev), batch["root_3d"][:, f // 2, 2].to(dev)
    pred = predict_lifting(model, x, None if mask is None else mask.to(dev), flip=flip, mode=mode,
                           camera_intrinsics=cam, root_depth=depth).float().cpu()
    y = batch["pose_3d"][:, f // 2:f // 2 + 1] if mode == "center" else batch["pose_3d"]
    root = model.config.get_skeleton().root
    return zero_root(pred, root), zero_root(y, root)


def _action_means(m1, m2) -> Dict:
    """MPJPE (``m1``) and P-MPJPE (``m2``) meters -> means over actions and frames, per action, windows."""
    p1, p2, n = m1.per_action(), m2.per_action(), m1.counts()
    return {"mpjpe": m1.mean_over_actions(), "p_mpjpe": m2.mean_over_actions(),
            "mpjpe_frames": m1.mean_over_frames(), "p_mpjpe_frames": m2.mean_over_frames(),
            "per_action": {a: {"mpjpe": p1[a], "p_mpjpe": p2[a], "windows": n[a]} for a in p1}, "windows": len(m1)}


class _Pck3dhp:
    """The MPI-INF-3DHP protocol streamed over batches: its 14 joints, every pose weighted equally;
    ``result()`` gives ``pck`` (PCK@150 mm, %), ``auc`` (0:5:150 mm, %) and ``mpjpe_3dhp`` (mm), None for
    skeletons without the 14 joints."""

    def __init__(self, skel):
        self.joints = M.PCK_JOINTS.get(skel.name)
        self.hits, self.count, self.error_sum = np.zeros(len(M.AUC_THRESHOLDS_MM)), 0, 0.0

    def update(self, pred, target) -> None:
        if self.joints is not None:
            je = M.joint_errors(pred, target)[..., list(self.joints)] * 1000.0
            self.hits += np.array([(je < th).sum() for th in M.AUC_THRESHOLDS_MM])
            self.count += je.size
            self.error_sum += float(je.sum())

    def result(self) -> Dict:
        n = self.count
        return {"pck": float(self.hits[-1] / n * 100.0) if n else None,
                "auc": float(np.mean(self.hits / n) * 100.0) if n else None,
                "mpjpe_3dhp": float(self.error_sum / n) if n else None}


def evaluate_lifting(model, dataset, *, batch_size: int = 256, flip: bool = False, occluded_joints: int = 0,
                     occluded_limb: bool = False, seed: int = 0, mode: str = "center", progress: bool = False,
                     device=None, metric=None) -> Dict:
    """MPJPE and P-MPJPE (mm) of a lifter over ``dataset``, root joints set to 0 in prediction and target.

    The target is each window's centre frame (``mode="center"``) or all its frames (``"all_frames"``). A lifter
    with a refiner refines when the windows carry ``intrinsics`` and ``root_3d`` (``"refined"``).
    ``occluded_joints=k`` masks ``k`` random non-root joints per frame, ``occluded_limb=True`` one random limb.

    Returns ``"mpjpe"`` / ``"p_mpjpe"`` (mean over actions, mm), ``"mpjpe_frames"`` / ``"p_mpjpe_frames"``,
    ``"per_action"``, ``"windows"``, the settings, and ``"pck"`` / ``"auc"`` (%) / ``"mpjpe_3dhp"`` (mm) on the
    MPI-INF-3DHP 14 joints (None for other skeletons). ``metric`` (:func:`~modeling_mpm.metrics.load_pose_metric`)
    gets every pose with its action (and window, for ``all_frames``); its result is under ``"metric"``.
    """
    cfg = model.config
    skel = cfg.get_skeleton()
    dev = _device(model, device)
    gen = torch.Generator().manual_seed(int(seed))
    m1, m2 = M.ActionErrorMeter(), M.ActionErrorMeter()
    pck = _Pck3dhp(skel)
    metric_actions, metric_windows = [], []
    bar = _progress(len(dataset), progress, "evaluate")
    refine = None
    with _evaluating(model):
        for batch in _loader(dataset, batch_size):
            if refine is None:  # the refiner needs camera data (intrinsics, root depth) in the windows
                refine = (mode == "center" and getattr(model, "refiner", None) is not None
                          and "intrinsics" in batch and "root_3d" in batch)
            b, f, j, _ = batch["pose_2d"].shape
            mask = _occlusion(b, f, skel, occluded_joints, occluded_limb, gen)
            pred, y = _predicted_and_target(model, batch, mask, flip, mode, refine, dev)
            e1 = M.mpjpe_per_frame(pred, y).mean(axis=-1) * 1000.0
            e2 = M.p_mpjpe_per_frame(pred, y).mean(axis=-1) * 1000.0
            pck.update(pred, y)
            if metric is not None:
                poses = y.shape[1]
                metric.add_batch(predictions=pred.reshape(-1, j, 3).double().numpy(),
                                 references=y.reshape(-1, j, 3).double().numpy())
                metric_actions += [a for a in batch["action"] for _ in range(poses)]
                metric_windows += [len(m1) + i for i in range(b) for _ in range(poses)]
            m1.update(e1, batch["action"])
            m2.update(e2, batch["action"])
            if bar is not None:
                bar.update(b)
    if bar is not None:
        bar.close()
    if len(m1) == 0:
        raise ValueError("the evaluation dataset is empty")
    extra = {}
    if metric is not None:
        extra["metric"] = metric.compute(actions=metric_actions, skeleton=skel.name if pck.joints else None,
                                         sequence_ids=metric_windows if mode == "all_frames" else None)
    return {**_action_means(m1, m2), "flip": bool(flip), "occluded_joints": int(occluded_joints),
            "occluded_limb": bool(occluded_limb), "mode": mode, "refined": bool(refine), **pck.result(), **extra}


def evaluate_masked_modeling(model, dataset, *, batch_size: int = 256, seed: int = 0, pairing: str = "paired",
                             progress: bool = False, device=None) -> Dict:
    """Pre-training validation with seeded spatio-temporal masks: ``loss`` (weighted, per window), ``mpjpe_3d`` (mm,
    all joints), ``error_2d`` (x 1000 normalised units) and ``mpjpe_3d_masked`` (mm, masked tokens only)."""
    cfg = model.config
    dev = _device(model, device)
    gen = torch.Generator().manual_seed(int(seed))
    tot = {"loss": 0.0, "mpjpe_3d": 0.0, "error_2d": 0.0, "mpjpe_3d_masked": 0.0}
    n = masked_n = 0
    with _evaluating(model):
        for batch in _loader(dataset, batch_size):
            x2, x3 = batch["pose_2d"].to(dev), batch["pose_3d"].to(dev)
            b = x2.shape[0]
            s2, t2 = sample_spatiotemporal_mask(b, cfg.num_frames, cfg.num_joints, cfg.temporal_mask_ratio,
                                                cfg.spatial_mask_joints, generator=gen, device=dev)
            s3, t3 = sample_spatiotemporal_mask(b, cfg.num_frames, cfg.num_joints, cfg.temporal_mask_ratio,
                                                cfg.spatial_mask_joints, generator=gen, device=dev)
            out = model(pose_2d=x2, pose_3d=x3, spatial_mask=s2, temporal_mask=t2, spatial_mask_3d=s3,
                        temporal_mask_3d=t3, output_lifted=False)
            e3 = torch.linalg.vector_norm(out.pose_3d.float() - x3, dim=-1)
            e2 = torch.linalg.vector_norm(out.pose_2d.float() - x2, dim=-1)
            # the paired 2D+3D loss (an unpaired split would give the same expectation)
            loss = cfg.loss_weight_2d * e2.mean() + cfg.loss_weight_3d * e3.mean()
            tot["loss"] += float(loss) * b
            tot["mpjpe_3d"] += float(e3.mean()) * 1000.0 * b
            tot["error_2d"] += float(e2.mean()) * 1000.0 * b
            masked = s3 | t3[..., None]
            tot["mpjpe_3d_masked"] += float(e3[masked].sum()) * 1000.0
            masked_n += int(masked.sum())
            n += b
    if n == 0:
        raise ValueError("the evaluation dataset is empty")
    out = {k: v / n for k, v in tot.items() if k != "mpjpe_3d_masked"}
    out["mpjpe_3d_masked"] = tot["mpjpe_3d_masked"] / max(masked_n, 1)
    out["windows"] = n
    return out


def evaluate_completion(model, dataset, *, modality: str, manners: Optional[Iterable[int]] = None,
                        batch_size: int = 256, seed: int = 0, flip: bool = False, progress: bool = False,
                        device=None) -> Dict:
    """Completion with body-part tubes, one pass per tube manner (docs/authors_code.md section 9).

    ``modality="3d"``: ``mpjpe_masked`` (mm over the missing joints) and ``mpjpe_all`` (the authors' diluted
    number); ``"2d"``: tube-masked 2D -> 3D ``mpjpe`` (mm, root 0) and ``error_2d`` (x 1000), ``flip`` averaging
    with the mirrored pass. Returns ``{"per_manner": {d: {...}}, <means over manners>}``.
    """
    if modality not in ("2d", "3d"):
        raise ValueError(f"modality must be '2d' or '3d', got {modality!r}")
    cfg = model.config
    skel = cfg.get_skeleton()
    dev = _device(model, device)
    manners = list(manners if manners is not None else (cfg.tube_manners_3d if modality == "3d" else cfg.tube_manners_2d))
    per: Dict[str, Dict[str, float]] = {}
    with _evaluating(model):
        for d in manners:
            gen = torch.Generator().manual_seed(int(seed) + int(d))
            sums: Dict[str, float] = {}
            n = 0
            for batch in _loader(dataset, batch_size):
                x2, x3 = batch["pose_2d"].to(dev), batch["pose_3d"].to(dev)
                b, f, j, _ = x3.shape
                mask = tube_mask([int(d)] * b, f, skel, modality, gen, dev)
                if modality == "3d":
                    out = model(pose_3d=x3, spatial_mask_3d=mask)
                    r = M.completion_errors(out.pose_3d, x3, mask)
                    vals = {"mpjpe_masked": r["mpjpe_masked"] * 1000.0, "mpjpe_all": r["mpjpe_all"] * 1000.0}
                else:
                    out = model(pose_2d=x2, spatial_mask=mask)
                    p3, p2 = out.pose_3d_from_2d, out.pose_2d
                    if flip:
                        fo = model(pose_2d=flip_pose(x2, skel), spatial_mask=mirror_mask(mask, skel))
                        p3 = (p3 + flip_pose(fo.pose_3d_from_2d, skel)) / 2
                        p2 = (p2 + flip_pose(fo.pose_2d, skel)) / 2
                    vals = {"mpjpe": M.mpjpe(zero_root(p3, skel.root), zero_root(x3, skel.root)) * 1000.0,
                            "error_2d": M.mpjpe(p2, x2) * 1000.0,
                            "error_2d_masked": M.mpjpe(p2, x2, mask=mask.cpu()) * 1000.0}
                for k, v in vals.items():
                    sums[k] = sums.get(k, 0.0) + v * b
                n += b
            if n == 0:
                raise ValueError("the evaluation dataset is empty")
            per[str(d)] = {k: v / n for k, v in sums.items()}
    keys = next(iter(per.values())).keys()
    res: Dict = {k: float(np.mean([p[k] for p in per.values()])) for k in keys}
    res["per_manner"] = per
    res["windows"] = len(dataset)
    return res


def format_table(results: Dict[str, Dict], title: str = "") -> str:
    """A text table of ``{column_name: evaluate_lifting result}``: rows per action plus ``Average``, MPJPE /
    P-MPJPE in mm."""
    names = list(results)
    actions = sorted({a for r in results.values() for a in r.get("per_action", {})})
    head = ["action"] + [f"{n} {m}" for n in names for m in ("MPJPE", "P-MPJPE")]
    rows: List[List[str]] = []
    for a in actions:
        row = [a]
        for n in names:
            pa = results[n].get("per_action", {}).get(a)
            row += [f"{pa['mpjpe']:.1f}", f"{pa['p_mpjpe']:.1f}"] if pa else ["-", "-"]
        rows.append(row)
    avg = ["Average"]
    for n in names:
        avg += [f"{results[n]['mpjpe']:.1f}", f"{results[n]['p_mpjpe']:.1f}"]
    rows.append(avg)
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    fmt = lambda r: "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r))  # noqa: E731
    lines = ([title] if title else []) + [fmt(head), "-" * len(fmt(head))] + [fmt(r) for r in rows[:-1]]
    lines += ["-" * len(fmt(head)), fmt(rows[-1])]
    return "\n".join(lines)
