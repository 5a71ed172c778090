"""The reject / review / approve policy a screening service applies to calibrated scores.

A score alone cannot be acted on; a marketplace needs a decision it can defend. The policy
turns a calibrated P(infringing) into one of three lanes:

* ``reject``  -- score >= ``reject_threshold``: automatic, so only where precision is very high;
* ``review``  -- ``approve_threshold`` <= score < ``reject_threshold``: human reviewers;
* ``approve`` -- score < ``approve_threshold``: published without review.

This module is loaded inside the served model, so it imports only numpy and the standard
library. It also owns :func:`check_scores_labels`, the single definition of which scores and
labels the evaluation package accepts, because it is the lightest module every other one
already depends on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from ipguard.data.columns import DECISIONS as DECISIONS  # the lanes a Policy decides
from ipguard.data.columns import label_index


def check_scores_labels(
    scores: Any, labels: Any, *, where: str = "input"
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(scores, labels)`` as float64 and int64 1-D arrays, or raise naming the bad row.

    Labels may be 0/1 (ints, floats or bools) or the manifest's ``"genuine"``/``"infringing"``
    strings, so callers can pass a manifest column without converting it first. Scores must be
    finite: an evaluation that skipped NaN scores would silently report on a different set of
    listings than the one it was given.
    """
    score_arr = np.asarray(scores)
    if score_arr.ndim != 1:
        raise ValueError(f"{where}: expected 1-D scores, found an array of shape {score_arr.shape}")
    try:
        if score_arr.dtype.kind not in "biufO":
            raise TypeError("not a number type")
        score_arr = score_arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{where}: expected numeric scores, found dtype {score_arr.dtype} ({exc})"
        ) from exc
    label_arr = _labels_to_int(labels, where=where)
    if label_arr.shape != score_arr.shape:
        raise ValueError(
            f"{where}: expected as many labels as scores, found {label_arr.size} labels "
            f"for {score_arr.size} scores"
        )
    bad = np.flatnonzero(~np.isfinite(score_arr))
    if bad.size:
        raise ValueError(
            f"{where}: expected finite scores, found {float(score_arr[bad[0]])} at row {bad[0]} "
            f"({bad.size} non-finite score(s) in total)"
        )
    return score_arr, label_arr


def _labels_to_int(labels: Any, *, where: str) -> np.ndarray:
    raw = np.asarray(labels)
    if raw.ndim != 1:
        raise ValueError(f"{where}: expected 1-D labels, found an array of shape {raw.shape}")
    if raw.dtype.kind in "biuf":
        valid = (raw == 0) | (raw == 1)
        out = raw.astype(np.int64) if valid.all() else None
    else:
        codes = np.array([_label_code(v) for v in raw.tolist()], dtype=np.int64)
        valid = codes >= 0
        out = codes if valid.all() else None
    if out is None:
        row = int(np.flatnonzero(~valid)[0])
        raise ValueError(
            f"{where}: expected label 0/1 or 'genuine'/'infringing', found {raw[row]!r} "
            f"at row {row} ({int((~valid).sum())} invalid label(s) in total)"
        )
    return out


def _label_code(value: Any) -> int:
    """0/1 for a valid label of any accepted kind, -1 otherwise (pandas object/string columns)."""
    if isinstance(value, str):
        return label_index(value)
    if isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating)) and value in (0, 1):
        return int(value)
    return -1


