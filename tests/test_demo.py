"""`mpm demo --quick` end to end: models load, results.json holds the table, the PNG exists."""

import json

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    from modeling_mpm.cli import main

    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--output-dir", str(out), "--quick", "--no-progress", "--threads", "1"]) == 0
    return out


def test_demo_outputs_and_table(demo_dir):
    res = json.load(open(demo_dir / "results.json"))
    assert set(res["table"]) == {"pretrained", "scratch"}
    for name in ("pretrained", "scratch"):
        row = res["table"][name]
        assert set(row) == {"plain", "flip", "joints3", "limb"}
        for setting in row.values():
            assert np.isfinite(setting["mpjpe"]) and setting["mpjpe"] > 0
            assert 0 < setting["p_mpjpe"] <= setting["mpjpe"] + 1e-6  # alignment never hurts
    assert res["quick"] is True and res["windows"] > 0
    assert res["budget"]["pretrain_steps"] == 3
    png = demo_dir / "example.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Lifting on the held-out demo split" in res["table_text"]


def test_demo_models_load(demo_dir):
    from transformers import pipeline

    from modeling_mpm import MPMForMaskedPoseModeling, MPMForPoseLifting

    pre = MPMForMaskedPoseModeling.from_pretrained(demo_dir / "mpm-pretrain")
    lift_dir = demo_dir / "mpm-lift"
    assert "lift" in lift_dir.name
    lift = MPMForPoseLifting.from_pretrained(lift_dir)
    # the fine-tuned lifter started from the pre-trained encoder: same architecture, and the
    # encoder moved away from the pre-trained weights during fine-tuning (it was trained)
    key = "mpm.position_embedding" if "mpm.position_embedding" in pre.state_dict() else None
    shared = [k for k in lift.state_dict() if k in pre.state_dict() and k.startswith("mpm.")]
    assert len(shared) > 10
    if key:
        assert not torch.equal(pre.state_dict()[key], lift.state_dict()[key])
    pipe = pipeline("pose-lifting", model=str(lift_dir))
    kp = np.random.default_rng(0).uniform(300, 700, size=(12, 17, 2)).astype(np.float32)
    out = pipe(kp, image_size=(1000, 1000), keypoint_format="h36m")
    assert np.asarray(out["pose_3d"]).shape == (12, 17, 3)
    card = (lift_dir / "README.md").read_text()
    assert "model-index" in card and "MPJPE" in card


def test_demo_card_numbers_match_results(demo_dir):
    from huggingface_hub import ModelCard

    res = json.load(open(demo_dir / "results.json"))
    card = ModelCard.load(demo_dir / "mpm-lift" / "README.md")
    vals = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert vals["mpjpe"] == pytest.approx(round(res["table"]["pretrained"]["plain"]["mpjpe"], 2))
    assert vals["p_mpjpe_flip"] == pytest.approx(round(res["table"]["pretrained"]["flip"]["p_mpjpe"], 2))


def test_eval_cli_on_demo_lifter(demo_dir, tmp_path, capsys):
    from modeling_mpm.cli import main

    out = tmp_path / "eval.json"
    assert main(["eval", "--model", str(demo_dir / "mpm-lift"), "--max_windows", "40", "--flip", "both",
                 "--occluded_joints", "2", "--output_json", str(out), "--no_progress"]) == 0
    text = capsys.readouterr().out
    assert "Average" in text and "P-MPJPE" in text and "2 joints missing" in text
    res = json.load(open(out))
    assert set(res) == {"no flip", "flip"}
    assert res["flip"]["windows"] == 40 and res["flip"]["flip"] is True
    assert set(res["flip"]["per_action"]) <= {"cmu_01_03", "climb_seq_3"}
    with pytest.raises(SystemExit):
        main(["eval", "--model", str(tmp_path / "missing")])


def test_demo_reports_baseline_ratios_threads_and_budget(demo_dir):
    res = json.load(open(demo_dir / "results.json"))
    base = res["mean_pose_baseline"]
    assert set(base["per_action"]) == set(res["held_out_sequences"]) == {"cmu_01_03", "climb_seq_3"}
    assert 100 < base["mpjpe"] < 300  # the demo climbers' poses vary by ~0.2 m around their mean
    r = res["ratios"]
    assert r["pretrained_vs_scratch"] == pytest.approx(
        res["table"]["pretrained"]["plain"]["mpjpe"] / res["table"]["scratch"]["plain"]["mpjpe"])
    assert r["scratch_vs_mean_pose"] == pytest.approx(res["table"]["scratch"]["plain"]["mpjpe"] / base["mpjpe"])
    assert "mean pose" in res["table_text"] and "pretrained / scratch" in res["table_text"]
    assert res["threads"] == 1 and res["threads_reason"] == "set with --threads"
    b = res["step_budget"]
    assert b["optimizer_steps"] == 3 + 2 * 3 and all(v > 0 for v in b["measured_steps_per_s"].values())
    assert res["budget"]["augment"] == "real"


