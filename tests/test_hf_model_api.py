"""transformers conventions of the MPM models: auto classes (in-process and remote code), attention
implementations, output flags, unknown keyword arguments, the pre-training -> lifter transfer and
gradient checkpointing."""

import json
import logging
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModel, AutoModelForPreTraining

from modeling_mpm import MPMConfig, MPMForMaskedPoseModeling, MPMForPoseLifting, MPMModel
from remote_code import BLOCK_PACKAGE  # noqa: E402


def _poses(cfg, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    p2 = torch.randn(batch, cfg.num_frames, cfg.num_joints, 2, generator=g) * 0.3
    p3 = torch.randn(batch, cfg.num_frames, cfg.num_joints, 3, generator=g) * 0.3
    p3[:, :, 0] = 0
    return p2, p3


def _tiny(**kw):
    base = dict(num_frames=27, num_layers=2, hidden_size=32, intermediate_size=64, num_attention_heads=4)
    base.update(kw)
    return MPMConfig(**base)


# ---------------------------------------------------------------------------- auto classes
def test_auto_model_from_config():
    cfg = _tiny()
    assert type(AutoModel.from_config(cfg)) is MPMModel
    assert type(AutoModelForPreTraining.from_config(cfg)) is MPMForMaskedPoseModeling
    # a config saved from a head class builds that class
    assert type(AutoModel.from_config(_tiny(architectures=["MPMForPoseLifting"]))) is MPMForPoseLifting


FOLDERS = {
    "encoder": (MPMModel, {}),
    "pretrain": (MPMForMaskedPoseModeling, {}),
    "lifter": (MPMForPoseLifting, {}),
    "completion": (MPMForMaskedPoseModeling, dict(mask_mode="tube", temporal_mask_ratio=0.0, decoder_layers=2)),
}
AUTO_MAPS = {
    "encoder": {"AutoModel": "MPMModel"},
    "pretrain": {"AutoModel": "MPMForMaskedPoseModeling", "AutoModelForPreTraining": "MPMForMaskedPoseModeling"},
    "lifter": {"AutoModel": "MPMForPoseLifting"},
    "completion": {"AutoModel": "MPMForMaskedPoseModeling", "AutoModelForPreTraining": "MPMForMaskedPoseModeling"},
}

REMOTE = BLOCK_PACKAGE + textwrap.dedent(
    """
    import json, sys, importlib.abc
    import numpy as np, torch
    import transformers
    spec = json.loads(sys.argv[1])
    out = {}
    for kind, (folder, auto_classes, p2) in spec.items():
        for auto in auto_classes:
            m = getattr(transformers, auto).from_pretrained(folder, trust_remote_code=True).eval()
            x = torch.from_numpy(np.load(p2))
            with torch.no_grad():
                y = m(pose_2d=x)
            first = y[0] if not hasattr(y, "last_hidden_state") else y.last_hidden_state
            first = y.pose_3d_center if hasattr(y, "pose_3d_center") else (y.pose_2d if hasattr(y, "pose_2d") else first)
            out[kind + ":" + auto] = [type(m).__name__, first.numpy().tolist()]
    assert "modeling_mpm" not in sys.modules
    print(json.dumps(out))
    """
)


def test_every_folder_loads_the_same_in_process_and_remote(tmp_path):
    """encoder / pre-training / lifter / completion folders: every auto class in auto_map gives the
    same class and outputs in-process and from remote code (modeling_mpm blocked)."""
    spec, want = {}, {}
    for kind, (cls, kw) in FOLDERS.items():
        torch.manual_seed(0)
        model = cls(_tiny(**kw)).eval()
        folder = tmp_path / kind
        model.save_pretrained(folder)
        auto_map = json.loads((folder / "config.json").read_text())["auto_map"]
        assert auto_map.pop("AutoConfig") == "configuration_mpm.MPMConfig"
        assert {k: v.split(".")[-1] for k, v in auto_map.items()} == AUTO_MAPS[kind]
        p2, _ = _poses(model.config)
        np.save(tmp_path / f"{kind}.npy", p2.numpy())
        spec[kind] = (str(folder), sorted(auto_map), str(tmp_path / f"{kind}.npy"))
        for auto in sorted(auto_map):
            import transformers

            m = getattr(transformers, auto).from_pretrained(folder).eval()
            assert type(m).__name__ == AUTO_MAPS[kind][auto]
            with torch.no_grad():
                y = m(pose_2d=p2)
            first = getattr(y, "pose_3d_center", None)
            first = first if first is not None else getattr(y, "pose_2d", None)
            first = first if first is not None else y.last_hidden_state
            want[f"{kind}:{auto}"] = [type(m).__name__, first.numpy()]
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"), PYTHONPATH="",
               OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", REMOTE, json.dumps(spec)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert sorted(got) == sorted(want)
    for key, (name, values) in want.items():
        assert got[key][0] == name, key
        np.testing.assert_allclose(np.array(got[key][1]), values, atol=1e-6, err_msg=key)


def test_resaved_transfer_writes_a_fresh_auto_map(tmp_path):
    """A lifter built from a pre-training folder must not keep the pre-training auto_map entries."""
    MPMForMaskedPoseModeling(_tiny()).save_pretrained(tmp_path / "pt")
    lifter = MPMForPoseLifting.from_pretrained(tmp_path / "pt")
    lifter.save_pretrained(tmp_path / "lift")
    cfg = json.loads((tmp_path / "lift" / "config.json").read_text())
    assert cfg["architectures"] == ["MPMForPoseLifting"]
    assert cfg["auto_map"] == {"AutoConfig": "configuration_mpm.MPMConfig", "AutoModel": "modeling_mpm.MPMForPoseLifting"}


# ---------------------------------------------------------------------------- attention / outputs
def test_attention_implementations_are_truthful_and_agree():
    cfg = _tiny()
    torch.manual_seed(0)
    model = MPMForPoseLifting(cfg).eval()
    assert model.config._attn_implementation == "sdpa"
    p2, _ = _poses(cfg)
    mask = torch.zeros(2, 27, 17, dtype=torch.bool)
    mask[:, ::3, 4] = True
    with torch.no_grad():
        sdpa = model(pose_2d=p2, spatial_mask=mask)
        with pytest.raises(ValueError, match="eager"):
            model(pose_2d=p2, output_attentions=True)
        model.set_attn_implementation("eager")
        assert model.config._attn_implementation == "eager"
        eager = model(pose_2d=p2, spatial_mask=mask, output_attentions=True)
    torch.testing.assert_close(eager.pose_3d, sdpa.pose_3d, atol=2e-6, rtol=0)
    torch.testing.assert_close(eager.pose_3d_center, sdpa.pose_3d_center, atol=2e-6, rtol=0)
    assert len(eager.attentions) == cfg.num_layers
    for w in eager.attentions:
        assert w.shape == (2, cfg.num_attention_heads, 27, 27)
        torch.testing.assert_close(w.sum(-1), torch.ones(2, cfg.num_attention_heads, 27))


def test_attn_implementation_at_load(tmp_path):
    MPMForPoseLifting(_tiny()).save_pretrained(tmp_path / "m")
    for impl in ("eager", "sdpa"):
        m = MPMForPoseLifting.from_pretrained(tmp_path / "m", attn_implementation=impl)
        assert m.config._attn_implementation == impl
        assert all(a.config._attn_implementation == impl for a in m.modules() if type(a).__name__ == "MPMAttention")


def test_eager_attention_ignores_padding_tokens():
    """With samples keeping different numbers of frames the padded keys get zero weight."""
    cfg = _tiny()
    model = MPMModel(_tiny(attn_implementation="eager")).eval()
    p2, _ = _poses(cfg)
    temporal = torch.zeros(2, 27, dtype=torch.bool)
    temporal[0, :10] = True  # sample 0 keeps 17 frames, sample 1 all 27
    with torch.no_grad():
        out = model(pose_2d=p2, temporal_mask=temporal, output_attentions=True, output_hidden_states=True)
    assert out.padding_mask is not None and int(out.padding_mask[0].sum()) == 10
    for w in out.attentions:
        assert float(w[0, :, :, 17:].abs().max()) == 0.0
    assert len(out.hidden_states) == cfg.num_layers + 1
    assert torch.equal(out.hidden_states[-1], out.last_hidden_state)


def test_hidden_states_and_return_dict():
    cfg = _tiny()
    torch.manual_seed(0)
    model = MPMForMaskedPoseModeling(cfg).eval()
    p2, p3 = _poses(cfg)
    with torch.no_grad():
        out = model(pose_2d=p2, pose_3d=p3, output_hidden_states=True)
        enc = model.mpm(pose_3d=p3, output_hidden_states=True)
        plain = model(pose_2d=p2, pose_3d=p3)
        tup = model(pose_2d=p2, pose_3d=p3, return_dict=False)
    assert len(out.hidden_states_2d) == len(out.hidden_states_3d) == cfg.num_layers + 1
    torch.testing.assert_close(out.hidden_states_3d[-1], enc.last_hidden_state)
    for a, b in zip(out.hidden_states_3d, enc.hidden_states):
        torch.testing.assert_close(a, b)
    assert plain.hidden_states_2d is None and plain.attentions_2d is None
    assert isinstance(tup, tuple)
    torch.testing.assert_close(tup[0], plain.loss)
    torch.testing.assert_close(tup[3], plain.pose_2d)  # loss, loss_2d, loss_3d (no loss_lift), pose_2d
    # the config's defaults are honoured
    model.config.return_dict = False
    model.config.output_hidden_states = True
    with torch.no_grad():
        tup = model.mpm(pose_2d=p2)
    assert isinstance(tup, tuple) and len(tup) == 2 and len(tup[1]) == cfg.num_layers + 1


@pytest.mark.parametrize("cls, kwargs", [
    (MPMForPoseLifting, {"lables": 1}),
    (MPMForMaskedPoseModeling, {"labels": 1}),
    (MPMModel, {"attention_mask": 1}),
])
def test_unknown_keyword_arguments_raise(cls, kwargs):
    model = cls(_tiny()).eval()
    p2, _ = _poses(model.config)
    with pytest.raises(TypeError, match=next(iter(kwargs))):
        model(pose_2d=p2, **kwargs)


# ---------------------------------------------------------------------------- transfer
class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _load_messages(fn):
    from transformers.utils import logging as hf_logging

    handler = _Records()
    log = logging.getLogger("transformers")
    log.addHandler(handler)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_warning()  # other tests (CLIs) may have silenced transformers
    try:
        fn()
    finally:
        hf_logging.set_verbosity(verbosity)
        log.removeHandler(handler)
    return "\n".join(handler.messages)


def test_pretraining_to_lifter_transfer_is_quiet_but_a_wrong_folder_warns(tmp_path):
    torch.manual_seed(0)
    pre = MPMForMaskedPoseModeling(_tiny())
    pre.save_pretrained(tmp_path / "pt")
    box = {}
    text = _load_messages(lambda: box.setdefault("m", MPMForPoseLifting.from_pretrained(tmp_path / "pt")))
    assert "UNEXPECTED" not in text and "MISSING" not in text, text
    lifter = box["m"]
    assert torch.equal(lifter.mpm.layers[0].attention.q_proj.weight, pre.mpm.layers[0].attention.q_proj.weight)
    assert torch.equal(lifter.mpm.position_embedding, pre.mpm.position_embedding)
    # a pre-training folder that lost encoder weights still warns
    sd = load_file(tmp_path / "pt" / "model.safetensors")
    save_file({k: v for k, v in sd.items() if not k.startswith("mpm.layers.0.")},
              str(tmp_path / "pt" / "model.safetensors"), metadata={"format": "pt"})
    text = _load_messages(lambda: MPMForPoseLifting.from_pretrained(tmp_path / "pt"))
    assert "MISSING" in text and "mpm.layers.0.attention.q_proj.weight" in text
    # a lifter folder missing its reduce weights warns (the transfer allowance does not apply)
    MPMForPoseLifting(_tiny()).save_pretrained(tmp_path / "lift")
    sd = load_file(tmp_path / "lift" / "model.safetensors")
    save_file({k: v for k, v in sd.items() if not k.startswith("reduce.")},
              str(tmp_path / "lift" / "model.safetensors"), metadata={"format": "pt"})
    text = _load_messages(lambda: MPMForPoseLifting.from_pretrained(tmp_path / "lift"))
    assert "MISSING" in text and "reduce.layers." in text


# ---------------------------------------------------------------------------- checkpointing
@pytest.mark.parametrize("cls", [MPMForPoseLifting, MPMForMaskedPoseModeling])
def test_gradient_checkpointing_same_gradients(cls):
    cfg = _tiny()
    torch.manual_seed(0)
    model = cls(cfg).train()  # dropout on: checkpointing must replay the same dropout masks
    p2, p3 = _poses(cfg)
    calls = []
    model.mpm.layers[0].attention.register_forward_hook(lambda *a: calls.append(1))

    def grads():
        model.zero_grad()
        torch.manual_seed(1)
        out = model(pose_2d=p2, labels=p3) if cls is MPMForPoseLifting else model(pose_2d=p2, pose_3d=p3)
        out.loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    plain = grads()
    n = len(calls)  # encoder passes per forward (1, or 2 for the 2D + 3D masked model)
    assert n >= 1
    assert model.supports_gradient_checkpointing
    with pytest.warns(FutureWarning) if hasattr(model, "activation_checkpointing_enable") else _nullcontext():
        model.gradient_checkpointing_enable()
    checkpointed = grads()
    assert len(calls) == 3 * n  # forward + recomputation in backward
    assert plain.keys() == checkpointed.keys() and len(plain) > 50
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], atol=1e-6, rtol=1e-5, msg=name)
    model.gradient_checkpointing_disable()
    grads()
    assert len(calls) == 4 * n


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False
