"""Property-based fuzzing of the pipelines' inputs (hypothesis, tiny models, few examples).

Any array of any shape, dtype and values gives either a ValueError/TypeError or a finite result
whose ``valid`` / ``missing`` is truthful: a joint reported valid had a usable coordinate in the
input (finite, confident enough, representable), and every joint that was not usable is reported
missing."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from transformers import pipeline

from modeling_mpm import MPMConfig, MPMForMaskedPoseModeling, MPMForPoseLifting
from modeling_mpm.keypoints import DEFAULT_CONFIDENCE_THRESHOLD, MAX_ABS_METRES, MAX_ABS_NORMALIZED

# about half of the 40 examples pass validation and run the model (measured with a counter)
FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
W, H = 200.0, 100.0


def _tiny():
    return MPMConfig(num_frames=5, num_layers=1, hidden_size=8, intermediate_size=16, num_attention_heads=2,
                     reduce_strides=[5])


@pytest.fixture(scope="module")
def lift_pipe():
    torch.manual_seed(0)
    return pipeline("pose-lifting", model=MPMForPoseLifting(_tiny()))


@pytest.fixture(scope="module")
def complete_pipe():
    torch.manual_seed(1)
    return pipeline("pose-completion", model=MPMForMaskedPoseModeling(_tiny()))


_dtypes = st.one_of(
    hnp.floating_dtypes(sizes=(16, 32, 64)), hnp.integer_dtypes(), hnp.unsigned_integer_dtypes(),
    hnp.boolean_dtypes(), hnp.complex_number_dtypes(), st.just(np.dtype(object)), st.just(np.dtype("U3")),
)
# mostly the right layout, sometimes any small shape
_shapes = st.one_of(
    st.tuples(st.integers(0, 7), st.sampled_from([17, 16, 26]), st.sampled_from([2, 3, 4])),
    hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5),
)
_special = st.sampled_from([0.0, -0.0, 1.0, 50.0, 0.3, 0.29, np.nan, np.inf, -np.inf, 1e39, -1e39, 1e300,
                            3.4e38, 2e4 * W, 1e-45])


def _cast(dtype, v):
    """``v`` in ``dtype``; 0 where a finite ``v`` would overflow it (float64 keeps 1e39)."""
    with np.errstate(over="ignore"):
        c = dtype.type(v)
    return c if np.isfinite(c) or not np.isfinite(v) else dtype.type(0)


def _arrays(joints=(17,), channels=(2, 3)):
    """Three in four draws have the accepted layout with a numeric dtype (values still wild)."""
    good = st.tuples(
        st.sampled_from([np.dtype(t) for t in ("float64", "float32", "float16", "int32", "uint8")]),
        st.tuples(st.integers(1, 7), st.sampled_from(joints), st.sampled_from(channels)))
    anything = st.tuples(_dtypes, _shapes)

    def build(args):
        dtype, shape = args
        if dtype.kind in "fc":
            return hnp.arrays(dtype, shape, elements=st.one_of(
                st.floats(-300, 300, width=min(64, dtype.itemsize * 8 // (2 if dtype.kind == "c" else 1))),
                _special.map(lambda v: _cast(dtype, v))))
        if dtype == object:
            return hnp.arrays(dtype, shape, elements=st.one_of(st.none(), st.floats(allow_nan=True), st.text(max_size=2)))
        return hnp.arrays(dtype, shape)

    return st.one_of(good, good, good, anything).flatmap(build)


def _usable_2d(arr, thr=DEFAULT_CONFIDENCE_THRESHOLD):
    """(frames, 17) bool: H36M input joints that may be reported valid."""
    x = arr.astype(np.float64)
    with np.errstate(all="ignore"):
        uv = x[..., :2] / (W / 2) - np.array([1.0, H / W])
        ok = (np.isfinite(uv) & (np.abs(uv) <= MAX_ABS_NORMALIZED)).all(-1)
    if arr.shape[-1] == 3:
        ok &= np.isfinite(x[..., 2]) & (x[..., 2] >= thr)
    return ok


@FUZZ
@given(arr=_arrays())
def test_lifting_pipeline_any_array(lift_pipe, arr):
    try:
        out = lift_pipe(arr, image_size=(W, H), keypoint_format="h36m", mode="seq2seq")
    except (ValueError, TypeError):
        return
    # accepted only for a real (frames, 17, 2|3) numeric sequence
    assert arr.ndim == 3 and arr.shape[0] >= 1 and arr.shape[1] == 17 and arr.shape[2] in (2, 3)
    assert arr.dtype.kind in "iuf"
    pose, valid = out["pose_3d"], out["valid"]
    assert pose.shape == (arr.shape[0], 17, 3) and pose.dtype == np.float32 and np.isfinite(pose).all()
    assert valid.shape == (arr.shape[0], 17) and valid.dtype == bool
    np.testing.assert_array_equal(valid, _usable_2d(arr))


@FUZZ
@given(arr=_arrays(channels=(3,)), flip=st.booleans())
def test_completion_pipeline_any_array(complete_pipe, arr, flip):
    try:
        out = complete_pipe(arr, flip_augmentation=flip)
    except (ValueError, TypeError):
        return
    assert arr.ndim == 3 and arr.shape[0] >= 1 and arr.shape[1:] == (17, 3) and arr.dtype.kind in "iuf"
    x = arr.astype(np.float64)
    with np.errstate(invalid="ignore"):
        usable = (np.isfinite(x) & (np.abs(x) <= MAX_ABS_METRES)).all(-1)
    np.testing.assert_array_equal(out["missing"], ~usable)
    assert np.isfinite(out["pose_3d"]).all() and out["pose_3d"].shape == arr.shape
    # given joints are kept (to float32 precision)
    np.testing.assert_allclose(out["pose_3d"][usable], x[usable].astype(np.float32), rtol=1e-6)


@FUZZ
@given(arr=_arrays(joints=(17, 26)), fmt=st.sampled_from(["coco", "halpe26"]))
def test_detector_formats_any_array(lift_pipe, arr, fmt):
    try:
        out = lift_pipe(arr, image_size=(W, H), keypoint_format=fmt, mode="seq2seq")
    except (ValueError, TypeError):
        return
    assert arr.ndim == 3 and arr.shape[1] == {"coco": 17, "halpe26": 26}[fmt] and arr.dtype.kind in "iuf"
    assert np.isfinite(out["pose_3d"]).all()
    # a synthesised joint is valid only when some source joints were usable; the limbs map 1:1
    usable = _usable_2d(arr)
    from modeling_mpm.skeleton import COCO_17, H36M_17, HALPE_26

    names = (COCO_17 if fmt == "coco" else HALPE_26).joint_names
    for j, name in enumerate(H36M_17.joint_names):
        if name in names:
            np.testing.assert_array_equal(out["valid"][:, j], usable[:, names.index(name)], err_msg=name)
    assert not (out["valid"] & ~usable.any(1, keepdims=True)).any()
