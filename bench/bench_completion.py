"""3D pose completion: masked-joint MPJPE per body part, MPM against classic baselines.

    python bench/bench_completion.py --budget small          # after bench_accuracy.py (reuses its pre-training)
    python bench/bench_completion.py --budget smoke --out /tmp/comp.json

Masks on the held-out 3D windows (each limb = its 3 joints, e.g. right hip, knee, ankle):

* ``tube``: the limb is missing in every frame of the window (the paper's completion task).
  Interpolation in time has nothing to interpolate from, so it is not applicable there;
* ``gap``: the limb is missing for a contiguous run of ``window // 3`` frames placed at random
  strictly inside the window (visible frames on both sides), where the classic baselines apply;
* ``long_gap``: the limb is missing in every frame but the first and the last of the window.

Methods:

* ``mpm_completion``: the pre-trained MPM fine-tuned for completion (body-part tube masks on 3D,
  ``training.tasks.compute_loss("complete3d")``, ``completion_steps`` steps);
* ``mpm_pretrained``: the pre-trained masked model as is (spatio-temporal random masks);
* ``nearest_neighbour``: per frame, the training pose closest on the visible joints
  (``modeling_mpm.baselines.NearestNeighbourCompletion``; database: the 4 training sequences seen
  by 16 random virtual cameras, every 2nd frame);
* ``linear_interpolation``: per joint in time (``gap`` only).

Errors are in mm over the masked joints only. Writes ``bench/results/completion_<budget>.json``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
from modeling_mpm import MPMForMaskedPoseModeling  # noqa: E402
from baselines import NearestNeighbourCompletion, interpolate_in_time  # noqa: E402
from modeling_mpm.cameras import VirtualCameraSampler  # noqa: E402
from modeling_mpm.data import load_demo_dataset, load_sequences, materialize_camera_sequences  # noqa: E402
from modeling_mpm.masking import body_part_joints  # noqa: E402
from modeling_mpm.training.tasks import compute_loss  # noqa: E402

SETTINGS = {"smoke": dict(completion_steps=4, max_windows=16, nn_cameras=2, nn_frame_step=10),
            "small": dict(completion_steps=300, max_windows=600, nn_cameras=16, nn_frame_step=2),
            "full": dict(completion_steps=5000, max_windows=None, nn_cameras=32, nn_frame_step=1)}


def nn_database(num_cameras: int, frame_step: int, seed: int = 0) -> np.ndarray:
    """Training poses ``(N, 17, 3)`` (camera frame, root-relative, metres) for the NN lookup."""
    seqs = load_sequences(load_demo_dataset()["train"])
    cams = VirtualCameraSampler().sample_many(np.random.default_rng(seed), num_cameras)
    views = materialize_camera_sequences(seqs, cams)
    return np.concatenate([v["pose_3d"][::frame_step] for v in views]).astype(np.float32)


def completion_masks(kind: str, limb: str, n: int, f: int, seed: int = 0) -> np.ndarray:
    """``(n, f, 17)`` bool: ``limb`` missing in every frame (``tube``) or over a random inner gap."""
    joints = body_part_joints("h36m17", limb)
    m = np.zeros((n, f, 17), bool)
    if kind == "tube":
        m[:, :, joints] = True
        return m
    g = max(1, f // 3) if kind == "gap" else f - 2
    rng = np.random.default_rng([seed, C.LIMBS.index(limb)])
    starts = rng.integers(1, f - g, size=n) if f - g > 1 else np.ones(n, int)          # frames 0 and f-1 stay visible
    for i, s in enumerate(starts):
        m[i, s:s + g][:, joints] = True
    return m


@torch.no_grad()
def mpm_complete(model, pose: torch.Tensor, mask: np.ndarray, batch: int) -> np.ndarray:
    outs = []
    mk = torch.from_numpy(mask)
    for s in range(0, pose.shape[0], batch):
        outs.append(model(pose_3d=pose[s:s + batch], spatial_mask_3d=mk[s:s + batch]).pose_3d)
    return torch.cat(outs).numpy()


def masked_mm(pred: np.ndarray, tgt: np.ndarray, mask: np.ndarray) -> float:
    e = np.linalg.norm(pred - tgt, axis=-1)
    return float(1000 * e[mask].mean())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", choices=sorted(C.BUDGETS), default="small")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--pretrained", default=None,
                    help="pre-trained folder (default: bench/results/checkpoints/pretrain_<budget>_seed<s> "
                         "if it exists, else pre-train here)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    b = dict(C.BUDGETS[args.budget])
    s = SETTINGS[args.budget]
    out_path = args.out or os.path.join(C.RESULTS_DIR, f"completion_{args.budget}.json")
    res = {"meta": C.run_meta(args.budget, args.threads, argv, __file__), "budget": b, "settings": s, "runs": {}}
    t0 = time.perf_counter()
    db = nn_database(s["nn_cameras"], s["nn_frame_step"])
    nn = NearestNeighbourCompletion(db)
    res["nn_database_poses"] = int(len(db))
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity(logging.ERROR)
    for seed in [int(x) for x in args.seeds.split(",")]:
        train, val = C.demo_data(b["num_frames"], seed, s["max_windows"])
        pose = val["pose_3d"]
        n, f = pose.shape[:2]
        ckpt = args.pretrained or os.path.join(C.RESULTS_DIR, "checkpoints", f"pretrain_{args.budget}_seed{seed}")
        run = {}
        if os.path.isdir(ckpt):
            pre = MPMForMaskedPoseModeling.from_pretrained(ckpt).eval()
            run["pretrained_from"] = os.path.relpath(ckpt, C.ROOT)
        else:
            pre, plog = C.pretrain_mpm(b, seed, train, b["pretrain_steps"])
            run["pretrained_from"] = f"pre-trained here, {b['pretrain_steps']} steps"
        comp = MPMForMaskedPoseModeling(C.mpm_config(b, mask_mode="tube", temporal_mask_ratio=0.0))
        comp.load_state_dict(pre.state_dict())
        cfg = comp.config
        log = C.train_loop(comp, lambda m, bt, g: compute_loss("complete3d", m, bt, cfg, g)[0],
                           C.BatchStream(train, b["batch_size"], seed), s["completion_steps"], b["lr"], seed)
        run["completion_train"] = log
        pre.eval()
        comp.eval()
        table = {}
        for kind in ("tube", "gap", "long_gap"):
            for limb in C.LIMBS:
                m = completion_masks(kind, limb, n, f, seed)
                tgt = pose.numpy()
                row = {
                    "mpm_completion": masked_mm(mpm_complete(comp, pose, m, b["eval_batch"]), tgt, m),
                    "mpm_pretrained": masked_mm(mpm_complete(pre, pose, m, b["eval_batch"]), tgt, m),
                    "nearest_neighbour": masked_mm(nn.complete(tgt, m), tgt, m),
                    "linear_interpolation": (masked_mm(interpolate_in_time(tgt, m), tgt, m) if kind != "tube"
                                             else None),
                }
                table[f"{kind}/{limb}"] = row
                print(f"[seed {seed}] {kind:8s} {limb:9s} " + ", ".join(
                    f"{k} {v:.1f}" for k, v in row.items() if v is not None) + " mm", flush=True)
        run["masked_mpjpe_mm"] = table
        run["windows"] = int(n)
        res["runs"][str(seed)] = run
        res["meta"]["wall_seconds"] = time.perf_counter() - t0
        C.write_json(res, out_path)
    keys = next(iter(res["runs"].values()))["masked_mpjpe_mm"].keys()
    res["summary"] = {k: {meth: C.mean_std([r["masked_mpjpe_mm"][k][meth] for r in res["runs"].values()])
                          for meth in ("mpm_completion", "mpm_pretrained", "nearest_neighbour",
                                       "linear_interpolation")} for k in keys}
    res["meta"]["load_after"] = C.load_average()
    res["meta"]["wall_seconds"] = time.perf_counter() - t0
    C.write_json(res, out_path)
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
