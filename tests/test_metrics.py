"""Metrics against hand-computed values."""

import numpy as np
import pytest
import torch

from modeling_mpm import metrics as M
from modeling_mpm.skeleton import H36M_17, MPI_INF_3DHP_17


def _rot(axis_angle):
    from scipy.spatial.transform import Rotation

    return Rotation.from_rotvec(axis_angle).as_matrix()


def test_mpjpe_hand_value_and_mask():
    t = np.zeros((1, 2, 3))
    p = t.copy()
    p[0, 0] = [3.0, 4.0, 0.0]  # error 5 on joint 0, 0 on joint 1
    assert M.mpjpe(p, t) == pytest.approx(2.5)
    assert M.mpjpe(p, t, joints=[0]) == pytest.approx(5.0)
    assert M.mpjpe(p, t, mask=np.array([False, True])) == pytest.approx(0.0)
    np.testing.assert_allclose(M.mpjpe_per_frame(p, t), [2.5])
    with pytest.raises(ValueError, match="no joint"):
        M.mpjpe(p, t, mask=np.zeros(2, bool))


def test_metrics_accept_torch_and_check_shapes():
    t = torch.zeros(2, 3, 4, 3)
    p = t + torch.tensor([0.0, 0.0, 2.0])
    assert M.mpjpe(p, t) == pytest.approx(2.0)
    assert M.mpjpe(p.to(torch.bfloat16), t) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="shape"):
        M.mpjpe(np.zeros((2, 3)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="coordinates"):
        M.mpjpe(np.zeros((2, 5)), np.zeros((2, 5)))
    with pytest.raises(TypeError):
        M.mpjpe(np.array([["a", "b"]]), np.array([["a", "b"]]))


@pytest.mark.parametrize("dim", [2, 3])
def test_p_mpjpe_hand_value(dim):
    # target: a cross; prediction: the vertical arm twice as long. Best similarity fit by symmetry:
    # R = I, t = 0, scale = <p,t>/<p,p> = 6/10 -> aligned (+-0.6,0), (0,+-1.2) -> errors .4 .4 .2 .2
    t = np.array([[1, 0], [-1, 0], [0, 1], [0, -1]], dtype=float)
    p = np.array([[1, 0], [-1, 0], [0, 2], [0, -2]], dtype=float)
    if dim == 3:
        t = np.concatenate([t, np.zeros((4, 1))], 1)
        p = np.concatenate([p, np.zeros((4, 1))], 1)
    assert M.p_mpjpe(p[None], t[None]) == pytest.approx(0.3, abs=1e-9)
    # per-frame: the same for the unaligned MPJPE would be (0+0+1+1)/4
    assert M.mpjpe(p, t) == pytest.approx(0.5)


def test_p_mpjpe_similarity_invariance_and_reflection_fix():
    rng = np.random.default_rng(0)
    t = rng.normal(size=(5, 17, 3))
    r = _rot([0.3, -1.2, 0.7])
    p = 1.7 * t @ r.T + np.array([0.5, -2.0, 3.0])
    assert M.p_mpjpe(p, t) == pytest.approx(0.0, abs=1e-9)
    assert M.mpjpe(p, t) > 0.5
    # a mirror image is not a rotation: with the det fix it cannot be aligned to zero error
    mirrored = t * np.array([-1.0, 1.0, 1.0])
    assert M.p_mpjpe(mirrored, t) > 0.1
    aligned = M.procrustes_align(mirrored, t)
    assert aligned.shape == t.shape
    # the per-frame values are independent poses (frame 0 alone gives the same number)
    per = M.p_mpjpe_per_frame(mirrored, t)
    assert per.shape == (5,)
    assert per[0] == pytest.approx(M.p_mpjpe(mirrored[:1], t[:1]))


def test_n_mpjpe_hand_value():
    t = np.array([[[1.0, 0, 0], [0, 1.0, 0]]])
    p = np.array([[[1.0, 0, 0], [0, 0, 1.0]]])
    # scale = <p,t>/<p,p> = 1/2 -> errors 0.5 and sqrt(1 + 0.25)
    assert M.n_mpjpe(p, t) == pytest.approx((0.5 + np.sqrt(1.25)) / 2)
    assert M.n_mpjpe(3.0 * t, t) == pytest.approx(0.0)


def test_mpjve_hand_value():
    t = np.zeros((4, 2, 3))
    p = t.copy() + 7.0  # constant offset: no velocity error
    assert M.mpjve(p, t) == pytest.approx(0.0)
    p = t.copy()
    p[:, 0, 0] = np.arange(4.0)  # joint 0 drifts 1 unit per frame
    assert M.mpjve(p, t) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="2 frames"):
        M.mpjve(t[:1], t[:1])


def test_action_meter_uses_each_samples_own_error():
    meter = M.ActionErrorMeter()
    meter.update(np.array([1.0, 2.0, 3.0, 10.0]), ["a", "a", "a", "b"])
    meter.update(torch.tensor([4.0]), "b")
    # the authors' bug would give every sample of the mixed batch the batch mean (4.0)
    assert meter.per_action() == pytest.approx({"a": 2.0, "b": 7.0})
    assert meter.mean_over_actions() == pytest.approx(4.5)
    assert meter.mean_over_frames() == pytest.approx(4.0)
    assert meter.counts() == {"a": 3, "b": 2}
    with pytest.raises(ValueError, match="labels"):
        meter.update(np.ones(2), ["a"])
    with pytest.raises(ValueError):
        M.ActionErrorMeter().mean_over_actions()


