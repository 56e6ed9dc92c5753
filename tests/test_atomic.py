"""modeling_mpm.atomic: atomic file / folder writes, recovery after a kill, the writers' lock."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from modeling_mpm.atomic import (ExclusiveLock, LockBusyError, atomic_write_dir, atomic_write_file,
                                 atomic_write_text, exclusive_lock, leftover_names, recover_replaced, temp_path)
from modeling_mpm.errors import MPMInputError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1"}


def _fill(text):
    def write(tmp):
        with open(os.path.join(tmp, "a.txt"), "w") as f:
            f.write(text)
    return write


def test_one_naming_scheme(tmp_path):
    t = temp_path(str(tmp_path / "model"))
    assert os.path.dirname(t) == str(tmp_path) and os.path.basename(t).startswith(".model.tmp-")
    assert os.path.basename(temp_path(str(tmp_path / "x.mp4"), "old", "ab", ".mp4")) == ".x.mp4.old-ab.mp4"
    for name in (".model.tmp-0", ".model.old-deadbeef", ".a.b.tmp-12", ".model2.old-1"):
        (tmp_path / name).mkdir()
    (tmp_path / ".model.tmp-1f.png").write_bytes(b"half")  # a killed render's temp file
    for name in (".model.tmp-xyz", ".model.old-", "model.tmp-1", ".lock"):  # not ours: never touched
        (tmp_path / name).mkdir()
    assert leftover_names(str(tmp_path)) == ["a.b", "model", "model2"]
    assert len(recover_replaced(str(tmp_path / "model"))) == 3
    assert sorted(os.listdir(tmp_path)) == [".a.b.tmp-12", ".lock", ".model.old-", ".model.tmp-xyz",
                                            ".model2.old-1", "model", "model.tmp-1"]


def test_atomic_write_dir_replaces_whole_and_keeps_the_old_one_on_error(tmp_path):
    out = tmp_path / "out"
    atomic_write_dir(str(out), _fill("one"))
    atomic_write_dir(str(out), _fill("two"))
    assert (out / "a.txt").read_text() == "two" and os.listdir(tmp_path) == ["out"]

    def fails(tmp):
        _fill("three")(tmp)
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write_dir(str(out), fails)
    assert (out / "a.txt").read_text() == "two" and os.listdir(tmp_path) == ["out"]  # the temp folder is gone


def test_atomic_write_file_replaces_whole_and_removes_its_temp_on_error(tmp_path):
    path = tmp_path / "r.json"
    atomic_write_text(str(path), "old")
    with pytest.raises(ValueError, match="boom"):
        atomic_write_file(str(path), lambda tmp: (open(tmp, "w").write("half"), int("boom")))
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["r.json"]
    seen = []
    atomic_write_file(str(tmp_path / "v.mp4"), lambda tmp: (seen.append(tmp), open(tmp, "w").write("x")),
                      suffix=".mp4")
    assert seen[0].endswith(".mp4") and os.path.basename(seen[0]).startswith(".v.mp4.tmp-")
    with pytest.raises(MPMInputError, match="is a folder"):
        atomic_write_text(str(tmp_path), "x")


def test_a_symlink_target_is_never_written(tmp_path):
    target = tmp_path / "theirs.txt"
    target.write_text("someone else's")
    (tmp_path / "f.txt").symlink_to(target)
    with pytest.raises(MPMInputError, match="symbolic link"):
        atomic_write_text(str(tmp_path / "f.txt"), "mine")
    folder = tmp_path / "their_folder"
    folder.mkdir()
    (folder / "keep").write_text("k")
    (tmp_path / "d").symlink_to(folder)
    with pytest.raises(MPMInputError, match="symbolic link"):
        atomic_write_dir(str(tmp_path / "d"), _fill("mine"))
    (tmp_path / ".lock").symlink_to(target)
    with pytest.raises(MPMInputError, match="symbolic link"):
        exclusive_lock(str(tmp_path / ".lock"))
    assert target.read_text() == "someone else's" and os.listdir(folder) == ["keep"]
    assert (tmp_path / "f.txt").is_symlink() and (tmp_path / "d").is_symlink()
    assert not [n for n in os.listdir(tmp_path) if ".tmp-" in n or ".old-" in n]


_KILLED_WRITER = textwrap.dedent("""
    import os, signal, sys
    from modeling_mpm.atomic import atomic_write_dir
    stage = sys.argv[2]
    real = os.replace
    def replace(src, dst):
        real(src, dst)
        if stage == "swap" and ".old-" in os.path.basename(dst):  # the old folder moved aside: die here
            os.kill(os.getpid(), signal.SIGKILL)
    os.replace = replace
    def write(tmp):
        open(os.path.join(tmp, "a.txt"), "w").write("new")
        if stage == "write":
            os.kill(os.getpid(), signal.SIGKILL)
    atomic_write_dir(sys.argv[1], write)
