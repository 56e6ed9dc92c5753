"""MPMConfig is data: every attribute it saves is a declared, documented argument; the skeleton is
saved by name (a custom one as its dict) and resolved once."""

import inspect
import json
import re

import pytest
from transformers import PretrainedConfig

from modeling_mpm import MPMConfig
from modeling_mpm.skeleton import H36M_16, Skeleton


def _documented():
    args = MPMConfig.__doc__.split("Args:", 1)[1]
    names = set()
    for line in args.splitlines():
        m = re.match(r"^ {8}(\w+(?: / \w+)*):", line)
        if m:
            names.update(m.group(1).split(" / "))
    return names


def test_saved_keys_are_the_declared_and_documented_fields():
    declared = set(inspect.signature(MPMConfig.__init__).parameters) - {"self", "kwargs"}
    own = set(MPMConfig().to_dict()) - set(PretrainedConfig().to_dict())
    assert own == declared == _documented()
    assert {"refine_hidden_size", "mask_token_2d_trained"} <= declared


def test_builtin_skeleton_is_saved_by_name_and_old_dicts_still_load(tmp_path):
    config = MPMConfig(num_joints=16, skeleton=H36M_16.to_dict())  # as older config.json files hold it
    assert config.skeleton == "h36m16" and config.get_skeleton() is H36M_16
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["skeleton"] == "h36m16" and "_skeleton" not in saved
    assert MPMConfig.from_pretrained(tmp_path).get_skeleton() is H36M_16


def test_custom_skeleton_round_trips_and_is_resolved_once(tmp_path):
    skel = Skeleton("tripod", ("pelvis", "left_leg", "right_leg"), (-1, 0, 0), (1,), (2,))
    config = MPMConfig(num_joints=3, spatial_mask_joints=1, skeleton=skel)
    assert config.skeleton == skel.to_dict()
    assert config.get_skeleton() is config.get_skeleton()  # not re-parsed per call
    config.save_pretrained(tmp_path)
    assert MPMConfig.from_pretrained(tmp_path).get_skeleton() == skel
    config.skeleton = "h36m16"  # setting it resolves it again
    assert config.get_skeleton() is H36M_16
    with pytest.raises(ValueError, match="unknown skeleton"):
        config.skeleton = "no-such-skeleton"
