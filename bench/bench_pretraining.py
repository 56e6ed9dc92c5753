"""Does MPM pre-training help, compute-matched? Arms x seeds x folds, with paired 95% confidence intervals.

    python bench/bench_pretraining.py --device cuda --jobs 16 --deadline 330 --kill-after 420
    python bench/bench_pretraining.py --report      # bench/results/pretraining.{json,md} from finished runs
    python bench/bench_pretraining.py --budget smoke --device cpu --jobs 2 --seeds 0 --folds 0   # every arm, tiny

Arms (the `mpm demo` recipe, ``modeling_mpm.demo.PRESETS["full"]``: 27 frames, width 128, 2 layers,
batch 64, "real" augmentation, pre-training 2,000 steps, fine-tuning 700 steps with LP-FT and the
rescaled encoder stream; budgets are optimizer steps of 64 windows):

* ``scratch_ft``: a lifter from a random initialisation, the fine-tuning budget (700 steps);
* ``scratch_total``: the same, the total budget (2,000 + 700 = 2,700 steps, same schedule shape);
* ``mm``: masked 2D + 3D pose modeling only (the authors' 5 : 2 weights), then fine-tuning;
* ``lift``: the lifting pretext only (the masked 2D and 3D loss weights at 0);
* ``mm_lift``: masked modeling + the lifting pretext from the occluded clip (the shipped recipe);
* ``mm_lift_masked``: masked modeling + the authors' pretext, lifting the 2D pass's masked input
  (same weight 10 as the shipped one, so only the pretext's input differs).

Premise (``--premise``): pre-training that sees 3D motion fine-tuning never sees as pairs. The ``mm``
pre-training (all training sequences of the fold, unpaired masked 2D + 3D) is fine-tuned on ONE
sequence (``one_mm``) and compared with scratch lifters on that sequence at the fine-tuning
(``one_scratch_ft``) and total (``one_scratch_total``) budgets; the "all sequences" regime is the
main arms ``mm`` / ``scratch_ft`` / ``scratch_total``.

Folds rotate the six embedded sequences (:data:`FOLDS`): two are held out for reporting (four fixed
virtual cameras, as the demo evaluates), the other four train every stage (``data.train_split:
train+validation`` with ``data.train_sequences``). The demo's settings were chosen earlier on its
validation split (climb_seq_3, cmu_01_03), i.e. fold 2's report sequences: folds 0 and 1 report on
sequences that no choice looked at (``clean``); fold 2 is shown for comparison only.

Every (arm, seed, fold) is a separate process (``--jobs`` at once, 1 CPU thread each) that writes
one JSON under ``--out``; finished runs are skipped when re-run. Pre-trainings are jobs of their own,
shared by the arms that fine-tune them. Launch order: fold, then main arms before the premise, then
seed, so seed 0 of every arm comes first; ``--deadline`` stops launching after that many seconds.
Training, masks, evaluation and metrics are the package's (``modeling_mpm.training.train``,
``modeling_mpm.evaluation.evaluate_lifting``).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from modeling_mpm.atomic import atomic_write_text  # noqa: E402

#: the held-out take scored with ``--heldout`` (not in the repository; no run or setting saw it)
HELDOUT = "climb_seq_4"
SEQUENCES = ("climb_seq_0", "climb_seq_1", "climb_seq_2", "cmu_01_01", "climb_seq_3", "cmu_01_03")

#: report sequences, the premise's one fine-tuning sequence, and whether no setting was chosen on them
FOLDS = (
    {"report": ["climb_seq_2", "cmu_01_01"], "one": "climb_seq_0", "clean": True},
    {"report": ["climb_seq_0", "climb_seq_1"], "one": "cmu_01_01", "clean": True},
    {"report": ["climb_seq_3", "cmu_01_03"], "one": "cmu_01_01", "clean": False},  # the demo's tuning split
)

#: pre-training recipes: changes to the demo preset (``preset``) and to the model config (``model``)
PRETRAIN = {
    "mm": {"preset": {"pretrain_lift_weight": 0.0}, "model": {}},
    "lift": {"preset": {}, "model": {"loss_weight_2d": 0.0, "loss_weight_3d": 0.0}},
    "mm_lift": {"preset": {}, "model": {}},
    "mm_lift_masked": {"preset": {"pretrain_lift_input": "masked"}, "model": {}},
}

#: arm -> (pre-training recipe or None, budget "ft" | "total", fine-tuning data "all" | "one", label)
ARMS = {
    "scratch_ft": (None, "ft", "all", "scratch, fine-tuning budget"),
    "scratch_total": (None, "total", "all", "scratch, total budget"),
    "mm": ("mm", "ft", "all", "masked modeling only"),
    "lift": ("lift", "ft", "all", "lifting pretext only"),
    "mm_lift": ("mm_lift", "ft", "all", "masked modeling + lifting pretext (shipped)"),
    "mm_lift_masked": ("mm_lift_masked", "ft", "all", "masked modeling + masked-2D lifting pretext (authors')"),
}
PREMISE_ARMS = {
    "one_mm": ("mm", "ft", "one", "masked 2D+3D pre-training on all, fine-tuned on one"),
    "one_scratch_ft": (None, "ft", "one", "scratch on one, fine-tuning budget"),
    "one_scratch_total": (None, "total", "one", "scratch on one, total budget"),
}
ALL_ARMS = {**ARMS, **PREMISE_ARMS}


def budget_preset(name: str, pretrain_steps: Optional[int] = None, finetune_steps: Optional[int] = None) -> Dict:
    """The demo's ``full`` preset, or ``smoke`` (its ``quick`` model, a few steps)."""
    from modeling_mpm.demo import PRESETS

    if name == "full":
        p = dict(PRESETS["full"])
    elif name == "smoke":
        p = dict(PRESETS["quick"], pretrain_steps=4, finetune_steps=3, eval_stride=60)
    else:
        raise ValueError(f"unknown budget {name!r}")
    if pretrain_steps:
        p["pretrain_steps"] = int(pretrain_steps)
    if finetune_steps:
        p["finetune_steps"] = int(finetune_steps)
    return p


