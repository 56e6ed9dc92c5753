"""bench/bench_pretraining.py: the CI math, a smoke run on CPU (1 seed x 2 arms) and resume."""
import importlib.util
import json
import math
import os
import shutil

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load():
    spec = importlib.util.spec_from_file_location("bench_pretraining", os.path.join(ROOT, "bench", "bench_pretraining.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


bp = _load()


def test_mean_ci_hand_computed():
    r = bp.mean_ci([1.0, 2.0, 3.0])  # mean 2, sd 1, se 1/sqrt(3), t_{0.975,2} = 4.303
    assert r["n"] == 3 and r["mean"] == pytest.approx(2.0) and r["sd"] == pytest.approx(1.0)
    half = 4.303 / math.sqrt(3)
    assert r["ci95"] == pytest.approx([2.0 - half, 2.0 + half])
    assert bp.mean_ci([5.0])["ci95"] == [None, None] and bp.mean_ci([])["n"] == 0
    assert bp.t975(1) == 12.706 and bp.t975(22) == 2.086 and bp.t975(500) == 1.96


def _run(fold, arm, seed, mpjpe):
    return {"kind": "finetune", "fold": fold, "arm": arm, "seed": seed,
            "results": {"plain": {"mpjpe": mpjpe}, "limb": {"mpjpe": mpjpe + 10}}}


def test_aggregate_pairs_by_seed():
    runs = [_run(0, "scratch_total", s, v) for s, v in ((0, 100.0), (1, 110.0), (2, 90.0))]
    runs += [_run(0, "scratch_ft", s, v) for s, v in ((0, 120.0), (1, 125.0))]
    runs += [_run(0, "mm_lift", s, v) for s, v in ((0, 99.0), (1, 108.0), (2, 87.0))]
    runs += [_run(0, "one_mm", 0, 150.0), _run(0, "one_scratch_ft", 0, 170.0)]
    agg = bp.aggregate(runs)["0"]
    d = agg["mm_lift"]["minus_scratch_total"]  # differences -1, -2, -3
    half = 4.303 * 1.0 / math.sqrt(3)
    assert d["mean"] == pytest.approx(-2.0) and d["ci95"] == pytest.approx([-2.0 - half, -2.0 + half])
    assert d["seeds"] == [0, 1, 2]
    e = agg["mm_lift"]["minus_scratch_ft"]  # only seeds 0, 1 pair: -21, -17
    assert e["seeds"] == [0, 1] and e["mean"] == pytest.approx(-19.0)
    assert e["ci95"] == pytest.approx([-19.0 - 12.706 * 2.0, -19.0 + 12.706 * 2.0])  # sd sqrt(8), se 2
    assert agg["mm_lift"]["mpjpe"]["mean"] == pytest.approx((99 + 108 + 87) / 3)
    assert "minus_scratch_total" not in agg["scratch_total"]
    # premise arms are paired with the scratch lifters on the same one sequence
    assert agg["one_mm"]["minus_scratch_ft"]["reference"] == "one_scratch_ft"
    assert agg["one_mm"]["minus_scratch_ft"]["mean"] == pytest.approx(-20.0)
    assert agg["one_mm"]["minus_scratch_total"]["n"] == 0
    # the verdict reads the CI: -2 +- 2.48 crosses 0; -19 +- 25.4 too; a clear one does not
    assert bp.verdict(d) == "no clear difference" and bp.verdict(None) == "not run"
    assert bp.verdict({"mean": -5.0, "ci95": [-8.0, -2.0]}) == "better"
    assert bp.verdict({"mean": 5.0, "ci95": [2.0, 8.0]}) == "worse"
    line = bp.summary_line({"mpjpe_mm": {"0": agg}, "meta": {"preset": {"pretrain_steps": 5, "finetune_steps": 2}}})
    assert "`mm_lift` -2.0 mm [" in line and "no clear difference" in line and "5 + 2 steps" in line


def test_plan_shares_pretraining_and_orders_seed_first():
    jobs = bp.plan([0], [0, 1], list(bp.ARMS), True, "/o", "/w")
    ids = [j["id"] for j in jobs]
    assert len(ids) == len(set(ids))
    assert ids.count("f0/s0/pretrain_mm") == 1  # the mm arm and the premise share it
    one = next(j for j in jobs if j["id"] == "f0/s0/one_mm")
    assert one["deps"] == ["f0/s0/pretrain_mm"] and one["model_dir"] == "/w/models/f0/s0/pretrain_mm"
    main_seed = [j["seed"] for j in jobs if j.get("arm") not in bp.PREMISE_ARMS and j["kind"] == "finetune"]
    assert main_seed == sorted(main_seed)  # seed 0 of every main arm before seed 1
    assert max(ids.index(f"f0/s{s}/{a}") for s in (0, 1) for a in bp.ARMS) < ids.index("f0/s0/one_mm")


def test_smoke_run_on_cpu_and_resume(tmp_path, capsys):
    out, work = str(tmp_path / "out"), str(tmp_path / "work")
    args = ["--budget", "smoke", "--device", "cpu", "--jobs", "2", "--seeds", "0", "--folds", "0",
            "--arms", "scratch_ft,mm_lift", "--no-premise", "--out", out, "--work", work,
            "--json", str(tmp_path / "p.json"), "--md", str(tmp_path / "p.md")]
    assert bp.main(args) == 0
    runs = os.path.join(out, "runs", "f0", "s0")
    assert sorted(os.listdir(runs)) == ["mm_lift.json", "pretrain_mm_lift.json", "scratch_ft.json"]
    with open(os.path.join(runs, "mm_lift.json")) as f:
        r = json.load(f)
    assert r["train_sequences"] == ["climb_seq_0", "climb_seq_1", "climb_seq_3", "cmu_01_03"]
    assert sorted(r["results"]["plain"]["per_action"]) == ["climb_seq_2", "cmu_01_01"]  # the report sequences only
    assert r["init_from"].endswith("pretrain_mm_lift") and r["steps"] == 3 and r["device"] == "cpu"
    with open(os.path.join(runs, "scratch_ft.json")) as f:
        assert json.load(f)["steps"] == 3
    with open(tmp_path / "p.json") as f:
        agg = json.load(f)
    assert agg["mpjpe_mm"]["0"]["mm_lift"]["minus_scratch_ft"]["mean"] == pytest.approx(
        r["results"]["plain"]["mpjpe"] - agg["runs"][[x["arm"] for x in agg["runs"]].index("scratch_ft")]["mpjpe"])
    md = (tmp_path / "p.md").read_text()
    assert "(`mm_lift`) | 4 + 3 | 1 |" in md and "(`scratch_ft`) | 3 | 1 |" in md

    # re-run: everything is skipped
    mtime = os.path.getmtime(os.path.join(runs, "mm_lift.json"))
    assert bp.main(args) == 0
    with open(os.path.join(out, "meta.json")) as f:
        assert json.load(f)["status"] == {"skipped (done)": 3}
    assert os.path.getmtime(os.path.join(runs, "mm_lift.json")) == mtime

    # a missing result is run again; a pre-training whose model is gone is re-run only when still needed
    os.remove(os.path.join(runs, "scratch_ft.json"))
    shutil.rmtree(os.path.join(work, "models"))
    assert bp.main(args + ["--deadline", "0"]) == 0
    with open(os.path.join(out, "meta.json")) as f:
        assert json.load(f)["status"] == {"skipped (done)": 2, "not started (deadline)": 1}
    os.remove(os.path.join(runs, "mm_lift.json"))
    assert bp.main(args + ["--deadline", "0"]) == 0
    with open(os.path.join(out, "meta.json")) as f:
        assert json.load(f)["status"] == {"not started (deadline)": 3}
    capsys.readouterr()
