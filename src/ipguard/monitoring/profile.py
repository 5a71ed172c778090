"""The reference profile: what a model saw on its validation rows, stored in its folder.

Monitoring must need nothing but the model and the traffic, so every exported listing model
carries ``reference_profile.json`` next to its policy: the validation scores' distribution,
the decision-lane counts under the model's own policy, and summaries of the inputs that matter
(:mod:`ipguard.monitoring.features`), overall and per market, language and category.

Numeric features are stored as counts over the reference's own quantile bins (so a traffic
window is binned on the same edges and PSI is exact, per slice too), plus quantiles and a
bounded random sample (what a drift library that wants two DataFrames is given, see
:mod:`ipguard.monitoring.evidently_report`). Categorical features are stored as counts per
value. The file is kilobytes whatever the validation set's size: a sample is capped at
``sample_size`` and only values and slices are counted, never rows kept.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ipguard.monitoring.features import (
    CATEGORICAL,
    NUMERIC,
    SLICE_COLUMNS,
    categorical_values,
    flag_counts,
    flag_sets,
    lane_counts,
    numeric_values,
    price_reference,
)

__all__ = [
    "PROFILE_FILE",
    "SCHEMA_VERSION",
    "NumericSummary",
    "Profile",
    "SliceSummary",
    "bin_counts",
    "build_profile",
    "load_profile",
]

PROFILE_FILE = "reference_profile.json"
SCHEMA_VERSION = 1
DEFAULT_BINS = 10
DEFAULT_SAMPLE = 500
_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
_REQUIRED = ("score", "decision")


@dataclass
class NumericSummary:
    """One numeric feature: counts over ``edges`` (inner bin edges), missing, a sample."""

    edges: list[float]
    counts: list[int]
    missing: int
    quantiles: dict[str, float] = field(default_factory=dict)
    mean: float | None = None
    sample: list[float] = field(default_factory=list)


@dataclass
class SliceSummary:
    """One slice (a market, a language, a category): its rows, lanes, bins and flags."""

    rows: int
    lanes: dict[str, int]
    counts: dict[str, list[int]]
    """Per numeric feature, counts over the overall summary's edges, missing last."""
    flags: dict[str, int] = field(default_factory=dict)


@dataclass
class Profile:
    """A model's reference, read back from ``reference_profile.json``."""

    rows: int
    source: str
    policy: dict[str, float]
    lanes: dict[str, int]
    numeric: dict[str, NumericSummary]
    categorical: dict[str, dict[str, int]]
    flags: dict[str, int]
    price_reference: dict[str, dict[str, float]]
    slices: dict[str, dict[str, SliceSummary]]
    schema_version: int = SCHEMA_VERSION

    @property
    def features(self) -> list[str]:
        """The input features this profile can be compared on (not the score)."""
        return [n for n in self.numeric if n != "score"] + list(self.categorical)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "profile") -> Profile:
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(
                f"{where}: reference profile schema_version {version!r} is not supported by "
                f"this ipguard (expects {SCHEMA_VERSION}); upgrade ipguard or re-export the model"
            )
        try:
            return cls(
                rows=int(data["rows"]),
                source=str(data["source"]),
                policy=dict(data["policy"]),
                lanes={k: int(v) for k, v in data["lanes"].items()},
                numeric={k: NumericSummary(**v) for k, v in data["numeric"].items()},
                categorical={k: dict(v) for k, v in data["categorical"].items()},
                flags=dict(data["flags"]),
                price_reference={k: dict(v) for k, v in data["price_reference"].items()},
                slices={
                    column: {value: SliceSummary(**s) for value, s in values.items()}
                    for column, values in data["slices"].items()
                },
            )
        except (KeyError, TypeError) as err:
            raise ValueError(
                f"{where}: not a reference profile ({type(err).__name__}: {err})"
            ) from err

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / PROFILE_FILE
        path.write_text(json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")))
        return path


def load_profile(model_dir: str | Path) -> Profile | None:
    """The profile in an exported model folder; None for a model exported before profiles."""
    path = Path(model_dir) / PROFILE_FILE
    if not path.is_file():
        return None
    return Profile.from_dict(json.loads(path.read_text()), where=str(path))


def bin_counts(values: np.ndarray, edges: list[float]) -> list[int]:
    """Counts of ``values`` over the bins ``edges`` bound, then the count of missing (NaN)."""
    finite = np.isfinite(values)
    index = np.searchsorted(np.asarray(edges, dtype=np.float64), values[finite], side="right")
    counts = np.bincount(index, minlength=len(edges) + 1)
    return [int(c) for c in counts] + [int((~finite).sum())]


def _edges(values: np.ndarray, bins: int) -> list[float]:
    """Inner edges at the reference's quantiles; ties merged, so a bin is never empty by design."""
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return []
    inner = np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1])
    return [float(e) for e in np.unique(inner)]


