"""The bench scripts run in smoke mode and write well-formed JSON; make_report turns them into
RESULTS.md and PNG plots."""

import importlib
import json
import math
import os
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")


def _script(name):
    if BENCH not in sys.path:
        sys.path.insert(0, BENCH)
    return importlib.import_module(name)


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert _script("bench_accuracy").main(["--budget", "smoke", "--out", str(out / "accuracy_smoke.json")]) == 0
        assert _script("bench_ablation").main(["--budget", "smoke", "--variants",
                                               "paper_0.6_5_both,pretext_3d_only,none,dropped_frames_as_mask_token",
                                               "--out", str(out / "ablation_smoke.json")]) == 0
        assert _script("bench_completion").main(["--budget", "smoke", "--pretrained", str(out / "missing"),
                                                 "--out", str(out / "completion_smoke.json")]) == 0
        assert _script("bench_training_speed").main(["--budget", "smoke", "--in-process", "--no-loader", "--threads",
                                                     "1", "--out", str(out / "training_speed_smoke.json")]) == 0
        assert _script("bench_inference_scaling").main(["--budget", "smoke", "--threads", "1",
                                                        "--out", str(out / "inference_scaling_smoke.json")]) == 0
    finally:
        torch.set_num_threads(threads)
    return out


def _read(path):
    with open(path) as f:
        return json.load(f)


def _finite(x):
    return isinstance(x, (int, float)) and math.isfinite(x)


def test_accuracy_json(smoke_results):
    res = _read(smoke_results / "accuracy_smoke.json")
    assert res["meta"]["budget"] == "smoke" and "command" in res["meta"]
    assert set(res["summary"]) == {"mpm_pretrained", "mpm_scratch"}
    # trained by the package trainer: its optimiser (Adam with amsgrad) and schedule, not a bench loop
    assert res["training"]["amsgrad"] is True and res["training"]["lr_schedule"] == "smooth"
    for name, s in res["summary"].items():
        assert _finite(s["mpjpe_mm"]["mean"]) and s["mpjpe_mm"]["mean"] > 0
        assert _finite(s["p_mpjpe_mm"]["mean"]) and s["p_mpjpe_mm"]["mean"] > 0
        rows = s["occlusion"]["joints"]
        fr = [r["missing_fraction"] for r in rows]
        assert fr[0] == 0 and fr == sorted(fr) and fr[-1] > 0.5
        assert all(_finite(r["mpjpe_mm"]["mean"]) for r in rows)
        # 0 missing joints is the clean evaluation
        assert rows[0]["mpjpe_mm"]["mean"] == pytest.approx(s["mpjpe_mm"]["mean"])
        assert s["occlusion"]["limb"]["missing_fraction"] == pytest.approx(3 / 17)
        assert _finite(s["occlusion"]["limb"]["mpjpe_mm"]["mean"])
    runs = res["runs"]["0"]
    for name in ("mpm_pretrained", "mpm_scratch"):
        log = runs[name]["train"]
        assert log["steps"] == res["budget"]["finetune_steps"] and log["loss_curve"][-1][0] == log["steps"]
    assert res["pretrain"]["0"]["steps"] == res["budget"]["pretrain_steps"]
    # the same seed and budget, with and without pre-training: different models
    assert runs["mpm_pretrained"]["clean"]["mpjpe_mm"] != runs["mpm_scratch"]["clean"]["mpjpe_mm"]


def test_ablation_and_completion_json(smoke_results):
    abl = _read(smoke_results / "ablation_smoke.json")
    assert set(abl["summary"]) == {"paper_0.6_5_both", "pretext_3d_only", "none", "dropped_frames_as_mask_token"}
    assert all(_finite(v["mpjpe_mm"]["mean"]) for v in abl["summary"].values())
    row = abl["runs"]["0"]["pretext_3d_only"]
    assert row["pretext"] == "3d" and row["config"]["loss_weight_2d"] == 0 and _finite(row["pretrain_final_loss"])
    assert abl["runs"]["0"]["dropped_frames_as_mask_token"]["config"]["dropped_frames_input"] == "mask_token"
    assert "pretext" not in abl["runs"]["0"]["none"]
    comp = _read(smoke_results / "completion_smoke.json")
    assert list(comp["summary"]) == ["tube/right_leg", "tube/right_arm", "tube/left_arm", "tube/left_leg"]
    for key, row in comp["summary"].items():
        for meth in ("mpm_completion", "mpm_pretrained", "nearest_neighbour"):
            assert _finite(row[meth]["mean"]) and row[meth]["mean"] > 0
    assert comp["runs"]["0"]["completion_train"]["steps"] == comp["settings"]["completion_steps"]


