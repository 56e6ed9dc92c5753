"""Load a saved model for one task, refusing folders whose task heads would be new random weights: the loader of
the commands that use a model (``mpm lift`` / ``complete`` / ``eval`` / ``export-onnx``). ``from_pretrained`` of a
pre-training folder stays the way to start fine-tuning.
"""

from __future__ import annotations

import os
from typing import Optional

__all__ = ["MODEL_KINDS", "load_model_for_task", "saved_model_class"]

#: class name -> what the folder is, in words
MODEL_KINDS = {
    "MPMForPoseLifting": "a fine-tuned lifter (MPMForPoseLifting)",
    "MPMForMaskedPoseModeling": "a pre-training / completion model (MPMForMaskedPoseModeling)",
    "MPMModel": "a bare encoder without task heads (MPMModel)",
}

_HINT = {
    "MPMForPoseLifting": "fine-tune it first: train/finetune.py --task lift --init_from {src}",
    "MPMForMaskedPoseModeling": "use a pre-trained MPM folder or one fine-tuned with --task complete3d/occluded2d",
}


def _kind(name: Optional[str]) -> str:
    return MODEL_KINDS.get(name, f"a {name} model" if name else "a model of unknown kind (no 'architectures' in "
                                                                 "config.json)")


def saved_model_class(src: str) -> Optional[str]:
    """The class a folder (or Hub id) was saved from (``config.architectures[0]``), or None."""
    from .configuration_mpm import MPMConfig

    cfg = MPMConfig.from_pretrained(src)
    archs = list(getattr(cfg, "architectures", None) or [])
    return archs[0] if archs else None


def load_model_for_task(src: str, class_name: str, command: str = "this command"):
    """``<class_name>.from_pretrained(src)`` that refuses to create task heads from nothing: ``ValueError`` (naming
    the kind found and the one ``command`` needs) for a folder saved from another class or missing any weight of
    ``class_name``, and for unreadable folders and files, with the reason."""
    import modeling_mpm

    cls = getattr(modeling_mpm, class_name)
    src = os.fspath(src)
    if os.path.isfile(src):
        raise ValueError(f"{src}: is a file; pass the model folder (with config.json and model.safetensors)")
    if not os.path.isdir(src) and (os.path.isabs(src) or src.startswith(("./", "../", "~"))):
        raise ValueError(f"{src}: no such model folder")
    try:
        found = saved_model_class(src)
    except (OSError, ValueError, TypeError, RecursionError) as e:
        raise ValueError(f"{src}: not a readable model folder ({_first_line(e)})") from None
    if found is not None and found != class_name and found in MODEL_KINDS:
        hint = _HINT.get(class_name, "").format(src=src)
        raise ValueError(f"{src} is {_kind(found)}; {command} needs {_kind(class_name)}"
                         + (f" ({hint})" if hint else ""))
    try:
        model, info = cls.from_pretrained(src, output_loading_info=True)
    except Exception as e:  # OSError, SafetensorError (truncated file), RuntimeError (shape mismatch)
        if isinstance(e, (KeyboardInterrupt, MemoryError)):
            raise
        raise ValueError(f"{src}: could not load the weights ({type(e).__name__}: {_first_line(e)}); "
                         "the folder is incomplete or its model.safetensors is truncated") from None
    missing = list(info.get("missing_keys", ()))
    if missing:
        parts = sorted({k.split(".")[0] for k in missing})
        raise ValueError(f"{src} is {_kind(found)} without the weights of {', '.join(parts)} "
                         f"({len(missing)} tensors); {command} needs {_kind(class_name)}")
    return model


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