# ----------------------------------------------------------------------------- aggregation
#: two-sided 95% t quantiles t_{0.975, df}
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
        11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
        20: 2.086, 25: 2.060, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980}


def t975(df: int) -> float:
    """t_{0.975, df} from :data:`T975` (the next smaller tabulated df beyond 20; 1.96 beyond 120)."""
    if df < 1:
        raise ValueError("df must be >= 1")
    if df > 120:
        return 1.960
    return T975[max(k for k in T975 if k <= df)]


def mean_ci(values) -> Dict:
    """Mean, sample sd, n and the t-based 95% CI of the mean (None bounds for n < 2)."""
    x = np.asarray(list(values), dtype=np.float64)
    n = len(x)
    if n == 0:
        return {"n": 0, "mean": None, "sd": None, "ci95": [None, None]}
    mean = float(x.mean())
    if n < 2:
        return {"n": 1, "mean": mean, "sd": None, "ci95": [None, None]}
    sd = float(x.std(ddof=1))
    half = t975(n - 1) * sd / math.sqrt(n)
    return {"n": n, "mean": mean, "sd": sd, "ci95": [mean - half, mean + half]}


def load_runs(out: str) -> List[Dict]:
    runs = []
    for dirpath, _, files in os.walk(os.path.join(out, "runs")):
        for f in sorted(files):
            if f.endswith(".json"):
                with open(os.path.join(dirpath, f), encoding="utf-8") as fh:
                    runs.append(json.load(fh))
    return runs


def aggregate(runs: List[Dict], metric: str = "plain") -> Dict:
    """Per fold and arm: MPJPE over seeds, and paired differences (arm - reference, same fold and
    seed) against ``scratch_total`` / ``scratch_ft`` (premise arms: ``one_scratch_*``)."""
    table: Dict = {}
    by = {}
    for r in runs:
        if r.get("kind") == "finetune" and metric in r["results"]:
            by[(r["fold"], r["arm"], r["seed"])] = r["results"][metric]["mpjpe"]
    for fold in sorted({k[0] for k in by}):
        rows = {}
        for arm in ALL_ARMS:
            seeds = sorted(s for (f, a, s) in by if f == fold and a == arm)
            if not seeds:
                continue
            row = {"seeds": seeds, "mpjpe": mean_ci(by[(fold, arm, s)] for s in seeds)}
            prefix = "one_" if arm in PREMISE_ARMS else ""
            for ref in ("scratch_total", "scratch_ft"):
                ref_arm = prefix + ref
                if ref_arm == arm:
                    continue
                paired = [s for s in seeds if (fold, ref_arm, s) in by]
                d = mean_ci(by[(fold, arm, s)] - by[(fold, ref_arm, s)] for s in paired)
                row[f"minus_{ref}"] = {**d, "seeds": paired, "reference": ref_arm}
            rows[arm] = row
        table[str(fold)] = rows
    return table


