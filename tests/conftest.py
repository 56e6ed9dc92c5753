import os
import pathlib

import pytest

# No test may reach a hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(autouse=True)
def _fresh_accelerate_state():
    """Every test starts with Accelerate's process-wide state cleared, as Accelerate's own test
    cases do (the package keeps one precision per process; tests switch between them)."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    yield


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


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models on a busy 2-core machine run faster on one thread (restored after the module)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tiny_lifter_9():
    """A randomly initialised 9-frame lifter (1 layer, width 32), eval mode, seed 0."""
    import torch

    from modeling_mpm import MPMConfig, MPMForPoseLifting

    torch.manual_seed(0)
    cfg = MPMConfig(num_frames=9, num_layers=1, hidden_size=32, intermediate_size=64, num_attention_heads=4,
                    reduce_strides=[3, 3], dropout=0.0)
    return MPMForPoseLifting(cfg).eval()
