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
import zlib
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
    vocabulary,
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
_SKIP = np.inf  # a value left out of a numeric summary (neither binned nor missing)


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
    vocabulary: list[str] = field(default_factory=list)
    """The reference's most frequent words, what ``unknown_words`` is measured against."""
    schema_version: int = SCHEMA_VERSION

    @property
    def features(self) -> list[str]:
        """The input features this profile can be compared on (not the score)."""
        return [n for n in self.numeric if n != "score"] + list(self.categorical)

    def values(self, frame: pd.DataFrame, name: str) -> np.ndarray:
        """A numeric feature of ``frame``'s rows, derived against this reference."""
        return numeric_values(frame, name, self.price_reference, self.vocabulary)

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
                vocabulary=[str(w) for w in data.get("vocabulary", [])],
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
    """Counts of ``values`` over the bins ``edges`` bound, then the count of missing (NaN).

    A bin holds the values up to and including its upper edge, so a point mass at an edge (a
    reference where every listing has no unknown word: all 0) stays below it, and traffic
    above it lands in the next bin instead of in the same one."""
    finite = np.isfinite(values)
    index = np.searchsorted(np.asarray(edges, dtype=np.float64), values[finite], side="left")
    counts = np.bincount(index, minlength=len(edges) + 1)
    return [int(c) for c in counts] + [int(np.isnan(values).sum())]


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
    values = values[values != _SKIP]
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
    held_out = _held_out(scored)
    words = vocabulary(scored[~held_out]) if "unknown_words" in present else []
    values = {n: numeric_values(scored, n, prices, words) for n in present}
    if "unknown_words" in present:
        # measured only on rows whose sellers the vocabulary never saw, as traffic will be
        values["unknown_words"] = np.where(held_out, values["unknown_words"], _SKIP)
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
        vocabulary=words,
    )


def _held_out(frame: pd.DataFrame) -> np.ndarray:
    """Half the reference's sellers (by a stable hash; a row without a seller is its own), whose
    words the vocabulary is not built from. Measured against a vocabulary of its own rows the
    reference would know every word it has, and any fresh traffic would look new: a seller's
    listings share their wording, so even another half of the same sellers would be too
    familiar."""
    owners = frame["seller_id"] if "seller_id" in frame else pd.Series([None] * len(frame))
    keys = [
        f"s:{s}" if isinstance(s, str) and s.strip() else f"r:{i}"
        for i, s in enumerate(owners.astype(object))
    ]
    return np.asarray([zlib.crc32(k.encode()) % 2 == 1 for k in keys], dtype=bool)


def _counts(values: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in values.value_counts().sort_index().items()}


def _has_inputs(frame: pd.DataFrame, name: str) -> bool:
    if name in ("text_length", "unknown_words"):
        return "title" in frame or "description" in frame
    return "price" in frame and "currency" in frame


def finite_or_none(value: float) -> float | None:
    """JSON has no NaN: a statistic that could not be computed is written as null."""
    return None if value is None or not math.isfinite(value) else float(value)