def _poses_with_errors(errs_mm):
    """One frame in the 3DHP-17 layout whose joint j has an error of errs_mm[j] (metres out)."""
    t = np.zeros((1, 17, 3))
    p = t.copy()
    p[0, :, 0] = np.asarray(errs_mm) / 1000.0
    return p, t


def test_pck_auc_3dhp_official_joint_set():
    errs = np.full(17, 100.0)
    errs[0] = 200.0          # head_top: counted, above threshold
    errs[14:] = 500.0        # pelvis, spine, head: excluded from the protocol
    p, t = _poses_with_errors(errs)
    assert M.pck_3dhp(p, t) == pytest.approx(13 / 14 * 100)
    # a 100 mm error passes the thresholds 105..150 (10 of 31); 200 mm passes none
    assert M.auc_3dhp(p, t) == pytest.approx(13 * 10 / 31 / 14 * 100)
    assert M.pck_3dhp(p * 1000.0, t, unit="mm") == pytest.approx(13 / 14 * 100)
    # strict threshold: exactly 150 mm does not count
    p2, t2 = _poses_with_errors(np.full(17, 150.0))
    assert M.pck_3dhp(p2, t2) == 0.0
    assert len(M.AUC_THRESHOLDS_MM) == 31
    # H36M-17 predictions use the anatomically matching 14 joints (pelvis, spine, neck/nose out)
    h = np.zeros((1, 17, 3))
    hp = h.copy()
    hp[0, [0, 7, 9], 0] = 1.0
    assert M.pck_3dhp(hp, h, skeleton="h36m17") == 100.0
    with pytest.raises(ValueError, match="unit"):
        M.pck_3dhp(p, t, unit="inch")


def test_3dhp_sequences_are_frame_weighted():
    good = np.zeros((1, 17, 3))
    bad_p, bad_t = _poses_with_errors(np.full(17, 200.0))
    bad_p, bad_t = np.repeat(bad_p, 3, 0), np.repeat(bad_t, 3, 0)
    res = M.evaluate_3dhp_sequences({"TS1": (good, good), "TS2": (bad_p, bad_t)})
    assert res["TS1"]["pck"] == 100.0 and res["TS2"]["pck"] == 0.0
    assert res["all"]["pck"] == pytest.approx(25.0)   # not 50: 1 good frame of 4
    assert res["all"]["frames"] == 4
    assert res["all"]["mpjpe"] == pytest.approx(150.0)


def test_completion_errors_masked_and_diluted():
    t = np.zeros((2, 17, 3))
    p = t.copy()
    p[..., 0] = 0.3   # every joint off by 0.3, but only masked joints are taken from p
    mask = np.zeros(17, bool)
    mask[[1, 2, 3]] = True
    out = M.completion_errors(p, t, mask)
    assert out["mpjpe_masked"] == pytest.approx(0.3)
    assert out["mpjpe_all"] == pytest.approx(0.3 * 3 / 17)
    with pytest.raises(ValueError, match="nothing"):
        M.completion_errors(p, t, np.zeros(17, bool))


def test_flip_mask_mirrors_left_and_right():
    m = np.zeros((2, 17), bool)
    m[:, [4, 5, 6]] = True  # left leg
    f = M.flip_mask(m, H36M_17)
    assert f[:, [1, 2, 3]].all() and f.sum() == 6
    assert M.flip_mask(M.flip_mask(m, "h36m17"), "h36m17").tolist() == m.tolist()
    assert MPI_INF_3DHP_17.num_joints == 17


def test_evaluate_lifting_pck_matches_metrics():
    """evaluate_lifting's streamed PCK/AUC equal the metrics functions on the same predictions."""
    from types import SimpleNamespace

    from modeling_mpm import MPMConfig
    from modeling_mpm.evaluation import evaluate_lifting

    rng = np.random.default_rng(1)
    targets = rng.normal(scale=0.3, size=(10, 3, 17, 3)).astype(np.float32)
    targets -= targets[:, :, :1]
    noise = rng.normal(scale=0.08, size=targets.shape).astype(np.float32)

    class Fake(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.config = MPMConfig(num_frames=3, num_layers=1, hidden_size=32, intermediate_size=64,
                                    num_attention_heads=4, reduce_strides=[3])

        def forward(self, pose_2d, spatial_mask=None):
            idx = pose_2d[:, 0, 0, 0].long()
            p = torch.as_tensor(targets + noise)[idx]
            return SimpleNamespace(pose_3d=p, pose_3d_center=p[:, 1:2])

    ds = [{"pose_2d": np.full((3, 17, 2), i, np.float32), "pose_3d": targets[i], "action": "a" if i < 4 else "b"}
          for i in range(10)]
    res = evaluate_lifting(Fake(), ds, batch_size=4)
    pred = (targets + noise)[:, 1].copy()
    pred[:, 0] = 0  # evaluation sets the predicted root to 0 (the authors' rule), it does not subtract it
    gt = targets[:, 1]
    assert res["pck"] == pytest.approx(M.pck_3dhp(pred, gt, skeleton="h36m17"))
    assert res["auc"] == pytest.approx(M.auc_3dhp(pred, gt, skeleton="h36m17"))
    per = M.mpjpe_per_frame(pred, gt) * 1000
    assert res["per_action"]["a"]["mpjpe"] == pytest.approx(per[:4].mean(), rel=1e-5)
    assert res["mpjpe"] == pytest.approx((per[:4].mean() + per[4:].mean()) / 2, rel=1e-5)
    assert res["mpjpe_frames"] == pytest.approx(per.mean(), rel=1e-5)