@dataclass(frozen=True)
class Policy:
    """Thresholds that map a calibrated score to a lane, plus the targets they were fitted for.

    The targets and ``notes`` travel with the thresholds so that whoever reads a stored model
    can tell *why* the thresholds are where they are, and whether a target was unreachable.
    """

    reject_threshold: float
    """Scores at or above this are rejected automatically."""
    approve_threshold: float
    """Scores below this are approved; never above ``reject_threshold``."""
    target_precision: float | None = None
    """Precision the reject lane was fitted to reach (None for hand-set thresholds)."""
    target_recall: float | None = None
    """Share of infringing listings kept out of the approve lane, if fitted by recall."""
    review_capacity: float | None = None
    """Share of all traffic the review lane may take, if fitted by capacity."""
    notes: tuple[str, ...] = ()
    """Warnings from fitting, e.g. an unreachable precision target."""
    confidence: float | None = None
    """If set, the reject threshold was fitted so that the one-sided lower confidence bound of
    its precision (not the point estimate) reaches ``target_precision``."""
    reject_support: int | None = None
    """Listings at or above the reject threshold in the data it was fitted on."""
    precision_lower_bound: float | None = None
    """One-sided 95% Clopper-Pearson lower bound of the reject lane's precision there."""

    def __post_init__(self) -> None:
        for name in ("reject_threshold", "approve_threshold"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                raise TypeError(f"Policy.{name}: expected a number, found {value!r}")
            if not math.isfinite(float(value)):
                raise ValueError(f"Policy.{name}: expected a finite number, found {value!r}")
            object.__setattr__(self, name, float(value))
        if self.approve_threshold > self.reject_threshold:
            raise ValueError(
                "Policy: expected approve_threshold <= reject_threshold, found "
                f"approve_threshold={self.approve_threshold} > "
                f"reject_threshold={self.reject_threshold}"
            )
        for name in ("target_precision", "target_recall"):
            _check_fraction(name, getattr(self, name), low_open=True)
        _check_fraction("review_capacity", self.review_capacity, low_open=False)
        _check_fraction("confidence", self.confidence, low_open=True)
        if self.target_recall is not None and self.review_capacity is not None:
            raise ValueError(
                "Policy: expected at most one of target_recall / review_capacity, found both "
                f"(target_recall={self.target_recall}, review_capacity={self.review_capacity})"
            )
        if isinstance(self.notes, str) or not all(isinstance(n, str) for n in self.notes):
            raise TypeError(f"Policy.notes: expected a sequence of strings, found {self.notes!r}")
        object.__setattr__(self, "notes", tuple(self.notes))

    def decide(self, scores: np.ndarray) -> np.ndarray:
        """Return one of :data:`DECISIONS` per score (object dtype).

        A NaN score goes to ``review``: a listing the model could not score must not be
        published or removed without a human looking at it.
        """
        arr = np.asarray(scores, dtype=np.float64)
        out = np.full(arr.shape, "review", dtype=object)
        with np.errstate(invalid="ignore"):
            out[arr >= self.reject_threshold] = "reject"
            out[arr < self.approve_threshold] = "approve"
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict; the served model stores it next to its weights."""
        data = asdict(self)
        data["notes"] = list(self.notes)
        return data

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Policy:
        """Rebuild a policy from :meth:`to_dict` output, rejecting unknown or missing keys."""
        if not isinstance(d, Mapping):
            raise TypeError(f"Policy.from_dict: expected a mapping, found {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(
                f"Policy.from_dict: unexpected key(s) {unknown}; expected a subset of "
                f"{sorted(known)}"
            )
        missing = [k for k in ("reject_threshold", "approve_threshold") if k not in d]
        if missing:
            raise ValueError(f"Policy.from_dict: missing required key(s) {missing}")
        kwargs = dict(d)
        kwargs["notes"] = tuple(kwargs.get("notes", ()) or ())
        return cls(**kwargs)


def _check_fraction(name: str, value: float | None, *, low_open: bool) -> None:
    if value is None:
        return
    low_ok = value > 0 if low_open else value >= 0
    if not (isinstance(value, (int, float, np.number)) and low_ok and value <= 1):
        interval = "(0, 1]" if low_open else "[0, 1]"
        raise ValueError(f"Policy.{name}: expected a number in {interval}, found {value!r}")


def tail_counts(
    scores: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each distinct score ``t`` (ascending): listings and infringing listings with score >= t.

    Thresholds only make sense on observed score values with ``>=`` semantics: tied listings
    always land in the same lane, so precision and recall must be counted per distinct value,
    never per sorted position.
    """
    values, inverse = np.unique(scores, return_inverse=True)
    n_at = np.bincount(inverse, minlength=values.size)
    pos_at = np.bincount(inverse, weights=labels, minlength=values.size)
    n_ge = np.cumsum(n_at[::-1])[::-1]
    pos_ge = np.cumsum(pos_at[::-1])[::-1]
    return values, n_ge, pos_ge


def precision_lower_bound(
    infringing: np.ndarray | int, listings: np.ndarray | int, confidence: float = 0.95
) -> np.ndarray:
    """One-sided Clopper-Pearson lower bound of precision ``infringing / listings``.

    A reject lane that was right on 35 of 35 validation listings has a point precision of 1.0
    but, at 95% confidence, may be as low as 0.918: the evidence, not the estimate, is what a
    trust-and-safety team can defend.
    """
    from scipy.stats import beta

    k = np.asarray(infringing, dtype=np.float64)
    n = np.asarray(listings, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        bound = beta.ppf(1.0 - confidence, k, n - k + 1.0)
    return np.where(k > 0, np.nan_to_num(bound, nan=0.0), 0.0)


def threshold_for_precision(
    scores: np.ndarray,
    labels: np.ndarray,
    target_precision: float,
    *,
    confidence: float | None = None,
) -> float | None:
    """Lowest observed score ``t`` with precision(score >= t) >= target, or None if unreachable.

    The lowest such threshold rejects the most infringing listings while still meeting the
    precision target, i.e. it maximises recall at that precision. Precision is not monotone in
    the threshold, so every candidate is checked rather than stopping at the first failure.
    With ``confidence``, the lower confidence bound of precision must reach the target instead
    of the point estimate, which needs enough listings above the threshold to prove it.
    """
    values, n_ge, pos_ge = tail_counts(scores, labels)
    if confidence is None:
        precision = pos_ge / n_ge
    else:
        precision = precision_lower_bound(pos_ge, n_ge, confidence)
    ok = np.flatnonzero(precision >= target_precision)
    return float(values[ok[0]]) if ok.size else None


def fit_policy(
    scores: np.ndarray,
    labels: np.ndarray,
    *,
    target_precision: float = 0.98,
    target_recall: float | None = 0.95,
    review_capacity: float | None = None,
    confidence: float | None = None,
) -> Policy:
    """Fit reject and approve thresholds on held-out calibrated scores.

    Reject: the lowest threshold whose precision reaches ``target_precision`` (with
    ``confidence``: whose lower confidence bound of precision does). If no threshold does,
    nothing is auto-rejected (the threshold sits just above the highest score) and a note says
    so, because a silent fallback to a lower precision would remove genuine listings. Either way
    the policy records how many listings the reject lane held and the 95% lower bound of its
    precision, so a reader sees how much evidence stands behind the threshold.

    Approve, by exactly one of:

    * ``target_recall``: the highest threshold that keeps at least that share of infringing
      listings in the reject or review lanes, i.e. approves at most ``1 - target_recall``
      of them;
    * ``review_capacity``: the lowest threshold whose review lane (approve <= s < reject) holds
      at most that share of all traffic -- reviewers see as much as they can handle.

    Pass ``target_recall=None`` together with ``review_capacity``. The approve threshold is never
    above the reject threshold (an empty review lane is the limit).
    """
    s, y = check_scores_labels(scores, labels, where="fit_policy")
    if s.size == 0:
        raise ValueError("fit_policy: expected at least one scored listing, found none")
    if not 0 < target_precision <= 1:
        raise ValueError(
            f"fit_policy: expected target_precision in (0, 1], found {target_precision!r}"
        )
    if (target_recall is None) == (review_capacity is None):
        raise ValueError(
            "fit_policy: expected exactly one of target_recall / review_capacity, found "
            f"target_recall={target_recall!r}, review_capacity={review_capacity!r} "
            "(pass target_recall=None to fit by review_capacity)"
        )
    positives = int(y.sum())
    if positives == 0:
        raise ValueError(
            f"fit_policy: expected at least one infringing listing among {s.size}, found none; "
            "precision and recall targets are undefined"
        )

    if confidence is not None and not 0 < confidence < 1:
        raise ValueError(f"fit_policy: expected confidence in (0, 1), found {confidence!r}")
    notes: list[str] = []
    reject = threshold_for_precision(s, y, target_precision, confidence=confidence)
    if reject is None:
        reject = float(np.nextafter(s.max(), np.inf))
        _, n_ge, pos_ge = tail_counts(s, y)
        best = float((pos_ge / n_ge).max())
        proof = "" if confidence is None else f" with {confidence:.0%} confidence"
        notes.append(
            f"target_precision={target_precision} unreachable{proof} on {s.size} listings "
            f"(best precision {best:.4f}); nothing is auto-rejected"
        )
    in_lane = s >= reject
    support, hits = int(in_lane.sum()), int(y[in_lane].sum())
    lower = float(precision_lower_bound(hits, support)) if support else None
    if lower is not None and lower < target_precision:
        notes.append(
            f"reject lane fitted on {support} listings ({hits} infringing): its precision's 95% "
            f"lower bound is {lower:.3f}, below target_precision={target_precision}; more "
            "validation listings (or policy.confidence) would make the threshold defensible"
        )

    if target_recall is not None:
        if not 0 < target_recall <= 1:
            raise ValueError(
                f"fit_policy: expected target_recall in (0, 1], found {target_recall!r}"
            )
        approve = _approve_for_recall(s, y, target_recall, positives)
    else:
        assert review_capacity is not None
        if not 0 <= review_capacity <= 1:
            raise ValueError(
                f"fit_policy: expected review_capacity in [0, 1], found {review_capacity!r}"
            )
        approve = _approve_for_capacity(s, reject, review_capacity)

    if approve > reject:
        notes.append(
            f"approve threshold {approve:.6g} lay above the reject threshold {reject:.6g}; "
            "clamped to it (no review lane)"
        )
        approve = reject
    return Policy(
        reject_threshold=reject,
        approve_threshold=approve,
        target_precision=target_precision,
        target_recall=target_recall,
        review_capacity=review_capacity,
        notes=tuple(notes),
        confidence=confidence,
        reject_support=support,
        precision_lower_bound=lower,
    )


def fit_policy_from_settings(
    scores: np.ndarray, labels: np.ndarray, settings: Mapping[str, Any]
) -> Policy:
    """:func:`fit_policy` with the targets of a ``policy:`` config section (train, export,
    evaluate all read the same keys)."""
    confidence = settings.get("confidence")
    return fit_policy(
        scores,
        labels,
        target_precision=float(settings.get("target_precision", 0.98)),
        target_recall=settings.get("target_recall"),
        review_capacity=settings.get("review_capacity"),
        confidence=None if confidence is None else float(confidence),
    )


def _approve_for_recall(
    s: np.ndarray, y: np.ndarray, target_recall: float, positives: int
) -> float:
    values, _, pos_ge = tail_counts(s, y)
    recall = pos_ge / positives
    # Recall is non-increasing in the threshold and equals 1 at the lowest score, so the
    # highest value that still meets the target always exists.
    ok = np.flatnonzero(recall >= target_recall)
    return float(values[ok[-1]])


def _approve_for_capacity(s: np.ndarray, reject: float, capacity: float) -> float:
    below = np.sort(s[s < reject])
    # Candidate approve thresholds: each observed value below reject, and reject itself (empty
    # review lane). Review share of candidate t = count(t <= s < reject) / n, non-increasing in t.
    candidates = np.append(np.unique(below), reject)
    in_review = below.size - np.searchsorted(below, candidates, side="left")
    ok = np.flatnonzero(in_review / s.size <= capacity)
    return float(candidates[ok[0]])
