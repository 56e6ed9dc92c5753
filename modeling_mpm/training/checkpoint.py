"""Atomic, resumable training checkpoints written with ``accelerator.save_state``.

A checkpoint is a folder ``<output_dir>/checkpoints/step_<NNNNNNNN>/`` holding what
:meth:`accelerate.Accelerator.save_state` writes for the engine in use, plus the trainer's state:

* the model: ``model.safetensors`` (single process, DDP; FSDP and DeepSpeed write their own
  sharded files), ``optimizer.bin``, ``scheduler.bin`` (and ``scaler.pt`` with fp16);
* ``random_states_<rank>.pkl``: per-process global RNG states (Python ``random``, NumPy, torch
  CPU/CUDA) and Accelerate's accumulation step counter;
* ``custom_checkpoint_<i>.pkl``: the objects registered with
  ``accelerator.register_for_checkpointing`` - the trainer's per-process random streams (its
  ``torch.Generator`` for masks and flips, the training windows' camera stream), gathered from
  every rank into one file;
* ``trainer_state.json``: ``global_step``, ``epoch``, ``step_in_epoch`` (the next step to run),
  the best validation value so far, the world size and the run config;
* ``checkpoint_complete.json``: written last, the size and SHA-256 of every other file.

Everything is written into ``checkpoints/.step_<N>.tmp-0`` first and the folder is renamed with
``os.replace`` when complete (:func:`modeling_mpm.atomic.replace_dir`), so a folder named
``step_*`` is always whole, even after SIGKILL.
Before a checkpoint is used its files are checked against ``checkpoint_complete.json``
(:func:`verify_checkpoint`); ``--resume`` falls back to the newest checkpoint that passes
(:func:`latest_checkpoint`), so a checkpoint truncated later (a full disk, a partial copy) is
skipped with a warning instead of crashing the resumed run.

Loading runs no code from the files: every ``.pkl`` / ``.bin`` / ``.pt`` file is first read as
plain data (``weights_only=True``: tensors, numbers, strings and containers) and a file holding
anything else is refused with :class:`CheckpointError` before ``accelerator.load_state`` sees it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import shutil
from typing import Any, Dict, List, Optional

import numpy as np
import torch

from ..atomic import leftover_names, recover_replaced, replace_dir, temp_path
from ..errors import MPMInputError

__all__ = [
    "capture_rng_state",
    "restore_rng_state",
    "list_checkpoints",
    "latest_checkpoint",
    "write_checkpoint",
    "read_trainer_state",
    "load_checkpoint",
    "prune_checkpoints",
    "verify_checkpoint",
    "recover_interrupted_writes",
    "CheckpointError",
    "COMPLETE_MARKER",
]

logger = logging.getLogger(__name__)

_STEP_RE = re.compile(r"^step_(\d+)$")

#: file written last into every checkpoint: ``{"files": {name: {"bytes": n, "sha256": hex}}}``
COMPLETE_MARKER = "checkpoint_complete.json"


class CheckpointError(MPMInputError):
    """A checkpoint folder is incomplete, truncated or not in the expected format."""


def capture_rng_state(generators: Optional[Dict[str, torch.Generator]] = None) -> Dict[str, Any]:
    """Every RNG state that can influence training in this process."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        # as a tensor (not an ndarray) so that torch.load(weights_only=True) reads it back
        "numpy": (str(name), torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss),
                  float(cached)),
        "torch": torch.get_rng_state(),
        "generators": {k: g.get_state() for k, g in (generators or {}).items()},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Dict[str, Any], generators: Optional[Dict[str, torch.Generator]] = None) -> None:
    """Inverse of :func:`capture_rng_state`."""
    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    keys = keys.numpy() if torch.is_tensor(keys) else np.asarray(keys)
    np.random.set_state((name, keys.astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for k, g in (generators or {}).items():
        if k not in state["generators"]:
            raise ValueError(f"checkpoint has no state for generator {k!r}")
        g.set_state(state["generators"][k])


def list_checkpoints(root: str) -> List[str]:
    """Complete checkpoint folders under ``root``, oldest first."""
    if not os.path.isdir(root):
        return []
    found = []
    for name in os.listdir(root):
        m = _STEP_RE.match(name)
        if m and os.path.isfile(os.path.join(root, name, "trainer_state.json")):
            found.append((int(m.group(1)), os.path.join(root, name)))
    return [p for _, p in sorted(found)]


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_marker(path: str) -> None:
    """Record size and SHA-256 of every file in checkpoint folder ``path`` (call last)."""
    files = {}
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        if name != COMPLETE_MARKER and os.path.isfile(full):
            files[name] = {"bytes": os.path.getsize(full), "sha256": _sha256(full)}
    with open(os.path.join(path, COMPLETE_MARKER), "w", encoding="utf-8") as f:  # the folder is not yet in place
        json.dump({"files": files}, f, indent=1)


def verify_checkpoint(path: str) -> None:
    """Raise :class:`CheckpointError` unless every file listed in ``checkpoint_complete.json``
    is present with the recorded size and SHA-256 (and ``trainer_state.json`` is readable)."""
    marker = os.path.join(path, COMPLETE_MARKER)
    if not os.path.isfile(marker):
        raise CheckpointError(f"checkpoint {path} has no {COMPLETE_MARKER} (interrupted, or written by an "
                              "older version of the package that cannot be resumed safely)")
    try:
        with open(marker, "r", encoding="utf-8") as f:
            files = json.load(f)["files"]
        items = list(files.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
        raise CheckpointError(f"checkpoint {path}: unreadable {COMPLETE_MARKER} ({e})") from None
    if "trainer_state.json" not in files:
        raise CheckpointError(f"checkpoint {path}: {COMPLETE_MARKER} does not list trainer_state.json")
    for name, rec in items:
        full = os.path.join(path, name)
        if os.path.basename(name) != name or not os.path.isfile(full):
            raise CheckpointError(f"checkpoint {path}: {name} is missing")
        size = os.path.getsize(full)
        if size != rec.get("bytes"):
            raise CheckpointError(f"checkpoint {path}: {name} has {size} bytes, {rec.get('bytes')} were written "
                                  "(truncated or changed)")
        if _sha256(full) != rec.get("sha256"):
            raise CheckpointError(f"checkpoint {path}: {name} does not match its SHA-256 (corrupted or changed)")


def latest_checkpoint(root: str) -> Optional[str]:
    """The newest checkpoint under ``root`` that passes :func:`verify_checkpoint` (None when there
    is no checkpoint folder at all). Newer broken ones are skipped with a warning; when folders
    exist but none is complete, :class:`CheckpointError` says why each was rejected."""
    ckpts = list_checkpoints(root)
    problems = []
    for path in reversed(ckpts):
        try:
            verify_checkpoint(path)
        except CheckpointError as e:
            logger.warning("skipping checkpoint: %s", e)
            problems.append(str(e))
            continue
        return path
    if problems:
        raise CheckpointError(f"no complete checkpoint in {root}: " + "; ".join(problems))
    return None


def read_trainer_state(path: str) -> Dict[str, Any]:
    with open(os.path.join(path, "trainer_state.json"), "r", encoding="utf-8") as f:
        return json.load(f)


def recover_interrupted_writes(output_dir: str) -> List[str]:
    """Tidy what a killed run left in ``output_dir`` and its ``checkpoints/`` (call while holding
    its lock): :func:`~modeling_mpm.atomic.recover_replaced` for every name with ``.<name>.tmp-*`` /
    ``.<name>.old-*`` leftovers there. Returns one line per action."""
    done: List[str] = []
    for parent in (output_dir, os.path.join(output_dir, "checkpoints")):
        for name in leftover_names(parent):
            done += recover_replaced(os.path.join(parent, name))
    return done


def write_checkpoint(root: str, step: int, *, accelerator, trainer_state: Dict[str, Any]) -> str:
    """Write checkpoint ``step`` collectively (call on every rank) with ``accelerator.save_state``
    (the prepared model, optimizer, scheduler, scaler, RNG states and the objects registered for
    checkpointing) plus ``trainer_state.json``. Returns its folder."""
    final = os.path.join(root, f"step_{step:08d}")
    tmp = temp_path(final, token="0")  # one name every rank agrees on
    if accelerator.is_main_process:
        os.makedirs(root, exist_ok=True)
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
        os.makedirs(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(tmp)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        with open(os.path.join(tmp, "trainer_state.json"), "w", encoding="utf-8") as f:
            json.dump(trainer_state, f, indent=2)
        _write_marker(tmp)
        replace_dir(tmp, final)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(path: str, *, accelerator) -> Dict[str, Any]:
    """Restore a checkpoint written by :func:`write_checkpoint` into the prepared objects and the
    registered ones (every rank, with ``accelerator.load_state``). Returns the trainer state.

    Every ``*.pkl`` / ``*.bin`` file is first read as plain data (``weights_only``): Accelerate
    unpickles the registered objects without that restriction and only logs unreadable RNG
    states. The RNG states are restored too; call this right before the training loop starts.
    """
    verify_checkpoint(path)
    state = read_trainer_state(path)
    if int(state.get("world_size", 1)) != accelerator.num_processes:
        raise ValueError(
            f"checkpoint {path} was written by {state.get('world_size')} process(es) but this run has "
            f"{accelerator.num_processes}; resume with the same number of processes")
    rng_file = os.path.join(path, f"random_states_{accelerator.process_index}.pkl")
    if not os.path.isfile(rng_file):  # Accelerate would only log "Could not load random states"
        raise CheckpointError(f"checkpoint {path} has no {os.path.basename(rng_file)}: not a checkpoint of this "
                         "version of the package (or written by fewer processes)")
    from accelerate.utils import load as safe_load

    for name in sorted(os.listdir(path)):
        if name.endswith((".pkl", ".bin")) and os.path.isfile(os.path.join(path, name)):
            # Accelerate unpickles custom_checkpoint_* without restriction and skips unreadable RNG
            # states with a log line: read every pickle as plain data first (weights_only)
            try:
                safe_load(os.path.join(path, name), map_location="cpu")
            except Exception as err:
                raise CheckpointError(f"checkpoint {path}: refused to load {name}: it is unreadable or holds more "
                                 f"than tensors, numbers and containers ({type(err).__name__})") from None
    accelerator.load_state(path)
    return state


def prune_checkpoints(root: str, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints (main process only)."""
    ckpts = list_checkpoints(root)
    for path in ckpts[:-keep] if keep > 0 else []:
        shutil.rmtree(path, ignore_errors=True)
