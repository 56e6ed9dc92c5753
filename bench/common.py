"""Shared pieces of the accuracy benchmarks: budgets, demo data, a plain training loop, lifter
evaluation with occlusion masks, and JSON results with run metadata.

Units: 3D in metres inside the code, errors reported in millimetres (``*_mm``).
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS_DIR = os.path.join(ROOT, "bench", "results")
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from modeling_mpm import MPMConfig, MPMForMaskedPoseModeling, MPMForPoseLifting  # noqa: E402
from baselines import SingleFrameMLPLifter, TemporalConvLifter  # noqa: E402
from modeling_mpm.data import collate_windows, demo_window_datasets  # noqa: E402
from modeling_mpm.masking import body_part_joints  # noqa: E402
from modeling_mpm.metrics import mpjpe, p_mpjpe  # noqa: E402
from modeling_mpm.modeling_mpm import mpjpe_loss  # noqa: E402
from modeling_mpm.training.tasks import compute_loss, occlusion_mask  # noqa: E402

try:  # no progress bars from save_pretrained / from_pretrained in the logs
    from transformers.utils import logging as _hf_logging

    _hf_logging.disable_progress_bar()
except Exception:  # pragma: no cover
    pass

# Model size and training budget per --budget. Steps are optimiser steps of `batch_size` windows.
BUDGETS: Dict[str, dict] = {
    "smoke": dict(num_frames=9, hidden_size=32, intermediate_size=64, num_layers=1, num_attention_heads=4,
                  batch_size=8, pretrain_steps=4, finetune_steps=4, seeds=[0], max_val_windows=48,
                  mlp_width=64, mlp_blocks=1, mlp_frames_per_window=2, tcn_channels=32, lr=1e-3, eval_batch=64),
    "small": dict(num_frames=27, hidden_size=128, intermediate_size=256, num_layers=2, num_attention_heads=8,
                  batch_size=64, pretrain_steps=500, finetune_steps=300, seeds=[0, 1, 2], max_val_windows=None,
                  mlp_width=1024, mlp_blocks=2, mlp_frames_per_window=4, tcn_channels=512, lr=1e-3, eval_batch=256),
    "full": dict(num_frames=243, hidden_size=256, intermediate_size=512, num_layers=4, num_attention_heads=8,
                 batch_size=64, pretrain_steps=20000, finetune_steps=10000, seeds=[0, 1, 2, 3, 4],
                 max_val_windows=None, mlp_width=1024, mlp_blocks=2, mlp_frames_per_window=8, tcn_channels=1024, lr=5e-4, eval_batch=64),
}

# Random joint dropout used when fine-tuning every lifter (MPM and baselines alike):
# each window is occluded with probability OCCLUSION_PROB; an occluded window hides
# k ~ U{1..OCCLUSION_MAX_JOINTS} random joints in every frame (training.tasks.occlusion_mask).
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


# ----------------------------------------------------------------------------- data
class BatchStream:
    """Endless batches of training windows (shuffled per epoch, seeded, single process)."""

    def __init__(self, dataset, batch_size: int, seed: int):
        self.ds, self.bs = dataset, batch_size
        self.gen = torch.Generator().manual_seed(seed)
        self.epoch, self.perm, self.pos = 0, None, 0

    def next(self) -> Dict[str, torch.Tensor]:
        if self.perm is None or self.pos + self.bs > len(self.perm):
            self.ds.set_epoch(self.epoch)
            self.epoch += 1
            self.perm, self.pos = torch.randperm(len(self.ds), generator=self.gen).tolist(), 0
        idx = self.perm[self.pos:self.pos + self.bs]
        self.pos += self.bs
        return collate_windows([self.ds[i] for i in idx])


def demo_data(num_frames: int, seed: int, max_val_windows: Optional[int] = None):
    """Training windows (random virtual cameras, flips; 4 train sequences) and the held-out
    validation windows as tensors ``{"pose_2d": (N, F, J, 2), "pose_3d": (N, F, J, 3)}`` (CMU 01_03
    and climbing seq_3, 4 fixed cameras, a window centred on every 10th frame)."""
    train, val = demo_window_datasets(num_frames=num_frames, seed=seed)
    idx = np.arange(len(val))
    if max_val_windows is not None and len(idx) > max_val_windows:
        idx = np.linspace(0, len(val) - 1, max_val_windows).round().astype(int)
    items = collate_windows([val[int(i)] for i in idx])
    return train, {"pose_2d": items["pose_2d"], "pose_3d": items["pose_3d"],
                   "sequence_index": items["sequence_index"]}


# ----------------------------------------------------------------------------- training
def train_loop(model: torch.nn.Module, loss_fn: Callable, stream: BatchStream, steps: int, lr: float, seed: int,
               log_every: int = 10, warmup: int = 20) -> dict:
    """AdamW (weight decay 0.01), linear warm-up then cosine decay to 5% of ``lr``, gradient
    clipping at 1.0. ``loss_fn(model, batch, generator) -> scalar``. Returns the loss curve and time."""
    gen = torch.Generator().manual_seed(10_000 + seed)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.01)

    def factor(s):
        if s < warmup:
            return (s + 1) / warmup
        t = (s - warmup) / max(1, steps - warmup)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    model.train()
    curve, t0, running = [], time.perf_counter(), []
    for step in range(steps):
        batch = stream.next()
        loss = loss_fn(model, batch, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        running.append(float(loss.detach()))
        if (step + 1) % log_every == 0 or step + 1 == steps:
            curve.append([step + 1, float(np.mean(running))])
            running = []
    model.eval()
    return {"loss_curve": curve, "seconds": time.perf_counter() - t0, "steps": steps}


def pretrain_loss(pretext: str = "both"):
    """Masked pose modeling loss; the first half of the batch feeds the 2D pass, the second half
    the 3D pass (unpaired, as the authors). ``pretext``: ``both``, ``2d`` or ``3d`` (the other half
    is then unused, so every variant sees the same windows per modality)."""
    from modeling_mpm.masking import sample_spatiotemporal_mask

    def fn(model, batch, gen):
        cfg = model.config
        if pretext == "both":
            return compute_loss("pretrain", model, batch, cfg, gen, pairing="split")[0]
        b = batch["pose_2d"].shape[0]
        x = batch["pose_2d"][: b // 2] if pretext == "2d" else batch["pose_3d"][b // 2:]
        s, t = sample_spatiotemporal_mask(x.shape[0], cfg.num_frames, cfg.num_joints, cfg.temporal_mask_ratio,
                                          cfg.spatial_mask_joints, cfg.share_mask_across_batch, generator=gen)
        kw = {"pose_2d": x} if pretext == "2d" else {"pose_3d": x}
        return model(**kw, spatial_mask=s, temporal_mask=t).loss
    return fn


def _occ(batch, gen):
    p2d = batch["pose_2d"]
    b, f, j, _ = p2d.shape
    return occlusion_mask(b, f, j, OCCLUSION_MAX_JOINTS, OCCLUSION_PROB, gen)


def mpm_lift_loss(model, batch, gen):
    return compute_loss("lift", model, batch, model.config, gen,
                        occlusion=(OCCLUSION_PROB, OCCLUSION_MAX_JOINTS))[0]


def mlp_lift_loss_fn(frames_per_window: int):
    """The single-frame MLP trains on ``frames_per_window`` random frames of every window of the
    batch (neighbouring frames at 50 Hz are nearly identical, so this keeps the cost down)."""
    def fn(model, batch, gen):
        x, y = batch["pose_2d"], batch["pose_3d"]
        m = _occ(batch, gen)
        b, f = x.shape[:2]
        k = min(frames_per_window, f)
        idx = torch.rand(b, f, generator=gen).argsort(1)[:, :k]
        take = lambda a: a.gather(1, idx.view(b, k, *([1] * (a.dim() - 2))).expand(b, k, *a.shape[2:]))  # noqa: E731
        pred = model(take(x), None if m is None else take(m))
        return mpjpe_loss(pred, take(y))
    return fn


def tcn_lift_loss(model, batch, gen):
    pred = model(batch["pose_2d"], _occ(batch, gen))            # (B, 1, J, 3) centre frame
    c = (batch["pose_3d"].shape[1] - 1) // 2
    return mpjpe_loss(pred, batch["pose_3d"][:, c:c + 1])


def pretrain_mpm(b: dict, seed: int, train_ds, steps: int, pretext: str = "both", authors_embedding: bool = False,
                 **cfg_overrides):
    """Pre-train ``MPMForMaskedPoseModeling``; returns (model, training log). ``authors_embedding``
    selects ``MPMConfig.dropped_frames_input``: ``True`` embeds dropped frames from their
    coordinates (the authors' code and this package's default since commit "dropped frames carry
    their coordinates"), ``False`` gives them the mask token (the behaviour the recorded
    ``small`` results were measured with)."""
    torch.manual_seed(seed)
    cfg_overrides.setdefault("dropped_frames_input", "coordinates" if authors_embedding else "mask_token")
    model = MPMForMaskedPoseModeling(mpm_config(b, **cfg_overrides))
    log = train_loop(model, pretrain_loss(pretext), BatchStream(train_ds, b["batch_size"], seed), steps,
                     b["lr"], seed)
    return model, log


def lifter_from(pretrained: Optional[MPMForMaskedPoseModeling], b: dict, seed: int) -> MPMForPoseLifting:
    """A lifter with the shared encoder of ``pretrained`` (via save/from_pretrained) or from scratch."""
    torch.manual_seed(seed)
    if pretrained is None:
        return MPMForPoseLifting(mpm_config(b))
    with tempfile.TemporaryDirectory() as d:
        pretrained.save_pretrained(d)
        import logging

        from transformers.utils import logging as hf_logging
        level = hf_logging.get_verbosity()
        hf_logging.set_verbosity(logging.ERROR)
        try:
            model = MPMForPoseLifting.from_pretrained(d)
        finally:
            hf_logging.set_verbosity(level)
    return model


def finetune(model, kind: str, b: dict, seed: int, train_ds, steps: int) -> dict:
    fn = {"mpm": mpm_lift_loss, "mlp": mlp_lift_loss_fn(b["mlp_frames_per_window"]), "tcn": tcn_lift_loss}[kind]
    return train_loop(model, fn, BatchStream(train_ds, b["batch_size"], seed), steps, b["lr"], seed)


def build_baseline(kind: str, b: dict, seed: int):
    torch.manual_seed(seed)
    if kind == "mlp":
        return SingleFrameMLPLifter(17, width=b["mlp_width"], num_blocks=b["mlp_blocks"])
    return TemporalConvLifter(17, tcn_widths(b["num_frames"]), channels=b["tcn_channels"])


# ----------------------------------------------------------------------------- evaluation
def centre_predictor(model, kind: str) -> Callable:
    """``f(pose_2d (B, F, J, 2), missing (B, F, J) bool or None) -> (B, J, 3)`` centre-frame 3D."""
    def f(x, m):
        c = (x.shape[1] - 1) // 2
        if kind == "mpm":
            return model(pose_2d=x, spatial_mask=m).pose_3d_center[:, 0]
        if kind == "mlp":
            return model(x[:, c], None if m is None else m[:, c])
        return model(x, m)[:, 0]
    return f


@torch.no_grad()
def evaluate_lifter(predict: Callable, val: dict, missing: Optional[torch.Tensor] = None, batch: int = 256) -> dict:
    """Centre-frame MPJPE and P-MPJPE (mm) over the validation windows."""
    x, y = val["pose_2d"], val["pose_3d"]
    c = (x.shape[1] - 1) // 2
    preds = []
    for s in range(0, x.shape[0], batch):
        m = None if missing is None else missing[s:s + batch]
        preds.append(predict(x[s:s + batch], m).float())
    pred = torch.cat(preds).numpy()
    tgt = y[:, c].numpy()
    return {"mpjpe_mm": 1000 * mpjpe(pred, tgt), "p_mpjpe_mm": 1000 * p_mpjpe(pred, tgt)}


def occlusion_masks(kind: str, level: float, n: int, f: int, j: int = 17, seed: int = 0) -> torch.Tensor:
    """Missing-2D masks ``(n, f, j)`` bool for the robustness study (fixed seed: every model sees
    the same masks).

    * ``joints``: ``round(level * j)`` random joints per frame (a new set every frame);
    * ``limbs``: ``int(level)`` of the 4 limbs (3 joints each) missing in every frame of the window;
    * ``frames``: ``round(level * f)`` random frames of the window with every joint missing
      (the centre frame may be among them).
    """
    rng = np.random.default_rng([seed, int(1000 * level), {"joints": 1, "limbs": 2, "frames": 3}[kind]])
    m = np.zeros((n, f, j), bool)
    if kind == "joints":
        k = int(round(level * j))
        if k:
            ranks = rng.random((n, f, j)).argsort(-1).argsort(-1)
            m = ranks < k
    elif kind == "limbs":
        k = int(level)
        parts = [body_part_joints("h36m17", p) for p in LIMBS]
        for i in range(n):
            for p in rng.permutation(4)[:k]:
                m[i, :, parts[p]] = True
    elif kind == "frames":
        k = int(round(level * f))
        for i in range(n):
            m[i, rng.permutation(f)[:k]] = True
    else:
        raise ValueError(kind)
    return torch.from_numpy(m)


OCCLUSION_LEVELS = {
    "joints": [0.0, 0.1, 0.2, 0.3, 0.5, 0.7],
    "limbs": [0, 1, 2, 3, 4],
    "frames": [0.0, 0.1, 0.3, 0.5, 0.7],
}


def occlusion_fraction(kind: str, level: float, f: int, j: int = 17) -> float:
    """Fraction of (frame, joint) 2D entries missing at this level."""
    if kind == "joints":
        return round(level * j) / j
    if kind == "limbs":
        return 3 * int(level) / j
    return round(level * f) / f


def robustness_curves(predict: Callable, val: dict, batch: int, seed: int = 0) -> dict:
    n, f, j, _ = val["pose_2d"].shape
    out = {}
    for kind, levels in OCCLUSION_LEVELS.items():
        rows = []
        for lv in levels:
            m = occlusion_masks(kind, lv, n, f, j, seed)
            r = evaluate_lifter(predict, val, m if bool(m.any()) else None, batch)
            rows.append({"level": lv, "missing_fraction": occlusion_fraction(kind, lv, f, j), **r})
        out[kind] = rows
    return out
