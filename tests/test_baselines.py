"""Baselines of the benchmarks (bench/baselines.py): shapes, missing-joint handling, they learn,
classic completion."""

import os
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
from baselines import (NearestNeighbourCompletion, SingleFrameMLPLifter, TemporalConvLifter,  # noqa: E402
                       interpolate_in_time, zero_fill_with_mask)


def test_zero_fill_with_mask_hides_missing_values():
    x = torch.randn(2, 5, 17, 2)
    m = torch.zeros(2, 5, 17, dtype=torch.bool)
    m[0, 1, 3] = True
    x[1, 2, 4] = float("nan")                    # non-finite counts as missing too
    y = zero_fill_with_mask(x, m)
    assert y.shape == (2, 5, 17, 3)
    assert torch.equal(y[0, 1, 3], torch.tensor([0.0, 0.0, 0.0]))
    assert torch.equal(y[1, 2, 4], torch.tensor([0.0, 0.0, 0.0]))
    assert torch.equal(y[0, 0, 0, :2], x[0, 0, 0]) and y[0, 0, 0, 2] == 1.0
    assert torch.isfinite(y).all()


def test_mlp_shapes_root_and_missing_values_ignored():
    torch.manual_seed(0)
    model = SingleFrameMLPLifter(17, width=64, num_blocks=2).eval()
    x = torch.randn(3, 4, 17, 2)
    out = model(x)
    assert out.shape == (3, 4, 17, 3)
    assert torch.all(out[..., 0, :] == 0)
    m = torch.zeros(3, 4, 17, dtype=torch.bool)
    m[:, :, 5] = True
    x2 = x.clone()
    x2[:, :, 5] = 123.0                           # garbage at the missing joint must not matter
    assert torch.allclose(model(x, m), model(x2, m))
    assert not torch.allclose(model(x, m), model(x2))


def test_tcn_shapes_receptive_field_and_validation():
    torch.manual_seed(0)
    model = TemporalConvLifter(17, (3, 3, 3), channels=32).eval()
    assert model.receptive_field == 27
    assert model(torch.randn(2, 27, 17, 2)).shape == (2, 1, 17, 3)
    assert model(torch.randn(2, 30, 17, 2)).shape == (2, 4, 17, 3)
    with pytest.raises(ValueError, match="at least 27"):
        model(torch.randn(2, 26, 17, 2))
    with pytest.raises(ValueError, match="odd"):
        TemporalConvLifter(17, (2, 3))
    # the centre output depends only on the receptive field: frames outside it change nothing
    x = torch.randn(1, 29, 17, 2)
    y = x.clone()
    y[:, -1] += 5.0
    assert torch.allclose(model(x)[:, 0], model(y)[:, 0])
    assert not torch.allclose(model(x)[:, -1], model(y)[:, -1])


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _toy_lifting(n=128, f=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    p3 = torch.randn(n, f, 17, 3, generator=g) * 0.2
    p3[..., 0, :] = 0
    p2 = 4.0 * p3[..., :2] / (p3[..., 2:] + 5.0)  # perspective projection at 5 m, focal 4 (normalised)
    return p2, p3


@pytest.mark.parametrize("kind", ["mlp", "tcn"])
def test_baselines_learn_a_tiny_problem(kind):
    torch.manual_seed(0)
    p2, p3 = _toy_lifting()
    model = (SingleFrameMLPLifter(17, width=128, num_blocks=1, dropout=0.0) if kind == "mlp"
             else TemporalConvLifter(17, (3, 3), channels=64, dropout=0.0))
    opt = torch.optim.Adam(model.parameters(), 3e-3)

    def loss_fn():
        pred = model(p2) if kind == "mlp" else model(p2)
        tgt = p3 if kind == "mlp" else p3[:, 4:5]
        return torch.linalg.vector_norm(pred - tgt, dim=-1).mean()

    model.train()                                 # batch statistics; dropout is 0, so deterministic
    with torch.no_grad():
        first = float(loss_fn())
    for _ in range(80):
        loss = loss_fn()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        assert float(loss_fn()) < 0.6 * first


def test_interpolation_exact_on_linear_motion():
    rng = np.random.default_rng(0)
    a, v = rng.normal(size=(17, 3)), rng.normal(size=(17, 3))
    t = np.arange(20)[:, None, None]
    pose = a + v * t                                   # (20, 17, 3) linear in time
    m = np.zeros((20, 17), bool)
    m[3:9, 2] = True
    m[10:19, 5] = True
    m[[1, 4, 12], 7] = True
    corrupted = np.where(m[..., None], 1e3, pose)
    out = interpolate_in_time(corrupted, m)
    np.testing.assert_allclose(out, pose, atol=1e-9)


def test_interpolation_edges_and_all_missing():
    pose = np.arange(5, dtype=np.float64)[:, None, None] * np.ones((5, 2, 1))
    m = np.zeros((5, 2), bool)
    m[:2, 0] = True                                    # before the first visible frame: constant
    m[:, 1] = True                                     # never visible: NaN
    out = interpolate_in_time(pose, m)
    np.testing.assert_allclose(out[:, 0, 0], [2, 2, 2, 3, 4])
    assert np.isnan(out[:, 1]).all()
    with pytest.raises(ValueError):
        interpolate_in_time(pose, m[:4])


def test_nearest_neighbour_completion():
    rng = np.random.default_rng(1)
    db = rng.normal(size=(500, 17, 3)).astype(np.float32)
    nn = NearestNeighbourCompletion(db, chunk=64)
    q = db[[3, 42, 499]].copy()
    m = np.zeros((3, 17), bool)
    m[:, [1, 2, 3]] = True
    q_bad = np.where(m[..., None], 99.0, q)            # values at missing joints are ignored
    assert list(nn.lookup(q_bad, m)) == [3, 42, 499]
    out = nn.complete(q_bad, m)
    np.testing.assert_allclose(out, q, atol=1e-6)
    # visible joints are kept as given, only missing ones come from the neighbour
    noisy = q + 0.01
    out = nn.complete(noisy, m)
    np.testing.assert_allclose(out[:, 4:], noisy[:, 4:])
    np.testing.assert_allclose(out[:, 1:4], q[:, 1:4], atol=1e-6)
    # batched leading dims
    assert nn.complete(np.stack([q, q]), np.stack([m, m])).shape == (2, 3, 17, 3)
