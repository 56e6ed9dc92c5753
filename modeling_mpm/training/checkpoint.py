"""Atomic, resumable training checkpoints written with ``accelerator.save_state``.

A checkpoint ``<output_dir>/checkpoints/step_<NNNNNNNN>/`` holds what ``save_state`` writes for the
engine (model, ``optimizer.bin``, ``scheduler.bin``, ``random_states_<rank>.pkl``, and
``custom_checkpoint_<i>.pkl``: the trainer's random streams of every rank), ``trainer_state.json``
(``global_step``, ``epoch``, ``step_in_epoch``, best value, world size, run config) and, written last,
``checkpoint_complete.json`` with the size and SHA-256 of every other file. It is written into
``checkpoints/.step_<N>.tmp-0`` and renamed when complete, so a ``step_*`` folder is always whole;
``--resume`` skips checkpoints that fail :func:`verify_checkpoint` (:func:`latest_checkpoint`).
Loading runs no code: every ``.pkl`` / ``.bin`` is first read with ``weights_only=True`` and refused
with :class:`CheckpointError` if it holds more than plain data. (Accelerate's
``automatic_checkpoint_naming`` is not used: it writes in place and counts saves, not steps.)
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

__all__ = ["capture_rng_state", "restore_rng_state", "list_checkpoints", "latest_checkpoint", "write_checkpoint",
           "read_trainer_state", "load_checkpoint", "prune_checkpoints", "verify_checkpoint",
           "recover_interrupted_writes", "CheckpointError", "COMPLETE_MARKER"]

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
    """The newest checkpoint under ``root`` that passes :func:`verify_checkpoint` (None when there is
    none); newer broken ones are skipped with a warning, and :class:`CheckpointError` lists why when
    none is complete."""
    problems = []
    for path in reversed(list_checkpoints(root)):
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
    """:func:`~modeling_mpm.atomic.recover_replaced` for every ``.<name>.tmp-*`` / ``.old-*`` leftover in
    ``output_dir`` and its ``checkpoints/`` (hold the run's lock). Returns one line per action."""
    done: List[str] = []
    for parent in (output_dir, os.path.join(output_dir, "checkpoints")):
        for name in leftover_names(parent):
            done += recover_replaced(os.path.join(parent, name))
    return done


def write_checkpoint(root: str, step: int, *, accelerator, trainer_state: Dict[str, Any]) -> str:
    """Write checkpoint ``step`` with ``accelerator.save_state`` plus ``trainer_state.json``
    (collective: call on every rank). Returns its folder."""
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
    """Restore a checkpoint of :func:`write_checkpoint` (RNG states included) with
    ``accelerator.load_state`` on every rank, right before the loop starts. Returns the trainer state."""
    verify_checkpoint(path)
    state = read_trainer_state(path)
    if int(state.get("world_size", 1)) != accelerator.num_processes:
        raise ValueError(f"checkpoint {path} was written by {state.get('world_size')} process(es) but this run has "
                         f"{accelerator.num_processes}; resume with the same number of processes")
    rng_file = os.path.join(path, f"random_states_{accelerator.process_index}.pkl")
    if not os.path.isfile(rng_file):  # Accelerate would only log "Could not load random states"
        raise CheckpointError(f"checkpoint {path} has no {os.path.basename(rng_file)}: not a checkpoint of this "
                         "version of the package (or written by fewer processes)")
    from accelerate.utils import load as safe_load

    for name in sorted(os.listdir(path)):
        if name.endswith((".pkl", ".bin")) and os.path.isfile(os.path.join(path, name)):
            # Accelerate unpickles custom_checkpoint_* without restriction: read as plain data first
            try:
                safe_load(os.path.join(path, name), map_location="cpu")
            except Exception as err:
                raise CheckpointError(f"checkpoint {path}: refused to load {name}: it is unreadable or holds more "
                                 f"than tensors, numbers and containers ({type(err).__name__})") from None
    accelerator.load_state(path)
    return state


def prune_checkpoints(root: str, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints (main process only)."""
    for path in list_checkpoints(root)[:-keep] if keep > 0 else []:
        shutil.rmtree(path, ignore_errors=True)
