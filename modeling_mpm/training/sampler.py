"""The training batch plan and its Accelerate data loader.

One optimizer step consumes ``batch_size`` windows (all processes and micro-batches together) in
``accumulation_steps`` micro-batches, each split over the processes (``split_batches``). An epoch's
order is a permutation drawn by Accelerate's ``SeedableRandomSampler`` from ``seed + epoch``, the
same for every number of processes, so resuming at ``(epoch, step)`` is ``set_epoch`` plus
``skip_first_batches`` (:func:`epoch_loader`): no sampler state beyond those two integers.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch.utils.data import DataLoader, RandomSampler

__all__ = ["BatchPlan", "build_train_loader", "epoch_loader"]


class BatchPlan:
    """Sizes of the training batches for ``num_samples`` windows.

    Args:
        num_samples: dataset length.
        batch_size: global windows per optimizer step (all processes and micro-batches together).
        accumulation_steps: micro-batches per optimizer step.
        world_size: number of processes.
    """

    def __init__(self, num_samples: int, batch_size: int, accumulation_steps: int = 1, world_size: int = 1):
        if batch_size % (accumulation_steps * world_size) != 0:
            raise ValueError(f"training.batch_size={batch_size} must be divisible by gradient_accumulation_steps "
                             f"({accumulation_steps}) x processes ({world_size})")
        if num_samples < batch_size:
            raise ValueError(f"the training set has {num_samples} windows, fewer than one batch of {batch_size}; "
                             f"lower training.batch_size or add data")
        self.num_samples = int(num_samples)
        self.batch_size = int(batch_size)
        self.accumulation_steps = int(accumulation_steps)
        self.world_size = int(world_size)

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps per epoch (the last incomplete global batch is dropped)."""
        return self.num_samples // self.batch_size

    @property
    def global_micro_batch_size(self) -> int:
        """Windows per micro-batch, all processes together (the loader's batch size)."""
        return self.batch_size // self.accumulation_steps

    @property
    def micro_batch_size(self) -> int:
        """Windows per process and micro-batch."""
        return self.batch_size // (self.accumulation_steps * self.world_size)


def build_train_loader(dataset, plan: BatchPlan, seed: int, collate_fn: Callable, num_workers: int = 0) -> DataLoader:
    """The (not yet prepared) loader: a ``RandomSampler`` over one epoch of whole global batches, on its
    own ``torch.Generator``, that ``accelerator.prepare`` turns into a ``SeedableRandomSampler``."""
    generator = torch.Generator().manual_seed(int(seed))
    sampler = RandomSampler(dataset, num_samples=plan.steps_per_epoch * plan.batch_size, generator=generator)
    return DataLoader(dataset, batch_size=plan.global_micro_batch_size, sampler=sampler, drop_last=True,
                      collate_fn=collate_fn, num_workers=num_workers, generator=generator)


def epoch_loader(accelerator, loader, epoch: int, start_step: int = 0, accumulation_steps: int = 1):
    """The prepared ``loader`` positioned at optimizer step ``start_step`` of ``epoch``."""
    loader.set_epoch(epoch)
    if start_step <= 0:
        return loader
    skipped = accelerator.skip_first_batches(loader, start_step * accumulation_steps)
    skipped.set_epoch(epoch)
    _seedable_sampler(loader).set_epoch(epoch)
    return skipped


def _seedable_sampler(loader) -> Optional[object]:
    from accelerate.data_loader import SeedableRandomSampler

    s = loader.get_sampler() if hasattr(loader, "get_sampler") else None
    if not isinstance(s, SeedableRandomSampler):
        raise TypeError("the training loader was not prepared with use_seedable_sampler=True")
    return s
