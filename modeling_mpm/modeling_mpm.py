"""MPM models: the shared single-stream 2D/3D pose encoder, the masked-pose-modeling model (pre-training,
completion) and the 2D -> 3D lifter.

- ``pose_2d``: ``(batch, frames, joints, 2)`` normalised screen coordinates (``x / w * 2 - 1``, ``y / w * 2 - h / w``).
- ``pose_3d``: ``(batch, frames, joints, 3)`` metres, camera frame (x right, y down, z forward), root (joint 0) at 0.
- masks: bool, True = masked; spatial ``(batch, frames, joints)`` or ``(frames, joints)``, temporal
  ``(batch, frames)`` or ``(frames,)``.

Layer numerics follow the authors' code (docs/authors_code.md sections 4, 6): converted checkpoints reproduce them.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, fields
from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import ModelOutput
from transformers.utils.output_capturing import OutputRecorder, capture_outputs

from .configuration_mpm import MPMConfig
from .masking import sample_masks

__all__ = ["MPMPreTrainedModel", "MPMModel", "MPMForMaskedPoseModeling", "MPMForPoseLifting", "MPMModelOutput",
           "MPMMaskedPoseModelingOutput", "MPMPoseLiftingOutput", "mpjpe_loss", "zero_root"]


#: Warning for missing 2D joints fed to a lifter with ``config.mask_token_2d_trained=False``.
UNTRAINED_MASK_TOKEN_2D = (
    "this lifter's 2D mask token was never trained (a converted official lifter has none; its value "
    "is a random initialisation), so missing joints are fed as noise; fine-tune it with occluded input "
    "(training.occlusion_prob > 0) or start the lifter from MPM pre-training")


@dataclass
class MPMModelOutput(ModelOutput):
    """Output of :class:`MPMModel`.

    Attributes:
        last_hidden_state: ``(batch, visible_frames, hidden_size)`` frame features in time order
            (all frames when no temporal mask is given).
        visible_frame_indices: ``(batch, visible_frames)`` frame index of every token, or ``None``
            when no frame was dropped.
        padding_mask: ``(batch, visible_frames)`` bool, True for padding tokens (only when samples
            keep different numbers of frames), else ``None``.
        hidden_states: with ``output_hidden_states=True``, ``num_layers + 1`` tensors
            ``(batch, visible_frames, hidden_size)``: the embedded frames, then every layer's output.
        attentions: with ``output_attentions=True`` (``attn_implementation="eager"``), ``num_layers``
            tensors ``(batch, heads, visible_frames, visible_frames)`` of attention weights.
    """

    last_hidden_state: Optional[torch.FloatTensor] = None
    visible_frame_indices: Optional[torch.LongTensor] = None
    padding_mask: Optional[torch.BoolTensor] = None
    hidden_states: Optional[Tuple[torch.FloatTensor, ...]] = None
    attentions: Optional[Tuple[torch.FloatTensor, ...]] = None


@dataclass
class MPMMaskedPoseModelingOutput(ModelOutput):
    """Output of :class:`MPMForMaskedPoseModeling`.

    Attributes:
        loss: weighted sum of the losses present (``loss_weight_2d * loss_2d + ...``).
        loss_2d / loss_3d: mean per-joint error of the 2D (normalised units) / 3D (metres)
            reconstruction; loss_lift: of the 3D lifted from the 2D input against ``lift_labels``
            (root set to 0 in the labels). 3D losses see the predicted root as the head outputs it
            (the authors' losses), whatever ``zero_root_output`` does to the returned poses.
        pose_2d: ``(batch, frames, joints, 2)`` 2D reconstruction.
        pose_3d: ``(batch, frames, joints, 3)`` 3D reconstruction (metres).
        pose_3d_from_2d: ``(batch, frames, joints, 3)`` 3D lifted from the 2D input (metres).
        spatial_mask_2d / temporal_mask_2d / spatial_mask_3d / temporal_mask_3d: the masks used.
        hidden_states_2d / attentions_2d / hidden_states_3d / attentions_3d: the encoder's
            ``hidden_states`` / ``attentions`` (see :class:`MPMModelOutput`) of the 2D / 3D pass,
            with ``output_hidden_states`` / ``output_attentions``.
    """

    loss: Optional[torch.FloatTensor] = None
    loss_2d: Optional[torch.FloatTensor] = None
    loss_3d: Optional[torch.FloatTensor] = None
    loss_lift: Optional[torch.FloatTensor] = None
    pose_2d: Optional[torch.FloatTensor] = None
    pose_3d: Optional[torch.FloatTensor] = None
    pose_3d_from_2d: Optional[torch.FloatTensor] = None
    spatial_mask_2d: Optional[torch.BoolTensor] = None
    temporal_mask_2d: Optional[torch.BoolTensor] = None
    spatial_mask_3d: Optional[torch.BoolTensor] = None
    temporal_mask_3d: Optional[torch.BoolTensor] = None
    hidden_states_2d: Optional[Tuple[torch.FloatTensor, ...]] = None
    attentions_2d: Optional[Tuple[torch.FloatTensor, ...]] = None
    hidden_states_3d: Optional[Tuple[torch.FloatTensor, ...]] = None
    attentions_3d: Optional[Tuple[torch.FloatTensor, ...]] = None


@dataclass
class MPMPoseLiftingOutput(ModelOutput):
    """Output of :class:`MPMForPoseLifting`.

    Attributes:
        loss: ``lift_all_frames_loss_weight * MPJPE(all frames) + lift_center_loss_weight *
            MPJPE(centre frame)`` in metres, over all joints, with the target's root set to 0 and
            the predicted root as the head outputs it (the authors' loss: it trains the root
            output towards 0).
        pose_3d: ``(batch, frames, joints, 3)`` metres, from the all-frames head.
        pose_3d_center: ``(batch, 1, joints, 3)`` metres, the centre frame from the strided reduce
            (refined when the model has a refiner and camera data are given).
        hidden_states / attentions: the encoder's (see :class:`MPMModelOutput`), with
            ``output_hidden_states`` / ``output_attentions``.
    """

    loss: Optional[torch.FloatTensor] = None
    pose_3d: Optional[torch.FloatTensor] = None
    pose_3d_center: Optional[torch.FloatTensor] = None
    hidden_states: Optional[Tuple[torch.FloatTensor, ...]] = None
    attentions: Optional[Tuple[torch.FloatTensor, ...]] = None


def mpjpe_loss(prediction: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Mean per-joint position error ``mean ||prediction - target||_2`` over ``(..., joints, C)``.

    ``weight``: optional ``(..., joints)`` bool/float selecting joints; non-finite target joints
    are always ignored. Returns 0 (with a gradient path) when nothing is selected.
    """
    valid = torch.isfinite(target).all(-1)
    if weight is not None:
        valid = valid & weight.bool()
    err = torch.linalg.vector_norm(prediction - torch.nan_to_num(target), dim=-1)
    if bool(valid.all()):
        return err.mean()
    w = valid.to(err.dtype)
    return (err * w).sum() / w.sum().clamp_min(1.0)


def _fields_tuple(out: ModelOutput) -> tuple:
    """``out.to_tuple()`` in field order (fields assigned after construction would come in assignment order)."""
    return tuple(getattr(out, f.name) for f in fields(out) if getattr(out, f.name) is not None)


def zero_root(pose, root: Optional[int]):
    """The root rule used everywhere: joint ``root`` of ``pose`` ``(..., J, C)`` (torch or NumPy) set to 0, the
    others unchanged (set, not subtracted, as the authors' evaluation); ``root=None`` returns ``pose``."""
    if root is None:
        return pose
    if not isinstance(pose, torch.Tensor):
        pose = np.array(pose, copy=True)
        pose[..., root, :] = 0
        return pose
    is_root = (torch.arange(pose.shape[-2], device=pose.device) == root)[:, None]
    return torch.where(is_root, torch.zeros((), dtype=pose.dtype, device=pose.device), pose)


class MPMLayerNorm(nn.Module):
    """LayerNorm over the last dimension. ``legacy=True``: the authors' ``weight * (x - mean) / (std + eps) + bias``
    with the unbiased std; ``legacy=False``: ``nn.functional.layer_norm``."""

    def __init__(self, size: int, eps: float = 1e-6, legacy: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.bias = nn.Parameter(torch.zeros(size))
        self.eps = eps
        self.legacy = legacy

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # statistics and affine part in float32; the result in the weights' (compute) dtype
        h = x.float()
        w, b = self.weight.float(), self.bias.float()
        if not self.legacy:
            return F.layer_norm(h, (h.shape[-1],), w, b, self.eps).to(self.weight.dtype)
        # two-pass mean / sum of squares: same numerics as torch.var_mean(correction=1), ~20x faster on CPU
        mean = h.mean(-1, keepdim=True)
        d = h - mean
        var = (d * d).sum(-1, keepdim=True) / (h.shape[-1] - 1)
        return torch.addcmul(b, d / (var.sqrt() + self.eps), w).to(self.weight.dtype)


def eager_attention_forward(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """Softmax attention on ``(batch, heads, tokens, head_dim)``; ``attention_mask`` ``(batch, 1, 1, tokens)``
    bool, True = attend (or None). Returns ``(output (batch, tokens, heads, head_dim), weights)``."""
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        scores = scores.masked_fill(~attention_mask, float("-inf"))
    weights = F.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = F.dropout(weights, p=dropout, training=module.training)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


class MPMAttention(nn.Module):
    """Bidirectional multi-head self-attention over frames; ``padding_mask`` ``(batch, tokens)`` True = ignore. The
    kernel is ``config._attn_implementation`` from transformers' registry: ``"sdpa"`` (default) or ``"eager"``
    (the only one returning weights)."""

    is_causal = False

    def __init__(self, config: MPMConfig):
        super().__init__()
        c = config.hidden_size
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = c // self.num_heads
        self.q_proj = nn.Linear(c, c)
        self.k_proj = nn.Linear(c, c)
        self.v_proj = nn.Linear(c, c)
        self.out_proj = nn.Linear(c, c)
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor, padding_mask: Optional[torch.Tensor] = None):
        """``(batch, tokens, hidden)`` -> ``(output (batch, tokens, hidden), weights (eager only) or None)``."""
        b, t, c = x.shape

        def heads(y):
            return y.view(b, t, self.num_heads, self.head_dim).transpose(1, 2)

        attn_mask = None if padding_mask is None else ~padding_mask[:, None, None, :]
        implementation = self.config._attn_implementation or "sdpa"
        attention = eager_attention_forward
        if implementation != "eager":
            attention = ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager_attention_forward)
        # scaling=None: the kernels' default 1/sqrt(head_dim), bit-identical to the authors' SDPA call
        out, weights = attention(self, heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x)), attn_mask,
                                 dropout=self.dropout if self.training else 0.0, scaling=None, is_causal=False)
        return self.out_proj(out.reshape(b, t, c)), weights


