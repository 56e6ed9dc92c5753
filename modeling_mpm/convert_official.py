"""Convert checkpoints of the authors' MPM code into this package's models (``mpm convert CKPT OUT_DIR [--heads 8]
[--strides 3 3 3] [--refine REFINE_CKPT]``).

The authors save plain ``state_dict``s (often with ``module.`` prefixes): the pre-training model ``MPMmask2`` /
``MPMmask`` (``encoder2d``, ``decoder2d``, ``fcn_dec2d``...), the fine-tuned lifter ``Model``
(``Transformer_reduce``, ``fcn``, ``fcn_1``...) and the post-refine stage's separate refine module
(``*_refine.pth``, ``post_refine.0/3.*``). The configuration is read off the tensor shapes; the attention heads
(8 in all their set-ups) and reduce strides are not visible there and can be passed in. The converted model keeps
the authors' numerics (``legacy_layer_norm=True``, ``zero_root_output=False``).
"""

from __future__ import annotations

import os
import re
from typing import Dict, Optional, Sequence, Union

import torch

from .configuration_mpm import MPMConfig, default_reduce_strides
from .modeling_mpm import MPMForMaskedPoseModeling, MPMForPoseLifting

__all__ = ["convert_official_checkpoint", "convert_official_state_dict", "load_official_state_dict",
           "rename_official_key"]

# Parameters of the authors' models that their forward never uses.
_UNUSED = re.compile(r"^(shared_layers_temporal|decoder[23]d|Transformer_reduce)\.model\.norm\.")

_LAYER_RENAMES = [
    (r"self_attn\.linears\.0\.", "attention.q_proj."), (r"self_attn\.linears\.1\.", "attention.k_proj."),
    (r"self_attn\.linears\.2\.", "attention.v_proj."), (r"self_attn\.linears\.3\.", "attention.out_proj."),
    (r"sublayer\.0\.norm\.a_2", "attn_norm.weight"), (r"sublayer\.0\.norm\.b_2", "attn_norm.bias"),
    (r"sublayer\.1\.norm\.a_2", "ffn_norm.weight"), (r"sublayer\.1\.norm\.b_2", "ffn_norm.bias"),
]


def load_official_state_dict(path: Union[str, os.PathLike]) -> Dict[str, torch.Tensor]:
    """An authors' checkpoint file (a state dict, or a dict holding one under ``state_dict``/``model``/``model_pos``)
    as a flat state dict without the ``module.`` prefix."""
    if not os.path.isfile(path):
        raise ValueError(f"checkpoint file not found: {path}")
    from .data.io import read_torch_plain

    obj = read_torch_plain(path)  # plain data only: nothing in the file runs
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_pos"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path} does not hold a state dict of tensors")
    return _strip(obj)


def _layer(k: str) -> str:
    """An authors' transformer-layer key tail -> this package's."""
    for pat, rep in _LAYER_RENAMES:
        k = re.sub(pat, rep, k)
    return k.replace("feed_forward.w_1.", "feed_forward.fc1.").replace("feed_forward.w_2.", "feed_forward.fc2.")


#: (pattern, new key from its match) for the keys that are not renamed one to one
_PATTERN_RENAMES = (
    (r"encoder([23])d\.(fc_1|bn_1)\.(.+)$",
     lambda m: f"mpm.joint_embedding_{m[1]}d.{'proj' if m[2] == 'fc_1' else 'norm'}.{m[3]}"),
    (r"shared_layers_spatial\.layers\.(\d+)\.(w1|w2|batch_norm1|batch_norm2)\.(.+)$",
     lambda m: f"mpm.spatial_mlp.blocks.{m[1]}."
               f"{dict(w1='linear1', w2='linear2', batch_norm1='norm1', batch_norm2='norm2')[m[2]]}.{m[3]}"),
    (r"shared_layers_spatial\.fc_2\.(.+)$", lambda m: f"mpm.spatial_mlp.out_proj.{m[1]}"),
    (r"shared_layers_temporal\.model\.layers\.(.+)$", lambda m: "mpm.layers." + _layer(m[1])),
    (r"decoder([23])d\.model\.layers\.(.+)$", lambda m: f"decoder_{m[1]}d." + _layer(m[2])),
    (r"fcn_dec([23])d\.([01])\.(.+)$", lambda m: f"head_{m[1]}d.{('norm', 'proj')[int(m[2])]}.{m[3]}"),
    (r"Transformer_reduce\.model\.pos_embedding_(\d)$", lambda m: f"reduce.position_embeddings.{int(m[1]) - 1}.weight"),
    (r"Transformer_reduce\.model\.layers\.(.+)$", lambda m: "reduce.layers."
     + _layer(m[1]).replace("feed_forward.fc1.", "ffn_in.").replace("feed_forward.fc2.", "ffn_out.")),
    (r"fcn(_1)?\.([01])\.(.+)$",
     lambda m: f"{'frames_head' if m[1] else 'center_head'}.{('norm', 'proj')[int(m[2])]}.{m[3]}"),
)


