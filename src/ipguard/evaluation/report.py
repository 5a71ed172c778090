"""One evaluation, written as a folder a reviewer can read without running anything.

``report.md`` ties together the headline figures with confidence intervals, what each lane of
the policy receives, per-slice tables and the plots; ``metrics.csv`` and ``slices.csv`` hold
the same numbers for machines (MLflow artifacts, promotion gates, dashboards).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from ipguard.data.columns import DECISIONS
from ipguard.evaluation.metrics import headline_metrics, metrics_with_ci
from ipguard.evaluation.plots import (
    plot_lanes,
    plot_pr,
    plot_reliability,
    plot_roc,
    plot_score_histogram,
)
from ipguard.evaluation.policy import Policy, check_scores_labels
from ipguard.evaluation.slices import RESULT_COLUMNS, sliced_metrics

SLICE_ROWS_IN_MARKDOWN = 20
"""Largest slices shown per column in report.md; slices.csv always has all of them."""

_PLOT_TITLES = {
    "roc": "ROC",
    "pr": "Precision-recall",
    "reliability": "Reliability",
    "score_histogram": "Scores by true class",
    "lanes": "Traffic per lane",
}


@dataclass
class EvaluationReport:
    """What :func:`build_report` wrote, as objects, so callers can log them without re-reading."""

    metrics: pd.DataFrame
    """``metrics_with_ci`` rows: metric, value, ci_low, ci_high."""
    headline: dict[str, float]
    """``headline_metrics`` with the policy."""
    slices: pd.DataFrame
    """``sliced_metrics`` over every slice column present."""
    plots: dict[str, Path]
    """Plot name -> PNG path."""
    markdown_path: Path


def build_report(
    frame: pd.DataFrame,
    policy: Policy,
    out_dir: str | Path,
    *,
    title: str = "ipguard evaluation",
    model_uri: str | None = None,
    n_boot: int = 200,
    seed: int = 0,
) -> EvaluationReport:
    """Evaluate ``frame`` (``score`` = calibrated P(infringing), ``label``, slice columns).

    Writes ``report.md``, ``metrics.csv``, ``slices.csv`` and five PNGs into ``out_dir``
    (created if needed); image links in the Markdown are relative, so the folder can be moved
    or uploaded as one artifact.
    """
    missing = [c for c in ("score", "label") if c not in frame.columns]
    if missing:
        raise ValueError(
            f"build_report: expected columns 'score' and 'label', missing {missing}; "
            f"found {list(frame.columns)}"
        )
    if len(frame) == 0:
        raise ValueError("build_report: expected at least one listing, found an empty frame")
    scores, labels = check_scores_labels(
        frame["score"].to_numpy(), frame["label"].to_numpy(), where="build_report"
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    metrics = metrics_with_ci(scores, labels, policy, n_boot=n_boot, seed=seed)
    headline = headline_metrics(scores, labels, policy)
    slices = sliced_metrics(frame, policy=policy)
    plots = {
        "roc": plot_roc(scores, labels, out / "roc.png"),
        "pr": plot_pr(scores, labels, out / "pr.png", policy),
        "reliability": plot_reliability(scores, labels, out / "reliability.png"),
        "score_histogram": plot_score_histogram(
            scores, labels, out / "score_histogram.png", policy
        ),
        "lanes": plot_lanes(scores, labels, policy, out / "lanes.png"),
    }
    metrics.to_csv(out / "metrics.csv", index=False)
    slices.to_csv(out / "slices.csv", index=False)

    sections = [
        _header(title, model_uri, scores, labels),
        _policy_section(policy),
        _headline_section(metrics, headline, n_boot),
        _lane_section(scores, labels, policy),
        _plots_section(plots, out),
        _slices_section(slices),
    ]
    markdown_path = out / "report.md"
    markdown_path.write_text("\n\n".join(sections) + "\n", encoding="utf-8")
    return EvaluationReport(
        metrics=metrics, headline=headline, slices=slices, plots=plots, markdown_path=markdown_path
    )


def _header(title: str, model_uri: str | None, scores: np.ndarray, labels: np.ndarray) -> str:
    positives = int(labels.sum())
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            f"# {_cell(title)}",
            "",
            f"- Model: `{model_uri}`" if model_uri else "- Model: not given",
            f"- Listings: {scores.size} ({positives} infringing, {scores.size - positives} "
            f"genuine; base rate {_fmt(positives / scores.size)})",
            f"- Generated: {stamp}",
        ]
    )


def _policy_section(policy: Policy) -> str:
    rows = [
        ["reject if score >=", _fmt(policy.reject_threshold, 4)],
        ["approve if score <", _fmt(policy.approve_threshold, 4)],
        ["target precision (reject lane)", _fmt(policy.target_precision)],
        ["target recall (reject + review)", _fmt(policy.target_recall)],
        ["review capacity (share of traffic)", _fmt(policy.review_capacity)],
        ["confidence the reject precision was proven at", _fmt(policy.confidence)],
        ["listings in the reject lane when fitted", _fmt(policy.reject_support)],
        ["95% lower bound of its precision then", _fmt(policy.precision_lower_bound, 4)],
    ]
    parts = ["## Policy", "", _table(["setting", "value"], rows)]
    if policy.notes:
        parts += ["", "Notes from fitting:", ""] + [f"- **{_cell(n)}**" for n in policy.notes]
    return "\n".join(parts)


def _headline_section(metrics: pd.DataFrame, headline: dict[str, float], n_boot: int) -> str:
    rows = [
        [r.metric, _fmt(r.value), f"[{_fmt(r.ci_low)}, {_fmt(r.ci_high)}]"]
        for r in metrics.itertuples(index=False)
    ]
    with_ci = set(metrics["metric"])
    rows += [
        [name, _fmt(headline[name]), "-"]
        for name in ("f1", "ece")
        if name in headline and name not in with_ci
    ]
    return "\n".join(
        [
            "## Headline",
            "",
            f"95% intervals from {n_boot} bootstrap resamples stratified by label. "
            "`f1` is at score 0.5; `ece` is the expected calibration error (15 bins).",
            "",
            _table(["metric", "value", "95% CI"], rows),
        ]
    )


def _lane_section(scores: np.ndarray, labels: np.ndarray, policy: Policy) -> str:
    decisions = policy.decide(scores)
    positives = int(labels.sum())
    rows = []
    for lane in DECISIONS:
        in_lane = decisions == lane
        count, infringing = int(in_lane.sum()), int(labels[in_lane].sum())
        rows.append(
            [
                lane,
                str(count),
                _fmt(count / scores.size),
                _fmt(infringing / count if count else math.nan),
                _fmt(infringing / positives if positives else math.nan),
            ]
        )
    header = ["lane", "listings", "share of traffic", "infringing in lane", "share of infringing"]
    return "\n".join(
        [
            "## Lanes",
            "",
            "`infringing in lane` for reject is the precision of automatic removal; "
            "`share of infringing` for approve is the miss rate.",
            "",
            _table(header, rows),
        ]
    )


def _plots_section(plots: dict[str, Path], out: Path) -> str:
    parts = ["## Plots"]
    for name, path in plots.items():
        link = Path(path).relative_to(out).as_posix()
        parts += ["", f"### {_PLOT_TITLES[name]}", "", f"![{_PLOT_TITLES[name]}]({link})"]
    return "\n".join(parts)


def _slices_section(slices: pd.DataFrame) -> str:
    parts = [
        "## Slices",
        "",
        "Per-slice figures under the same policy (all slices in `slices.csv`). An "
        "`infringement_type` slice is that type's infringing listings plus all genuine ones.",
    ]
    skipped = slices.attrs.get("skipped", [])
    if skipped:
        parts += ["", f"Columns not in the data: {', '.join(f'`{c}`' for c in skipped)}."]
    small = slices.attrs.get("below_min_count", [])
    if small:
        parts += ["", f"{len(small)} slice(s) below the minimum size are not shown."]
    shown = [c for c in RESULT_COLUMNS if c != "column"]
    for column, group in slices.groupby("column", sort=False):
        rows = [
            [_cell(str(r["value"]))] + [_fmt(r[c]) for c in shown[1:]]
            for _, r in group.head(SLICE_ROWS_IN_MARKDOWN).iterrows()
        ]
        parts += ["", f"### {column}", "", _table(shown, rows)]
        if len(group) > SLICE_ROWS_IN_MARKDOWN:
            parts += ["", f"{len(group) - SLICE_ROWS_IN_MARKDOWN} smaller slice(s) in slices.csv."]
    return "\n".join(parts)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(text: str) -> str:
    """Escape what would break a Markdown table row or vanish as HTML (e.g. ``<missing>``)."""
    return (
        text.replace("\\", "\\\\")
        .replace("|", "\\|")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("\n", " ")
    )


def _fmt(value: float | int | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"
