"""The class-balancing sampler: balanced, replayable from (seed, epoch), sharded over ranks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ipguard.data.samplers import EpochWeightedSampler, balanced_weights

LABELS = np.array([1] * 10 + [0] * 190)  # 1 in 20 infringing


def _sampler(epoch: int = 0, **kwargs) -> EpochWeightedSampler:
    sampler = EpochWeightedSampler(list(range(len(LABELS))), balanced_weights(LABELS), **kwargs)
    sampler.set_epoch(epoch)
    return sampler


def test_each_class_gets_the_same_total_weight() -> None:
    weights = balanced_weights(LABELS)
    assert weights[LABELS == 1].sum() == pytest.approx(weights[LABELS == 0].sum())


def test_an_epoch_draws_the_classes_about_evenly_with_replacement() -> None:
    drawn = np.array(list(_sampler(seed=3)))
    assert len(drawn) == len(LABELS)
    share = LABELS[drawn].mean()
    assert 0.4 < share < 0.6  # 5% in the data; binomial sd of the share is 0.035
    assert len(set(drawn[LABELS[drawn] == 1])) <= 10  # the few positives repeat


def test_the_draw_depends_on_seed_and_epoch_only() -> None:
    torch.manual_seed(0)
    first = list(_sampler(epoch=2, seed=5))
    torch.manual_seed(123)  # the global RNG, which a resumed run does not restore, is unused
    assert list(_sampler(epoch=2, seed=5)) == first
    assert list(_sampler(epoch=3, seed=5)) != first
    assert list(_sampler(epoch=2, seed=6)) != first


def test_ranks_split_one_epoch_draw_between_them() -> None:
    whole = list(_sampler(epoch=1, seed=2))
    shards = [list(_sampler(epoch=1, seed=2, num_replicas=2, rank=r)) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == len(LABELS) // 2
    assert [i for pair in zip(*shards, strict=True) for i in pair] == whole


def test_weights_must_match_the_rows() -> None:
    with pytest.raises(ValueError, match=r"one weight per row \(200\), found \(3,\)"):
        EpochWeightedSampler(list(range(200)), torch.ones(3))