def _fmt(x, nd=1):
    return "n/a" if x is None else f"{x:.{nd}f}"


def _ms(m):
    return _fmt(m["mean"]) + ("" if m["sd"] is None else f" ± {_fmt(m['sd'])}")


def _diff(d):
    if not d or d["n"] == 0:
        return "-"
    lo, hi = d["ci95"]
    ci = "" if lo is None else f" [{lo:+.1f}, {hi:+.1f}]"
    return f"{d['mean']:+.1f}{ci}"


def markdown(agg: Dict, agg_limb: Dict, meta: Dict, baselines: Dict, agg_held: Optional[Dict] = None,
             held_baselines: Optional[Dict] = None) -> str:
    p = meta.get("preset", {})
    lines = ["## Pre-training, compute-matched (bench/bench_pretraining.py)", "",
             "Commands (each adds its runs to the same folder; the report reads them all): "
            + "; ".join(f"`{c}`" for c in meta.get("commands", [meta.get("command", "")])) + f". The `mpm demo` recipe ({p.get('num_frames')} frames, width "
             f"{p.get('hidden_size')}, {p.get('num_layers')} layers, batch {p.get('batch_size')}, "
             f"`{p.get('augment')}` augmentation); pre-training {p.get('pretrain_steps')} and fine-tuning "
             f"{p.get('finetune_steps')} optimizer steps; *total budget* = {p.get('pretrain_steps', 0) + p.get('finetune_steps', 0)} "
             "steps (optimizer steps are matched, not FLOPs: a pre-training step runs 2-3 encoder passes). "
             "Centre-frame MPJPE in mm on the fold's report sequences through 4 fixed virtual cameras, "
             "mean ± sd over seeds; differences are paired by seed (arm − reference, negative = better) "
             "with a 95% t-interval over seeds. Folds 0 and 1 report on sequences no setting was chosen on "
             "(clean); fold 2's report sequences are the demo's validation split, where the settings were "
             "chosen.", ""]
    for fold, rows in agg.items():
        f = FOLDS[int(fold)]
        base = baselines.get(fold)
        lines += [f"### Fold {fold}: report on {', '.join(f['report'])} ({'clean' if f['clean'] else 'tuning split, not clean'})",
                  "", "| arm | steps | seeds | MPJPE | one limb missing | − scratch (total budget) [95% CI] "
                  "| − scratch (fine-tuning budget) [95% CI] |", "|---|---|---|---|---|---|---|"]
        for arm in ARMS:
            if arm in rows:
                lines.append(_row(arm, rows[arm], agg_limb.get(fold, {}).get(arm), p))
        if base is not None:
            lines.append(f"| per-sequence mean pose (no input) | - | - | {base:.1f} | - | - | - |")
        prem = [a for a in ("mm", "scratch_ft", "scratch_total") if a in rows] and \
            [a for a in PREMISE_ARMS if a in rows]
        if prem:
            lines += ["", f"Premise, fold {fold}: masked 2D + 3D pre-training on the motion of all four training "
                      f"sequences, the lifter fine-tuned on one ({f['one']}) or on all four; scratch lifters on "
                      "the same fine-tuning data.", "",
                      "| fine-tuning data | arm | steps | seeds | MPJPE | one limb missing | − scratch (total budget) "
                      "[95% CI] | − scratch (fine-tuning budget) [95% CI] |", "|---|---|---|---|---|---|---|---|"]
            for data, arms in (("one sequence", ("one_mm", "one_scratch_ft", "one_scratch_total")),
                               ("all four", ("mm", "scratch_ft", "scratch_total"))):
                for arm in arms:
                    if arm in rows:
                        lines.append(f"| {data} " + _row(arm, rows[arm], agg_limb.get(fold, {}).get(arm), p))
        held = (agg_held or {}).get(fold)
        if held:
            lines += ["", f"The same lifters (fold {fold}) on `{HELDOUT}`, a fifth climbing take that is not in the "
                      "repository and that no run or setting saw (bench/bench_heldout_mocap.py fetches it), through "
                      "the same four cameras:", "",
                      "| arm | steps | seeds | MPJPE | | − scratch (total budget) [95% CI] "
                      "| − scratch (fine-tuning budget) [95% CI] |", "|---|---|---|---|---|---|---|"]
            lines += [_row(arm, held[arm], None, p) for arm in ALL_ARMS if arm in held]
            if (held_baselines or {}).get(fold) is not None:
                lines.append(f"| per-sequence mean pose (no input) | - | - | {held_baselines[fold]:.1f} | - | - | - |")
        lines.append("")
    return "\n".join(lines)


