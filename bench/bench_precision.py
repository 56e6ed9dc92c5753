"""seq2frame inference speed in fp32 / bf16 / int8 / ONNX Runtime against the authors' lifter code.

    git clone <authors' MPM repository> /tmp/MPM          # outside the project; nothing is copied
    python bench/bench_precision.py --official /tmp/MPM --threads 2 --frames 486 --rounds 3 \
        [--model runs/paper_lift/model] [--json bench/results/precision.json]

In one process, paper configuration (17 joints, 243 frames, 4 layers, width 256, d_hid 512,
strides 3x5):

* the authors' fine-tuning ``Model`` (their ``model/MPM.py``, imported from ``--official``) with
  random weights and randomised BatchNorm statistics, in eval mode, fp32;
* the same weights converted with :mod:`modeling_mpm.convert_official` into an
  :class:`MPMForPoseLifting`, run through ``pipeline("pose-lifting")`` in seq2frame mode (one
  243-frame window per frame, centre-frame head) in fp32, bf16 (``dtype=torch.bfloat16``) and int8
  (``quantize="int8"``), each also without the per-frame feature reuse (``*_no_reuse``);
* the lifter exported to ONNX (``modeling_mpm.export``) and run with onnxruntime in fp32 and with
  its dynamic int8 quantisation (``onnxruntime.quantization.quantize_dynamic``), same windows.

The authors' model and the ONNX sessions get the same edge-padded windows
(``modeling_mpm.inference.run_seq2frame``) of the same normalised input. Every variant runs once
per round, rounds interleave the variants, and the speed-up of a variant is the median over rounds
of (authors' time / variant's time) in the same round, so that load from other processes affects
both sides alike. Agreement: mean |variant - mpm fp32| / mean |mpm fp32| over the lifted poses.

With ``--model`` (an :class:`MPMForPoseLifting` with the paper configuration, e.g. trained on the
demo data) it also reports the lifting MPJPE (mm, root-relative) on the held-out demo validation
sequences (2 sequences x 4 cameras, a window centred on every ``--eval-stride``-th frame) for
fp32, bf16, int8 and ONNX Runtime fp32 / int8.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
import types

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

from common import load_average, run_meta, write_json  # noqa: E402

import modeling_mpm  # noqa: E402,F401  (registers the pipelines)
import modeling_mpm.inference as inference  # noqa: E402
from modeling_mpm.convert_official import convert_official_state_dict  # noqa: E402
from modeling_mpm.inference import run_seq2frame, seq2frame_indices  # noqa: E402

PAPER = dict(layers=4, channel=256, d_hid=512, frames=243, stride_num=[3, 3, 3, 3, 3], n_joints=17)
IMAGE = (1000, 1000)


def official_lifter(checkout: str, seed: int = 0):
    """The authors' fine-tuning ``Model`` from their checkout, random weights, random BN statistics."""
    checkout = os.path.abspath(checkout)
    if not os.path.isfile(os.path.join(checkout, "model", "MPM.py")):
        raise SystemExit(f"--official must be a checkout of the authors' MPM repository (no model/MPM.py in {checkout})")
    sys.path.insert(0, checkout)
    from model.MPM import Model  # the authors' code, not part of this project

    torch.manual_seed(seed)
    model = Model(types.SimpleNamespace(**PAPER)).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return model


def official_centre(model):
    """``(B, 243, J, 2)`` normalised -> ``(B, J, 3)`` centre frame (their input is ``(B, 2, F, J, 1)``)."""
    def fn(xb):
        centre, _ = model(xb.permute(0, 3, 1, 2).unsqueeze(-1).contiguous())
        return centre[:, :, 0, :, 0].transpose(1, 2)
    return fn


@contextlib.contextmanager
def no_feature_reuse():
    orig = inference._seq2frame_reuse_fns
    inference._seq2frame_reuse_fns = lambda model, *a, **k: None
    try:
        yield
    finally:
        inference._seq2frame_reuse_fns = orig


