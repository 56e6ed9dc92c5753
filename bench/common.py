"""Shared pieces of the accuracy benchmarks: budgets, run configurations for the package's trainer
(:func:`modeling_mpm.training.trainer.train`), lifter evaluation through
:mod:`modeling_mpm.evaluation`, and JSON results with run metadata. No training loop, optimiser, mask
sampler or metric of its own: every number comes from the code a user runs.

Units: 3D in metres inside the code, errors reported in millimetres (``*_mm``).
"""

from __future__ import annotations

import copy
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS_DIR = os.path.join(ROOT, "bench", "results")
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from modeling_mpm import MPMConfig  # noqa: E402

try:  # no progress bars from save_pretrained / from_pretrained in the logs
    from transformers.utils import logging as _hf_logging

    _hf_logging.disable_progress_bar()
except Exception:  # pragma: no cover
    pass

# Model size and training budget per --budget. Steps are optimiser steps of `batch_size` windows of
# the package trainer; `eval_stride`: a held-out window centred on every n-th frame.
BUDGETS: Dict[str, dict] = {
    "smoke": dict(num_frames=9, hidden_size=32, intermediate_size=64, num_layers=1, num_attention_heads=4,
                  batch_size=8, pretrain_steps=4, finetune_steps=4, seeds=[0], max_val_windows=48,
                  train_stride=9, eval_stride=10, lr=1e-3, eval_batch=64),
    "small": dict(num_frames=27, hidden_size=128, intermediate_size=256, num_layers=2, num_attention_heads=8,
                  batch_size=64, pretrain_steps=500, finetune_steps=300, seeds=[0, 1, 2], max_val_windows=None,
                  train_stride=1, eval_stride=10, lr=2e-3, eval_batch=256),
    "full": dict(num_frames=243, hidden_size=256, intermediate_size=512, num_layers=4, num_attention_heads=8,
                 batch_size=64, pretrain_steps=20000, finetune_steps=10000, seeds=[0, 1, 2, 3, 4],
                 max_val_windows=None, train_stride=1, eval_stride=10, lr=5e-4, eval_batch=64),
}

# The lifting task's random missing joints when fine-tuning (training.occlusion_prob /
# occlusion_max_joints): each window is occluded with probability OCCLUSION_PROB; an occluded window
# hides k ~ U{1..OCCLUSION_MAX_JOINTS} random joints in every frame.
OCCLUSION_PROB = 0.5
OCCLUSION_MAX_JOINTS = 5

LIMBS = ("right_leg", "right_arm", "left_arm", "left_leg")


# ----------------------------------------------------------------------------- run metadata
def load_average() -> str:
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "n/a"


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip() or "unknown"
    except Exception:  # pragma: no cover
        return "unknown"


def run_meta(budget: str, threads: int, argv: Optional[List[str]] = None, script: Optional[str] = None) -> dict:
    """Run metadata: the command that reproduces the run, versions, commit, time, load average."""
    script = os.path.relpath(os.path.abspath(script or sys.argv[0]), ROOT)
    return {
        "command": "python " + " ".join([script] + list(argv if argv is not None else sys.argv[1:])),
        "budget": budget, "threads": threads, "torch": torch.__version__, "python": platform.python_version(),
        "cpu_count": os.cpu_count(), "git_commit": git_commit(),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "load_before": load_average(),
    }


def updated_rows_note(meta: dict) -> str:
    """The report sentence for rows re-measured after the run (``meta["updated_rows"]``: one entry or a list of
    entries ``{"labels", "command", "git_commit", "started_utc", "threads", "why"}``), or "" when no row was."""
    entries = meta.get("updated_rows") or []
    entries = [entries] if isinstance(entries, dict) else entries
    return "".join(
        f" Rows of {', '.join(f'`{x}`' for x in u['labels'])} re-measured by `{u['command']}` (commit "
        f"{u['git_commit']}, {u['started_utc']}, {u['threads']} thread(s)): {u['why']}."
        for u in entries) + (" Every other row is from the command above." if entries else "")