""")


def _killed(out, stage):
    r = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(out), stage], env=ENV, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]


def test_kill_between_the_two_renames_then_recover_restores_the_old_folder(tmp_path):
    out = tmp_path / "out"
    atomic_write_dir(str(out), _fill("old"))
    _killed(out, "swap")
    assert not out.exists() and len(list(tmp_path.glob(".out.old-*"))) == 1  # the state the kill left
    assert len(list(tmp_path.glob(".out.tmp-*"))) == 1
    done = recover_replaced(str(out))
    assert len(done) == 2 and done[0].startswith("removed the unfinished write")
    assert done[1].startswith(f"restored {out} from the interrupted replacement")
    assert (out / "a.txt").read_text() == "old" and os.listdir(tmp_path) == ["out"]
    # an old folder that is not complete is deleted, never moved into place
    _killed(out, "swap")
    assert [d.split()[0] for d in recover_replaced(str(out), is_complete=lambda p: False)] == ["removed"] * 2
    assert os.listdir(tmp_path) == []


def test_kill_while_writing_leaves_a_temp_that_recover_removes(tmp_path):
    out = tmp_path / "out"
    atomic_write_dir(str(out), _fill("old"))
    _killed(out, "write")
    assert len(list(tmp_path.glob(".out.tmp-*"))) == 1 and (out / "a.txt").read_text() == "old"
    (tmp_path / ".out.old-0").mkdir()  # and an old copy next to a complete folder is just removed
    done = recover_replaced(str(out))
    assert [d.split()[0] for d in done] == ["removed", "removed"]
    assert os.listdir(tmp_path) == ["out"] and (out / "a.txt").read_text() == "old"


_HOLD = textwrap.dedent("""
    import sys, time
    from modeling_mpm.atomic import exclusive_lock
    with exclusive_lock(sys.argv[1]):
        print("held", flush=True)
        time.sleep(60)
""")


def test_exclusive_lock_refuses_a_second_holder_and_is_taken_over_after_a_kill(tmp_path):
    path = tmp_path / ".out.lock"
    other = subprocess.Popen([sys.executable, "-c", _HOLD, str(path)], env=ENV, stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "held"
        with pytest.raises(LockBusyError, match=f"process {other.pid}") as e:
            exclusive_lock(str(path))
        assert e.value.pid == other.pid
        with pytest.raises(KeyError):  # callers choose the exception
            exclusive_lock(str(path), on_busy=lambda pid: KeyError(pid))
    finally:
        other.send_signal(signal.SIGKILL)
        other.wait()
    assert path.exists()  # a killed holder leaves its file, and its lock is free
    with exclusive_lock(str(path)):
        assert path.read_text() == str(os.getpid())
        with pytest.raises(LockBusyError):  # not re-entrant unless asked
            exclusive_lock(str(path))
    assert not path.exists()  # a clean release removes the file


def test_a_reentrant_lock_is_released_by_its_outermost_holder(tmp_path):
    path = tmp_path / ".out.lock"
    outer = ExclusiveLock(str(path), reentrant=True)
    with ExclusiveLock(str(path), reentrant=True):
        pass
    assert path.exists()
    outer.release()
    outer.release()  # twice is harmless
    assert not path.exists()