def verdict(diff: Optional[Dict]) -> str:
    """'better' / 'worse' when the 95% CI of a paired difference (arm − reference, mm) excludes 0,
    else 'no clear difference' ('one seed' without a CI)."""
    if not diff or diff.get("mean") is None:
        return "not run"
    lo, hi = diff["ci95"]
    if lo is None:
        return "one seed"
    return "better" if hi < 0 else "worse" if lo > 0 else "no clear difference"


def summary_line(result: Dict) -> str:
    """One bullet for bench/RESULTS.md's summary: each pre-training arm against scratch at the total
    budget (paired by seed, 95% CI) on the clean folds, and the premise's one-sequence row."""
    parts = []
    for fold, rows in result["mpjpe_mm"].items():
        if not FOLDS[int(fold)]["clean"]:
            continue
        arms = [a for a in ("mm", "lift", "mm_lift", "mm_lift_masked", "one_mm") if a in rows]
        cells = []
        for a in arms:
            d = rows[a].get("minus_scratch_total")
            if d and d.get("mean") is not None:
                ci = f" [{d['ci95'][0]:+.1f}, {d['ci95'][1]:+.1f}]" if d["ci95"][0] is not None else ""
                cells.append(f"`{a}` {d['mean']:+.1f} mm{ci} ({verdict(d)})")
        if cells:
            n = max(len(rows[a]["seeds"]) for a in arms)
            parts.append(f"fold {fold} ({n} seeds): " + "; ".join(cells))
    p = result.get("meta", {}).get("preset", {})
    return ("- **Pre-training, compute-matched (section 12; " f"{p.get('pretrain_steps')} + {p.get('finetune_steps')} "
            "steps against scratch at the total budget, paired by seed, 95% CI):** " + (" / ".join(parts) or "no runs") + ".")


def _row(arm, row, limb, p):
    pre, budget, _, label = ALL_ARMS[arm]
    steps = (f"{p.get('pretrain_steps')} + {p.get('finetune_steps')}" if pre else
             str(p.get("finetune_steps", 0) + (p.get("pretrain_steps", 0) if budget == "total" else 0)))
    return (f"| {label} (`{arm}`) | {steps} | {len(row['seeds'])} | {_ms(row['mpjpe'])} | "
            f"{_ms(limb['mpjpe']) if limb else '-'} | {_diff(row.get('minus_scratch_total'))} | "
            f"{_diff(row.get('minus_scratch_ft'))} |")


def report(out: str, json_path: str, md_path: str, meta: Optional[Dict] = None) -> Dict:
    runs = load_runs(out)
    meta = dict(meta or {})
    meta_path = os.path.join(out, "meta.json")
    if os.path.exists(meta_path):
        with open(meta_path, encoding="utf-8") as fh:
            meta = {**json.load(fh), **meta}
    agg, agg_limb, agg_held = aggregate(runs, "plain"), aggregate(runs, "limb"), aggregate(runs, "heldout")
    baselines, held_baselines = {}, {}
    for r in runs:
        if r.get("kind") == "finetune" and r.get("mean_pose_mpjpe") is not None:
            baselines[str(r["fold"])] = r["mean_pose_mpjpe"]
        if r.get("kind") == "finetune" and r.get("heldout_mean_pose_mpjpe") is not None:
            held_baselines[str(r["fold"])] = r["heldout_mean_pose_mpjpe"]
    ft = [r for r in runs if r.get("kind") == "finetune"]
    result = {"meta": meta, "folds": {str(i): f for i, f in enumerate(FOLDS)}, "arms": {k: v[3] for k, v in ALL_ARMS.items()},
              "mpjpe_mm": agg, "mpjpe_one_limb_missing_mm": agg_limb, "mean_pose_baseline_mm": baselines,
              f"mpjpe_{HELDOUT}_mm": agg_held, f"mean_pose_baseline_{HELDOUT}_mm": held_baselines,
              "runs": [{k: r[k] for k in ("fold", "seed", "arm", "seconds", "steps", "device") if k in r}
                       | {"mpjpe": r["results"]["plain"]["mpjpe"], "p_mpjpe": r["results"]["plain"]["p_mpjpe"],
                          "limb_mpjpe": r["results"]["limb"]["mpjpe"]} for r in ft]}
    md = markdown(agg, agg_limb, meta, baselines, agg_held, held_baselines)
    os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)
    atomic_write_text(json_path, json.dumps(result, indent=2) + "\n")
    atomic_write_text(md_path, md + "\n")
    return result


