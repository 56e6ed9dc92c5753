"""`mpm demo --quick` end to end: models load, results.json holds the table, the PNG exists."""

import json
import os

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
    out = pipe(kp, image_size=(1000, 1000))
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
