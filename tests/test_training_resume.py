"""Crash recovery: a run SIGKILLed after a checkpoint and resumed ends with the same weights as
an uninterrupted run; multi-process DDP on CPU works."""

import json
import os
import signal
import subprocess
import sys

import torch
from safetensors.torch import load_file

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TINY = [
    "--data", "demo", "--set", "data.train_stride=7", "--set", "data.max_val_windows=16",
    "--set", "data.max_test_windows=16",
    "--set", "model.num_frames=9", "--set", "model.num_layers=1", "--set", "model.hidden_size=32",
    "--set", "model.intermediate_size=64", "--set", "model.num_attention_heads=4",
    "--batch_size", "8", "--max_steps", "6", "--checkpoint_every", "2", "--eval_every", "3",
    "--set", "training.log_every=2", "--set", "training.lr_decay_steps=2", "--no_progress",
]


def _env():
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=REPO + os.pathsep + env.get("PYTHONPATH", ""))
    env.pop("MPM_KILL_AFTER_STEP", None)
    return env


def _run(args, env=None, timeout=300):
    return subprocess.run([sys.executable, os.path.join(REPO, "train", "pretrain.py")] + args,
                          env=env or _env(), capture_output=True, text=True, timeout=timeout, cwd=REPO)


def _final_weights(out_dir):
    ckpts = sorted(d for d in os.listdir(os.path.join(out_dir, "checkpoints")) if d.startswith("step_"))
    return load_file(os.path.join(out_dir, "checkpoints", ckpts[-1], "model.safetensors")), ckpts


def test_sigkill_and_resume_gives_identical_weights(tmp_path):
    # two micro-batches per step exercise the accumulation path too
    args = TINY + ["--gradient_accumulation_steps", "2"]
    full = _run(args + ["--output_dir", str(tmp_path / "full")])
    assert full.returncode == 0, full.stderr[-3000:]

    env = _env()
    env["MPM_KILL_AFTER_STEP"] = "3"   # after the step-2 checkpoint, before step 4's
    killed = _run(args + ["--output_dir", str(tmp_path / "crash")], env=env)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    _, ckpts = _final_weights(tmp_path / "crash")
    assert ckpts == ["step_00000002"]          # nothing half-written survives
    assert not os.path.exists(tmp_path / "crash" / "model")

    resumed = _run(args + ["--output_dir", str(tmp_path / "crash"), "--resume"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stdout

    a, _ = _final_weights(tmp_path / "full")
    b, ckpts = _final_weights(tmp_path / "crash")
    assert ckpts[-1] == "step_00000006"
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # training moved the weights at all (the comparison is not trivially true)
    first = load_file(os.path.join(tmp_path / "crash", "checkpoints", "step_00000004", "model.safetensors"))
    assert any(not torch.equal(first[k], a[k]) for k in a if a[k].is_floating_point())
    # optimizer state, scheduler and history agree too
    sa = json.load(open(tmp_path / "full" / "checkpoints" / "step_00000006" / "trainer_state.json"))
    sb = json.load(open(tmp_path / "crash" / "checkpoints" / "step_00000006" / "trainer_state.json"))
    assert sa["history"] == sb["history"] and sa["best_metric"] == sb["best_metric"]
    assert os.path.isfile(tmp_path / "crash" / "model" / "model.safetensors")
    assert os.path.isfile(tmp_path / "crash" / "model" / "README.md")


def _torchrun(args, port, launcher="torchrun"):
    """Two CPU processes running the installed entry point, started by torchrun or by
    `accelerate launch` (the documented multi-process command)."""
    env = _env()
    env["ACCELERATE_USE_CPU"] = "1"
    if launcher == "torchrun":
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port)]
    else:
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(port)]
    cmd += ["-m", "modeling_mpm.cli.train", "pretrain"] + TINY + args
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=REPO)


def test_ddp_two_processes_on_cpu_and_exact_resume(tmp_path):
    res = _torchrun(["--max_steps", "4", "--checkpoint_every", "2", "--output_dir", str(tmp_path / "ddp")], 29517)
    assert res.returncode == 0, res.stderr[-4000:]
    assert "2 processes x 1 accumulation x 4" in res.stdout and "MULTI_CPU" in res.stdout
    ck = tmp_path / "ddp" / "checkpoints" / "step_00000002"
    # Accelerate's save_state: one RNG file per process, the loop's streams of both ranks in one file
    assert (ck / "random_states_0.pkl").is_file() and (ck / "random_states_1.pkl").is_file()
    streams = torch.load(ck / "custom_checkpoint_0.pkl", weights_only=True)
    assert streams["world_size"] == 2 and len(streams["ranks"]) == 2
    assert not torch.equal(streams["ranks"][0]["generator"], streams["ranks"][1]["generator"])
    state = json.load(open(ck / "trainer_state.json"))
    assert state["world_size"] == 2 and state["global_step"] == 2
    assert (tmp_path / "ddp" / "model" / "config.json").is_file()

    # two processes resumed from the step-2 checkpoint end with the uninterrupted run's weights
    res = _torchrun(["--max_steps", "4", "--checkpoint_every", "2", "--output_dir", str(tmp_path / "again"),
                     "--resume", str(ck)], 29518, launcher="accelerate")
    assert res.returncode == 0, res.stderr[-4000:]
    a, _ = _final_weights(tmp_path / "ddp")
    b, ckpts = _final_weights(tmp_path / "again")
    assert ckpts == ["step_00000004"] and a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    first = load_file(ck / "model.safetensors")
    assert any(not torch.equal(first[k], a[k]) for k in a if a[k].is_floating_point())