# ----------------------------------------------------------------------------- one run (worker process)
def make_config(task: str, out_dir: str, p: Dict, steps: int, lr: float, seed: int, train_sequences: List[str],
                recipe: Optional[str] = None, init_from: Optional[str] = None):
    """The demo's run config (``modeling_mpm.demo._run_config``) on this fold's training sequences,
    with the pre-training recipe's changes; no validation during training (the report evaluates)."""
    from modeling_mpm.demo import _run_config
    from modeling_mpm.training.config import RunConfig

    q = dict(p, **(PRETRAIN[recipe]["preset"] if recipe else {}))
    raw = _run_config(task, out_dir, q, steps, lr, seed, init_from).to_dict()
    if recipe and task == "pretrain":
        raw["model"].update(PRETRAIN[recipe]["model"])
    raw["data"].update(train_split="train+validation", train_sequences=list(train_sequences), val_split=None,
                       test_split=None)
    raw["training"].update(checkpoint_every=steps, progress_bar=False)
    return RunConfig(raw)


def report_dataset(cfg, p: Dict, report_sequences: List[str]):
    """The report sequences' windows through the demo's four fixed evaluation cameras."""
    from modeling_mpm.training.config import RunConfig
    from modeling_mpm.training.data import Subset, build_splits

    raw = cfg.to_dict()
    raw["data"].update(val_split="train+validation", max_val_windows=None)
    _, val, _ = build_splits(RunConfig(raw), p["num_frames"], "h36m17")
    seq_index = val.windows.get_batch(np.arange(len(val)))["sequence_index"]
    keep = np.flatnonzero(np.isin(np.asarray(val.labels)[seq_index], report_sequences))
    found = sorted({val.labels[i] for i in np.unique(seq_index[keep])})
    if found != sorted(report_sequences):
        raise RuntimeError(f"report sequences {report_sequences} not all found (got {found})")
    return Subset(val, keep)


def heldout_windows(npy: str, p: Dict):
    """The held-out take (``(T, 17, 3)`` metres, world frame, 50 Hz) through the demo's four fixed cameras,
    a window centred every ``eval_stride`` frames (bench/bench_heldout_mocap.py's windows)."""
    from bench_heldout_mocap import build_windows, camera_set

    return build_windows({HELDOUT: np.load(npy)}, camera_set("fixed"), p["num_frames"], p["eval_stride"], noise=False)


def prepare_heldout(cache_dir: str, work: str) -> str:
    """Fetch and convert the held-out take once (bench_heldout_mocap's fetch; cached); its ``.npy`` path."""
    from bench_heldout_mocap import load_motions

    motions, _ = load_motions(["holosoma_climb_seq_4"], cache_dir)
    os.makedirs(work, exist_ok=True)
    path = os.path.join(work, f"{HELDOUT}.npy")
    np.save(path, motions["holosoma_climb_seq_4"])
    return path


