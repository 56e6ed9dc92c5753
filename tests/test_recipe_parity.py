"""One training step of this package against one step of the authors' code.

The fixture ``tests/fixtures/official_train_step`` holds, for pre-training, lifter fine-tuning,
the refine stage, 3D completion and occluded 2D -> 3D: the authors' initial weights (their state
dict layout), the batch, the masks, and what ONE training step of their code produced (train-mode
outputs, loss, gradients, updated parameters and BatchNorm running statistics). How it was made:
``tests/fixtures/official_train_step/README.md``.

Here the weights are converted with :mod:`modeling_mpm.convert_official`, one step of this
package's training code runs (``training.tasks.compute_loss`` + ``training.trainer.build_optimizer``)
and everything is compared to <= 1e-5.
"""

import json
import pathlib

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from modeling_mpm import masking
from modeling_mpm.convert_official import convert_official_state_dict, rename_official_key
from modeling_mpm.training import tasks
from modeling_mpm.training.config import RunConfig, load_config
from modeling_mpm.training.trainer import build_optimizer

FIX = pathlib.Path(__file__).parent / "fixtures" / "official_train_step"
CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "configs"
ATOL = 1e-5


@pytest.fixture(scope="module")
def ref():
    return dict(np.load(FIX / "train_step.npz"))


def _meta():
    return json.loads((FIX / "meta.json").read_text())


def _sd(name):
    return load_file(str(FIX / f"{name}.safetensors"))


def _paper(config_name, lr):
    """The shipped paper config's loss weights (model section) after checking its learning rate
    is the authors' one."""
    cfg = load_config(str(CONFIGS / config_name))
    assert cfg.training.lr == lr, f"{config_name}: lr {cfg.training.lr}, the authors use {lr}"
    return {k: v for k, v in cfg.model.items() if k.startswith("loss_weight") or k.startswith("lift_")}


def _convert(init, paper=None, refine_state_dict=None, **overrides):
    """Converted model in train mode, dropout off (the fixture ran with dropout off), with the
    loss weights of a shipped paper config."""
    model = convert_official_state_dict(init, refine_state_dict=refine_state_dict)
    for k, v in dict(dropout=0.0, mlp_dropout=0.0, lifter_mlp_dropout=0.0, **(paper or {}), **overrides).items():
        setattr(model.config, k, v)
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
        if hasattr(m, "dropout") and isinstance(m.dropout, float):
            m.dropout = 0.0
    return model.train()


def _step(task, model, batch, lr, masks, monkeypatch, **kw):
    """One optimizer step of the package: compute_loss, backward, build_optimizer's Adam step.
    ``masks``: the sampler results compute_loss must draw, in order."""
    queue = list(masks)

    def fake(*args, **kwargs):
        return queue.pop(0)

    monkeypatch.setattr(masking, "sample_spatiotemporal_mask", fake)  # what masking.sample_masks calls
    monkeypatch.setattr(masking, "sample_tube_mask", fake)
    cfg = RunConfig({"training": {"task": task, "lr": lr}})
    optimizer, scheduler = build_optimizer(model, cfg, steps_per_epoch=10)
    captured = {}
    orig = model.forward

    def spy(*a, **k):
        out = orig(*a, **k)
        captured["out"] = out
        return out

    monkeypatch.setattr(model, "forward", spy)
    loss, logs = tasks.compute_loss(task, model, batch, model.config, torch.Generator().manual_seed(0), **kw)
    assert not queue, "compute_loss drew fewer masks than expected"
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()
    return loss, captured["out"]


def _close(got, want, what):
    got = torch.as_tensor(got).detach().to(torch.float64)
    want = torch.as_tensor(want).to(torch.float64).reshape(got.shape)
    err = (got - want).abs().max().item() if got.numel() else 0.0
    assert err <= ATOL, f"{what}: max abs difference {err:.3g} > {ATOL}"


