"""``mpm demo``: pre-training, fine-tuning and evaluation on the embedded real-motion demo data, offline, on a CPU.

1. pre-train :class:`~modeling_mpm.MPMForMaskedPoseModeling` on the training split: masked 2D + masked 3D pose
   modeling (5 : 2) plus supervised 2D -> 3D lifting of the unmasked clip with the lifting task's missing joints
   and limbs (``pretrain_lift_input: occluded``, weight ``pretrain_lift_weight``), not the paper's lifting of the
   masked 2D. Compute-matched, pre-training has not beaten training from scratch (bench/RESULTS.md section 12);
2. fine-tune a lifter (:class:`~modeling_mpm.MPMForPoseLifting`) from that encoder (rescaled residual stream,
   encoder frozen for ``freeze_encoder_steps``), with the same missing joints and limbs as augmentation;
3. fine-tune the same lifter from scratch with the same budget and augmentation;
4. evaluate both on the held-out split (4 fixed virtual cameras), MPJPE / P-MPJPE in mm: plain, flip TTA,
   3 random joints missing per frame, one limb missing.

Every stage uses the ``"real"`` augmentation (:data:`modeling_mpm.data.augment.AUGMENT_PRESETS`). Writes under
``--output-dir``: ``mpm-pretrain/``, ``mpm-lift/``, ``mpm-lift-scratch/`` (save_pretrained folders with model
cards), ``results.json``, ``example.png`` (one validation frame) and ``runs/``. ``--quick``: seconds, for tests.
"""

from __future__ import annotations

import json
import os
import time
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

__all__ = ["PRESETS", "run_demo"]

#: No dropout anywhere in the encoder, the embeddings or the lifter's MLPs: with the ``"real"`` augmentation the
#: short CPU runs underfit, and dropout (0.1 / 0.1 / 0.2 in the authors' code) cost a quarter of every step
#: (CPU dropout draws a random number per activation) and some held-out accuracy (docs/training.md, "Dropout").
NO_DROPOUT = dict(dropout=0.0, mlp_dropout=0.0, lifter_mlp_dropout=0.0)

#: Budgets; "full": 645 s measured on 2 CPU threads, 2026-12-07 (docs/training.md).
PRESETS: Dict[str, Dict] = {
    "full": dict(num_frames=27, hidden_size=128, intermediate_size=256, num_layers=2, num_attention_heads=8,
                 batch_size=64, pretrain_steps=2000, finetune_steps=700, pretrain_lr=2e-3, finetune_lr=2e-3,
                 train_stride=1, eval_stride=4, eval_batch_size=512, augment="real",
                 pretrain_lift_weight=10.0, pretrain_lift_input="occluded", freeze_encoder_steps=150,
                 rescale_encoder_stream=True, occlusion_limb_prob=0.5, **NO_DROPOUT),
    "quick": dict(num_frames=9, hidden_size=32, intermediate_size=64, num_layers=1, num_attention_heads=4,
                  batch_size=16, pretrain_steps=3, finetune_steps=3, pretrain_lr=1e-3, finetune_lr=1e-3,
                  train_stride=9, eval_stride=60, eval_batch_size=256, augment="real",
                  pretrain_lift_weight=10.0, pretrain_lift_input="occluded", freeze_encoder_steps=1,
                  rescale_encoder_stream=True, occlusion_limb_prob=0.5, **NO_DROPOUT),
}

#: the shipped general lifter (train/general_lifter.py): the demo's recipe, longer, on every embedded sequence
#: (with the authors' dropout, which it was trained with: a stage without it was mixed, docs/real_footage.md)
PRESETS["general"] = dict(PRESETS["full"], pretrain_steps=5000, finetune_steps=5000, train_split="train+validation",
                          dropout=0.1, mlp_dropout=0.1, lifter_mlp_dropout=0.2)

SETTINGS = (
    ("plain", "no occlusion", dict()),
    ("flip", "no occlusion, flip TTA", dict(flip=True)),
    ("joints3", "3 random joints missing / frame", dict(occluded_joints=3)),
    ("limb", "one limb missing", dict(occluded_limb=True)),
)


