"""The five figures of an evaluation report, written as PNG files.

Figures are built on ``matplotlib.figure.Figure`` with an Agg canvas attached per figure rather
than through ``pyplot``: nothing is registered in pyplot's global figure list (so nothing needs
closing and nothing leaks in long training runs), and the process-wide backend is left alone,
so a notebook importing ipguard keeps its inline plots.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from ipguard.data.columns import DECISIONS
from ipguard.evaluation.calibration import reliability_table
from ipguard.evaluation.metrics import auroc, average_precision, lane_metrics
from ipguard.evaluation.policy import Policy, check_scores_labels

_GENUINE, _INFRINGING = "#4c72b0", "#c44e52"
_LANE_COLOURS = {"reject": "#c44e52", "review": "#dd8452", "approve": "#55a868"}


@contextmanager
def _figure(path: str | Path, *, size: tuple[float, float] = (5.0, 4.0)) -> Iterator[Axes]:
    """Yield one Axes; on exit save the figure to ``path`` (parents created) as PNG."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=size, dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    yield fig.add_subplot()
    fig.savefig(target, format="png")


def _undefined(ax: Axes, what: str, y: np.ndarray) -> None:
    """Say on the figure why it is empty instead of failing the whole report."""
    ax.text(
        0.5,
        0.5,
        f"{what} undefined:\n{int(y.sum())} infringing, {int((y == 0).sum())} genuine",
        ha="center",
        va="center",
        transform=ax.transAxes,
    )


def _legend_below(ax: Axes, *, ncol: int) -> None:
    """Legend under the axes, where it cannot hide bars, thresholds or annotations."""
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=ncol, frameon=False)


def plot_roc(scores: Any, labels: Any, path: str | Path) -> Path:
    """ROC curve with its AUROC; the chance diagonal for reference."""
    s, y = check_scores_labels(scores, labels, where="plot_roc")
    with _figure(path) as ax:
        ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="chance")
        if 0 < y.sum() < y.size:
            fpr, tpr, _ = roc_curve(y, s)
            ax.plot(fpr, tpr, color=_INFRINGING, label=f"AUROC {auroc(s, y):.3f}")
        else:
            _undefined(ax, "ROC", y)
        ax.set(xlabel="false positive rate (genuine flagged)", ylabel="recall (infringing)")
        ax.set(xlim=(0, 1), ylim=(0, 1.01), title="ROC")
        ax.legend(loc="lower right")
    return Path(path)


def plot_pr(scores: Any, labels: Any, path: str | Path, policy: Policy | None = None) -> Path:
    """Precision-recall curve; with a policy, its reject operating point and precision target."""
    s, y = check_scores_labels(scores, labels, where="plot_pr")
    with _figure(path) as ax:
        if y.sum() > 0:
            precision, recall, _ = precision_recall_curve(y, s)
            ax.plot(recall, precision, color=_INFRINGING, label=f"AP {average_precision(s, y):.3f}")
            ax.axhline(y.mean(), ls="--", color="grey", lw=1, label="base rate")
        else:
            _undefined(ax, "Precision-recall", y)
        if policy is not None:
            lanes = lane_metrics(s, y, policy)
            if policy.target_precision is not None:
                ax.axhline(policy.target_precision, ls=":", color="black", lw=1, label="target")
            if np.isfinite(lanes["precision_at_reject"]) and np.isfinite(lanes["recall_at_reject"]):
                ax.plot(
                    lanes["recall_at_reject"],
                    lanes["precision_at_reject"],
                    "o",
                    color="black",
                    label=f"reject at {policy.reject_threshold:.3f}",
                )
        ax.set(xlabel="recall (infringing)", ylabel="precision", title="Precision-recall")
        ax.set(xlim=(0, 1), ylim=(0, 1.01))
        ax.legend(loc="lower left")
    return Path(path)


def plot_reliability(scores: Any, labels: Any, path: str | Path) -> Path:
    """Observed infringing rate against mean score per bin; bar heights show traffic per bin."""
    table = reliability_table(scores, labels)
    filled = table[table["count"] > 0]
    with _figure(path) as ax:
        ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfect calibration")
        ax.plot(filled["mean_score"], filled["frac_positive"], "o-", color=_INFRINGING)
        traffic = ax.twinx()
        width = table["upper"] - table["lower"]
        traffic.bar(table["lower"], table["count"], width=width, align="edge", alpha=0.2)
        traffic.set_ylabel("listings per bin")
        ax.set(xlabel="mean score in bin", ylabel="infringing rate in bin", title="Reliability")
        ax.set(xlim=(0, 1), ylim=(0, 1))
        ax.legend(loc="upper left")
    return Path(path)


def plot_score_histogram(
    scores: Any, labels: Any, path: str | Path, policy: Policy | None = None
) -> Path:
    """Score distribution per true class (log counts); with a policy, the lane thresholds."""
    s, y = check_scores_labels(scores, labels, where="plot_score_histogram")
    lo, hi = (0.0, 1.0) if s.size == 0 or (s.min() >= 0 and s.max() <= 1) else (s.min(), s.max())
    bins = np.linspace(lo, hi, 41)
    with _figure(path, size=(6.0, 4.0)) as ax:
        ax.hist(s[y == 0], bins=bins, alpha=0.6, color=_GENUINE, label="genuine")
        ax.hist(s[y == 1], bins=bins, alpha=0.6, color=_INFRINGING, label="infringing")
        if policy is not None:
            ax.axvline(policy.approve_threshold, color=_LANE_COLOURS["approve"], label="approve <")
            ax.axvline(policy.reject_threshold, color=_LANE_COLOURS["reject"], label="reject >=")
        if s.size:
            ax.set_yscale("log")
        ax.set(xlabel="score", ylabel="listings", title="Scores by true class")
        _legend_below(ax, ncol=4)
    return Path(path)


def plot_lanes(scores: Any, labels: Any, policy: Policy, path: str | Path) -> Path:
    """Share of all traffic per lane, stacked by true class: what reviewers and sellers see."""
    s, y = check_scores_labels(scores, labels, where="plot_lanes")
    decisions = policy.decide(s)
    n = max(s.size, 1)
    genuine = np.array([((decisions == d) & (y == 0)).sum() / n for d in DECISIONS])
    infringing = np.array([((decisions == d) & (y == 1)).sum() / n for d in DECISIONS])
    with _figure(path) as ax:
        x = np.arange(len(DECISIONS))
        ax.bar(x, genuine, color=_GENUINE, label="genuine")
        ax.bar(x, infringing, bottom=genuine, color=_INFRINGING, label="infringing")
        for i, total in enumerate(genuine + infringing):
            ax.annotate(f"{total:.1%}", (x[i], total), ha="center", va="bottom")
        ax.set_xticks(x, list(DECISIONS))
        ax.set(ylabel="share of all listings", title="Traffic per lane")
        ax.set_ylim(0, max(1e-9, float((genuine + infringing).max())) * 1.15)
        _legend_below(ax, ncol=2)
    return Path(path)