def _check_state(model, after, grads, lr, other_module=None):
    """Updated parameters, BatchNorm running statistics and gradients against the authors'.

    Adam's first step moves a parameter by ``lr * g / (|g| + 1e-8)``: where the authors' gradient
    is rounding noise (``|g| < 1e-7``, e.g. the bias of a conv right before a train-mode
    BatchNorm, or of an attention key) the step is noise of size up to ``lr`` in both codes, so
    those elements are only checked to move by at most ``lr``."""
    own = model.state_dict()
    grad_of = {rename_official_key(k): v for k, v in grads.items()}
    seen = set()
    for key, want in after.items():
        name = rename_official_key(key)
        if name is None or name not in own:
            continue
        seen.add(name)
        if name.endswith("num_batches_tracked"):
            assert int(own[name]) == int(want), f"{name}: {int(own[name])} BatchNorm updates, authors {int(want)}"
            continue
        got, want = own[name].double(), want.double().reshape(own[name].shape)
        if name in grad_of:
            noise = grad_of[name].reshape(got.shape).abs() < 1e-7
            assert float((got - want)[noise].abs().max()) <= 2 * lr if bool(noise.any()) else True
            got, want = got[~noise], want[~noise]
        _close(got, want, f"updated {name}")
    params = dict(model.named_parameters())
    for key, want in grads.items():
        name = rename_official_key(key)
        if name is None or name not in params:
            continue
        g = params[name].grad
        if g is None:  # no gradient = an all-zero one (e.g. the frame mask token when no frame is masked)
            assert float(want.abs().max()) == 0.0, f"{name} got no gradient (the authors' did)"
            continue
        _close(g, want, f"gradient of {name}")
    for name, p in params.items():  # nothing gets a gradient that the authors' step did not give one
        if other_module and name.startswith(other_module):
            continue  # checked by the caller
        if p.grad is not None and name not in {rename_official_key(k) for k in grads}:
            assert float(p.grad.abs().max()) == 0.0, f"{name} got a gradient the authors' step does not give"
    return seen


def _masks_st(ref, prefix, batch):
    s = torch.as_tensor(ref[f"{prefix}_spatial_mask_2d"]).expand(batch, -1, -1)
    t = torch.as_tensor(ref[f"{prefix}_temporal_mask_2d"]).expand(batch, -1)
    s3 = torch.as_tensor(ref[f"{prefix}_spatial_mask_3d"]).expand(batch, -1, -1)
    t3 = torch.as_tensor(ref[f"{prefix}_temporal_mask_3d"]).expand(batch, -1)
    return [(s, t), (s3, t3)]


# ---------------------------------------------------------------------------- pre-training
def test_pretraining_step_matches_the_authors(ref, monkeypatch):
    model = _convert(_sd("pretrain_init"), _paper("pretrain_h36m17.yaml", 1e-4), share_mask_across_batch=True)
    p2, p3 = torch.as_tensor(ref["pretrain_pose_2d"]), torch.as_tensor(ref["pretrain_pose_3d"])
    # split pairing: the first half of the windows feeds the 2D pass, the second half the 3D pass
    batch = {"pose_2d": torch.cat([p2, torch.zeros_like(p2)]), "pose_3d": torch.cat([torch.zeros_like(p3), p3])}
    loss, out = _step("pretrain", model, batch, 1e-4, _masks_st(ref, "pretrain", 4), monkeypatch, pairing="split")
    _close(out.pose_2d, ref["pretrain_out_2d"], "train-mode 2D reconstruction")
    _close(out.pose_3d, ref["pretrain_out_3d"], "train-mode 3D reconstruction")
    _close(loss, ref["pretrain_loss"], "loss 5*L2D + 2*L3D")
    seen = _check_state(model, _sd("pretrain_after"), _sd("pretrain_grads"), 1e-4)
    assert "head_3d.norm.running_mean" in seen and "mpm.joint_embedding_2d.norm.running_var" in seen


# ---------------------------------------------------------------------------- lifter
def _lift_batch(ref, tag):
    p3 = torch.as_tensor(ref[f"{tag}_pose_3d"]).clone()
    p3[:, :, 0] = 0  # this package's windows are root-relative (the authors zero the root in the step)
    return {"pose_2d": torch.as_tensor(ref[f"{tag}_pose_2d"]), "pose_3d": p3}


