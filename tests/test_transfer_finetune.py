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
    ("freeze_encoder_steps", -1, ValueError), ("freeze_encoder_steps", 1.5, TypeError),
    ("rescale_encoder_stream", "yes", TypeError), ("pretrain_lift_input", 3, TypeError)])
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


# ------------------------------------------------------------------ residual-stream rescaling
def _grown_pretraining_model(factor=5.0):
    """A pre-training model whose residual stream grew ``factor`` x (as masked-pose pre-training
    does: nothing after ``encoder_norm`` bounds its scale)."""
    from modeling_mpm.training.transfer import residual_stream_writes

    torch.manual_seed(0)
    m = MPMForMaskedPoseModeling(MPMConfig(**TINY, dropout=0.0, mlp_dropout=0.0))
    with torch.no_grad():
        for t in residual_stream_writes(m.mpm):
            t.mul_(factor)
    return m


def test_rescale_keeps_what_the_encoder_computes_and_restores_a_fresh_scale():
    from modeling_mpm.training.transfer import rescale_residual_stream, residual_stream_norm

    m = _grown_pretraining_model(5.0).eval()
    x = 0.2 * torch.randn(4, 9, 17, 2, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = m.encoder_norm(m.mpm(pose_2d=x).last_hidden_state)
        raw_before = m.mpm(pose_2d=x).last_hidden_state
    fresh_norm = residual_stream_norm(MPMForMaskedPoseModeling(m.config).mpm)
    rng = torch.get_rng_state()
    bn = {k: v.clone() for k, v in m.state_dict().items() if "running" in k or "num_batches" in k}
    a = rescale_residual_stream(m)
    assert torch.equal(torch.get_rng_state(), rng)  # the run's random streams are untouched
    assert all(torch.equal(m.state_dict()[k], v) for k, v in bn.items())  # BatchNorm statistics too
    assert 0.1 < a < 0.35  # undoes most of the 5x growth
    assert residual_stream_norm(m.mpm) == pytest.approx(fresh_norm, rel=0.1)  # a fresh init's scale
    with torch.no_grad():
        after = m.encoder_norm(m.mpm(pose_2d=x).last_hidden_state)
        raw_after = m.mpm(pose_2d=x).last_hidden_state
    torch.testing.assert_close(after, before, atol=2e-4, rtol=1e-3)  # the same features, normalised
    torch.testing.assert_close(raw_after, a * raw_before, atol=1e-4, rtol=1e-4)  # times a, raw


def test_rescale_refuses_a_model_without_mpm_encoder():
    from modeling_mpm.training.transfer import rescale_residual_stream

    with pytest.raises(TypeError, match="no MPMModel encoder"):
        rescale_residual_stream(torch.nn.Linear(2, 2))


def test_train_rescales_only_a_transferred_encoder(tmp_path):
    """``training.rescale_encoder_stream`` multiplies the transferred stream writes by one factor and
    leaves every other transferred tensor as pre-trained; a scratch run ignores the key."""

    from modeling_mpm.training import train

    pre = _grown_pretraining_model(4.0)
    pre.save_pretrained(tmp_path / "pre")
    base = {"data": {"source": "synthetic", "synthetic_sequences": 2, "synthetic_length": 30, "val_split": None,
                     "test_split": None},
            "training": {"task": "lift", "init_from": str(tmp_path / "pre"), "output_dir": str(tmp_path / "lift"),
                         "batch_size": 8, "max_steps": 1, "freeze_encoder_steps": 1, "rescale_encoder_stream": True,
                         "checkpoint_every": None, "log_every": 1, "tensorboard": False, "progress_bar": False,
                         "select_best": False}}
    r = train(RunConfig(base), export=False)
    got = dict(r.model.named_parameters())
    pre_p = dict(pre.named_parameters())
    ratio = (got["mpm.spatial_mlp.out_proj.weight"] / pre_p["mpm.spatial_mlp.out_proj.weight"]).detach()
    a = float(ratio.flatten()[0])
    assert 0.15 < a < 0.45
    writes = ("spatial_mlp.out_proj.", "position_embedding", "attention.out_proj.", "feed_forward.fc2.")
    for n in encoder_parameter_names(r.model):
        expect = pre_p[n] * a if any(w in n for w in writes) else pre_p[n]
        torch.testing.assert_close(got[n], expect, rtol=1e-5, atol=1e-7)
    # without init_from the key does nothing: the same run with and without it ends bit-identical
    ends = []
    for flag in (True, False):
        cfg = RunConfig({**base, "training": {**base["training"], "init_from": None, "freeze_encoder_steps": 0,
                                              "rescale_encoder_stream": flag,
                                              "output_dir": str(tmp_path / f"scratch-{flag}")}})
        ends.append(dict(train(cfg, export=False).model.named_parameters()))
    assert all(torch.equal(ends[0][n], ends[1][n]) for n in ends[0])


# ------------------------------------------------------------------ the lifting pretext's input
def _pretext_batch():
    g = torch.Generator().manual_seed(3)
    return {"pose_2d": 0.2 * torch.randn(8, 9, 17, 2, generator=g), "pose_3d": 0.3 * torch.randn(8, 9, 17, 3, generator=g)}


@pytest.mark.parametrize("source", ["visible", "occluded"])
def test_pretrain_lift_input_lifts_the_unmasked_clip(source):
    """``pretrain_lift_input: visible`` lifts every window of the batch without any pre-training
    mask (a second pass); ``occluded`` with the lifting task's missing joints, which with
    probability 0 is the visible clip."""
    from modeling_mpm.training.tasks import compute_loss

    torch.manual_seed(0)
    cfg = MPMConfig(**TINY, dropout=0.0, mlp_dropout=0.0)
    model = MPMForMaskedPoseModeling(cfg).train()
    b = _pretext_batch()
    occlusion = (0.0, 3) if source == "occluded" else (0.5, 3)
    loss, logs = compute_loss("pretrain", model, b, cfg, torch.Generator().manual_seed(0), pretrain_lift=True,
                              pretrain_lift_input=source, occlusion=occlusion)
    direct = model(pose_2d=b["pose_2d"], spatial_mask=torch.zeros(8, 9, 17, dtype=torch.bool),
                   lift_labels=b["pose_3d"])  # every window of the batch
    assert logs["loss_lift"] == pytest.approx(float(direct.loss_lift), rel=1e-5)
    assert float(loss) == pytest.approx(cfg.loss_weight_2d * logs["loss_2d"] + cfg.loss_weight_3d * logs["loss_3d"]
                                        + cfg.loss_weight_lift * logs["loss_lift"], rel=1e-5)
    masked = compute_loss("pretrain", model, b, cfg, torch.Generator().manual_seed(0), pretrain_lift=True)[1]
    assert masked["loss_lift"] != pytest.approx(logs["loss_lift"], rel=1e-3)  # the masked pretext differs


def test_pretrain_lift_input_occluded_hides_joints():
    from modeling_mpm.training.tasks import compute_loss

    torch.manual_seed(0)
    cfg = MPMConfig(**TINY, dropout=0.0, mlp_dropout=0.0)
    model = MPMForMaskedPoseModeling(cfg).train()
    b = _pretext_batch()
    args = dict(pretrain_lift=True, occlusion=(1.0, 3))
    vis = compute_loss("pretrain", model, b, cfg, torch.Generator().manual_seed(0), pretrain_lift_input="visible", **args)
    occ = compute_loss("pretrain", model, b, cfg, torch.Generator().manual_seed(0), pretrain_lift_input="occluded", **args)
    assert vis[1]["loss_2d"] == pytest.approx(occ[1]["loss_2d"], rel=1e-6)  # the same 2D / 3D passes
    assert vis[1]["loss_lift"] != pytest.approx(occ[1]["loss_lift"], rel=1e-4)
    with pytest.raises(ValueError, match="pretrain_lift_input"):
        compute_loss("pretrain", model, b, cfg, torch.Generator().manual_seed(0), pretrain_lift_input="both", **args)
    with pytest.raises(ValueError, match="training.pretrain_lift_input"):
        RunConfig({"training": {"pretrain_lift_input": "both"}})


def test_every_model_names_its_input_embedding():
    """Accelerate's FSDP2 preparation calls ``get_input_embeddings`` (transformers' default raises
    for a model without token embeddings): the 2D joint embedding."""
    from modeling_mpm import MPMModel

    for cls in (MPMModel, MPMForMaskedPoseModeling, MPMForPoseLifting):
        m = cls(MPMConfig(**TINY))
        emb = m.get_input_embeddings()
        assert emb is (m if cls is MPMModel else m.mpm).joint_embedding_2d
        assert m.get_output_embeddings() is None


def test_init_log_counts_the_transfer_s_new_parts(tmp_path, caplog):
    """The lifter's reduce layers and heads are new on a pre-training folder; transformers leaves such
    declared-expected keys out of ``missing_keys``, the run's log still counts them."""
    import logging

    from modeling_mpm.training import build_model

    torch.manual_seed(0)
    MPMForMaskedPoseModeling(MPMConfig(**TINY)).save_pretrained(tmp_path / "pre")
    cfg = RunConfig({"training": {"task": "lift", "init_from": str(tmp_path / "pre")}})
    log = logging.getLogger("modeling_mpm.training")  # a run sets propagate=False: listen on it directly
    log.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="modeling_mpm.training"):
            model = build_model(cfg)
    finally:
        log.removeHandler(caplog.handler)
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("initialised from"))
    new = [k for k in model.state_dict() if k.split(".")[0] in ("reduce", "center_head", "frames_head")]
    assert new and f"{len(model.state_dict()) - len(new)} tensors loaded, {len(new)} new " \
                   "(center_head, frames_head, reduce)" in line
