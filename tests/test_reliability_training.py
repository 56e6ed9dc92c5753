"""Training outputs are safe to resume: no code runs from checkpoint files, a truncated checkpoint
is skipped, a folder holding another run is refused, and two runs cannot share a folder."""

import os
import pickle

import pytest
import torch

from modeling_mpm.training.checkpoint import (COMPLETE_MARKER, CheckpointError, _write_marker,
                                              latest_checkpoint, list_checkpoints, recover_interrupted_writes,
                                              verify_checkpoint)
from modeling_mpm.training.config import RunConfig
from modeling_mpm.training.output_dir import LOCK_NAME, OutputDirLock
from tiny_runs import reliability_raw_config
from unsafe_pickle import RunsCodeWhenUnpickled

def _cfg(out, **training):
    return RunConfig(reliability_raw_config(out, **training))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One finished 2-step run with checkpoints step 1 and 2 (copied per test)."""
    from modeling_mpm.training import train

    out = tmp_path_factory.mktemp("run") / "out"
    train(_cfg(out), export=False)
    return out


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_checkpoint_files_are_loaded_without_running_code(run_dir, tmp_path):
    from modeling_mpm.training import train

    out = _copy(run_dir, tmp_path / "out")
    ck = out / "checkpoints" / "step_00000002"
    marker = tmp_path / "code_ran"
    streams = ck / "custom_checkpoint_0.pkl"  # the loop's registered random streams
    state = torch.load(streams, weights_only=True)  # the real file loads safely
    assert state
    with open(streams, "wb") as f:
        pickle.dump({"state": state, "extra": RunsCodeWhenUnpickled(str(marker))}, f, protocol=2)
    os.remove(ck / COMPLETE_MARKER)
    _write_marker(str(ck))  # an attacker ships a consistent marker
    with pytest.raises(CheckpointError, match="refused to load"):
        train(_cfg(out, max_steps=3), resume=str(ck), export=False)
    assert not marker.exists()


def test_truncated_latest_checkpoint_falls_back_to_previous(run_dir, tmp_path):
    from modeling_mpm.training import train

    out = _copy(run_dir, tmp_path / "out")
    root = str(out / "checkpoints")
    newest = os.path.join(root, "step_00000002")
    verify_checkpoint(newest)
    with open(os.path.join(newest, "optimizer.bin"), "r+b") as f:
        f.truncate(100)
    with pytest.raises(CheckpointError, match="optimizer.bin has 100 bytes"):
        verify_checkpoint(newest)
    assert latest_checkpoint(root).endswith("step_00000001")
    r = train(_cfg(out, max_steps=3), resume=True, export=False)
    assert r.global_step == 3
    assert "resumed from " + os.path.join(root, "step_00000001") in open(out / "train.log").read()
    # a checkpoint folder without the marker (interrupted, or an old format) is not used either
    for p in list_checkpoints(root):
        os.remove(os.path.join(p, COMPLETE_MARKER))
    with pytest.raises(CheckpointError, match="no complete checkpoint"):
        latest_checkpoint(root)


def test_non_empty_output_dir_is_refused_unless_resume_or_overwrite(run_dir, tmp_path):
    from modeling_mpm.training import train

    out = _copy(run_dir, tmp_path / "out")
    with pytest.raises(ValueError, match="is not empty.*--resume.*--overwrite_output_dir"):
        train(_cfg(out, max_steps=1), export=False)
    assert len(list_checkpoints(str(out / "checkpoints"))) == 2  # nothing was touched
    r = train(_cfg(out, max_steps=1), export=False, overwrite_output_dir=True)
    assert r.global_step == 1
    # the old run's step 2 is gone, so a later --resume continues this run, not the old one
    assert [os.path.basename(p) for p in list_checkpoints(str(out / "checkpoints"))] == ["step_00000001"]


def test_second_run_into_a_locked_folder_fails_at_once(run_dir, tmp_path):
    from modeling_mpm.training import train

    out = _copy(run_dir, tmp_path / "out")
    lock = OutputDirLock(str(out))  # stands in for a running process
    try:
        with pytest.raises(ValueError, match="another training run .* is writing to"):
            train(_cfg(out, max_steps=3), resume=True, export=False)
    finally:
        lock.release()
    assert not (out / LOCK_NAME).exists()  # a clean release leaves no lock file
    (out / LOCK_NAME).write_text("999999999")  # the file a killed run leaves: no process holds its lock
    r = train(_cfg(out, max_steps=3), resume=True, export=False)  # the lock is free again
    assert r.global_step == 3 and not (out / LOCK_NAME).exists()


def test_training_cli_says_why_it_refuses(tmp_path, capsys):
    from modeling_mpm.cli.train import pretrain_main

    (tmp_path / "notes.txt").write_text("someone else's file")
    rc = pretrain_main(["--data", "synthetic", "--output_dir", str(tmp_path), "--max_steps", "1", "--no_progress"])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("error: output_dir") and "notes.txt" in err
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]


def test_leftovers_of_a_killed_run_are_cleaned_or_restored(tmp_path):
    out = tmp_path / "out"
    (out / "checkpoints" / ".step_00000009.tmp-0").mkdir(parents=True)         # killed mid-checkpoint
    (out / ".best_model.old-4242").mkdir()                                       # killed mid-swap of best_model
    (out / ".best_model.old-4242" / "config.json").write_text("{}")
    (out / ".best_model.tmp-4242").mkdir()
    (out / "model").mkdir()
    (out / ".model.old-17").mkdir()                                              # the new model/ is complete
    done = recover_interrupted_writes(str(out))
    assert len(done) == 4
    assert sorted(os.listdir(out)) == ["best_model", "checkpoints", "model"]
    assert (out / "best_model" / "config.json").is_file() and os.listdir(out / "checkpoints") == []
