"""When a livestream is halted, sent to review or left running: the stream policy and its fit.

A listing is decided once, on one score; a livestream is decided many times a minute, so a
policy that halted on the first window above the listing model's reject threshold would halt
clean streams on one-frame flukes (a glare, a cut caught mid-blend). A halt has to be
defensible to the seller and to an appeal, so it needs *sustained* evidence:

* ``running_score`` of a stream is the ``k``-th highest window score among its last ``n``
  windows, i.e. the level that at least ``k`` of the last ``n`` windows reached. A stream is
  **halted** once ``running_score >= halt_threshold``, which is exactly "``k`` of the last ``n``
  windows at or above the halt threshold": one spike never halts when ``k >= 2``.
* A stream goes to **review** while any of its last ``n`` windows is at or above
  ``review_threshold``: a single strong window is worth a human's look, not a halt, and the
  review stays open for ``n`` windows so a reviewer has time to join; if the evidence keeps
  coming, review escalates to halt.

The thresholds and ``k``/``n`` are fitted on validation streams whose onset time is known, as
the listing lanes are fitted on validation listings (:func:`fit_stream_policy`): the halt
threshold is the lowest one whose false halts (a clean stream halted, or an infringing one
halted before the infringement appeared) stay within a budget per hour of clean video, and
optionally whose halt precision reaches a target; ``k``/``n`` is the smoothing that, at its
own threshold, halts the validation streams soonest. The review threshold is, like the
listing policy's approve threshold, fitted for recall. Without a fitted policy the model's
own listing policy is used (:meth:`StreamPolicy.from_policy`).

Imports numpy and the listing policy only: it runs inside the screening service.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from ipguard.evaluation.policy import Policy, precision_lower_bound

STREAM_POLICY_FILE = "stream_policy.json"
"""Where a fitted stream policy is stored beside the model's ``spec.json``."""

STREAM_DECISIONS = ("halt", "review", "continue")

DEFAULT_SMOOTHING: tuple[tuple[int, int], ...] = ((1, 1), (2, 2), (2, 3), (3, 4), (3, 5))
"""The (k, n) pairs :func:`fit_stream_policy` tries: k of the last n windows."""


