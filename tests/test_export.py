import numpy as np
import pytest
import torch

from modeling_mpm import MPMConfig, MPMForMaskedPoseModeling, MPMForPoseLifting
from modeling_mpm.cli import main as mpm
from modeling_mpm.export import export_onnx

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install modeling-mpm[onnx])")
pytest.importorskip("onnx", reason="onnx is not installed (pip install modeling-mpm[onnx])")


def tiny(**kw):
    return MPMConfig(num_frames=9, num_layers=1, hidden_size=32, intermediate_size=64, num_attention_heads=4,
                     reduce_strides=[3, 3], **kw)


@pytest.fixture(scope="module")
def lifter():
    torch.manual_seed(0)
    return MPMForPoseLifting(tiny()).eval()


def test_export_matches_pytorch_with_dynamic_batch(tmp_path, lifter):
    path = str(tmp_path / "lifter.onnx")
    info = export_onnx(lifter, path)
    assert info["max_abs_diff"] < 1e-4
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["pose_2d", "spatial_mask"]
    assert isinstance(sess.get_inputs()[0].shape[0], str)  # dynamic batch axis
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (5, 9, 17, 2)).astype(np.float32)
    m = rng.random((5, 9, 17)) < 0.3
    p3, pc = sess.run(None, {"pose_2d": x, "spatial_mask": m})
    with torch.no_grad():
        ref = lifter(pose_2d=torch.as_tensor(x), spatial_mask=torch.as_tensor(m))
    np.testing.assert_allclose(p3[:, :, 1:], ref.pose_3d.numpy()[:, :, 1:], atol=1e-4)
    np.testing.assert_allclose(pc[:, :, 1:], ref.pose_3d_center.numpy()[:, :, 1:], atol=1e-4)
    assert np.all(p3[:, :, 0] == 0) and pc.shape == (5, 1, 17, 3)
    # the mask input matters (a masked joint is not read)
    x2 = x.copy()
    x2[m] = 123.0
    p3b, _ = sess.run(None, {"pose_2d": x2, "spatial_mask": m})
    np.testing.assert_allclose(p3b, p3, atol=1e-5)


def test_export_without_mask_and_cli(tmp_path, lifter):
    lifter.save_pretrained(tmp_path / "model")
    out = tmp_path / "m.onnx"
    assert mpm(["export-onnx", "--model", str(tmp_path / "model"), "--output", str(out), "--no-mask"]) == 0
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["pose_2d"]


def test_export_rejects_other_models(tmp_path):
    with pytest.raises(TypeError, match="MPMForPoseLifting"):
        export_onnx(MPMForMaskedPoseModeling(tiny()), str(tmp_path / "x.onnx"))
