"""Property-based fuzzing of the configuration and of the data-preparation inputs (hypothesis,
few examples, tiny sizes): any MPMConfig keyword values and any nested structure in place of the
released Human3.6M / 3DHP / AMASS dicts give either an input error that `mpm` prints as a sentence
(modeling_mpm.cli.is_input_error) or a result that is usable: a model that runs, rows whose poses
are finite and non-empty."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modeling_mpm import MPMConfig, MPMForPoseLifting
from modeling_mpm.cli import is_input_error
from modeling_mpm.data import sources as S

FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

_scalars = st.one_of(
    st.integers(-3, 12), st.sampled_from([0.0, -1.0, 0.5, 1e-6, 2.0, float("nan"), float("inf"), 1e308]),
    st.booleans(), st.none(), st.sampled_from(["", "x", "h36m17", "random", "tube", "all", "float16", "float99"]),
)
_values = st.one_of(_scalars, st.lists(st.integers(-1, 6), max_size=4), st.lists(_scalars, max_size=2))
_KEYS = ["num_joints", "num_frames", "hidden_size", "embedding_size", "intermediate_size", "num_layers",
         "num_attention_heads", "dropout", "mlp_dropout", "lifter_mlp_dropout", "decoder_layers", "reduce_strides",
         "temporal_mask_ratio", "spatial_mask_joints", "mask_mode", "tube_manners_2d", "tube_manners_3d",
         "share_mask_across_batch", "reconstruction_loss_on", "dropped_frames_input", "loss_weight_2d",
         "loss_weight_3d", "loss_weight_lift", "lift_center_loss_weight", "lift_all_frames_loss_weight",
         "legacy_layer_norm", "layer_norm_eps", "embedding_init_std", "use_refine", "zero_root_output", "skeleton",
         "dtype"]
BASE = dict(num_frames=3, num_layers=1, hidden_size=4, intermediate_size=8, num_attention_heads=2)


@FUZZ
@given(st.dictionaries(st.sampled_from(_KEYS), _values, max_size=4))
def test_any_config_values_give_a_sentence_or_a_model_that_runs(kwargs):
    try:
        cfg = MPMConfig(**{**BASE, **kwargs})
    except (ValueError, TypeError) as err:
        assert is_input_error(err), f"{type(err).__name__}: {err}"
        return
    assert MPMConfig.from_dict(cfg.to_dict()).to_dict() == cfg.to_dict()  # what is saved loads back
    if cfg.hidden_size * cfg.embedding_size * cfg.num_joints > 50_000 or cfg.num_frames > 9:
        return  # valid but too big to run here
    model = MPMForPoseLifting(cfg).eval()
    with torch.no_grad():
        out = model(pose_2d=torch.zeros(1, cfg.num_frames, cfg.num_joints, 2))
    assert out.pose_3d_center.shape[-1] == 3


_leaf = st.one_of(
    st.integers(-2, 40), st.floats(allow_nan=True, allow_infinity=True, width=32), st.text(max_size=3), st.none(),
    st.builds(lambda t, j, c, v: np.full((t, j, c), v, np.float32), st.integers(0, 4),
              st.sampled_from([16, 17, 32, 5]), st.sampled_from([2, 3]),
              st.sampled_from([0.0, 0.5, np.nan, np.inf])),
    st.builds(lambda t, j, c, seed: np.random.default_rng(seed).normal(0, 1, (t, j, c)).astype(np.float32),
              st.integers(1, 4), st.sampled_from([16, 17, 32]), st.sampled_from([2, 3]), st.integers(0, 5)),
)
_tree = st.recursive(_leaf, lambda kids: st.one_of(
    st.lists(kids, max_size=4), st.dictionaries(st.sampled_from(
        ["S1", "S9", "TS1", "S1 Seq1", "0", "Walking", "data_2d", "data_3d", "valid", "length", "pose2d", "pose3d"]),
        kids, max_size=4)), max_leaves=8)


def _check_rows(make):
    try:
        rows = list(make())
    except (ValueError, TypeError) as err:
        assert is_input_error(err), f"{type(err).__name__}: {err}"
        return
    for r in rows:
        assert len(r["pose_3d"]) > 0 and np.isfinite(r["pose_3d"]).all()
        assert np.isfinite(r["pose_2d"]).all()


@FUZZ
@given(_tree)
def test_any_structure_as_released_data_gives_a_sentence_or_finite_rows(tree):
    if isinstance(tree, str):
        tree = [tree]  # a string is a file path to these functions
    _check_rows(lambda: S.h36m_rows(tree))
    _check_rows(lambda: S.mpi3dhp_train_rows(tree))
    _check_rows(lambda: S.mpi3dhp_test_rows(tree))
    _check_rows(lambda: S.amass_authors_rows(tree))


@FUZZ
@given(st.dictionaries(st.sampled_from(["S1", "S5", "S9"]), st.dictionaries(st.sampled_from(["Walking", "Eating"]),
                                                                           _leaf, max_size=2), max_size=2))
def test_h36m_like_dicts_give_a_sentence_or_finite_rows(tree):
    _check_rows(lambda: S.h36m_rows(tree))
