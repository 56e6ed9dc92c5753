import os
import pathlib

import pytest

# No test may reach a hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir():
    """The read-only ../shared folder beside the checkout; tests that need it skip without it."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is not present (only the maintainers' checkout has ../shared)")
    return SHARED


@pytest.fixture
def tiny_config():
    from modeling_mpm import MPMConfig

    return MPMConfig(num_frames=27, num_layers=2, hidden_size=32, intermediate_size=64, num_attention_heads=4)
