"""The authors' training recipe: which heads run in a pass, losses, masks, schedules."""

import pytest
import torch

from modeling_mpm import MPMForMaskedPoseModeling


def _poses(cfg, batch=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    p2 = torch.randn(batch, cfg.num_frames, cfg.num_joints, 2, generator=g) * 0.3
    p3 = torch.randn(batch, cfg.num_frames, cfg.num_joints, 3, generator=g) * 0.3
    p3[:, :, 0] = 0
    return p2, p3


def _bn_counts(head):
    return int(head.norm.num_batches_tracked), head.norm.running_mean.clone()


# ---------------------------------------------------------------------------- head gating
def test_2d_only_training_pass_leaves_3d_head_statistics_alone(tiny_config):
    model = MPMForMaskedPoseModeling(tiny_config).train()
    p2, p3 = _poses(tiny_config)
    before_mean = model.head_3d.norm.running_mean.clone()
    out = model(pose_2d=p2)
    assert int(model.head_3d.norm.num_batches_tracked) == 0
    torch.testing.assert_close(model.head_3d.norm.running_mean, before_mean, rtol=0, atol=0)
    assert out.pose_3d_from_2d is None and out.loss_lift is None
    assert int(model.head_2d.norm.num_batches_tracked) == 1
    # the 3D decoder gets no gradient from a 2D-only loss
    out.loss.backward()
    assert all(p.grad is None for p in model.decoder_3d.parameters())
    assert all(p.grad is None for p in model.head_3d.parameters())


def test_2d_pass_with_lift_labels_updates_3d_head(tiny_config):
    model = MPMForMaskedPoseModeling(tiny_config).train()
    p2, p3 = _poses(tiny_config)
    out = model(pose_2d=p2, lift_labels=p3)
    assert int(model.head_3d.norm.num_batches_tracked) == 1
    assert out.pose_3d_from_2d is not None and out.loss_lift is not None
    torch.testing.assert_close(out.loss, 5.0 * out.loss_2d + 2.0 * out.loss_lift)


def test_lifted_output_on_request_and_in_eval(tiny_config):
    model = MPMForMaskedPoseModeling(tiny_config).train()
    p2, _ = _poses(tiny_config)
    assert model(pose_2d=p2, output_lifted=True).pose_3d_from_2d.shape == (4, 27, 17, 3)
    assert int(model.head_3d.norm.num_batches_tracked) == 1
    model.eval()
    with torch.no_grad():
        assert model(pose_2d=p2).pose_3d_from_2d is not None  # eval: no statistics change
        assert model(pose_2d=p2, output_lifted=False).pose_3d_from_2d is None
    with pytest.raises(ValueError, match="output_lifted=False"):
        model(pose_2d=p2, lift_labels=p2.new_zeros(4, 27, 17, 3), output_lifted=False)


def test_3d_pass_never_touches_2d_head(tiny_config):
    model = MPMForMaskedPoseModeling(tiny_config).train()
    _, p3 = _poses(tiny_config)
    model(pose_3d=p3)
    assert int(model.head_2d.norm.num_batches_tracked) == 0
    assert int(model.head_3d.norm.num_batches_tracked) == 1
