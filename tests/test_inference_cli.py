"""Readers and the mpm lift / complete / render commands (tiny models saved to tmp dirs)."""

import json

import numpy as np
import pytest
import torch

from modeling_mpm import MPMConfig, MPMForMaskedPoseModeling, MPMForPoseLifting
from modeling_mpm.cli import main as mpm
from modeling_mpm.data.io import read_coco_json, read_keypoints


def tiny(**kw):
    return MPMConfig(num_frames=9, num_layers=1, hidden_size=32, intermediate_size=64, num_attention_heads=4,
                     reduce_strides=[3, 3], **kw)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    MPMForPoseLifting(tiny()).save_pretrained(d / "lifter")
    MPMForMaskedPoseModeling(tiny(decoder_layers=2)).save_pretrained(d / "completer")
    return d


def coco_results(ids, rng):
    res = []
    for i in ids:
        for score in (0.4, 0.9):  # two people; the second has the higher score
            kps = np.concatenate([rng.uniform(0, 300, (17, 2)), np.full((17, 1), score)], 1)
            res.append({"image_id": i, "category_id": 1, "keypoints": kps.reshape(-1).tolist(), "score": score})
    res.append({"image_id": ids[0], "category_id": 2, "keypoints": [0.0] * 51, "score": 5.0})  # not a person
    return res


def test_coco_json_reader(tmp_path):
    rng = np.random.default_rng(0)
    res = coco_results([3, 1, 2, 5], rng)
    p = tmp_path / "det.json"
    p.write_text(json.dumps(res))
    arr, ids = read_coco_json(str(p))
    assert ids == [1, 2, 3, 4, 5] and arr.shape == (5, 17, 3)
    assert np.all(arr[[0, 1, 2, 4], :, 2] == 0.9)  # highest score per image, person only
    assert np.all(arr[3, :, 2] == 0) and np.isnan(arr[3, :, :2]).all()  # gap: empty frame
    best = [r for r in res if r["image_id"] == 1 and r["score"] == 0.9][0]
    np.testing.assert_allclose(arr[0].reshape(-1), best["keypoints"])
    arr, ids = read_coco_json(str(p), fill_gaps=False)
    assert ids == [1, 2, 3, 5]
    p.write_text(json.dumps({"annotations": res}))
    assert read_coco_json(str(p))[0].shape == (5, 17, 3)


@pytest.mark.parametrize(
    "content, msg",
    [
        ("{not json", "not valid JSON"),
        ('{"x": 1}', "list of COCO"),
        ('[{"image_id": 1}]', "needs 'image_id' and 'keypoints'"),
        ('[{"image_id": 1, "keypoints": [1, 2]}]', r"\[x, y, c\] \* K"),
        ('[{"image_id": 1, "keypoints": [1, 2, 3], "category_id": 3}]', "no person"),
    ],
)
def test_coco_json_errors(tmp_path, content, msg):
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(ValueError, match=msg):
        read_coco_json(str(p))


def test_npz_reader(tmp_path):
    kp = np.random.default_rng(0).uniform(0, 100, (4, 26, 2))
    np.savez(tmp_path / "a.npz", keypoints=kp, scores=np.full((4, 26), 0.7), image_size=[640, 480])
    arr, meta = read_keypoints(str(tmp_path / "a.npz"))
    assert arr.shape == (4, 26, 3) and np.all(arr[..., 2] == 0.7) and meta["image_size"] == (640.0, 480.0)
    with pytest.raises(ValueError, match="not found"):
        read_keypoints(str(tmp_path / "missing.npy"))
    with pytest.raises(ValueError, match="unsupported"):
        read_keypoints(__file__)


def test_lift_json_and_render(tmp_path, model_dirs):
    p = tmp_path / "det.json"
    p.write_text(json.dumps(coco_results(list(range(1, 13)), np.random.default_rng(1))))
    out = tmp_path / "out.npz"
    gif = tmp_path / "out.gif"
    rc = mpm(["lift", str(p), "--model", str(model_dirs / "lifter"), "--image-size", "300", "300",
              "--output", str(out), "--render", str(gif), "--mode", "seq2seq", "--no-progress"])
    assert rc == 0
    z = np.load(out)
    assert z["pose_3d"].shape == (12, 17, 3) and z["valid"].all() and z["keypoints_2d"].shape == (12, 17, 2)
    assert np.isfinite(z["pose_3d"]).all()
    from PIL import Image

    assert Image.open(gif).n_frames == 12
    png = tmp_path / "f.png"
    assert mpm(["render", str(out), "--output", str(png), "--frame", "3"]) == 0
    assert Image.open(png).format == "PNG"
    gif2 = tmp_path / "b.gif"
    assert mpm(["render", str(out), "--output", str(gif2), "--frame-step", "4"]) == 0
    assert Image.open(gif2).n_frames == 3


def test_lift_errors(tmp_path, model_dirs, capsys):
    np.save(tmp_path / "k.npy", np.zeros((5, 17, 2)))
    rc = mpm(["lift", str(tmp_path / "k.npy"), "--model", str(model_dirs / "lifter"), "--output",
              str(tmp_path / "o.npz"), "--image-size", "100", "100"])
    assert rc == 2 and "--format" in capsys.readouterr().err
    rc = mpm(["lift", str(tmp_path / "k.npy"), "--format", "h36m", "--model", str(model_dirs / "lifter"),
              "--output", str(tmp_path / "o.npz")])
    assert rc == 2 and "--image-size" in capsys.readouterr().err
    rc = mpm(["lift", str(tmp_path / "k.npy"), "--format", "h36m", "--image-size", "0", "10",
              "--model", str(model_dirs / "lifter"), "--output", str(tmp_path / "o.npz")])
    assert rc == 2 and "image_size" in capsys.readouterr().err


def test_complete_3d_and_2d(tmp_path, model_dirs):
    rng = np.random.default_rng(2)
    pose = rng.normal(scale=0.3, size=(10, 17, 3))
    pose[:, 0] = 0
    pose[:, [11, 12, 13]] = np.nan
    np.save(tmp_path / "p.npy", pose)
    assert mpm(["complete", str(tmp_path / "p.npy"), "--model", str(model_dirs / "completer"),
                "--output", str(tmp_path / "c.npz")]) == 0
    z = np.load(tmp_path / "c.npz")
    assert np.isfinite(z["pose_3d"]).all() and z["missing"][:, [11, 12, 13]].all()
    np.testing.assert_allclose(z["pose_3d"][:, :11], pose[:, :11], atol=1e-6)
    kp = np.concatenate([rng.uniform(0, 200, (10, 17, 2)), np.ones((10, 17, 1))], -1)
    kp[:, 5, 2] = 0
    np.save(tmp_path / "k.npy", kp)
    assert mpm(["complete", str(tmp_path / "k.npy"), "--from-2d", "--format", "coco", "--image-size", "200", "200",
                "--model", str(model_dirs / "completer"), "--output", str(tmp_path / "d.npz")]) == 0
    z = np.load(tmp_path / "d.npz")
    assert z["pose_3d"].shape == (10, 17, 3) and np.isfinite(z["keypoints_2d"]).all()