def run_job(spec: Dict) -> Dict:
    """Train (and for fine-tunings evaluate) one job; returns the JSON written to ``spec['result']``."""
    import torch
    from transformers.utils import logging as hf_logging

    torch.set_num_threads(1)
    hf_logging.disable_progress_bar()
    if spec["device"] == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda but torch sees no GPU")
    from modeling_mpm.demo import SETTINGS, mean_pose_baseline
    from modeling_mpm.evaluation import evaluate_lifting
    from modeling_mpm.training.trainer import train

    p, seed, fold = spec["preset"], spec["seed"], FOLDS[spec["fold"]]
    train_seqs = [s for s in SEQUENCES if s not in fold["report"]]
    t0 = time.time()
    if spec["kind"] == "pretrain":
        steps = p["pretrain_steps"]
        cfg = make_config("pretrain", spec["run_dir"], p, steps, p["pretrain_lr"], seed, train_seqs, spec["recipe"])
        r = train(cfg, progress=False, export=True, export_dir=spec["model_dir"], overwrite_output_dir=True)
        out = {"kind": "pretrain", "recipe": spec["recipe"], "model_dir": spec["model_dir"]}
    else:
        pre, budget, data, _ = ALL_ARMS[spec["arm"]]
        steps = job_steps(spec, p)
        seqs = [fold["one"]] if data == "one" else train_seqs
        cfg = make_config("lift", spec["run_dir"], p, steps, p["finetune_lr"], seed, seqs,
                          init_from=spec.get("model_dir"))
        r = train(cfg, progress=False, export=False, overwrite_output_dir=True)
        ds = report_dataset(cfg, p, fold["report"])
        # the same occlusion draws for every arm and seed (seed 0): the comparisons are paired
        results = {key: {k: v for k, v in evaluate_lifting(r.model, ds, batch_size=p["eval_batch_size"], seed=0,
                                                           **kw).items() if k in ("mpjpe", "p_mpjpe", "windows",
                                                                                  "per_action")}
                   for key, _, kw in SETTINGS}
        out = {"kind": "finetune", "arm": spec["arm"], "pretrain": pre, "budget": budget, "train_sequences": seqs,
               "init_from": spec.get("model_dir"), "results": results,
               "mean_pose_mpjpe": mean_pose_baseline(ds)["mpjpe"]}
        if spec.get("heldout_npy"):
            held = heldout_windows(spec["heldout_npy"], p)
            r_held = evaluate_lifting(r.model, held, batch_size=p["eval_batch_size"])
            results["heldout"] = {k: r_held[k] for k in ("mpjpe", "p_mpjpe", "windows")}
            from bench_heldout_mocap import mean_pose_scores

            out["heldout_mean_pose_mpjpe"] = mean_pose_scores(held)[HELDOUT]["mpjpe_mm"]
    dev = next(r.model.parameters()).device
    out.update(fold=spec["fold"], seed=seed, steps=steps, global_step=r.global_step, seconds=time.time() - t0,
               report_sequences=fold["report"], device=torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
               torch=torch.__version__)
    atomic_write_text(spec["result"], json.dumps(out, indent=2) + "\n")
    shutil.rmtree(spec["run_dir"], ignore_errors=True)  # checkpoints and logs: only the result is kept
    return out


# ----------------------------------------------------------------------------- scheduling
def plan(folds: List[int], seeds: List[int], arms: List[str], premise: bool, out: str, work: str) -> List[Dict]:
    """Every job (pre-trainings and fine-tunings) with its dependencies, in launch-priority order."""
    arms = list(arms) + (list(PREMISE_ARMS) if premise else [])
    jobs = []
    for fold in folds:
        for group, names in ((0, [a for a in arms if a in ARMS]), (1, [a for a in arms if a in PREMISE_ARMS])):
            for seed in seeds:
                recipes = [r for r in PRETRAIN if any(ALL_ARMS[a][0] == r for a in names)]
                for rank, recipe in enumerate(recipes):
                    jobs.append({"id": f"f{fold}/s{seed}/pretrain_{recipe}", "kind": "pretrain", "recipe": recipe,
                                 "fold": fold, "seed": seed, "deps": [], "prio": (fold, group, seed, 0, rank)})
                # long scratch runs first
                order = sorted(names, key=lambda a: (ALL_ARMS[a][0] is not None, ALL_ARMS[a][1] != "total"))
                for rank, arm in enumerate(order):
                    pre = ALL_ARMS[arm][0]
                    jobs.append({"id": f"f{fold}/s{seed}/{arm}", "kind": "finetune", "arm": arm, "fold": fold,
                                 "seed": seed, "deps": [f"f{fold}/s{seed}/pretrain_{pre}"] if pre else [],
                                 "prio": (fold, group, seed, 1, rank)})
    unique = {}
    for j in jobs:  # a pre-training shared by the premise is planned once, at its first priority
        unique.setdefault(j["id"], j)
    jobs = sorted(unique.values(), key=lambda j: j["prio"])
    for j in jobs:
        j["result"] = os.path.join(out, "runs", j["id"] + ".json")
        j["run_dir"] = os.path.join(work, "runs", j["id"])
        if j["kind"] == "pretrain":
            j["model_dir"] = os.path.join(work, "models", j["id"])
        elif j["deps"]:
            j["model_dir"] = os.path.join(work, "models", j["deps"][0])
    return jobs


def job_steps(job: Dict, preset: Dict) -> int:
    """Optimizer steps of a job."""
    if job["kind"] == "pretrain":
        return preset["pretrain_steps"]
    return preset["finetune_steps"] + (preset["pretrain_steps"] if ALL_ARMS[job["arm"]][1] == "total" else 0)


