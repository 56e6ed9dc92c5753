"""Data preparation is safe: no code runs from npz files, --overwrite replaces only prepared data
sets, interrupted writes are recovered, and bad files give a sentence, not a traceback."""

import os

import numpy as np
import pytest

from modeling_mpm.cli.prepare import main
from modeling_mpm.data import io as dio
from modeling_mpm.data import sources as S
from modeling_mpm.data.bvh import parse_bvh
from unsafe_pickle import RunsCodeWhenUnpickled


def _h36m_dict(subjects=("S1", "S9")):
    rng = np.random.default_rng(0)
    return {s: {"Walking": (rng.normal(0, 0.3, (4, 32, 3)) + [0, 0, 1]).astype(np.float32)} for s in subjects}


@pytest.mark.parametrize("command,key", [("h36m", "positions_3d"), ("3dhp", "data"), ("amass", "poses")])
def test_prepare_refuses_code_in_pickled_npz(tmp_path, capsys, command, key):
    marker = tmp_path / "code_ran"
    src = tmp_path / "crafted.npz"
    np.savez(src, **{key: np.array({"S1": {"Walking": RunsCodeWhenUnpickled(str(marker))}}, dtype=object)})
    flag = {"h36m": "--positions_3d", "3dhp": "--train", "amass": "--input"}[command]
    rc = main([command, flag, str(src), "--output", str(tmp_path / "out")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "refused to load" in err and "crafted.npz" in err
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_restricted_unpickler_reads_the_released_layouts(tmp_path):
    pos = _h36m_dict()
    d2 = {"S1": {"Walking": [np.zeros((4, 17, 2), np.float32)] * 4}}
    np.savez(tmp_path / "d3.npz", positions_3d=np.array(pos, dtype=object))
    np.savez(tmp_path / "d2.npz", positions_2d=np.array(d2, dtype=object),
             metadata=np.array({"num_joints": 17, "keypoints_symmetry": [[1, 3], [2, 4]]}, dtype=object))
    got = dio.read_npz_object(tmp_path / "d3.npz", "positions_3d")
    assert set(got) == {"S1", "S9"} and np.array_equal(got["S1"]["Walking"], pos["S1"]["Walking"])
    assert S.load_h36m_2d(tmp_path / "d2.npz")["S1"]["Walking"][3].shape == (4, 17, 2)
    # numpy scalars, sets, tuples, complex and nested object arrays are plain data too
    obj = {"a": (np.float64(1.5), np.int32(2)), "b": {1, 2}, "c": 1 + 2j, "d": np.array([None, "x"], dtype=object)}
    np.savez(tmp_path / "o.npz", data=np.array(obj, dtype=object))
    back = dio.read_npz_object(tmp_path / "o.npz", "data")
    assert back["a"] == (1.5, 2) and back["b"] == {1, 2} and back["c"] == 1 + 2j and list(back["d"]) == [None, "x"]


def test_prepare_h36m_subjects(tmp_path, capsys):
    only_unknown = tmp_path / "unknown.npz"
    np.savez(only_unknown, positions_3d=np.array(_h36m_dict(("S2", "S3")), dtype=object))
    assert main(["h36m", "--positions_3d", str(only_unknown), "--output", str(tmp_path / "a")]) == 2
    assert "none of the Human3.6M subjects" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()
    no_test = tmp_path / "train_only.npz"
    np.savez(no_test, positions_3d=np.array(_h36m_dict(("S1",)), dtype=object))
    assert main(["h36m", "--positions_3d", str(no_test), "--output", str(tmp_path / "b")]) == 0
    dd = dio.load_dataset_dir(tmp_path / "b")  # loadable: no empty test split was written
    assert list(dd) == ["train"] and len(dd["train"]) == 4


def test_overwrite_replaces_only_a_prepared_dataset(tmp_path, capsys, monkeypatch):
    src = tmp_path / "d3.npz"
    np.savez(src, positions_3d=np.array(_h36m_dict(), dtype=object))
    work = tmp_path / "work"
    work.mkdir()
    (work / "precious.txt").write_text("keep me")
    monkeypatch.chdir(work)
    assert main(["h36m", "--positions_3d", str(src), "--output", ".", "--overwrite"]) == 2
    assert "not a prepared data set" in capsys.readouterr().err
    assert (work / "precious.txt").read_text() == "keep me"
    assert main(["h36m", "--positions_3d", str(src), "--output", "ds"]) == 0
    assert main(["h36m", "--positions_3d", str(src), "--output", "ds", "--overwrite"]) == 0  # a data set: fine


def test_interrupted_writes_are_cleaned_or_restored(tmp_path):
    ds = S.prepare_h36m(_h36m_dict())
    out = tmp_path / "h36m"
    dio.save_dataset(ds, out)
    # crash between moving the old data set aside and renaming the new one in
    os.replace(out, tmp_path / ".h36m.old-deadbeef")
    (tmp_path / ".h36m.tmp-cafecafe").mkdir()
    (tmp_path / ".h36m.tmp-cafecafe" / "half.arrow").write_bytes(b"x")
    done = dio.clean_interrupted_writes(out)
    assert len(done) == 2 and any("restored" in d for d in done)
    assert sorted(os.listdir(tmp_path)) == ["h36m"]
    assert len(dio.load_dataset_dir(out)["train"]) == 4
    # next to a complete data set the .old-* copy is just removed
    (tmp_path / ".h36m.old-0").mkdir()
    dio.save_dataset(ds, out, overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["h36m"]


def test_prepare_folder_as_input_and_bad_npz(tmp_path, capsys):
    (tmp_path / "dir.npz").mkdir()
    assert main(["h36m", "--positions_3d", str(tmp_path / "dir.npz"), "--output", str(tmp_path / "o")]) == 2
    assert "is a folder" in capsys.readouterr().err
    (tmp_path / "rand.npz").write_bytes(os.urandom(64))
    assert main(["h36m", "--positions_3d", str(tmp_path / "rand.npz"), "--output", str(tmp_path / "o")]) == 2
    assert "rand.npz: not a NumPy .npz file" in capsys.readouterr().err
    np.savez(tmp_path / "full.npz", positions_3d=np.array(_h36m_dict(), dtype=object))
    data = (tmp_path / "full.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    assert main(["h36m", "--positions_3d", str(tmp_path / "cut.npz"), "--output", str(tmp_path / "o")]) == 2
    assert "cut.npz: unreadable .npz file" in capsys.readouterr().err


_BVH = """HIERARCHY
ROOT Hips
{{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation
  End Site
  {{
    OFFSET 0 1 0
  }}
}}
MOTION
Frames: {frames}
Frame Time: {frame_time}
{lines}
"""


@pytest.mark.parametrize("frames,frame_time,lines,match", [
    (-5, "0.01", "", "frame count must be positive"),
    (0, "0.01", "", "frame count must be positive"),
    (1, "0.01", "0 0 nan 0 0 0", "not finite"),
    (1, "0.01", "0 0 1e308 0 0 0", "exceeds"),
    (1, "1e-300", "0 0 0 0 0 0", "frame time"),
    (1, "1e6", "0 0 0 0 0 0", "frame time"),
    (1, "nan", "0 0 0 0 0 0", "frame time"),
])
def test_bvh_rejects_degenerate_files(frames, frame_time, lines, match):
    with pytest.raises(ValueError, match=match):
        parse_bvh(_BVH.format(frames=frames, frame_time=frame_time, lines=lines), source="x.bvh")


def test_prepare_bvh_with_negative_frames_is_a_sentence(tmp_path, capsys):
    (tmp_path / "bad.bvh").write_text(_BVH.format(frames=-5, frame_time="0.01", lines=""))
    assert main(["bvh", str(tmp_path / "bad.bvh"), "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "bad.bvh" in err and "frame count" in err


def test_prepare_help_says_what_is_trusted(capsys):
    with pytest.raises(SystemExit):
        main(["h36m", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "restricted unpickler" in text and "nothing in the file is run" in text


def test_prepare_mocap_npy_errors_are_sentences(tmp_path, capsys):
    (tmp_path / "joint_names.json").write_text('["Hips"]')
    (tmp_path / "climb.npy").write_bytes(b"")
    assert main(["bvh", str(tmp_path / "climb.npy"), "--output", str(tmp_path / "o")]) == 2
    assert "climb.npy: not a NumPy .npy file (it is empty (0 bytes))" in capsys.readouterr().err