def ort_session(path: str, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def ort_models(model, folder: str, threads: int):
    """fp32 and dynamic-int8 onnxruntime sessions of ``model`` (no mask input)."""
    from modeling_mpm.export import export_onnx, quantize_onnx_int8

    fp32 = os.path.join(folder, "lifter.onnx")
    int8 = os.path.join(folder, "lifter.int8.onnx")
    export_onnx(model, fp32, with_mask=False, check=True, atol=1e-3)
    quantize_onnx_int8(fp32, int8)
    return {"ort_fp32": ort_session(fp32, threads), "ort_int8": ort_session(int8, threads)}


def ort_centre(sess):
    def fn(xb):
        (c,) = sess.run(["pose_3d_center"], {"pose_2d": xb.numpy()})
        return torch.from_numpy(c[:, 0])
    return fn


def windows_runner(fn, x_norm: np.ndarray, batch: int, window: int):
    """seq2frame over the same edge-padded windows for models outside the pipeline."""
    x = torch.as_tensor(x_norm, dtype=torch.float32)

    def run():
        with torch.inference_mode():
            (out,) = run_seq2frame(lambda xb: (fn(xb),), [x], window, batch, progress=False)
        return out.numpy()
    return run


def zero_root(p):
    p = np.array(p, dtype=np.float64)
    p[..., 0, :] = 0.0
    return p


def rel_diff(a, b) -> float:
    a, b = zero_root(a), zero_root(b)
    return float(np.abs(a - b).mean() / np.abs(b).mean())


def speed(args, res):
    from transformers import pipeline

    torch.manual_seed(0)
    official = official_lifter(args.official, seed=args.seed)
    sd = {"module." + k: v for k, v in official.state_dict().items()}  # as their DataParallel saves it
    mpm = convert_official_state_dict(sd, reduce_strides=PAPER["stride_num"]).eval()
    T = mpm.config.num_frames
    rng = np.random.default_rng(args.seed)
    # a smooth random walk in pixels (a plausible 2D track), normalised as the pipeline does
    kp = 500 + np.cumsum(rng.normal(0, 2, size=(args.frames, 17, 2)), axis=0) + rng.normal(0, 60, size=(1, 17, 2))
    x_norm = (kp / IMAGE[0] * 2 - np.array([1, IMAGE[1] / IMAGE[0]])).astype(np.float32)

    pipes = {
        "mpm_fp32": pipeline("pose-lifting", model=mpm),
        "mpm_bf16": pipeline("pose-lifting", model=mpm, dtype=torch.bfloat16),
        "mpm_int8": pipeline("pose-lifting", model=mpm, quantize="int8"),
    }
    runners = {"authors_fp32": windows_runner(official_centre(official), x_norm, args.batch_size, T)}
    call = dict(image_size=IMAGE, keypoint_format="h36m", mode="seq2frame", batch_size=args.batch_size, progress=False)
    for name, pipe in pipes.items():
        runners[name] = (lambda p: lambda: p(kp, **call)["pose_3d"])(pipe)
        if not args.skip_no_reuse and name != "mpm_int8":
            def no_reuse(p=pipe):
                with no_feature_reuse():
                    return p(kp, **call)["pose_3d"]
            runners[name + "_no_reuse"] = no_reuse
    tmp = tempfile.mkdtemp(prefix="mpm_bench_onnx_")
    if not args.skip_ort:
        for name, sess in ort_models(mpm, tmp, args.threads).items():
            runners[name] = windows_runner(ort_centre(sess), x_norm, args.batch_size, T)

    # parity of the converted model with the authors' (fp32, same windows)
    outputs = {name: run() for name, run in runners.items()}  # also the warm-up
    res["parity_authors_vs_mpm_fp32_max_abs_m"] = float(np.abs(
        zero_root(outputs["authors_fp32"]) - zero_root(outputs["mpm_fp32"])).max())
    res["agreement_vs_mpm_fp32"] = {k: rel_diff(v, outputs["mpm_fp32"]) for k, v in outputs.items()}

    times = {k: [] for k in runners}
    for r in range(args.rounds):
        for name, run in runners.items():
            t = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t)
        print(f"round {r + 1}/{args.rounds} (load {load_average()}): "
              + ", ".join(f"{k} {args.frames / v[-1]:.1f}" for k, v in times.items()) + " frames/s", flush=True)
    res["seq2frame"] = {}
    for name, ts in times.items():
        ratios = [a / b for a, b in zip(times["authors_fp32"], ts)]
        res["seq2frame"][name] = {
            "seconds": ts, "frames_per_s_best": args.frames / min(ts),
            "speedup_vs_authors_median": statistics.median(ratios), "speedup_vs_authors_per_round": ratios,
        }
    print(f"\nseq2frame, {args.frames} frames, batch {args.batch_size}, {args.threads} threads:")
    print(f"{'variant':<22s} {'frames/s (best)':>15s} {'x authors (median)':>19s} {'rel. diff to fp32':>18s}")
    for name, row in res["seq2frame"].items():
        print(f"{name:<22s} {row['frames_per_s_best']:15.1f} {row['speedup_vs_authors_median']:19.2f} "
              f"{res['agreement_vs_mpm_fp32'][name]:18.2e}")
    print(f"authors vs converted fp32: max abs diff {res['parity_authors_vs_mpm_fp32_max_abs_m']:.2e} m")


