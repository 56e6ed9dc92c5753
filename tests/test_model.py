"""Core model behaviour: shapes, masks, losses, gradients, save/load, configs, parameter counts."""

import math

import numpy as np
import pytest
import torch

from modeling_mpm import (
    MPMConfig,
    MPMForMaskedPoseModeling,
    MPMForPoseLifting,
    MPMModel,
)
from modeling_mpm.masking import mirror_mask, sample_tube_mask
from remote_code import BLOCK_PACKAGE  # noqa: E402


def _poses(cfg, batch=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    p2 = torch.randn(batch, cfg.num_frames, cfg.num_joints, 2, generator=g) * 0.3
    p3 = torch.randn(batch, cfg.num_frames, cfg.num_joints, 3, generator=g) * 0.3
    p3[:, :, 0] = 0
    return p2, p3


# ---------------------------------------------------------------------------- shapes
def test_shapes_of_every_head(tiny_config):
    cfg = tiny_config
    p2, p3 = _poses(cfg)
    enc = MPMModel(cfg).eval()
    assert enc(pose_2d=p2).last_hidden_state.shape == (3, 27, 32)
    assert enc(pose_3d=p3).last_hidden_state.shape == (3, 27, 32)
    t = torch.zeros(27, dtype=torch.bool)
    t[:16] = True
    out = enc(pose_2d=p2, temporal_mask=t)
    assert out.last_hidden_state.shape == (3, 11, 32)
    assert out.visible_frame_indices.tolist()[0] == list(range(16, 27))

    mpm = MPMForMaskedPoseModeling(cfg).eval()
    o = mpm(pose_2d=p2, pose_3d=p3)
    assert o.pose_2d.shape == (3, 27, 17, 2)
    assert o.pose_3d.shape == (3, 27, 17, 3)
    assert o.pose_3d_from_2d.shape == (3, 27, 17, 3)
    assert o.loss.shape == ()
    o3 = mpm(pose_3d=p3)
    assert o3.pose_2d is None and o3.pose_3d.shape == (3, 27, 17, 3)

    lifter = MPMForPoseLifting(cfg).eval()
    lo = lifter(pose_2d=p2)
    assert lo.pose_3d.shape == (3, 27, 17, 3)
    assert lo.pose_3d_center.shape == (3, 1, 17, 3)
    assert lo.loss is None


def test_root_is_zero_in_3d_outputs(tiny_config):
    p2, p3 = _poses(tiny_config)
    lo = MPMForPoseLifting(tiny_config).eval()(pose_2d=p2)
    assert torch.all(lo.pose_3d[:, :, 0] == 0) and torch.all(lo.pose_3d_center[:, :, 0] == 0)
    assert lo.pose_3d[:, :, 1:].abs().sum() > 0


def test_16_joint_and_single_frame_models():
    cfg = MPMConfig.h36m_16(num_frames=9, hidden_size=32, intermediate_size=64, num_attention_heads=4)
    assert cfg.reduce_strides == [3, 3]
    p2 = torch.randn(2, 9, 16, 2)
    assert MPMForPoseLifting(cfg).eval()(pose_2d=p2).pose_3d_center.shape == (2, 1, 16, 3)
    one = MPMConfig(num_frames=1, num_layers=1, hidden_size=32, intermediate_size=64, num_attention_heads=4)
    out = MPMForPoseLifting(one).eval()(pose_2d=torch.randn(4, 1, 17, 2))
    assert out.pose_3d_center.shape == (4, 1, 17, 3)


# ---------------------------------------------------------------------------- masks respected
def test_masked_joints_and_frames_cannot_leak(tiny_config):
    """Changing the coordinates of masked joints or dropped frames must not change any output."""
    cfg = tiny_config
    model = MPMForMaskedPoseModeling(cfg).eval()
    p2, p3 = _poses(cfg)
    g = torch.Generator().manual_seed(3)
    s = torch.rand(3, 27, 17, generator=g) < 0.3
    t = torch.rand(3, 27, generator=g) < 0.5
    t[:, 13] = False
    with torch.no_grad():
        ref = model(pose_2d=p2, pose_3d=p3, spatial_mask=s, temporal_mask=t)
        hidden = s | t[..., None]
        p2b = torch.where(hidden[..., None], torch.randn_like(p2) * 5, p2)
        p3b = torch.where(hidden[..., None], torch.randn_like(p3) * 5, p3)
        p2b[hidden] = float("nan")  # missing values are fine where masked
        got = model(pose_2d=p2b, pose_3d=p3b, spatial_mask=s, temporal_mask=t)
        unmasked = model(pose_2d=p2b.nan_to_num(), pose_3d=p3b)
    for name in ("pose_2d", "pose_3d", "pose_3d_from_2d"):
        torch.testing.assert_close(getattr(got, name), getattr(ref, name), rtol=0, atol=1e-6)
    # sanity: without the masks, the same change does change the output
    assert (unmasked.pose_3d - ref.pose_3d).abs().max() > 1e-3


def test_lifter_missing_joints_use_mask_token(tiny_config):
    lifter = MPMForPoseLifting(tiny_config).eval()
    p2, _ = _poses(tiny_config)
    s = torch.zeros(3, 27, 17, dtype=torch.bool)
    s[:, :, [13, 16]] = True
    with torch.no_grad():
        a = lifter(pose_2d=p2, spatial_mask=s).pose_3d_center
        p2n = p2.clone()
        p2n[s] = float("nan")
        b = lifter(pose_2d=p2n, spatial_mask=s).pose_3d_center
    assert torch.isfinite(b).all()
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    with pytest.raises(ValueError, match="NaN/inf at joints that are not masked"):
        lifter(pose_2d=p2n)


@pytest.mark.parametrize("mode, reaches_batchnorm", [("coordinates", True), ("mask_token", False)])
def test_dropped_frames_input_to_batchnorm_statistics(tiny_config, mode, reaches_batchnorm):
    """Authors' default: dropped frames pass the embedding with their coordinates, so training-time
    BatchNorm statistics see the real pose distribution; NaN there still gets the mask token."""
    tiny_config.dropped_frames_input = mode
    p2, _ = _poses(tiny_config)
    t = torch.zeros(3, 27, dtype=torch.bool)
    t[:, ::2] = True
    changed = p2.clone()
    changed[t] = changed[t] * 3 + 1

    def running_mean(pose):
        torch.manual_seed(0)
        model = MPMForMaskedPoseModeling(tiny_config).train()
        model(pose_2d=pose, temporal_mask=t)
        return model.mpm.joint_embedding_2d.norm.running_mean.clone()

    assert (not torch.equal(running_mean(p2), running_mean(changed))) == reaches_batchnorm
    with_nan = p2.clone()
    with_nan[t] = float("nan")
    assert torch.isfinite(running_mean(with_nan)).all()


def test_variable_visible_frames_match_per_sample_runs(tiny_config):
    """Samples with different numbers of dropped frames (padding path) give the same result as
    running each sample alone."""
    model = MPMForMaskedPoseModeling(tiny_config).eval()
    p2, _ = _poses(tiny_config)
    t = torch.zeros(3, 27, dtype=torch.bool)
    t[0, :10] = True
    t[1, 5:25] = True
    with torch.no_grad():
        batched = model(pose_2d=p2, temporal_mask=t).pose_2d
        for i in range(3):
            alone = model(pose_2d=p2[i : i + 1], temporal_mask=t[i : i + 1]).pose_2d
            torch.testing.assert_close(batched[i : i + 1], alone, rtol=1e-5, atol=1e-5)


def test_training_samples_per_sample_masks_with_paper_counts():
    cfg = MPMConfig.h36m_17(num_layers=1, hidden_size=32, intermediate_size=64, num_attention_heads=4)
    model = MPMForMaskedPoseModeling(cfg).train()
    p2, p3 = _poses(cfg, batch=4)
    o = model(pose_2d=p2, pose_3d=p3, generator=torch.Generator().manual_seed(0))
    assert o.temporal_mask_2d.sum(1).tolist() == [145] * 4
    assert (o.spatial_mask_2d.sum(-1) == 5).all()
    assert not torch.equal(o.temporal_mask_2d[0], o.temporal_mask_2d[1])  # per sample
    assert not torch.equal(o.temporal_mask_2d, o.temporal_mask_3d)  # 2D and 3D drawn independently
    cfg.share_mask_across_batch = True
    o = model(pose_2d=p2, generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(o.temporal_mask_2d[0], o.temporal_mask_2d[i]) for i in range(4))
    model.eval()
    assert model(pose_2d=p2).temporal_mask_2d is None  # eval: no masks unless given


def test_tube_masks_for_completion(tiny_config):
    """3D completion: tube masks name the subject's own sides (docs/authors_code.md section 9.1)."""
    cfg = MPMConfig.completion_27(num_layers=1, hidden_size=32, intermediate_size=64, num_attention_heads=4)
    assert cfg.decoder_layers == 2 and cfg.mask_mode == "tube"
    g = torch.Generator().manual_seed(0)
    m = sample_tube_mask(64, 27, "h36m17", [0], "3d", generator=g)
    assert m[:, :, [1, 2, 3]].all() and m.sum() == 64 * 27 * 3  # manner 0 = right leg
    m = sample_tube_mask(8, 27, "h36m17", [3], "2d", generator=g)
    assert m[:, :, [4, 5, 6, 11, 12, 13]].all() and m.sum() == 8 * 27 * 6  # left leg + left arm
    m = sample_tube_mask(200, 27, "h36m17", [6], "3d", generator=g)
    assert (m.sum(-1) == 3).all() and torch.equal(m[:, 0], m[:, 26])  # 3 random joints, same in all frames
    assert torch.equal(mirror_mask(sample_tube_mask(1, 2, "h36m17", [0], "3d"), "h36m17")[0, 0].nonzero().flatten(),
                       torch.tensor([4, 5, 6]))
    model = MPMForMaskedPoseModeling(cfg).train()
    _, p3 = _poses(cfg)
    o = model(pose_3d=p3, generator=g)
    assert o.temporal_mask_3d is None and (o.spatial_mask_3d.sum(-1) > 0).all()


def test_occluded_2d_to_3d_loss(tiny_config):
    tiny_config.zero_root_output = False  # the loss sees the raw root output (authors); compare with it
    model = MPMForMaskedPoseModeling(tiny_config).eval()
    p2, p3 = _poses(tiny_config)
    s = sample_tube_mask(3, 27, "h36m17", [1], "2d")
    o = model(pose_2d=p2, spatial_mask=s, lift_labels=p3)
    expected = 5.0 * o.loss_2d + 2.0 * o.loss_lift
    torch.testing.assert_close(o.loss, expected)
    err = torch.linalg.norm(o.pose_3d_from_2d - p3, dim=-1).mean()
    torch.testing.assert_close(o.loss_lift, err)


def test_loss_on_masked_tokens_only(tiny_config):
    tiny_config.reconstruction_loss_on = "masked"
    model = MPMForMaskedPoseModeling(tiny_config).eval()
    _, p3 = _poses(tiny_config)
    s = torch.zeros(27, 17, dtype=torch.bool)
    s[:, 5] = True
    o = model(pose_3d=p3, spatial_mask=s)
    manual = torch.linalg.norm(o.pose_3d[:, :, 5] - p3[:, :, 5], dim=-1).mean()
    torch.testing.assert_close(o.loss_3d, manual)


def test_lifter_loss_matches_definition(tiny_config):
    tiny_config.zero_root_output = False  # the loss sees the raw root output (authors); compare with it
    lifter = MPMForPoseLifting(tiny_config).eval()
    p2, p3 = _poses(tiny_config)
    o = lifter(pose_2d=p2, labels=p3)
    all_frames = torch.linalg.norm(o.pose_3d - p3, dim=-1).mean()
    center = torch.linalg.norm(o.pose_3d_center - p3[:, 13:14], dim=-1).mean()
    torch.testing.assert_close(o.loss, all_frames + center)
    torch.testing.assert_close(lifter(pose_2d=p2, labels=p3[:, 13:14]).loss, center)


# ---------------------------------------------------------------------------- gradients
def _assert_all_grads(model):
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or p.grad.abs().sum() == 0)]
    assert not missing, f"no gradient reaches: {missing}"


