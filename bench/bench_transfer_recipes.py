"""Which pre-training makes the demo's lifter transfer? Pre-training recipes x fine-tuning recipes x seeds.

    python bench/bench_transfer_recipes.py --pre mask,vis5 --seeds 0 1 2 --jobs 15 --out results.jsonl

The `mpm demo` model and budget (``modeling_mpm.demo``: 27 frames, width 128, 2 layers; pre-training
1,000 steps, fine-tuning 700 steps of 64 windows, ``data.augment: motion``), evaluated as the demo
does on its held-out split (MPJPE in mm, no occlusion = ``plain``). Stage 1 runs every pre-training
(``PRE``) and the scratch lifters, stage 2 every fine-tuning of ``MATRIX`` from those pre-trainings,
``--jobs`` trainings at once (one torch thread each; a GPU is used when there is one). One JSON line
per training is appended to ``--out`` as it ends. The recorded runs (bench/results/
transfer_recipes_h200_*.jsonl, bench/RESULTS.md section 7) rescaled the residual stream with an
equivalent in-script function (same reparametrisation; the target norm measured on training windows)
before ``training.rescale_encoder_stream`` existed.

``--base demo`` starts every run from the shipped demo recipe instead (lifting pretext, rescaled
stream + LP-FT, random joints + whole limbs as occlusion, ``PRESETS["full"]`` as is) and varies only
the limb occlusion: ``--base demo --pre demo,demo_jointsonly --pretrain-steps 2000`` made
bench/results/limb_occlusion_h200.jsonl (a scratch copy of this loop run on a lent H200's 16 CPU
cores, 15 at once; its ids renamed to these names afterwards: numbers unchanged), and ``--base demo
--pre "" --finetune-steps 1700 --seeds 0 --jobs 1`` the scratch lifter at the demo's total step count
(bench/results/scratch_equal_compute_cpu.jsonl; that run used 2 threads).
"""
import argparse
import json
import multiprocessing as mp
import os
import time

PRE = {  # pre-training overrides of the demo's run config
    "mask": [],                                   # masked 2D + 3D modeling only (the authors' 17-joint recipe)
    "liftonly": ["model.loss_weight_2d=0", "model.loss_weight_3d=0", "model.loss_weight_lift=1",
                 "training.pretrain_lift=true"],  # only the masked 2D -> 3D lifting pretext
    "masklift": ["training.pretrain_lift=true", "model.loss_weight_lift=5"],  # + masked lifting (paper v1)
    "vis2": ["training.pretrain_lift=true", "training.pretrain_lift_input=visible", "model.loss_weight_lift=2"],
    "vis5": ["training.pretrain_lift=true", "training.pretrain_lift_input=visible", "model.loss_weight_lift=5"],
    "vis10": ["training.pretrain_lift=true", "training.pretrain_lift_input=visible", "model.loss_weight_lift=10"],
    "occ10": ["training.pretrain_lift=true", "training.pretrain_lift_input=occluded", "model.loss_weight_lift=10",
              "training.occlusion_prob=0.5", "training.occlusion_max_joints=3"],
    "occ2": ["training.pretrain_lift=true", "training.pretrain_lift_input=occluded", "model.loss_weight_lift=2",
             "training.occlusion_prob=0.5", "training.occlusion_max_joints=3"],
    # --base demo: the shipped recipe, and the same with random joints only (no whole-limb occlusion) in the pretext
    "demo": [],
    "demo_jointsonly": ["training.occlusion_limb_prob=0"],
}
FT = {  # fine-tuning overrides (run from pre-training only)
    "F0": [],                                                                     # the authors' transfer
    "F1": ["training.rescale_encoder_stream=true"],
    "F3": ["training.rescale_encoder_stream=true", "training.freeze_encoder_steps=100"],
    "F4": ["training.rescale_encoder_stream=true", "training.freeze_encoder_steps=150"],
    "F5": ["training.encoder_lr_scale=3"],
    "D": [],                                      # --base demo: the demo's fine-tuning as shipped
    "Dj": ["training.occlusion_limb_prob=0"],     # ... with random joints only as occlusion
}
MATRIX = {"demo": ["D", "Dj"], "demo_jointsonly": ["D"], "mask": ["F0", "F1", "F3", "F5"], "liftonly": ["F0", "F1"], "masklift": ["F0", "F1", "F5"],
          "vis2": ["F0", "F1", "F3"], "vis5": ["F0", "F1", "F3"], "vis10": ["F4"], "occ10": ["F4"], "occ2": ["F0", "F1", "F3"]}


