"""The general lifter that ships in the package (modeling_mpm/pretrained/mpm-lift-general): a
Hub-layout folder that loads offline with AutoModel, is the default of the offline video path, and
lifts real BlazePose 2D (the pose2sim frames in tests/data) to plausible bodies."""

import json
import os

import numpy as np
import pytest

from conftest import REPO  # noqa: E402

from modeling_mpm.pretrained import GENERAL_LIFTER
from modeling_mpm.skeleton import H36M_17

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_shipped_folder_is_a_small_hub_layout_lifter():
    from transformers import AutoModel

    import modeling_mpm  # noqa: F401
    from modeling_mpm import MPMForPoseLifting

    files = set(os.listdir(GENERAL_LIFTER))
    assert {"config.json", "model.safetensors", "README.md"} <= files
    size = sum(os.path.getsize(os.path.join(GENERAL_LIFTER, f)) for f in files)
    assert size <= 25 * 2 ** 20
    model = AutoModel.from_pretrained(GENERAL_LIFTER)
    assert isinstance(model, MPMForPoseLifting) and model.config.num_joints == 17
    card = open(os.path.join(GENERAL_LIFTER, "README.md"), encoding="utf-8").read()
    assert "P-MPJPE" in card and "BlazePose" in card and "bench/bench_real_capture.py" in card
    cfg = json.load(open(os.path.join(GENERAL_LIFTER, "config.json")))
    assert cfg["architectures"] == ["MPMForPoseLifting"]


def test_it_is_the_default_of_the_video_path():
    from modeling_mpm.video.pipeline import DEFAULT_OFFLINE_LIFTER

    assert os.path.samefile(DEFAULT_OFFLINE_LIFTER, GENERAL_LIFTER)


def test_real_blazepose_2d_lifts_to_plausible_bodies(tmp_path):
    """Lift the shipped real clip offline without naming a lifter: upright bodies (ankles below knees
    below hips in the camera's y-down frame, the camera looking slightly down), limbs of human length."""
    pytest.importorskip("av")
    pytest.importorskip("mediapipe", reason="pip install 'modeling-mpm[mediapipe]'")
    from modeling_mpm.video import lift_video

    res = lift_video(str(REPO / "tests" / "data" / "pose2sim_cam01.mp4"), pose_model="mediapipe",
                     output=str(tmp_path / "out.npz"), progress=False)
    (track,) = res["tracks"].values()
    pose = track["pose_3d"]
    assert pose.shape == (12, 17, 3) and np.isfinite(pose).all()
    y = pose[..., 1]
    for hip, knee, ankle in (("left_hip", "left_knee", "left_ankle"), ("right_hip", "right_knee", "right_ankle")):
        h, k, a = (H36M_17.index(n) for n in (hip, knee, ankle))
        assert (y[:, a] > y[:, k]).all() and (y[:, k] > y[:, h]).all()
    assert (y[:, H36M_17.index("head_top")] < y[:, H36M_17.index("thorax")]).all()
    thigh = np.linalg.norm(pose[:, H36M_17.index("left_knee")] - pose[:, H36M_17.index("left_hip")], axis=-1)
    assert 0.3 < thigh.mean() < 0.55



def test_training_script_scratch_arm_skips_pre_training(tmp_path):
    """train/general_lifter.py --scratch: no pre-training, one lifter trained for pre-training + fine-tuning
    steps from a random initialisation, saved as a loadable folder whose card says so."""
    import importlib.util

    from modeling_mpm import MPMForPoseLifting

    spec = importlib.util.spec_from_file_location("general_lifter", os.path.join(REPO, "train", "general_lifter.py"))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "g"
    assert script.main(["--output-dir", str(out), "--scratch", "--pretrain-steps", "2", "--finetune-steps", "1",
                        "--batch-size", "4", "--threads", "1"]) == 0
    assert not (out / "mpm-pretrain").exists() and not (out / "runs" / "pretrain").exists()
    model = MPMForPoseLifting.from_pretrained(out / "mpm-lift-general")
    assert model.config.num_joints == 17
    card = (out / "mpm-lift-general" / "README.md").read_text()
    assert "task `lift`, 3 optimizer steps" in card   # 2 + 1: the pre-training steps go to the lifter


def test_training_script_continues_a_lifter(tmp_path, tiny_lifter_9):
    """train/general_lifter.py --continue-from: a lifting folder trained further (no pre-training), its weights the
    start; --scratch with it is a usage error."""
    import importlib.util

    import torch

    from modeling_mpm import MPMForPoseLifting

    spec = importlib.util.spec_from_file_location("general_lifter", os.path.join(REPO, "train", "general_lifter.py"))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    start = tmp_path / "start"
    tiny_lifter_9.save_pretrained(start)
    out = tmp_path / "more"
    assert script.main(["--output-dir", str(out), "--continue-from", str(start), "--finetune-steps", "2",
                        "--continue-lr", "1e-3", "--batch-size", "4", "--threads", "1"]) == 0
    assert not (out / "mpm-pretrain").exists()
    model = MPMForPoseLifting.from_pretrained(out / "mpm-lift-general")
    assert model.config.num_frames == tiny_lifter_9.config.num_frames == 9          # the folder's architecture
    before, after = tiny_lifter_9.state_dict(), model.state_dict()
    changed = [k for k in before if not torch.equal(before[k].cpu(), after[k].cpu())]
    assert changed                                                                     # trained ...
    for k in changed:                                                                  # ... from those weights
        if before[k].numel() > 100:
            assert (after[k] - before[k]).norm() < 0.1 * before[k].norm(), k
    assert "task `lift`, 2 optimizer steps" in (out / "mpm-lift-general" / "README.md").read_text()
    dropout = lambda c: (c.dropout, c.mlp_dropout, c.lifter_mlp_dropout)  # noqa: E731
    assert dropout(model.config) == (0.1, 0.1, 0.2)                     # the general preset's (the authors')
    assert script.main(["--output-dir", str(tmp_path / "nd"), "--continue-from", str(start), "--finetune-steps", "1",
                        "--batch-size", "4", "--threads", "1", "--no-dropout"]) == 0
    assert dropout(MPMForPoseLifting.from_pretrained(tmp_path / "nd" / "mpm-lift-general").config) == (0.0, 0.0, 0.0)
    with pytest.raises(SystemExit):
        script.main(["--output-dir", str(out), "--continue-from", str(start), "--scratch"])
