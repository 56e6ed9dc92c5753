"""Training for MPM: pre-training (masked 2D + 3D pose modeling) and fine-tuning (lifting, 3D
completion, occluded 2D -> 3D) on Accelerate, with atomic checkpoints and exact resumption.

Entry points: :func:`train` (library), ``train/pretrain.py`` / ``train/finetune.py`` (scripts,
:mod:`.cli`), configs in ``configs/``; see ``docs/training.md``.
"""

from .config import RunConfig, load_config
from .trainer import TrainResult, build_model, check_hub_ready, train

__all__ = ["RunConfig", "load_config", "train", "TrainResult", "build_model", "check_hub_ready"]