def test_gradient_reaches_every_parameter_in_pretraining(tiny_config):
    model = MPMForMaskedPoseModeling(tiny_config).train()
    p2, p3 = _poses(tiny_config, batch=4)
    model(pose_2d=p2, pose_3d=p3, lift_labels=p3, generator=torch.Generator().manual_seed(1)).loss.backward()
    _assert_all_grads(model)


def test_gradient_reaches_every_parameter_in_lifting(tiny_config):
    tiny_config.use_refine = True
    model = MPMForPoseLifting(tiny_config).train()
    p2, p3 = _poses(tiny_config, batch=4)
    s = torch.zeros(4, 27, 17, dtype=torch.bool)
    s[:, :, 3] = True
    intr = torch.tensor([[2.3, 2.3, 0.02, -0.01]] * 4)
    out = model(pose_2d=p2, spatial_mask=s, labels=p3, camera_intrinsics=intr, root_depth=torch.full((4,), 5.0))
    out.loss.backward()
    _assert_all_grads(model)


# ---------------------------------------------------------------------------- save / load
@pytest.mark.parametrize("cls", [MPMModel, MPMForMaskedPoseModeling, MPMForPoseLifting])
def test_save_load_round_trip_identical(tmp_path, tiny_config, cls):
    from transformers import AutoModel

    model = cls(tiny_config).eval()
    # non-trivial BatchNorm statistics so that eval outputs depend on them
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert type(loaded) is cls
    sa, sb = model.state_dict(), loaded.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k  # weights and BatchNorm statistics bit-identical
    p2, _ = _poses(tiny_config)
    with torch.no_grad():
        a, b = model(pose_2d=p2), loaded(pose_2d=p2)
    # identical up to float rounding of different kernel paths (memory layout of loaded tensors)
    for x, y in zip(a.to_tuple(), b.to_tuple()):
        torch.testing.assert_close(x, y, rtol=0, atol=1e-6)


