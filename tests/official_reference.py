"""An independent, functional re-statement of the authors' forward passes (docs/authors_code.md sections 4.2, 6.1-6.2),
written over their raw state-dict keys. The tests check it against the authors' own outputs
(the fixture in ../shared) and then use it to test the converter on state dicts they build.

Eval mode only (no dropout, BatchNorm with running statistics).
"""

import math

import torch
import torch.nn.functional as F


def _ln(sd, prefix, x, eps=1e-6):
    mean = x.mean(-1, keepdim=True)
    std = x.std(-1, keepdim=True)
    return sd[prefix + ".a_2"] * (x - mean) / (std + eps) + sd[prefix + ".b_2"]


def _bn(sd, prefix, x):
    return F.batch_norm(x, sd[prefix + ".running_mean"], sd[prefix + ".running_var"], sd[prefix + ".weight"],
                        sd[prefix + ".bias"], False, 0.0, 1e-5)


def _conv(sd, prefix, x, stride=1, padding=0):
    return F.conv1d(x, sd[prefix + ".weight"], sd[prefix + ".bias"], stride=stride, padding=padding)


def _lin(sd, prefix, x):
    return F.linear(x, sd[prefix + ".weight"], sd[prefix + ".bias"])


def _mha(sd, prefix, x, heads):
    b, t, c = x.shape
    d = c // heads
    q, k, v = (_lin(sd, f"{prefix}.linears.{i}", x).view(b, t, heads, d).transpose(1, 2) for i in range(3))
    p = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d), dim=-1)
    return _lin(sd, f"{prefix}.linears.3", (p @ v).transpose(1, 2).reshape(b, t, c))


def _layer(sd, prefix, x, heads):
    x = x + _mha(sd, prefix + ".self_attn", _ln(sd, prefix + ".sublayer.0.norm", x), heads)
    y = _ln(sd, prefix + ".sublayer.1.norm", x)
    y = _lin(sd, prefix + ".feed_forward.w_2", F.relu(_lin(sd, prefix + ".feed_forward.w_1", y)))
    return x + y


def _n_layers(sd, prefix):
    return len({k[len(prefix):].split(".")[0] for k in sd if k.startswith(prefix)})


def _embed(sd, x, dim):
    b, t, j, _ = x.shape
    x = x.reshape(b, t, j * dim).permute(0, 2, 1)
    x = F.leaky_relu(_bn(sd, f"encoder{dim}d.bn_1", _conv(sd, f"encoder{dim}d.fc_1", x)), 0.2)
    for i in range(_n_layers(sd, "shared_layers_spatial.layers.")):
        p = f"shared_layers_spatial.layers.{i}"
        y = F.leaky_relu(_bn(sd, p + ".batch_norm1", _conv(sd, p + ".w1", x)), 0.2)
        y = F.leaky_relu(_bn(sd, p + ".batch_norm2", _conv(sd, p + ".w2", y)), 0.2)
        x = x + y
    return _conv(sd, "shared_layers_spatial.fc_2", x).permute(0, 2, 1)


def pretrain_forward(sd, x, spatial_mask, temporal_mask, heads=8):
    """``MPMmask2`` in eval mode; masks shared by the batch: spatial (F, J), temporal (F,)."""
    sd = {k.replace("module.", "", 1): v for k, v in sd.items()}
    dim = x.shape[-1]
    b, t, j, _ = x.shape
    x = x.clone()
    x[:, spatial_mask] = sd[f"spatial_mask_token{dim}d"].reshape(dim)
    x = _embed(sd, x, dim) + sd["shared_layers_temporal.pos_embedding"]
    vis = (~temporal_mask).nonzero().flatten()
    msk = temporal_mask.nonzero().flatten()
    h = x[:, vis]
    for i in range(_n_layers(sd, "shared_layers_temporal.model.layers.")):
        h = _layer(sd, f"shared_layers_temporal.model.layers.{i}", h, heads)
    h = _ln(sd, "encoder_LN", h)
    pos = sd["dec_pos_embedding"].expand(b, -1, -1)
    full = torch.cat([h + pos[:, vis], sd["temporal_mask_token"] + pos[:, msk]], dim=1)
    ordered = torch.empty_like(full)
    ordered[:, torch.cat([vis, msk])] = full
    dec = f"decoder{dim}d.model.layers."
    for i in range(_n_layers(sd, dec)):
        ordered = _layer(sd, dec + str(i), ordered, heads)
    y = _conv(sd, f"fcn_dec{dim}d.1", _bn(sd, f"fcn_dec{dim}d.0", ordered.permute(0, 2, 1)))
    return y.permute(0, 2, 1).reshape(b, t, j, dim)


def lifter_forward(sd, x, strides, heads=8):
    """The fine-tuned ``Model`` in eval mode: returns (centre (B,1,J,3), all frames (B,F,J,3))."""
    sd = {k.replace("module.", "", 1): v for k, v in sd.items()}
    b, t, j, _ = x.shape
    h = _embed(sd, x, 2) + sd["shared_layers_temporal.pos_embedding"]
    for i in range(_n_layers(sd, "shared_layers_temporal.model.layers.")):
        h = _layer(sd, f"shared_layers_temporal.model.layers.{i}", h, heads)
    vte = _conv(sd, "fcn_1.1", _bn(sd, "fcn_1.0", h.permute(0, 2, 1)))
    all_frames = vte.permute(0, 2, 1).reshape(b, t, j, 3)
    r = h
    for i, s in enumerate(strides):
        p = f"Transformer_reduce.model.layers.{i}"
        if i < 3:
            r = r + sd[f"Transformer_reduce.model.pos_embedding_{i + 1}"][:, : r.shape[1]]
        r = r + _mha(sd, p + ".self_attn", _ln(sd, p + ".sublayer.0.norm", r), heads)
        y = _ln(sd, p + ".sublayer.1.norm", r).permute(0, 2, 1)
        y = _conv(sd, p + ".feed_forward.w_2", F.relu(_conv(sd, p + ".feed_forward.w_1", y)), stride=s, padding=1)
        r = F.max_pool1d(r.permute(0, 2, 1), 1, s).permute(0, 2, 1) + y.permute(0, 2, 1)
    c = _conv(sd, "fcn.1", _bn(sd, "fcn.0", r.permute(0, 2, 1)))
    return c.permute(0, 2, 1).reshape(b, 1, j, 3), all_frames