def _same(a, b, rel: float = 1e-6) -> bool:
    """Equal JSON values, numbers within ``rel`` (a rerun's floats may differ in the last bits)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k], rel) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y, rel) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=rel, abs_tol=1e-9) or (math.isnan(a) and math.isnan(b))
    return a == b


def load_result(path: str) -> dict:
    """A bench result JSON, or ``ValueError`` saying why it cannot be read."""
    try:
        with open(path) as f:
            res = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read a bench result there ({e})") from e
    if not isinstance(res, dict) or not isinstance(res.get("meta"), dict):
        raise ValueError(f"{path}: not a bench result (no 'meta' object)")
    return res


def _is_row_of(key: str, labels: Sequence[str]) -> bool:
    return any(key == x or key.startswith(x + "+") for x in labels)


def _merge_rows(into: dict, new: dict, labels: Sequence[str]) -> int:
    """Replace, at every depth, the entries of ``into`` whose key is a row of ``labels`` (the label itself or
    ``label+variant``) by those of ``new`` at the same path (not copied); such rows missing from ``new`` are dropped."""
    n = 0
    for key in [k for k in into if _is_row_of(k, labels) and k not in new]:
        del into[key]
    for key, value in new.items():
        if _is_row_of(key, labels):
            into[key] = value
            n += 1
        elif isinstance(value, dict) and isinstance(into.get(key), dict):
            n += _merge_rows(into[key], value, labels)
    return n


def merge_results(into: dict, new: dict, labels: Sequence[str], why: str, same: Sequence[str] = ()) -> dict:
    """``into`` (a bench result, as written by ``write_json``) with the rows of the lifters ``labels`` taken
    from ``new`` (a second run of the same bench), and ``meta["updated_rows"]`` saying which rows, which
    command and why, so that re-measuring one lifter keeps every other row and says so in the report.

    ``same``: keys (dotted for nested ones, e.g. ``"mean_over_captures.mean_pose"``) that must be equal in both
    (the protocol, the baselines), else ``ValueError``."""
    if not isinstance(why, str) or not why.strip():
        raise ValueError("merging rows needs a reason (--why): the report prints it beside the rows")
    labels = list(labels)
    if not labels:
        raise ValueError("no lifter rows to merge: the run scored no lifter")
    new = json.loads(json.dumps(new, default=float))  # as the file will hold it: lists, not tuples

    def at(d, dotted):
        for part in dotted.split("."):
            d = d.get(part) if isinstance(d, dict) else None
        return d

    differ = [k for k in same if not _same(at(into, k), at(new, k))]
    if differ:
        raise ValueError(f"cannot merge runs of different protocols or references: {differ} differ "
                         f"({'; '.join(f'{k}: {at(into, k)!r} vs {at(new, k)!r}' for k in differ)})"[:2000])
    out = copy.deepcopy(into)
    meta_in, meta_new = out.get("meta", {}), new.get("meta", {})
    body_in = {k: v for k, v in out.items() if k != "meta"}
    if _merge_rows(body_in, {k: v for k, v in new.items() if k != "meta"}, labels) == 0:
        raise ValueError(f"the new run has no rows of {labels}")
    lifters = dict(meta_in.get("lifters") or {})
    lifters.update({k: v for k, v in (meta_new.get("lifters") or {}).items() if k in labels})
    entries = meta_in.get("updated_rows") or []
    entries = [entries] if isinstance(entries, dict) else list(entries)
    entries = [e for e in entries if not all(_is_row_of(x, labels) for x in e["labels"])]  # superseded
    entries.append({"labels": labels, "command": meta_new.get("command", "n/a"),
                    "git_commit": meta_new.get("git_commit", "n/a"), "started_utc": meta_new.get("started_utc", "n/a"),
                    "threads": meta_new.get("threads", "n/a"), "why": why.strip().rstrip(".")})
    return dict(body_in, meta=dict(meta_in, lifters=lifters, updated_rows=entries))


def add_merge_arguments(ap) -> None:
    """``--merge-into RESULTS_JSON`` and ``--why TEXT`` of a bench command line (:func:`merge_if_asked`)."""
    ap.add_argument("--merge-into", default=None, metavar="RESULTS_JSON",
                    help="also put this run's lifter rows into RESULTS_JSON (a result of an earlier run of this bench "
                         "with the same protocol), replacing that lifter's rows and keeping every other row; the "
                         "report then says which rows were re-measured, by which command and why (--why)")
    ap.add_argument("--why", default=None, help="with --merge-into: why the rows were re-measured (printed in the report)")


def check_merge_arguments(ap, args) -> None:
    """Before the run, not after it: ``--merge-into`` needs ``--why`` and a readable bench result."""
    if args.merge_into and not (args.why or "").strip():
        ap.error("--merge-into needs --why (the report prints it beside the re-measured rows)")
    if args.merge_into:
        load_result(args.merge_into)


def merge_if_asked(args, result: dict, labels: Sequence[str], same: Sequence[str], tag: str) -> None:
    """With ``--merge-into``: :func:`merge_into_file` of this run's rows of ``labels``."""
    if args.merge_into:
        merge_into_file(args.merge_into, result, list(labels), args.why, same=same)
        print(f"[{tag}] merged the rows of {list(labels)} into {args.merge_into}")


