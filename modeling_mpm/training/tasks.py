"""What each task trains: the model class, the loss of one micro-batch, the validation metrics.

* ``pretrain``: masked 2D + masked 3D pose modeling (:class:`MPMForMaskedPoseModeling`); ``split``
  pairing feeds the first half of a batch to the 2D pass and the second half to the 3D pass,
  ``paired`` both modalities of every clip; ``training.pretrain_lift`` adds masked 2D -> 3D lifting.
* ``lift``: 2D -> 3D lifting (:class:`MPMForPoseLifting`), all-frames + centre-frame losses.
* ``complete3d``: 3D with body-part tubes missing -> 3D; ``occluded2d``: tube-masked 2D -> 3D and 2D.
* ``refine``: the lifter with ``use_refine`` trained end to end on the refined centre frame; the
  windows need ``intrinsics`` (normalised ``[fx, fy, cx, cy, ...]``) and ``root_3d`` (root depth).

All masks come from the trainer's ``torch.Generator`` (never the global RNG), so a resumed run draws
the same masks.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch

from ..masking import flip_pose, limb_joints, occlusion_mask, sample_masks

__all__ = ["model_class", "default_best_metric", "flip_batch", "occlusion_mask", "compute_loss"]


def model_class(task: str):
    from ..modeling_mpm import MPMForMaskedPoseModeling, MPMForPoseLifting

    return MPMForPoseLifting if task in ("lift", "refine") else MPMForMaskedPoseModeling


def default_best_metric(task: str) -> str:
    """Validation value (lower is better) that picks the best model of a task."""
    return {"pretrain": "loss", "lift": "mpjpe", "complete3d": "mpjpe_masked", "occluded2d": "mpjpe",
            "refine": "mpjpe"}[task]


def flip_batch(batch: Dict, skeleton, generator: torch.Generator, prob: float = 0.5) -> Dict:
    """Left/right flip each window with probability ``prob`` (``x -> -x`` in 2D and 3D, L/R joints
    swapped); ``intrinsics`` (B, 9) get ``cx`` (index 2) and ``p1`` (index 7) negated, ``root_3d``
    (B, F, 3) its ``x``."""
    ref = batch.get("pose_2d", batch.get("pose_3d"))
    flip = (torch.rand(ref.shape[0], generator=generator) < prob).to(ref.device)
    out = dict(batch)
    for key in ("pose_2d", "pose_3d"):
        if key in batch:
            out[key] = torch.where(flip[:, None, None, None], flip_pose(batch[key], skeleton), batch[key])
    if "intrinsics" in batch:
        sign = torch.ones(batch["intrinsics"].shape[-1], dtype=batch["intrinsics"].dtype)
        sign[[i for i in (2, 7) if i < sign.numel()]] = -1
        out["intrinsics"] = torch.where(flip[:, None], batch["intrinsics"] * sign, batch["intrinsics"])
    if "root_3d" in batch:
        r = batch["root_3d"].clone()
        r[..., 0] = -r[..., 0]
        out["root_3d"] = torch.where(flip[:, None, None], r, batch["root_3d"])
    return out


def _occlusion(batch_size: int, config, occlusion: Tuple, generator: torch.Generator) -> Optional[torch.Tensor]:
    """The lifting task's missing joints for one micro-batch; ``occlusion`` = (probability, max
    joints) or (probability, max joints, limb probability)."""
    prob, max_joints = occlusion[0], occlusion[1]
    limb_prob = occlusion[2] if len(occlusion) > 2 else 0.0
    return occlusion_mask(batch_size, config.num_frames, config.num_joints, max_joints, prob, generator,
                          limb_prob=limb_prob, limbs=limb_joints(config) if limb_prob > 0 and prob > 0 else ())


def compute_loss(task: str, model, batch: Dict, config, generator: torch.Generator, *,
                 pairing: str = "split", occlusion: Tuple[float, ...] = (0.0, 0), pretrain_lift: bool = False,
                 pretrain_lift_input: str = "masked"):
    """Loss of one micro-batch for ``task``; returns ``(loss, logs)`` with ``logs`` float values.

    ``config`` is the model's MPMConfig; ``occlusion`` = (probability, max joints[, limb probability])
    of the lifting task's random missing joints (:func:`occlusion_mask`); ``pretrain_lift`` adds 3D
    lifted from 2D (weighted by ``config.loss_weight_lift``) from ``pretrain_lift_input``: ``"masked"``
    the 2D pass's masked input, or a second pass over every paired window ``"visible"`` (no mask) or
    ``"occluded"`` (with ``occlusion``'s missing joints).
    """
    p2d, p3d = batch.get("pose_2d"), batch.get("pose_3d")
    F, J = config.num_frames, config.num_joints
    if task == "pretrain":
        if pairing == "split":
            b = p2d.shape[0]
            if b < 2:
                raise ValueError("pretrain_pairing=split needs at least 2 windows per micro-batch")
            x2d, x3d = p2d[: b // 2], p3d[b // 2:]
        else:
            x2d, x3d = p2d, p3d
        s2, t2 = sample_masks(config, x2d.shape[0], "2d", generator, x2d.device, mode="random")
        s3, t3 = sample_masks(config, x3d.shape[0], "3d", generator, x3d.device, mode="random")
        if pretrain_lift_input not in ("masked", "visible", "occluded"):
            raise ValueError(f"pretrain_lift_input must be 'masked', 'visible' or 'occluded', "
                             f"got {pretrain_lift_input!r}")
        masked_lift = pretrain_lift and pretrain_lift_input == "masked"
        lift = p3d[: x2d.shape[0]] if masked_lift else None  # the 3D of the same clips as the 2D
        out = model(pose_2d=x2d, pose_3d=x3d, spatial_mask=s2, temporal_mask=t2,
                    spatial_mask_3d=s3, temporal_mask_3d=t3, lift_labels=lift)
        logs = {"loss_2d": out.loss_2d, "loss_3d": out.loss_3d, "loss_lift": out.loss_lift}
        if pretrain_lift and not masked_lift:
            # every (paired) window of the micro-batch, not only those of the 2D pass
            n = p2d.shape[0]
            missing = _occlusion(n, config, occlusion, generator) if pretrain_lift_input == "occluded" else None
            missing = torch.zeros(n, F, J, dtype=torch.bool) if missing is None else missing
            # an explicit (possibly empty) mask: no pre-training mask is sampled for this pass
            lifted = model(pose_2d=p2d, spatial_mask=missing.to(p2d.device), lift_labels=p3d)
            out.loss = out.loss + config.loss_weight_lift * lifted.loss_lift
            logs["loss_lift"] = lifted.loss_lift
    elif task == "lift":
        mask = _occlusion(p2d.shape[0], config, occlusion, generator)
        if mask is not None:
            mask = mask.to(p2d.device)
        out = model(pose_2d=p2d, spatial_mask=mask, labels=p3d)
        logs = {}
    elif task == "refine":
        if "intrinsics" not in batch or "root_3d" not in batch:
            raise ValueError("the refine task needs windows with camera data: 'intrinsics' (normalised "
                             "[fx, fy, cx, cy, ...]) and 'root_3d' (camera-frame root, metres)")
        if getattr(config, "use_refine", False) is not True:
            raise ValueError("the refine task needs a lifter with a refiner (model.use_refine: true)")
        c = config.center_frame
        out = model(pose_2d=p2d, labels=p3d[:, c:c + 1], camera_intrinsics=batch["intrinsics"],
                    root_depth=batch["root_3d"][:, c, 2])
        logs = {}
    elif task == "complete3d":
        tube = sample_masks(config, p3d.shape[0], "3d", generator, p3d.device, mode="tube", share=False)[0]
        out = model(pose_3d=p3d, spatial_mask_3d=tube)
        logs = {"loss_3d": out.loss_3d}
    elif task == "occluded2d":
        tube = sample_masks(config, p2d.shape[0], "2d", generator, p2d.device, mode="tube", share=False)[0]
        out = model(pose_2d=p2d, spatial_mask=tube, lift_labels=p3d)
        logs = {"loss_2d": out.loss_2d, "loss_lift": out.loss_lift}
    else:
        raise ValueError(f"unknown task {task!r}")
    logs = {k: float(v.detach()) for k, v in logs.items() if v is not None}
    return out.loss, logs