def accuracy(args, res):
    """Lifting MPJPE (mm) on the demo validation sequences, windows centred every eval-stride frames."""
    from modeling_mpm import MPMForPoseLifting
    from modeling_mpm.metrics import mpjpe
    from modeling_mpm.data.demo import demo_validation_sequences
    from modeling_mpm.quantization import cast_model, quantize_int8

    model = MPMForPoseLifting.from_pretrained(args.model).eval()
    T = model.config.num_frames
    seqs = demo_validation_sequences()
    windows, targets = [], []
    for s in seqs:
        n = s["pose_2d"].shape[0]
        centres = np.arange(0, n, args.eval_stride)
        windows.append(np.asarray(s["pose_2d"], dtype=np.float32)[seq2frame_indices(centres, T, n)])
        targets.append(np.asarray(s["pose_3d"], dtype=np.float64)[centres])
    x = torch.from_numpy(np.concatenate(windows))
    y = zero_root(np.concatenate(targets))
    variants = {"fp32": model, "bf16": cast_model(model, torch.bfloat16), "int8": quantize_int8(model)}
    fns = {k: inference._lifter_head_fn(m, "pose_3d_center") for k, m in variants.items()}
    fns = {k: (lambda f: lambda xb: f(xb, None)[:, 0])(f) for k, f in fns.items()}
    if not args.skip_ort:
        tmp = tempfile.mkdtemp(prefix="mpm_bench_onnx_acc_")
        for k, sess in ort_models(model, tmp, args.threads).items():
            fns[k] = ort_centre(sess)
    out = {}
    preds = {}
    for k, fn in fns.items():
        with torch.inference_mode():
            p = torch.cat([fn(x[i:i + 64]).float() for i in range(0, len(x), 64)]).numpy()
        preds[k] = zero_root(p)
        out[k] = {"mpjpe_mm": 1000 * mpjpe(preds[k], y)}
        print(f"  {k}: MPJPE {out[k]['mpjpe_mm']:.2f} mm (load {load_average()})", flush=True)
    for k in out:
        out[k]["delta_mpjpe_mm_vs_fp32"] = out[k]["mpjpe_mm"] - out["fp32"]["mpjpe_mm"]
        out[k]["rel_diff_vs_fp32"] = rel_diff(preds[k], preds["fp32"])
        out[k]["mean_joint_shift_mm_vs_fp32"] = 1000 * mpjpe(preds[k], preds["fp32"])
    res["accuracy"] = {"model": args.model, "windows": int(len(x)), "eval_stride": args.eval_stride, "results": out}
    print(f"\ndemo validation, {len(x)} windows (every {args.eval_stride}th frame, 8 camera sequences), "
          f"model {args.model}:")
    for k, v in out.items():
        print(f"  {k:<9s} MPJPE {v['mpjpe_mm']:7.2f} mm  ({v['delta_mpjpe_mm_vs_fp32']:+.2f} vs fp32; "
              f"rel. diff {v['rel_diff_vs_fp32']:.2e}, mean joint shift {v['mean_joint_shift_mm_vs_fp32']:.2f} mm)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official", required=True, help="path to a checkout of the authors' MPM repository")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frames", type=int, default=486, help="frames lifted per variant and round (seq2frame)")
    ap.add_argument("--batch-size", type=int, default=16, help="windows per forward")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default=None, help="trained paper-size MPMForPoseLifting for the MPJPE check")
    ap.add_argument("--eval-stride", type=int, default=10)
    ap.add_argument("--skip-ort", action="store_true")
    ap.add_argument("--skip-no-reuse", action="store_true", help="leave out the *_no_reuse variants")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    res = run_meta("paper", args.threads, argv, script="bench/bench_precision.py")
    res.update(frames=args.frames, batch_size=args.batch_size, rounds=args.rounds, config=PAPER,
               cpu_flags=[f for f in ("avx512_bf16", "avx512_vnni", "amx_bf16") if _has_flag(f)],
               load_before=load_average())
    print(f"torch {torch.__version__}, {args.threads} threads, load {res['load_before']}, flags {res['cpu_flags']}")
    if not args.skip_speed:
        speed(args, res)
    if args.model:
        accuracy(args, res)
    res["load_after"] = load_average()
    print(f"load average after: {res['load_after']}")
    if args.json:
        write_json(res, args.json)
    return 0


def _has_flag(flag: str) -> bool:
    try:
        return any(flag in line.split() for line in open("/proc/cpuinfo") if line.startswith("flags"))
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())
