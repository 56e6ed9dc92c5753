"""Reduced-precision inference for MPM models: bfloat16 / float16 weights with the norms kept in float32, and int8
dynamic quantisation of the linear layers.

* ``from_pretrained(dir, dtype=torch.bfloat16)`` (or the pipeline's ``dtype``) keeps the BatchNorm parameters and
  statistics float32 (``_keep_in_fp32_modules_strict``); :func:`cast_model` does the same for a model in memory.
* Inputs are cast to the model's dtype at the joint embedding; the transformers' residual stream, LayerNorm
  statistics and the pose heads' outputs are float32; attention, linear layers and convolutions run in the
  model's dtype.
* :func:`quantize_int8` replaces every ``nn.Linear`` by a dynamically quantised int8 one
  (``torch.ao.quantization.quantize_dynamic``); the 1x1 convolutions stay float32. Measured speed and accuracy:
  ``bench/bench_precision.py`` and ``docs/inference.md``.
"""

from __future__ import annotations

import copy
import warnings
from typing import Optional, Union

import torch
from torch import nn

__all__ = ["cast_model", "quantize_int8", "prepare_model", "resolve_dtype", "QUANTIZE_OPTIONS"]

QUANTIZE_OPTIONS = ("int8",)
_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
           "float16": torch.float16, "fp16": torch.float16}


def resolve_dtype(dtype: Union[str, torch.dtype, None]) -> Optional[torch.dtype]:
    """``torch.dtype`` from a dtype or its name (``"bfloat16"``, ``"bf16"``...); ``None``/``"auto"`` -> ``None``."""
    if dtype is None or (isinstance(dtype, str) and dtype == "auto"):
        return None
    if isinstance(dtype, str):
        if dtype.replace("torch.", "") not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(set(_DTYPES))} or a torch floating dtype, got {dtype!r}")
        return _DTYPES[dtype.replace("torch.", "")]
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype (e.g. torch.bfloat16), got {dtype!r}")
    return dtype


def cast_model(model: nn.Module, dtype: Union[str, torch.dtype], copy_model: bool = True) -> nn.Module:
    """``model`` in ``dtype`` (``torch.bfloat16``, ``torch.float16`` or ``torch.float32``) with the BatchNorm
    parameters and statistics kept float32; a deep copy unless ``copy_model=False``. Poses stay float32."""
    dtype = resolve_dtype(dtype)
    if dtype is None:
        return model
    if getattr(model, "_mpm_quantized", None):
        raise ValueError("an int8-quantised model cannot be cast to another dtype; quantise a float32 model instead")
    out = copy.deepcopy(model) if copy_model else model
    out.to(dtype)
    for module in out.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.float()
    return out


def quantize_int8(model: nn.Module, copy_model: bool = True) -> nn.Module:
    """Dynamic int8 quantisation of every ``nn.Linear`` of a float32 CPU model (int8 weights per tensor, activations
    quantised on the fly; eval only, no training or export). Returns a copy unless ``copy_model=False``."""
    p = next(iter(model.parameters()), None)
    if p is not None and (p.dtype != torch.float32 or p.device.type != "cpu"):
        raise ValueError(f"int8 dynamic quantisation needs a float32 CPU model, got {p.dtype} on {p.device}")
    try:
        from torch.ao.quantization import quantize_dynamic
    except ImportError as e:  # pragma: no cover - depends on the torch build
        raise ImportError("int8 dynamic quantisation needs torch.ao.quantization (torch <= 2.13)") from e
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization deprecation notice (torchao replaces it)
        out = quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8, inplace=not copy_model)
    out.eval()
    out._mpm_quantized = "int8"
    return out


def prepare_model(model: nn.Module, dtype: Union[str, torch.dtype, None] = None, quantize: Optional[str] = None,
                  copy_model: bool = True) -> nn.Module:
    """Apply an inference ``dtype`` (ignored when it is the model's) and/or ``quantize="int8"`` (needs float32)."""
    if quantize is not None and quantize not in QUANTIZE_OPTIONS:
        raise ValueError(f"quantize must be one of {QUANTIZE_OPTIONS} or None, got {quantize!r}")
    dtype = resolve_dtype(dtype)
    current = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    if quantize == "int8":
        if dtype not in (None, torch.float32):
            raise ValueError(f"quantize='int8' runs a float32 model with int8 linear layers; got dtype={dtype}")
        return quantize_int8(model if current == torch.float32 else cast_model(model, torch.float32), copy_model)
    if dtype is not None and dtype != current:
        return cast_model(model, dtype, copy_model)
    return model
