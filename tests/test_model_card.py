"""Model cards: model-index from measured results, template rendering, offline."""

import pytest

from modeling_mpm import MPMConfig, MPMForPoseLifting
from modeling_mpm.model_card import TEMPLATE_PATH, build_model_card, eval_results_from, write_model_card

RESULTS = {
    "plain": {"mpjpe": 51.234, "p_mpjpe": 40.5, "windows": 100,
              "per_action": {"Walking": {"mpjpe": 45.0, "p_mpjpe": 35.0, "windows": 60},
                             "Sitting": {"mpjpe": 60.0, "p_mpjpe": 48.0, "windows": 40}}},
    "flip": {"mpjpe": 50.0, "p_mpjpe": 39.9, "windows": 100, "per_action": {}},
}


@pytest.fixture(scope="module")
def model():
    cfg = MPMConfig(num_frames=9, num_layers=1, hidden_size=32, intermediate_size=64, num_attention_heads=4)
    return MPMForPoseLifting(cfg)


def test_eval_results_cover_every_setting():
    res = eval_results_from(RESULTS, task="lift", dataset_type="h36m", dataset_name="Human3.6M",
                            dataset_split="test")
    by_type = {r.metric_type: r for r in res}
    assert set(by_type) == {"mpjpe", "p_mpjpe", "mpjpe_flip", "p_mpjpe_flip"}
    assert by_type["mpjpe"].metric_value == 51.23
    assert by_type["mpjpe"].dataset_name == "Human3.6M" and by_type["mpjpe"].task_type == "other"  # a Hub task id
    assert "flip" in by_type["mpjpe_flip"].metric_name


def test_card_roundtrip_and_tables(tmp_path, model):
    from huggingface_hub import ModelCard

    assert TEMPLATE_PATH.is_file()
    repo_card = TEMPLATE_PATH.parent.parent / "model_card.md"
    if repo_card.is_file():  # a checkout: the package's template is the repository's model_card.md
        assert TEMPLATE_PATH.resolve() == repo_card.resolve()
    path = write_model_card(str(tmp_path), model, task="lift", eval_results=RESULTS, dataset_name="Human3.6M",
                            dataset_type="h36m", dataset_split="test", base_model="org/mpm-pretrain",
                            model_name="mpm-lift-test", training_details="- 10 steps")
    card = ModelCard.load(path)
    assert card.data.base_model == "org/mpm-pretrain"
    assert card.data.model_name == "mpm-lift-test"
    vals = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert vals["p_mpjpe"] == 40.5 and vals["mpjpe_flip"] == 50.0
    text = card.text
    assert "| Walking | 45.0 | 35.0 | 60 |" in text
    assert "| flip test-time augmentation | 50.0 | 39.9 | 100 |" in text
    assert "MPMForPoseLifting" in text and "- 10 steps" in text and "{{" not in text


def test_card_without_results_and_local_base(tmp_path, model):
    card = build_model_card(model, task="lift", base_model=str(tmp_path))  # a local folder, not a Hub id
    assert card.data.base_model is None and not card.data.eval_results
    assert "No evaluation was run" in card.text
    assert "pre-trained encoder" in card.text
    fallback = build_model_card(model, task="lift", eval_results=RESULTS, template_path=None)
    assert "model-index" in str(fallback)
    with pytest.raises(ValueError, match="task"):
        build_model_card(model, task="dance")