def _pretrain_ready(job: Dict) -> bool:
    return os.path.exists(job["result"]) and os.path.isfile(os.path.join(job["model_dir"], "config.json"))


def _finetune_done(job: Dict, heldout_npy: Optional[str]) -> bool:
    """A fine-tuning's result exists (and, when the held-out take is asked for, scores it)."""
    if not os.path.exists(job["result"]):
        return False
    if not heldout_npy:
        return True
    with open(job["result"], encoding="utf-8") as fh:
        return "heldout" in json.load(fh)["results"]


def schedule(jobs: List[Dict], preset: Dict, device: str, n_jobs: int, out: str, deadline: Optional[float],
             kill_after: Optional[float], log=print, heldout_npy: Optional[str] = None) -> Dict[str, str]:
    """Run ``jobs`` as subprocesses, ``n_jobs`` at once; returns ``{id: status}``. With ``heldout_npy``
    a fine-tuning that did not score the held-out take is run again."""
    t0 = time.time()
    by_id = {j["id"]: j for j in jobs}
    needed = {d for j in jobs if j["kind"] == "finetune" and not _finetune_done(j, heldout_npy) for d in j["deps"]}
    status = {}
    for j in jobs:
        if j["kind"] == "pretrain":
            done = _pretrain_ready(j) or (os.path.exists(j["result"]) and j["id"] not in needed)
        else:
            done = _finetune_done(j, heldout_npy)
        status[j["id"]] = "skipped (done)" if done else "pending"
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if device == "cpu":
        env.update(CUDA_VISIBLE_DEVICES="", ACCELERATE_USE_CPU="true")
    os.makedirs(os.path.join(out, "logs"), exist_ok=True)
    running: Dict[str, subprocess.Popen] = {}
    rates: Dict[str, List[float]] = {}  # kind -> wall seconds per optimizer step of finished jobs
    started: Dict[str, float] = {}
    ok = ("done", "skipped (done)")
    while True:
        for jid, proc in list(running.items()):
            rc = proc.poll()
            if rc is None:
                continue
            del running[jid]
            status[jid] = "done" if rc == 0 and os.path.exists(by_id[jid]["result"]) else f"failed (rc {rc})"
            if status[jid] == "done":
                kind = by_id[jid]["kind"]
                rates.setdefault(kind, []).append((time.time() - started[jid]) / job_steps(by_id[jid], preset))
            log(f"[{time.time() - t0:6.0f}s] {status[jid]}: {jid} ({time.time() - started[jid]:.0f}s)")
        for j in jobs:  # a failed dependency fails its dependants
            if status[j["id"]] == "pending" and any(status[d].startswith("failed") for d in j["deps"]):
                status[j["id"]] = "failed (dependency)"
        elapsed = time.time() - t0
        if kill_after is not None and elapsed > kill_after and running:
            for jid, proc in running.items():
                proc.terminate()
                status[jid] = "killed (--kill-after)"
                log(f"[{elapsed:6.0f}s] killed: {jid}")
            for proc in running.values():
                proc.wait()
            running.clear()
        launching = (deadline is None or elapsed < deadline) and (kill_after is None or elapsed < kill_after)
        if launching:
            for j in jobs:
                if len(running) >= n_jobs:
                    break
                if status[j["id"]] != "pending" or not all(status[d] in ok for d in j["deps"]):
                    continue
                rate = rates.get(j["kind"])
                if kill_after is not None and rate and elapsed + max(rate) * job_steps(j, preset) > kill_after:
                    continue  # would not finish before --kill-after (at the slowest measured seconds / step)
                spec = {k: j[k] for k in ("kind", "fold", "seed", "result", "run_dir") if k in j}
                spec.update({k: j[k] for k in ("recipe", "arm", "model_dir") if k in j}, preset=preset, device=device,
                            heldout_npy=heldout_npy)
                logf = open(os.path.join(out, "logs", j["id"].replace("/", "_") + ".log"), "w")
                running[j["id"]] = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker",
                                                     json.dumps(spec)], env=env, stdout=logf, stderr=subprocess.STDOUT,
                                                    cwd=ROOT)
                logf.close()
                started[j["id"]] = time.time()
                status[j["id"]] = "running"
                log(f"[{elapsed:6.0f}s] start: {j['id']}")
        if not running:  # nothing runs and nothing was launched: whatever is left cannot start
            break
        time.sleep(0.5)
    for jid, s in status.items():
        if s == "pending":
            status[jid] = "not started (deadline)"
    return status


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--budget", choices=("full", "smoke"), default="full")
    ap.add_argument("--pretrain-steps", type=int, help="override the budget's pre-training steps")
    ap.add_argument("--finetune-steps", type=int, help="override the budget's fine-tuning steps")
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    ap.add_argument("--jobs", type=int, default=1, help="trainings at once (1 CPU thread each)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2], choices=range(len(FOLDS)))
    ap.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated subset of {','.join(ARMS)}")
    ap.add_argument("--no-premise", action="store_true", help="skip the premise (one-sequence) runs")
    ap.add_argument("--deadline", type=float, help="seconds after which no new run is launched")
    ap.add_argument("--kill-after", type=float, help="seconds after which running runs are stopped (lost); a run "
                    "that would not finish by then at the measured seconds / step is not launched")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "pretraining_runs"),
                    help="per-run JSONs (resume: finished runs are skipped)")
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "mpm_bench_pretraining"),
                    help="pre-trained models and training folders")
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "results", "pretraining.json"))
    ap.add_argument("--md", default=os.path.join(ROOT, "bench", "results", "pretraining.md"))
    ap.add_argument("--heldout", action="store_true", help=f"also score every fine-tuning on {HELDOUT} (fetched "
                    "by bench_heldout_mocap.py into --heldout-cache; fine-tunings without it are run again)")
    ap.add_argument("--heldout-cache", help="bench_heldout_mocap.py's download cache (default: its own)")
    ap.add_argument("--report", action="store_true", help="only aggregate the finished runs under --out")
    a = ap.parse_args(argv)
    if a.worker:
        run_job(json.loads(a.worker))
        return 0
    if a.report:
        res = report(a.out, a.json, a.md)
        print(open(a.md, encoding="utf-8").read())
        return 0 if res["runs"] else 1
    arms = [x for x in a.arms.split(",") if x]
    bad = sorted(set(arms) - set(ARMS))
    if bad or a.jobs < 1:
        ap.error(f"unknown arm(s) {bad}; choose from {list(ARMS)}" if bad else "--jobs must be >= 1")
    preset = budget_preset(a.budget, a.pretrain_steps, a.finetune_steps)
    jobs = plan(a.folds, a.seeds, arms, not a.no_premise, a.out, a.work)
    os.makedirs(a.out, exist_ok=True)
    meta_path = os.path.join(a.out, "meta.json")
    if os.path.exists(meta_path):
        with open(meta_path, encoding="utf-8") as fh:
            old_meta = json.load(fh)
        old = old_meta.get("preset")
        if old != preset:
            raise SystemExit(f"{a.out} holds runs of another budget ({old}); use another --out")
    import torch

    command = "python bench/bench_pretraining.py " + " ".join(sys.argv[1:] if argv is None else argv)
    commands = old_meta.get("commands", [old_meta["command"]] if "command" in old_meta else []) if os.path.exists(meta_path) else []
    meta = {"commands": commands + ([command] if command not in commands else []),
            "preset": preset, "device": a.device, "jobs_at_once": a.jobs, "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name(0) if a.device == "cuda" and torch.cuda.is_available() else None,
            "cpu_cores": os.cpu_count()}
    atomic_write_text(meta_path, json.dumps(meta, indent=2) + "\n")
    t0 = time.time()
    print(f"{len(jobs)} jobs ({sum(j['kind'] == 'pretrain' for j in jobs)} pre-trainings), {a.jobs} at once on "
          f"{a.device}", flush=True)
    heldout_npy = None
    if a.heldout:
        import bench_heldout_mocap

        heldout_npy = prepare_heldout(a.heldout_cache or bench_heldout_mocap.CACHE_DIR, a.work)
    status = schedule(jobs, preset, a.device, a.jobs, a.out, a.deadline, a.kill_after,
                      log=lambda m: print(m, flush=True), heldout_npy=heldout_npy)
    counts = {}
    for s in status.values():
        counts[s] = counts.get(s, 0) + 1
    meta["wall_s"] = time.time() - t0
    meta["status"] = counts
    atomic_write_text(meta_path, json.dumps(meta, indent=2) + "\n")
    report(a.out, a.json, a.md, meta)
    print(open(a.md, encoding="utf-8").read())
    print(f"wall {meta['wall_s']:.0f}s; runs: {counts}", flush=True)
    return 0 if not any(s.startswith("failed") for s in status.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
