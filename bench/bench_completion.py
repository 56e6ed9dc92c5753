"""3D pose completion: masked-joint MPJPE per body part, MPM against a classic baseline; MPM is
trained by the package's trainer and evaluated by ``modeling_mpm.evaluation.evaluate_completion``.

    python bench/bench_completion.py --budget small          # after bench_accuracy.py (reuses its pre-training)
    python bench/bench_completion.py --budget smoke --out /tmp/comp.json

Masks on the held-out 3D windows: one limb (its 3 joints, e.g. right hip, knee, ankle) missing in
every frame of the window, the paper's body-part tubes (``masking.TUBE_PARTS_3D``, manners 0-3).

Methods:

* ``mpm_completion``: the pre-trained MPM fine-tuned with ``training.task: complete3d`` (body-part
  tube masks on 3D, ``completion_steps`` steps, ``init_from`` the pre-trained model);
* ``mpm_pretrained``: the pre-trained masked model as is (trained with spatio-temporal random masks);
* ``nearest_neighbour``: per frame, the training pose closest on the visible joints
  (``bench/baselines.py``'s ``NearestNeighbourCompletion``; database: the 4 training sequences seen
  by 16 random virtual cameras, every 2nd frame), scored with ``metrics.completion_errors``.

Errors are in mm over the masked joints only. Writes ``bench/results/completion_<budget>.json``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
from baselines import NearestNeighbourCompletion  # noqa: E402
from modeling_mpm import MPMForMaskedPoseModeling  # noqa: E402
from modeling_mpm.cameras import VirtualCameraSampler  # noqa: E402
from modeling_mpm.data import load_demo_dataset, load_sequences, materialize_camera_sequences  # noqa: E402
from modeling_mpm.evaluation import evaluate_completion  # noqa: E402
from modeling_mpm.masking import tube_joints  # noqa: E402
from modeling_mpm.metrics import completion_errors  # noqa: E402
from modeling_mpm.training.data import collate_windows  # noqa: E402

SETTINGS = {"smoke": dict(completion_steps=4, max_windows=16, nn_cameras=2, nn_frame_step=10),
            "small": dict(completion_steps=300, max_windows=600, nn_cameras=16, nn_frame_step=2),
            "full": dict(completion_steps=5000, max_windows=None, nn_cameras=32, nn_frame_step=1)}
MANNERS = (0, 1, 2, 3)  # TUBE_PARTS_3D: right leg, right arm, left arm, left leg


def nn_database(num_cameras: int, frame_step: int, seed: int = 0) -> np.ndarray:
    """Training poses ``(N, 17, 3)`` (camera frame, root-relative, metres) for the NN lookup."""
    seqs = load_sequences(load_demo_dataset()["train"])
    cams = VirtualCameraSampler().sample_many(np.random.default_rng(seed), num_cameras)
    views = materialize_camera_sequences(seqs, cams)
    return np.concatenate([v["pose_3d"][::frame_step] for v in views]).astype(np.float32)


def nn_errors(nn: NearestNeighbourCompletion, val) -> dict:
    """Masked-joint MPJPE (mm) of the NN lookup per tube manner, the same masks as
    ``evaluate_completion`` (the tube's joints missing in every frame)."""
    pose = collate_windows([val[i] for i in range(len(val))])["pose_3d"].numpy()
    out = {}
    for d in MANNERS:
        m = np.zeros(pose.shape[:-1], bool)
        m[..., tube_joints("h36m17", d, "3d")] = True
        out[str(d)] = 1000.0 * completion_errors(nn.complete(pose, m), pose, m)["mpjpe_masked"]
    return out


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
    val = C.validation_windows(dict(b, max_val_windows=s["max_windows"]))
    nn_mm = nn_errors(nn, val)
    for seed in [int(x) for x in args.seeds.split(",")]:
        ckpt = args.pretrained or os.path.join(C.RESULTS_DIR, "checkpoints", f"pretrain_{args.budget}_seed{seed}")
        run = {}
        with tempfile.TemporaryDirectory() as tmp:
            if os.path.isdir(ckpt):
                pre = MPMForMaskedPoseModeling.from_pretrained(ckpt).eval()
                run["pretrained_from"] = os.path.relpath(ckpt, C.ROOT)
            else:
                pre, _ = C.train_run("pretrain", b, seed, b["pretrain_steps"])
                ckpt = os.path.join(tmp, "pretrain")
                pre.save_pretrained(ckpt)
                run["pretrained_from"] = f"pre-trained here, {b['pretrain_steps']} steps"
            comp, log = C.train_run("complete3d", b, seed, s["completion_steps"], init_from=ckpt)
        run["completion_train"] = log
        ev = {name: evaluate_completion(m, val, modality="3d", manners=MANNERS, batch_size=b["eval_batch"], seed=seed)
              for name, m in (("mpm_completion", comp), ("mpm_pretrained", pre))}
        table = {}
        for d, limb in zip(MANNERS, C.LIMBS):
            row = {name: ev[name]["per_manner"][str(d)]["mpjpe_masked"] for name in ev}
            row["nearest_neighbour"] = nn_mm[str(d)]
            table[f"tube/{limb}"] = row
            print(f"[seed {seed}] tube {limb:9s} " + ", ".join(f"{k} {v:.1f}" for k, v in row.items()) + " mm",
                  flush=True)
        run["masked_mpjpe_mm"] = table
        run["windows"] = len(val)
        res["runs"][str(seed)] = run
        res["meta"]["wall_seconds"] = time.perf_counter() - t0
        C.write_json(res, out_path)
    keys = next(iter(res["runs"].values()))["masked_mpjpe_mm"].keys()
    res["summary"] = {k: {meth: C.mean_std([r["masked_mpjpe_mm"][k][meth] for r in res["runs"].values()])
                          for meth in ("mpm_completion", "mpm_pretrained", "nearest_neighbour")} for k in keys}
    res["meta"]["load_after"] = C.load_average()
    res["meta"]["wall_seconds"] = time.perf_counter() - t0
    C.write_json(res, out_path)
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
