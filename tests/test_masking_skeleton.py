"""Mask arithmetic (docs/authors_code.md section 4.3) and skeleton definitions."""

import numpy as np
import pytest
import torch

from modeling_mpm.masking import (
    exact_mask_ratio,
    mirror_mask,
    nominal_mask_ratio,
    num_masked_frames,
    sample_spatiotemporal_mask,
    tube_joints,
)
from modeling_mpm.skeleton import (
    COCO_17,
    H36M_16,
    H36M_17,
    HALPE_26,
    MPI_INF_3DHP_17,
    SKELETONS,
    get_skeleton,
    h36m17_to_h36m16,
    mpi3dhp17_to_h36m16,
    mpi3dhp17_to_h36m17,
)


@pytest.mark.parametrize(
    "frames, joints, tmr, smn, masked_frames, nominal, exact",
    [
        (243, 17, 0.6, 5, 145, 0.7176, 0.7153),
        (243, 16, 0.6, 5, 145, 0.7250, 0.7227),
        (243, 17, 0.8, 2, 194, 0.8235, 0.8221),
        (27, 17, 0.6, 5, 16, 0.7176, 0.7124),
    ],
)
def test_mask_ratio_table(frames, joints, tmr, smn, masked_frames, nominal, exact):
    assert num_masked_frames(frames, tmr) == masked_frames
    assert nominal_mask_ratio(tmr, smn, joints) == pytest.approx(nominal, abs=5e-5)
    assert exact_mask_ratio(frames, joints, tmr, smn) == pytest.approx(exact, abs=5e-5)
    g = torch.Generator().manual_seed(0)
    s, t = sample_spatiotemporal_mask(8, frames, joints, tmr, smn, generator=g)
    tokens = s | t[..., None]
    assert (t.sum(1) == masked_frames).all() and (s.sum(-1) == smn).all()
    assert tokens.float().mean().item() == pytest.approx(exact, abs=1e-4)


