"""A sentence, not a traceback (issue 19 D and E): `modeling_mpm.cli.main` turns the package's
input errors into `mpm <command>: error: ...` with exit code 2 and lets real bugs keep their
traceback; the cases an adversarial user found each end that way, before anything is written.
E: `mpm render` writes .mp4 through PyAV without ffmpeg; COCO JSON image sizes are used."""

import json
import os
import sys

import numpy as np
import pytest

import modeling_mpm.cli as cli
from modeling_mpm import MPMConfig, MPMForPoseLifting

TINY = dict(num_frames=5, num_layers=1, hidden_size=8, intermediate_size=16, num_attention_heads=2, reduce_strides=[5])


def _mpm(argv, capsys):
    """``mpm argv`` -> (exit code, stderr)."""
    try:
        rc = cli.main(argv)
    except SystemExit as e:  # argparse
        rc = e.code
    return rc, capsys.readouterr().err


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("lifter") / "m"
    MPMForPoseLifting(MPMConfig(**TINY)).save_pretrained(d)
    return d


def _variant(model_dir, tmp_path, **fields):
    import shutil

    d = tmp_path / "bad_model"
    shutil.copytree(model_dir, d)
    data = json.loads((d / "config.json").read_text())
    data.update(fields)
    (d / "config.json").write_text(json.dumps(data))
    return str(d)


@pytest.mark.parametrize("command", [["eval", "--data", "synthetic"], ["export-onnx", "-o", "x.onnx", "--no-check"]])
@pytest.mark.parametrize("fields,msg", [({"num_frames": "5"}, "num_frames must be an int"),
                                        ({"dtype": "float99"}, "dtype must be one of"),
                                        ({"layer_norm_eps": -1}, "layer_norm_eps")])
def test_a_bad_config_json_is_a_sentence(model_dir, tmp_path, capsys, command, fields, msg):
    rc, err = _mpm([command[0], "--model", _variant(model_dir, tmp_path, **fields), *command[1:]], capsys)
    assert rc == 2 and "error: " in err and msg in err and "Traceback" not in err and "bad_model" in err