def _run_config(task: str, out: str, p: Dict, steps: int, lr: float, seed: int, init_from: Optional[str] = None):
    from .training.config import RunConfig

    model = {k: p[k] for k in ("num_frames", "hidden_size", "intermediate_size", "num_layers", "num_attention_heads")}
    model.update(skeleton="h36m17", num_joints=17)
    dropout = {k: float(p[k]) for k in NO_DROPOUT if k in p}  # also set on a transferred or continued model
    model.update(dropout)
    lift_pretext = task == "pretrain" and bool(p.get("pretrain_lift_weight"))
    occluded = task == "lift" or lift_pretext
    if lift_pretext:
        model["loss_weight_lift"] = float(p["pretrain_lift_weight"])
    transfer = {}
    if init_from and task == "lift":  # the fine-tuning of a transferred encoder (transfer.py)
        transfer = {"freeze_encoder_steps": int(p.get("freeze_encoder_steps", 0)),
                    "rescale_encoder_stream": bool(p.get("rescale_encoder_stream", False))}
    data_dir = p.get("data_dir")  # a prepared data set instead of the embedded one (train/general_lifter.py --omomo)
    return RunConfig({
        "model": dropout if init_from else model,
        "data": {"source": "prepared" if data_dir else "demo", "paths": [data_dir] if data_dir else [],
                 "train_split": p.get("train_split", "train"),
                 "train_stride": p["train_stride"], "eval_stride": p["eval_stride"],
                 "flip_augment": True, "test_split": None, "max_val_windows": 2048, "augment": p.get("augment")},
        "training": {
            "task": task, "output_dir": out, "init_from": init_from, "max_steps": steps,
            "batch_size": p["batch_size"], "lr": lr, "lr_decay": 0.1, "lr_decay_steps": steps,
            "lr_schedule": "smooth", "warmup_steps": max(1, steps // 20), "seed": seed,
            "checkpoint_every": max(1, steps // 2), "keep_checkpoints": 1, "eval_every": steps,
            "log_every": max(1, steps // 10), "select_best": False, "tensorboard": False,
            # the lifting task's missing joints and limbs, also in pre-training's supervised lifting of the clip
            "occlusion_prob": 0.5 if occluded else 0.0, "occlusion_max_joints": 3,
            "occlusion_limb_prob": float(p.get("occlusion_limb_prob", 0.0)) if occluded else 0.0,
            "pretrain_lift": lift_pretext,
            "pretrain_lift_input": p.get("pretrain_lift_input", "visible") if lift_pretext else "masked",
            **transfer,
        },
        "eval": {"batch_size": p["eval_batch_size"], "flip": True},
    })


def _evaluate(model, dataset, batch_size: int, seed: int) -> Dict[str, Dict]:
    from .evaluation import evaluate_lifting

    return {key: evaluate_lifting(model, dataset, batch_size=batch_size, seed=seed, **kw)
            for key, _, kw in SETTINGS}


def _window_arrays(dataset):
    """Centre-frame 3D ``(N, J, 3)``, ``(sequence, camera)`` group ids ``(N,)`` and action labels of a
    ``LabelledWindows`` over a fixed-camera ``PoseWindowDataset`` (optionally in a ``Subset``)."""
    indices = np.arange(len(dataset))
    ds = dataset
    if hasattr(ds, "indices") and hasattr(ds, "dataset"):  # training.data.Subset
        indices, ds = np.asarray(ds.indices, dtype=np.int64), ds.dataset
    windows, labels = getattr(ds, "windows", None), getattr(ds, "labels", None)
    if windows is None or not hasattr(windows, "get_batch"):
        raise TypeError("mean_pose_baseline needs LabelledWindows over a PoseWindowDataset")
    b = windows.get_batch(indices)
    c = b["pose_3d"].shape[1] // 2
    groups = b["sequence_index"].astype(np.int64) * 1000 + b["camera_index"].astype(np.int64)
    return b["pose_3d"][:, c], groups, [labels[int(i)] for i in b["sequence_index"]]


def mean_pose_baseline(dataset) -> Dict:
    """MPJPE (mm, mean over actions) of predicting each held-out sequence and camera's mean root-relative pose on
    every frame: at best what a lifter ignoring its 2D input could do (a lifter that learned nothing scores ~1.0x)."""
    from .metrics import ActionErrorMeter

    pose, groups, labels = _window_arrays(dataset)
    pred = np.empty_like(pose)
    for g in np.unique(groups):
        sel = groups == g
        pred[sel] = pose[sel].mean(axis=0)
    err = np.linalg.norm(pred - pose, axis=-1).mean(axis=-1) * 1000.0
    meter = ActionErrorMeter()
    meter.update(err, labels)
    return {"mpjpe": meter.mean_over_actions(), "per_action": meter.per_action(), "windows": len(err)}


def _table(results: Dict[str, Dict[str, Dict]], n_windows: int, baseline: Optional[Dict] = None,
           sequences: Optional[List[str]] = None) -> str:
    names = list(results)
    seqs = f" ({', '.join(sequences)}: motion never used in pre-training or fine-tuning)" if sequences else ""
    head = f"{'setting':<34}" + "".join(f"{n:>24}" for n in names)
    if len(names) == 2:
        head += f"{names[0] + ' / ' + names[1]:>26}"
    lines = [f"Lifting on the held-out demo split{seqs}, {n_windows} windows, 4 virtual cameras: "
             "MPJPE / P-MPJPE in mm", head, "-" * len(head)]
    for key, label, _ in SETTINGS:
        row = f"{label:<34}"
        for n in names:
            r = results[n][key]
            row += f"{r['mpjpe']:>14.1f} / {r['p_mpjpe']:>6.1f}"
        if len(names) == 2:
            row += f"{results[names[0]][key]['mpjpe'] / results[names[1]][key]['mpjpe']:>25.2f}x"
        lines.append(row)
    if baseline is not None:
        b = baseline["mpjpe"]
        lines.append(f"{'per-sequence mean pose (no input)':<34}" + "".join(f"{b:>14.1f} /    -  " for _ in names))
        lines.append(f"{'MPJPE / mean-pose baseline':<34}"
                     + "".join(f"{results[n]['plain']['mpjpe'] / b:>23.2f}x" for n in names))
    return "\n".join(lines)


def render_example(path: str, pose_2d: np.ndarray, pred_3d: np.ndarray, gt_3d: np.ndarray, skeleton="h36m17",
                   mask: Optional[np.ndarray] = None, title: str = "") -> str:
    """PNG: 2D input (normalised, missing joints as crosses), predicted 3D, ground-truth 3D. ``pose_2d`` (J, 2),
    ``pred_3d`` / ``gt_3d`` (J, 3) metres (camera frame)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from .render import bone_colors, plot_skeleton_3d, setup_camera_axes_3d
    from .skeleton import get_skeleton

    skel = get_skeleton(skeleton)
    fig = plt.figure(figsize=(12, 4.2))
    ax = fig.add_subplot(1, 3, 1)
    miss = np.zeros(skel.num_joints, bool) if mask is None else np.asarray(mask, bool)
    for (p, c), col in zip(skel.bones, bone_colors(skel)):
        if not (miss[p] or miss[c]):
            ax.plot(pose_2d[[p, c], 0], pose_2d[[p, c], 1], color=col, lw=2)
    ax.scatter(pose_2d[~miss, 0], pose_2d[~miss, 1], s=10, c="k")
    if miss.any():
        ax.scatter(pose_2d[miss, 0], pose_2d[miss, 1], s=40, c="orange", marker="x", label="missing (masked)")
        ax.legend(loc="lower right", fontsize=8)
    ax.invert_yaxis()
    ax.set_aspect("equal")
    ax.set_title("2D input (normalised screen)")
    span = max(np.ptp(gt_3d, axis=0).max(), 1e-3) * 0.6
    mid = gt_3d.mean(axis=0)
    for k, (pose, name) in enumerate(((pred_3d, "predicted 3D"), (gt_3d, "ground truth 3D"))):
        ax3 = fig.add_subplot(1, 3, 2 + k, projection="3d")
        plot_skeleton_3d(ax3, pose, skel)
        setup_camera_axes_3d(ax3, mid, span, name, elev=10.0, labels=("x", "z", "-y"))
        ax3.set_box_aspect((1, 1, 1))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def choose_threads() -> Tuple[int, str]:
    """Torch threads for the demo and why: ``min(2, cores)``, but 1 when the 1-minute load average exceeds
    ``cores - 1`` (two spinning threads on busy cores run several times slower). ``--threads`` overrides."""
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # pragma: no cover - not on every platform
        return min(2, cores), f"{cores} CPU core(s), load average unknown"
    if load > max(cores - 1, 0.5):
        return 1, (f"the machine is busy (load average {load:.1f} on {cores} cores): one thread runs faster "
                   f"than two competing ones; pass --threads 2 to override")
    return min(2, cores), f"{cores} CPU core(s), load average {load:.1f}"


def _load_average() -> str:
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except (AttributeError, OSError):  # pragma: no cover
        return "n/a"


def _check_demo_args(output_dir, pretrain_steps, finetune_steps, threads) -> None:
    if not isinstance(output_dir, str) or not output_dir:
        raise ValueError("output_dir must be a non-empty path")
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ValueError(f"output_dir {output_dir!r} is a file, not a folder; pass a new or existing folder")
    for name, v in (("pretrain_steps", pretrain_steps), ("finetune_steps", finetune_steps), ("threads", threads)):
        if v is not None and (not isinstance(v, int) or v <= 0):
            raise ValueError(f"{name} must be a positive int, got {v!r}")


def _train_demo_models(output_dir: str, p: Dict, seed: int, progress: bool, stage, timing: Dict[str, float]):
    """Pre-train, export ``mpm-pretrain``, fine-tune a lifter from it and one from scratch. Returns
    ``(pre-training dir, its last validation, {name: lifter}, {name: run config})``."""
    from .training.export import export_model
    from .training.trainer import train

    runs = os.path.join(output_dir, "runs")
    w = p.get("pretrain_lift_weight")
    lift = f" + supervised 2D->3D lifting (weight {w:g})" if w else ""
    stage(f"pre-training masked 2D + 3D pose modeling{lift}: {p['pretrain_steps']} steps x {p['batch_size']} windows")
    t = time.time()
    cfg_pre = _run_config("pretrain", os.path.join(runs, "pretrain"), p, p["pretrain_steps"], p["pretrain_lr"], seed)
    r_pre = train(cfg_pre, progress=progress, export=False, overwrite_output_dir=True)  # runs/ belongs to the demo
    pre_dir = os.path.join(output_dir, "mpm-pretrain")
    pre_val = r_pre.history[-1] if r_pre.history else {}
    export_model(r_pre.model, pre_dir, cfg=cfg_pre, eval_results={"masked_modeling": pre_val},
                 global_step=r_pre.global_step, model_name="mpm-pretrain")
    timing["pretrain_s"] = time.time() - t
    lifters, cfgs = {}, {}
    for name, init in (("pretrained", pre_dir), ("scratch", None)):  # the same architecture
        stage(f"fine-tuning the lifter ({name}): {p['finetune_steps']} steps")
        t = time.time()
        cfg = _run_config("lift", os.path.join(runs, f"lift-{name}"), p, p["finetune_steps"], p["finetune_lr"],
                          seed, init_from=init)
        r = train(cfg, progress=progress, export=False, overwrite_output_dir=True)
        lifters[name], cfgs[name] = r.model, cfg
        timing[f"finetune_{name}_s"] = time.time() - t
    return pre_dir, pre_val, lifters, cfgs


def _render_middle_window(output_dir: str, val, lifter, p: Dict, seed: int) -> str:
    """``example.png``: the middle validation window's centre frame lifted with 3 joints masked."""
    from .evaluation import predict_lifting, random_joint_mask

    item = val[len(val) // 2]
    x = item["pose_2d"][None].float()
    gen = torch.Generator().manual_seed(seed)
    mask = random_joint_mask(1, p["num_frames"], 17, 3, gen, exclude=[0])
    with torch.no_grad():
        lifter.eval()
        pred = predict_lifting(lifter, x, mask, flip=False)[0, 0].numpy()
    c = p["num_frames"] // 2
    gt = item["pose_3d"][c].numpy()
    err = float(np.linalg.norm(pred - gt, axis=-1).mean() * 1000)
    return render_example(os.path.join(output_dir, "example.png"), x[0, c].numpy(), pred, gt, mask=mask[0, c].numpy(),
                          title=f"{item['action']}, centre frame, 3 joints masked: MPJPE {err:.0f} mm "
                                "(MPM-pretrained lifter)")


def _step_budget(p: Dict, timing: Dict[str, float], why: str, stage) -> Dict:
    """The optimizer steps of the three runs and their measured rates (steps/s), also reported."""
    steps = {"pretrain": p["pretrain_steps"], "finetune_pretrained": p["finetune_steps"],
             "finetune_scratch": p["finetune_steps"]}
    rates = {k: steps[k] / max(timing[f"{k}_s"], 1e-9) for k in steps}
    budget = {"optimizer_steps": sum(steps.values()), "steps": steps, "batch_size": p["batch_size"],
              "measured_steps_per_s": rates, "threads": torch.get_num_threads(), "threads_reason": why}
    stage(f"budget {budget['optimizer_steps']} optimizer steps of {p['batch_size']} windows "
          f"({p['pretrain_steps']} pre-training + 2 x {p['finetune_steps']} fine-tuning); measured "
          + ", ".join(f"{k} {v:.2f} steps/s" for k, v in rates.items())
          + f" with {torch.get_num_threads()} thread(s) at load average {_load_average()}")
    return budget


def run_demo(output_dir: str, *, quick: bool = False, pretrain_steps: Optional[int] = None,
             finetune_steps: Optional[int] = None, seed: int = 0, threads: Optional[int] = None,
             progress: bool = True) -> Dict:
    """Run the demo (see the module docstring); returns the ``results.json`` content."""
    from transformers.utils import logging as hf_logging

    from .atomic import atomic_write_text
    from .training.data import build_splits
    from .training.export import export_model

    _check_demo_args(output_dir, pretrain_steps, finetune_steps, threads)
    t_start = time.time()
    n_threads, why = (threads, "set with --threads") if threads else choose_threads()
    torch.set_num_threads(n_threads)
    hf_logging.disable_progress_bar()
    p = dict(PRESETS["quick" if quick else "full"])
    steps = {"pretrain_steps": pretrain_steps, "finetune_steps": finetune_steps}
    p.update({k: v for k, v in steps.items() if v is not None})
    os.makedirs(output_dir, exist_ok=True)
    timing: Dict[str, float] = {}

    def stage(msg):
        print(f"[mpm demo {time.time() - t_start:6.1f}s] {msg}", flush=True)

    stage(f"using {torch.get_num_threads()} torch thread(s): {why}")
    pre_dir, pre_val, lifters, cfgs = _train_demo_models(output_dir, p, seed, progress, stage, timing)

    stage("evaluating both lifters on the held-out split")
    t = time.time()
    _, val, _ = build_splits(cfgs["scratch"], p["num_frames"], "h36m17")
    if val is None:
        raise RuntimeError("the demo data has no validation split")
    results = {name: _evaluate(m, val, p["eval_batch_size"], seed) for name, m in lifters.items()}
    baseline = mean_pose_baseline(val)
    timing["evaluate_s"] = time.time() - t
    held_out = sorted(baseline["per_action"])
    pre_mm, scratch_mm = results["pretrained"]["plain"]["mpjpe"], results["scratch"]["plain"]["mpjpe"]
    ratios = {"pretrained_vs_scratch": pre_mm / scratch_mm, "pretrained_vs_mean_pose": pre_mm / baseline["mpjpe"],
              "scratch_vs_mean_pose": scratch_mm / baseline["mpjpe"]}
    table = _table(results, len(val), baseline, held_out)
    print(table, flush=True)

    summary = lambda res: {k: {m: v for m, v in r.items() if m != "per_action"}  # noqa: E731
                           | {"per_action": r["per_action"]} for k, r in res.items()}
    budget_note = (f"\n- demo budget: pre-training {p['pretrain_steps']} steps, fine-tuning {p['finetune_steps']} "
                   f"steps, batch {p['batch_size']}, {p['num_frames']} frames")
    lift_dir = os.path.join(output_dir, "mpm-lift")
    for name, folder in (("pretrained", lift_dir), ("scratch", os.path.join(output_dir, "mpm-lift-scratch"))):
        export_model(lifters[name], folder, cfg=cfgs[name], eval_results=results[name],
                     global_step=p["finetune_steps"], model_name=os.path.basename(folder), extra_details=budget_note)
    png = _render_middle_window(output_dir, val, lifters["pretrained"], p, seed)

    total = time.time() - t_start
    budget = _step_budget(p, timing, why, stage)
    out = {
        "table": {name: {key: {"mpjpe": r[key]["mpjpe"], "p_mpjpe": r[key]["p_mpjpe"]} for key, _, _ in SETTINGS}
                  for name, r in results.items()},
        "settings": {key: label for key, label, _ in SETTINGS},
        "units": "mm",
        "windows": len(val),
        "held_out_sequences": held_out,
        "mean_pose_baseline": baseline,
        "ratios": ratios,
        "results": {name: summary(r) for name, r in results.items()},
        "pretraining_validation": pre_val,
        "budget": {k: p[k] for k in ("pretrain_steps", "finetune_steps", "batch_size", "num_frames", "hidden_size",
                                     "num_layers", "pretrain_lr", "finetune_lr", "augment")},
        "quick": bool(quick),
        "timing_s": {**timing, "total_s": total},
        "threads": torch.get_num_threads(),
        "threads_reason": why,
        "step_budget": budget,
        "outputs": {"pretrained_model": pre_dir, "lifting_model": lift_dir,
                    "scratch_model": os.path.join(output_dir, "mpm-lift-scratch"), "example_png": png},
        "table_text": table,
    }
    atomic_write_text(os.path.join(output_dir, "results.json"), json.dumps(out, indent=2))
    stage(f"done in {total:.0f}s; models in {pre_dir} and {lift_dir}, table in results.json, example in {png}")
    return out
