"""Score calibration: turn a model's raw score into an honest P(infringing).

The policy's thresholds and every precision a report quotes assume the score means what it
says; a network trained with cross-entropy is usually over-confident. Calibrators are fitted on
held-out data and travel inside the served model, so applying one needs numpy only and each
serialises to a plain dict (no pickles): temperature scaling stores one number, isotonic
regression stores the breakpoints of a piecewise-linear map applied with ``np.interp``.
scikit-learn is imported lazily, and only to *fit* the isotonic map.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np

from ipguard.evaluation.policy import check_scores_labels
from ipguard.logistic import logit, sigmoid

if TYPE_CHECKING:
    import pandas as pd

_EPS = 1e-7
"""Scores are clipped to [eps, 1 - eps] before the logit so that 0 and 1 stay finite."""


@runtime_checkable
class Calibrator(Protocol):
    """Maps raw scores in [0, 1] to calibrated probabilities; NaN stays NaN."""

    def __call__(self, scores: np.ndarray) -> np.ndarray: ...

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class IdentityCalibrator:
    """No calibration: for models already calibrated, or to compare against."""

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return np.asarray(scores, dtype=np.float64).copy()

    def to_dict(self) -> dict[str, Any]:
        return {"method": "none"}


@dataclass(frozen=True)
class TemperatureCalibrator:
    """``sigmoid(logit(p) / T)``: one parameter, so it cannot over-fit and never reorders scores.

    T > 1 softens over-confident scores, T < 1 sharpens under-confident ones.
    """

    temperature: float

    def __post_init__(self) -> None:
        t = self.temperature
        if isinstance(t, bool) or not isinstance(t, (int, float, np.number)):
            raise TypeError(f"TemperatureCalibrator.temperature: expected a number, found {t!r}")
        if not (math.isfinite(float(t)) and t > 0):
            raise ValueError(
                f"TemperatureCalibrator.temperature: expected a finite number > 0, found {t!r}"
            )
        object.__setattr__(self, "temperature", float(t))

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return sigmoid(logit(np.asarray(scores, dtype=np.float64), _EPS) / self.temperature)

    def to_dict(self) -> dict[str, Any]:
        return {"method": "temperature", "temperature": self.temperature}


@dataclass(frozen=True)
class IsotonicCalibrator:
    """Monotone piecewise-linear map through the breakpoints ``(x, y)``; clamps outside them.

    More flexible than a temperature (it can fix a mis-shaped curve, not just its slope), but it
    needs more held-out data and can merge nearby scores into ties.
    """

    x: tuple[float, ...]
    y: tuple[float, ...]

    def __post_init__(self) -> None:
        x = np.asarray(self.x, dtype=np.float64)
        y = np.asarray(self.y, dtype=np.float64)
        if x.ndim != 1 or x.size == 0 or x.shape != y.shape:
            raise ValueError(
                "IsotonicCalibrator: expected x and y as equally long non-empty sequences, "
                f"found {x.size} x and {y.size} y values"
            )
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise ValueError("IsotonicCalibrator: expected finite x and y, found NaN or inf")
        if np.any(np.diff(x) <= 0):
            row = int(np.flatnonzero(np.diff(x) <= 0)[0]) + 1
            raise ValueError(
                f"IsotonicCalibrator.x: expected strictly increasing values, found "
                f"x[{row}]={x[row]} after x[{row - 1}]={x[row - 1]}"
            )
        if np.any(np.diff(y) < 0) or y.min() < 0 or y.max() > 1:
            raise ValueError(
                "IsotonicCalibrator.y: expected non-decreasing values in [0, 1], found "
                f"min={y.min()}, max={y.max()}, decreasing steps={int((np.diff(y) < 0).sum())}"
            )
        object.__setattr__(self, "x", tuple(float(v) for v in x))
        object.__setattr__(self, "y", tuple(float(v) for v in y))

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return np.interp(np.asarray(scores, dtype=np.float64), self.x, self.y)

    def to_dict(self) -> dict[str, Any]:
        return {"method": "isotonic", "x": list(self.x), "y": list(self.y)}


def fit_calibrator(
    scores: np.ndarray,
    labels: np.ndarray,
    method: Literal["temperature", "isotonic", "none"] = "temperature",
) -> Calibrator:
    """Fit a calibrator on held-out scores in [0, 1] and their 0/1 (or string) labels.

    Both classes must be present: with one class the best "calibration" maps everything to
    0 or 1, which would be fitted happily and be useless in production.
    """
    if method == "none":
        return IdentityCalibrator()
    if method not in ("temperature", "isotonic"):
        raise ValueError(
            f"fit_calibrator: expected method 'temperature', 'isotonic' or 'none', found {method!r}"
        )
    s, y = check_scores_labels(scores, labels, where="fit_calibrator")
    _check_unit_interval(s, where="fit_calibrator")
    positives = int(y.sum())
    if positives == 0 or positives == y.size:
        raise ValueError(
            f"fit_calibrator: expected both genuine and infringing listings, found "
            f"{positives} infringing of {y.size}"
        )
    if method == "temperature":
        return TemperatureCalibrator(_fit_temperature(s, y))
    return _fit_isotonic(s, y)


def calibrator_from_dict(d: Mapping[str, Any]) -> Calibrator:
    """Rebuild a calibrator from its ``to_dict()`` output (as stored in the served model)."""
    if not isinstance(d, Mapping) or "method" not in d:
        raise ValueError(
            f"calibrator_from_dict: expected a mapping with a 'method' key, found {d!r}"
        )
    method = d["method"]
    expected_keys = {"none": set(), "temperature": {"temperature"}, "isotonic": {"x", "y"}}
    if method not in expected_keys:
        raise ValueError(
            f"calibrator_from_dict: expected method in {sorted(expected_keys)}, found {method!r}"
        )
    keys = set(d) - {"method"}
    if keys != expected_keys[method]:
        raise ValueError(
            f"calibrator_from_dict: method {method!r} expects keys "
            f"{sorted(expected_keys[method])}, found {sorted(keys)}"
        )
    if method == "none":
        return IdentityCalibrator()
    if method == "temperature":
        return TemperatureCalibrator(d["temperature"])
    return IsotonicCalibrator(tuple(d["x"]), tuple(d["y"]))


def expected_calibration_error(scores: Any, labels: Any, *, n_bins: int = 15) -> float:
    """Traffic-weighted mean |mean score - infringing rate| over equal-width score bins."""
    table = reliability_table(scores, labels, n_bins=n_bins)
    filled = table[table["count"] > 0]
    if filled.empty:
        return float("nan")
    gaps = (filled["mean_score"] - filled["frac_positive"]).abs()
    return float((gaps * filled["count"]).sum() / filled["count"].sum())


def reliability_table(scores: Any, labels: Any, *, n_bins: int = 15) -> pd.DataFrame:
    """One row per equal-width bin of [0, 1]: bin, lower, upper, count, mean_score, frac_positive.

    Every bin is listed, empty ones with count 0 and NaN means, so tables from different models
    line up row by row. A score of exactly 1.0 falls in the last bin.
    """
    import pandas as pd  # lazy: the served model applies calibrators without pandas

    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"reliability_table: expected n_bins as an int >= 1, found {n_bins!r}")
    s, y = check_scores_labels(scores, labels, where="reliability_table")
    _check_unit_interval(s, where="reliability_table")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.minimum((s * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    score_sum = np.bincount(bins, weights=s, minlength=n_bins)
    pos_sum = np.bincount(bins, weights=y, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_score = np.where(count > 0, score_sum / count, np.nan)
        frac_positive = np.where(count > 0, pos_sum / count, np.nan)
    return pd.DataFrame(
        {
            "bin": np.arange(n_bins),
            "lower": edges[:-1],
            "upper": edges[1:],
            "count": count,
            "mean_score": mean_score,
            "frac_positive": frac_positive,
        }
    )


def _check_unit_interval(s: np.ndarray, *, where: str) -> None:
    bad = np.flatnonzero((s < 0) | (s > 1))
    if bad.size:
        raise ValueError(
            f"{where}: expected scores in [0, 1], found {s[bad[0]]} at row {bad[0]} "
            f"({bad.size} out of range)"
        )


def _nll(z: np.ndarray, y: np.ndarray, log_t: float) -> float:
    """Mean binary cross-entropy of ``sigmoid(z / T)``, written with logaddexp for stability."""
    u = z / math.exp(log_t)
    return float(np.mean(np.logaddexp(0.0, u) - y * u))


def _fit_temperature(s: np.ndarray, y: np.ndarray) -> float:
    """Golden-section search on log T in [log 0.01, log 100].

    The NLL is convex in 1/T (a one-feature logistic regression without intercept), hence
    unimodal in log T, so a bracketing search finds the optimum without scipy.
    """
    z = logit(s, _EPS)
    lo, hi = math.log(0.01), math.log(100.0)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = _nll(z, y, a), _nll(z, y, b)
    while hi - lo > 1e-6:
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = _nll(z, y, a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = _nll(z, y, b)
    return math.exp((lo + hi) / 2)


def _fit_isotonic(s: np.ndarray, y: np.ndarray) -> IsotonicCalibrator:
    from sklearn.isotonic import IsotonicRegression

    model = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    model.fit(s, y)
    return IsotonicCalibrator(
        tuple(float(v) for v in model.X_thresholds_), tuple(float(v) for v in model.y_thresholds_)
    )