def test_pretraining_checkpoint_into_lifter_initialises_new_parts(tmp_path, tiny_config):
    """transformers 5 does not run __init__ init for tensors missing from a checkpoint: the reduce
    position embeddings, heads and BatchNorm statistics must come out of _init_weights."""
    pre = MPMForMaskedPoseModeling(tiny_config)
    pre.save_pretrained(tmp_path)
    lifter, info = MPMForPoseLifting.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"]  # declared as expected (quiet transfer), still initialised below
    assert not info["unexpected_keys"]
    sd_pre, sd_lift = pre.state_dict(), lifter.state_dict()
    transferred = [k for k in sd_lift if k.startswith("mpm.")]
    assert len(transferred) > 20
    for k in transferred:
        torch.testing.assert_close(sd_lift[k], sd_pre[k], rtol=0, atol=0)
    for k, v in sd_lift.items():
        assert torch.isfinite(v.float()).all(), k
    for p in lifter.reduce.position_embeddings:
        assert 0.8 < p.weight.std().item() < 1.2  # N(0, 1) as the authors' randn
    for head in (lifter.center_head, lifter.frames_head):
        assert torch.equal(head.norm.running_var, torch.ones_like(head.norm.running_var))
        assert torch.equal(head.norm.running_mean, torch.zeros_like(head.norm.running_mean))
        bound = 1 / math.sqrt(head.proj.weight.shape[1])
        assert 0 < head.proj.weight.abs().max().item() <= bound + 1e-6
    p2, p3 = _poses(tiny_config)
    out = lifter.eval()(pose_2d=p2, labels=p3)
    assert torch.isfinite(out.loss) and out.loss.item() < 10


