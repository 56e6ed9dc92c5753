"""Re-measuring one lifter in a bench result (``--merge-into``, bench/common.merge_results) on the committed
results of the two real-footage benches: every other row stays, the report says which rows were re-measured."""

import copy
import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

import bench_heldout_mocap as HO  # noqa: E402
import bench_real_capture as RC  # noqa: E402
import common as C  # noqa: E402

RESULTS = os.path.join(ROOT, "bench", "results")
RC_SAME = ("mode", "flip_augmentation", "match_2d", "body_joints", "protocol", "mean_over_captures.mean_pose")


def _load(name):
    with open(os.path.join(RESULTS, name)) as f:
        return json.load(f)


def _scaled(v, factor):
    if isinstance(v, dict):
        return {k: _scaled(x, factor) for k, x in v.items()}
    if isinstance(v, list):
        return [_scaled(x, factor) for x in v]
    return v * factor if isinstance(v, float) else v


def _rescored(result, label, factor):
    """A second run of the bench that scored ``label`` again (every number of its rows times ``factor``)."""
    def walk(d):
        return {k: _scaled(v, factor) if (k == label or k.startswith(label + "+"))
                else walk(v) if isinstance(v, dict) else copy.deepcopy(v) for k, v in d.items()}

    new = {k: walk(v) if isinstance(v, dict) and k != "meta" else copy.deepcopy(v) for k, v in result.items()}
    new["meta"] = dict(result["meta"], command="python bench/bench_real_capture.py --model general=NEW",
                       git_commit="abc1234", started_utc="2026-12-06T03:00:00Z", threads=2, lifters={label: "NEW"})
    new["meta"].pop("updated_rows", None)
    return new


def test_real_capture_rows_of_one_lifter_replaced_others_kept():
    old = _load("real_capture.json")
    old["meta"]["updated_rows"] = {"labels": ["general"], "command": "python bench/bench_real_capture.py --model general=OLD",
                                   "git_commit": "0000000", "started_utc": "2026-12-01T00:00:00Z", "threads": 1,
                                   "why": "an earlier re-measurement"}  # the one-entry form of earlier results
    new = _rescored(old, "general", 0.5)
    for c in new["captures"].values():  # the new run scored no other lifter
        for rows in [c["mean_over_views"]] + list(c["views"].values()):
            for k in [k for k in rows if k.startswith("demo")]:
                del rows[k]
    merged = C.merge_results(old, new, ["general"], "a new general lifter", same=RC_SAME)
    g_old, g_new = old["mean_over_captures"]["general"], merged["mean_over_captures"]["general"]
    assert g_new["p_mpjpe_mm"] == pytest.approx(0.5 * g_old["p_mpjpe_mm"])
    assert merged["captures"]["Demo_MultiPerson"]["views"]["cam02"]["general+clean"]["p_mpjpe_mm"] == pytest.approx(
        0.5 * old["captures"]["Demo_MultiPerson"]["views"]["cam02"]["general+clean"]["p_mpjpe_mm"])
    for k in ("demo", "demo_scratch+clean", "mean_pose", "blazepose_3d"):  # untouched rows
        assert merged["mean_over_captures"][k] == old["mean_over_captures"][k]
    assert merged["meta"]["command"] == old["meta"]["command"] and merged["meta"]["lifters"]["general"] == "NEW"
    assert merged["meta"]["lifters"]["demo"] == old["meta"]["lifters"]["demo"]
    # the earlier entry for the same lifter is superseded, the report names the new command and reason
    assert [e["labels"] for e in merged["meta"]["updated_rows"]] == [["general"]]
    text = "\n".join(RC.report_section(merged))
    assert "re-measured by `python bench/bench_real_capture.py --model general=NEW`" in text
    assert "a new general lifter" in text and "Every other row is from the command above." in text
    assert old["meta"]["updated_rows"]["command"] not in text
    assert f"{g_new['p_mpjpe_mm']:.1f} / {g_new['mpjpe_mm']:.1f}" in text