class MPMFeedForward(nn.Module):
    def __init__(self, config: MPMConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.fc2(self.dropout(F.relu(self.fc1(x))))


class MPMTransformerLayer(GradientCheckpointingLayer):
    """Pre-LN transformer layer: ``x + drop(attn(LN(x)))``, then ``x + drop(ffn(LN(x)))``."""

    def __init__(self, config: MPMConfig):
        super().__init__()
        self.attn_norm = MPMLayerNorm(config.hidden_size, config.layer_norm_eps, config.legacy_layer_norm)
        self.attention = MPMAttention(config)
        self.ffn_norm = MPMLayerNorm(config.hidden_size, config.layer_norm_eps, config.legacy_layer_norm)
        self.feed_forward = MPMFeedForward(config)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x, padding_mask=None):
        attended, _ = self.attention(self.attn_norm(x), padding_mask)
        x = x + self.dropout(attended)
        return x + self.dropout(self.feed_forward(self.ffn_norm(x)))


class MPMJointEmbedding(nn.Module):
    """Per-frame joint embedding, 1x1 Conv -> BN -> LeakyReLU -> Dropout: ``(batch, joints * channels, frames) ->
    (batch, embedding_size, frames)``."""

    def __init__(self, in_features: int, out_features: int, dropout: float):
        super().__init__()
        self.proj = nn.Conv1d(in_features, out_features, kernel_size=1)
        self.norm = nn.BatchNorm1d(out_features)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.dropout(F.leaky_relu(self.norm(self.proj(x)), 0.2))