def test_speed_json(smoke_results):
    tr = _read(smoke_results / "training_speed_smoke.json")
    for kind in ("pretrain", "finetune"):
        r = tr["steps"][kind]
        assert r["samples_per_s"] > 0 and r["rss_peak_mib"] >= r["rss_before_mib"] > 0
    inf = _read(smoke_results / "inference_scaling_smoke.json")
    assert inf["matmul_gflops"] > 0 and inf["cpu_attention_flops_counted"]
    modes = {r["mode"] for r in inf["rows"]}
    assert modes == {"seq2seq", "seq2frame", "mlp", "tcn"}
    for r in inf["rows"]:
        assert r["frames_per_s"] > 0 and r["flops_per_frame"] > 0
    s2s = [r for r in inf["rows"] if r["mode"] == "seq2seq"][0]
    s2f = [r for r in inf["rows"] if r["mode"] == "seq2frame"][0]
    assert s2f["flops_per_frame"] > s2s["flops_per_frame"]  # one window per frame costs more


def test_dropout_ab_times_both_settings_of_one_model(tmp_path):
    """--dropout-ab times the same steps with the config's dropout and with none (the JSON names both)."""
    threads = torch.get_num_threads()
    try:
        assert _script("bench_training_speed").main(["--budget", "smoke", "--dropout-ab", "--threads", "1",
                                                     "--steps", "2", "--repeats", "1",
                                                     "--out", str(tmp_path / "ab.json")]) == 0
    finally:
        torch.set_num_threads(threads)
    res = _read(tmp_path / "ab.json")
    for kind in ("pretrain", "finetune"):
        row = res["steps"][kind]
        assert row["dropout"]["dropout"] > 0 and row["seconds_per_step_without"] > 0
        assert row["speedup_without"] == pytest.approx(row["seconds_per_step_with_dropout"]
                                                       / row["seconds_per_step_without"])


def test_flop_count_includes_cpu_attention():
    common = _script("common")
    assert common.register_cpu_attention_flops() and common.register_cpu_attention_flops()
    from torch.utils.flop_counter import FlopCounterMode

    q = torch.randn(1, 2, 16, 8)
    with FlopCounterMode(display=False) as fc:
        torch.nn.functional.scaled_dot_product_attention(q, q, q)
    assert fc.get_total_flops() == 4 * 2 * 16 * 16 * 8          # QK^T and AV, 2 FLOPs per multiply-add


def test_make_report(smoke_results, tmp_path):
    mr = _script("make_report")
    out = tmp_path / "RESULTS.md"
    plots = tmp_path / "plots"
    assert mr.main(["--budget", "smoke", "--results", str(smoke_results), "--out", str(out),
                    "--plots", str(plots)]) == 0
    text = out.read_text()
    for heading in ("## 1. Lifting accuracy", "## 2. Robustness", "## 3. 3D pose completion",
                    "## 4. Pre-training ablations", "## 5. Training speed", "## 6. Inference speed"):
        assert heading in text
    assert "bench_accuracy.py --budget smoke" in text           # the command next to the numbers
    assert "No current numbers" not in text
    pngs = sorted(p.name for p in plots.iterdir())
    assert {"lifting_mpjpe.png", "occlusion.png", "completion.png", "ablation.png",
            "inference_scaling.png"} <= set(pngs)
    for p in pngs:
        assert (plots / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_make_report_without_training_results(smoke_results, tmp_path):
    """A section whose JSON is missing says so in one line instead of showing numbers."""
    mr = _script("make_report")
    only = tmp_path / "results"
    only.mkdir()
    (only / "training_speed_smoke.json").write_bytes((smoke_results / "training_speed_smoke.json").read_bytes())
    out = tmp_path / "RESULTS.md"
    assert mr.main(["--budget", "smoke", "--results", str(only), "--out", str(out), "--plots", str(tmp_path / "p")]) == 0
    text = out.read_text()
    for script in ("bench_accuracy.py", "bench_completion.py", "bench_ablation.py"):
        assert f"No current numbers: `bash bench/run_all.sh` remakes this section (`{script} --budget smoke`)" in text
    assert "## 5. Training speed" in text
