"""Each check of a traffic window against a reference profile, and the rule that flags it.

The statistics are computed here with numpy rather than by a drift library, because a profile
stores counts per bin and per slice (kilobytes), not the reference rows a library wants; the
same counts give an exact PSI overall and for each market, language and category. Evidently
runs beside these checks on the reference rebuilt from the profile's samples
(:mod:`ipguard.monitoring.evidently_report`) for its report and its dataset-drift share.

The rules are built so that a scheduler can page on them without crying wolf:

* PSI (population stability index) over the reference's quantile bins, with half a row added
  to every bin (an empty bin would make it infinite). Bins are merged until each holds about
  ``bin_rows`` rows of the smaller side, and a PSI counts as drift only above
  ``threshold + (bins - 1) * (1/n_reference + 1/n_traffic)``: the PSI two samples of the
  same distribution reach by chance alone (its expectation under no drift), so a small slice
  needs a larger shift to alarm than the whole window.
* A lane's or a flag's share is drifted when it moved by at least ``points`` percentage
  points *and* the move is ``z`` standard errors away from no change (a two-proportion test):
  ten points in a slice of 30 listings is noise, in a window of 10,000 it is not.
* A slice with fewer than ``min_rows`` rows on either side is reported as skipped, never
  flagged; a value the reference never saw (a new market, a new category) is a finding of its
  own once it has ``new_value_rows`` rows.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ipguard.monitoring.features import (
    LANES,
    MISSING,
    flag_counts,
    lane_counts,
)
from ipguard.monitoring.profile import Profile, bin_counts
from ipguard.monitoring.window import TrafficWindow

__all__ = ["Check", "Thresholds", "compare", "psi"]

_SMOOTHING = 0.5
#: numeric features compared on the whole window only: a slice's reference has half its rows
#: for ``unknown_words`` (see ipguard.monitoring.profile), from a few dozen sellers whose own
#: words dominate it, and on the demo a fresh draw's slices differed from it by PSI 0.6-0.9
OVERALL_ONLY = frozenset({"unknown_words"})


@dataclass(frozen=True)
class Thresholds:
    """When a check counts as drift (``monitor.yaml``'s ``thresholds``)."""

    score_psi: float = 0.2
    """PSI of the score distribution, over what chance alone reaches."""
    feature_psi: float = 0.2
    """PSI of an input feature (numeric or categorical), over what chance alone reaches."""
    slice_psi: float = 0.3
    """PSI of the score or an input feature within one market, language or category: higher
    than overall, because listings come in clusters (a seller posts many alike), so a slice of
    a few hundred rows holds far fewer independent draws than its row count says."""
    lane_points: float = 10.0
    """Change of a decision lane's share, in percentage points ..."""
    flag_points: float = 10.0
    """... and of a flag's share (``image_missing`` is image presence) ..."""
    z: float = 3.0
    """... that is also this many standard errors from no change."""
    min_rows: int = 200
    """Rows a slice needs on both sides before it is compared at all."""
    new_value_rows: int = 5
    """Rows of a market / language / category / currency value unseen in the reference."""
    drift_share: float = 0.5
    """Evidently's share of drifted columns that counts as dataset drift."""
    bin_rows: int = 25
    """Rows of the smaller side per PSI bin: bins are merged until each has about this many."""

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ValueError(f"thresholds.{name}: expected a number >= 0, found {value!r}")
        if self.bin_rows < 1 or self.min_rows < 1:
            raise ValueError("thresholds.min_rows and thresholds.bin_rows: expected >= 1")


@dataclass
class Check:
    """One comparison: its statistic, the threshold it was held to, and whether it drifted."""

    check: str
    """``score_psi``, ``lane_rate``, ``feature_psi``, ``flag_share``, ``new_value``, ``slice``
    (a slice too small to compare) or ``dataset_drift_share`` (Evidently)."""
    feature: str
    statistic: float | None
    threshold: float
    drifted: bool
    reference_rows: int
    traffic_rows: int
    slice_column: str | None = None
    slice_value: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return "overall" if self.slice_column is None else f"{self.slice_column}={self.slice_value}"

    def describe(self) -> str:
        stat = "n/a" if self.statistic is None else f"{self.statistic:.4g}"
        return (
            f"{self.check} {self.feature} [{self.where}]: {stat} (threshold {self.threshold:.4g})"
        )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["where"] = self.where
        return out


def psi(reference: Sequence[float], traffic: Sequence[float]) -> float:
    """Population stability index of two count vectors over the same bins (smoothed)."""
    ref = np.asarray(reference, dtype=np.float64) + _SMOOTHING
    cur = np.asarray(traffic, dtype=np.float64) + _SMOOTHING
    p, q = ref / ref.sum(), cur / cur.sum()
    return float(np.sum((q - p) * np.log(q / p)))


def _merge(ref: list[int], cur: list[int], bin_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Adjacent bins merged until the smaller side has about ``bin_rows`` rows per bin; the
    missing-value count (last) stays a bin of its own when either side has any."""
    body_ref, body_cur = np.asarray(ref[:-1]), np.asarray(cur[:-1])
    n = min(body_ref.sum(), body_cur.sum())
    groups = int(np.clip(n // bin_rows, 2, max(len(body_ref), 2)))
    groups = min(groups, len(body_ref)) if len(body_ref) else 0
    parts = np.array_split(np.arange(len(body_ref)), groups) if groups else []
    merged_ref = [body_ref[p].sum() for p in parts]
    merged_cur = [body_cur[p].sum() for p in parts]
    if ref[-1] or cur[-1]:
        merged_ref.append(ref[-1])
        merged_cur.append(cur[-1])
    return np.asarray(merged_ref), np.asarray(merged_cur)


def _psi_check(
    check: str,
    feature: str,
    ref: list[int],
    cur: list[int],
    threshold: float,
    t: Thresholds,
    **where: Any,
) -> Check:
    merged_ref, merged_cur = _merge(ref, cur, t.bin_rows)
    n_ref, n_cur = int(sum(ref)), int(sum(cur))
    return _psi_of(check, feature, merged_ref, merged_cur, threshold, n_ref, n_cur, **where)


def _psi_of(
    check: str,
    feature: str,
    ref: np.ndarray,
    cur: np.ndarray,
    threshold: float,
    n_ref: int,
    n_cur: int,
    **where: Any,
) -> Check:
    chance = (len(ref) - 1) * (1 / max(n_ref, 1) + 1 / max(n_cur, 1))
    value = psi(ref, cur) if len(ref) > 1 else 0.0
    return Check(
        check,
        feature,
        value,
        threshold + chance,
        bool(value >= threshold + chance),
        n_ref,
        n_cur,
        detail={"bins": len(ref), "psi_by_chance": chance, "configured": threshold},
        **where,
    )


def _share_check(
    check: str,
    feature: str,
    k_ref: int,
    n_ref: int,
    k_cur: int,
    n_cur: int,
    points: float,
    z: float,
    **where: Any,
) -> Check:
    p_ref, p_cur = k_ref / max(n_ref, 1), k_cur / max(n_cur, 1)
    pooled = (k_ref + k_cur) / max(n_ref + n_cur, 1)
    se = math.sqrt(pooled * (1 - pooled) * (1 / max(n_ref, 1) + 1 / max(n_cur, 1)))
    change = 100 * (p_cur - p_ref)
    score = abs(p_cur - p_ref) / se if se > 0 else 0.0
    return Check(
        check,
        feature,
        abs(change),
        points,
        bool(abs(change) >= points and score >= z),
        n_ref,
        n_cur,
        detail={
            "reference_share": p_ref,
            "traffic_share": p_cur,
            "change_points": change,
            "z": score,
            "z_threshold": z,
        },
        **where,
    )


def _category_check(
    feature: str, ref: Mapping[str, int], cur: Mapping[str, int], t: Thresholds, **where: Any
) -> Check:
    keys = sorted(set(ref) | set(cur))
    ref_counts = np.asarray([ref.get(k, 0) for k in keys])
    cur_counts = np.asarray([cur.get(k, 0) for k in keys])
    return _psi_of(
        "feature_psi",
        feature,
        ref_counts,
        cur_counts,
        t.feature_psi,
        int(ref_counts.sum()),
        int(cur_counts.sum()),
        **where,
    )


def compared_columns(profile: Profile, chosen: Collection[str]) -> tuple[list[str], list[str]]:
    """The numeric (the score always) and categorical columns of ``profile`` that
    :func:`compare` checks for the input features ``chosen``, in the profile's order."""
    numeric = [n for n in profile.numeric if n == "score" or n in chosen]
    return numeric, [c for c in profile.categorical if c in chosen]


def compare(
    profile: Profile,
    traffic: pd.DataFrame | TrafficWindow,
    thresholds: Thresholds,
    *,
    features: Sequence[str] | None = None,
) -> list[Check]:
    """Every check of ``traffic`` (the model's output plus request columns, or a window of it
    already derived for these ``features``) against ``profile``; ``features`` limits the input
    features compared (default: all it holds). The caller has checked that ``traffic`` has the
    columns they need."""
    chosen = set([*profile.features, "flags"] if features is None else features)
    numeric, categorical = compared_columns(profile, chosen)
    window = TrafficWindow.of_traffic(traffic, profile, numeric, categorical)
    t = thresholds
    checks = _overall(profile, window, numeric, categorical, "flags" in chosen, t)
    for column in profile.slices:
        if column in window.categories:
            checks += _slices(profile, window, column, numeric, t)
    return checks


def _overall(
    profile: Profile,
    w: TrafficWindow,
    numeric: list[str],
    categorical: list[str],
    flags: bool,
    t: Thresholds,
) -> list[Check]:
    n_ref, n_cur = profile.rows, len(w.frame)
    checks = []
    for name in numeric:
        summary = profile.numeric[name]
        ref = [*summary.counts, summary.missing]
        cur = bin_counts(w.numeric[name], summary.edges)
        kind, limit = (
            ("score_psi", t.score_psi) if name == "score" else ("feature_psi", t.feature_psi)
        )
        checks.append(_psi_check(kind, name, ref, cur, limit, t))
    lanes = lane_counts(w.decisions)
    for lane in LANES:
        checks.append(
            _share_check(
                "lane_rate",
                lane,
                profile.lanes[lane],
                n_ref,
                lanes[lane],
                n_cur,
                t.lane_points,
                t.z,
            )
        )
    for column in categorical:
        seen = profile.categorical[column]
        counts = {str(k): int(v) for k, v in w.categories[column].value_counts().items()}
        checks.append(_category_check(column, seen, counts, t))
        for value, rows in sorted(counts.items()):
            if value not in seen and value != MISSING:
                checks.append(
                    Check(
                        "new_value",
                        column,
                        float(rows),
                        float(t.new_value_rows),
                        rows >= t.new_value_rows,
                        n_ref,
                        n_cur,
                        detail={"value": value, "share": rows / max(n_cur, 1)},
                    )
                )
    if flags:
        cur_flags = flag_counts(w.flags)
        for flag in sorted(set(profile.flags) | set(cur_flags)):
            checks.append(
                _share_check(
                    "flag_share",
                    flag,
                    profile.flags.get(flag, 0),
                    n_ref,
                    cur_flags.get(flag, 0),
                    n_cur,
                    t.flag_points,
                    t.z,
                )
            )
    return checks


def _slices(
    profile: Profile, w: TrafficWindow, column: str, numeric: list[str], t: Thresholds
) -> list[Check]:
    checks = []
    values = w.categories[column]
    for value, index in values.groupby(values).groups.items():
        ref = profile.slices[column].get(str(value))
        if ref is None:
            continue  # a value the reference never saw: the overall new_value check says so
        rows = w.frame.index.get_indexer(index)
        where = {"slice_column": column, "slice_value": str(value)}
        if min(ref.rows, len(rows)) < t.min_rows:
            checks.append(
                Check(
                    "slice",
                    "rows",
                    float(min(ref.rows, len(rows))),
                    float(t.min_rows),
                    False,
                    ref.rows,
                    len(rows),
                    detail={"skipped": "too few rows to compare"},
                    **where,
                )
            )
            continue
        for name in numeric:
            if name in OVERALL_ONLY:
                continue
            cur = bin_counts(w.numeric[name][rows], profile.numeric[name].edges)
            kind = "score_psi" if name == "score" else "feature_psi"
            checks.append(_psi_check(kind, name, ref.counts[name], cur, t.slice_psi, t, **where))
        lanes = lane_counts(w.decisions[rows])
        for lane in LANES:
            checks.append(
                _share_check(
                    "lane_rate",
                    lane,
                    ref.lanes[lane],
                    ref.rows,
                    lanes[lane],
                    len(rows),
                    t.lane_points,
                    t.z,
                    **where,
                )
            )
    return checks
