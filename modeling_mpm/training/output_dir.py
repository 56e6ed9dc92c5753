"""The training output folder: refuse to mix two runs, and one run at a time.

:func:`claim_output_dir` (called once by :func:`~modeling_mpm.training.train`) refuses a folder holding
files unless the run resumes or overwrites, and then only a training run's own folder (holding the
manifest :data:`MANIFEST_NAME`), never the working directory; ``--overwrite_output_dir`` deletes only
:data:`RUN_OUTPUTS`. No run output is written through a symbolic link. Leftovers of a killed run are
tidied, and the main process holds an exclusive ``fcntl.flock`` on ``<output_dir>/.mpm-train.lock``
for the whole run (released when the process dies, so a killed run can be resumed at once).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from typing import Optional

from ..atomic import ExclusiveLock, atomic_write_text
from ..errors import MPMInputError

__all__ = ["LOCK_NAME", "MANIFEST_NAME", "RUN_OUTPUTS", "OutputDirError", "OutputDirLock", "check_output_dir",
           "claim_output_dir", "is_run_dir", "write_manifest", "open_nofollow"]

logger = logging.getLogger(__name__)

LOCK_NAME = ".mpm-train.lock"
#: what a training run writes into its output folder (removed by ``--overwrite_output_dir``)
RUN_OUTPUTS = ("checkpoints", "best_model", "model", "tensorboard", "config.yaml", "train.log", "metrics.csv")
#: the run manifest: written first by every training run; marks a folder as a training run's own
MANIFEST_NAME = "mpm_run.json"
_MANIFEST_KIND = "modeling_mpm training run"


class OutputDirError(MPMInputError):
    """The output folder holds another run, or another process is writing to it."""


_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def open_nofollow(path: str, flags: int, mode: int = 0o644) -> int:
    """``os.open`` that refuses a symbolic link at ``path`` (``O_NOFOLLOW``) with :class:`OutputDirError`."""
    try:
        if not os.path.islink(path):
            return os.open(path, flags | _O_NOFOLLOW, mode)
    except OSError:
        if not os.path.islink(path):
            raise
    raise OutputDirError(f"{path} is a symbolic link; training never writes through links: remove it or "
                         "choose another --output_dir") from None


def is_run_dir(output_dir: str) -> bool:
    """True when ``output_dir`` holds the manifest a training run writes (:data:`MANIFEST_NAME`,
    a regular file, not a link, naming this package)."""
    path = os.path.join(output_dir, MANIFEST_NAME)
    if os.path.islink(path) or not os.path.isfile(path):
        return False
    try:
        with open(path, "r", encoding="utf-8") as f:
            data = json.loads(f.read(1 << 16))
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(data, dict) and data.get("kind") == _MANIFEST_KIND


def write_manifest(output_dir: str, task: str) -> None:
    """Write :data:`MANIFEST_NAME` (atomically; a link there is refused, never followed)."""
    path = os.path.join(output_dir, MANIFEST_NAME)
    if is_run_dir(output_dir):
        return
    atomic_write_text(path, json.dumps({"kind": _MANIFEST_KIND, "task": task,
                                        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
                                       indent=1) + "\n")


class OutputDirLock(ExclusiveLock):
    """The run's :class:`~modeling_mpm.atomic.ExclusiveLock` on ``<output_dir>/.mpm-train.lock``;
    :meth:`release` (or process exit) frees it."""

    def __init__(self, output_dir: str):
        super().__init__(os.path.join(output_dir, LOCK_NAME), on_busy=lambda pid: OutputDirError(
            f"another training run{f' (process {pid})' if pid else ''} is writing to {output_dir}; "
            "wait for it to finish or choose another --output_dir"))


def _contents(output_dir: str):
    if not os.path.isdir(output_dir):
        return []
    return sorted(n for n in os.listdir(output_dir) if n != LOCK_NAME)


def check_output_dir(output_dir: str, resume=None, overwrite: bool = False) -> None:
    """Raise :class:`OutputDirError` (a ``ValueError``) when ``output_dir`` may not be used (see the
    module docstring). Writes nothing."""
    if os.path.islink(output_dir):
        raise OutputDirError(f"output_dir {output_dir} is a symbolic link; give the real folder")
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise OutputDirError(f"output_dir {output_dir} is a file, not a folder")
    found = _contents(output_dir)
    if not found:
        return
    shown = ", ".join(found[:6]) + (", ..." if len(found) > 6 else "")
    if not resume and not overwrite:
        raise OutputDirError(f"output_dir {output_dir} is not empty ({shown}); pass --resume to continue the run in "
                             "it, --overwrite_output_dir to delete its previous outputs and start over, or choose "
                             "another --output_dir")
    flag = "--overwrite_output_dir" if overwrite and not resume else "--resume"
    from ..data.io import holds_working_directory

    if holds_working_directory(output_dir):
        raise OutputDirError(f"output_dir {output_dir} is the working directory (or holds it); {flag} never "
                             "resumes over or clears it: choose a new --output_dir")
    if not is_run_dir(output_dir):
        import glob

        legacy = glob.glob(os.path.join(glob.escape(output_dir), "checkpoints", "step_*", "checkpoint_complete.json"))
        hint = (f" (if it is a run of a modeling_mpm older than {MANIFEST_NAME} and yours, write "
                f"{{\"kind\": \"{_MANIFEST_KIND}\"}} into {os.path.join(output_dir, MANIFEST_NAME)} to claim it)"
                if legacy else "")
        raise OutputDirError(
            f"output_dir {output_dir} holds files ({shown}) but no {MANIFEST_NAME}, so no training run of this "
            f"package wrote it; {flag} only resumes or clears a run's own folder: choose a new --output_dir{hint}")
    for name in RUN_OUTPUTS + (MANIFEST_NAME,):
        if os.path.islink(os.path.join(output_dir, name)):
            raise OutputDirError(f"{os.path.join(output_dir, name)} is a symbolic link; training never writes "
                                 "through links: remove it or choose a new --output_dir")


def claim_output_dir(output_dir: str, *, resume=None, overwrite: bool = False,
                     accelerator=None, task: str = "") -> Optional[OutputDirLock]:
    """:func:`check_output_dir`, take the lock, with ``overwrite`` and no ``resume`` delete the previous
    :data:`RUN_OUTPUTS`, then write the manifest (recording ``task``). Call on every process: every rank
    raises the main one's :class:`OutputDirError`. Returns the lock (main process) or None."""
    main = accelerator is None or accelerator.is_main_process
    lock, error = None, None
    if main:
        try:
            check_output_dir(output_dir, resume, overwrite)
            os.makedirs(output_dir, exist_ok=True)
            lock = OutputDirLock(output_dir)
            from .checkpoint import recover_interrupted_writes

            for line in recover_interrupted_writes(output_dir):
                logger.warning("%s", line)
            if overwrite and not resume:
                for name in RUN_OUTPUTS:
                    path = os.path.join(output_dir, name)
                    if os.path.isdir(path) and not os.path.islink(path):
                        shutil.rmtree(path)
                    elif os.path.lexists(path):
                        os.remove(path)
            write_manifest(output_dir, task)
        except (ValueError, OSError) as e:
            if lock is not None:
                lock.release()
                lock = None
            error = str(e) if isinstance(e, ValueError) else f"output_dir {output_dir}: {e}"
    if accelerator is not None and accelerator.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        error = broadcast_object_list([error], from_process=0)[0]
    if error is not None:
        raise OutputDirError(error)
    return lock