def test_remote_code_loading_without_the_package(tmp_path, tiny_config):
    """A saved folder loads with trust_remote_code=True in a process where modeling_mpm cannot be
    imported."""
    import os
    import subprocess
    import sys
    import textwrap

    model = MPMForPoseLifting(tiny_config).eval()
    model.save_pretrained(tmp_path / "lift")
    p2, _ = _poses(tiny_config)
    np.save(tmp_path / "p2.npy", p2.numpy())
    with torch.no_grad():
        np.save(tmp_path / "ref.npy", model(pose_2d=p2).pose_3d_center.numpy())
    script = BLOCK_PACKAGE + textwrap.dedent(
        f"""
        import sys, importlib.abc
        import numpy as np, torch
        from transformers import AutoModel
        m = AutoModel.from_pretrained({str(tmp_path / 'lift')!r}, trust_remote_code=True).eval()
        assert type(m).__name__ == "MPMForPoseLifting", type(m)
        assert "modeling_mpm" not in sys.modules
        with torch.no_grad():
            out = m(pose_2d=torch.from_numpy(np.load({str(tmp_path / 'p2.npy')!r}))).pose_3d_center.numpy()
        np.testing.assert_allclose(out, np.load({str(tmp_path / 'ref.npy')!r}), atol=1e-6)
        print("REMOTE_OK")
        """
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"), PYTHONPATH="")
    r = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=300)
    assert "REMOTE_OK" in r.stdout, r.stderr[-3000:]