@dataclass(frozen=True)
class StreamPolicy:
    """Halt / review thresholds on window scores, the smoothing, and what they were fitted for."""

    halt_threshold: float
    """Halt once ``k`` of the last ``n`` window scores are at or above this."""
    review_threshold: float
    """Review while any of the last ``n`` window scores is at or above this (<= halt)."""
    k: int = 2
    """Windows of the last ``n`` that must reach the halt threshold."""
    n: int = 3
    """How many recent windows the decision looks at."""
    target_false_halts_per_hour: float | None = None
    """The false-halt budget the halt threshold was fitted for (None: not fitted)."""
    target_halt_precision: float | None = None
    """The share of halts that had to be right on validation, if fitted for it."""
    target_review_recall: float | None = None
    """Share of infringing validation streams that had to reach review after the onset."""
    validation: dict[str, float] = field(default_factory=dict)
    """What the fitted policy did on its validation streams (halts, delays, false halts)."""
    notes: tuple[str, ...] = ()
    """Where the policy came from, and warnings from fitting (an unreachable target)."""

    def __post_init__(self) -> None:
        for name in ("halt_threshold", "review_threshold"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                raise TypeError(f"StreamPolicy.{name}: expected a number, found {value!r}")
            if not math.isfinite(float(value)):
                raise ValueError(f"StreamPolicy.{name}: expected a finite number, found {value!r}")
            object.__setattr__(self, name, float(value))
        if self.review_threshold > self.halt_threshold:
            raise ValueError(
                "StreamPolicy: expected review_threshold <= halt_threshold, found "
                f"review_threshold={self.review_threshold} > halt_threshold={self.halt_threshold}"
            )
        for name in ("k", "n"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"StreamPolicy.{name}: expected an int >= 1, found {value!r}")
            object.__setattr__(self, name, int(value))
        if self.k > self.n:
            raise ValueError(
                f"StreamPolicy: expected k <= n (k of the last n windows), found k={self.k}, "
                f"n={self.n}"
            )
        if isinstance(self.notes, str) or not all(isinstance(x, str) for x in self.notes):
            raise TypeError(f"StreamPolicy.notes: expected strings, found {self.notes!r}")
        object.__setattr__(self, "notes", tuple(self.notes))
        object.__setattr__(self, "validation", {str(k): v for k, v in self.validation.items()})

    # --- deciding ------------------------------------------------------------------------

    def running_score(self, recent: Sequence[float]) -> float:
        """The ``k``-th highest of the last ``n`` scores; unscored windows (NaN) and windows not
        yet seen count as 0, so a stream needs ``k`` real windows before it can be halted."""
        window = np.asarray(list(recent)[-self.n :], dtype=np.float64)
        window = np.where(np.isfinite(window), window, 0.0)
        if window.size < self.k:
            return 0.0
        return float(np.sort(window)[-self.k])

    def decide(self, recent: Sequence[float]) -> str:
        """``halt`` / ``review`` / ``continue`` for a stream whose window scores so far end with
        ``recent`` (the last ``n`` are used)."""
        if self.running_score(recent) >= self.halt_threshold:
            return "halt"
        window = np.asarray(list(recent)[-self.n :], dtype=np.float64)
        if window.size and np.nanmax(np.append(window, -np.inf)) >= self.review_threshold:
            return "review"
        return "continue"

    # --- storing -------------------------------------------------------------------------

    @classmethod
    def from_policy(cls, policy: Policy, *, k: int = 2, n: int = 3) -> StreamPolicy:
        """The model's listing policy used on windows: halt at its reject threshold, review at
        its approve threshold, ``k`` of ``n`` smoothing. Not fitted on streams; a fitted
        :data:`STREAM_POLICY_FILE` beside the model replaces it."""
        return cls(
            halt_threshold=policy.reject_threshold,
            review_threshold=policy.approve_threshold,
            k=k,
            n=n,
            notes=(
                "from the model's listing policy (halt = reject_threshold, review = "
                f"approve_threshold, {k} of {n} windows); not fitted on streams",
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["notes"] = list(self.notes)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "stream policy") -> StreamPolicy:
        if not isinstance(data, Mapping):
            raise TypeError(f"{where}: expected a JSON object, found {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{where}: unexpected key(s) {unknown}; expected {sorted(known)}")
        missing = [key for key in ("halt_threshold", "review_threshold") if key not in data]
        if missing:
            raise ValueError(f"{where}: missing required key(s) {missing}")
        kwargs = dict(data)
        kwargs["notes"] = tuple(kwargs.get("notes") or ())
        kwargs["validation"] = dict(kwargs.get("validation") or {})
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}: {err}") from None

    def save(self, path: str | Path) -> Path:
        """Write the policy as JSON; a folder gets :data:`STREAM_POLICY_FILE` inside it."""
        target = Path(path)
        if target.is_dir():
            target = target / STREAM_POLICY_FILE
        target.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        return target

    @classmethod
    def load(cls, path: str | Path) -> StreamPolicy:
        target = Path(path)
        if target.is_dir():
            target = target / STREAM_POLICY_FILE
        try:
            data = json.loads(target.read_text(encoding="utf-8"))
        except OSError as err:
            raise FileNotFoundError(f"{target}: cannot read the stream policy ({err})") from None
        except json.JSONDecodeError as err:
            raise ValueError(f"{target}: not valid JSON ({err})") from None
        return cls.from_dict(data, where=str(target))


# --------------------------------------------------------------------------- fitting


@dataclass(frozen=True)
class ValidationStream:
    """One validation stream's window scores, as the live scorer produced them."""

    stream_id: str
    window_end_s: np.ndarray
    """When each window's decision was made (stream seconds), increasing."""
    scores: np.ndarray
    """Window scores; NaN for a window with nothing to score."""
    onset_s: float | None
    """When the infringement appears; None for a clean stream."""
    duration_s: float | None = None
    """The stream's length; the last window's end when not given."""

    def __post_init__(self) -> None:
        ends = np.asarray(self.window_end_s, dtype=np.float64)
        scores = np.asarray(self.scores, dtype=np.float64)
        where = f"validation stream {self.stream_id!r}"
        if ends.ndim != 1 or ends.shape != scores.shape:
            raise ValueError(
                f"{where}: expected as many window ends as scores (1-D), found shapes "
                f"{ends.shape} and {scores.shape}"
            )
        if ends.size and (not np.isfinite(ends).all() or (np.diff(ends) < 0).any()):
            raise ValueError(f"{where}: window_end_s must be finite and non-decreasing")
        if self.onset_s is not None and not (math.isfinite(self.onset_s) and self.onset_s >= 0):
            raise ValueError(f"{where}: onset_s must be a finite number >= 0, found {self.onset_s}")
        object.__setattr__(self, "window_end_s", ends)
        object.__setattr__(self, "scores", scores)

    @property
    def length_s(self) -> float:
        if self.duration_s is not None:
            return float(self.duration_s)
        return float(self.window_end_s[-1]) if self.window_end_s.size else 0.0

    @property
    def clean_s(self) -> float:
        """Seconds of this stream with nothing infringing on screen (all of a clean stream)."""
        return self.length_s if self.onset_s is None else min(self.onset_s, self.length_s)


@dataclass(frozen=True)
class HaltOutcome:
    """What one threshold and smoothing did on a set of streams (see :func:`halt_outcomes`)."""

    halts: int
    true_halts: int
    false_halts: int
    """Clean streams halted, plus infringing ones halted before their onset."""
    missed: int
    """Infringing streams never halted after their onset."""
    delays_s: tuple[float, ...]
    """Seconds from onset to halt, per infringing stream halted after its onset."""
    clean_hours: float

    @property
    def false_halts_per_hour(self) -> float:
        return self.false_halts / self.clean_hours if self.clean_hours > 0 else 0.0

    @property
    def precision(self) -> float | None:
        return self.true_halts / self.halts if self.halts else None

    def summary(self) -> dict[str, float]:
        delays = np.asarray(self.delays_s, dtype=np.float64)
        out = {
            "halts": float(self.halts),
            "true_halts": float(self.true_halts),
            "false_halts": float(self.false_halts),
            "missed": float(self.missed),
            "clean_hours": round(self.clean_hours, 6),
            "false_halts_per_hour": round(self.false_halts_per_hour, 4),
        }
        if delays.size:
            out["median_delay_s"] = round(float(np.median(delays)), 3)
            out["p90_delay_s"] = round(float(np.quantile(delays, 0.9)), 3)
        if self.precision is not None:
            out["halt_precision"] = round(self.precision, 4)
        return out


def running_scores(scores: np.ndarray, k: int, n: int) -> np.ndarray:
    """:meth:`StreamPolicy.running_score` after every window of one stream, vectorised."""
    values = np.asarray(scores, dtype=np.float64)
    if values.size == 0:
        return values
    values = np.where(np.isfinite(values), values, 0.0)
    padded = np.concatenate([np.zeros(n - 1), values])
    stacked = np.lib.stride_tricks.sliding_window_view(padded, n)
    out = np.sort(stacked, axis=1)[:, -k]
    out[: k - 1] = 0.0  # fewer than k windows seen
    return out


def halt_outcomes(
    streams: Sequence[ValidationStream], threshold: float, k: int, n: int
) -> HaltOutcome:
    """Replay ``streams`` under one halt threshold and smoothing: where each would have halted."""
    return _replay(streams, [running_scores(s.scores, k, n) for s in streams], threshold)


def _replay(
    streams: Sequence[ValidationStream], running: Sequence[np.ndarray], threshold: float
) -> HaltOutcome:
    halts = true_halts = false_halts = missed = 0
    delays: list[float] = []
    clean_s = 0.0
    for stream, levels in zip(streams, running, strict=True):
        clean_s += stream.clean_s
        crossed = np.flatnonzero(levels >= threshold)
        at = float(stream.window_end_s[crossed[0]]) if crossed.size else None
        if at is not None:
            halts += 1
        if stream.onset_s is None or (at is not None and at <= stream.onset_s):
            false_halts += at is not None
            missed += stream.onset_s is not None
            continue
        if at is None:
            missed += 1
        else:
            true_halts += 1
            delays.append(at - stream.onset_s)
    return HaltOutcome(halts, true_halts, false_halts, missed, tuple(delays), clean_s / 3600.0)


def fit_stream_policy(
    streams: Sequence[ValidationStream],
    *,
    target_false_halts_per_hour: float = 0.0,
    target_halt_precision: float | None = None,
    target_review_recall: float = 0.9,
    smoothing: Sequence[tuple[int, int]] = DEFAULT_SMOOTHING,
) -> StreamPolicy:
    """Fit the halt threshold, the review threshold and ``k``/``n`` on labelled streams.

    For each ``(k, n)`` the halt threshold is the lowest observed running score whose false
    halts per hour of clean video stay within ``target_false_halts_per_hour`` (and, if given,
    whose halt precision reaches ``target_halt_precision``); a halt at or before a stream's
    onset is a false halt. Of those, the smoothing whose threshold halts the infringing streams
    soonest is kept (median onset-to-halt delay, a missed stream counting as never; ties go to
    more halts, then to the larger ``k``, the more defensible). The default budget of 0 means
    "no validation stream halted wrongly", the only budget a few validation streams can show.

    The review threshold is the highest window score such that at least
    ``target_review_recall`` of the infringing streams have a window at or above it after
    their onset (the listing policy's approve threshold, for streams), never above the halt
    threshold. Notes record an unreachable target.
    """
    streams = list(streams)
    infringing = [s for s in streams if s.onset_s is not None]
    if not infringing:
        raise ValueError(
            f"fit_stream_policy: expected at least one stream with an onset among {len(streams)}, "
            "found none; a halt threshold cannot be fitted on clean streams only"
        )
    if not streams or not any(s.clean_s > 0 for s in streams):
        raise ValueError("fit_stream_policy: expected some clean video (a clean stream or time "
                         "before an onset) to measure false halts on, found none")  # fmt: skip
    if target_false_halts_per_hour < 0:
        raise ValueError(
            "fit_stream_policy: expected target_false_halts_per_hour >= 0, found "
            f"{target_false_halts_per_hour}"
        )
    for name, value in (("target_halt_precision", target_halt_precision),
                        ("target_review_recall", target_review_recall)):  # fmt: skip
        if value is not None and not 0 < value <= 1:
            raise ValueError(f"fit_stream_policy: expected {name} in (0, 1], found {value!r}")
    pairs = [(int(k), int(n)) for k, n in smoothing]
    if not pairs or any(not 1 <= k <= n for k, n in pairs):
        raise ValueError(
            f"fit_stream_policy: expected (k, n) pairs with 1 <= k <= n, found {pairs}"
        )

    best: tuple[tuple[float, float, float], float, int, int, HaltOutcome] | None = None
    for k, n in pairs:
        threshold, outcome = _lowest_threshold(
            streams, k, n, target_false_halts_per_hour, target_halt_precision
        )
        delays = list(outcome.delays_s) + [math.inf] * outcome.missed
        key = (float(np.median(delays)), -float(outcome.true_halts), -float(k))
        if best is None or key < best[0]:
            best = (key, threshold, k, n, outcome)
    assert best is not None
    _, halt, k, n, outcome = best

    notes = [f"fitted on {len(streams)} validation streams ({len(infringing)} infringing)"]
    if outcome.true_halts == 0:
        notes.append(
            "no threshold halts an infringing stream within the false-halt budget "
            f"({target_false_halts_per_hour}/h); nothing is halted on this validation set"
        )
    if outcome.halts:
        lower = float(precision_lower_bound(outcome.true_halts, outcome.halts))
        notes.append(
            f"halt precision {outcome.true_halts}/{outcome.halts} on validation, 95% lower "
            f"bound {lower:.3f}"
        )
    review, review_note = _review_threshold(infringing, target_review_recall, halt)
    if review_note:
        notes.append(review_note)
    return StreamPolicy(
        halt_threshold=halt,
        review_threshold=review,
        k=k,
        n=n,
        target_false_halts_per_hour=target_false_halts_per_hour,
        target_halt_precision=target_halt_precision,
        target_review_recall=target_review_recall,
        validation=outcome.summary(),
        notes=tuple(notes),
    )


def _lowest_threshold(
    streams: Sequence[ValidationStream],
    k: int,
    n: int,
    budget_per_hour: float,
    precision: float | None,
) -> tuple[float, HaltOutcome]:
    """The lowest candidate threshold meeting the budget and precision, with what it does.

    Candidates are the observed running scores plus one just above the highest (halts
    nothing, always within budget). False halts only grow as the threshold falls, but
    precision is not monotone, so every candidate is replayed."""
    running = [running_scores(s.scores, k, n) for s in streams]
    observed = np.unique(np.concatenate(running))
    top = float(np.nextafter(observed.max(), np.inf)) if observed.size else 1.0
    for threshold in [*observed[observed > 0].tolist(), top]:
        outcome = _replay(streams, running, threshold)
        if outcome.false_halts_per_hour > budget_per_hour:
            continue
        if precision is not None and outcome.halts and (outcome.precision or 0.0) < precision:
            continue
        return float(threshold), outcome
    return top, _replay(streams, running, top)


def _review_threshold(
    infringing: Sequence[ValidationStream], recall: float, halt: float
) -> tuple[float, str]:
    peaks = []
    for stream in infringing:
        after = stream.scores[stream.window_end_s > (stream.onset_s or 0.0)]
        after = after[np.isfinite(after)]
        peaks.append(float(after.max()) if after.size else 0.0)
    ordered = np.sort(np.asarray(peaks))[::-1]
    needed = max(1, math.ceil(recall * len(ordered) - 1e-9))
    threshold = float(ordered[needed - 1])
    if threshold > halt:
        return halt, (
            f"review threshold {threshold:.4g} for recall {recall} lay above the halt threshold "
            f"{halt:.4g}; clamped to it (no review lane)"
        )
    return threshold, ""


__all__ = [
    "DEFAULT_SMOOTHING",
    "STREAM_DECISIONS",
    "STREAM_POLICY_FILE",
    "HaltOutcome",
    "StreamPolicy",
    "ValidationStream",
    "fit_stream_policy",
    "halt_outcomes",
    "running_scores",
]