def random_official_state_dicts(num_joints, num_frames, layers, channel, d_hid, strides, decoder_layers=1, seed=0):
    """Random pre-training and lifter state dicts in the authors' key layout (with ``module.``)."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape, scale=0.2):
        return torch.randn(*shape, generator=g) * scale

    def bn(p, n, sd):
        sd[p + ".weight"] = 1 + r(n, scale=0.1)
        sd[p + ".bias"] = r(n, scale=0.1)
        sd[p + ".running_mean"] = r(n, scale=0.1)
        sd[p + ".running_var"] = 1 + r(n, scale=0.1).abs()
        sd[p + ".num_batches_tracked"] = torch.tensor(7)

    def ln(p, n, sd):
        sd[p + ".a_2"] = 1 + r(n, scale=0.1)
        sd[p + ".b_2"] = r(n, scale=0.1)

    def tlayer(p, sd, conv_ffn=False):
        for i in range(4):
            sd[f"{p}.self_attn.linears.{i}.weight"] = r(channel, channel, scale=1 / math.sqrt(channel))
            sd[f"{p}.self_attn.linears.{i}.bias"] = r(channel, scale=0.05)
        if conv_ffn:
            sd[p + ".feed_forward.w_1.weight"] = r(d_hid, channel, 1, scale=1 / math.sqrt(channel))
            sd[p + ".feed_forward.w_2.weight"] = r(channel, d_hid, 3, scale=1 / math.sqrt(3 * d_hid))
        else:
            sd[p + ".feed_forward.w_1.weight"] = r(d_hid, channel, scale=1 / math.sqrt(channel))
            sd[p + ".feed_forward.w_2.weight"] = r(channel, d_hid, scale=1 / math.sqrt(d_hid))
        sd[p + ".feed_forward.w_1.bias"] = r(d_hid, scale=0.05)
        sd[p + ".feed_forward.w_2.bias"] = r(channel, scale=0.05)
        ln(p + ".sublayer.0.norm", channel, sd)
        ln(p + ".sublayer.1.norm", channel, sd)

    def encoder(sd, dims):
        e = 2 * channel
        for d in dims:
            sd[f"encoder{d}d.fc_1.weight"] = r(e, d * num_joints, 1, scale=0.5)
            sd[f"encoder{d}d.fc_1.bias"] = r(e, scale=0.1)
            bn(f"encoder{d}d.bn_1", e, sd)
        for w, b_ in (("w1", "batch_norm1"), ("w2", "batch_norm2")):
            sd[f"shared_layers_spatial.layers.0.{w}.weight"] = r(e, e, 1, scale=1 / math.sqrt(e))
            sd[f"shared_layers_spatial.layers.0.{w}.bias"] = r(e, scale=0.05)
            bn(f"shared_layers_spatial.layers.0.{b_}", e, sd)
        sd["shared_layers_spatial.fc_2.weight"] = r(channel, e, 1, scale=1 / math.sqrt(e))
        sd["shared_layers_spatial.fc_2.bias"] = r(channel, scale=0.05)
        sd["shared_layers_temporal.pos_embedding"] = r(1, num_frames, channel, scale=1.0)
        for i in range(layers):
            tlayer(f"shared_layers_temporal.model.layers.{i}", sd)
        ln("shared_layers_temporal.model.norm", channel, sd)

    pre = {}
    encoder(pre, (2, 3))
    pre["dec_pos_embedding"] = r(1, num_frames, channel, scale=1.0)
    pre["temporal_mask_token"] = r(1, 1, channel, scale=1.0)
    pre["spatial_mask_token2d"] = r(1, 1, 2, scale=1.0)
    pre["spatial_mask_token3d"] = r(1, 1, 3, scale=1.0)
    ln("encoder_LN", channel, pre)
    for d in (2, 3):
        for i in range(decoder_layers):
            tlayer(f"decoder{d}d.model.layers.{i}", pre)
        ln(f"decoder{d}d.model.norm", channel, pre)
        bn(f"fcn_dec{d}d.0", channel, pre)
        pre[f"fcn_dec{d}d.1.weight"] = r(d * num_joints, channel, 1, scale=1 / math.sqrt(channel))
        pre[f"fcn_dec{d}d.1.bias"] = r(d * num_joints, scale=0.05)

    lift = {}
    encoder(lift, (2,))
    for i in range(3):
        lift[f"Transformer_reduce.model.pos_embedding_{i + 1}"] = r(1, num_frames, channel, scale=1.0)
    for i in range(len(strides)):
        tlayer(f"Transformer_reduce.model.layers.{i}", lift, conv_ffn=True)
    ln("Transformer_reduce.model.norm", channel, lift)
    for head in ("fcn", "fcn_1"):
        bn(f"{head}.0", channel, lift)
        lift[f"{head}.1.weight"] = r(3 * num_joints, channel, 1, scale=1 / math.sqrt(channel))
        lift[f"{head}.1.bias"] = r(3 * num_joints, scale=0.05)

    def prefixed(sd):
        return {"module." + k: v for k, v in sd.items()}

    return prefixed(pre), prefixed(lift)