class MPMResidualBlock(nn.Module):
    """``x + [Conv1x1 -> BN -> LeakyReLU -> Dropout] x 2``."""

    def __init__(self, size: int, dropout: float):
        super().__init__()
        self.linear1 = nn.Conv1d(size, size, kernel_size=1)
        self.norm1 = nn.BatchNorm1d(size)
        self.linear2 = nn.Conv1d(size, size, kernel_size=1)
        self.norm2 = nn.BatchNorm1d(size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        y = self.dropout(F.leaky_relu(self.norm1(self.linear1(x)), 0.2))
        y = self.dropout(F.leaky_relu(self.norm2(self.linear2(y)), 0.2))
        return x + y


class MPMSpatialMLP(nn.Module):
    """The shared per-frame MLP: one residual block, then ``embedding_size -> hidden_size``."""

    def __init__(self, config: MPMConfig, dropout: float):
        super().__init__()
        self.blocks = nn.ModuleList([MPMResidualBlock(config.embedding_size, dropout)])
        self.out_proj = nn.Conv1d(config.embedding_size, config.hidden_size, kernel_size=1)

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.out_proj(x)


class MPMPoseHead(nn.Module):
    """BatchNorm -> 1x1 Conv: ``(batch, frames, hidden) -> (batch, frames, joints, channels)``."""

    def __init__(self, hidden_size: int, num_joints: int, channels: int):
        super().__init__()
        self.norm = nn.BatchNorm1d(hidden_size)
        self.proj = nn.Conv1d(hidden_size, num_joints * channels, kernel_size=1)
        self.num_joints = num_joints
        self.channels = channels

    def forward(self, x):
        b, t, _ = x.shape
        y = self.norm(x.transpose(1, 2).to(self.norm.weight.dtype))
        y = self.proj(y.to(self.proj.weight.dtype)).float()  # (b, J*c, t); poses are float32 in any dtype
        return y.transpose(1, 2).reshape(b, t, self.num_joints, self.channels)


class MPMStridedLayer(GradientCheckpointingLayer):
    """Strided transformer layer: attention, then a feed-forward whose second conv has
    kernel 3 and stride ``s``; the residual is subsampled ``x[:, ::s]`` (frames / s)."""

    def __init__(self, config: MPMConfig, stride: int):
        super().__init__()
        c, h = config.hidden_size, config.intermediate_size
        self.attn_norm = MPMLayerNorm(c, config.layer_norm_eps, config.legacy_layer_norm)
        self.attention = MPMAttention(config)
        self.ffn_norm = MPMLayerNorm(c, config.layer_norm_eps, config.legacy_layer_norm)
        self.ffn_in = nn.Conv1d(c, h, kernel_size=1)
        self.ffn_out = nn.Conv1d(h, c, kernel_size=3, stride=stride, padding=1)
        self.dropout = nn.Dropout(config.dropout)
        self.stride = stride

    def forward(self, x):
        x = x + self.dropout(self.attention(self.attn_norm(x))[0])
        y = self.ffn_norm(x).transpose(1, 2)
        y = self.ffn_out(self.dropout(F.relu(self.ffn_in(y)))).transpose(1, 2)
        return x[:, :: self.stride] + self.dropout(y)


class MPMPositionEmbedding(nn.Module):
    """A learned ``(1, frames, hidden)`` position embedding in its own module, so that ``_init_weights`` sees it."""

    def __init__(self, num_frames: int, hidden_size: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, num_frames, hidden_size))


class MPMStridedReduce(nn.Module):
    """Strided transformer reducing ``(batch, frames, hidden)`` to the centre frame
    ``(batch, 1, hidden)``; the first three layers add their own position embedding."""

    def __init__(self, config: MPMConfig):
        super().__init__()
        n, c = min(3, len(config.reduce_strides)), config.hidden_size
        self.position_embeddings = nn.ModuleList([MPMPositionEmbedding(config.num_frames, c) for _ in range(n)])
        self.layers = nn.ModuleList([MPMStridedLayer(config, s) for s in config.reduce_strides])

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            if i < len(self.position_embeddings):
                x = x + self.position_embeddings[i].weight[:, : x.shape[1]]
            x = layer(x)
        return x