def test_mean_pose_baseline_is_the_per_sequence_mean(monkeypatch):
    """The baseline equals a direct computation on the held-out windows, and a lifter that
    outputs exactly those means scores it."""
    from modeling_mpm.demo import PRESETS, _run_config, _window_arrays, mean_pose_baseline
    from modeling_mpm.training.data import build_splits

    cfg = _run_config("lift", "/tmp/unused", dict(PRESETS["quick"]), 1, 1e-3, 0)
    _, val, _ = build_splits(cfg, 9, "h36m17")
    res = mean_pose_baseline(val)
    pose, groups, labels = _window_arrays(val)
    assert len(np.unique(groups)) == 2 * 4  # 2 sequences x 4 cameras
    per = {}
    for lab in set(labels):
        errs = []
        for g in np.unique(groups[np.array(labels) == lab]):
            p = pose[groups == g]
            errs.append(np.linalg.norm(p - p.mean(0), axis=-1).mean(-1))
        per[lab] = np.concatenate(errs).mean() * 1000
    assert res["per_action"] == pytest.approx(per, rel=1e-5)
    assert res["mpjpe"] == pytest.approx(np.mean(list(per.values())), rel=1e-5)


def test_choose_threads_says_why(monkeypatch, tmp_path):
    from modeling_mpm import demo

    monkeypatch.setattr(demo.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(demo.os, "getloadavg", lambda: (5.0, 5.0, 5.0))
    n, why = demo.choose_threads()
    assert n == 1 and "busy" in why and "5.0" in why and "--threads" in why
    monkeypatch.setattr(demo.os, "getloadavg", lambda: (0.2, 0.2, 0.2))
    n, why = demo.choose_threads()
    assert n == 2 and "0.2" in why
    with pytest.raises(ValueError, match="threads"):
        demo.run_demo(str(tmp_path / "out"), quick=True, threads=0)


@pytest.mark.parametrize("config, task", [("demo_pretrain", "pretrain"), ("demo_finetune_lift", "lift")])
def test_shipped_demo_configs_are_the_demo_recipe(config, task):
    """`mpm train ... --config demo_*` runs what `mpm demo` runs: every recipe key of the shipped YAML
    (model, data, optimisation, pretext, occlusion, transfer) equals the demo's own run config; only
    where outputs go, how often it logs / saves / validates and the seed may differ."""
    from modeling_mpm.demo import PRESETS, _run_config
    from modeling_mpm.training.config import load_config

    operational = {("training", k) for k in ("output_dir", "seed", "keep_checkpoints", "eval_every", "select_best",
                                             "tensorboard", "init_from")}
    operational |= {("data", "test_split")}
    p = dict(PRESETS["full"])
    steps, lr = (p["pretrain_steps"], p["pretrain_lr"]) if task == "pretrain" else (p["finetune_steps"], p["finetune_lr"])
    init = "runs/demo_pretrain/model" if task == "lift" else None
    demo = _run_config(task, "out", p, steps, lr, 0, init_from=init).to_dict()
    shipped = load_config(config).to_dict()
    if init:  # a transfer takes the architecture from the pre-trained folder: the YAML's must match it
        demo["model"] = _run_config("pretrain", "out", p, 1, lr, 0).to_dict()["model"]
        shipped["model"] = {k: v for k, v in shipped["model"].items() if k != "loss_weight_lift"}
        demo["model"] = {k: v for k, v in demo["model"].items() if k != "loss_weight_lift"}
    differ = [(s, k, v, demo[s].get(k)) for s in ("model", "data", "training") for k, v in shipped[s].items()
              if (s, k) not in operational and v != demo[s].get(k)]
    assert not differ, differ
    unset = sorted(k for k in demo["model"] if k not in shipped["model"] and k not in ("skeleton", "num_joints"))
    assert not unset, f"the demo sets model keys the shipped YAML leaves at their defaults: {unset}"
    assert shipped["training"]["occlusion_limb_prob"] == 0.5 and shipped["training"]["occlusion_prob"] == 0.5


@pytest.mark.parametrize("flag", ["--threads", "--pretrain-steps", "--finetune-steps"])
def test_demo_refuses_non_positive_counts(flag, tmp_path, capsys):
    from modeling_mpm.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--quick", "--output-dir", str(tmp_path / "d"), flag, "0"])
    assert exit_info.value.code == 2
    assert f"{flag} must be at least 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_demo_output_dir_that_is_a_file_is_a_sentence(tmp_path, capsys):
    from modeling_mpm.cli import main

    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")
    assert main(["demo", "--quick", "--output-dir", str(notes)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: output_dir") and "is a file" in err and "Traceback" not in err
    assert notes.read_text() == "keep me"


def test_general_preset_keeps_the_shipped_lifters_dropout():
    """`train/general_lifter.py --continue-from` the shipped lifter trains it as it was trained: its preset's
    dropout equals the shipped config's, and goes into the run config of a continued (init_from) run too, while
    the demo's own lifters train without dropout."""
    import json
    import os

    from modeling_mpm.demo import NO_DROPOUT, PRESETS, _run_config

    shipped = json.load(open(os.path.join(os.path.dirname(__file__), "..", "modeling_mpm", "pretrained",
                                          "mpm-lift-general", "config.json")))
    general = _run_config("lift", "out", dict(PRESETS["general"]), 10, 5e-4, 0, init_from="some/folder").model
    assert {k: general[k] for k in NO_DROPOUT} == {k: shipped[k] for k in NO_DROPOUT}
    demo = _run_config("pretrain", "out", dict(PRESETS["full"]), 10, 2e-3, 0).model
    assert {k: demo[k] for k in NO_DROPOUT} == {k: 0.0 for k in NO_DROPOUT}