def _round(value: float) -> float:
    return float(f"{value:.6g}")


def _numeric(values: np.ndarray, bins: int, sample_size: int, rng: np.random.Generator):
    edges = _edges(values, bins)
    counts = bin_counts(values, edges)
    finite = values[np.isfinite(values)]
    quantiles = (
        {f"p{round(q * 100):02d}": _round(float(np.quantile(finite, q))) for q in _QUANTILES}
        if len(finite)
        else {}
    )
    take = finite if len(finite) <= sample_size else rng.choice(finite, sample_size, False)
    return NumericSummary(
        edges=[_round(e) for e in edges],
        counts=counts[:-1],
        missing=counts[-1],
        quantiles=quantiles,
        mean=_round(float(finite.mean())) if len(finite) else None,
        sample=[_round(float(v)) for v in take],
    )


def _check_columns(scored: pd.DataFrame, where: str) -> None:
    missing = [c for c in _REQUIRED if c not in scored]
    if missing:
        raise ValueError(
            f"{where}: expected the model's output columns {list(_REQUIRED)} to build a "
            f"reference profile; missing column(s) {missing}"
        )


def build_profile(
    scored: pd.DataFrame,
    *,
    policy: Mapping[str, Any],
    source: str,
    bins: int = DEFAULT_BINS,
    sample_size: int = DEFAULT_SAMPLE,
    seed: int = 0,
) -> Profile:
    """The profile of ``scored``: request columns plus the model's ``score``, ``decision``
    and ``flags`` for the same rows (validation rows at export, or a reference window).

    Input features whose column the frame lacks are left out of the profile (and so out of
    monitoring); ``score`` and ``decision`` are required.
    """
    _check_columns(scored, source)
    if len(scored) == 0:
        raise ValueError(f"{source}: no rows to build a reference profile from")
    scored = scored.reset_index(drop=True)
    rng = np.random.default_rng(seed)
    prices = price_reference(scored)
    present = [n for n in NUMERIC if n == "score" or _has_inputs(scored, n)]
    values = {n: numeric_values(scored, n, prices) for n in present}
    numeric = {n: _numeric(values[n], bins, sample_size, rng) for n in present}
    categories = {c: categorical_values(scored, c) for c in CATEGORICAL if c in scored}
    flags = flag_sets(scored)
    decisions = scored["decision"].astype(str).to_numpy()
    slices: dict[str, dict[str, SliceSummary]] = {}
    for column in SLICE_COLUMNS:
        if column not in categories:
            continue
        slices[column] = {}
        for value, index in categories[column].groupby(categories[column]).groups.items():
            rows = scored.index.get_indexer(index)
            slices[column][str(value)] = SliceSummary(
                rows=len(rows),
                lanes=lane_counts(decisions[rows]),
                counts={n: bin_counts(values[n][rows], numeric[n].edges) for n in present},
                flags=flag_counts([flags[i] for i in rows]),
            )
    return Profile(
        rows=len(scored),
        source=source,
        policy={k: float(policy[k]) for k in ("reject_threshold", "approve_threshold")},
        lanes=lane_counts(decisions),
        numeric=numeric,
        categorical={c: _counts(v) for c, v in categories.items()},
        flags=flag_counts(flags),
        price_reference=prices,
        slices=slices,
    )


def _counts(values: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in values.value_counts().sort_index().items()}


def _has_inputs(frame: pd.DataFrame, name: str) -> bool:
    if name == "text_length":
        return "title" in frame or "description" in frame
    return "price" in frame and "currency" in frame


def finite_or_none(value: float) -> float | None:
    """JSON has no NaN: a statistic that could not be computed is written as null."""
    return None if value is None or not math.isfinite(value) else float(value)