def _rename(key: str) -> Optional[str]:
    """Authors' key -> this package's key (``None`` for unused parameters)."""
    if _UNUSED.match(key):
        return None
    simple = {"spatial_mask_token2d": "mpm.spatial_mask_token_2d", "spatial_mask_token3d": "mpm.spatial_mask_token_3d",
              "temporal_mask_token": "temporal_mask_token", "dec_pos_embedding": "decoder_position_embedding",
              "shared_layers_temporal.pos_embedding": "mpm.position_embedding",
              "encoder_LN.a_2": "encoder_norm.weight", "encoder_LN.b_2": "encoder_norm.bias"}
    if key in simple:
        return simple[key]
    for pattern, new_key in _PATTERN_RENAMES:
        m = re.match(pattern, key)
        if m:
            return new_key(m)
    raise ValueError(f"unrecognised key in official checkpoint: {key!r}")


def rename_official_key(key: str) -> Optional[str]:
    """The package name of an authors' state-dict key (``module.`` prefix allowed); ``None`` for unused ones."""
    return _rename(key[len("module."):] if key.startswith("module.") else key)


def _count_layers(sd, prefix: str) -> int:
    idx = {int(m.group(1)) for k in sd for m in [re.match(re.escape(prefix) + r"(\d+)\.", k)] if m}
    return max(idx) + 1 if idx else 0


def _config_from_state_dict(sd, num_attention_heads: int, reduce_strides: Optional[Sequence[int]]) -> MPMConfig:
    if "encoder2d.fc_1.weight" not in sd:
        raise ValueError("not an MPM checkpoint: no 'encoder2d.fc_1.weight' key")
    w = sd["encoder2d.fc_1.weight"]
    num_joints = w.shape[1] // 2
    embedding_size = w.shape[0]
    hidden_size = sd["shared_layers_spatial.fc_2.weight"].shape[0]
    num_frames = sd["shared_layers_temporal.pos_embedding"].shape[1]
    num_layers = _count_layers(sd, "shared_layers_temporal.model.layers.")
    intermediate_size = sd["shared_layers_temporal.model.layers.0.feed_forward.w_1.weight"].shape[0]
    decoder_layers = max(_count_layers(sd, "decoder2d.model.layers."), 1)
    n_reduce = _count_layers(sd, "Transformer_reduce.model.layers.")
    if n_reduce:
        strides = list(reduce_strides) if reduce_strides else default_reduce_strides(num_frames)
        if len(strides) != n_reduce:
            raise ValueError(f"checkpoint has {n_reduce} strided-reduce layers but the strides {strides} have "
                             f"{len(strides)}; pass reduce_strides= explicitly")
    else:
        strides = list(reduce_strides) if reduce_strides else None
    skeleton = {17: "h36m17", 16: "h36m16"}.get(num_joints)
    if skeleton is None:
        raise ValueError(f"no known skeleton with {num_joints} joints (expected 16 or 17)")
    return MPMConfig(
        num_joints=num_joints, num_frames=num_frames, hidden_size=hidden_size, embedding_size=embedding_size,
        intermediate_size=intermediate_size, num_layers=num_layers, num_attention_heads=num_attention_heads,
        decoder_layers=decoder_layers, reduce_strides=strides, skeleton=skeleton, legacy_layer_norm=True,
        zero_root_output=False, mask_mode="tube" if decoder_layers >= 2 else "random",
        temporal_mask_ratio=0.0 if decoder_layers >= 2 else 0.6,
    )


def _strip(sd):
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}


