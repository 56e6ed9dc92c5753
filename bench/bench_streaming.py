"""Live lifting: accuracy against latency of PoseLiftingStream, and the video pipeline's frames/s.

Part ``streaming`` (demo data): trains an MPM lifter from scratch with the accuracy benchmark's
recipe (the package trainer via ``bench/common.py``; budget ``small``: 27 frames, width 128,
2 layers, 300 steps; the model is cached under
``bench/results/checkpoints/stream_lifter_<budget>_seed<seed>``), then streams
every held-out validation sequence (CMU 01_03 and climbing seq_3, 4 fixed cameras, 8 sequences,
motion never seen in training) frame by frame through :class:`PoseLiftingStream` at each latency
and reports MPJPE / P-MPJPE (mm, every frame) and the time per pushed frame. References: the
offline ``lift_sequence`` in ``seq2frame`` (= latency half the window) and ``seq2seq`` modes, and the
time of a window forward without the embedding cache (what a naive streamer pays per frame).

Part ``video``: frames/s of :func:`modeling_mpm.video.lift_video` (decode -> RT-DETR -> ViTPose
-> tracks -> MPM) on a synthetic 320x240 video with TINY RANDOM RT-DETR / ViTPose models built
from configs (no network here; real Hub models are far slower: the number measures the pipeline's
own overhead, not the detectors), and the share of time spent in each stage.

    python bench/bench_streaming.py --budget small --threads 2
    python bench/bench_streaming.py --budget smoke        # seconds, for the smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402

from modeling_mpm import MPMForPoseLifting  # noqa: E402
from modeling_mpm.data.demo import demo_validation_sequences  # noqa: E402
from modeling_mpm.inference import lift_sequence  # noqa: E402
from modeling_mpm.metrics import mpjpe, p_mpjpe  # noqa: E402
from modeling_mpm.video import PoseLiftingStream  # noqa: E402


def trained_lifter(budget: str, seed: int, train_steps=None) -> tuple:
    """The lifter of ``bench_accuracy.py``'s ``mpm_scratch`` arm (the package trainer, ``common.train_run``),
    cached under ``bench/results/checkpoints``; untrained at budget ``smoke``."""
    b = C.BUDGETS[budget]
    ckpt = os.path.join(C.RESULTS_DIR, "checkpoints", f"stream_lifter_{budget}_seed{seed}")
    if budget != "smoke" and os.path.isfile(os.path.join(ckpt, "config.json")):
        return MPMForPoseLifting.from_pretrained(ckpt).eval(), {"loaded_from": os.path.relpath(ckpt, C.ROOT)}
    if budget == "smoke":  # untrained: the smoke run checks the mechanics, not the accuracy
        torch.manual_seed(seed)
        return MPMForPoseLifting(C.mpm_config(b)).eval(), {"trained_steps": 0}
    steps = b["finetune_steps"] if train_steps is None else train_steps
    model, log = C.train_run("lift", b, seed, steps)
    model.save_pretrained(ckpt)
    return model.eval(), {"trained_steps": steps, "train_seconds": log["seconds"]}


def errors(pred: np.ndarray, gt: np.ndarray) -> dict:
    return {"mpjpe_mm": 1000 * float(mpjpe(pred, gt)), "p_mpjpe_mm": 1000 * float(p_mpjpe(pred, gt))}


def streaming_part(args) -> dict:
    model, train_info = trained_lifter(args.budget, args.seed)
    seqs = demo_validation_sequences()
    if args.max_frames:
        seqs = [{**s, "pose_2d": s["pose_2d"][: args.max_frames], "pose_3d": s["pose_3d"][: args.max_frames]}
                for s in seqs]
    gt = np.concatenate([s["pose_3d"] for s in seqs])
    T = model.config.num_frames
    max_lat = T - 1 - model.config.center_frame
    lats = sorted(set([0, 1, 2, 4, 6, 9, max_lat] if args.budget != "smoke" else [0, max_lat]))
    lats = [L for L in lats if L <= max_lat]
    out = {"model": {"num_frames": T, "hidden_size": model.config.hidden_size,
                     "num_layers": model.config.num_layers,
                     "parameters": sum(p.numel() for p in model.parameters()), **train_info},
           "validation_frames": int(gt.shape[0]), "latency": {}}
    for L in lats:
        stream = PoseLiftingStream(model, keypoint_format="h36m", latency=L, coordinates="normalized")
        preds, t_push, n_push = [], 0.0, 0
        for s in seqs:
            stream.reset()
            res = []
            for k in s["pose_2d"]:
                t0 = time.perf_counter()
                o = stream.push(k)
                t_push += time.perf_counter() - t0
                n_push += 1
                if o is not None:
                    res.append(o["pose_3d"])
            res += [o["pose_3d"] for o in stream.flush()]
            preds.append(np.stack(res))
        pred = np.concatenate(preds)
        out["latency"][str(L)] = {**errors(pred, gt), "latency_frames": L,
                                  "head": "centre" if stream.use_center_head else "all-frames",
                                  "ms_per_frame": 1000 * t_push / n_push}
        print(f"latency {L:3d} frames: MPJPE {out['latency'][str(L)]['mpjpe_mm']:.1f} mm, "
              f"{out['latency'][str(L)]['ms_per_frame']:.2f} ms/frame", flush=True)
    # offline references and the cost of a window forward without the embedding cache
    for mode in ("seq2frame", "seq2seq"):
        pred = np.concatenate([lift_sequence(model, s["pose_2d"], mode=mode, progress=False) for s in seqs])
        out[f"offline_{mode}"] = errors(pred, gt)
    x = torch.as_tensor(seqs[0]["pose_2d"][:T])[None]
    with torch.inference_mode():
        for _ in range(3):
            model(pose_2d=x)
        n = 50 if args.budget != "smoke" else 3
        t0 = time.perf_counter()
        for _ in range(n):
            model(pose_2d=x)
        out["uncached_window_forward_ms"] = 1000 * (time.perf_counter() - t0) / n
    return out


def speed_part(args) -> dict:
    """Per-frame cost of the stream (cached embeddings) against a naive streamer that runs the whole
    window through the model for every frame, interleaved in rounds in the same run (ratio = the
    claim; absolute ms depend on the machine's load)."""
    model, _ = trained_lifter(args.budget, args.seed)
    T = model.config.num_frames
    seq = demo_validation_sequences()[0]["pose_2d"][: (200 if args.budget != "smoke" else 30)]
    x = torch.as_tensor(seq)
    n = len(seq)

    def naive():
        with torch.inference_mode():
            for t in range(n):
                idx = np.clip(np.arange(t - T + 1, t + 1), 0, n - 1)
                model(pose_2d=x[idx][None]).pose_3d[:, -1]

    stream = PoseLiftingStream(model, keypoint_format="h36m", latency=0, coordinates="normalized")

    def streamed():
        stream.reset()
        for k in seq:
            stream.push(k)

    times = {"stream": [], "naive": []}
    streamed(), naive()  # warm-up
    for _ in range(5 if args.budget != "smoke" else 1):
        for name, fn in (("stream", streamed), ("naive", naive)):
            t0 = time.perf_counter()
            fn()
            times[name].append(1000 * (time.perf_counter() - t0) / n)
    med = {k: float(np.median(v)) for k, v in times.items()}
    return {"frames_per_round": n, "rounds": len(times["stream"]), "ms_per_frame_median": med,
            "ms_per_frame_all": times, "naive_over_stream": med["naive"] / med["stream"]}


def video_part(args) -> dict:
    import av  # noqa: F401  (the video extra)

    from modeling_mpm import MPMConfig
    from modeling_mpm.video.pipeline import lift_video
    from modeling_mpm.video.pipeline import PersonDetector
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
    from video_fixtures import (  # test fixtures, not part of the package
        build_full_size_pose_models, build_tiny_pose_models, synthetic_person_boxes, write_synthetic_video,
    )

    frames = 16 if args.budget == "smoke" else args.video_frames
    with tempfile.TemporaryDirectory() as d:
        det, pose = build_tiny_pose_models(d)
        video = write_synthetic_video(os.path.join(d, "v.mp4"), frames=frames, width=320, height=240)
        torch.manual_seed(0)
        lifter = MPMForPoseLifting(MPMConfig.h36m_17(num_frames=27, hidden_size=128, intermediate_size=256,
                                                     num_layers=2, num_attention_heads=8)).eval()
        kw = dict(detector=det, pose_model=pose, detection_threshold=0.0, max_people=2, batch_size=8,
                  progress=False)
        runs = {}
        threads = torch.get_num_threads()
        try:
            for n in sorted({1, args.threads}):   # same run, 1 thread and --threads (on a busy shared
                torch.set_num_threads(n)           # machine 2 threads can be slower than 1)
                lift_video(video, lifter, max_frames=8, **kw)  # warm-up
                t0 = time.perf_counter()
                res = lift_video(video, lifter, **kw)
                wall = time.perf_counter() - t0
                runs[str(n)] = {"seconds": wall, "frames_per_second": frames / wall,
                                "stage_seconds": res["timings"], "tracks": len(res["tracks"])}
        finally:
            torch.set_num_threads(threads)
        # the same pipeline with full-size random models (the Hub models' architectures and input sizes)
        full = {}
        if args.budget != "smoke" and args.full_size_frames:
            det_f, pose_f = build_full_size_pose_models(d)
            detector = PersonDetector(det_f, threshold=0.0, max_people=2)
            counter = {"t": 0}

            def detect_or_true_boxes(images):
                # the full-size detector runs (and is timed); its random weights rarely rank "person"
                # first among 80 classes, so the synthetic figures' true boxes are added where it
                # finds fewer than 2 people: ViTPose and MPM then see 2 people per frame as with real weights
                res = detector(images)
                for r in res:
                    truth = synthetic_person_boxes(counter["t"], 320, 240)
                    counter["t"] += 1
                    if len(r["boxes"]) < 2:
                        r["boxes"] = np.concatenate([r["boxes"], truth])[:2]
                        r["scores"] = np.ones(2)
                return res

            kw_f = {**kw, "detector": detect_or_true_boxes, "pose_model": pose_f, "batch_size": 4}
            try:
                for n in sorted({1, args.threads}):
                    torch.set_num_threads(n)
                    counter["t"] = 0
                    lift_video(video, lifter, max_frames=4, **kw_f)  # warm-up
                    counter["t"] = 0
                    t0 = time.perf_counter()
                    res = lift_video(video, lifter, max_frames=args.full_size_frames, **kw_f)
                    wall = time.perf_counter() - t0
                    full[str(n)] = {"frames": args.full_size_frames, "seconds": wall,
                                    "frames_per_second": args.full_size_frames / wall, "stage_seconds": res["timings"]}
            finally:
                torch.set_num_threads(threads)
    return {"frames": frames, "size": [320, 240], "threads": runs, "full_size_random_models": full,
            "full_size_models": "random weights, architectures of PekingU/rtdetr_r50vd_coco_o365 (640x640) and "
                                "usyd-community/vitpose-base-simple (ViT-B, 256x192), 2 people per frame",
            "models": "tiny random RT-DETR (ResNet 8-16 channels, 1 decoder layer, 20 queries) and ViTPose "
                      "(1 layer, width 16, 64x48 input); MPM lifter 27 frames, width 128, 2 layers"}


def report_section(res: dict) -> list:
    """The ``bench/RESULTS.md`` section for a results file of this script (used by make_report.py)."""
    def meta(m):
        return (f"`{m['command']}` (commit {m['git_commit']}, {m['started_utc']}, {m['threads']} thread(s), "
                f"load average before {m['load_before']}, after {m.get('load_after', 'n/a')})")

    L = ["## 8. Live lifting and video -> 3D", ""]
    st = res.get("streaming")
    if not st:
        L += ["Live-lifting accuracy against latency: no current numbers; `bash bench/run_all.sh` remakes them "
              "(`bench_streaming.py --budget small --part streaming`).", ""]
    if st:
        mdl = st["model"]
        cmd = st["meta"]["command"].split()
        first = (f": the first {cmd[cmd.index('--max-frames') + 1]} of each sequence" if "--max-frames" in cmd else "")
        steps = (f"{mdl['trained_steps']} steps" if "trained_steps" in mdl else
                 f"trained earlier by this script"
                 + (f" on {mdl['trained_on']}" if mdl.get("trained_on") else "")
                 + f" and loaded from `{mdl.get('loaded_from', '?')}`")
        L += [f"Command: {meta(st['meta'])}.", "",
              f"`PoseLiftingStream` (one frame at a time, per-frame embeddings cached) on the held-out demo "
              f"validation sequences (CMU 01_03 and climbing seq_3 through 4 fixed cameras, "
              f"{st['validation_frames']:,} frames{first}, every frame scored), with an MPM lifter trained from scratch "
              f"({mdl['num_frames']} frames, width {mdl['hidden_size']}, {mdl['num_layers']} layers, {steps}, "
              f"the accuracy benchmark's recipe: the package trainer). Latency = frames between "
              "a frame's arrival and its 3D; the window always ends at the newest frame. ms/frame is the time per "
              "`push` on a shared machine (load above) and only indicative.", "",
              "| latency (frames) | head | MPJPE (mm) | P-MPJPE (mm) | ms / frame |", "|---|---|---|---|---|"]
        for k, r in sorted(st["latency"].items(), key=lambda kv: int(kv[0])):
            L.append(f"| {k}{' (causal)' if k == '0' else ''} | {r['head']} | {r['mpjpe_mm']:.1f} | "
                     f"{r['p_mpjpe_mm']:.1f} | {r['ms_per_frame']:.1f} |")
        for mode in ("seq2frame", "seq2seq"):
            r = st[f"offline_{mode}"]
            L.append(f"| offline `{mode}` (whole sequence known) | | {r['mpjpe_mm']:.1f} | {r['p_mpjpe_mm']:.1f} | |")
        lat = st["latency"]
        lo, hi = lat["0"], lat[max(lat, key=int)]
        L += ["", f"Causal lifting costs {lo['mpjpe_mm'] - hi['mpjpe_mm']:+.1f} mm MPJPE against half-window latency "
                  f"({lo['mpjpe_mm']:.1f} vs {hi['mpjpe_mm']:.1f} mm); the half-window stream reproduces the offline "
                  "seq2frame protocol exactly (same windows, same head). For this small lifter (trained "
                  f"{mdl.get('trained_steps', C.BUDGETS['small']['finetune_steps'])} steps) the future frames add "
                  "little; whether a paper-size, longer-trained "
                  "lifter gains more from them was not measured.", ""]
    sp = res.get("speed")
    if sp:
        med = sp["ms_per_frame_median"]
        L += [f"Embedding cache, same run, interleaved rounds ({meta(sp['meta'])}): the stream takes "
              f"{med['stream']:.1f} ms per frame against {med['naive']:.1f} ms for a naive streamer that runs the "
              f"model's full forward on the window for every frame: **{sp['naive_over_stream']:.1f}x** (median of "
              f"{sp['rounds']} rounds of {sp['frames_per_round']} frames; the stream re-embeds one frame instead of "
              "the window and runs only the head it reads).", ""]
    vd = res.get("video")
    if vd:
        L += [f"Video pipeline `lift_video` (decode -> RT-DETR -> ViTPose -> tracks -> MPM), {meta(vd['meta'])}, "
              f"synthetic {vd['size'][0]}x{vd['size'][1]} video, 2 people per frame. No network here, so no Hub "
              "weights: **tiny random** detector/pose models measure the pipeline's own overhead, **full-size random** "
              "models (" + vd.get("full_size_models", "") + ") the cost of the real architectures.", "",
              "| models | threads | frames | frames/s | detector s | ViTPose s | decode s | tracking s | MPM s |",
              "|---|---|---|---|---|---|---|---|---|"]
        rows = [("tiny random", n, vd["frames"], r) for n, r in vd["threads"].items()]
        rows += [("full-size random", n, r["frames"], r) for n, r in vd.get("full_size_random_models", {}).items()]
        for name, n, f, r in rows:
            t = r["stage_seconds"]
            L.append(f"| {name} | {n} | {f} | {r['frames_per_second']:.2f} | {t['detect']:.1f} | {t['pose']:.1f} | "
                     f"{t['decode']:.1f} | {t['track']:.2f} | {t['lift']:.1f} |")
        L += ["", "On this shared 2-core machine two torch threads were slower than one while other jobs ran "
                  "(threads wait for each other); the load averages above say how busy it was."]
        full = vd.get("full_size_random_models", {})
        if full:
            best = max(full.values(), key=lambda r: r["frames_per_second"])
            t = best["stage_seconds"]
            L += ["", f"With the real architectures the detector ({t['detect'] / best['frames']:.1f} s per 640x640 frame) "
                      f"and ViTPose-B ({t['pose'] / best['frames'] / 2:.1f} s per person) take the time; decoding, "
                      "tracking and MPM are below 1% of it. Live use needs a GPU for the 2D models; the MPM stream "
                      "itself runs at the ms per frame above."]
        L.append("")
    return L


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budget", default="small", choices=["smoke", "small"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--part", default="all", choices=["all", "streaming", "speed", "video"])
    ap.add_argument("--max-frames", type=int, default=None, help="frames per validation sequence (default all)")
    ap.add_argument("--video-frames", type=int, default=200)
    ap.add_argument("--full-size-frames", type=int, default=12, help="frames for the full-size random models (0: skip)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.budget == "smoke" and args.max_frames is None:
        args.max_frames = 40
    torch.set_num_threads(args.threads)
    t0 = time.time()
    out = args.out or os.path.join(C.RESULTS_DIR, f"streaming_{args.budget}.json")
    # each part replaces its own section of the results file, with its own run metadata
    res = {}
    if args.part != "all" and os.path.isfile(out):
        with open(out) as f:
            res = json.load(f)
    for part, fn in (("streaming", streaming_part), ("speed", speed_part), ("video", video_part)):
        if args.part in ("all", part):
            t_part = time.time()
            meta = C.run_meta(args.budget, args.threads, argv, script="bench/bench_streaming.py")
            res[part] = fn(args)
            res[part]["meta"] = {**meta, "load_after": C.load_average(), "wall_seconds": time.time() - t_part}
    C.write_json(res, out)
    print("wrote", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