def test_heldout_merge_keeps_entries_of_other_lifters_and_drops_stale_variants():
    old = _load("heldout_mocap.json")
    old["meta"]["updated_rows"] = {"labels": ["mpm-lift-general", "mpm-lift-general+match_2d"], "threads": 1,
                                   "command": "python bench/bench_heldout_mocap.py", "git_commit": "0000000",
                                   "started_utc": "2026-12-01T00:00:00Z", "why": "an earlier re-measurement"}
    new = _rescored(old, "demo-scratch", 0.9)
    for by_noise in new["results"].values():
        for rows in by_noise.values():
            del rows["demo-scratch+match_2d"]  # a variant the new run did not score
            for k in [k for k in rows if k.startswith(("mpm-lift-general", "demo-pretrained"))]:
                del rows[k]
    same = ("stride", "flip", "match_2d", "cameras", "noise_2d", "protocol", "sources")
    merged = C.merge_results(old, new, ["demo-scratch"], "retrained", same=same)
    rows = merged["results"]["real"]["detector"]
    assert "demo-scratch+match_2d" not in rows
    assert rows["demo-scratch"]["mean"]["p_mpjpe_mm"] == pytest.approx(
        0.9 * old["results"]["real"]["detector"]["demo-scratch"]["mean"]["p_mpjpe_mm"])
    assert rows["mpm-lift-general+match_2d"] == old["results"]["real"]["detector"]["mpm-lift-general+match_2d"]
    assert [e["labels"] for e in merged["meta"]["updated_rows"]] == [
        ["mpm-lift-general", "mpm-lift-general+match_2d"], ["demo-scratch"]]
    text = "\n".join(HO.report_section(merged))
    assert text.count("re-measured by") == 2 and "retrained" in text
    # re-measuring the general lifter again supersedes its entry (labelled with its +match_2d row too)
    again = C.merge_results(merged, _rescored(old, "mpm-lift-general", 1.1), ["mpm-lift-general"], "again", same=same)
    assert [e["labels"] for e in again["meta"]["updated_rows"]] == [["demo-scratch"], ["mpm-lift-general"]]


def test_merge_refuses_other_protocols_baselines_and_missing_reasons(tmp_path):
    old = _load("real_capture.json")
    new = _rescored(old, "general", 1.0)
    with pytest.raises(ValueError, match="match_2d"):
        C.merge_results(old, dict(new, match_2d=not old["match_2d"]), ["general"], "x", same=RC_SAME)
    other = copy.deepcopy(new)
    other["mean_over_captures"]["mean_pose"]["p_mpjpe_mm"] += 1.0  # another reference
    with pytest.raises(ValueError, match="mean_over_captures.mean_pose"):
        C.merge_results(old, other, ["general"], "x", same=RC_SAME)
    with pytest.raises(ValueError, match="--why"):
        C.merge_results(old, new, ["general"], "  ", same=RC_SAME)
    with pytest.raises(ValueError, match="no rows of"):
        C.merge_results(old, new, ["not_scored"], "x", same=RC_SAME)
    # a rerun's floats may differ in the last bits
    close = copy.deepcopy(new)
    close["mean_over_captures"]["mean_pose"]["p_mpjpe_mm"] *= 1 + 1e-9
    C.merge_results(old, close, ["general"], "x", same=RC_SAME)
    # the file is written atomically and only when the merge succeeds
    path = tmp_path / "rc.json"
    path.write_text(json.dumps(old))
    with pytest.raises(ValueError):
        C.merge_into_file(str(path), other, ["general"], "x", same=RC_SAME)
    assert json.loads(path.read_text()) == old
    C.merge_into_file(str(path), new, ["general"], "x", same=RC_SAME)
    assert json.loads(path.read_text())["meta"]["updated_rows"][-1]["why"] == "x"


def test_command_lines_check_merge_arguments_before_running(tmp_path, capsys):
    for main in (RC.main, HO.main):
        with pytest.raises(SystemExit):
            main(["--merge-into", os.path.join(RESULTS, "real_capture.json")])  # no --why
        assert "--why" in capsys.readouterr().err
        with pytest.raises(ValueError, match="cannot read a bench result"):
            main(["--merge-into", str(tmp_path / "missing.json"), "--why", "x"])
