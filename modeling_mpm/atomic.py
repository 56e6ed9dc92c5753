"""Atomic writes and the one lock every writer of the package uses (standard library only).

* :func:`atomic_write_file` / :func:`atomic_write_dir`: ``write(tmp)`` fills a temporary file or folder next to
  the target, then ``os.replace`` puts it in place: the target is always the complete old or new one. A symbolic
  link at the target is refused, never written through.
* Temporary names: ``.<name>.tmp-<hex>`` (being written; a file may carry an extension after it) and
  ``.<name>.old-<hex>`` (the previous folder during the swap); :func:`recover_replaced` tidies a killed writer's.
* :class:`ExclusiveLock`: one writer per target, an exclusive ``flock`` on a lock file holding the owner's pid;
  the kernel drops it when its process dies, so a killed writer's lock file is simply taken over.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from typing import Callable, List, Optional

from .errors import MPMInputError

__all__ = ["atomic_write_file", "atomic_write_text", "atomic_write_dir", "replace_dir", "recover_replaced",
           "leftover_names", "temp_path", "ExclusiveLock", "exclusive_lock", "LockBusyError"]

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_LEFTOVER_RE = re.compile(r"^\.(.+)\.(tmp|old)-[0-9a-f]+(\.[A-Za-z0-9]+)?$")  # optional suffix: see temp_path


def temp_path(final: str, kind: str = "tmp", token: Optional[str] = None, suffix: str = "") -> str:
    """``<folder>/.<name>.<kind>-<token><suffix>`` next to ``final`` (``kind``: ``tmp`` or ``old``; ``token``:
    lowercase hex, random by default; ``suffix``: e.g. an extension a writer needs)."""
    if kind not in ("tmp", "old") or (token is not None and not re.fullmatch(r"[0-9a-f]+", token)):
        raise ValueError(f"bad temporary name kind {kind!r} / token {token!r}")
    parent = os.path.dirname(os.path.abspath(final))
    name = os.path.basename(os.path.normpath(final))
    return os.path.join(parent, f".{name}.{kind}-{token or uuid.uuid4().hex[:8]}{suffix}")


def _refuse_link(path: str) -> None:
    if os.path.islink(path):
        raise MPMInputError(f"{path} is a symbolic link; files are never written through links: remove the link "
                            "or choose another output path")


def _fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW)
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - folders on some file systems
        pass
    finally:
        os.close(fd)


def atomic_write_file(path: str, write: Callable[[str], None], *, suffix: str = "") -> str:
    """Call ``write(tmp)`` (a new empty file next to ``path``, ending in ``suffix``), fsync it and ``os.replace`` it
    onto ``path``. A link at ``path`` is refused (``MPMInputError``); on any error the temporary file is deleted
    and ``path`` is untouched. Returns ``path``."""
    path = os.fspath(path)
    _refuse_link(path)
    if os.path.isdir(path):
        raise MPMInputError(f"{path} is a folder; give an output file name")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = temp_path(path, suffix=suffix)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW, 0o644))
    try:
        write(tmp)
        _fsync_path(tmp)
        _refuse_link(path)
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.remove(tmp)
    return path


def atomic_write_text(path: str, text: str) -> str:
    """:func:`atomic_write_file` of ``text`` (UTF-8, line ends written as given)."""
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)

    return atomic_write_file(path, write)


def _fsync_tree(path: str) -> None:
    for dirpath, _, files in os.walk(path):
        for name in files:
            full = os.path.join(dirpath, name)
            if not os.path.islink(full):
                _fsync_path(full)


def replace_dir(tmp: str, final_dir: str) -> str:
    """Swap the complete folder ``tmp`` into ``final_dir``; an existing ``final_dir`` is moved to ``.<name>.old-<hex>``
    first and deleted after (a kill between the two renames is undone by :func:`recover_replaced`)."""
    _refuse_link(final_dir)
    _fsync_tree(tmp)
    old = None
    if os.path.exists(final_dir):
        old = temp_path(final_dir, "old")
        os.replace(final_dir, old)
    os.replace(tmp, final_dir)
    if old is not None:
        _remove(old)
    return final_dir


def atomic_write_dir(final_dir: str, write: Callable[[str], None]) -> str:
    """Call ``write(tmp_dir)`` (a new empty folder next to ``final_dir``) and swap it in with :func:`replace_dir`;
    on an error the temporary folder is deleted and ``final_dir`` is untouched. Returns ``final_dir``."""
    final_dir = os.fspath(final_dir)
    _refuse_link(final_dir)
    os.makedirs(os.path.dirname(os.path.abspath(final_dir)), exist_ok=True)
    tmp = temp_path(final_dir)
    os.makedirs(tmp)
    try:
        write(tmp)
        replace_dir(tmp, final_dir)
    finally:
        if os.path.lexists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return final_dir


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.remove(path)  # a file or a link (never followed)
        except FileNotFoundError:
            pass


def leftover_names(parent: str) -> List[str]:
    """The names in folder ``parent`` that have ``.<name>.tmp-*`` / ``.<name>.old-*`` leftovers."""
    if not os.path.isdir(parent):
        return []
    return sorted({m.group(1) for m in map(_LEFTOVER_RE.match, os.listdir(parent)) if m})


def recover_replaced(final_dir: str, is_complete: Optional[Callable[[str], bool]] = None, what: str = "") -> List[str]:
    """Tidy what a killed writer left next to ``final_dir`` (call while holding its lock); one line per action.

    ``.<name>.tmp-*`` is deleted. ``.<name>.old-*`` is moved back when ``final_dir`` is missing and
    ``is_complete(old)`` holds (default: always), else deleted. Links are removed, never followed. ``what`` names
    the folder in the messages (e.g. ``"the previous data set "``)."""
    parent = os.path.dirname(os.path.abspath(final_dir))
    name = os.path.basename(os.path.normpath(final_dir))
    if not os.path.isdir(parent):
        return []
    done: List[str] = []
    entries = sorted(n for n in os.listdir(parent) if (m := _LEFTOVER_RE.match(n)) and m.group(1) == name)
    for kind in ("tmp", "old"):
        for n in entries:
            path = os.path.join(parent, n)
            if _LEFTOVER_RE.match(n).group(2) != kind:
                continue
            if kind == "tmp":
                _remove(path)
                done.append(f"removed the unfinished write {path}")
            elif (not os.path.lexists(final_dir) and os.path.isdir(path) and not os.path.islink(path)
                  and (is_complete is None or is_complete(path))):
                os.replace(path, final_dir)
                done.append(f"restored {final_dir} from the interrupted replacement {path}")
            else:
                _remove(path)
                done.append(f"removed {what}{path} left by an interrupted replacement")
    return done


class LockBusyError(MPMInputError):
    """Another process holds the lock (``pid``: its process id when known)."""

    def __init__(self, message: str, pid: Optional[int] = None):
        super().__init__(message)
        self.pid = pid


class ExclusiveLock:
    """An exclusive lock on the file ``path`` for this process, taken at construction (a context manager, or call
    :meth:`release`): ``fcntl.flock`` on ``path`` (``O_NOFOLLOW``), holding the owner's pid.

    A second holder is refused at once with ``on_busy(pid)`` (an exception; default :class:`LockBusyError`); with
    ``reentrant`` one in the same process shares the lock (the outermost release frees it). Without ``fcntl``
    (Windows) the file is created with ``O_EXCL``, so a killed owner's file must be removed by hand there.
    """

    _held: dict = {}  # path -> [fd, depth] for this process

    def __init__(self, path: str, on_busy: Optional[Callable[[Optional[int]], Exception]] = None,
                 reentrant: bool = False):
        self.path = os.path.abspath(os.fspath(path))
        self._on_busy = on_busy or (lambda pid: LockBusyError(
            f"{self.path} is held by {f'process {pid}' if pid else 'another process'}; wait for it to finish", pid))
        self._released = False
        held = self._held.get(self.path)
        if held is not None:
            if not reentrant:
                self._released = True
                raise self._on_busy(os.getpid())
            held[1] += 1
            return
        _refuse_link(self.path)
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self._held[self.path] = [self._acquire(), 1]

    def _busy(self, fd: int) -> Exception:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            pid = int(os.read(fd, 32).decode("ascii", "replace").strip() or "0") or None
        except (OSError, ValueError):
            pid = None
        os.close(fd)
        return self._on_busy(pid)

    def _acquire(self) -> int:
        flags = os.O_RDWR | os.O_CREAT | _O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            try:
                fd = os.open(self.path, flags | os.O_EXCL, 0o644)
            except FileExistsError:
                raise self._busy(os.open(self.path, os.O_RDONLY)) from None
            os.write(fd, str(os.getpid()).encode("ascii"))
            return fd
        for _ in range(100):
            try:
                fd = os.open(self.path, flags, 0o644)
            except OSError:
                _refuse_link(self.path)
                raise
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise self._busy(fd) from None
            try:
                now = os.stat(self.path, follow_symlinks=False)
            except FileNotFoundError:
                now = None
            mine = os.fstat(fd)
            if now is not None and (now.st_ino, now.st_dev) == (mine.st_ino, mine.st_dev):
                os.ftruncate(fd, 0)
                os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
                return fd
            os.close(fd)  # the owner deleted this file while releasing it: lock the new one
        raise self._on_busy(None)  # pragma: no cover - lost the race 100 times

    def release(self) -> None:
        """Give the lock back (the outermost holder in this process deletes the file)."""
        if self._released:
            return
        self._released = True
        held = self._held.get(self.path)
        if held is None:
            return
        held[1] -= 1
        if held[1] == 0:
            del self._held[self.path]
            if os.name != "posix":  # pragma: no cover - an open file cannot be removed there
                os.close(held[0])
            try:
                os.remove(self.path)  # while still locked: a waiter that opened it retries on the new file
            except OSError:
                pass
            if os.name == "posix":
                os.close(held[0])

    def __enter__(self) -> "ExclusiveLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def exclusive_lock(path: str, on_busy: Optional[Callable[[Optional[int]], Exception]] = None,
                   reentrant: bool = False) -> ExclusiveLock:
    """``with exclusive_lock(path): ...``: see :class:`ExclusiveLock`."""
    return ExclusiveLock(path, on_busy, reentrant)