def job(j):
    import logging

    import torch
    from transformers.utils import logging as hf_logging

    torch.set_num_threads(1)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger("modeling_mpm").setLevel(logging.WARNING)
    from modeling_mpm.demo import PRESETS, _evaluate, _run_config
    from modeling_mpm.training.data import build_splits
    from modeling_mpm.training.trainer import train

    p = dict(PRESETS["full"])
    if j.get("base") != "demo":  # the recipes measured before the demo's pretext / transfer / limb keys existed
        p.update(pretrain_lift_weight=0.0, freeze_encoder_steps=0, rescale_encoder_stream=False, occlusion_limb_prob=0.0)
    p.update(j["budget"])
    root = os.path.join(j["work"], j["id"])
    t0 = time.time()
    res = dict(j)
    try:
        if j["kind"] == "pretrain":
            cfg = _run_config("pretrain", os.path.join(root, "run"), p, p["pretrain_steps"], p["pretrain_lr"], j["seed"])
            r = train(cfg.with_overrides(PRE[j["pre"]]), progress=False, export=False, overwrite_output_dir=True)
            r.model.save_pretrained(os.path.join(root, "model"))
        else:
            init = os.path.join(j["work"], f"pre-{j['pre']}-s{j['seed']}", "model") if j["kind"] == "finetune" else None
            cfg = _run_config("lift", os.path.join(root, "run"), p, p["finetune_steps"], p["finetune_lr"], j["seed"],
                              init_from=init)
            if init:
                cfg = cfg.with_overrides(FT[j["ft"]])
            r = train(cfg, progress=False, export=False, overwrite_output_dir=True)
            _, val, _ = build_splits(cfg, p["num_frames"], "h36m17")
            # --base demo: the same evaluation masks (seed 0) for every training seed, as in the recorded sweep
            ev = _evaluate(r.model, val, p["eval_batch_size"], j["seed"] if j.get("base") != "demo" else 0)
            res["mpjpe"] = {k: round(v["mpjpe"], 2) for k, v in ev.items()}
            res["p_mpjpe"] = {k: round(v["p_mpjpe"], 2) for k, v in ev.items()}
    except Exception:  # keep the other trainings going; the error is in the JSON line
        import traceback

        res["error"] = traceback.format_exc()[-2000:]
    res["seconds"] = round(time.time() - t0, 1)
    with open(j["out"], "a", encoding="utf-8") as f:
        f.write(json.dumps(res) + "\n")
    print(json.dumps({k: res.get(k) for k in ("id", "mpjpe", "seconds", "error")}), flush=True)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pre", default="mask,vis5", help=f"comma-separated, of {list(PRE)}")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--pretrain-steps", type=int, default=1000)
    ap.add_argument("--finetune-steps", type=int, default=700)
    ap.add_argument("--work", default="/tmp/transfer_recipes")
    ap.add_argument("--out", required=True, help="JSON lines file (appended)")
    ap.add_argument("--base", choices=["before-demo", "demo"], default="before-demo",
                    help="before-demo: the demo model and budget without its pretext / transfer / limb keys (the "
                         "recorded recipe sweeps); demo: the shipped demo recipe, PRE / FT on top of it")
    a = ap.parse_args(argv)
    pres = [x for x in a.pre.split(",") if x]  # --pre "": the scratch lifters only
    for pr in pres:
        if pr not in PRE:
            raise ValueError(f"unknown pre-training recipe {pr!r}; known: {list(PRE)}")
        if (a.base == "demo") != pr.startswith("demo"):
            raise ValueError(f"pre-training recipe {pr!r} does not go with --base {a.base}")
    base = dict(work=a.work, out=a.out, base=a.base,
                budget={"pretrain_steps": a.pretrain_steps, "finetune_steps": a.finetune_steps})
    stage1 = [dict(base, kind="pretrain", pre=pr, seed=s, id=f"pre-{pr}-s{s}") for s in a.seeds for pr in pres]
    stage1 += [dict(base, kind="scratch", seed=s, id=f"scratch-s{s}") for s in a.seeds]
    stage2 = [dict(base, kind="finetune", pre=pr, ft=f, seed=s, id=f"ft-{pr}-{f}-s{s}")
              for s in a.seeds for pr in pres for f in MATRIX[pr]]
    with mp.get_context("spawn").Pool(a.jobs, maxtasksperchild=1) as pool:
        pool.map(job, stage1, chunksize=1)
        pool.map(job, stage2, chunksize=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
