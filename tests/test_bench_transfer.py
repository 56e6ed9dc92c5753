"""bench/bench_transfer.py: the job plan, the held-out test windows and the summary (no training)."""

import importlib
import os
import sys

import numpy as np
import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench")


@pytest.fixture(scope="module")
def bt():
    if BENCH not in sys.path:
        sys.path.insert(0, BENCH)
    return importlib.import_module("bench_transfer")


def test_plan_shares_scratch_lifters_and_skips_paired_pretraining_in_low_regime(bt):
    jobs = bt.plan(["wide_lift", "wide", "baseline"], [0, 1], ["full", "low"])
    pre = [j for j in jobs if j["kind"] == "pretrained"]
    scratch = [(j["recipe"], j["seed"], j["regimes"][0]) for j in jobs if j["kind"] == "scratch"]
    assert len(pre) == 6
    assert all(j["regimes"] == ["full"] for j in pre if j["recipe"] == "wide_lift")  # it pairs 2D with 3D
    # wide_lift and wide fine-tune on the same data: one scratch lifter per seed and regime serves both
    assert sorted(scratch) == sorted([("wide_lift", s, "full") for s in (0, 1)] + [("wide", s, "low") for s in (0, 1)]
                                     + [("baseline", s, r) for s in (0, 1) for r in ("full", "low")])


def test_summary_pairs_pretrained_with_the_matching_scratch(bt):
    cell = lambda v: {"mpjpe": v, "mean_pose": 200.0}  # noqa: E731
    jobs = [
        {"kind": "pretrained", "recipe": "wide_lift", "seed": 0, "regimes": {"full": {"test": {"t": cell(90.0)}}}},
        {"kind": "pretrained", "recipe": "wide", "seed": 0, "regimes": {"full": {"test": {"t": cell(120.0)}},
                                                                        "low": {"test": {"t": cell(150.0)}}}},
        {"kind": "scratch", "recipe": "wide_lift", "seed": 0, "regimes": {"full": {"test": {"t": cell(100.0)}}}},
        {"kind": "scratch", "recipe": "wide", "seed": 0, "regimes": {"low": {"test": {"t": cell(160.0)}}}},
    ]
    s = bt.summarize(jobs)
    assert s["wide_lift"]["full"]["t"]["summary"]["pretrained_vs_scratch"]["mean"] == pytest.approx(0.9)
    assert s["wide"]["full"]["t"]["summary"]["pretrained_vs_scratch"]["mean"] == pytest.approx(1.2)
    assert s["wide"]["low"]["t"]["summary"]["pretrained_vs_mean_pose"]["mean"] == pytest.approx(0.75)


def test_test_windows_are_held_out_and_reproducible(bt):
    sets = bt.test_sets([])
    assert [s["sequence"] for s in sets["demo_held_out"]] == ["cmu_01_03", "climb_seq_3"]
    a = bt.test_windows(sets["demo_held_out"], 9, seed=1, n_cams=2, stride=200)
    b = bt.test_windows(sets["demo_held_out"], 9, seed=1, n_cams=2, stride=200)
    c = bt.test_windows(sets["demo_held_out"], 9, seed=2, n_cams=2, stride=200)
    idx = np.arange(len(a))
    ba, bb, bc = (x.windows.get_batch(idx) for x in (a, b, c))
    np.testing.assert_array_equal(ba["pose_2d"], bb["pose_2d"])
    assert not np.allclose(ba["pose_2d"], bc["pose_2d"])  # another seed, other cameras
    assert len(a) == 2 * len(np.unique(ba["sequence_index"] * 100000 + ba["center_frame"]))
    cams = bt.test_cameras(0, 3)
    assert all(c.focal == 1145.0 and 4.0 <= c.distance <= 6.0 for c in cams)
