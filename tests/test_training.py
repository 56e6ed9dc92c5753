"""Training pieces: config validation and overrides, batch order, hub check, flip TTA, fine-tuning
from a pre-trained folder, the other tasks, model cards."""

import os

import pytest
import torch

from modeling_mpm.training.config import load_config, parse_override
from modeling_mpm.training.sampler import BatchPlan, build_train_loader, epoch_loader

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from tiny_runs import TINY_MODEL  # noqa: E402,F401
from tiny_runs import tiny_run_config as _tiny  # noqa: E402


# ----------------------------------------------------------------------------- config
def test_config_overrides_and_validation(tmp_path):
    cfg = load_config(None, ["training.lr=3e-4", "data.paths=[a, b]", "model.num_layers=2", "eval.flip=false"])
    assert cfg.training.lr == pytest.approx(3e-4) and isinstance(cfg.training.lr, float)
    assert cfg.data.paths == ["a", "b"] and cfg.model["num_layers"] == 2 and cfg.eval.flip is False
    assert parse_override("training.max_steps=null") == ("training.max_steps", None)
    with pytest.raises(ValueError, match="training.lrr"):
        load_config(None, ["training.lrr=1"])
    with pytest.raises(ValueError, match="unknown config section"):
        load_config(None, ["optim.lr=1"])
    with pytest.raises(TypeError, match="training.batch_size must be int"):
        load_config(None, ["training.batch_size=abc"])
    with pytest.raises(TypeError, match="bool"):
        load_config(None, ["training.amsgrad=3"])
    with pytest.raises(ValueError, match="one of"):
        load_config(None, ["training.task=dance"])
    with pytest.raises(ValueError, match="model.num_layer"):
        load_config(None, ["model.num_layer=2"])
    with pytest.raises(ValueError, match="data.paths is empty"):
        load_config(None, ["data.source=prepared"])
    with pytest.raises(ValueError, match="does not exist"):
        load_config(str(tmp_path / "missing.yaml"))
    with pytest.raises(ValueError, match="section.key=value"):
        parse_override("lr")


def test_shipped_configs_parse():
    import glob

    from modeling_mpm.training.config import CONFIG_DIR, resolve_config_path, shipped_configs

    names = sorted(glob.glob(os.path.join(CONFIG_DIR, "*.yaml")))
    assert len(names) >= 8 and os.path.dirname(CONFIG_DIR) == os.path.join(REPO, "modeling_mpm")
    assert sorted(shipped_configs().values()) == names
    # by name, with .yaml, or the old checkout path: the shipped file; an existing path wins
    for spec in ("pretrain_h36m17", "pretrain_h36m17.yaml", os.path.join("configs", "pretrain_h36m17.yaml")):
        assert resolve_config_path(spec) == os.path.join(CONFIG_DIR, "pretrain_h36m17.yaml")
    assert load_config("tiny_pretrain").model["num_frames"] == 9
    with pytest.raises(ValueError, match="shipped: complete3d_27"):
        load_config("pretrain_h99")
    with pytest.raises(ValueError, match="does not exist"):
        resolve_config_path(os.path.join("elsewhere", "pretrain_h36m17.yaml"))
    for path in names:
        cfg = load_config(path)
        mc = cfg.build_model_config()
        if "h36m17" in path and "pretrain" in path:
            assert (mc.num_frames, mc.num_layers, cfg.data.tds, cfg.training.batch_size) == (243, 4, 2, 1024)
            assert (cfg.training.lr, cfg.training.lr_decay, mc.temporal_mask_ratio, mc.spatial_mask_joints) == \
                (1e-4, 0.97, 0.6, 5)
        if "multi16" in path:
            assert (mc.num_joints, mc.num_layers) == (16, 3)
        if "_27" in path:
            assert (mc.num_frames, cfg.training.lr, cfg.training.batch_size) == (27, 2e-4, 2048)
        if "finetune_lift_h36m17" in path:
            assert cfg.training.lr == 7e-4


def test_missing_prepared_path_is_a_clear_error(tmp_path):
    from modeling_mpm.training.data import build_splits

    cfg = load_config(None, ["data.source=prepared", f"data.paths=[{tmp_path / 'nope'}]"])
    with pytest.raises(ValueError, match="does not exist"):
        build_splits(cfg, 9)


