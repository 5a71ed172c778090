"""The figures of a monitoring report: reference against traffic, one PNG per question.

Drawn on ``matplotlib.figure.Figure`` with its own Agg canvas (no ``pyplot``), so a scheduled
job leaks no figures and a notebook keeps its backend. Every panel shows shares, not counts:
a reference of 400 validation rows and a window of 50,000 listings are on one scale.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ipguard.monitoring.drift import Check
from ipguard.monitoring.features import (
    LANES,
    flag_counts,
    lane_counts,
)
from ipguard.monitoring.profile import Profile, bin_counts
from ipguard.monitoring.window import TrafficWindow

__all__ = ["plot_report"]

_REFERENCE, _TRAFFIC = "#4c72b0", "#dd8452"
_TOP_VALUES = 12


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, format="png")
    return path


def _grid(panels: int, width: float = 4.2, height: float = 3.2) -> tuple[Figure, list[Axes]]:
    cols = min(panels, 3)
    rows = -(-panels // cols)
    fig = Figure(figsize=(width * cols, height * rows), dpi=90, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[panels:]:
        ax.set_visible(False)
    return fig, axes[:panels]


def _paired(
    ax: Axes, labels: Sequence[str], ref: Sequence[float], cur: Sequence[float], title: str
) -> None:
    """Reference and traffic shares side by side, one pair of bars per label."""
    ref_share = np.asarray(ref, float) / max(float(np.sum(ref)), 1.0)
    cur_share = np.asarray(cur, float) / max(float(np.sum(cur)), 1.0)
    x = np.arange(len(labels))
    ax.bar(x - 0.2, ref_share, 0.4, label="reference", color=_REFERENCE)
    ax.bar(x + 0.2, cur_share, 0.4, label="traffic", color=_TRAFFIC)
    ax.set_xticks(x, labels, rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("share of rows")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)


def _bin_labels(edges: Sequence[float], missing: bool) -> list[str]:
    bounds = ["-inf", *(f"{e:.3g}" for e in edges), "inf"]
    labels = [f"({a}, {b}]" for a, b in itertools.pairwise(bounds)]
    return [*labels, "missing"] if missing else labels


def _numeric_panel(ax: Axes, profile: Profile, name: str, values: np.ndarray, title: str) -> None:
    summary = profile.numeric[name]
    ref = [*summary.counts, summary.missing]
    cur = bin_counts(values, summary.edges)
    missing = bool(ref[-1] or cur[-1])
    if not missing:
        ref, cur = ref[:-1], cur[:-1]
    _paired(ax, _bin_labels(summary.edges, missing), ref, cur, title)


def _categorical_panel(ax: Axes, ref: dict[str, int], cur: dict[str, int], title: str) -> None:
    keys = sorted(set(ref) | set(cur), key=lambda k: -(ref.get(k, 0) + cur.get(k, 0)))
    keys = keys[:_TOP_VALUES]
    _paired(ax, keys, [ref.get(k, 0) for k in keys], [cur.get(k, 0) for k in keys], title)


def _slice_panel(ax: Axes, checks: Sequence[Check]) -> None:
    """Each slice's score PSI against the threshold it was held to."""
    rows = [c for c in checks if c.check == "score_psi" and c.slice_column is not None]
    if not rows:
        ax.text(0.5, 0.5, "no slice large enough to compare", ha="center", va="center")
        ax.set_axis_off()
        return
    y = np.arange(len(rows))
    colours = ["#c44e52" if c.drifted else _REFERENCE for c in rows]
    ax.barh(y, [c.statistic or 0.0 for c in rows], color=colours)
    ax.scatter([c.threshold for c in rows], y, marker="|", color="black", s=120, label="threshold")
    ax.set_yticks(y, [c.where for c in rows], fontsize=7)
    ax.set_xlabel("score PSI")
    ax.set_title("score drift per slice (red: drifted)", fontsize=9)
    ax.legend(fontsize=7)


def plot_report(
    profile: Profile,
    traffic: pd.DataFrame | TrafficWindow,
    checks: Sequence[Check],
    folder: Path,
    *,
    numeric: Sequence[str],
    categorical: Sequence[str],
) -> list[Path]:
    """``scores.png`` (score bins and lanes), ``inputs.png`` (each input feature, flags) and
    ``slices.png`` (score PSI per slice) under ``folder``; ``traffic`` may be a window already
    derived for ``numeric`` and ``categorical``."""
    folder.mkdir(parents=True, exist_ok=True)
    window = TrafficWindow.of_traffic(traffic, profile, [*numeric, "score"], categorical)
    fig, (scores, lanes) = _grid(2)
    _numeric_panel(scores, profile, "score", window.numeric["score"], "score")
    cur_lanes = lane_counts(window.decisions)
    _paired(
        lanes,
        list(LANES),
        [profile.lanes[x] for x in LANES],
        [cur_lanes[x] for x in LANES],
        "decision lanes",
    )
    written = [_save(fig, folder / "scores.png")]
    inputs = [n for n in numeric if n != "score"]
    fig, axes = _grid(len(inputs) + len(categorical) + 1)
    for ax, name in zip(axes, inputs, strict=False):
        _numeric_panel(ax, profile, name, window.numeric[name], name)
    for ax, column in zip(axes[len(inputs) :], categorical, strict=False):
        cur = window.category_counts(column)
        _categorical_panel(ax, profile.categorical[column], cur, column)
    cur_flags = flag_counts(window.flags)
    keys = sorted(set(profile.flags) | set(cur_flags))
    if not keys:
        axes[-1].text(0.5, 0.5, "no row flagged on either side", ha="center", va="center")
    axes[-1].bar(
        np.arange(len(keys)) - 0.2,
        [profile.flags.get(k, 0) / profile.rows for k in keys],
        0.4,
        color=_REFERENCE,
        label="reference",
    )
    axes[-1].bar(
        np.arange(len(keys)) + 0.2,
        [cur_flags.get(k, 0) / max(len(window), 1) for k in keys],
        0.4,
        color=_TRAFFIC,
        label="traffic",
    )
    axes[-1].set_xticks(np.arange(len(keys)), keys, rotation=45, ha="right", fontsize=7)
    axes[-1].set_title("rows with each flag", fontsize=9)
    axes[-1].legend(fontsize=7)
    written.append(_save(fig, folder / "inputs.png"))
    slice_rows = sum(1 for c in checks if c.check == "score_psi" and c.slice_column)
    fig = Figure(figsize=(6, 1.5 + 0.25 * max(slice_rows, 2)), dpi=90, layout="constrained")
    FigureCanvasAgg(fig)
    _slice_panel(fig.add_subplot(), checks)
    written.append(_save(fig, folder / "slices.png"))
    return written
