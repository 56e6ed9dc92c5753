"""Loader throughput (windows/s) next to training steps/s of the paper-size model, on CPU.

    python bench/bench_data_loader.py                 # defaults: F=243, J=17, batches 256 and 1024
    python bench/bench_data_loader.py --threads 2 --model_batch 32

Data: synthetic Human3.6M-like camera sequences (paired 2D+3D, 20 x 5000 frames, tds 2, flip
0.5, unpaired "shuffle" mode as in the authors' pre-training) and the embedded demo data
(world-frame motion through random virtual cameras). Three loader paths are timed:
``iter_batches`` (single process, vectorised), ``DataLoader`` (``__getitems__`` batched fetch,
``num_workers=0``) and per-item ``__getitem__`` + ``collate_windows``.
The model is ``MPMForMaskedPoseModeling(MPMConfig.h36m_17())`` (one forward + backward + the package's optimizer
step on a 2D and a 3D sub-batch each).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def camera_sequences(n=20, T=5000, seed=0):
    from modeling_mpm.cameras import h36m_camera

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        cam = h36m_camera("S1", i % 4)
        p3 = cam.world_to_camera(rng.normal(0, 0.3, (T, 17, 3)) + [0, 0, 1]).astype(np.float32)
        out.append({"pose_3d": p3, "pose_2d": cam.project(p3).astype(np.float32), "image_size": cam.image_size,
                    "intrinsics": cam.intrinsics})
    return out


def time_it(fn, min_seconds=2.0):
    n, t0 = 0, time.perf_counter()
    while True:
        n += fn()
        dt = time.perf_counter() - t0
        if dt >= min_seconds:
            return n / dt


def bench_loader(ds, batch_size, min_seconds):
    from modeling_mpm.data import collate_unpaired, collate_windows

    collate = collate_unpaired if ds.mode == "unpaired" else collate_windows
    it = [None]

    def fast():
        if it[0] is None:
            it[0] = ds.iter_batches(batch_size, shuffle=True)
        try:
            b = next(it[0])
        except StopIteration:
            it[0] = ds.iter_batches(batch_size, shuffle=True)
            b = next(it[0])
        return len(b["index_2d"]) + len(b["index_3d"]) if "index_2d" in b else len(b["pose_2d"])

    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=0, collate_fn=collate)
    lit = [iter(loader)]

    def dl():
        try:
            b = next(lit[0])
        except StopIteration:
            lit[0] = iter(loader)
            b = next(lit[0])
        return len(b["index_2d"]) + len(b["index_3d"]) if "index_2d" in b else len(b["pose_2d"])

    rng = np.random.default_rng(0)

    def per_item():
        idx = rng.integers(0, len(ds), batch_size)
        collate([ds[int(i)] for i in idx])
        return batch_size

    return {"iter_batches": time_it(fast, min_seconds), "DataLoader": time_it(dl, min_seconds),
            "per-item": time_it(per_item, min_seconds)}


def bench_model(batch, steps, frames=243):
    from modeling_mpm import MPMConfig, MPMForMaskedPoseModeling

    cfg = MPMConfig.h36m_17()
    model = MPMForMaskedPoseModeling(cfg).train()
    from common import package_optimizer

    opt = package_optimizer(model)
    half = max(1, batch // 2)
    p2 = torch.randn(half, frames, 17, 2) * 0.3
    p3 = torch.randn(half, frames, 17, 3) * 0.3
    p3[:, :, 0] = 0

    def step():
        out = model(pose_2d=p2, pose_3d=p3)
        opt.zero_grad()
        out.loss.backward()
        opt.step()

    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    dt = time.perf_counter() - t0
    return steps / dt, sum(p.numel() for p in model.parameters())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2, help="torch threads (the target machine has 2 cores)")
    p.add_argument("--batch_sizes", type=int, nargs="+", default=[256, 1024])
    p.add_argument("--frames", type=int, default=243)
    p.add_argument("--seconds", type=float, default=3.0, help="minimum time per loader measurement")
    p.add_argument("--model_batch", type=int, default=32, help="clips per training step (2D + 3D halves)")
    p.add_argument("--model_steps", type=int, default=3)
    p.add_argument("--skip_model", action="store_true")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    from modeling_mpm.data import PoseWindowDataset, demo_window_datasets

    print(f"torch {torch.__version__}, {a.threads} thread(s), F={a.frames}, J=17")
    h36m_like = PoseWindowDataset(camera_sequences(), num_frames=a.frames, tds=2, mode="unpaired", flip_prob=0.5)
    demo_train, _ = demo_window_datasets(num_frames=a.frames, mode="unpaired")
    print(f"{'data':<28}{'batch':>6}{'iter_batches':>15}{'DataLoader':>13}{'per-item':>11}   (windows/s)")
    for name, ds in (("H36M-like camera, unpaired", h36m_like), ("demo world+virtual cameras", demo_train)):
        for bs in a.batch_sizes:
            r = bench_loader(ds, bs, a.seconds)
            print(f"{name:<28}{bs:>6}{r['iter_batches']:>15,.0f}{r['DataLoader']:>13,.0f}{r['per-item']:>11,.0f}")
    if not a.skip_model:
        try:
            sps, n_params = bench_model(a.model_batch, a.model_steps, a.frames)
        except ImportError as e:
            print(f"model not available: {e}")
            return 0
        print(f"MPMForMaskedPoseModeling(h36m_17) {n_params:,} params: {sps:.3f} steps/s at batch "
              f"{a.model_batch} ({sps * a.model_batch:.1f} windows/s consumed by training)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