class MPMPoseRefiner(nn.Module):
    """Post-refinement of the centre frame (docs/authors_code.md section 6.5): a learned per-joint gate blends the
    predicted x, y with the back-projection of the input 2D at the predicted depth. Needs normalised intrinsics
    ``(batch, >=4)`` ``[fx, fy, cx, cy, ...]`` and the root depth ``(batch,)`` in metres (authors: ground truth)."""

    def __init__(self, num_joints: int, hidden: int = 1024, dropout: float = 0.5):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(6 * num_joints, hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, 2 * num_joints), nn.Sigmoid())

    def forward(self, pose_3d_center, pose_2d_center, intrinsics, root_depth):
        b, _, j, _ = pose_3d_center.shape
        z = pose_3d_center[..., 2:3] + root_depth.view(b, 1, 1, 1)
        z = torch.cat([root_depth.view(b, 1, 1, 1).expand(b, 1, 1, 1), z[:, :, 1:]], dim=2)
        f, c = intrinsics[:, None, None, 0:2], intrinsics[:, None, None, 2:4]
        xyz = torch.cat([(pose_2d_center - c) * z / f, z], dim=-1)
        xyz = xyz - xyz[:, :, :1]
        w = next(self.mlp.parameters(), None)  # None after dynamic int8 quantisation (float32 input)
        features = torch.cat([pose_3d_center, xyz], dim=-1).reshape(b, 6 * j)
        gate = self.mlp(features.to(torch.float32 if w is None else w.dtype)).float().view(b, 1, j, 2)
        refined_xy = gate * pose_3d_center[..., :2] + (1 - gate) * xyz[..., :2]
        return torch.cat([refined_xy, pose_3d_center[..., 2:]], dim=-1)


def _as_pose(x, name: str, channels: int, num_joints: int, num_frames: int) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array of shape (batch, frames, joints, {channels}), "
                        f"got {type(x).__name__}")
    if not torch.is_floating_point(x):
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.dim() != 4 or x.shape[-1] != channels or x.shape[-2] != num_joints or x.shape[1] != num_frames:
        raise ValueError(f"{name} must have shape (batch, {num_frames}, {num_joints}, {channels}) for this model "
                         f"(num_frames={num_frames}, num_joints={num_joints}), got {tuple(x.shape)}; use the pipeline "
                         f"or modeling_mpm.inference to window sequences of other lengths")
    if x.shape[0] == 0:
        raise ValueError(f"{name} has an empty batch")
    return x


def _as_mask(mask, name: str, batch: int, shape: Tuple[int, ...], device) -> Optional[torch.Tensor]:
    if mask is None:
        return None
    if isinstance(mask, np.ndarray):
        mask = torch.from_numpy(mask)
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{name} must be a bool tensor of shape {shape} or (batch, *{shape}), "
                        f"got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        if torch.is_floating_point(mask):
            raise TypeError(f"{name} must be a bool (or integer 0/1) tensor, got dtype {mask.dtype}")
        mask = mask != 0
    if tuple(mask.shape) == shape:
        mask = mask.unsqueeze(0).expand(batch, *shape)
    elif tuple(mask.shape) != (batch, *shape):
        raise ValueError(f"{name} must have shape {shape} or {(batch, *shape)}, got {tuple(mask.shape)}")
    return mask.to(device)


class MPMPreTrainedModel(PreTrainedModel):
    config_class = MPMConfig
    base_model_prefix = "mpm"
    main_input_name = "pose_2d"
    _no_split_modules = ["MPMTransformerLayer", "MPMStridedLayer"]
    _supports_sdpa = True
    _supports_attention_backend = True
    supports_gradient_checkpointing = True
    #: auto classes a saved folder names this class under (``config.auto_map``, remote code)
    _auto_map_classes: Tuple[str, ...] = ("AutoModel",)

    def save_pretrained(self, save_directory, *args, **kwargs):
        """``PreTrainedModel.save_pretrained``; a model registered for remote code writes a complete ``auto_map``
        (``AutoConfig``, ``AutoModel``, its task auto class) naming this class, so every auto class loads it."""
        if self._auto_class is not None:
            name = f"{type(self).__module__.split('.')[-1]}.{type(self).__name__}"
            old = dict(getattr(self.config, "auto_map", None) or {})
            auto_map = {k: v for k, v in old.items() if k == "AutoConfig"}
            auto_map.update({auto_class: name for auto_class in self._auto_map_classes})
            self.config.auto_map = auto_map
        return super().save_pretrained(save_directory, *args, **kwargs)

    def _output_flags(self, output_attentions, output_hidden_states, return_dict, kwargs):
        """Resolve the output flags against the config; refuse unknown keyword arguments (a misspelt ``labels=``)."""
        if kwargs:
            raise TypeError(f"{type(self).__name__}.forward() got unexpected keyword argument(s) {sorted(kwargs)}; "
                            f"see help({type(self).__name__}.forward) for the accepted ones")
        cfg = self.config
        output_attentions = cfg.output_attentions if output_attentions is None else output_attentions
        if output_attentions and (cfg._attn_implementation or "sdpa") != "eager":
            raise ValueError(f"output_attentions=True needs the eager attention, this model uses "
                             f"{cfg._attn_implementation!r}; load it with attn_implementation=\"eager\" or call "
                             f"model.set_attn_implementation(\"eager\")")
        output_hidden_states = cfg.output_hidden_states if output_hidden_states is None else output_hidden_states
        return_dict = cfg.return_dict if return_dict is None else return_dict
        return bool(output_attentions), bool(output_hidden_states), bool(return_dict)
    # BatchNorm parameters and statistics stay float32 under from_pretrained(dtype=bf16/fp16)
    _keep_in_fp32_modules_strict = [r"(^|\.)norm[12]?\.(weight|bias|running_mean|running_var)"]

    @torch.no_grad()
    def _init_weights(self, module):
        """PyTorch-default init for convs/linears (as the authors), ones/zeros for norms, ``N(0, embedding_init_std)``
        for position embeddings and mask tokens (transformers 5 skips ``__init__`` init of missing tensors)."""
        std = self.config.embedding_init_std
        if isinstance(module, (nn.Linear, nn.Conv1d)):
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            if module.bias is not None:
                bound = 1 / math.sqrt(math.prod(module.weight.shape[1:]))  # 1 / sqrt(fan_in)
                init.uniform_(module.bias, -bound, bound)
        elif isinstance(module, (nn.BatchNorm1d, MPMLayerNorm)):
            init.ones_(module.weight)
            init.zeros_(module.bias)
            if isinstance(module, nn.BatchNorm1d):
                init.zeros_(module.running_mean)
                init.ones_(module.running_var)
                init.zeros_(module.num_batches_tracked)
        elif isinstance(module, MPMModel):
            init.normal_(module.position_embedding, std=std)
            init.normal_(module.spatial_mask_token_2d, std=std)
            if module.spatial_mask_token_3d is not None:
                init.normal_(module.spatial_mask_token_3d, std=std)
        elif isinstance(module, MPMPositionEmbedding):
            init.normal_(module.weight, std=std)
        elif isinstance(module, MPMForMaskedPoseModeling):
            init.normal_(module.temporal_mask_token, std=std)
            init.normal_(module.decoder_position_embedding, std=std)


