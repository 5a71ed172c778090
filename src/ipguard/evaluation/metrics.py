"""Quality figures a trust-and-safety team reads, with bootstrap confidence intervals.

Ranking quality (AUROC, average precision) says whether the model separates the classes;
the figures at the policy's operating point (precision and recall of the reject lane, the
traffic share and infringing share of each lane) say what the screening service will actually
do. A test set of a few thousand listings leaves real uncertainty in all of them, hence the
intervals. Degenerate input (one class only, e.g. a small slice) yields NaN, never an
exception, so a report over many slices does not die on the smallest one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from ipguard.evaluation.calibration import expected_calibration_error
from ipguard.evaluation.policy import Policy, check_scores_labels, threshold_for_precision

Metric = Callable[[np.ndarray, np.ndarray], float]


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve; NaN when only one class is present."""
    s, y = check_scores_labels(scores, labels, where="auroc")
    return float(roc_auc_score(y, s)) if _has_both_classes(y) else float("nan")


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Average precision (area under the PR curve); NaN when only one class is present."""
    s, y = check_scores_labels(scores, labels, where="average_precision")
    return float(average_precision_score(y, s)) if _has_both_classes(y) else float("nan")


def recall_at_precision(scores: Any, labels: Any, precision: float) -> tuple[float, float]:
    """Best recall reachable at ``precision`` and the threshold that reaches it.

    The threshold is the lowest observed score whose ``score >= t`` set reaches the precision
    (the same rule as the policy's reject threshold). If no threshold reaches it the result is
    ``(0.0, inf)``: nothing can be rejected at that precision.
    """
    if not 0 < precision <= 1:
        raise ValueError(f"recall_at_precision: expected precision in (0, 1], found {precision!r}")
    s, y = check_scores_labels(scores, labels, where="recall_at_precision")
    positives = int(y.sum())
    if positives == 0:
        return 0.0, float("inf")
    threshold = threshold_for_precision(s, y, precision)
    if threshold is None:
        return 0.0, float("inf")
    return float(y[s >= threshold].sum() / positives), threshold


def lane_metrics(scores: Any, labels: Any, policy: Policy) -> dict[str, float]:
    """What each lane of ``policy`` receives; NaN where a ratio has an empty denominator.

    ``precision_reject`` and ``precision_at_reject`` are the same number under two names: the
    first reads as a lane figure, the second pairs with ``recall_at_reject`` as the operating
    point.
    """
    s, y = check_scores_labels(scores, labels, where="lane_metrics")
    decisions = policy.decide(s)
    lanes = {lane: decisions == lane for lane in ("reject", "review", "approve")}
    count = {lane: int(mask.sum()) for lane, mask in lanes.items()}
    infringing = {lane: int(y[mask].sum()) for lane, mask in lanes.items()}
    positives = int(y.sum())
    out = {f"share_{lane}": _ratio(count[lane], s.size) for lane in lanes}
    out["recall_at_reject"] = _ratio(infringing["reject"], positives)
    out["precision_at_reject"] = _ratio(infringing["reject"], count["reject"])
    out["precision_reject"] = out["precision_at_reject"]
    out["infringing_share_review"] = _ratio(infringing["review"], count["review"])
    out["miss_rate_approve"] = _ratio(infringing["approve"], positives)
    return out


def headline_metrics(scores: Any, labels: Any, policy: Policy | None = None) -> dict[str, float]:
    """The numbers a report leads with: ranking quality, calibration and, with a policy, lanes.

    ``f1`` is at a 0.5 threshold (the natural cut of a calibrated probability), not at the
    policy's thresholds, so it is comparable across policies.
    """
    s, y = check_scores_labels(scores, labels, where="headline_metrics")
    out: dict[str, float] = {
        "n": float(s.size),
        "positives": float(y.sum()),
        "auroc": auroc(s, y),
        "average_precision": average_precision(s, y),
        "f1": float(f1_score(y, s >= 0.5, zero_division=0.0)) if s.size else float("nan"),
        "ece": _ece_or_nan(s, y),
    }
    if policy is not None:
        out.update(lane_metrics(s, y, policy))
    return out


def bootstrap_ci(
    scores: Any,
    labels: Any,
    metric: Metric,
    *,
    n_boot: int = 200,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float, float]:
    """``(point, low, high)``: the metric on the data and a percentile bootstrap interval.

    Resampling is stratified by label (each class resampled to its own size), so every
    resample has both classes and the class balance of the test set, which AUROC and precision
    depend on. Resamples where the metric is NaN are ignored; if all are, the interval is NaN.
    """
    s, y = check_scores_labels(scores, labels, where="bootstrap_ci")
    _check_boot_args(n_boot, alpha)
    point = float(metric(s, y))
    values = np.array(
        [float(metric(s[i], y[i])) for block in _resample_blocks(y, n_boot, seed) for i in block]
    )
    low, high = _percentile_interval(values, alpha)
    return point, low, high


def metrics_with_ci(
    scores: Any,
    labels: Any,
    policy: Policy | None = None,
    *,
    n_boot: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Rows ``metric, value, ci_low, ci_high`` for AUROC, average precision and, with a policy,
    recall and precision at the reject threshold.

    All metrics share one set of resamples (the same ones :func:`bootstrap_ci` draws for that
    seed), so their intervals describe the same hypothetical test sets. The resampled metrics
    are computed for all resamples at once from score multiplicities, not by calling sklearn
    per resample; point values come from sklearn.
    """
    s, y = check_scores_labels(scores, labels, where="metrics_with_ci")
    _check_boot_args(n_boot, alpha)
    point = {"auroc": auroc(s, y), "average_precision": average_precision(s, y)}
    if policy is not None:
        lanes = lane_metrics(s, y, policy)
        point["recall_at_reject"] = lanes["recall_at_reject"]
        point["precision_at_reject"] = lanes["precision_at_reject"]
    values, group = np.unique(s, return_inverse=True)
    boot = np.concatenate(
        [
            _weighted_metrics(values, _class_weights(group[idx], y[idx], values.size), policy)
            for idx in _resample_blocks(y, n_boot, seed)
        ]
    )
    rows = []
    for j, (name, value) in enumerate(point.items()):
        low, high = _percentile_interval(boot[:, j], alpha)
        rows.append({"metric": name, "value": value, "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows, columns=["metric", "value", "ci_low", "ci_high"])


def _class_weights(group: np.ndarray, y: np.ndarray, n_groups: int) -> np.ndarray:
    """``(resamples, distinct scores, 2)``: how often each score value was drawn, per class.

    A resample is fully described by these multiplicities, which turns every metric below into
    cumulative sums over the (few) distinct scores instead of a sort per resample.
    """
    rows = np.arange(group.shape[0])[:, None]
    keys = (rows * n_groups + group) * 2 + y
    counts = np.bincount(keys.ravel(), minlength=group.shape[0] * n_groups * 2)
    return counts.reshape(group.shape[0], n_groups, 2).astype(np.float64)


def _weighted_metrics(values: np.ndarray, w: np.ndarray, policy: Policy | None) -> np.ndarray:
    """AUROC, AP (and recall/precision at reject) for each resample, as sklearn defines them.

    ``values`` are the distinct scores ascending; ``w[..., 0]`` / ``w[..., 1]`` the genuine /
    infringing multiplicities. AUROC counts a tie as half a correct pair; AP sums precision at
    each distinct threshold weighted by the recall it adds (sklearn's step-wise definition).
    """
    neg, pos = w[..., 0], w[..., 1]
    n_neg, n_pos = neg.sum(axis=1), pos.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        neg_below = np.cumsum(neg, axis=1) - neg
        auc = (pos * (neg_below + 0.5 * neg)).sum(axis=1) / (n_pos * n_neg)
        tp = np.cumsum(pos[:, ::-1], axis=1)
        fp = np.cumsum(neg[:, ::-1], axis=1)
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)
        ap = (pos[:, ::-1] * precision).sum(axis=1) / n_pos
        one_class = (n_pos == 0) | (n_neg == 0)
        auc[one_class] = np.nan
        ap[one_class] = np.nan
        columns = [auc, ap]
        if policy is not None:
            rejected = values >= policy.reject_threshold
            tp_reject = pos[:, rejected].sum(axis=1)
            n_reject = tp_reject + neg[:, rejected].sum(axis=1)
            columns.append(np.where(n_pos > 0, tp_reject / n_pos, np.nan))
            columns.append(np.where(n_reject > 0, tp_reject / n_reject, np.nan))
    return np.stack(columns, axis=1)


def _resample_blocks(y: np.ndarray, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """Stratified bootstrap indices as ``(resamples, n)`` blocks, deterministic for a seed.

    Each class is resampled to its own size, so every resample keeps the test set's class
    balance. Blocks bound memory on large test sets; the draws do not depend on the block size
    callers see, so :func:`bootstrap_ci` and :func:`metrics_with_ci` use identical resamples.
    """
    rng = np.random.default_rng(seed)
    groups = [g for g in (np.flatnonzero(y == 0), np.flatnonzero(y == 1)) if g.size]
    if not groups:
        return
    block = max(1, min(n_boot, 4_000_000 // max(1, y.size)))
    for start in range(0, n_boot, block):
        size = min(block, n_boot - start)
        yield np.concatenate([g[rng.integers(0, g.size, size=(size, g.size))] for g in groups], 1)


def _percentile_interval(values: np.ndarray, alpha: float) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def _check_boot_args(n_boot: int, alpha: float) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise ValueError(f"bootstrap: expected n_boot as an int >= 1, found {n_boot!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"bootstrap: expected alpha in (0, 1), found {alpha!r}")


def _has_both_classes(y: np.ndarray) -> bool:
    return 0 < int(y.sum()) < y.size


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else float("nan")


def _ece_or_nan(s: np.ndarray, y: np.ndarray) -> float:
    """ECE needs probabilities; raw scores outside [0, 1] (e.g. logits) give NaN, not an error."""
    if s.size == 0 or s.min() < 0 or s.max() > 1:
        return float("nan")
    return expected_calibration_error(s, y)
