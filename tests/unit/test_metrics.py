"""Headline metrics, recall at precision, and bootstrap confidence intervals."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ipguard.evaluation.metrics import (
    auroc,
    average_precision,
    bootstrap_ci,
    headline_metrics,
    lane_metrics,
    metrics_with_ci,
    recall_at_precision,
)
from ipguard.evaluation.policy import Policy


def _scored(n: int, seed: int = 0, *, decimals: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Labels at ~30% prevalence and noisy scores that rank infringing listings higher."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.3).astype(int)
    scores = np.clip(rng.normal(0.35 + 0.3 * labels, 0.15), 0, 1)
    return (np.round(scores, decimals) if decimals is not None else scores), labels


def _brute_force_recall_at_precision(scores, labels, precision):
    best = (0.0, math.inf)
    for t in sorted(set(scores.tolist())):
        flagged = scores >= t
        if labels[flagged].sum() / flagged.sum() >= precision:
            recall = labels[flagged].sum() / labels.sum()
            if recall > best[0]:
                best = (recall, t)
    return best


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("precision", [0.7, 0.9, 0.97])
def test_recall_at_precision_matches_a_brute_force_search(seed, precision):
    scores, labels = _scored(300, seed, decimals=2)  # rounding creates ties across classes
    recall, threshold = recall_at_precision(scores, labels, precision)
    expected_recall, expected_threshold = _brute_force_recall_at_precision(
        scores, labels, precision
    )
    assert recall == pytest.approx(expected_recall)
    if expected_recall > 0:
        assert threshold == expected_threshold


def test_recall_at_unreachable_precision_is_zero():
    scores = np.array([0.9, 0.9, 0.5, 0.1])
    labels = np.array([1, 0, 1, 0])
    assert recall_at_precision(scores, labels, 0.99) == (0.0, math.inf)


def test_single_class_input_gives_nan_ranking_metrics_not_an_exception():
    scores = np.array([0.2, 0.6, 0.9])
    for labels in (np.ones(3, dtype=int), np.zeros(3, dtype=int)):
        headline = headline_metrics(scores, labels, Policy(0.8, 0.3))
        assert math.isnan(headline["auroc"])
        assert math.isnan(headline["average_precision"])
        assert headline["n"] == 3


def test_headline_lane_figures_on_a_hand_checked_example():
    # reject: 0.9 (inf), 0.85 (gen) | review: 0.6 (inf), 0.5 (gen) | approve: 0.2 (inf), 0.1 x3
    scores = np.array([0.9, 0.85, 0.6, 0.5, 0.2, 0.1, 0.1, 0.1])
    labels = np.array([1, 0, 1, 0, 1, 0, 0, 0])
    h = headline_metrics(scores, labels, Policy(reject_threshold=0.8, approve_threshold=0.3))
    assert h["share_reject"] == 2 / 8
    assert h["share_review"] == 2 / 8
    assert h["share_approve"] == 4 / 8
    assert h["precision_reject"] == h["precision_at_reject"] == 0.5
    assert h["recall_at_reject"] == 1 / 3
    assert h["infringing_share_review"] == 0.5
    assert h["miss_rate_approve"] == 1 / 3
    assert h["positives"] == 3


def test_lane_shares_sum_to_one_and_infringing_listings_are_accounted_for():
    scores, labels = _scored(1_000)
    lanes = lane_metrics(scores, labels, Policy(0.7, 0.4))
    assert lanes["share_reject"] + lanes["share_review"] + lanes["share_approve"] == pytest.approx(
        1
    )
    in_review = ((scores >= 0.4) & (scores < 0.7) & (labels == 1)).sum() / labels.sum()
    total = lanes["recall_at_reject"] + in_review + lanes["miss_rate_approve"]
    assert total == pytest.approx(1)


def test_headline_ranking_metrics_rank_a_perfect_model_perfectly():
    labels = np.array([0, 0, 1, 0, 1, 1])
    scores = labels * 0.5 + np.linspace(0.1, 0.4, 6)
    h = headline_metrics(scores, labels)
    assert h["auroc"] == 1.0 and h["average_precision"] == 1.0
    assert "share_reject" not in h


def test_bootstrap_ci_contains_the_point_estimate():
    scores, labels = _scored(500)
    point, low, high = bootstrap_ci(scores, labels, auroc, n_boot=100)
    assert low < point < high
    assert point == pytest.approx(auroc(scores, labels))


def test_bootstrap_ci_narrows_with_more_data():
    small = bootstrap_ci(*_scored(200), average_precision, n_boot=100)
    large = bootstrap_ci(*_scored(5_000), average_precision, n_boot=100)
    assert (large[2] - large[1]) < (small[2] - small[1]) / 2


def test_bootstrap_ci_is_deterministic_for_a_seed_and_varies_across_seeds():
    scores, labels = _scored(300)
    first = bootstrap_ci(scores, labels, auroc, n_boot=50, seed=7)
    assert bootstrap_ci(scores, labels, auroc, n_boot=50, seed=7) == first
    assert bootstrap_ci(scores, labels, auroc, n_boot=50, seed=8) != first


def test_every_bootstrap_resample_keeps_both_classes_and_their_counts():
    scores, labels = _scored(60)
    seen: list[tuple[int, int]] = []

    def count_classes(s: np.ndarray, y: np.ndarray) -> float:
        seen.append((int((y == 0).sum()), int((y == 1).sum())))
        return 0.0

    bootstrap_ci(scores, labels, count_classes, n_boot=30)
    expected = (int((labels == 0).sum()), int(labels.sum()))
    assert len(seen) == 31  # the point estimate plus 30 resamples
    assert set(seen) == {expected}


def test_bootstrap_ci_of_single_class_data_is_nan():
    point, low, high = bootstrap_ci(np.array([0.1, 0.5, 0.7]), np.ones(3), auroc, n_boot=10)
    assert math.isnan(point) and math.isnan(low) and math.isnan(high)


def test_metrics_with_ci_matches_per_resample_sklearn_bootstrap():
    scores, labels = _scored(400, decimals=2)
    policy = Policy(reject_threshold=0.7, approve_threshold=0.4)
    table = metrics_with_ci(scores, labels, policy, n_boot=60, seed=3).set_index("metric")
    for name, metric in {
        "auroc": auroc,
        "average_precision": average_precision,
        "recall_at_reject": lambda s, y: lane_metrics(s, y, policy)["recall_at_reject"],
        "precision_at_reject": lambda s, y: lane_metrics(s, y, policy)["precision_at_reject"],
    }.items():
        expected = bootstrap_ci(scores, labels, metric, n_boot=60, seed=3)
        row = table.loc[name]
        assert (row["value"], row["ci_low"], row["ci_high"]) == pytest.approx(expected, abs=1e-12)


def test_metrics_with_ci_has_the_documented_rows_and_columns():
    scores, labels = _scored(300)
    without = metrics_with_ci(scores, labels, n_boot=20)
    assert isinstance(without, pd.DataFrame)
    assert list(without.columns) == ["metric", "value", "ci_low", "ci_high"]
    assert list(without["metric"]) == ["auroc", "average_precision"]
    with_policy = metrics_with_ci(scores, labels, Policy(0.7, 0.4), n_boot=20)
    assert "recall_at_reject" in set(with_policy["metric"])
    assert (with_policy["ci_low"] <= with_policy["ci_high"]).all()


def test_metrics_reject_nan_scores_with_the_row():
    with pytest.raises(ValueError, match="row 1"):
        headline_metrics(np.array([0.1, np.nan]), np.array([0, 1]))