def test_mask_sampling_is_uniform_and_reproducible():
    g = torch.Generator().manual_seed(1)
    s, t = sample_spatiotemporal_mask(400, 27, 17, 0.6, 5, generator=g)
    freq = s.float().mean((0, 1))  # each joint chosen with p = 5/17, root included
    assert torch.allclose(freq, torch.full((17,), 5 / 17), atol=0.02)
    assert torch.allclose(t.float().mean(0), torch.full((27,), 16 / 27), atol=0.08)
    a = sample_spatiotemporal_mask(2, 27, 17, 0.6, 5, generator=torch.Generator().manual_seed(7))
    b = sample_spatiotemporal_mask(2, 27, 17, 0.6, 5, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(ValueError, match="spatial_mask_joints"):
        sample_spatiotemporal_mask(1, 27, 17, 0.6, 18)
    with pytest.raises(TypeError, match="generator"):
        sample_spatiotemporal_mask(1, 27, 17, 0.6, 5, generator=np.random.default_rng())


def test_tube_parts_use_subject_sides():
    assert tube_joints("h36m17", 0, "3d") == [1, 2, 3]  # authors' "left leg" label is the right leg
    assert tube_joints("h36m17", 1, "3d") == [14, 15, 16]
    assert tube_joints("h36m17", 2, "3d") == [11, 12, 13]
    assert tube_joints("h36m17", 3, "3d") == [4, 5, 6]
    assert tube_joints("h36m17", 0, "2d") == [1, 2, 3, 4, 5, 6]
    assert tube_joints("h36m17", 1, "2d") == [11, 12, 13, 14, 15, 16]
    assert tube_joints("h36m17", 2, "2d") == [1, 2, 3, 14, 15, 16]
    assert tube_joints("h36m17", 3, "2d") == [4, 5, 6, 11, 12, 13]
    assert tube_joints("h36m17", 6, "3d") is None
    assert tube_joints("h36m16", 1, "3d") == [13, 14, 15]


def test_mirror_mask_matches_flipped_pose():
    pose = torch.randn(5, 17, 2)
    mask = torch.rand(5, 17) < 0.4
    perm = torch.as_tensor(H36M_17.flip_permutation)
    flipped_pose = pose[:, perm]
    flipped_mask = mirror_mask(mask, "h36m17")
    # the flipped pose's joint j is the original joint perm[j]: its mask must follow it
    assert torch.equal(flipped_mask, mask[:, perm])
    assert torch.equal(mirror_mask(flipped_mask, "h36m17"), mask)
    # the flipped pass hides exactly the same coordinates as the original pass
    assert torch.equal(flipped_pose[flipped_mask].sort(dim=0).values, pose[mask].sort(dim=0).values)


@pytest.mark.parametrize("skel", list(SKELETONS.values()), ids=lambda s: s.name)
def test_skeleton_consistency(skel):
    perm = skel.flip_permutation
    assert sorted(perm) == list(range(skel.num_joints))
    assert np.array_equal(perm[perm], np.arange(skel.num_joints))  # involution
    for l, r in zip(skel.joints_left, skel.joints_right):
        ln, rn = skel.joint_names[l], skel.joint_names[r]
        assert ln.startswith("left_") and rn.startswith("right_") and ln[5:] == rn[6:]
    for i, name in enumerate(skel.joint_names):
        if "left" not in name and "right" not in name:
            assert perm[i] == i
    if skel.root is not None:
        assert skel.parents[skel.root] == -1
    assert get_skeleton(skel.name) is skel
    assert get_skeleton(skel.to_dict()) == skel


def test_h36m_layouts_match_the_spec():
    assert H36M_17.parents == (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
    assert H36M_17.joints_left == (4, 5, 6, 11, 12, 13) and H36M_17.joints_right == (1, 2, 3, 14, 15, 16)
    assert H36M_16.joints_left == (4, 5, 6, 10, 11, 12) and H36M_16.joints_right == (1, 2, 3, 13, 14, 15)
    pose = np.arange(17 * 3, dtype=float).reshape(17, 3)
    p16 = h36m17_to_h36m16(pose)
    assert p16.shape == (16, 3) and np.array_equal(p16[9], pose[10]) and np.array_equal(p16[8], pose[8])
    for j16, name in enumerate(H36M_16.joint_names):
        assert np.array_equal(p16[j16], pose[H36M_17.index(name)])
    assert HALPE_26.num_joints == 26 and COCO_17.root is None
    with pytest.raises(ValueError, match="unknown skeleton"):
        get_skeleton("smpl")
    with pytest.raises(ValueError, match="expects"):
        h36m17_to_h36m16(np.zeros((5, 16, 3)))


def test_3dhp_mappings_by_joint_name():
    pose = np.random.default_rng(0).normal(size=(4, 17, 3))
    h17 = mpi3dhp17_to_h36m17(pose)
    same_name = {"pelvis", "spine", "head_top"} | {n for n in H36M_17.joint_names if n.startswith(("left", "right"))}
    for j, name in enumerate(H36M_17.joint_names):
        if name in same_name:
            assert np.array_equal(h17[:, j], pose[:, MPI_INF_3DHP_17.index(name)]), name
    assert np.array_equal(h17[:, H36M_17.index("thorax")], pose[:, MPI_INF_3DHP_17.index("neck")])
    assert np.array_equal(h17[:, H36M_17.index("neck_nose")], pose[:, MPI_INF_3DHP_17.index("head")])
    h16 = mpi3dhp17_to_h36m16(pose)
    assert np.array_equal(h16[:, 8], pose[:, 1]) and np.array_equal(h16[:, 9], pose[:, 0])
    legacy = mpi3dhp17_to_h36m16(pose, legacy=True)  # the authors' mapping (docs/authors_code.md section 2.3)
    assert np.array_equal(legacy[:, 8], pose[:, 16])
    assert np.allclose(legacy[:, 9], (pose[:, 0] + pose[:, 16]) / 2)
