"""No user file is lost (issue 19 A): training clears or resumes only a folder holding its own run
manifest, never the working directory, never writes through links, validates everything before the
first write, keeps metrics.csv whole after kill -9; `mpm convert` recovers a replace killed between
its two renames; two `mpm prepare` into one output cannot both write."""

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from modeling_mpm.training.config import RunConfig
from modeling_mpm.training.output_dir import MANIFEST_NAME, OutputDirError
from tiny_runs import RELIABILITY_MODEL as TINY_MODEL, reliability_raw_config  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_raw = reliability_raw_config


def _cfg(out, **training):
    return RunConfig(_raw(out, **training))


def _user_folder(path):
    """A folder someone filled by hand with names a training run also writes."""
    (path / "model").mkdir(parents=True)
    (path / "model" / "weights.bin").write_bytes(b"precious")
    (path / "checkpoints").mkdir()
    (path / "checkpoints" / "notes.txt").write_text("mine")
    (path / "config.yaml").write_text("my: config\n")
    return path


def _snapshot(path):
    return sorted((str(p.relative_to(path)), p.read_bytes() if p.is_file() else b"") for p in path.rglob("*"))


@pytest.mark.parametrize("kind", ["overwrite", "resume"])
def test_a_folder_no_run_wrote_is_never_cleared_or_resumed_over(tmp_path, kind):
    from modeling_mpm.training import train

    out = _user_folder(tmp_path / "out")
    before = _snapshot(out)
    kw = {"overwrite_output_dir": True} if kind == "overwrite" else {"resume": True}
    with pytest.raises(OutputDirError, match=f"no {MANIFEST_NAME}"):
        train(_cfg(out), export=False, **kw)
    assert _snapshot(out) == before


def test_the_working_directory_is_never_cleared(tmp_path, monkeypatch):
    from modeling_mpm.training import train

    out = tmp_path / "run"
    train(_cfg(out, max_steps=1), export=False)
    assert (out / MANIFEST_NAME).is_file()  # a run's own folder...
    monkeypatch.chdir(out)
    (out / "my_notes.txt").write_text("keep")
    for kw in ({"overwrite_output_dir": True}, {"resume": True}):
        with pytest.raises(OutputDirError, match="working directory"):
            train(_cfg("."), export=False, **kw)
    assert (out / "my_notes.txt").read_text() == "keep" and (out / "checkpoints").is_dir()


def test_a_linked_run_output_is_refused_and_its_target_untouched(tmp_path):
    from modeling_mpm.training import train

    out = tmp_path / "run"
    train(_cfg(out, max_steps=1), export=False)
    target = tmp_path / "elsewhere.yaml"
    target.write_text("someone else's file\n")
    os.remove(out / "config.yaml")
    os.symlink(target, out / "config.yaml")
    for kw in ({"overwrite_output_dir": True}, {"resume": True}):
        with pytest.raises(OutputDirError, match="symbolic link"):
            train(_cfg(out, max_steps=2), export=False, **kw)
    assert target.read_text() == "someone else's file\n"


def test_a_bad_setting_fails_before_the_run_folder_is_written(tmp_path):
    from modeling_mpm.training import train

    out = tmp_path / "out"
    bad = [dict(_raw(out), model={**TINY_MODEL, "num_frames": 8}),                   # even window
           dict(_raw(out), model={**TINY_MODEL, "layer_norm_eps": -1.0}),
           dict(_raw(out, init_from=str(tmp_path / "missing_model"))),
           dict(_raw(out), data={"source": "prepared", "paths": [str(tmp_path / "no_data")]})]
    for raw in bad:
        with pytest.raises(ValueError):
            train(RunConfig(raw), export=False)
        assert not out.exists()
    assert train(_cfg(out, max_steps=1), export=False).global_step == 1  # the corrected command runs


def test_resume_with_another_geometry_fails_before_touching_the_run(tmp_path):
    from modeling_mpm.training import train

    out = tmp_path / "run"
    train(_cfg(out, max_steps=1), export=False)
    before = _snapshot(out)
    raw = _raw(out, max_steps=2)
    raw["model"]["hidden_size"] = 32
    with pytest.raises(ValueError, match="model.hidden_size is 32 but checkpoint .* trained with 16"):
        train(RunConfig(raw), resume=True, export=False)
    assert _snapshot(out) == before


