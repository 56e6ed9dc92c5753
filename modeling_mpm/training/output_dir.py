"""The training output folder: refuse to mix two runs, and one run at a time.

:func:`claim_output_dir` is called once at the start of :func:`~modeling_mpm.training.train`:

* a folder that already holds files is refused unless the run resumes (``--resume``) or
  ``--overwrite_output_dir`` is given; otherwise a new run would overwrite the old run's
  ``model/`` and ``best_model/``, its checkpoint pruning would keep the old run's higher step
  numbers and a later ``--resume`` would silently continue the old run;
* a training run writes the run manifest :data:`MANIFEST_NAME` (``mpm_run.json``) into its folder
  before anything else; ``--resume`` and ``--overwrite_output_dir`` accept a non-empty folder only
  when it holds that manifest (a folder some other program or person filled is never resumed over
  or cleared), and never the working directory or a folder above it;
* ``--overwrite_output_dir`` deletes the previous run's outputs (only the names the trainer
  writes: :data:`RUN_OUTPUTS`) before starting, other files are left alone;
* no run output is written through a symbolic link: a run output name that is a link is refused
  (files are replaced with ``os.replace`` or opened with ``O_NOFOLLOW``);
* ``.<name>.tmp-*`` / ``.<name>.old-*`` leftovers of a killed run are removed or moved back
  (:func:`~modeling_mpm.training.checkpoint.recover_interrupted_writes`);
* the main process holds an exclusive lock on ``<output_dir>/.mpm-train.lock``
  (:class:`~modeling_mpm.atomic.ExclusiveLock`, ``fcntl.flock``) for the whole run, so a second
  run into the same folder fails at once. The lock belongs to the process: it is released when the
  run ends or the process dies (SIGKILL included), so a killed run can be resumed without removing
  anything by hand.
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
    """``os.open`` that refuses a symbolic link at ``path`` (``O_NOFOLLOW``) with
    :class:`OutputDirError`."""
    if os.path.islink(path):
        raise OutputDirError(f"{path} is a symbolic link; training never writes through links: remove it or "
                             "choose another --output_dir")
    try:
        return os.open(path, flags | _O_NOFOLLOW, mode)
    except OSError as e:
        if os.path.islink(path):
            raise OutputDirError(f"{path} is a symbolic link; training never writes through links: remove it or "
                                 "choose another --output_dir") from None
        raise


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
    """Raise :class:`OutputDirError` (a ``ValueError``) when ``output_dir`` is a file or a link,
    holds files and the run neither resumes nor overwrites, or holds files but is not a training
    run's folder (no :data:`MANIFEST_NAME`) or holds the working directory while the run resumes
    or overwrites. Writes nothing."""
    if os.path.islink(output_dir):
        raise OutputDirError(f"output_dir {output_dir} is a symbolic link; give the real folder")
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise OutputDirError(f"output_dir {output_dir} is a file, not a folder")
    found = _contents(output_dir)
    if not found:
        return
    shown = ", ".join(found[:6]) + (", ..." if len(found) > 6 else "")
    if not resume and not overwrite:
        raise OutputDirError(
            f"output_dir {output_dir} is not empty ({shown}); pass --resume to continue the run in it, "
            "--overwrite_output_dir to delete its previous outputs and start over, or choose another "
            "--output_dir")
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
    """Check ``output_dir`` (:func:`check_output_dir`), take its lock and, with ``overwrite``
    and no ``resume``, delete the previous run's :data:`RUN_OUTPUTS`; then write the run
    manifest :data:`MANIFEST_NAME` (``task`` is recorded in it).

    Call on every process: the main process decides and the verdict is shared, so every rank
    raises the same :class:`OutputDirError` (a ``ValueError``) instead of waiting forever.
    Returns the lock (main process) or None; :meth:`OutputDirLock.release` it when the run ends.
    """
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

        shared = [error]
        broadcast_object_list(shared, from_process=0)
        error = shared[0]
    if error is not None:
        raise OutputDirError(error)
    return lock