class MPMModel(MPMPreTrainedModel):
    """The shared single-stream encoder: a per-modality (2D/3D) joint embedding, the shared spatial MLP and the
    shared temporal transformer with a learned frame position embedding. One call encodes one modality. Masked
    joints (``spatial_mask``) get a learned mask token before the embedding; masked frames (``temporal_mask``) are
    dropped after the position embedding is added.

    Args:
        add_3d_embedding: build the 3D joint embedding and 3D mask token (the 2D-only lifter leaves them out).
        mlp_dropout: dropout of the embedding and spatial MLP (default ``config.mlp_dropout``).
    """

    def __init__(self, config: MPMConfig, add_3d_embedding: bool = True, mlp_dropout: Optional[float] = None):
        super().__init__(config)
        j, e, c = config.num_joints, config.embedding_size, config.hidden_size
        drop = config.mlp_dropout if mlp_dropout is None else mlp_dropout
        self.spatial_mask_token_2d = nn.Parameter(torch.zeros(2))
        self.joint_embedding_2d = MPMJointEmbedding(2 * j, e, drop)
        self.spatial_mask_token_3d = nn.Parameter(torch.zeros(3)) if add_3d_embedding else None
        self.joint_embedding_3d = MPMJointEmbedding(3 * j, e, drop) if add_3d_embedding else None
        self.spatial_mlp = MPMSpatialMLP(config, drop)
        self.position_embedding = nn.Parameter(torch.zeros(1, config.num_frames, c))
        self.layers = nn.ModuleList([MPMTransformerLayer(config) for _ in range(config.num_layers)])
        self.post_init()

    #: output capturing: each layer's output (``num_layers + 1`` hidden states with the input), eager attention weights
    _can_record_outputs = {"hidden_states": MPMTransformerLayer, "attentions": OutputRecorder(MPMAttention, index=1)}

    def get_input_embeddings(self) -> nn.Module:
        """The 2D joint embedding (transformers' default raises without token embeddings; Accelerate FSDP2 calls it)."""
        return self.joint_embedding_2d

    def set_input_embeddings(self, value: nn.Module):
        self.joint_embedding_2d = value

    def embed_frames(self, pose: torch.Tensor, spatial_mask: Optional[torch.Tensor],
                     add_position_embedding: bool = True) -> torch.Tensor:
        """``(batch, frames, joints, 2|3)`` -> ``(batch, frames, hidden_size)`` with position embedding. Without it
        (``add_position_embedding=False``), frames are embedded independently (eval mode), any number of them: seq2frame
        inference and the streaming lifter reuse these features across windows."""
        b, t, j, d = pose.shape
        if d == 2:
            token, embedding = self.spatial_mask_token_2d, self.joint_embedding_2d
        else:
            if self.joint_embedding_3d is None:
                raise ValueError("this model has no 3D input embedding (a lifter takes only pose_2d)")
            token, embedding = self.spatial_mask_token_3d, self.joint_embedding_3d
        pose = pose.to(embedding.proj.weight.dtype)  # the model's dtype (bfloat16 after from_pretrained(dtype=...))
        if spatial_mask is not None:
            if d == 2 and not self.config.mask_token_2d_trained and bool(spatial_mask.any()):
                warnings.warn(UNTRAINED_MASK_TOKEN_2D, stacklevel=3)
            pose = torch.where(spatial_mask[..., None], token.to(pose.dtype), pose)
        x = embedding(pose.reshape(b, t, j * d).transpose(1, 2))
        x = self.spatial_mlp(x).transpose(1, 2).float()  # the transformers' residual stream is float32
        return x + self.position_embedding if add_position_embedding else x

    @capture_outputs
    def forward(self, pose_2d: Optional[torch.Tensor] = None, pose_3d: Optional[torch.Tensor] = None,
                spatial_mask: Optional[torch.Tensor] = None, temporal_mask: Optional[torch.Tensor] = None,
                output_attentions: Optional[bool] = None, output_hidden_states: Optional[bool] = None,
                return_dict: Optional[bool] = None, **kwargs):
        """Encode one modality: pass exactly one of ``pose_2d`` / ``pose_3d``.

        ``output_attentions`` / ``output_hidden_states`` / ``return_dict`` default to the config's; with
        ``return_dict=False`` the output is ``MPMModelOutput.to_tuple()``. ``@capture_outputs`` collects
        ``hidden_states`` / ``attentions`` and applies ``return_dict``; this body only checks the flags."""
        self._output_flags(output_attentions, output_hidden_states, return_dict, kwargs)
        if (pose_2d is None) == (pose_3d is None):
            raise ValueError("MPMModel encodes one modality per call: pass exactly one of pose_2d or pose_3d")
        pose, name, d = (pose_2d, "pose_2d", 2) if pose_2d is not None else (pose_3d, "pose_3d", 3)
        pose, spatial_mask, temporal_mask = self._prepare(pose, name, d, spatial_mask, temporal_mask)
        token_mask = spatial_mask
        if temporal_mask is not None:
            # Dropped frames pass the embedding and spatial MLP, then are removed. They carry their coordinates
            # (authors) or the mask token (config); non-finite values always get the token (no NaN in BatchNorm).
            dropped = temporal_mask[..., None].expand(-1, -1, pose.shape[2])
            if self.config.dropped_frames_input == "coordinates":
                dropped = dropped & ~torch.isfinite(pose).all(-1)
            token_mask = dropped if token_mask is None else token_mask | dropped
        x = self.embed_frames(pose, token_mask)
        indices = padding = None
        if temporal_mask is not None and bool(temporal_mask.any()):
            x, indices, padding = _drop_masked_frames(x, temporal_mask)
        for layer in self.layers:  # hidden states and attention weights: recorded by @capture_outputs
            x = layer(x, padding)
        return MPMModelOutput(last_hidden_state=x, visible_frame_indices=indices, padding_mask=padding)

    def _prepare(self, pose, name, d, spatial_mask, temporal_mask):
        cfg = self.config
        pose = _as_pose(pose, name, d, cfg.num_joints, cfg.num_frames)
        b = pose.shape[0]
        spatial_mask = _as_mask(spatial_mask, "spatial_mask", b, (cfg.num_frames, cfg.num_joints), pose.device)
        temporal_mask = _as_mask(temporal_mask, "temporal_mask", b, (cfg.num_frames,), pose.device)
        if temporal_mask is not None and bool(temporal_mask.all(dim=1).any()):
            raise ValueError("temporal_mask masks every frame of a sample; at least one frame must stay visible")
        finite = torch.isfinite(pose).all(-1)
        hidden = torch.zeros_like(finite) if spatial_mask is None else spatial_mask
        if temporal_mask is not None:
            hidden = hidden | temporal_mask[..., None]
        if not bool((finite | hidden).all()):
            raise ValueError(f"{name} has NaN/inf at joints that are not masked; mark missing joints in spatial_mask "
                             f"(True = missing) so the model replaces them with its mask token")
        return pose, spatial_mask, temporal_mask


