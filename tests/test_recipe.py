"""The authors' training recipe: which heads run in a pass, losses, masks, schedules."""

import numpy as np
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


# ---------------------------------------------------------------------------- samples per epoch, LR
import pathlib  # noqa: E402

from modeling_mpm.training.config import RunConfig, load_config  # noqa: E402
from modeling_mpm.training.data import ArrayWindowDataset, RepeatedWindows, repeat_windows, synthetic_sequences  # noqa: E402
from modeling_mpm.training.sampler import BatchPlan, build_train_loader  # noqa: E402
from modeling_mpm.training.trainer import build_optimizer  # noqa: E402

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "modeling_mpm" / "configs"


def test_repeated_windows_epoch_sees_every_window_k_times():
    ds = ArrayWindowDataset(synthetic_sequences(2, 30, seed=0), num_frames=9)
    rep = repeat_windows(ds, 4)
    assert isinstance(rep, RepeatedWindows) and len(rep) == 4 * len(ds)
    assert repeat_windows(ds, 1) is ds
    np.testing.assert_array_equal(rep[len(ds) + 5]["pose_2d"], ds[5]["pose_2d"])
    plan = BatchPlan(len(rep), batch_size=8)
    assert plan.steps_per_epoch == (4 * len(ds)) // 8
    drawn = np.array(list(build_train_loader(rep, plan, 3, lambda b: b).sampler))
    assert len(drawn) == plan.steps_per_epoch * 8 and len(set(drawn.tolist())) == len(drawn)
    seen = np.bincount(drawn % len(ds), minlength=len(ds))
    if len(rep) % 8 == 0:
        assert (seen == 4).all()  # every window exactly 4 times per epoch
    assert seen.max() <= 4 and seen.sum() == len(drawn)
    with pytest.raises(ValueError, match="passes"):
        RepeatedWindows(ds, 0)
    with pytest.raises(ValueError, match="epoch_multiplier"):
        RunConfig({"training": {"epoch_multiplier": 0}})