# ----------------------------------------------------------------------------- batch order
def _seedable_accelerator(seed, accumulation=1):
    from accelerate import Accelerator, DataLoaderConfiguration
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    return Accelerator(cpu=True, gradient_accumulation_steps=accumulation,
                       dataloader_config=DataLoaderConfiguration(split_batches=True, use_seedable_sampler=True,
                                                                 data_seed=seed))


def test_batch_order_is_a_function_of_epoch_and_shards_ranks():
    from accelerate.data_loader import BatchSamplerShard, SeedableRandomSampler

    plan = BatchPlan(100, 16, accumulation_steps=2, world_size=2)
    assert (plan.steps_per_epoch, plan.global_micro_batch_size, plan.micro_batch_size) == (6, 8, 4)
    with pytest.raises(ValueError, match="divisible"):
        BatchPlan(100, 10, accumulation_steps=4)
    with pytest.raises(ValueError, match="fewer than one batch"):
        BatchPlan(5, 8)

    plan1 = BatchPlan(100, 16, accumulation_steps=2)
    acc = _seedable_accelerator(3, accumulation=2)
    loader = acc.prepare(build_train_loader(list(range(100)), plan1, 3, collate_fn=list))
    assert isinstance(loader.get_sampler(), SeedableRandomSampler)

    def epoch(e, start=0):
        return [b for b in epoch_loader(acc, loader, e, start, accumulation_steps=2)]

    e1 = epoch(1)
    assert len(e1) == 12 and all(len(b) == 8 for b in e1)    # 6 steps x 2 micro-batches of 8
    assert e1 == epoch(1)                                     # a pure function of (seed, epoch)
    assert epoch(1, start=4) == e1[8:]                        # resuming mid-epoch skips whole steps
    assert e1 != epoch(2)
    flat = [i for b in e1 for i in b]
    assert len(set(flat)) == 96                               # no repeats, the incomplete batch dropped
    # two processes: each micro-batch of 8 is dealt as two contiguous halves of 4
    halves = [list(BatchSamplerShard(loader.batch_sampler, num_processes=2, process_index=r, split_batches=True))
              for r in (0, 1)]
    loader.get_sampler().set_epoch(1)
    for r in (0, 1):
        loader.get_sampler().set_epoch(1)
        halves[r] = list(BatchSamplerShard(loader.batch_sampler, num_processes=2, process_index=r, split_batches=True))
    assert [a + b for a, b in zip(*halves)] == e1
    assert not set(i for b in halves[0] for i in b) & set(i for b in halves[1] for i in b)


# ----------------------------------------------------------------------------- hub
def test_push_to_hub_offline_fails_before_training(tmp_path, monkeypatch):
    from modeling_mpm.training import train

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = _tiny(tmp_path / "run")
    from modeling_mpm.errors import MPMInputError

    with pytest.raises(MPMInputError, match="--push-to-hub .*offline"):
        train(cfg, push_to_hub="someone/mpm-test")
    assert not (tmp_path / "run").exists()  # nothing was started


def test_cli_rejects_bad_input(tmp_path, capsys):
    from modeling_mpm.cli.train import finetune_main, pretrain_main

    with pytest.raises(SystemExit):
        pretrain_main(["--set", "training.nope=1"])
    assert "training.nope" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        finetune_main(["--data", "synthetic"])  # no downstream task
    assert "--task" in capsys.readouterr().err
    assert pretrain_main(["--print_config", "--lr", "0.01", "--data", "synthetic"]) == 0
    assert "lr: 0.01" in capsys.readouterr().out


# ----------------------------------------------------------------------------- flip TTA
class _Recorder(torch.nn.Module):
    """A fake lifter: returns the 2D lifted by z = 1 and records its inputs."""

    def __init__(self):
        super().__init__()
        from modeling_mpm import MPMConfig

        self.config = MPMConfig(**TINY_MODEL)
        self.calls = []
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, pose_2d, spatial_mask=None):
        from types import SimpleNamespace

        self.calls.append((pose_2d.clone(), None if spatial_mask is None else spatial_mask.clone()))
        p3 = torch.cat([pose_2d, torch.ones_like(pose_2d[..., :1])], -1)
        if spatial_mask is not None:
            p3 = p3.masked_fill(spatial_mask[..., None], 0.0)
        return SimpleNamespace(pose_3d=p3, pose_3d_center=p3[:, 4:5])