def _drop_masked_frames(x: torch.Tensor, temporal_mask: torch.Tensor):
    """Visible frames of ``x`` ``(batch, frames, C)`` in time order, padded (``padding`` True) to the largest count."""
    b, t, c = x.shape
    visible_count = (~temporal_mask).sum(dim=1)
    v = int(visible_count.max())
    order = torch.argsort(temporal_mask.to(torch.int8), dim=1, stable=True)[:, :v]
    x = x.gather(1, order[..., None].expand(b, v, c))
    padding = None
    if bool((visible_count != v).any()):
        padding = torch.arange(v, device=x.device)[None, :] >= visible_count[:, None]
    return x, order, padding


class MPMForMaskedPoseModeling(MPMPreTrainedModel):
    """Masked 2D and 3D pose modeling on the shared encoder (pre-training), also 3D pose completion and occluded
    2D -> 3D. Auto classes: ``AutoModelForPreTraining`` and ``AutoModel``.

    Masked frames are dropped before the encoder and re-inserted as a learned token plus a decoder position
    embedding; 2D and 3D decoders (``decoder_layers`` layers each) feed BatchNorm + 1x1 conv heads. The 3D decoder
    also lifts the 2D input when that output is needed (``output_lifted``).
    """

    def __init__(self, config: MPMConfig):
        super().__init__(config)
        c, j = config.hidden_size, config.num_joints
        self.mpm = MPMModel(config)
        self.encoder_norm = MPMLayerNorm(c, config.layer_norm_eps, config.legacy_layer_norm)
        self.temporal_mask_token = nn.Parameter(torch.zeros(1, 1, c))
        self.decoder_position_embedding = nn.Parameter(torch.zeros(1, config.num_frames, c))
        self.decoder_2d = nn.ModuleList([MPMTransformerLayer(config) for _ in range(config.decoder_layers)])
        self.decoder_3d = nn.ModuleList([MPMTransformerLayer(config) for _ in range(config.decoder_layers)])
        self.head_2d = MPMPoseHead(c, j, 2)
        self.head_3d = MPMPoseHead(c, j, 3)
        self.post_init()

    _auto_map_classes = ("AutoModel", "AutoModelForPreTraining")

    def sample_masks(self, batch_size: int, modality: str, generator: Optional[torch.Generator] = None,
                     device=None) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        """Masks for one modality per ``config.mask_mode`` (:func:`modeling_mpm.masking.sample_masks`)."""
        return sample_masks(self.config, batch_size, modality, generator, device)

    def _decoder_input(self, pose, modality, spatial_mask, temporal_mask, **output_flags):
        enc = self.mpm(**{f"pose_{modality}": pose}, spatial_mask=spatial_mask, temporal_mask=temporal_mask,
                       return_dict=True, **output_flags)
        feats = self.encoder_norm(enc.last_hidden_state)
        pos = self.decoder_position_embedding.expand(feats.shape[0], -1, -1)
        full = self.temporal_mask_token + pos
        if enc.visible_frame_indices is None:
            return feats + pos, enc
        idx = enc.visible_frame_indices[..., None].expand(-1, -1, feats.shape[-1])
        visible = feats + pos.gather(1, idx)
        if enc.padding_mask is not None:
            visible = torch.where(enc.padding_mask[..., None], full.gather(1, idx), visible)
        return full.scatter(1, idx, visible), enc

    @staticmethod
    def _decode(layers, head, x):
        for layer in layers:
            x = layer(x)
        return head(x)

    def _reconstruction_loss(self, prediction, target, spatial_mask, temporal_mask):
        weight = None
        if self.config.reconstruction_loss_on == "masked":
            masked = torch.zeros(target.shape[:-1], dtype=torch.bool, device=target.device)
            if spatial_mask is not None:
                masked = masked | spatial_mask
            if temporal_mask is not None:
                masked = masked | temporal_mask[..., None]
            if bool(masked.any()):
                weight = masked
        return mpjpe_loss(prediction, target, weight)

    def _encode(self, pose, modality, spatial_mask, temporal_mask, generator, **output_flags):
        """Check one modality's input and masks (sampled in training when none are given); returns
        ``(pose, spatial, temporal, decoder input (B, F, C), encoder output)``."""
        cfg = self.config
        d = 2 if modality == "2d" else 3
        pose = _as_pose(pose, f"pose_{modality}", d, cfg.num_joints, cfg.num_frames)
        b = pose.shape[0]
        if spatial_mask is None and temporal_mask is None and self.training:
            spatial_mask, temporal_mask = self.sample_masks(b, modality, generator=generator, device=pose.device)
        s = _as_mask(spatial_mask, "spatial_mask", b, (cfg.num_frames, cfg.num_joints), pose.device)
        t = _as_mask(temporal_mask, "temporal_mask", b, (cfg.num_frames,), pose.device)
        x, enc = self._decoder_input(pose, modality, s, t, **output_flags)
        return pose, s, t, x, enc

    def forward(self, pose_2d: Optional[torch.Tensor] = None, pose_3d: Optional[torch.Tensor] = None,
                spatial_mask: Optional[torch.Tensor] = None, temporal_mask: Optional[torch.Tensor] = None,
                spatial_mask_3d: Optional[torch.Tensor] = None, temporal_mask_3d: Optional[torch.Tensor] = None,
                lift_labels: Optional[torch.Tensor] = None, generator: Optional[torch.Generator] = None,
                output_lifted: Optional[bool] = None, output_attentions: Optional[bool] = None,
                output_hidden_states: Optional[bool] = None, return_dict: Optional[bool] = None, **kwargs):
        """Reconstruct masked 2D and/or 3D poses.

        Args:
            pose_2d: ``(batch, frames, joints, 2)`` normalised screen coordinates.
            pose_3d: ``(batch, frames, joints, 3)`` metres, root-relative (may be another clip than ``pose_2d``).
            spatial_mask / temporal_mask: masks for every modality passed (True = masked). If neither is given in
                training mode, masks are sampled per ``config.mask_mode`` (2D and 3D independently); eval: no mask.
            spatial_mask_3d / temporal_mask_3d: masks for the 3D pass only, overriding the above.
            lift_labels: ``(batch, frames, joints, 3)`` target of the 3D lifted from ``pose_2d``.
            generator: torch.Generator for the sampled masks.
            output_lifted: run the 3D decoder and head on the 2D input (``pose_3d_from_2d``). Default: when
                ``lift_labels`` are given or in eval mode (so a training 2D-only pass leaves the 3D head's BatchNorm
                statistics untouched, as in the authors' code).
            output_attentions / output_hidden_states / return_dict: as in :meth:`MPMModel.forward` (per pass).
        """
        output_attentions, output_hidden_states, return_dict = self._output_flags(
            output_attentions, output_hidden_states, return_dict, kwargs)
        flags = dict(output_attentions=output_attentions, output_hidden_states=output_hidden_states)
        if pose_2d is None and pose_3d is None:
            raise ValueError("pass pose_2d and/or pose_3d")
        if pose_2d is None and lift_labels is not None:
            raise ValueError("lift_labels needs pose_2d (the 3D target of the 2D input)")
        if output_lifted is None:
            output_lifted = lift_labels is not None or not self.training
        elif not output_lifted and lift_labels is not None:
            raise ValueError("lift_labels needs the lifted 3D output; do not pass output_lifted=False with them")
        cfg = self.config
        root = cfg.get_skeleton().root
        out_root = root if cfg.zero_root_output else None
        out = MPMMaskedPoseModelingOutput()
        losses = []
        if pose_2d is not None:
            pose_2d, s, t, x, enc = self._encode(pose_2d, "2d", spatial_mask, temporal_mask, generator, **flags)
            out.hidden_states_2d, out.attentions_2d = enc.hidden_states, enc.attentions
            out.pose_2d = self._decode(self.decoder_2d, self.head_2d, x)
            if output_lifted:
                lifted = self._decode(self.decoder_3d, self.head_3d, x)  # raw: the loss sees the root as predicted
                out.pose_3d_from_2d = zero_root(lifted, out_root)
            out.spatial_mask_2d, out.temporal_mask_2d = s, t
            out.loss_2d = self._reconstruction_loss(out.pose_2d, pose_2d, s, t)
            losses.append(cfg.loss_weight_2d * out.loss_2d)
            if lift_labels is not None:
                lift_labels = _as_pose(lift_labels, "lift_labels", 3, cfg.num_joints, cfg.num_frames)
                if lift_labels.shape[0] != pose_2d.shape[0]:
                    raise ValueError("lift_labels must have the batch size of pose_2d")
                out.loss_lift = mpjpe_loss(lifted, zero_root(lift_labels, root))
                losses.append(cfg.loss_weight_lift * out.loss_lift)
        if pose_3d is not None:
            if spatial_mask_3d is not None or temporal_mask_3d is not None:
                spatial_mask, temporal_mask = spatial_mask_3d, temporal_mask_3d
            pose_3d, s, t, x, enc = self._encode(pose_3d, "3d", spatial_mask, temporal_mask, generator, **flags)
            out.hidden_states_3d, out.attentions_3d = enc.hidden_states, enc.attentions
            recon = self._decode(self.decoder_3d, self.head_3d, x)
            out.pose_3d = zero_root(recon, out_root)
            out.spatial_mask_3d, out.temporal_mask_3d = s, t
            out.loss_3d = self._reconstruction_loss(recon, pose_3d, s, t)
            losses.append(cfg.loss_weight_3d * out.loss_3d)
        out.loss = torch.stack(losses).sum()
        return out if return_dict else _fields_tuple(out)


