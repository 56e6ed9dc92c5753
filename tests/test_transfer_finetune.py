"""Fine-tuning a pre-trained encoder: ``training.encoder_lr_scale`` and ``training.freeze_encoder_steps``
(modeling_mpm/training/transfer.py)."""

import numpy as np
import pytest
import torch

from modeling_mpm import MPMConfig, MPMForMaskedPoseModeling, MPMForPoseLifting
from modeling_mpm.training.config import RunConfig
from modeling_mpm.training.trainer import build_optimizer
from modeling_mpm.training.transfer import drop_frozen_encoder_grads, encoder_parameter_names

TINY = dict(num_frames=9, num_layers=1, hidden_size=32, intermediate_size=64, num_attention_heads=4)


def _cfg(**training):
    return RunConfig({"training": {"task": "lift", "lr": 1e-3, "lr_schedule": "smooth", "lr_decay": 0.1,
                                   "lr_decay_steps": 10, "warmup_steps": 3, **training}})


@pytest.fixture
def lifter():
    torch.manual_seed(0)
    return MPMForPoseLifting(MPMConfig(**TINY))


def test_encoder_is_the_base_model_without_mask_tokens(lifter):
    names = encoder_parameter_names(lifter)
    every = [n for n, _ in lifter.named_parameters()]
    assert names and all(n.startswith("mpm.") for n in names)
    assert "mpm.spatial_mask_token_2d" in every and "mpm.spatial_mask_token_2d" not in names
    assert {n for n in every if n.startswith("mpm.")} - set(names) == {"mpm.spatial_mask_token_2d"}
    assert any(n.startswith("mpm.layers.") for n in names) and any(n.startswith("mpm.spatial_mlp.") for n in names)
    assert not any(n.startswith(("reduce.", "center_head.", "frames_head.")) for n in names)


@pytest.mark.parametrize("training", [
    {},                                                       # defaults
    {"encoder_lr_scale": 0.1, "freeze_encoder_steps": 5},     # no init_from: a scratch run ignores them
    {"init_from": "some/folder"},                             # init_from with the default keys
])
def test_defaults_and_scratch_keep_one_parameter_group(lifter, training):
    opt, _ = build_optimizer(lifter, _cfg(**training), steps_per_epoch=10)
    assert len(opt.param_groups) == 1
    assert [id(p) for p in opt.param_groups[0]["params"]] == [id(p) for p in lifter.parameters()]
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-3 / 3)  # warm-up step 0
    assert drop_frozen_encoder_grads(opt, _cfg(**training), 0) is False


def test_encoder_lr_scale_groups_follow_the_schedule(lifter):
    cfg = _cfg(init_from="some/folder", encoder_lr_scale=0.3)
    opt, sched = build_optimizer(lifter, cfg, steps_per_epoch=10)
    new, enc = opt.param_groups
    assert (new["name"], enc["name"]) == ("new", "encoder")
    names = {id(p): n for n, p in lifter.named_parameters()}
    assert sorted(names[id(p)] for p in enc["params"]) == sorted(encoder_parameter_names(lifter))
    assert len(new["params"]) + len(enc["params"]) == len(list(lifter.parameters()))
    assert "mpm.spatial_mask_token_2d" in {names[id(p)] for p in new["params"]}
    lrs = []
    for _ in range(12):
        lrs.append((new["lr"], enc["lr"]))
        opt.step()
        sched.step()
    lrs = np.array(lrs)
    want = [1e-3 * min(1.0, (s + 1) / 3) * 0.1 ** (s / 10) for s in range(12)]  # warm-up, smooth decay
    np.testing.assert_allclose(lrs[:, 0], want, rtol=1e-12)
    np.testing.assert_allclose(lrs[:, 1], 0.3 * np.array(want), rtol=1e-12)


def _step(model, opt, cfg, global_step):
    model.train()
    out = model(pose_2d=torch.randn(4, 9, 17, 2))
    (out.pose_3d.square().mean() + out.pose_3d_center.square().mean()).backward()
    drop_frozen_encoder_grads(opt, cfg, global_step)
    opt.step()
    opt.zero_grad(set_to_none=True)


def test_freeze_encoder_steps_keeps_encoder_fixed_then_trains_it(lifter):
    cfg = _cfg(init_from="some/folder", freeze_encoder_steps=2)
    opt, _ = build_optimizer(lifter, cfg, steps_per_epoch=10)
    enc = set(encoder_parameter_names(lifter))
    before = {n: p.detach().clone() for n, p in lifter.named_parameters()}
    for step in range(2):
        _step(lifter, opt, cfg, step)
    after = dict(lifter.named_parameters())
    assert all(torch.equal(after[n], before[n]) for n in enc)
    assert all(len(opt.state[after[n]]) == 0 for n in enc)  # no Adam moments gathered while frozen
    assert not torch.equal(after["center_head.proj.weight"], before["center_head.proj.weight"])
    _step(lifter, opt, cfg, 2)  # global step 2: unfrozen
    assert sum(not torch.equal(after[n], before[n]) for n in enc) > len(enc) // 2


@pytest.mark.parametrize("key, value, err", [
    ("encoder_lr_scale", 0.0, ValueError), ("encoder_lr_scale", -0.1, ValueError),
    ("freeze_encoder_steps", -1, ValueError), ("freeze_encoder_steps", 1.5, TypeError)])
def test_bad_values_are_refused(key, value, err):
    with pytest.raises(err, match=f"training.{key}"):
        RunConfig({"training": {key: value}})


def test_train_with_frozen_encoder_leaves_transferred_weights(tmp_path):
    """End to end through ``train``: 2 steps with the encoder frozen for 2 steps keep every encoder
    parameter of the pre-trained model; the lifter's new parts train."""
    from accelerate.utils import set_seed

    from modeling_mpm.training import build_model, train

    torch.manual_seed(0)
    pre = MPMForMaskedPoseModeling(MPMConfig(**TINY))
    pre.save_pretrained(tmp_path / "pre")
    cfg = RunConfig({
        "data": {"source": "synthetic", "synthetic_sequences": 2, "synthetic_length": 30, "val_split": None,
                 "test_split": None},
        "training": {"task": "lift", "init_from": str(tmp_path / "pre"), "output_dir": str(tmp_path / "lift"),
                     "batch_size": 8, "max_steps": 2, "freeze_encoder_steps": 2, "encoder_lr_scale": 0.5,
                     "checkpoint_every": None, "log_every": 1, "tensorboard": False, "progress_bar": False,
                     "select_best": False},
    })
    set_seed(cfg.training.seed)  # the initial lifter of the run (train seeds the same way)
    start = dict(build_model(cfg).named_parameters())
    r = train(cfg, export=False)
    got = dict(r.model.named_parameters())
    enc = encoder_parameter_names(r.model)
    assert enc and all(torch.equal(got[n], start[n]) for n in enc)
    pre_p = dict(pre.named_parameters())
    assert set(enc) <= set(pre_p) and all(torch.equal(start[n], pre_p[n]) for n in enc)  # transferred
    assert not torch.equal(got["center_head.proj.weight"], start["center_head.proj.weight"])
    assert not torch.equal(got["frames_head.proj.weight"], start["frames_head.proj.weight"])