def _is_refine(sd) -> bool:
    return bool(sd) and all(k.startswith("post_refine.") for k in sd)


def convert_official_state_dict(state_dict: Dict[str, torch.Tensor], num_attention_heads: int = 8,
                                reduce_strides: Optional[Sequence[int]] = None,
                                refine_state_dict: Optional[Dict[str, torch.Tensor]] = None,
                                ) -> Union[MPMForMaskedPoseModeling, MPMForPoseLifting]:
    """The matching model, in eval mode, strictly loaded from an authors' state dict (``module.`` prefixes allowed).

    ``refine_state_dict``: the same lifter's refine module (saved to its own file by their post-refine stage): the
    lifter gets ``use_refine`` and its weights; ``post_refine.*`` keys in the lifter state dict are split off too."""
    sd = _strip(state_dict)
    if _is_refine(sd):
        raise ValueError("this is an authors' refine module (post_refine.* keys) without its lifter: pass the "
                         "lifter checkpoint and this one as refine_state_dict (CLI: --refine)")
    refine = {k: v for k, v in sd.items() if k.startswith("post_refine.")}
    sd = {k: v for k, v in sd.items() if not k.startswith("post_refine.")}
    if refine_state_dict is not None:
        refine.update(_strip(refine_state_dict))
    config = _config_from_state_dict(sd, num_attention_heads, reduce_strides)
    is_lifter = any(k.startswith("Transformer_reduce.") for k in sd)
    if refine:
        if not is_lifter:
            raise ValueError("a refine module belongs to a fine-tuned lifter, not to a pre-training checkpoint")
        expected = {"post_refine.0.weight", "post_refine.0.bias", "post_refine.3.weight", "post_refine.3.bias"}
        if set(refine) != expected:
            raise ValueError(f"refine state dict must hold {sorted(expected)}, got {sorted(refine)}")
        hidden, fan_in = refine["post_refine.0.weight"].shape
        out_shape = tuple(refine["post_refine.3.weight"].shape)
        if fan_in != 6 * config.num_joints or out_shape != (2 * config.num_joints, hidden):
            raise ValueError(f"refine module shapes {(hidden, fan_in)}, {out_shape} do not fit a "
                             f"{config.num_joints}-joint lifter")
        config.use_refine = True
        config.refine_hidden_size = int(hidden)
    model = MPMForPoseLifting(config) if is_lifter else MPMForMaskedPoseModeling(config)
    own = model.state_dict()
    new: Dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        name = _rename(key)
        if name is None:
            continue
        if name not in own and name.startswith("reduce.position_embeddings."):
            continue  # the authors always create 3; with fewer reduce layers the extra ones are unused
        if name not in own:
            raise ValueError(f"official key {key!r} maps to {name!r}, which the {type(model).__name__} lacks")
        new[name] = value.reshape(own[name].shape) if value.numel() == own[name].numel() else value
        if new[name].shape != own[name].shape:
            raise ValueError(f"shape mismatch for {key!r}: {tuple(value.shape)} vs {tuple(own[name].shape)}")
    for key, value in refine.items():
        new["refiner.mlp." + key[len("post_refine."):]] = value
    missing = [k for k in own if k not in new]
    # The lifter's 2D mask token does not exist in the authors' lifter: keep its initial value.
    allowed_missing = {"mpm.spatial_mask_token_2d"} if is_lifter else set()
    if set(missing) - allowed_missing:
        raise ValueError(f"official checkpoint lacks parameters: {sorted(set(missing) - allowed_missing)}")
    model.load_state_dict(new, strict=False)
    if is_lifter:  # the authors' lifter has no mask token: ours keeps its random init (warned when used)
        model.config.mask_token_2d_trained = False
    return model.eval()


def convert_official_checkpoint(path: Union[str, os.PathLike], num_attention_heads: int = 8,
                                reduce_strides: Optional[Sequence[int]] = None,
                                refine_path: Optional[Union[str, os.PathLike]] = None):
    """The matching model, in eval mode, of an authors' checkpoint file (pre-training or lifter, plus optionally the
    lifter's refine module)."""
    refine = load_official_state_dict(refine_path) if refine_path is not None else None
    return convert_official_state_dict(load_official_state_dict(path), num_attention_heads, reduce_strides, refine)
