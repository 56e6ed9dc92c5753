"""No output that lies (issue 19 C): 17-joint keypoints need an explicit format, non-finite 3D is
never marked valid, MPMConfig refuses bad values on construction and load, `mpm eval` refuses a
split the data does not have, and `mpm prepare` refuses non-finite, empty and degenerate motion."""

import json

import numpy as np
import pytest
import torch
from transformers import pipeline

from modeling_mpm import MPMConfig, MPMForMaskedPoseModeling, MPMForPoseLifting


def _tiny(**kw):
    return MPMConfig(num_frames=5, num_layers=1, hidden_size=8, intermediate_size=16, num_attention_heads=2,
                     reduce_strides=[5], **kw)


def _kp(frames=6, joints=17):
    rng = np.random.default_rng(0)
    return rng.uniform(20, 180, (frames, joints, 2))


@pytest.fixture(scope="module")
def lifter():
    torch.manual_seed(0)
    return MPMForPoseLifting(_tiny()).eval()


def test_17_joints_without_a_format_are_refused(lifter):
    lift = pipeline("pose-lifting", model=lifter)
    with pytest.raises(ValueError, match="pass keypoint_format='h36m' or 'coco'.*17-joint"):
        lift(_kp(), image_size=(200, 200))
    complete = pipeline("pose-completion", model=MPMForMaskedPoseModeling(_tiny()))
    with pytest.raises(ValueError, match="pass keypoint_format"):
        complete(keypoints=_kp(), image_size=(200, 200))
    assert lift(_kp(), image_size=(200, 200), keypoint_format="coco")["valid"].all()
    assert lift(_kp(joints=26), image_size=(200, 200))["pose_3d"].shape == (6, 17, 3)  # 26 = Halpe-26 only


def test_non_finite_outputs_are_never_marked_valid(lifter):
    broken = MPMForPoseLifting(lifter.config).eval()
    broken.load_state_dict(lifter.state_dict())
    with torch.no_grad():
        for p in broken.parameters():
            p.fill_(float("nan"))
    out = pipeline("pose-lifting", model=broken)(_kp(), image_size=(200, 200), keypoint_format="h36m")
    assert not np.isfinite(out["pose_3d"][:, 1:]).any()
    assert not out["valid"].any()  # the root, 0 by construction, is not usable alone either
    comp = MPMForMaskedPoseModeling(_tiny()).eval()
    with torch.no_grad():
        for p in comp.parameters():
            p.fill_(float("nan"))
    out = pipeline("pose-completion", model=comp)(keypoints=_kp(), image_size=(200, 200), keypoint_format="h36m")
    assert not out["valid"].any()


@pytest.mark.parametrize("kw,msg", [
    ({"layer_norm_eps": -1}, "layer_norm_eps must be a finite number > 0"),
    ({"layer_norm_eps": float("nan")}, "layer_norm_eps"),
    ({"embedding_init_std": 0}, "embedding_init_std"),
    ({"num_frames": "27"}, "num_frames must be an int"),
    ({"hidden_size": 8.0}, "hidden_size must be an int"),
    ({"use_refine": "yes"}, "use_refine must be true or false"),
    ({"reduce_strides": 5}, "reduce_strides must be a list of ints"),
    ({"loss_weight_3d": float("inf")}, "loss_weight_3d"),
    ({"dropout": True}, "dropout"),
    ({"dtype": "float99"}, "dtype must be one of"),
])
def test_mpm_config_refuses_bad_values_on_construction_and_load(tmp_path, kw, msg):
    base = dict(num_frames=5, num_layers=1, hidden_size=8, intermediate_size=16, num_attention_heads=2,
                reduce_strides=[5])
    with pytest.raises((ValueError, TypeError), match=msg):
        MPMConfig(**{**base, **kw})
    _tiny().save_pretrained(tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    data.update({k: (v if v == v and v not in (float("inf"),) else str(v)) if isinstance(v, float) else v
                 for k, v in kw.items()})
    if kw.get("layer_norm_eps") != kw.get("layer_norm_eps"):  # NaN: JSON allows it as NaN
        data["layer_norm_eps"] = float("nan")
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises((ValueError, TypeError)):
        MPMConfig.from_pretrained(tmp_path)


def test_eval_refuses_a_split_the_data_does_not_have(tmp_path, lifter, capsys):
    import modeling_mpm.cli as cli

    lifter.save_pretrained(tmp_path / "m")
    with pytest.raises(SystemExit) as e:
        cli.main(["eval", "--model", str(tmp_path / "m"), "--data", "synthetic", "--split", "tset"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--split 'tset'" in err and "test, train, validation" in err


def _h36m(tmp_path, poses):
    src = tmp_path / "d3.npz"
    np.savez(src, positions_3d=np.array({"S1": {"Walking": poses}}, dtype=object))
    return src


@pytest.mark.parametrize("poses,msg", [
    (np.full((4, 32, 3), np.nan, np.float32), "NaN or infinite values in 4 of 4 frames"),
    (np.zeros((0, 32, 3), np.float32), "no frames"),
    (np.zeros((4, 32, 3), np.float32), "same point"),
], ids=["nan", "empty", "degenerate"])
def test_prepare_refuses_non_finite_empty_and_degenerate_motion(tmp_path, capsys, poses, msg):
    from modeling_mpm.cli.prepare import main as prepare

    assert prepare(["h36m", "--positions_3d", str(_h36m(tmp_path, poses)), "--output", str(tmp_path / "o")]) == 2
    assert msg in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("flags", [["--scale", "nan"], ["--scale", "0"], ["--fps", "inf"], ["--skip-frames", "-1"]])
def test_prepare_refuses_bad_numbers_before_reading(tmp_path, capsys, flags):
    from modeling_mpm.cli.prepare import main as prepare

    with pytest.raises(SystemExit) as e:
        prepare(["bvh", str(tmp_path), "--output", str(tmp_path / "o"), *flags])
    assert e.value.code == 2 and flags[0] in capsys.readouterr().err
