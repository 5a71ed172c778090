"""A class-balancing sampler that resumes exactly and shards over DDP ranks.

torch's ``WeightedRandomSampler`` draws from the global RNG when its iterator is created,
which Lightning does before a resumed run's state is restored, and it knows nothing of ranks
(Lightning would wrap it, and every rank would draw from its own RNG). This sampler draws
the epoch's indices from a generator seeded by ``(seed, epoch)`` alone, the same draw on every
rank, then gives each rank its own interleaved share, like ``DistributedSampler`` does for a
shuffle. It *is* a ``DistributedSampler``, so Lightning calls its ``set_epoch`` and leaves it
in place under DDP.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler


def balanced_weights(labels: Sequence[int] | np.ndarray) -> torch.Tensor:
    """Per-row weights that give each class the same total probability."""
    labels = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(labels, minlength=2).clip(min=1)
    return torch.as_tensor(1.0 / counts[labels], dtype=torch.double)


class EpochWeightedSampler(DistributedSampler):
    """``len(dataset)`` rows per epoch, drawn with replacement in proportion to ``weights``."""

    def __init__(
        self,
        dataset: Dataset,
        weights: torch.Tensor,
        *,
        num_replicas: int = 1,
        rank: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False, seed=seed)
        if weights.ndim != 1 or len(weights) != len(dataset):  # type: ignore[arg-type]
            raise ValueError(
                f"EpochWeightedSampler: expected one weight per row ({len(dataset)}), "  # type: ignore[arg-type]
                f"found {tuple(weights.shape)}"
            )
        self.weights = weights.double()

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        drawn = torch.multinomial(self.weights, self.total_size, True, generator=generator)
        return iter(drawn[self.rank : self.total_size : self.num_replicas].tolist())
