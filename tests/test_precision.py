"""Reduced precision (bfloat16 at the model boundary, norms in float32), int8 dynamic quantisation
and the seq2frame feature reuse across windows."""

import os

import numpy as np
import pytest
import torch
from transformers import pipeline

import modeling_mpm  # noqa: F401  (registers the pipelines)
import modeling_mpm.inference as inference
from modeling_mpm import MPMConfig, MPMForMaskedPoseModeling, MPMForPoseLifting
from modeling_mpm.modeling_mpm import MPMLayerNorm
from modeling_mpm.quantization import cast_model, prepare_model, quantize_int8, resolve_dtype


def _small_config(**kw):
    return MPMConfig(num_frames=27, hidden_size=64, intermediate_size=128, num_layers=2, num_attention_heads=8, **kw)


def _randomise_batchnorm(model, seed=0):
    """Non-trivial running statistics, so that eval-mode BatchNorm is a real affine map."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) * 1.5 + 0.5)
    return model


@pytest.fixture(scope="module")
def lifter():
    torch.manual_seed(0)
    return _randomise_batchnorm(MPMForPoseLifting(_small_config()).eval())


@pytest.fixture(scope="module")
def lifter_dir(lifter, tmp_path_factory):
    d = tmp_path_factory.mktemp("precision") / "lifter"
    lifter.save_pretrained(d)
    return str(d)


def _rel(a, b):
    """mean |a - b| / mean |b|"""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).mean() / np.abs(b).mean())


def _windows(seed=1, batch=4, frames=27):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, frames, 17, 2, generator=g) * 2 - 1


def test_from_pretrained_bf16_keeps_norms_float32_and_returns_float32(lifter, lifter_dir):
    model = MPMForPoseLifting.from_pretrained(lifter_dir, dtype=torch.bfloat16).eval()
    for name, p in model.named_parameters():
        is_batch_norm = name.split(".")[-2] in ("norm", "norm1", "norm2")
        assert p.dtype == (torch.float32 if is_batch_norm else torch.bfloat16), name
    for name, b in model.named_buffers():
        expected = torch.int64 if name.endswith("num_batches_tracked") else torch.float32
        assert b.dtype == expected, name
    x = _windows()
    with torch.inference_mode():
        ref, out = lifter(pose_2d=x), model(pose_2d=x)
    for key in ("pose_3d", "pose_3d_center"):
        assert out[key].dtype == torch.float32
        assert _rel(out[key], ref[key]) < 0.01, key


def test_bf16_masked_model_with_masks_returns_float32():
    torch.manual_seed(0)
    model = _randomise_batchnorm(MPMForMaskedPoseModeling(_small_config()).eval())
    bf16 = cast_model(model, torch.bfloat16)
    assert next(model.parameters()).dtype == torch.float32  # the original is left alone
    g = torch.Generator().manual_seed(3)
    pose = torch.randn(3, 27, 17, 3, generator=g) * 0.2
    mask = torch.rand(3, 27, 17, generator=g) < 0.2
    tmask = torch.rand(3, 27, generator=g) < 0.3
    with torch.inference_mode():
        ref = model(pose_3d=pose, spatial_mask=mask, temporal_mask=tmask)
        out = bf16(pose_3d=pose, spatial_mask=mask, temporal_mask=tmask)
    assert out.pose_3d.dtype == torch.float32 and out.loss.dtype == torch.float32
    assert _rel(out.pose_3d, ref.pose_3d) < 0.01


def test_legacy_layer_norm_statistics_match_var_mean_and_stay_float32():
    torch.manual_seed(0)
    ln = MPMLayerNorm(256)
    with torch.no_grad():
        ln.weight.uniform_(0.5, 1.5)
        ln.bias.normal_()
    x = torch.randn(4, 30, 256) * 3 + 1
    var, mean = torch.var_mean(x, dim=-1, keepdim=True, correction=1)
    expected = ln.bias * 1 + ln.weight * (x - mean) / (var.sqrt() + ln.eps)
    torch.testing.assert_close(ln(x), expected, rtol=1e-5, atol=1e-5)
    # a bfloat16 norm on the float32 residual stream: float32 statistics, bfloat16 output
    ln_bf16 = MPMLayerNorm(256).bfloat16()
    ln_bf16.load_state_dict(ln.state_dict())
    out = ln_bf16(x)
    assert out.dtype == torch.bfloat16
    ref = ln_bf16.bias.float() + ln_bf16.weight.float() * (x - mean) / (var.sqrt() + ln.eps)
    torch.testing.assert_close(out.float(), ref, rtol=1e-2, atol=1e-2)  # only the final bf16 rounding


def test_pipeline_dtype_and_device_from_folder_and_object(lifter, lifter_dir):
    kp = np.random.default_rng(0).uniform(0, 1000, size=(40, 17, 2))
    ref = pipeline("pose-lifting", model=lifter)(kp, image_size=(1000, 1000), keypoint_format="h36m")["pose_3d"]
    for kwargs in (dict(model=lifter_dir, dtype=torch.bfloat16), dict(model=lifter, dtype="bfloat16", device="cpu")):
        pipe = pipeline("pose-lifting", **kwargs)
        assert pipe.model.dtype == torch.bfloat16
        for mode in ("seq2frame", "seq2seq"):
            want = ref if mode == "seq2frame" else pipeline("pose-lifting", model=lifter)(
                kp, image_size=(1000, 1000), keypoint_format="h36m", mode=mode)["pose_3d"]
            out = pipe(kp, image_size=(1000, 1000), keypoint_format="h36m", mode=mode)["pose_3d"]
            assert out.dtype == np.float32 and out.shape == (40, 17, 3)
            assert _rel(out, want) < 0.01
    assert lifter.dtype == torch.float32  # the pipeline cast a copy


def test_int8_quantisation_replaces_linear_layers(lifter):
    q = quantize_int8(lifter)
    assert not any(type(m) is torch.nn.Linear for m in q.modules())
    assert any(type(m) is torch.nn.Linear for m in lifter.modules())  # a copy was quantised
    x = _windows(seed=2)
    with torch.inference_mode():
        ref, out = lifter(pose_2d=x), q(pose_2d=x)
    assert out.pose_3d_center.dtype == torch.float32
    err = _rel(out.pose_3d_center, ref.pose_3d_center)
    assert 0 < err < 0.05  # quantised (not identical), and close
    kp = np.random.default_rng(1).uniform(0, 1000, size=(30, 17, 2))
    pipe = pipeline("pose-lifting", model=lifter, quantize="int8")
    assert _rel(pipe(kp, image_size=(1000, 1000), keypoint_format="h36m")["pose_3d"],
                pipeline("pose-lifting", model=lifter)(kp, image_size=(1000, 1000), keypoint_format="h36m")["pose_3d"]) < 0.05


def test_precision_options_reject_bad_values(lifter):
    with pytest.raises(ValueError, match="quantize"):
        prepare_model(lifter, quantize="int4")
    with pytest.raises(ValueError, match="float32"):
        prepare_model(lifter, dtype=torch.bfloat16, quantize="int8")
    with pytest.raises(ValueError, match="float32 CPU model"):
        quantize_int8(cast_model(lifter, torch.bfloat16))
    with pytest.raises(ValueError, match="dtype must be one of"):
        resolve_dtype("bfloat8")
    with pytest.raises(TypeError, match="floating"):
        resolve_dtype(torch.int8)
    with pytest.raises(TypeError, match="unexpected"):
        pipeline("pose-lifting", model=lifter, quantise="int8")
    assert resolve_dtype("auto") is None and resolve_dtype("bf16") is torch.bfloat16


@pytest.mark.parametrize("frames", [5, 34])
def test_seq2frame_feature_reuse_matches_per_window_path(lifter, monkeypatch, frames):
    """Per-frame features computed once give the per-window result: edge padding (sequences shorter
    and longer than a window), missing joints and the flip pass included."""
    rng = np.random.default_rng(frames)
    x = rng.uniform(-1, 1, size=(frames, 17, 2)).astype(np.float32)
    missing = rng.random((frames, 17)) < 0.2
    x[missing & (rng.random((frames, 17)) < 0.5)] = np.nan  # some missing joints are NaN, some not
    assert inference._seq2frame_reuse_fns(lifter) is not None
    cases = [(None, False), (missing, True)]
    reused = [inference.lift_sequence(lifter, x if m is not None else np.nan_to_num(x), m, batch_size=16,
                                      flip_augmentation=f) for m, f in cases]
    monkeypatch.setattr(inference, "_seq2frame_reuse_fns", lambda model: None)
    for (m, f), got in zip(cases, reused):
        want = inference.lift_sequence(lifter, x if m is not None else np.nan_to_num(x), m, batch_size=16,
                                       flip_augmentation=f)
        assert np.abs(got - want).max() <= 1e-5


def test_seq2frame_reuse_is_skipped_for_models_with_a_refiner():
    torch.manual_seed(0)
    model = MPMForPoseLifting(_small_config(use_refine=True)).eval()
    assert inference._seq2frame_reuse_fns(model) is None


def test_onnx_int8_graph_is_smaller_and_close_to_pytorch(lifter, tmp_path):
    pytest.importorskip("onnx", exc_type=ImportError)  # the exporter needs it (as tests/test_export.py)
    ort = pytest.importorskip("onnxruntime")
    from modeling_mpm.export import export_onnx, quantize_onnx_int8

    fp32 = str(tmp_path / "lifter.onnx")
    export_onnx(lifter, fp32, with_mask=False)
    int8 = quantize_onnx_int8(fp32, str(tmp_path / "lifter.int8.onnx"))
    assert os.path.getsize(int8) < os.path.getsize(fp32)
    x = _windows(seed=4)
    with torch.inference_mode():
        ref = lifter(pose_2d=x).pose_3d_center.numpy().copy()
    ref[..., 0, :] = 0.0  # the exported graph zeroes the root
    out = ort.InferenceSession(int8, providers=["CPUExecutionProvider"]).run(["pose_3d_center"],
                                                                            {"pose_2d": x.numpy()})[0]
    assert 0 < _rel(out, ref) < 0.05
    with pytest.raises(ValueError, match="not found"):
        quantize_onnx_int8(str(tmp_path / "missing.onnx"), str(tmp_path / "x.onnx"))