def merge_into_file(path: str, new: dict, labels: Sequence[str], why: str, same: Sequence[str] = ()) -> str:
    """``merge_results`` of the JSON at ``path`` and ``new``, written back atomically."""
    return write_json(merge_results(load_result(path), new, labels, why, same), path)


def write_json(obj: dict, path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, default=float)
    os.replace(tmp, path)
    return path


def mean_std(xs) -> dict:
    a = np.asarray([x for x in xs if x is not None and np.isfinite(x)], dtype=np.float64)
    if a.size == 0:
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if a.size > 1 else 0.0, "n": int(a.size)}


_CPU_SDPA_REGISTERED = False


def register_cpu_attention_flops() -> bool:
    """Make ``torch.utils.flop_counter.FlopCounterMode`` count CPU attention.

    In torch 2.13 ``F.scaled_dot_product_attention`` on CPU dispatches to
    ``aten._scaled_dot_product_flash_attention_for_cpu``, which has no FLOP formula, so its FLOPs
    (``4 B H Tq Tk D``) are silently left out (about 15% of the paper-size lifter at 243 frames).
    Registers the standard SDPA formula for it; returns False if the op or API is missing."""
    global _CPU_SDPA_REGISTERED
    if _CPU_SDPA_REGISTERED:
        return True
    try:
        from torch.utils.flop_counter import register_flop_formula, sdpa_flop_count

        op = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu

        @register_flop_formula(op)
        def _cpu_sdpa_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs):
            return sdpa_flop_count(query_shape, key_shape, value_shape)
        _CPU_SDPA_REGISTERED = True
        return True
    except Exception:  # pragma: no cover - already registered or a different torch
        return False


# ----------------------------------------------------------------------------- models
def mpm_config(b: dict, **overrides) -> MPMConfig:
    """The benchmark's MPM configuration for budget dict ``b`` (paper set-up when 243 frames)."""
    kw = dict(num_frames=b["num_frames"], hidden_size=b["hidden_size"], intermediate_size=b["intermediate_size"],
              num_layers=b["num_layers"], num_attention_heads=b["num_attention_heads"])
    kw.update(overrides)
    return MPMConfig.h36m_17(**kw)


def tcn_widths(num_frames: int) -> List[int]:
    """Filter widths of 3 whose product is the window (9 -> [3, 3], 27 -> [3, 3, 3])."""
    n = round(math.log(num_frames, 3))
    if 3 ** n != num_frames:
        raise ValueError(f"the temporal-conv baseline needs a window of 3^k frames, got {num_frames}")
    return [3] * n


