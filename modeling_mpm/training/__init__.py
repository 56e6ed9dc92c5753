"""Training for MPM: pre-training (masked 2D + 3D pose modeling) and fine-tuning (lifting, 3D
completion, occluded 2D -> 3D) on Accelerate, with atomic checkpoints and exact resumption.

Entry points: :func:`train` (library), ``mpm train pretrain|finetune`` / ``python -m
modeling_mpm.cli.train`` (:mod:`modeling_mpm.cli.train`; ``train/*.py`` are thin scripts), configs shipped in
``modeling_mpm/configs/`` (``--config NAME``); see ``docs/training.md``.
"""

from .config import RunConfig, load_config
from .trainer import TrainResult, build_model, check_hub_ready, train

__all__ = ["RunConfig", "load_config", "train", "TrainResult", "build_model", "check_hub_ready"]