def test_flip_tta_mirrors_input_and_mask():
    from modeling_mpm.evaluation import predict_lifting
    from modeling_mpm.skeleton import H36M_17

    m = _Recorder()
    x = torch.randn(2, 9, 17, 2)
    mask = torch.zeros(2, 9, 17, dtype=torch.bool)
    mask[:, :, [14, 15, 16]] = True  # right arm missing
    out = predict_lifting(m, x, mask, flip=True, mode="all_frames")
    (x0, m0), (x1, m1) = m.calls
    perm = torch.as_tensor(H36M_17.flip_permutation)
    assert torch.equal(x1[..., 0], -x0[:, :, perm, 0]) and torch.equal(x1[..., 1], x0[:, :, perm, 1])
    # the flipped pass hides the mirrored limb (left arm), so nothing about the right arm leaks
    assert m1[:, :, [11, 12, 13]].all() and not m1[:, :, [14, 15, 16]].any()
    # this fake model is flip-equivariant, so the average equals the plain pass
    plain = predict_lifting(_Recorder(), x, mask, flip=False, mode="all_frames")
    assert torch.allclose(out, plain, atol=1e-6)
    assert out[:, :, [14, 15, 16]].abs().sum() == 0


# ----------------------------------------------------------------------------- tasks end to end
def test_finetune_from_pretrained_transfers_encoder(tmp_path):
    from modeling_mpm import MPMForPoseLifting
    from modeling_mpm.training import build_model, train

    pre = train(_tiny(tmp_path / "pre"))
    assert os.path.isfile(tmp_path / "pre" / "model" / "README.md")
    cfg = _tiny(tmp_path / "lift", task="lift", init_from=str(tmp_path / "pre" / "model"), occlusion_prob=0.5)
    cfg = cfg.with_overrides(["model.dropout=0.0"])  # non-geometric keys may change
    lifter = build_model(cfg)
    assert isinstance(lifter, MPMForPoseLifting) and lifter.config.dropout == 0.0
    pre_sd = pre.model.state_dict()
    shared = [k for k in lifter.state_dict() if k.startswith("mpm.") and k in pre_sd]
    assert len(shared) > 10
    for k in shared:
        assert torch.equal(lifter.state_dict()[k], pre_sd[k]), k
    for v in lifter.state_dict().values():
        assert torch.isfinite(v.float()).all()
    r = train(cfg)
    assert set(r.eval_results) == {"plain", "flip"}
    assert r.eval_results["plain"]["mpjpe"] > 0 and "per_action" in r.eval_results["plain"]
    with pytest.raises(ValueError, match="encoder cannot be transferred"):
        build_model(cfg.with_overrides(["model.num_layers=2"]))
    with pytest.raises(ValueError, match="not a save_pretrained folder"):
        build_model(cfg.with_overrides([f"training.init_from={tmp_path / 'nothing'}"]))


@pytest.mark.parametrize("task", ["complete3d", "occluded2d"])
def test_completion_tasks_train_and_report(tmp_path, task):
    from modeling_mpm.training import train

    cfg = _tiny(tmp_path, task=task).with_overrides(["model.preset=completion_27", "model.num_frames=9",
                                                     "model.tube_manners_3d=[0, 6]", "model.tube_manners_2d=[1, 9]"])
    r = train(cfg)
    res = r.eval_results["completion"]
    if task == "complete3d":
        assert set(res["per_manner"]) == {"0", "6"}
        assert 0 < res["mpjpe_all"] < res["mpjpe_masked"]  # the diluted number is smaller
    else:
        assert res["mpjpe"] > 0 and res["error_2d_masked"] > 0
    card = open(tmp_path / "model" / "README.md").read()
    assert "model-index" in card


def test_mixed_precision_bf16_runs(tmp_path):
    from modeling_mpm.training import train

    r = train(_tiny(tmp_path, mixed_precision="bf16", max_steps=1, checkpoint_every=1), export=False)
    assert r.global_step == 1
    assert all(torch.isfinite(v.float()).all() for v in r.model.state_dict().values())