# ----------------------------------------------------------------------------- training (the package's trainer)
def run_config(task: str, b: dict, seed: int, output_dir: str, steps: int, *, init_from: Optional[str] = None,
               model: Optional[dict] = None, training: Optional[dict] = None, val_split: Optional[str] = None):
    """The :class:`~modeling_mpm.training.config.RunConfig` of one bench run, built like ``mpm demo``'s:
    demo data (random virtual cameras and flips in training), ``steps`` optimiser steps of
    ``b["batch_size"]`` windows, the package's Adam (amsgrad) at ``b["lr"]`` decayed smoothly to 10%
    with a 5% warm-up. ``task="lift"`` trains with random missing joints (:data:`OCCLUSION_PROB`,
    :data:`OCCLUSION_MAX_JOINTS`). ``model``: MPMConfig keys (geometry from ``b`` unless ``init_from``);
    ``training``: further ``training.*`` keys. No validation during training unless ``val_split``."""
    from modeling_mpm.training.config import RunConfig

    m = {} if init_from else dict(preset="h36m_17", num_frames=b["num_frames"], hidden_size=b["hidden_size"],
                                  intermediate_size=b["intermediate_size"], num_layers=b["num_layers"],
                                  num_attention_heads=b["num_attention_heads"])
    m.update(model or {})
    t = {"task": task, "output_dir": output_dir, "init_from": init_from, "max_steps": steps,
         "batch_size": b["batch_size"], "lr": b["lr"], "lr_decay": 0.1, "lr_decay_steps": steps,
         "lr_schedule": "smooth", "warmup_steps": max(1, steps // 20), "seed": seed, "checkpoint_every": None,
         "keep_checkpoints": 1, "log_every": max(1, steps // 20), "select_best": False, "tensorboard": False,
         "progress_bar": False}
    if task == "lift":
        t.update(occlusion_prob=OCCLUSION_PROB, occlusion_max_joints=OCCLUSION_MAX_JOINTS)
    t.update(training or {})
    return RunConfig({
        "model": m,
        "data": {"source": "demo", "train_split": "train", "val_split": val_split, "test_split": None,
                 "train_stride": b["train_stride"], "eval_stride": b["eval_stride"], "flip_augment": True,
                 "max_val_windows": b["max_val_windows"]},
        "training": t,
        "eval": {"batch_size": b["eval_batch"], "flip": False},
    })


def package_optimizer(model, lr: float = 1e-4):
    """The optimizer the package's trainer builds for ``model`` (Adam, amsgrad as the authors; the
    default run configuration at ``lr``): what the speed benchmarks step, so that they time the
    optimizer a user's training runs."""
    from modeling_mpm.training.config import load_config
    from modeling_mpm.training.trainer import build_optimizer

    cfg = load_config(overrides=[f"training.lr={lr}"])
    return build_optimizer(model, cfg, steps_per_epoch=1)[0]


def _loss_curve(output_dir: str) -> List[List[float]]:
    """``[[step, mean training loss], ...]`` from the run's ``metrics.csv``."""
    import csv

    with open(os.path.join(output_dir, "metrics.csv"), newline="") as f:
        return [[int(r["step"]), float(r["value"])] for r in csv.DictReader(f)
                if r["split"] == "train" and r["name"] == "loss"]


def train_run(task: str, b: dict, seed: int, steps: int, **kw):
    """Train with :func:`modeling_mpm.training.trainer.train` (``run_config(task, b, seed, ...)``,
    in a temporary output folder); returns ``(model in eval mode, log)`` with ``log`` =
    ``{"steps", "seconds", "loss_curve": [[step, loss], ...]}``."""
    from modeling_mpm.training.trainer import train

    with tempfile.TemporaryDirectory() as out:
        cfg = run_config(task, b, seed, out, steps, **kw)
        r = train(cfg, progress=False, export=False, overwrite_output_dir=True)
        log = {"steps": int(r.global_step), "seconds": float(r.seconds), "loss_curve": _loss_curve(out)}
    return r.model.eval(), log


def validation_windows(b: dict, seed: int = 0):
    """The held-out demo windows (CMU 01_03 and climbing seq_3 through 4 fixed cameras, a window
    centred on every ``b["eval_stride"]``-th frame, at most ``b["max_val_windows"]``), as the package
    builds them for validation (:func:`modeling_mpm.training.data.build_splits`)."""
    from modeling_mpm.training.data import build_splits

    cfg = run_config("lift", b, seed, os.path.join(tempfile.gettempdir(), "unused"), 1, val_split="validation")
    return build_splits(cfg, b["num_frames"], "h36m17")[1]


# ----------------------------------------------------------------------------- evaluation (modeling_mpm.evaluation)
#: random non-root joints hidden in every frame of the 2D input (a new set per frame), the robustness curve
OCCLUDED_JOINTS = (0, 2, 3, 5, 8, 12)


def lifting_errors(model, val, b: dict, seed: int = 0, joints=OCCLUDED_JOINTS, limb: bool = True) -> dict:
    """MPJPE / P-MPJPE (mm, centre frame, mean over the held-out sequences) with
    :func:`modeling_mpm.evaluation.evaluate_lifting`: ``clean``; ``joints``: one row per
    ``joints`` count ``k`` (``missing_fraction = k / J``); ``limb`` (if asked): one random limb
    (3 joints) missing in every frame of each window. Masks are seeded: every model sees the same."""
    from modeling_mpm.evaluation import evaluate_lifting

    def ev(**kw):
        r = evaluate_lifting(model, val, batch_size=b["eval_batch"], seed=seed, **kw)
        return {"mpjpe_mm": float(r["mpjpe"]), "p_mpjpe_mm": float(r["p_mpjpe"])}

    j = model.config.num_joints
    clean = ev()
    occ = {"joints": [{"joints": k, "missing_fraction": k / j, **(ev(occluded_joints=k) if k else clean)}
                      for k in joints]}
    if limb:
        occ["limb"] = {"missing_fraction": 3 / j, **ev(occluded_limb=True)}
    return {"clean": clean, "occlusion": occ, "windows": len(val)}