def test_lr_staircase_decays_once_per_epoch(tiny_config):
    from modeling_mpm import MPMForPoseLifting

    model = MPMForPoseLifting(tiny_config)
    cfg = RunConfig({"training": {"task": "lift", "lr": 7e-4, "lr_decay": 0.97}})
    steps_per_epoch = 5
    optimizer, scheduler = build_optimizer(model, cfg, steps_per_epoch)
    assert optimizer.defaults["amsgrad"] and optimizer.defaults["weight_decay"] == 0
    lrs = []
    for _ in range(3 * steps_per_epoch + 1):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    want = [7e-4 * 0.97 ** (s // steps_per_epoch) for s in range(3 * steps_per_epoch + 1)]
    np.testing.assert_allclose(lrs, want, rtol=1e-12)


# the authors' training windows (docs/authors_code.md section 3.3): H36M S1, S5-S8, one window per frame
H36M_TRAIN_WINDOWS = 1_559_752


@pytest.mark.parametrize("name, per_window", [
    ("pretrain_h36m17.yaml", 4), ("pretrain_multi16.yaml", 4), ("finetune_lift_h36m17.yaml", 2),
    ("finetune_lift_3dhp16.yaml", 2), ("complete3d_27.yaml", 2), ("occluded2d_27.yaml", 2)])
def test_paper_configs_reproduce_the_authors_samples_and_decay(name, per_window):
    """The authors' epoch has ``flip (x2) [x modality (x2) in pre-training]`` samples per window;
    their LR is x0.97 after each epoch. The paper configs give the same steps per epoch (up to
    the last partial batch, which the authors keep and this loop drops) and the same LR at the
    start of every epoch."""
    cfg = load_config(str(CONFIGS / name))
    t = cfg.training
    assert t.epoch_multiplier == per_window and t.lr_schedule == "staircase" and t.lr_decay == 0.97
    authors_steps = -(-per_window * H36M_TRAIN_WINDOWS // t.batch_size)  # their DataLoader keeps the last batch
    order = BatchPlan(t.epoch_multiplier * H36M_TRAIN_WINDOWS, t.batch_size)
    assert authors_steps - 1 <= order.steps_per_epoch <= authors_steps
    from modeling_mpm.training.trainer import _lr_lambda

    f = _lr_lambda(cfg, order.steps_per_epoch)
    for epoch in (0, 1, 10, 48):
        assert f(epoch * order.steps_per_epoch) == pytest.approx(0.97 ** epoch)
        assert f(epoch * order.steps_per_epoch + order.steps_per_epoch - 1) == pytest.approx(0.97 ** epoch)


def test_trainer_uses_epoch_multiplier(tmp_path):
    from modeling_mpm.training import train

    base = {"model": {"num_frames": 9, "num_layers": 1, "hidden_size": 32, "intermediate_size": 64,
                      "num_attention_heads": 4},
            "data": {"source": "synthetic", "synthetic_sequences": 2, "synthetic_length": 10, "val_split": None,
                     "test_split": None},
            "training": {"task": "lift", "output_dir": str(tmp_path), "batch_size": 8, "epochs": 1,
                         "epoch_multiplier": 3, "checkpoint_every": None, "log_every": 100, "tensorboard": False,
                         "progress_bar": False, "select_best": False}}
    r = train(RunConfig(base), export=False)
    assert r.global_step == (3 * 2 * 10) // 8  # 3 passes over 20 windows, batch 8


# ---------------------------------------------------------------------------- preset with init_from
def test_preset_applies_when_initialising_from_pretraining(tmp_path):
    from modeling_mpm import MPMConfig
    from modeling_mpm.training import build_model

    pre = MPMForMaskedPoseModeling(MPMConfig(num_frames=27, num_layers=3, hidden_size=32, intermediate_size=64,
                                             num_attention_heads=4))
    pre.save_pretrained(tmp_path / "pre")
    cfg = RunConfig({"model": {"preset": "completion_27", "hidden_size": 32, "intermediate_size": 64,
                               "num_attention_heads": 4, "embedding_size": 64},
                     "training": {"task": "complete3d", "init_from": str(tmp_path / "pre")}})
    model = build_model(cfg)
    c = model.config
    assert c.decoder_layers == 2 and len(model.decoder_3d) == 2
    assert c.mask_mode == "tube" and c.temporal_mask_ratio == 0.0
    # the first decoder layer and the encoder come from pre-training
    torch.testing.assert_close(model.decoder_3d[0].ffn_norm.weight, pre.decoder_3d[0].ffn_norm.weight)
    torch.testing.assert_close(model.mpm.position_embedding, pre.mpm.position_embedding)
    # a preset geometry the checkpoint lacks is an error that names the preset
    with pytest.raises(ValueError, match="set by model.preset=h36m_17"):
        build_model(cfg.with_overrides(["model.preset=h36m_17"]))


# ---------------------------------------------------------------------------- one root rule
def test_converted_checkpoint_scores_the_same_in_evaluation_and_pipeline():
    """A converted official lifter (``zero_root_output=False``: the raw root output is not 0)
    gets the same MPJPE from evaluate_lifting as from its pipeline predictions: both set the
    predicted root to 0 (the authors' rule) instead of subtracting it."""
    from modeling_mpm import metrics as M
    from modeling_mpm.convert_official import convert_official_checkpoint
    from modeling_mpm.evaluation import evaluate_lifting
    from modeling_mpm.inference import lift_sequence

    lifter = convert_official_checkpoint(pathlib.Path(__file__).parent / "fixtures" / "official_mpm_compat"
                                         / "official_finetune.pth")
    assert lifter.config.zero_root_output is False
    seqs = synthetic_sequences(1, 40, seed=4)
    ds = ArrayWindowDataset(seqs, num_frames=lifter.config.num_frames)
    with torch.no_grad():
        raw = lifter(pose_2d=torch.as_tensor(ds[0]["pose_2d"])[None]).pose_3d_center
    assert float(raw[..., 0, :].abs().max()) > 1e-3  # the root output really is not 0
    res = evaluate_lifting(lifter, ds, batch_size=16)
    pred = lift_sequence(lifter, seqs[0]["pose_2d"], batch_size=16)
    gt = seqs[0]["pose_3d"]
    want = float(M.mpjpe_per_frame(torch.as_tensor(pred), torch.as_tensor(gt)).mean()) * 1000.0
    assert res["mpjpe_frames"] == pytest.approx(want, rel=1e-5)
    # subtracting the predicted root instead (the rule evaluation used before) gives another number
    with torch.no_grad():
        raws = torch.cat([lifter(pose_2d=torch.as_tensor(ds[k]["pose_2d"])[None]).pose_3d_center for k in range(len(ds))])
    old = float(M.mpjpe_per_frame(raws[:, 0] - raws[:, 0, :1], torch.as_tensor(gt)).mean()) * 1000.0
    assert abs(old - want) > 1e-3 * want


# ---------------------------------------------------------------------------- 3DHP MPJPE
class _TableLifter(torch.nn.Module):
    """Returns a fixed centre-frame prediction per window; the window index is read off the 2D."""

    def __init__(self, config, predictions):
        super().__init__()
        self.config = config
        self.predictions = predictions
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, pose_2d, spatial_mask=None):
        from types import SimpleNamespace

        idx = pose_2d[:, 0, 0, 0].round().long()
        return SimpleNamespace(pose_3d_center=self.predictions[idx])


def test_3dhp_mpjpe_in_the_literature_protocol():
    """14 official joints (not the pelvis, spine or head), every window weighted equally,
    hand-computed: window 0 has a 100 mm error at the left wrist, window 1 has 200 mm at the
    right knee and 300 mm at the spine (not one of the 14), window 2 is exact."""
    from modeling_mpm import MPMConfig
    from modeling_mpm.evaluation import evaluate_lifting
    from modeling_mpm.skeleton import get_skeleton

    cfg = MPMConfig.h36m_16(num_frames=3, hidden_size=32, intermediate_size=64, num_attention_heads=4)
    skel = get_skeleton("h36m16")
    lwrist, rknee, spine = (skel.index(n) for n in ("left_wrist", "right_knee", "spine"))
    g = torch.Generator().manual_seed(0)
    gt = torch.randn(3, 1, 16, 3, generator=g) * 0.2
    gt[:, :, 0] = 0
    pred = gt.clone()
    pred[0, 0, lwrist, 0] += 0.100
    pred[1, 0, rknee, 1] += 0.200
    pred[1, 0, spine, 2] += 0.300
    windows = [{"pose_2d": np.full((3, 16, 2), float(k), np.float32),
                "pose_3d": np.repeat(gt[k].numpy(), 3, axis=0), "action": "a"} for k in range(3)]
    res = evaluate_lifting(_TableLifter(cfg, pred), windows, batch_size=2)
    assert res["mpjpe_3dhp"] == pytest.approx((100.0 + 200.0) / (3 * 14), rel=1e-5)
    assert res["pck"] == pytest.approx(100.0 * (3 * 14 - 1) / (3 * 14), rel=1e-6)  # 200 mm > 150 mm
    assert res["mpjpe"] == pytest.approx((100.0 + 200.0 + 300.0) / (3 * 16), rel=1e-5)  # all 16 joints


# ---------------------------------------------------------------------------- lifter 2D mask token
def test_lifter_mask_token_starts_from_pretraining(tmp_path):
    from modeling_mpm import MPMConfig
    from modeling_mpm.training import build_model

    pre = MPMForMaskedPoseModeling(MPMConfig(num_frames=9, num_layers=1, hidden_size=32, intermediate_size=64,
                                             num_attention_heads=4))
    with torch.no_grad():
        pre.mpm.spatial_mask_token_2d.copy_(torch.tensor([0.123, -0.456]))
    pre.save_pretrained(tmp_path / "pre")
    lifter = build_model(RunConfig({"training": {"task": "lift", "init_from": str(tmp_path / "pre")}}))
    torch.testing.assert_close(lifter.mpm.spatial_mask_token_2d.detach(), torch.tensor([0.123, -0.456]))
    assert getattr(lifter.config, "mask_token_2d_trained", True) is True


def test_converted_lifter_says_its_mask_token_is_untrained(tmp_path):
    import warnings

    from modeling_mpm import MPMForPoseLifting
    from modeling_mpm.convert_official import convert_official_checkpoint
    from modeling_mpm.inference import lift_sequence
    from modeling_mpm.training import tasks

    lifter = convert_official_checkpoint(pathlib.Path(__file__).parent / "fixtures" / "official_mpm_compat"
                                         / "official_finetune.pth")
    assert lifter.config.mask_token_2d_trained is False
    x = torch.randn(2, 27, 17, 2) * 0.3
    mask = torch.zeros(2, 27, 17, dtype=torch.bool)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lifter(pose_2d=x)  # no missing joint: silent
        lifter(pose_2d=x, spatial_mask=mask)  # nothing masked: silent
    mask[:, :, 13] = True
    with pytest.warns(UserWarning, match="mask token was never trained"):
        lifter(pose_2d=x, spatial_mask=mask)
    seq = np.random.default_rng(0).normal(size=(30, 17, 2)).astype(np.float32) * 0.3
    seq[5, 13] = np.nan
    with pytest.warns(UserWarning, match="mask token was never trained"):
        lift_sequence(lifter, seq, batch_size=32)
    # the flag survives save / load; the loss never writes into the config, a lift run with occluded
    # input (which trains the token) marks it trained when it builds the model, one without does not
    lifter.save_pretrained(tmp_path / "conv")
    reloaded = MPMForPoseLifting.from_pretrained(tmp_path / "conv")
    assert reloaded.config.mask_token_2d_trained is False
    batch = {"pose_2d": x, "pose_3d": torch.zeros(2, 27, 17, 3)}
    with pytest.warns(UserWarning, match="mask token was never trained"):
        tasks.compute_loss("lift", reloaded.train(), batch, reloaded.config, torch.Generator().manual_seed(0),
                           occlusion=(1.0, 2))
    assert reloaded.config.mask_token_2d_trained is False
    from modeling_mpm.training import build_model

    for prob, trained in ((0.0, False), (0.5, True)):
        run = RunConfig({"model": {"num_frames": 27}, "training": {"task": "lift", "init_from": str(tmp_path / "conv"),
                                                                   "occlusion_prob": prob}})
        assert build_model(run).config.mask_token_2d_trained is trained


# ---------------------------------------------------------------------------- compute_loss, flips, occlusion
class _Spy(torch.nn.Module):
    """Records the keyword arguments of every call and returns a zero loss."""

    def __init__(self):
        super().__init__()
        self.calls = []
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, **kw):
        from types import SimpleNamespace

        self.calls.append(kw)
        return SimpleNamespace(loss=self.w * 0, loss_2d=None, loss_3d=None, loss_lift=None)


def _batch(cfg, b=6, seed=1):
    p2, p3 = _poses(cfg, batch=b, seed=seed)
    return {"pose_2d": p2, "pose_3d": p3}


def test_compute_loss_routes_samples_to_2d_and_3d(tiny_config):
    from modeling_mpm.training.tasks import compute_loss

    batch = _batch(tiny_config)
    g = torch.Generator().manual_seed(0)
    spy = _Spy()
    compute_loss("pretrain", spy, batch, tiny_config, g, pairing="split")
    kw = spy.calls[-1]
    torch.testing.assert_close(kw["pose_2d"], batch["pose_2d"][:3])  # first half -> 2D pass
    torch.testing.assert_close(kw["pose_3d"], batch["pose_3d"][3:])  # second half -> 3D pass
    assert kw["lift_labels"] is None
    assert kw["spatial_mask"].shape == (3, 27, 17) and kw["temporal_mask"].shape == (3, 27)
    assert (kw["spatial_mask"].sum(-1) == tiny_config.spatial_mask_joints).all()
    assert (kw["temporal_mask"].sum(-1) == int(27 * tiny_config.temporal_mask_ratio)).all()
    compute_loss("pretrain", spy, batch, tiny_config, g, pairing="split", pretrain_lift=True)
    torch.testing.assert_close(spy.calls[-1]["lift_labels"], batch["pose_3d"][:3])  # the 3D of the 2D clips
    compute_loss("pretrain", spy, batch, tiny_config, g, pairing="paired")
    torch.testing.assert_close(spy.calls[-1]["pose_2d"], batch["pose_2d"])
    torch.testing.assert_close(spy.calls[-1]["pose_3d"], batch["pose_3d"])
    with pytest.raises(ValueError, match="at least 2 windows"):
        compute_loss("pretrain", spy, {k: v[:1] for k, v in batch.items()}, tiny_config, g)
    compute_loss("lift", spy, batch, tiny_config, g)
    assert spy.calls[-1]["spatial_mask"] is None and spy.calls[-1]["labels"] is batch["pose_3d"]
    compute_loss("complete3d", spy, batch, tiny_config, g)
    tube = spy.calls[-1]["spatial_mask_3d"]
    assert "pose_2d" not in spy.calls[-1] and tube.shape == (6, 27, 17)
    assert (tube == tube[:, :1]).all() and tube.any(-1).all()  # the same joints in every frame
    compute_loss("occluded2d", spy, batch, tiny_config, g)
    kw = spy.calls[-1]
    assert kw["lift_labels"] is batch["pose_3d"] and "pose_3d" not in kw and kw["spatial_mask"].shape == (6, 27, 17)
    with pytest.raises(ValueError, match="unknown task"):
        compute_loss("nope", spy, batch, tiny_config, g)


def test_compute_loss_weights(tiny_config):
    from modeling_mpm.training.tasks import compute_loss

    model = MPMForMaskedPoseModeling(tiny_config).train()
    batch = _batch(tiny_config)
    g = torch.Generator().manual_seed(0)
    loss, logs = compute_loss("pretrain", model, batch, tiny_config, g)
    assert float(loss.detach()) == pytest.approx(5.0 * logs["loss_2d"] + 2.0 * logs["loss_3d"], rel=1e-5)
    loss, logs = compute_loss("pretrain", model, batch, tiny_config, g, pretrain_lift=True)
    assert float(loss.detach()) == pytest.approx(5.0 * logs["loss_2d"] + 2.0 * logs["loss_3d"] + 2.0 * logs["loss_lift"],
                                        rel=1e-5)
    tiny_config.loss_weight_2d, tiny_config.loss_weight_lift = 1.0, 2.0  # occluded2d_27.yaml
    loss, logs = compute_loss("occluded2d", model, batch, tiny_config, g)
    assert float(loss.detach()) == pytest.approx(logs["loss_2d"] + 2.0 * logs["loss_lift"], rel=1e-5)
    tiny_config.loss_weight_3d = 1.0  # complete3d_27.yaml
    loss, logs = compute_loss("complete3d", model, batch, tiny_config, g)
    assert float(loss.detach()) == pytest.approx(logs["loss_3d"], rel=1e-5)


def test_flip_batch_mirrors_2d_and_3d_of_the_same_windows(tiny_config):
    from modeling_mpm.skeleton import get_skeleton
    from modeling_mpm.training.tasks import flip_batch

    skel = get_skeleton("h36m17")
    batch = _batch(tiny_config, b=64)
    out = flip_batch(batch, skel, torch.Generator().manual_seed(0))
    perm = list(skel.flip_permutation)
    mirrored2 = batch["pose_2d"][:, :, perm] * torch.tensor([-1.0, 1.0])
    mirrored3 = batch["pose_3d"][:, :, perm] * torch.tensor([-1.0, 1.0, 1.0])
    f2 = torch.isclose(out["pose_2d"], mirrored2).flatten(1).all(1)
    f3 = torch.isclose(out["pose_3d"], mirrored3).flatten(1).all(1)
    same2 = (out["pose_2d"] == batch["pose_2d"]).flatten(1).all(1)
    assert torch.equal(f2, f3) and torch.equal(f2, ~same2)  # each window flipped in 2D and 3D together, or not at all
    assert 16 < int(f2.sum()) < 48  # about half
    assert perm[1] == 4 and perm[11] == 14  # right hip <-> left hip, left shoulder <-> right shoulder
    again = flip_batch(out, skel, torch.Generator().manual_seed(0))  # the same windows again: identity
    torch.testing.assert_close(again["pose_3d"], batch["pose_3d"])
    none = flip_batch(batch, skel, torch.Generator().manual_seed(0), prob=0.0)
    assert torch.equal(none["pose_2d"], batch["pose_2d"])


def test_occlusion_masks():
    from modeling_mpm.training.tasks import occlusion_mask

    g = torch.Generator().manual_seed(0)
    assert occlusion_mask(8, 27, 17, 3, 0.0, g) is None and occlusion_mask(8, 27, 17, 0, 1.0, g) is None
    m = occlusion_mask(200, 27, 17, 3, 1.0, g)
    k = m.sum(-1)
    assert m.shape == (200, 27, 17) and (k == k[:, :1]).all()  # the same count in every frame of a window
    assert set(k[:, 0].tolist()) == {1, 2, 3}
    assert (m != m[:, :1]).any(-1).any(-1).float().mean() > 0.9  # a different joint set per frame
    hit = occlusion_mask(2000, 9, 17, 3, 0.3, g).flatten(1).any(1).float().mean()
    assert 0.25 < float(hit) < 0.35


def test_occlusion_hides_whole_limbs():
    """``limb_prob``: that share of the occluded windows hides one whole limb in all its frames; with
    ``limb_prob=0`` the masks (and the random stream) are those of the random-joint occlusion."""
    from modeling_mpm import MPMConfig
    from modeling_mpm.training.tasks import limb_joints, occlusion_mask

    limbs = limb_joints(MPMConfig(skeleton="h36m17", num_joints=17))
    assert sorted(map(sorted, limbs)) == [[1, 2, 3], [4, 5, 6], [11, 12, 13], [14, 15, 16]]
    a = occlusion_mask(64, 9, 17, 3, 0.7, torch.Generator().manual_seed(3))
    b = occlusion_mask(64, 9, 17, 3, 0.7, torch.Generator().manual_seed(3), limb_prob=0.0, limbs=limbs)
    assert torch.equal(a, b)
    m = occlusion_mask(4000, 9, 17, 3, 0.8, torch.Generator().manual_seed(0), limb_prob=0.5, limbs=limbs)
    occluded = m.flatten(1).any(1)
    steady = (m == m[:, :1]).all(-1).all(-1)  # the same joints in every frame
    as_limb = occluded & steady & (m[:, 0].sum(-1) == 3)
    assert all(sorted(torch.nonzero(w[0]).flatten().tolist()) in map(sorted, limbs) for w in m[as_limb][:50])
    assert 0.75 < float(occluded.float().mean()) < 0.85
    assert 0.45 < float(as_limb.sum() / occluded.sum()) < 0.56  # a random-joint window is rarely steady
    with pytest.raises(ValueError, match="limbs"):
        occlusion_mask(4, 9, 17, 3, 1.0, torch.Generator(), limb_prob=0.5)
    with pytest.raises(ValueError, match="occlusion_limb_prob"):
        from modeling_mpm.training.config import RunConfig
        RunConfig({"training": {"occlusion_limb_prob": 1.5}})
    # the lifting task and the occluded lifting pretext pass such masks to the model
    from modeling_mpm import MPMForMaskedPoseModeling, MPMForPoseLifting
    from modeling_mpm.training import tasks

    cfg = MPMConfig(num_frames=9, hidden_size=32, intermediate_size=64, num_layers=1, num_attention_heads=4)
    batch = {"pose_2d": torch.randn(6, 9, 17, 2), "pose_3d": torch.randn(6, 9, 17, 3)}
    for task, model, kw in (("lift", MPMForPoseLifting(cfg), {}),
                            ("pretrain", MPMForMaskedPoseModeling(cfg),
                             dict(pretrain_lift=True, pretrain_lift_input="occluded", pairing="paired"))):
        seen = []
        model.register_forward_pre_hook(lambda mod, a, k: seen.append(k.get("spatial_mask")), with_kwargs=True)
        tasks.compute_loss(task, model.train(), batch, model.config, torch.Generator().manual_seed(0),
                           occlusion=(1.0, 3, 1.0), **kw)
        mask = seen[-1]
        assert mask.shape == (6, 9, 17) and all(
            sorted(torch.nonzero(w[0]).flatten().tolist()) in map(sorted, limbs) and (w == w[:1]).all() for w in mask)


# ---------------------------------------------------------------------------- refine stage
FIX = pathlib.Path(__file__).parent / "fixtures"


def _official_refined_lifter():
    from safetensors.torch import load_file

    from modeling_mpm.convert_official import convert_official_state_dict

    lift = load_file(str(FIX / "official_train_step" / "lift_init.safetensors"))
    refine = load_file(str(FIX / "official_train_step" / "refine_head_init.safetensors"))
    return lift, refine, convert_official_state_dict(lift, refine_state_dict=refine)


def test_convert_official_refine_checkpoints(tmp_path):
    from modeling_mpm import MPMForPoseLifting
    from modeling_mpm.cli.convert import main
    from modeling_mpm.convert_official import convert_official_state_dict

    lift, refine, model = _official_refined_lifter()
    assert model.config.use_refine and model.config.refine_hidden_size == 64
    torch.testing.assert_close(model.refiner.mlp[3].weight, refine["module.post_refine.3.weight"])
    with pytest.raises(ValueError, match="refine module .* without its lifter"):
        convert_official_state_dict(refine)
    bad = dict(refine)
    bad["module.post_refine.0.weight"] = bad["module.post_refine.0.weight"][:, :10]
    with pytest.raises(ValueError, match="do not fit a 17-joint lifter"):
        convert_official_state_dict(lift, refine_state_dict=bad)
    merged = convert_official_state_dict({**lift, **refine})  # one file holding both
    torch.testing.assert_close(merged.refiner.mlp[0].bias, model.refiner.mlp[0].bias)
    torch.save(lift, tmp_path / "x.pth")
    torch.save(refine, tmp_path / "x_refine.pth")
    assert main([str(tmp_path / "x.pth"), str(tmp_path / "out"), "--strides", "3", "3", "3",
                 "--refine", str(tmp_path / "x_refine.pth")]) == 0
    back = MPMForPoseLifting.from_pretrained(tmp_path / "out")
    assert back.refiner is not None and back.config.refine_hidden_size == 64
    torch.testing.assert_close(back.refiner.mlp[0].weight, model.refiner.mlp[0].weight)


class _CameraWindows(torch.utils.data.Dataset):
    """Synthetic windows with the camera data the refiner needs (intrinsics, root_3d)."""

    def __init__(self, frames, n_seq=2, length=20, seed=0):
        self.ds = ArrayWindowDataset(synthetic_sequences(n_seq, length, seed=seed), num_frames=frames)
        self.intrinsics = np.array([2.3, 2.3, 0.01, -0.02, 0, 0, 0, 0, 0], np.float32)

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, k):
        item = dict(self.ds[k])
        root = np.zeros((len(item["pose_2d"]), 3), np.float32)
        root[:, 2] = 5.0 + 0.01 * k
        return {**item, "intrinsics": self.intrinsics, "root_3d": root}