def test_training_inputs_that_do_not_exist_are_sentences(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    common = ["--data", "synthetic", "--output-dir", str(out), "--max-steps", "1", "--no-progress"]
    cases = [
        (["train", "finetune", "--task", "lift", "--init-from", str(tmp_path / "nope"), *common], "init_from"),
        (["train", "pretrain", "--resume", str(tmp_path / "no_ckpt"), *common], "not a checkpoint folder"),
        (["train", "pretrain", *common, "--data-paths", str(tmp_path / "no_data")], "does not exist"),
        (["train", "pretrain", "--set", "model.num_frames=8", *common], "num_frames must be odd"),
    ]
    for argv, msg in cases:
        rc, err = _mpm(argv, capsys)
        assert rc == 2 and msg in err and "Traceback" not in err, err
        assert not out.exists()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rc, err = _mpm(["train", "pretrain", *common, "--push-to-hub", "me/mpm"], capsys)
    assert rc == 2 and err.startswith("mpm train: error: --push-to-hub me/mpm: ") and "--push_to_hub" not in err
    assert not out.exists()


def test_export_onnx_without_the_onnx_package_is_a_sentence(model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx -> ImportError
    rc, err = _mpm(["export-onnx", "--model", str(model_dir), "-o", str(tmp_path / "x.onnx")], capsys)
    assert rc == 2 and "needs the onnx package" in err and "pip install" in err
    assert not (tmp_path / "x.onnx").exists()


def test_render_max_frames_0_and_deep_json_are_sentences(tmp_path, capsys, model_dir):
    np.savez(tmp_path / "r.npz", pose_3d=np.zeros((3, 17, 3), np.float32))
    rc, err = _mpm(["render", str(tmp_path / "r.npz"), "-o", str(tmp_path / "r.gif"), "--max-frames", "0"], capsys)
    assert rc == 2 and "--max-frames must be at least 1" in err
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 50_000 + "]" * 50_000)
    rc, err = _mpm(["lift", str(deep), "--model", str(model_dir), "-o", str(tmp_path / "o.npz"),
                    "--format", "coco", "--image-size", "100", "100"], capsys)
    assert rc == 2 and "nested" in err and "RecursionError" not in err


def test_malformed_released_files_are_sentences(tmp_path, capsys):
    cases = [
        ("3dhp", "--train", {"data": np.array({"S1 Seq1": [{"0": "x"}, 50]}, dtype=object)}, "camera 0"),
        ("3dhp", "--test", {"data": np.array({"TS1": {"data_2d": 1, "data_3d": 2, "valid": 3}}, dtype=object)},
         "data_2d"),
        ("amass", "--input", {"poses": np.array({"a": 1}, dtype=object)}, "AMASS sequence 'a'"),
        ("amass", "--input", {"poses": np.array({"a": {"length": "x", "pose2d": np.zeros((2, 16, 2)),
                                                       "pose3d": np.zeros((2, 16, 3))}}, dtype=object)}, "'length'"),
        ("h36m", "--positions_3d", {"positions_3d": np.array({"S1": "x"}, dtype=object)}, "3D subject 'S1'"),
        ("h36m", "--positions_3d", {"positions_3d": np.array({"S1": {"W": ["a", "b"]}}, dtype=object)},
         "not a numeric array"),
    ]
    for i, (command, flag, arrays, msg) in enumerate(cases):
        np.savez(tmp_path / f"in{i}.npz", **arrays)
        rc, err = _mpm(["prepare", command, flag, str(tmp_path / f"in{i}.npz"), "--output", str(tmp_path / "o")],
                       capsys)
        assert rc == 2 and msg in err, (command, err)
    (tmp_path / "bad.bvh").write_text("HIERARCHY\nROOT Hips\n{\n OFFSET 0 0\n}\n")
    rc, err = _mpm(["prepare", "bvh", str(tmp_path / "bad.bvh"), "--output", str(tmp_path / "o")], capsys)
    assert rc == 2 and "bad.bvh" in err
    assert not (tmp_path / "o").exists()


def test_eval_output_json_that_is_a_folder_is_refused_before_evaluating(tmp_path, capsys, model_dir, monkeypatch):
    import modeling_mpm.evaluation as E

    monkeypatch.setattr(E, "evaluate_lifting", lambda *a, **k: pytest.fail("evaluated before checking the output"))
    (tmp_path / "results").mkdir()
    rc, err = _mpm(["eval", "--model", str(model_dir), "--data", "synthetic", "--output-json",
                    str(tmp_path / "results")], capsys)
    assert rc == 2 and "is a folder" in err


def test_bugs_are_not_turned_into_sentences(monkeypatch, capsys):
    import modeling_mpm.cli.export_onnx as ex

    def buggy(argv):
        return None + 1  # TypeError from a bug, not from an input check

    monkeypatch.setattr(ex, "main", buggy)
    with pytest.raises(TypeError):
        cli.main(["export-onnx"])

    def buggy2(argv):
        return {}["missing"]

    monkeypatch.setattr(ex, "main", buggy2)
    with pytest.raises(KeyError):
        cli.main(["export-onnx"])

    def refused(argv):
        from modeling_mpm.errors import MPMInputError

        raise MPMInputError("x.npz: no such thing: pass another file")

    monkeypatch.setattr(ex, "main", refused)
    assert cli.main(["export-onnx"]) == 2
    assert capsys.readouterr().err == "mpm export-onnx: error: x.npz: no such thing: pass another file\n"


# ----------------------------------------------------------------------------- E: newcomer stumbles
def test_render_mp4_uses_pyav_without_ffmpeg(tmp_path, capsys, monkeypatch):
    av = pytest.importorskip("av")
    import modeling_mpm.render as R

    monkeypatch.setattr(R, "ffmpeg_available", lambda: False)  # no ffmpeg executable
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "r.npz", pose_3d=rng.normal(0, 0.3, (5, 17, 3)).astype(np.float32))
    rc, err = _mpm(["render", str(tmp_path / "r.npz"), "-o", str(tmp_path / "r.mp4"), "--fps", "10"], capsys)
    assert rc == 0, err
    with av.open(str(tmp_path / "r.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == 5


def test_coco_json_with_image_sizes_needs_no_image_size_flag(tmp_path, capsys, model_dir):
    from modeling_mpm.data.io import read_keypoints

    rng = np.random.default_rng(0)
    dets = [{"image_id": i, "category_id": 1, "score": 0.9,
             "keypoints": np.c_[rng.uniform(10, 90, (17, 2)), np.ones(17)].ravel().tolist()} for i in range(4)]
    coco = {"images": [{"id": i, "width": 640, "height": 480} for i in range(4)], "annotations": dets}
    (tmp_path / "det.json").write_text(json.dumps(coco))
    assert read_keypoints(str(tmp_path / "det.json"))[1]["image_size"] == (640.0, 480.0)
    rc, err = _mpm(["lift", str(tmp_path / "det.json"), "--model", str(model_dir), "-o", str(tmp_path / "o.npz"),
                    "--no-progress"], capsys)
    assert rc == 0, err
    assert np.load(tmp_path / "o.npz")["image_size"].tolist() == [640.0, 480.0]
    coco["images"][1]["width"] = 1280  # sizes that disagree are not guessed
    (tmp_path / "det.json").write_text(json.dumps(coco))
    rc, err = _mpm(["lift", str(tmp_path / "det.json"), "--model", str(model_dir), "-o", str(tmp_path / "o.npz")],
                   capsys)
    assert rc == 2 and "--image-size" in err
