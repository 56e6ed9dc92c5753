"""Fine-tuning a pre-trained encoder under a new, randomly initialised head (runs with
``training.init_from``): encoder learning-rate scaling and LP-FT (encoder frozen for the first
steps). See docs/training.md, "Why the pre-trained lifter does not transfer better".

The **encoder** is the transferred base model (``model.mpm``: joint embeddings, spatial MLP,
temporal transformer, position embedding) *without* its mask tokens; everything else (the
lifter's reduce layers and heads, decoders, mask tokens) is a **new part** and always trains at the
full ``training.lr``. Both keys act only when ``training.init_from`` is set: a run from scratch has
no pre-trained encoder, so ``--set training.init_from=null`` gives the scratch recipe unchanged.
With the defaults (``encoder_lr_scale: 1.0``, ``freeze_encoder_steps: 0``) the optimizer is the
single-group Adam of every parameter, bit-identical to runs before these keys existed.
"""

from __future__ import annotations

from typing import Any, Dict, List

__all__ = ["encoder_parameter_names", "optimizer_param_groups", "drop_frozen_encoder_grads", "transfer_active"]


def encoder_parameter_names(model) -> List[str]:
    """Names (as in ``model.named_parameters()``) of the transferred encoder's parameters: those of
    the base model (``model.base_model_prefix``, ``mpm``) except its mask tokens."""
    prefix = getattr(model, "base_model_prefix", "") or ""
    if not prefix or not hasattr(model, prefix):
        raise ValueError(f"{type(model).__name__} has no base model {prefix!r}: no encoder to scale or freeze")
    return [n for n, _ in model.named_parameters() if n.startswith(prefix + ".") and "mask_token" not in n]


def transfer_active(cfg) -> bool:
    """Whether the run has an encoder to treat apart (``training.init_from`` is set)."""
    return bool(cfg.training.init_from)


def optimizer_param_groups(model, cfg) -> List[Dict[str, Any]]:
    """Adam parameter groups: ``[{"params": all}]`` with the defaults or without ``init_from``;
    otherwise ``[{"params": new parts, "lr": lr}, {"params": encoder, "lr": lr * encoder_lr_scale}]``
    (the encoder group second, named ``"encoder"``)."""
    t = cfg.training
    if not transfer_active(cfg) or (t.encoder_lr_scale == 1.0 and t.freeze_encoder_steps == 0):
        return [{"params": list(model.parameters())}]
    enc = set(encoder_parameter_names(model))
    named = list(model.named_parameters())
    return [{"params": [p for n, p in named if n not in enc], "lr": t.lr, "name": "new"},
            {"params": [p for n, p in named if n in enc], "lr": t.lr * t.encoder_lr_scale, "name": "encoder"}]


def drop_frozen_encoder_grads(optimizer, cfg, global_step: int) -> bool:
    """LP-FT: before optimizer step ``global_step + 1``, while ``global_step <
    training.freeze_encoder_steps``, set the encoder group's gradients to ``None`` so Adam leaves
    those parameters (and their moment estimates) untouched; call before gradient clipping.
    Returns whether the encoder is frozen at this step. The encoder's BatchNorm layers still
    update their running statistics (train mode)."""
    if not transfer_active(cfg) or global_step >= cfg.training.freeze_encoder_steps:
        return False
    for group in optimizer.param_groups:
        if group.get("name") == "encoder":
            for p in group["params"]:
                p.grad = None
    return True

