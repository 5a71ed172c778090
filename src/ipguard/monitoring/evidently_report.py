"""Evidently's data-drift report of a traffic window against a stored reference profile.

Evidently compares two DataFrames, and a profile keeps no rows, so the reference frame is
rebuilt from the profile: each numeric feature from its bounded random sample, each
categorical feature as its stored value counts scaled to the same number of rows. Columns are
drawn independently, which is all a per-column drift test looks at (the joint distribution is
not kept, and no check here needs it). Evidently's verdicts are a second opinion beside
ipguard's own checks (:mod:`ipguard.monitoring.drift`), and its share of drifted columns is
the ``dataset_drift_share`` check.

Evidently is imported only here, inside :func:`evidently_drift`, with its telemetry off
(``DO_NOT_TRACK``): nothing that serves a model ever loads it. Evidently 0.7.23 imports
``pandas.core.dtypes.common.infer_dtype_from_object``, which pandas 3 removed, for one legacy
test class this module never runs; the name is put back (as numpy's dtype lookup) before the
import when pandas lacks it, and nowhere else.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ipguard.monitoring.profile import Profile
from ipguard.monitoring.window import TrafficWindow

__all__ = ["EvidentlyDrift", "evidently_drift", "reference_frame", "traffic_frame"]


@dataclass
class EvidentlyDrift:
    """What Evidently said: the share of drifted columns and each column's test."""

    drift_share: float
    drifted_columns: int
    columns: dict[str, dict[str, Any]] = field(default_factory=dict)
    html: Path | None = None


def reference_frame(profile: Profile, columns: Sequence[str], seed: int = 0) -> pd.DataFrame:
    """A DataFrame standing in for the reference rows (see the module docstring)."""
    rng = np.random.default_rng(seed)
    numeric = [c for c in columns if c in profile.numeric]
    rows = max((len(profile.numeric[c].sample) for c in numeric), default=0) or min(
        profile.rows, 1000
    )
    out: dict[str, Any] = {}
    for column in columns:
        if column in profile.numeric:
            sample = np.asarray(profile.numeric[column].sample, dtype=np.float64)
            out[column] = (
                rng.choice(sample, rows, replace=len(sample) < rows)
                if len(sample)
                else (np.full(rows, np.nan))
            )
        else:
            out[column] = rng.permutation(_scaled(_counts_of(profile, column), rows))
    return pd.DataFrame(out)


def _counts_of(profile: Profile, column: str) -> dict[str, int]:
    return profile.lanes if column == "decision" else profile.categorical[column]


def _scaled(counts: dict[str, int], rows: int) -> np.ndarray:
    """``rows`` values in the proportions of ``counts`` (largest remainders get the rest)."""
    keys = list(counts)
    total = sum(counts.values())
    exact = np.asarray([counts[k] for k in keys], dtype=np.float64) * rows / max(total, 1)
    whole = np.floor(exact).astype(int)
    for i in np.argsort(whole - exact)[: rows - int(whole.sum())]:
        whole[i] += 1
    return np.repeat(np.asarray(keys, dtype=object), whole)


def traffic_frame(
    traffic: pd.DataFrame | TrafficWindow, profile: Profile, columns: Sequence[str]
) -> pd.DataFrame:
    """The traffic's values of ``columns``, derived exactly as the profile's were."""
    numeric = [c for c in columns if c in profile.numeric]
    categorical = [c for c in columns if c not in profile.numeric and c != "decision"]
    window = TrafficWindow.of_traffic(traffic, profile, numeric, categorical)
    return window.values_frame(columns)


def _import_evidently() -> Any:
    os.environ.setdefault("DO_NOT_TRACK", "1")
    import pandas.core.dtypes.common as dtypes

    if not hasattr(dtypes, "infer_dtype_from_object"):
        dtypes.infer_dtype_from_object = lambda kind: np.dtype(kind).type  # type: ignore[attr-defined]
    import evidently

    return evidently


def evidently_drift(
    profile: Profile,
    traffic: pd.DataFrame | TrafficWindow,
    columns: Sequence[str],
    html_path: Path | None,
    *,
    drift_share: float,
    psi_threshold: float,
) -> EvidentlyDrift:
    """Evidently's ``DataDriftPreset`` over ``columns``, each column tested by PSI at
    ``psi_threshold``; its HTML report to ``html_path``.

    PSI rather than Evidently's default tests: for windows under 1,000 rows those are
    chi-square and Kolmogorov-Smirnov p-values, which call any real marketplace's day-to-day
    wobble significant once a window is large, and switch to distances above that size, so the
    verdict would change with the window's size rather than with the traffic."""
    evidently = _import_evidently()
    from evidently.presets import DataDriftPreset

    numeric = [c for c in columns if c in profile.numeric]
    definition = evidently.DataDefinition(
        numerical_columns=numeric, categorical_columns=[c for c in columns if c not in numeric]
    )
    reference = evidently.Dataset.from_pandas(
        reference_frame(profile, columns), data_definition=definition
    )
    current = evidently.Dataset.from_pandas(
        traffic_frame(traffic, profile, columns), data_definition=definition
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        preset = DataDriftPreset(method="psi", threshold=psi_threshold, drift_share=drift_share)
        snapshot = evidently.Report([preset]).run(current, reference)
    if html_path is not None:
        snapshot.save_html(str(html_path))
    return _read(json.loads(snapshot.json()), html_path)


def _read(result: dict[str, Any], html: Path | None) -> EvidentlyDrift:
    """The numbers out of the snapshot's JSON: the drifted-columns count, each ValueDrift."""
    share, count, columns = float("nan"), 0, {}
    for metric in result.get("metrics", []):
        config = metric.get("config", {})
        kind = str(config.get("type", ""))
        if kind.endswith("DriftedColumnsCount"):
            share = float(metric["value"]["share"])
            count = int(metric["value"]["count"])
        elif kind.endswith("ValueDrift"):
            value = float(metric["value"])
            threshold = float(config.get("threshold", 0.05))
            method = str(config.get("method", ""))
            # p-value tests drift below the threshold; distances (PSI, Wasserstein...) above it
            drifted = value < threshold if "p_value" in method else value >= threshold
            columns[str(config["column"])] = {
                "method": method,
                "value": value,
                "threshold": threshold,
                "drifted": bool(drifted),
            }
    return EvidentlyDrift(share, count, columns, html)