class MPMForPoseLifting(MPMPreTrainedModel):
    """2D -> 3D lifter: the shared encoder (2D branch), a strided reduce to the centre frame with a pose head
    (``pose_3d_center``), an all-frames pose head (``pose_3d``) and, with ``config.use_refine``, the refiner.

    ``from_pretrained(pretraining_dir)`` transfers the shared encoder (2D embedding and mask token, spatial MLP,
    temporal transformer, position embedding); the reduce, heads and refiner are newly initialised.
    """

    def __init__(self, config: MPMConfig):
        super().__init__(config)
        c, j = config.hidden_size, config.num_joints
        self.mpm = MPMModel(config, add_3d_embedding=False, mlp_dropout=config.lifter_mlp_dropout)
        self.reduce = MPMStridedReduce(config)
        self.center_head = MPMPoseHead(c, j, 3)
        self.frames_head = MPMPoseHead(c, j, 3)
        self.refiner = MPMPoseRefiner(j, config.refine_hidden_size) if config.use_refine else None
        if "MPMForMaskedPoseModeling" in (config.architectures or []):
            # the documented transfer from a pre-training checkpoint: leftovers and new lifting parts are expected
            self._keys_to_ignore_on_load_unexpected = list(self._transfer_unexpected_keys)
            self._keys_to_ignore_on_load_missing = list(self._transfer_missing_keys)
        self.post_init()

    _transfer_unexpected_keys = (r"^decoder_(2d|3d)\.", r"^head_(2d|3d)\.", r"^encoder_norm\.",
                                 r"^temporal_mask_token$", r"^decoder_position_embedding$",
                                 r"^mpm\.joint_embedding_3d\.", r"^mpm\.spatial_mask_token_3d$")
    _transfer_missing_keys = (r"^reduce\.", r"^center_head\.", r"^frames_head\.", r"^refiner\.")

    def forward(self, pose_2d: torch.Tensor, spatial_mask: Optional[torch.Tensor] = None,
                labels: Optional[torch.Tensor] = None, camera_intrinsics: Optional[torch.Tensor] = None,
                root_depth: Optional[torch.Tensor] = None, output_attentions: Optional[bool] = None,
                output_hidden_states: Optional[bool] = None, return_dict: Optional[bool] = None, **kwargs):
        """Lift a window of 2D poses.

        Args:
            pose_2d: ``(batch, frames, joints, 2)`` normalised screen coordinates.
            spatial_mask: ``(batch, frames, joints)`` bool, True = missing joint (fed as the mask token).
            labels: ``(batch, frames, joints, 3)`` (all frames + centre loss) or ``(batch, 1, joints, 3)`` (centre
                loss only), metres, root-relative.
            camera_intrinsics / root_depth: ``(batch, 4+)`` normalised ``[fx, fy, cx, cy]`` and ``(batch,)`` metres,
                for the refiner only.
            output_attentions / output_hidden_states / return_dict: as in :meth:`MPMModel.forward`.
        """
        output_attentions, output_hidden_states, return_dict = self._output_flags(
            output_attentions, output_hidden_states, return_dict, kwargs)
        cfg = self.config
        root = cfg.get_skeleton().root
        enc = self.mpm(pose_2d=pose_2d, spatial_mask=spatial_mask, output_attentions=output_attentions,
                       output_hidden_states=output_hidden_states, return_dict=True)
        hidden = enc.last_hidden_state
        all_frames = self.frames_head(hidden)
        center = self.center_head(self.reduce(hidden))
        if self.refiner is not None and camera_intrinsics is not None and root_depth is not None:
            p2d, c = (pose_2d if isinstance(pose_2d, torch.Tensor) else torch.as_tensor(pose_2d)), cfg.center_frame
            center = self.refiner(center, p2d[:, c : c + 1], torch.as_tensor(camera_intrinsics, dtype=center.dtype),
                                  torch.as_tensor(root_depth, dtype=center.dtype))
        raw_all, raw_center = all_frames, center  # the loss sees the root as predicted (authors)
        if cfg.zero_root_output:
            all_frames, center = zero_root(all_frames, root), zero_root(center, root)
        loss = None
        if labels is not None:
            labels = labels if isinstance(labels, torch.Tensor) else torch.as_tensor(np.asarray(labels))
            b, j = all_frames.shape[0], cfg.num_joints
            if labels.dim() != 4 or labels.shape[0] != b or labels.shape[2:] != (j, 3) \
                    or labels.shape[1] not in (1, cfg.num_frames):
                raise ValueError(f"labels must have shape ({b}, {cfg.num_frames}, {j}, 3) or ({b}, 1, {j}, 3), "
                                 f"got {tuple(labels.shape)}")
            labels = zero_root(labels.to(all_frames.dtype), root)
            if labels.shape[1] == 1:
                loss = cfg.lift_center_loss_weight * mpjpe_loss(raw_center, labels)
            else:
                c = cfg.center_frame
                loss = cfg.lift_all_frames_loss_weight * mpjpe_loss(raw_all, labels) \
                    + cfg.lift_center_loss_weight * mpjpe_loss(raw_center, labels[:, c : c + 1])
        out = MPMPoseLiftingOutput(loss=loss, pose_3d=all_frames, pose_3d_center=center,
                                   hidden_states=enc.hidden_states, attentions=enc.attentions)
        return out if return_dict else out.to_tuple()
