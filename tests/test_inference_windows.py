"""Windowing logic of modeling_mpm.inference, checked with a transparent stand-in model.

The stand-in maps every frame independently (x, y) -> (x, y, masked), so whatever the windows,
padding, stitching and flipping do, the exact per-frame answer is known.
"""

import types

import numpy as np
import pytest
import torch

from modeling_mpm.inference import lift_sequence, seq2frame_indices, window_starts
from modeling_mpm.skeleton import H36M_17


class FrameWiseLifter(torch.nn.Module):
    def __init__(self, num_frames=9):
        super().__init__()
        self.config = types.SimpleNamespace(num_frames=num_frames, num_joints=17, skeleton="h36m17")
        self.calls = []

    def forward(self, pose_2d, spatial_mask=None):
        B, F, J, _ = pose_2d.shape
        assert F == self.config.num_frames
        self.calls.append(B)
        m = torch.zeros(B, F, J, dtype=torch.bool) if spatial_mask is None else spatial_mask
        xy = torch.where(m[..., None], torch.zeros(()), pose_2d)
        out = torch.cat([xy, m[..., None].float()], -1)
        return types.SimpleNamespace(pose_3d=out, pose_3d_center=out[:, F // 2: F // 2 + 1])


def expected(x, missing):
    out = np.concatenate([np.where(missing[..., None], 0, x), missing[..., None]], -1).astype(np.float32)
    out[:, 0] = 0  # root set to 0
    return out


def test_window_starts_cover_and_end_aligned():
    assert window_starts(5, 9, 9).tolist() == [-2]
    assert window_starts(9, 9, 9).tolist() == [0]
    assert window_starts(20, 9, 9).tolist() == [0, 9, 11]
    assert window_starts(20, 9, 4).tolist() == [0, 4, 8, 11]
    idx = seq2frame_indices(np.array([0, 5]), 5, 6)
    assert idx.tolist() == [[0, 0, 0, 1, 2], [3, 4, 5, 5, 5]]


@pytest.mark.parametrize("frames", [1, 4, 9, 10, 31])
@pytest.mark.parametrize("mode, stride", [("seq2frame", None), ("seq2seq", None), ("seq2seq", 4)])
def test_any_length_stitches_exactly(frames, mode, stride):
    rng = np.random.default_rng(frames)
    x = rng.normal(size=(frames, 17, 2)).astype(np.float32)
    missing = rng.random((frames, 17)) < 0.2
    missing[:, 0] = False
    model = FrameWiseLifter()
    out = lift_sequence(model, x, missing, mode=mode, stride=stride, batch_size=3)
    assert out.shape == (frames, 17, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, expected(x, missing), atol=1e-6)
    assert max(model.calls) <= 3


def test_nan_input_is_masked_and_output_finite():
    x = np.random.default_rng(0).normal(size=(12, 17, 2)).astype(np.float32)
    x[3, 5] = np.nan
    out = lift_sequence(FrameWiseLifter(), x, None, mode="seq2seq")
    assert np.isfinite(out).all() and out[3, 5, 2] == 1.0


def test_flip_mirrors_the_mask_too():
    """With the mask mirrored, both passes see the same joint as missing (spec 13.8)."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(10, 17, 2)).astype(np.float32)
    missing = np.zeros((10, 17), bool)
    missing[:, H36M_17.index("left_wrist")] = True
    out = lift_sequence(FrameWiseLifter(), x, missing, mode="seq2frame", flip_augmentation=True)
    # masked flag averaged over the two passes: exactly 1 on the masked joint, 0 on its mirror
    assert np.all(out[:, H36M_17.index("left_wrist"), 2] == 1.0)
    assert np.all(out[:, H36M_17.index("right_wrist"), 2] == 0.0)
    np.testing.assert_allclose(out, expected(x, missing), atol=1e-6)


def test_bad_arguments():
    m = FrameWiseLifter()
    x = np.zeros((5, 17, 2), np.float32)
    with pytest.raises(ValueError, match="mode"):
        lift_sequence(m, x, mode="frame2frame")
    with pytest.raises(ValueError, match="batch_size"):
        lift_sequence(m, x, batch_size=0)
    with pytest.raises(ValueError, match=r"\(frames >= 1, 17, 2\)"):
        lift_sequence(m, np.zeros((5, 16, 2)))
    with pytest.raises(ValueError, match="missing"):
        lift_sequence(m, np.full((5, 17, 2), np.nan))


def test_training_mode_restored():
    m = FrameWiseLifter()
    m.train()
    lift_sequence(m, np.zeros((3, 17, 2), np.float32))
    assert m.training


def test_progress_bar_counts_windows(capsys):
    lift_sequence(FrameWiseLifter(), np.zeros((30, 17, 2), np.float32), mode="seq2frame", batch_size=4,
                  progress=True)
    assert "30/30" in capsys.readouterr().err
    lift_sequence(FrameWiseLifter(), np.zeros((30, 17, 2), np.float32), mode="seq2seq", progress=None)
    assert "/" not in capsys.readouterr().err  # short input: no bar by default


def test_hundred_thousand_frames_in_bounded_batches():
    rng = np.random.default_rng(5)
    frames = 100_003
    x = rng.normal(size=(frames, 17, 2)).astype(np.float32)
    missing = rng.random((frames, 17)) < 0.05
    model = FrameWiseLifter(num_frames=243)
    out = lift_sequence(model, x, missing, mode="seq2seq", stride=200, batch_size=32, progress=False)
    np.testing.assert_allclose(out, expected(x, missing), atol=1e-6)
    assert max(model.calls) == 32 and sum(model.calls) == len(window_starts(frames, 243, 200))