def test_lifter_fine_tuning_step_matches_the_authors(ref, monkeypatch):
    model = _convert(_sd("lift_init"), _paper("finetune_lift_h36m17.yaml", 7e-4))
    loss, out = _step("lift", model, _lift_batch(ref, "lift"), 7e-4, [], monkeypatch)
    _close(out.pose_3d, ref["lift_out_all"], "train-mode all-frames output")
    _close(out.pose_3d_center, ref["lift_out_center"], "train-mode centre-frame output")
    _close(loss, ref["lift_loss"], "loss MPJPE(all frames) + MPJPE(centre)")
    _check_state(model, _sd("lift_after"), _sd("lift_grads"), 7e-4)


# ---------------------------------------------------------------------------- completion
def test_3d_completion_step_matches_the_authors(ref, monkeypatch):
    model = _convert(_sd("completion_init"), _paper("complete3d_27.yaml", 2e-4))
    p3 = torch.as_tensor(ref["complete3d_pose_3d"])
    tube = torch.as_tensor(ref["complete3d_spatial_mask"])[:, None].expand(-1, p3.shape[1], -1)
    batch = {"pose_2d": torch.as_tensor(ref["complete3d_pose_2d"]), "pose_3d": p3}
    loss, out = _step("complete3d", model, batch, 2e-4, [tube], monkeypatch)
    _close(out.pose_3d, ref["complete3d_out_3d"], "train-mode 3D completion")
    _close(loss, ref["complete3d_loss"], "loss MPJPE(3D)")
    _check_state(model, _sd("complete3d_after"), _sd("complete3d_grads"), 2e-4)


def test_occluded_2d_step_matches_the_authors(ref, monkeypatch):
    model = _convert(_sd("completion_init"), _paper("occluded2d_27.yaml", 2e-4))
    p2 = torch.as_tensor(ref["occluded2d_pose_2d"])
    tube = torch.as_tensor(ref["occluded2d_spatial_mask"])[:, None].expand(-1, p2.shape[1], -1)
    batch = {"pose_2d": p2, "pose_3d": torch.as_tensor(ref["occluded2d_pose_3d"])}
    loss, out = _step("occluded2d", model, batch, 2e-4, [tube], monkeypatch)
    _close(out.pose_2d, ref["occluded2d_out_2d"], "train-mode 2D recovery")
    _close(out.pose_3d_from_2d, ref["occluded2d_out_3d"], "train-mode 3D lifted from occluded 2D")
    _close(loss, ref["occluded2d_loss"], "loss 2*L3D + L2D")
    _check_state(model, _sd("occluded2d_after"), _sd("occluded2d_grads"), 2e-4)


# ---------------------------------------------------------------------------- refine stage
def test_refine_stage_step_matches_the_authors(ref, monkeypatch):
    """The authors' post-refine stage: lifter + refine module trained end to end (lr 1e-4) on the
    refined centre frame only; the refiner back-projects the centre-frame 2D at the predicted
    depth (the ground-truth root depth) with the camera intrinsics."""
    model = convert_official_state_dict(_sd("lift_init"), refine_state_dict=_sd("refine_head_init"))
    assert model.config.use_refine and model.config.refine_hidden_size == _meta()["refine_units"]
    model = _convert(_sd("lift_init"), refine_state_dict=_sd("refine_head_init"))
    batch = _lift_batch(ref, "refine")
    batch["intrinsics"] = torch.as_tensor(ref["refine_intrinsics"])
    batch["root_3d"] = torch.as_tensor(ref["refine_pose_3d"])[:, :, 0].clone()  # camera-frame root, metres
    loss, out = _step("refine", model, batch, 1e-4, [], monkeypatch)
    _close(out.pose_3d, ref["refine_out_all"], "train-mode all-frames output")
    _close(out.pose_3d_center, ref["refine_out_refined"], "train-mode refined centre frame")
    _close(loss, ref["refine_loss"], "loss MPJPE(refined centre)")
    _check_state(model, _sd("refine_after"), _sd("refine_grads"), 1e-4, other_module="refiner.")
    got = model.refiner.state_dict()
    for key, want in _sd("refine_head_after").items():
        _close(got["mlp." + key[len("module.post_refine."):]], want, f"updated refiner {key}")