_KILLED_RUN = textwrap.dedent("""
    import json, sys
    from modeling_mpm.training import train
    from modeling_mpm.training.config import RunConfig
    train(RunConfig(json.loads(sys.argv[1])), export=False, kill_after_step=3)
""")


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_metrics_csv_after_kill_9_and_resume_has_its_header_and_no_repeated_rows(tmp_path):
    from modeling_mpm.training import train

    out = tmp_path / "run"
    raw = _raw(out, max_steps=4, checkpoint_every=2)
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", _KILLED_RUN, json.dumps(raw)], env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    killed = _rows(out / "metrics.csv")
    assert {row[0] for row in killed[1:]} == {"1", "2", "3"}  # step 3 ran after the last checkpoint (2)
    with open(out / "metrics.csv", "a") as f:
        f.write("3,0,train,loss,0.5")  # a row cut off by the kill
    train(RunConfig(raw), resume=True, export=False)
    rows = _rows(out / "metrics.csv")
    assert rows[0] == ["step", "epoch", "split", "name", "value", "time"]
    keys = [(r[0], r[2], r[3]) for r in rows[1:]]
    assert len(keys) == len(set(keys)) and {k[0] for k in keys} == {"1", "2", "3", "4"}
    # a file that lost everything (killed before the header reached the disk) gets its header back
    (out / "metrics.csv").write_text("")
    train(RunConfig(_raw(out, max_steps=5, checkpoint_every=2)), resume=True, export=False)
    assert _rows(out / "metrics.csv")[0][0] == "step"


_KILL_BETWEEN_RENAMES = textwrap.dedent("""
    import os, signal, sys
    real = os.replace
    def replace(src, dst):
        real(src, dst)
        if ".old-" in os.path.basename(str(dst)):  # the old folder moved aside: die here
            os.kill(os.getpid(), signal.SIGKILL)
    os.replace = replace
    from modeling_mpm.cli.convert import main
    main(sys.argv[1:])
""")


def test_convert_killed_between_its_two_renames_is_restored_on_the_next_run(tmp_path, capsys):
    import torch

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from official_reference import random_official_state_dicts
    from modeling_mpm.cli.convert import main as convert

    _, lift_sd = random_official_state_dicts(17, 27, 1, 32, 64, [3, 3, 3], seed=2)
    ckpt = tmp_path / "official.pth"
    torch.save(lift_sd, ckpt)
    out = tmp_path / "model"
    assert convert([str(ckpt), str(out)]) == 0
    before = (out / "model.safetensors").read_bytes()
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", _KILL_BETWEEN_RENAMES, str(ckpt), str(out)], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    assert not out.exists() and list(tmp_path.glob(".model.old-*"))  # the state the kill left
    from modeling_mpm.atomic import recover_replaced

    assert any("restored" in line for line in recover_replaced(str(out)))
    assert (out / "model.safetensors").read_bytes() == before and not list(tmp_path.glob(".model.*"))
    # and the same through a rerun of the command
    r = subprocess.run([sys.executable, "-c", _KILL_BETWEEN_RENAMES, str(ckpt), str(out)], env=env,
                       capture_output=True, text=True, timeout=300)
    assert not out.exists()
    assert convert([str(ckpt), str(out)]) == 0
    assert "restored" in capsys.readouterr().err
    assert (out / "config.json").is_file() and not list(tmp_path.glob(".model.*"))


_HOLD_LOCK = textwrap.dedent("""
    import sys, time
    from modeling_mpm.data.io import dataset_write_lock
    with dataset_write_lock(sys.argv[1]):
        print("held", flush=True)
        time.sleep(60)
""")


def test_two_prepares_into_one_output_cannot_both_write(tmp_path, capsys):
    from modeling_mpm.cli.prepare import main as prepare
    from modeling_mpm.data import io as dio

    rng = np.random.default_rng(0)
    src = tmp_path / "d3.npz"
    np.savez(src, positions_3d=np.array({"S1": {"Walking": (rng.normal(0, 0.3, (4, 32, 3)) + [0, 0, 1]).astype(
        np.float32)}}, dtype=object))
    out = tmp_path / "data"
    assert prepare(["h36m", "--positions_3d", str(src), "--output", str(out)]) == 0
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    other = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(out)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "held"
        assert prepare(["h36m", "--positions_3d", str(src), "--output", str(out), "--overwrite"]) == 2
        err = capsys.readouterr().err
        assert "another 'mpm prepare'" in err and f"process {other.pid}" in err
        assert dio.is_prepared_dataset_dir(out)
    finally:
        other.send_signal(signal.SIGKILL)
        other.wait()
    # the killed writer's lock is stale: the next run takes it over
    assert (tmp_path / ".data.lock").exists()
    assert prepare(["h36m", "--positions_3d", str(src), "--output", str(out), "--overwrite"]) == 0
    assert dio.is_prepared_dataset_dir(out) and not (tmp_path / ".data.lock").exists()
