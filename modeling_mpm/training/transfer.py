"""Fine-tuning a pre-trained encoder under a new head (``training.init_from`` runs): encoder LR
scaling, LP-FT (encoder frozen for the first steps) and residual-stream rescaling
(``training.rescale_encoder_stream``); see docs/training.md.

The **encoder** is the base model (``model.mpm``) without its mask tokens; everything else is a
**new part** trained at the full ``training.lr``. Without ``init_from``, or with the defaults
(``encoder_lr_scale: 1.0``, ``freeze_encoder_steps: 0``), the optimizer is the single-group Adam of
every parameter, bit-identical to runs before these keys existed.
"""

from __future__ import annotations

from typing import Any, Dict, List

__all__ = ["encoder_parameter_names", "optimizer_param_groups", "drop_frozen_encoder_grads", "transfer_active",
           "residual_stream_norm", "residual_stream_writes", "rescale_residual_stream"]


def encoder_parameter_names(model) -> List[str]:
    """Names (as in ``model.named_parameters()``) of the transferred encoder's parameters: those of
    the base model (``model.base_model_prefix``, ``mpm``) except its mask tokens."""
    prefix = getattr(model, "base_model_prefix", "") or ""
    if not prefix or not hasattr(model, prefix):
        raise ValueError(f"{type(model).__name__} has no base model {prefix!r}: no encoder to scale or freeze")
    return [n for n, _ in model.named_parameters() if n.startswith(prefix + ".") and "mask_token" not in n]


def residual_stream_norm(encoder, num_windows: int = 64, seed: int = 0) -> float:
    """Mean per-frame L2 norm of the residual stream ``encoder`` (an :class:`MPMModel`) feeds its
    transformer, in train mode without dropout, on ``num_windows`` random 2D windows of a private
    generator. Runs on a copy: the encoder, its BatchNorm statistics and the global RNG are untouched."""
    import copy

    import torch

    probe = copy.deepcopy(encoder).float().train()
    for m in probe.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    cfg = probe.config
    gen = torch.Generator().manual_seed(seed)
    pose = 0.2 * torch.randn(num_windows, cfg.num_frames, cfg.num_joints, 2, generator=gen)
    device = next(probe.parameters()).device
    with torch.no_grad():
        return float(probe.embed_frames(pose.to(device), None).norm(dim=-1).mean())


def residual_stream_writes(encoder) -> List:
    """The parameters of ``encoder`` (an :class:`MPMModel`) that write into its residual stream: the
    spatial MLP's output projection, the position embedding, and each layer's attention output and
    feed-forward output projections (weights and biases)."""
    writes = [encoder.spatial_mlp.out_proj.weight, encoder.spatial_mlp.out_proj.bias, encoder.position_embedding]
    for layer in encoder.layers:
        for proj in (layer.attention.out_proj, layer.feed_forward.fc2):
            writes += [proj.weight, proj.bias]
    return writes


def rescale_residual_stream(model) -> float:
    """Scale the transferred encoder's residual stream (of ``model.mpm``, in place) to its size at a
    fresh initialisation; returns the factor ``a``. Every write into the stream
    (:func:`residual_stream_writes`) is multiplied by ``a``, so the pre-LN layers compute the same
    features: nothing learned is lost (pre-training grows the stream about 4-5x)."""
    import torch

    from ..modeling_mpm import MPMModel

    encoder = getattr(model, getattr(model, "base_model_prefix", ""), None)
    if not isinstance(encoder, MPMModel):
        raise TypeError(f"{type(model).__name__} has no MPMModel encoder to rescale")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        fresh = MPMModel(encoder.config, add_3d_embedding=False)
    a = residual_stream_norm(fresh) / residual_stream_norm(encoder)
    with torch.no_grad():
        for t in residual_stream_writes(encoder):
            t.mul_(a)
    return a


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
    """LP-FT: while ``global_step < training.freeze_encoder_steps``, set the encoder group's gradients
    to ``None`` (Adam leaves it and its moments untouched; BatchNorm statistics still update); call
    before gradient clipping. Returns whether the encoder is frozen at this step."""
    if not transfer_active(cfg) or global_step >= cfg.training.freeze_encoder_steps:
        return False
    for group in optimizer.param_groups:
        if group.get("name") == "encoder":
            for p in group["params"]:
                p.grad = None
    return True