def test_evaluation_refines_the_centre_frame_after_the_flip_average():
    from modeling_mpm.evaluation import evaluate_lifting, flip_pose, predict_lifting
    from modeling_mpm.modeling_mpm import zero_root

    _, _, model = _official_refined_lifter()
    ds = _CameraWindows(model.config.num_frames)
    res = evaluate_lifting(model, ds, batch_size=16, flip=True)
    plain = evaluate_lifting(model, ds.ds, batch_size=16, flip=True)  # no camera data: not refined
    assert res["refined"] and not plain["refined"] and res["mpjpe"] != pytest.approx(plain["mpjpe"])
    items = [ds[k] for k in range(4)]
    x = torch.as_tensor(np.stack([it["pose_2d"] for it in items]))
    cam = torch.as_tensor(np.stack([it["intrinsics"] for it in items]))
    depth = torch.as_tensor(np.stack([it["root_3d"][13, 2] for it in items]))
    skel = model.config.get_skeleton()
    with torch.no_grad():
        raw = lambda p: model.center_head(model.reduce(model.mpm(pose_2d=p).last_hidden_state))  # noqa: E731
        avg = (raw(x) + flip_pose(raw(flip_pose(x, skel)), skel)) / 2
        want = model.refiner(avg, x[:, 13:14], cam, depth)
        got = predict_lifting(model, x, flip=True, camera_intrinsics=cam, root_depth=depth)
        # without flip the evaluation path equals the model's own forward with camera data
        fwd = model(pose_2d=x, camera_intrinsics=cam, root_depth=depth).pose_3d_center
        got1 = predict_lifting(model, x, camera_intrinsics=cam, root_depth=depth)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(got1, fwd)
    assert not torch.allclose(zero_root(got, 0), zero_root(predict_lifting(model, x, flip=True), 0))