# ---------------------------------------------------------------------------- configs
@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(num_frames=26), ValueError, "odd"),
        (dict(num_frames=0), ValueError, "num_frames must be > 0"),
        (dict(num_joints=16), ValueError, "skeleton"),
        (dict(hidden_size=30, num_attention_heads=8), ValueError, "divisible"),
        (dict(temporal_mask_ratio=1.0), ValueError, "temporal_mask_ratio"),
        (dict(spatial_mask_joints=18), ValueError, "spatial_mask_joints"),
        (dict(mask_mode="block"), ValueError, "mask_mode"),
        (dict(dropped_frames_input="zeros"), ValueError, "dropped_frames_input"),
        (dict(reconstruction_loss_on="visible"), ValueError, "reconstruction_loss_on"),
        (dict(num_frames=27, reduce_strides=[3, 3]), ValueError, "reduce 27 frames to 3"),
        (dict(num_layers=2.5), TypeError, "num_layers must be an int"),
        (dict(dropout=1.5), ValueError, "dropout"),
        (dict(skeleton="smpl24"), ValueError, "unknown skeleton"),
        (dict(loss_weight_2d=-1), ValueError, "loss_weight_2d"),
    ],
)
def test_bad_config_values_rejected(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        MPMConfig(**kwargs)


def test_bad_inputs_rejected(tiny_config):
    lifter = MPMForPoseLifting(tiny_config).eval()
    with pytest.raises(ValueError, match=r"shape \(batch, 27, 17, 2\)"):
        lifter(pose_2d=torch.zeros(2, 27, 17, 3))
    with pytest.raises(ValueError, match="num_frames=27"):
        lifter(pose_2d=torch.zeros(2, 30, 17, 2))
    with pytest.raises(TypeError, match="floating-point"):
        lifter(pose_2d=torch.zeros(2, 27, 17, 2, dtype=torch.long))
    with pytest.raises(TypeError, match="torch.Tensor or numpy"):
        lifter(pose_2d=[[0.0]])
    with pytest.raises(ValueError, match="spatial_mask must have shape"):
        lifter(pose_2d=torch.zeros(2, 27, 17, 2), spatial_mask=torch.zeros(27, 16, dtype=torch.bool))
    with pytest.raises(ValueError, match="labels must have shape"):
        lifter(pose_2d=torch.zeros(2, 27, 17, 2), labels=torch.zeros(2, 5, 17, 3))
    mpm = MPMForMaskedPoseModeling(tiny_config).eval()
    with pytest.raises(ValueError, match="at least one frame"):
        mpm(pose_2d=torch.zeros(1, 27, 17, 2), temporal_mask=torch.ones(27, dtype=torch.bool))
    with pytest.raises(ValueError, match="pass pose_2d and/or pose_3d"):
        mpm()
    with pytest.raises(TypeError, match="bool"):
        mpm(pose_2d=torch.zeros(1, 27, 17, 2), spatial_mask=torch.zeros(27, 17))
    with pytest.raises(ValueError, match="exactly one"):
        MPMModel(tiny_config)(pose_2d=torch.zeros(1, 27, 17, 2), pose_3d=torch.zeros(1, 27, 17, 3))


# ---------------------------------------------------------------------------- parameter counts
# The authors' totals (docs/authors_code.md section 4.1) minus parameters their forward never uses: the final
# LayerNorm of the temporal encoder (C weights + C biases = 512), of each pre-training decoder
# (2 x 512) and of the strided reduce (512); plus the lifter's 2D mask token (2), which lets it
# take missing joints.
@pytest.mark.parametrize(
    "preset, authors_pretrain, authors_lift",
    [("h36m_17", 4_017_498, 7_009_382), ("h36m_16", 3_486_549, 6_479_712)],
)
def test_parameter_counts_against_the_paper_config(preset, authors_pretrain, authors_lift):
    cfg = getattr(MPMConfig, preset)()
    n_pre = sum(p.numel() for p in MPMForMaskedPoseModeling(cfg).parameters())
    n_lift = sum(p.numel() for p in MPMForPoseLifting(cfg).parameters())
    assert n_pre == authors_pretrain - 3 * 512
    assert n_lift == authors_lift - 2 * 512 + 2
    cfg.use_refine = True
    n_ref = sum(p.numel() for p in MPMForPoseLifting(cfg).parameters())
    refine = {17: 140_322, 16: 6 * 16 * 1024 + 1024 + 1024 * 32 + 32}[cfg.num_joints]
    assert n_ref - n_lift == refine
