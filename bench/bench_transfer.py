"""Does MPM pre-training pay off on motion the lifter never saw? Leave-sequences-out transfer.

    python bench/bench_transfer.py --budget small                     # the report's run
    python bench/bench_transfer.py --budget smoke --out /tmp/t.json    # seconds (tests)
    python bench/bench_transfer.py --recipes wide_lift --seeds 0 --jobs 1

Protocol (held-out motion, several random cameras, seeds):

* **train** on the demo training sequences (CMU 01_01, climbing seq_0-2), **test** on sequences
  no stage ever sees: the demo's held-out CMU 01_03 and climbing seq_3, plus, when present,
  extra real motion capture outside the repository (``--extra-test``: ``.npz`` files with
  ``pose_3d`` (T, 17, 3) metres, world frame Z up, 50 Hz; default: ``bench/extra_mocap/*.npz``,
  made with ``--prepare-extra``; see DATA_NOTES.md).
* each test sequence is seen through ``--test-cameras`` random Human3.6M-like cameras per seed
  (any yaw, elevation 0-20 degrees, 4-6 m, focal 1145 px on 1000 x 1000, 2D noise 2 px);
* per recipe and seed: pre-train (masked 2D + 3D pose modeling, the recipe's data), fine-tune the
  lifter from it, and fine-tune the same lifter from scratch with the same data and steps;
* **regimes**: ``full`` (the lifter is fine-tuned on all training sequences) and ``low``
  (pre-training on all training motion as unpaired 2D and 3D, the lifter fine-tuned on one
  paired sequence, ``--low-label-sequence``; the scratch lifter gets the same);
* the **per-sequence mean-pose baseline**: predicting each test sequence's mean camera-frame
  pose for every frame (an input-blind predictor that even knows the test motion's mean);
  ratios below 1.0 say how much of the pose the lifter actually reads from the 2D.

Recipes (``RECIPES``; overrides of the demo's run configs, ``modeling_mpm.demo._run_config``):
``baseline`` (today's demo data: random orbit cameras and flips), ``motion``
(``data.augment: motion``), ``wide`` (``data.augment: wide``: motion + wide cameras + detector
noise), ``wide_lift`` (``wide`` + the paper v1's masked 2D -> 3D lifting pretext task; pairs 2D
with 3D, so it is not run in the ``low`` regime).

Writes ``bench/results/transfer_<budget>.json`` (per job and a summary: mean ± std over seeds).
``--jobs N`` runs N trainings at once (processes; each with ``cores / N`` threads).
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import sys
import time
from typing import Dict, List, Optional

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402

BUDGETS = {
    "smoke": dict(preset="quick", pretrain_steps=3, finetune_steps=3, seeds=[0], test_cameras=1, eval_stride=40),
    "small": dict(preset="full", pretrain_steps=1000, finetune_steps=700, seeds=[0, 1, 2], test_cameras=4,
                  eval_stride=4),
}

# the demo's pre-training pretext and transfer keys (modeling_mpm.demo.PRESETS) switched off: every recipe
# but "demo" is the recipe it was measured with, before those keys existed
NO_DEMO_TRANSFER = dict(pretrain_lift_weight=0.0, freeze_encoder_steps=0, rescale_encoder_stream=False)

RECIPES: Dict[str, Dict] = {
    # `mpm demo` as shipped: motion augmentation, lifting pretext from the occluded clip, rescaled stream, LP-FT
    "demo": {"pre": [], "ft": [], "demo_defaults": True, "paired_pretraining": True},
    "baseline": {"pre": [], "ft": []},
    "motion": {"pre": ["data.augment=motion"], "ft": ["data.augment=motion"]},
    "wide": {"pre": ["data.augment=wide"], "ft": ["data.augment=wide"]},
    "wide_lift": {"pre": ["data.augment=wide", "training.pretrain_lift=true"], "ft": ["data.augment=wide"],
                  "paired_pretraining": True},
    # the same, the pre-trained lifter fine-tuned with a 4x lower learning rate (scratch keeps its own)
    "baseline_lr5e4": {"pre": [], "ft": [], "ft_pretrained": ["training.lr=5e-4"]},
    "motion_lr5e4": {"pre": ["data.augment=motion"], "ft": ["data.augment=motion"],
                     "ft_pretrained": ["training.lr=5e-4"]},
    "motion_lift_lr5e4": {"pre": ["data.augment=motion", "training.pretrain_lift=true"],
                          "ft": ["data.augment=motion"], "ft_pretrained": ["training.lr=5e-4"],
                          "paired_pretraining": True},
    "wide_lift_lr5e4": {"pre": ["data.augment=wide", "training.pretrain_lift=true"], "ft": ["data.augment=wide"],
                        "ft_pretrained": ["training.lr=5e-4"], "paired_pretraining": True},
}

EXTRA_DIR = os.path.join(C.ROOT, "bench", "extra_mocap")


# ----------------------------------------------------------------------------- test data
def test_cameras(seed: int, n: int):
    """``n`` random Human3.6M-like cameras for test seed ``seed`` (deterministic)."""
    from modeling_mpm.cameras import VirtualCameraSampler

    rng = np.random.default_rng(np.random.SeedSequence([seed, 424242]))
    sampler = VirtualCameraSampler(elevation_range=(0.0, math.radians(20.0)), distance_range=(4.0, 6.0),
                                   focal_range=(1145.0, 1145.0), max_offset=0.3)
    return sampler.sample_many(rng, n)


def prepare_extra(npy: str, joint_names: Optional[str] = None, out_dir: str = EXTRA_DIR) -> str:
    """Convert a holosoma-retargeting climbing ``.npy`` (T, 53, 3) into ``out_dir/<name>.npz``
    (H36M-17, metres, Z up, 50 Hz) for ``--extra-test``; returns the path."""
    from modeling_mpm.data import load_climb_npy

    pose, fps = load_climb_npy(npy, joint_names=joint_names)
    name = os.path.basename(npy).split("_joint_positions")[0].replace("mocap_", "")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"{name}.npz")
    np.savez_compressed(path, pose_3d=pose, fps=fps, sequence=name, source=os.path.basename(npy))
    return path


def test_sets(extra: List[str]) -> Dict[str, List[dict]]:
    """name -> world-frame sequences (dicts with pose_3d (T, 17, 3), coordinate_frame world)."""
    from modeling_mpm.data import load_demo_dataset, load_sequences

    out = {"demo_held_out": load_sequences(load_demo_dataset()["validation"])}
    for path in extra:
        d = np.load(path, allow_pickle=False)
        name = str(d["sequence"]) if "sequence" in d else os.path.splitext(os.path.basename(path))[0]
        out[f"extra_{name}"] = [{"pose_3d": np.asarray(d["pose_3d"], np.float32), "coordinate_frame": "world",
                                 "sequence": name}]
    return out


def test_windows(seqs: List[dict], num_frames: int, seed: int, n_cams: int, stride: int):
    """Held-out windows through ``n_cams`` random cameras with 2 px 2D noise (LabelledWindows)."""
    from modeling_mpm.data import PoseNoise2D, PoseWindowDataset
    from modeling_mpm.training.data_sources import LabelledWindows, sequence_label

    w = PoseWindowDataset(seqs, num_frames=num_frames, stride=stride, mode="paired", flip_prob=0.0,
                          skeleton="h36m17", virtual_cameras=test_cameras(seed, n_cams),
                          noise_2d=PoseNoise2D(std=0.004), valid_only=True, seed=10_000 + seed)
    return LabelledWindows(w, [sequence_label(s) for s in seqs])


# ----------------------------------------------------------------------------- jobs
def _cfg(task, out, p, steps, lr, seed, overrides, init_from=None, train_sequences=None):
    from modeling_mpm.demo import _run_config

    cfg = _run_config(task, out, p, steps, lr, seed, init_from=init_from)
    extra = list(overrides) + ["data.val_split=null", "training.checkpoint_every=1000000",
                               "training.eval_every=1000000", "training.progress_bar=false"]
    if train_sequences:
        extra.append("data.train_sequences=[" + ",".join(train_sequences) + "]")
    return cfg.with_overrides(extra)


def _evaluate(model, sets, p, seed, a) -> Dict:
    from modeling_mpm.demo import mean_pose_baseline
    from modeling_mpm.evaluation import evaluate_lifting

    out = {}
    for name, seqs in sets.items():
        ds = test_windows(seqs, p["num_frames"], seed, a["test_cameras"], a["eval_stride"])
        r = evaluate_lifting(model, ds, batch_size=512)
        out[name] = {"mpjpe": r["mpjpe"], "p_mpjpe": r["p_mpjpe"], "windows": r["windows"],
                     "per_sequence": {k: v["mpjpe"] for k, v in r["per_action"].items()},
                     "mean_pose": mean_pose_baseline(ds)["mpjpe"]}
    return out


def run_job(job: Dict) -> Dict:
    """One job: ``kind`` "pretrained" (pre-train, then fine-tune in each regime) or "scratch"."""
    import torch

    from modeling_mpm.demo import PRESETS
    from modeling_mpm.training.trainer import train

    torch.set_num_threads(job["threads"])
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    import logging

    logging.getLogger("modeling_mpm.training").setLevel(logging.WARNING)
    a = job["args"]
    p = dict(PRESETS[a["preset"]])
    p.update(pretrain_steps=a["pretrain_steps"], finetune_steps=a["finetune_steps"])
    seed, recipe = job["seed"], RECIPES[job["recipe"]]
    if not recipe.get("demo_defaults"):
        p.update(NO_DEMO_TRANSFER)
    root = os.path.join(job["work"], f"{job['kind']}-{job['recipe']}-s{seed}")
    sets = test_sets(job["extra"])
    t0 = time.time()
    res = {"kind": job["kind"], "recipe": job["recipe"], "seed": seed, "regimes": {}}
    init = None
    if job["kind"] == "pretrained":
        cfg = _cfg("pretrain", os.path.join(root, "pre"), p, p["pretrain_steps"], p["pretrain_lr"], seed, recipe["pre"])
        r = train(cfg, export=False)
        init = os.path.join(root, "mpm-pretrain")
        r.model.save_pretrained(init)
        res["pretrain_s"] = time.time() - t0
    for regime in job["regimes"]:
        t = time.time()
        seqs = [a["low_label_sequence"]] if regime == "low" else None
        ft = recipe["ft"] + (recipe.get("ft_pretrained", []) if init else [])
        cfg = _cfg("lift", os.path.join(root, f"lift-{regime}"), p, p["finetune_steps"], p["finetune_lr"], seed,
                   ft, init_from=init, train_sequences=seqs)
        r = train(cfg, export=False)
        res["regimes"][regime] = {"test": _evaluate(r.model, sets, p, seed, a), "finetune_s": time.time() - t}
    res["seconds"] = time.time() - t0
    return res


def evaluate_demo(demo_dir: str, extra: List[str], seeds: List[int], n_cams: int, eval_stride: int) -> Dict:
    """The two lifters written by ``mpm demo`` (``demo_dir/mpm-lift``, ``demo_dir/mpm-lift-scratch``)
    on every test set through the random test cameras of each seed, with the mean-pose baseline."""
    from modeling_mpm import MPMForPoseLifting
    from modeling_mpm.demo import mean_pose_baseline
    from modeling_mpm.evaluation import evaluate_lifting

    models = {name: MPMForPoseLifting.from_pretrained(os.path.join(demo_dir, d)).eval()
              for name, d in (("pretrained", "mpm-lift"), ("scratch", "mpm-lift-scratch"))}
    F = models["pretrained"].config.num_frames
    out: Dict = {}
    for name, seqs in test_sets(extra).items():
        rows = []
        for seed in seeds:
            ds = test_windows(seqs, F, seed, n_cams, eval_stride)
            row = {k: evaluate_lifting(m, ds, batch_size=512)["mpjpe"] for k, m in models.items()}
            row["mean_pose"] = mean_pose_baseline(ds)["mpjpe"]
            rows.append(row)
        pre, sc, mp = (np.array([r[k] for r in rows]) for k in ("pretrained", "scratch", "mean_pose"))
        out[name] = {"seeds": seeds, "per_seed": rows, "pretrained": C.mean_std(pre), "scratch": C.mean_std(sc),
                     "mean_pose": C.mean_std(mp), "pretrained_vs_scratch": C.mean_std(pre / sc),
                     "pretrained_vs_mean_pose": C.mean_std(pre / mp), "scratch_vs_mean_pose": C.mean_std(sc / mp)}
    return out


def plan(recipes: List[str], seeds: List[int], regimes: List[str]) -> List[Dict]:
    jobs, scratch_seen = [], set()
    for recipe in recipes:
        rg = [r for r in regimes if not (r == "low" and RECIPES[recipe].get("paired_pretraining"))]
        for seed in seeds:
            jobs.append({"kind": "pretrained", "recipe": recipe, "seed": seed, "regimes": rg})
            for regime in rg:  # one scratch lifter per fine-tuning data, seed and regime
                key = (json.dumps(RECIPES[recipe]["ft"]), seed, regime)
                if key not in scratch_seen:
                    scratch_seen.add(key)
                    jobs.append({"kind": "scratch", "recipe": recipe, "seed": seed, "regimes": [regime]})
    return jobs


def summarize(jobs: List[Dict]) -> Dict:
    """recipe -> regime -> test set -> pretrained / scratch / mean_pose (mean ± std over seeds)
    and the per-seed ratios pretrained/scratch and pretrained/mean_pose."""
    scratch = {}
    for j in jobs:
        if j["kind"] == "scratch":
            for regime, rr in j["regimes"].items():
                scratch[(json.dumps(RECIPES[j["recipe"]]["ft"]), j["seed"], regime)] = rr
    out: Dict = {}
    for j in jobs:
        if j["kind"] != "pretrained":
            continue
        for regime, rr in j["regimes"].items():
            s = scratch.get((json.dumps(RECIPES[j["recipe"]]["ft"]), j["seed"], regime))
            for name, t in rr["test"].items():
                cell = out.setdefault(j["recipe"], {}).setdefault(regime, {}).setdefault(
                    name, {"seeds": [], "pretrained": [], "scratch": [], "mean_pose": []})
                cell["seeds"].append(j["seed"])
                cell["pretrained"].append(t["mpjpe"])
                cell["mean_pose"].append(t["mean_pose"])
                sc = s["test"].get(name) if s else None
                cell["scratch"].append(sc["mpjpe"] if sc else None)
    for recipe in out.values():
        for regime in recipe.values():
            for cell in regime.values():
                pre, sc, mp = (np.array([x if x is not None else np.nan for x in cell[k]], float)
                               for k in ("pretrained", "scratch", "mean_pose"))
                cell["summary"] = {
                    "pretrained": C.mean_std(pre), "scratch": C.mean_std(sc), "mean_pose": C.mean_std(mp),
                    "pretrained_vs_scratch": C.mean_std(pre / sc), "pretrained_vs_mean_pose": C.mean_std(pre / mp),
                    "scratch_vs_mean_pose": C.mean_std(sc / mp),
                }
    return out


def _fmt(d: Dict) -> str:
    return f"{d['mean']:6.1f} ± {d['std']:4.1f}"


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budget", choices=sorted(BUDGETS), default="small")
    ap.add_argument("--recipes", default="baseline,wide,wide_lift", help="comma-separated names of RECIPES")
    ap.add_argument("--regimes", default="full,low")
    ap.add_argument("--seeds", type=int, nargs="*", default=None)
    ap.add_argument("--pretrain-steps", type=int, default=None)
    ap.add_argument("--finetune-steps", type=int, default=None)
    ap.add_argument("--test-cameras", type=int, default=None)
    ap.add_argument("--low-label-sequence", default="cmu_01_01")
    ap.add_argument("--extra-test", nargs="*", default=None,
                    help="extra held-out .npz files (default: bench/extra_mocap/*.npz when present)")
    ap.add_argument("--prepare-extra", nargs="+", metavar=("NPY", "JOINT_NAMES_JSON"), default=None,
                    help="convert a holosoma climbing .npy (+ its joint_names.json) into bench/extra_mocap/ and exit")
    ap.add_argument("--evaluate-demo", metavar="DEMO_DIR", default=None,
                    help="only evaluate the two lifters an `mpm demo --output-dir DEMO_DIR` wrote, on the test sets "
                         "(default out: bench/results/transfer_demo_lifters.json)")
    ap.add_argument("--jobs", type=int, default=1, help="trainings run at once (processes)")
    ap.add_argument("--work", default=os.path.join(C.RESULTS_DIR, "transfer_runs"), help="models and logs (not committed)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    if args.evaluate_demo:
        extra = args.extra_test if args.extra_test is not None else sorted(glob.glob(os.path.join(EXTRA_DIR, "*.npz")))
        b = BUDGETS[args.budget]
        res = evaluate_demo(args.evaluate_demo, extra, args.seeds or b["seeds"], args.test_cameras or b["test_cameras"],
                            b["eval_stride"])
        meta = C.run_meta(args.budget, 0, argv=None if argv is None else argv, script=__file__)
        demo_res = os.path.join(args.evaluate_demo, "results.json")
        if os.path.exists(demo_res):
            with open(demo_res) as f:
                d = json.load(f)
            meta.update(demo_budget=d.get("budget"), demo_step_budget=d.get("step_budget"), demo_timing=d.get("timing_s"))
        C.write_json({"meta": meta, "test": res}, args.out or os.path.join(C.RESULTS_DIR, "transfer_demo_lifters.json"))
        for name, r in res.items():
            print(f"{name:22s} pre {_fmt(r['pretrained'])}  scratch {_fmt(r['scratch'])}  mean-pose "
                  f"{r['mean_pose']['mean']:.1f}  pre/scratch {r['pretrained_vs_scratch']['mean']:.3f}  "
                  f"pre/mean-pose {r['pretrained_vs_mean_pose']['mean']:.3f}  scratch/mean-pose "
                  f"{r['scratch_vs_mean_pose']['mean']:.3f}")
        return 0
    if args.prepare_extra:
        print("wrote", prepare_extra(args.prepare_extra[0], args.prepare_extra[1] if len(args.prepare_extra) > 1 else None))
        return 0
    b = dict(BUDGETS[args.budget])
    for k in ("pretrain_steps", "finetune_steps", "test_cameras"):
        if getattr(args, k) is not None:
            b[k] = getattr(args, k)
    seeds = args.seeds if args.seeds else b["seeds"]
    recipes = [r for r in args.recipes.split(",") if r]
    bad = [r for r in recipes if r not in RECIPES]
    if bad:
        raise SystemExit(f"unknown recipe(s) {bad}; known: {list(RECIPES)}")
    regimes = [r for r in args.regimes.split(",") if r]
    if set(regimes) - {"full", "low"}:
        raise SystemExit("--regimes takes full and/or low")
    extra = args.extra_test if args.extra_test is not None else sorted(glob.glob(os.path.join(EXTRA_DIR, "*.npz")))
    out_path = args.out or os.path.join(C.RESULTS_DIR, f"transfer_{args.budget}.json")
    cores = os.cpu_count() or 1
    threads = max(1, cores // max(1, args.jobs))
    common_args = {"preset": b["preset"], "pretrain_steps": b["pretrain_steps"], "finetune_steps": b["finetune_steps"],
                   "test_cameras": b["test_cameras"], "eval_stride": b["eval_stride"],
                   "low_label_sequence": args.low_label_sequence}
    jobs = [dict(j, args=common_args, threads=threads, work=args.work, extra=extra) for j in plan(recipes, seeds, regimes)]
    meta = C.run_meta(args.budget, threads, argv=None if argv is None else argv, script=__file__)
    try:
        import torch

        meta["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    except Exception:  # pragma: no cover
        meta["device"] = "cpu"
    meta.update(jobs_at_once=args.jobs, extra_test=[os.path.relpath(e, C.ROOT) for e in extra], **common_args)
    t0 = time.time()
    done: List[Dict] = []

    def save():
        C.write_json({"meta": {**meta, "wall_s": time.time() - t0, "load_after": C.load_average()},
                      "recipes": {r: RECIPES[r] for r in recipes}, "jobs": done, "summary": summarize(done)}, out_path)

    if args.jobs <= 1:
        for j in jobs:
            done.append(run_job(j))
            save()
    else:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(args.jobs) as pool:
            for r in pool.imap_unordered(run_job, jobs):
                done.append(r)
                print(f"[{time.time() - t0:6.0f}s] done {r['kind']} {r['recipe']} seed {r['seed']} in {r['seconds']:.0f}s "
                      + " ".join(f"{g}: {t['test']['demo_held_out']['mpjpe']:.1f}" for g, t in r["regimes"].items()
                                 if "demo_held_out" in t["test"]), flush=True)
                save()
    save()
    summary = summarize(done)
    for recipe, regimes_ in summary.items():
        for regime, sets in regimes_.items():
            for name, cell in sets.items():
                s = cell["summary"]
                print(f"{recipe:10s} {regime:4s} {name:22s} pre {s['pretrained']['mean']:6.1f}  scratch "
                      f"{s['scratch']['mean']:6.1f}  mean-pose {s['mean_pose']['mean']:6.1f}  pre/scratch "
                      f"{s['pretrained_vs_scratch']['mean']:.3f}  pre/mean-pose {s['pretrained_vs_mean_pose']['mean']:.3f}")
    print("wrote", out_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
