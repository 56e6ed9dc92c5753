"""A resumable, distributed-aware batch order.

The order of an epoch is a pure function of ``(seed, epoch)``: a permutation drawn from a
``torch.Generator`` seeded with both. One optimizer step consumes ``batch_size`` consecutive
indices of that permutation (the global batch); they are cut into ``accumulation_steps``
micro-batches, and every micro-batch is dealt to the ranks round-robin. Resuming at
``(epoch, step)`` therefore needs no sampler state beyond those two integers, and a resumed run
sees exactly the windows an uninterrupted run would have seen.
"""

from __future__ import annotations

from typing import Iterator, List, Tuple

import torch

__all__ = ["ResumableBatchOrder"]


class ResumableBatchOrder:
    """Deterministic batches for ``num_samples`` windows.

    Args:
        num_samples: dataset length.
        batch_size: global windows per optimizer step (all ranks and micro-batches together).
        accumulation_steps: micro-batches per optimizer step.
        world_size / rank: the process group.
        seed: base seed of the per-epoch permutations.
        shuffle: ``False`` keeps the dataset order (every epoch the same).
    """

    def __init__(self, num_samples: int, batch_size: int, accumulation_steps: int = 1,
                 world_size: int = 1, rank: int = 0, seed: int = 0, shuffle: bool = True):
        if batch_size % (accumulation_steps * world_size) != 0:
            raise ValueError(
                f"training.batch_size={batch_size} must be divisible by gradient_accumulation_steps "
                f"({accumulation_steps}) x processes ({world_size})")
        if num_samples < batch_size:
            raise ValueError(
                f"the training set has {num_samples} windows, fewer than one batch of {batch_size}; "
                f"lower training.batch_size or add data")
        self.num_samples = int(num_samples)
        self.batch_size = int(batch_size)
        self.accumulation_steps = int(accumulation_steps)
        self.world_size = int(world_size)
        self.rank = int(rank)
        self.seed = int(seed)
        self.shuffle = shuffle

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps per epoch (the last incomplete global batch is dropped)."""
        return self.num_samples // self.batch_size

    @property
    def micro_batch_size(self) -> int:
        """Windows per rank and micro-batch."""
        return self.batch_size // (self.accumulation_steps * self.world_size)

    def permutation(self, epoch: int) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.num_samples)
        g = torch.Generator()
        g.manual_seed(self.seed * 1_000_003 + int(epoch) * 7_919 + 17)
        return torch.randperm(self.num_samples, generator=g)

    def step_indices(self, perm: torch.Tensor, step: int) -> List[List[int]]:
        """This rank's micro-batches (lists of dataset indices) for optimizer step ``step``."""
        glob = perm[step * self.batch_size:(step + 1) * self.batch_size]
        per_micro = self.batch_size // self.accumulation_steps
        out = []
        for m in range(self.accumulation_steps):
            micro = glob[m * per_micro:(m + 1) * per_micro]
            out.append(micro[self.rank::self.world_size].tolist())
        return out

    def iter_epoch(self, epoch: int, start_step: int = 0) -> Iterator[Tuple[int, List[List[int]]]]:
        """Yield ``(step_in_epoch, micro_batches)`` from ``start_step`` to the end of the epoch."""
        perm = self.permutation(epoch)
        for step in range(start_step, self.steps_per_epoch):
            yield step, self.step_indices(perm, step)