def test_refine_task_trains_and_evaluates(tmp_path):
    from modeling_mpm.training import train
    from modeling_mpm.training.tasks import flip_batch

    cfg = RunConfig({"model": {"num_frames": 9, "num_layers": 1, "hidden_size": 32, "intermediate_size": 64,
                               "num_attention_heads": 4},
                     "training": {"task": "refine", "output_dir": str(tmp_path), "batch_size": 8, "max_steps": 2,
                                  "checkpoint_every": None, "log_every": 1, "tensorboard": False,
                                  "progress_bar": False, "select_best": False}})
    r = train(cfg, splits=(_CameraWindows(9), _CameraWindows(9, n_seq=1, seed=1), None), export=False)
    assert r.model.refiner is not None and r.history and r.history[-1]["mpjpe"] > 0
    # windows without camera data: a clear error
    cfg2 = RunConfig({**cfg.to_dict(), "training": {**cfg.to_dict()["training"], "output_dir": str(tmp_path / "nocam")}})
    with pytest.raises(ValueError, match="camera data"):
        train(cfg2, splits=(ArrayWindowDataset(synthetic_sequences(2, 20, seed=0), 9), None, None), export=False)
    # a flip mirrors the principal point (and the root) with the poses, as the authors' loader
    from modeling_mpm.training.data import collate_windows

    b = collate_windows([_CameraWindows(9)[k] for k in range(4)])
    f = flip_batch(b, "h36m17", torch.Generator().manual_seed(0), prob=1.0)
    torch.testing.assert_close(f["intrinsics"][:, [0, 1, 3]], b["intrinsics"][:, [0, 1, 3]])
    torch.testing.assert_close(f["intrinsics"][:, 2], -b["intrinsics"][:, 2])
    torch.testing.assert_close(f["root_3d"][..., 2], b["root_3d"][..., 2])
