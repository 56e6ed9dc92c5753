"""Export an :class:`MPMForPoseLifting` to ONNX (``mpm export-onnx``).

    mpm export-onnx --model DIR --output lifter.onnx [--opset 17] [--no-mask] [--no-check] [--int8 lifter.int8.onnx]

The graph takes one window batch and returns both heads:

* inputs: ``pose_2d`` float32 ``(batch, num_frames, J, 2)`` normalised screen coordinates and,
  unless ``--no-mask``, ``spatial_mask`` bool ``(batch, num_frames, J)`` (True = missing joint);
* outputs: ``pose_3d`` ``(batch, num_frames, J, 3)`` (all-frames head) and ``pose_3d_center``
  ``(batch, 1, J, 3)`` (centre-frame head), metres, root-relative, root joint 0.

The batch axis is dynamic; the window length is the model's ``num_frames``. Windowing of long
sequences (edge padding, seq2frame / seq2seq) is as in :mod:`modeling_mpm.inference`. The export
uses the TorchScript exporter (``dynamo=False``, no ``onnxscript`` needed) and, with
``check=True``, compares onnxruntime against PyTorch on random inputs.
"""

from __future__ import annotations

import os
import warnings
from typing import Dict

import numpy as np
import torch

from .atomic import atomic_write_file

__all__ = ["export_onnx", "check_onnx", "quantize_onnx_int8"]


class _LifterForExport(torch.nn.Module):
    def __init__(self, model, with_mask: bool):
        super().__init__()
        self.model = model
        self.with_mask = with_mask
        self.root = model.config.get_skeleton().root if hasattr(model.config, "get_skeleton") else 0

    def forward(self, pose_2d, spatial_mask=None):
        out = self.model(pose_2d=pose_2d, spatial_mask=spatial_mask if self.with_mask else None)
        p, c = out.pose_3d, out.pose_3d_center
        if self.root is not None:  # root exactly 0, as the pipeline returns it
            keep = torch.ones(p.shape[-2], 1, dtype=p.dtype)
            keep[self.root] = 0
            p, c = p * keep, c * keep
        return p, c


def _example(model, batch: int, with_mask: bool, seed: int = 0):
    cfg = model.config
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, cfg.num_frames, cfg.num_joints, 2, generator=g) * 2 - 1
    m = torch.rand(batch, cfg.num_frames, cfg.num_joints, generator=g) < 0.15
    return (x, m) if with_mask else (x,)


def export_onnx(model, path: str, opset: int = 17, with_mask: bool = True, check: bool = True,
                atol: float = 1e-4) -> Dict[str, float]:
    """Export ``model`` (an :class:`MPMForPoseLifting`) to ``path`` with a dynamic batch axis.

    ``opset`` >= 14; ``with_mask``: include the ``spatial_mask`` input; ``check``: compare onnxruntime with PyTorch
    on batches of 1 and 3 within ``atol`` metres. Returns ``{"max_abs_diff": ...}`` from the check (else ``{}``).
    """
    if not hasattr(model, "config") or not hasattr(model.config, "num_frames"):
        raise TypeError(f"export_onnx needs an MPMForPoseLifting, got {type(model).__name__}")
    if type(model).__name__ != "MPMForPoseLifting":
        raise TypeError(f"export_onnx exports MPMForPoseLifting models, got {type(model).__name__}")
    _require_onnx()
    was_training = model.training
    model.eval()
    wrapper = _LifterForExport(model, with_mask).eval()
    args = _example(model, 2, with_mask)
    names = ["pose_2d", "spatial_mask"] if with_mask else ["pose_2d"]
    dyn = {n: {0: "batch"} for n in names + ["pose_3d", "pose_3d_center"]}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about the input checks (constant here)
            atomic_write_file(path, lambda tmp: torch.onnx.export(  # never a half-written .onnx
                wrapper, args, tmp, input_names=names, output_names=["pose_3d", "pose_3d_center"],
                dynamic_axes=dyn, opset_version=opset, dynamo=False,
            ), suffix=".onnx")
    finally:
        model.train(was_training)
    return check_onnx(model, path, with_mask=with_mask, atol=atol) if check else {}


def _require_onnx() -> None:
    """The ``onnx`` package torch's exporter needs, else a sentence saying how to get it."""
    try:
        import onnx  # noqa: F401
    except ImportError as err:
        from .errors import MPMInputError

        raise MPMInputError(f"exporting to ONNX needs the onnx package, which is not importable ({err}): "
                            "pip install 'modeling-mpm[onnx]' (or pip install onnx onnxruntime)") from None


def check_onnx(model, path: str, with_mask: bool = True, atol: float = 1e-4) -> Dict[str, float]:
    """Compare onnxruntime with PyTorch on random windows (batches 1 and 3); raises if they differ."""
    try:
        import onnxruntime as ort
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("checking the export needs onnxruntime: pip install onnxruntime") from e
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    wrapper = _LifterForExport(model, with_mask).eval()
    worst = 0.0
    was_training = model.training
    model.eval()
    try:
        for batch in (1, 3):
            args = _example(model, batch, with_mask, seed=batch)
            with torch.no_grad():
                ref = [t.numpy() for t in wrapper(*args)]
            feeds = {"pose_2d": args[0].numpy()}
            if with_mask:
                feeds["spatial_mask"] = args[1].numpy()
            got = sess.run(["pose_3d", "pose_3d_center"], feeds)
            for r, o in zip(ref, got):
                if r.shape != o.shape:
                    raise RuntimeError(f"ONNX output shape {o.shape} != PyTorch {r.shape}")
                worst = max(worst, float(np.abs(r - o).max()))
    finally:
        model.train(was_training)
    if not worst <= atol:
        raise RuntimeError(f"ONNX and PyTorch outputs differ by {worst:.3g} > {atol}")
    return {"max_abs_diff": worst}


def quantize_onnx_int8(path: str, output: str) -> str:
    """Dynamic int8 quantisation of an exported lifter (onnxruntime's ``quantize_dynamic``: int8 MatMul / Gemm
    weights; CPU). Returns ``output``. Accuracy and speed: ``bench/bench_precision.py`` (``ort_int8``)."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("int8 quantisation of the ONNX graph needs onnxruntime: pip install onnxruntime") from e
    if not os.path.isfile(path):
        raise ValueError(f"ONNX file not found: {path}")
    import logging

    level = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # its "consider pre-processing" notice
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            atomic_write_file(output, lambda tmp: quantize_dynamic(path, tmp, weight_type=QuantType.QInt8),
                              suffix=".onnx")
    finally:
        logging.getLogger().setLevel(level)
    return output
