"""Screen a livestream while it is still arriving: window by window, halt / review / continue.

A platform that halts a live sale showing a counterfeit bag wants to do so seconds after the
bag appears, not after the recording has been uploaded; and it must not halt honest sellers on
a fluke. :class:`LivestreamScorer` reads a stream front to back (a file, a named pipe, stdin,
a socket: :func:`ipguard.data.video_frames.iter_windows`), scores each window of frames with a
window scorer (the video model's predictor, :class:`WindowScorer`), keeps the stream's recent
window scores and applies a :class:`~ipguard.serving.stream_policy.StreamPolicy` after every
window: halt on sustained evidence (``k`` of the last ``n`` windows), review on a single strong
window, continue otherwise. Each window gives one :class:`LivestreamEvent`, a flat record a
service writes as a JSON line.

* A **halt is final**: the decision latches, and by default the stream is no longer read
  (``stop_on_halt``); with ``stop_on_halt=False`` scoring goes on and every later event says
  ``halt`` with the time it was decided.
* **Review** is raised by one window at or above the review threshold and stays while any of
  the last ``n`` windows is there; it escalates to halt when the evidence is sustained, and
  the halt's reason says since when the stream had been in review.
* The **transcript** arrives in timed pieces (an ASR's segments: ``(start_s, end_s, text)``),
  before the stream or while it runs (:meth:`LivestreamScorer.add_transcript`). A window hears
  the segments that *ended* by the window's end and within ``transcript_lookback_s`` before its
  start (``None``: everything said so far): a segment is known once it has been spoken, so a
  window never hears words said after it.
* With ``hop_s < window_s`` windows overlap: the stream is read in hops and each decision
  scores the frames of the last ``window_s`` seconds, so decisions come every hop while each
  sees a longer stretch.
* A window with no frame is scored on its transcript alone when words were said in it, and
  otherwise not scored (its score is None and counts as 0 in the smoothing).
* A stream that cannot be opened, a stretch with no frame, or a stream cut off mid-way never
  raises: the window's event names the flag, and the last event (``final``) says how the
  stream ended.

Serving code: numpy and the data layer's decoder only; the predictor is passed in.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ipguard.data.video_frames import SamplingConfig, VideoSource, Window, iter_windows
from ipguard.evaluation.policy import Policy
from ipguard.serving.stream_policy import StreamPolicy

EVENT_KINDS = ("window", "end")
"""``window``: one window was scored; ``end``: the stream ended without a halt (always last)."""


class WindowScore(Protocol):
    """What a window scorer returns for one window (the video predictor's ``VideoScore``)."""

    @property
    def score(self) -> float: ...
    @property
    def logit(self) -> float: ...
    @property
    def frame_weights(self) -> np.ndarray: ...
    @property
    def frame_scores(self) -> np.ndarray: ...
    @property
    def evidence_time_s(self) -> float | None: ...


@runtime_checkable
class WindowScorer(Protocol):
    """Anything that scores a stack of frames: ``VideoPredictor.score_frames`` has this shape.

    ``frames`` is (T, H, W, 3) uint8 RGB, ``timestamps`` (T,) seconds from the stream's start;
    the score must be a calibrated probability so that the policy's thresholds mean the same
    on every window."""

    def score_frames(
        self, frames: np.ndarray, timestamps: np.ndarray, transcript: str | None = None
    ) -> WindowScore: ...


@dataclass(frozen=True)
class TranscriptSegment:
    """A piece of what the seller said, with when (stream seconds)."""

    start_s: float
    end_s: float
    text: str


@dataclass(frozen=True)
class LivestreamEvent:
    """One decision on one stream, as a service logs it (:meth:`to_json` is one JSON line)."""

    stream_id: str
    event: str
    """One of :data:`EVENT_KINDS`."""
    window_index: int
    window_start_s: float
    """Start of the stretch the window's frames came from (earlier than the hop with overlap)."""
    window_end_s: float
    stream_time_s: float
    """The stream position the decision was made at: a window is decided as soon as a frame
    past its end has been decoded, so this is the window's end (the last frame's, at the end)."""
    score: float | None
    """The window's calibrated score; None when it had no frame to score."""
    running_score: float
    """The level ``k`` of the last ``n`` windows reached (see :class:`StreamPolicy`)."""
    decision: str
    """``halt`` / ``review`` / ``continue``."""
    evidence_time_s: float | None
    """The strongest frame among the windows behind the decision: where a reviewer looks."""
    reason: str
    frames: int
    """Frames scored in this window."""
    flags: tuple[str, ...] = ()
    """Decoding flags raised in this window (``video_truncated``, ...)."""
    halted_at_s: float | None = None
    """When the stream was halted (stream seconds); None while it was not."""
    review_since_s: float | None = None
    """When the current review began; None outside review."""
    final: bool = False
    """True on the stream's last event: a halt that stops reading, or the ``end`` event."""
    scored_in_s: float = 0.0
    """Wall seconds spent scoring the window (the model's part of the time to decision)."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["flags"] = list(self.flags)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, allow_nan=False)


# --------------------------------------------------------------------------- transcripts


def transcript_segments(
    items: Iterable[Any], *, where: str = "transcript"
) -> list[TranscriptSegment]:
    """Timed transcript pieces as :class:`TranscriptSegment` s, sorted by end, or a clear error.

    Each item is a ``TranscriptSegment``, a ``(start_s, end_s, text)`` sequence or a mapping
    with those keys; times are finite seconds with ``0 <= start_s <= end_s``."""
    out = [_segment(item, f"{where}, segment {i}") for i, item in enumerate(items)]
    return sorted(out, key=lambda s: (s.end_s, s.start_s))


def read_transcript(path: str | Path) -> list[TranscriptSegment]:
    """A timed transcript file: JSON (a list of segments), JSON lines (one a line), or CSV with
    ``start_s,end_s,text`` columns; each segment as :func:`transcript_segments` accepts."""
    target = Path(path)
    try:
        text = target.read_text(encoding="utf-8-sig")
    except OSError as err:
        raise FileNotFoundError(f"{target}: cannot read the transcript ({err})") from None
    suffix = target.suffix.lower()
    if suffix == ".csv":
        import csv

        rows = list(csv.DictReader(text.splitlines()))
        missing = {"start_s", "end_s", "text"} - set(rows[0] if rows else {})
        if rows and missing:
            raise ValueError(
                f"{target}: expected columns start_s, end_s, text; missing {sorted(missing)}"
            )
        return transcript_segments(rows, where=str(target))
    if suffix == ".json":
        try:
            items = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{target}: not valid JSON ({err})") from None
        if not isinstance(items, list):
            raise ValueError(
                f"{target}: expected a JSON list of segments, found {type(items).__name__}"
            )
        return transcript_segments(items, where=str(target))
    items = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise ValueError(f"{target}, line {line_no}: not valid JSON ({err})") from None
    return transcript_segments(items, where=str(target))


def _segment(item: Any, where: str) -> TranscriptSegment:
    if isinstance(item, TranscriptSegment):
        start, end, text = item.start_s, item.end_s, item.text
    elif isinstance(item, Mapping):
        missing = [key for key in ("start_s", "end_s", "text") if key not in item]
        if missing:
            raise ValueError(f"{where}: missing key(s) {missing}; expected start_s, end_s, text")
        start, end, text = item["start_s"], item["end_s"], item["text"]
    elif isinstance(item, Sequence) and not isinstance(item, (str, bytes)) and len(item) == 3:
        start, end, text = item
    else:
        raise ValueError(f"{where}: expected (start_s, end_s, text), found {item!r}")
    times = []
    for name, value in (("start_s", start), ("end_s", end)):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if isinstance(value, bool) or not math.isfinite(number) or number < 0:
            raise ValueError(f"{where}: {name} must be a finite number >= 0, found {value!r}")
        times.append(number)
    if times[0] > times[1]:
        raise ValueError(f"{where}: start_s {times[0]} is after end_s {times[1]}")
    if not isinstance(text, str):
        raise ValueError(f"{where}: text must be a string, found {type(text).__name__}")
    return TranscriptSegment(times[0], times[1], text)


# --------------------------------------------------------------------------- the scorer


@dataclass
class _Recent:
    score: float
    evidence_time_s: float | None


@dataclass(frozen=True)
class _Scored:
    """One window as scored: NaN when there was no frame (or the scorer gave no number)."""

    start_s: float
    score: float
    evidence_time_s: float | None
    frames: int
    seconds: float


class StreamState:
    """One stream's memory: its recent window scores, its decision so far, its transcript."""

    def __init__(self, stream_id: str, policy: StreamPolicy) -> None:
        self.stream_id = stream_id
        self.recent: deque[_Recent] = deque(maxlen=policy.n)
        self.decision = "continue"
        self.halted_at_s: float | None = None
        self.review_since_s: float | None = None
        self.windows = 0
        self.last: LivestreamEvent | None = None
        self._segments: list[TranscriptSegment] = []
        self._lock = threading.Lock()

    def add_transcript(self, segments: Iterable[Any]) -> None:
        new = transcript_segments(segments, where=f"stream {self.stream_id!r} transcript")
        with self._lock:
            self._segments = sorted([*self._segments, *new], key=lambda s: (s.end_s, s.start_s))

    def heard(self, start_s: float, end_s: float, lookback_s: float | None) -> str | None:
        """Text of the segments that ended in ``(start_s - lookback_s, end_s]``; None if none."""
        low = -math.inf if lookback_s is None else start_s - lookback_s
        with self._lock:
            texts = [s.text for s in self._segments if low < s.end_s <= end_s + 1e-9 and s.text]
        return " ".join(texts) if texts else None


class LivestreamScorer:
    """Windows of a stream in, one :class:`LivestreamEvent` per window out (see the module doc).

    ``policy`` is a :class:`StreamPolicy`, or a listing :class:`Policy` used through
    :meth:`StreamPolicy.from_policy`. ``sampling`` defaults to the scorer's own ``sampling``
    (a ``VideoPredictor`` has one) so frames are sampled as in training; ``max_frames`` there
    caps each scored window. ``window_s`` must be a whole number of ``hop_s``."""

    def __init__(
        self,
        scorer: WindowScorer,
        policy: StreamPolicy | Policy,
        *,
        window_s: float = 4.0,
        hop_s: float | None = None,
        sampling: SamplingConfig | None = None,
        stop_on_halt: bool = True,
        transcript_lookback_s: float | None = 0.0,
    ) -> None:
        if not callable(getattr(scorer, "score_frames", None)):
            raise TypeError(
                f"LivestreamScorer: expected a scorer with score_frames(frames, timestamps, "
                f"transcript), found {type(scorer).__name__}"
            )
        if isinstance(policy, Policy):
            policy = StreamPolicy.from_policy(policy)
        if not isinstance(policy, StreamPolicy):
            raise TypeError(
                "LivestreamScorer: expected a StreamPolicy or Policy, found "
                f"{type(policy).__name__}"
            )
        hop_s = window_s if hop_s is None else hop_s
        for name, value in (("window_s", window_s), ("hop_s", hop_s)):
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not (math.isfinite(value) and value > 0)
            ):
                raise ValueError(f"LivestreamScorer.{name}: expected seconds > 0, found {value!r}")
        hops = window_s / hop_s
        if abs(hops - round(hops)) > 1e-6 or round(hops) < 1:
            raise ValueError(
                f"LivestreamScorer: window_s={window_s} must be a whole number (>= 1) of "
                f"hop_s={hop_s}"
            )
        if transcript_lookback_s is not None and not (
            math.isfinite(transcript_lookback_s) and transcript_lookback_s >= 0
        ):
            raise ValueError(
                "LivestreamScorer.transcript_lookback_s: expected seconds >= 0 or None, found "
                f"{transcript_lookback_s!r}"
            )
        self.scorer = scorer
        self.policy = policy
        self.window_s = float(window_s)
        self.hop_s = float(hop_s)
        self.hops = round(hops)
        self.sampling = sampling or getattr(scorer, "sampling", None) or SamplingConfig()
        self.stop_on_halt = stop_on_halt
        self.transcript_lookback_s = transcript_lookback_s
        self._streams: dict[str, StreamState] = {}

    # --- the public loop -------------------------------------------------------------------

    def run(
        self,
        source: VideoSource,
        *,
        stream_id: str = "stream",
        transcript: Iterable[Any] | None = None,
        container_format: str | None = None,
    ) -> Iterator[LivestreamEvent]:
        """Read ``source`` and yield an event per window; the last event has ``final=True``.

        Stops reading at a halt unless ``stop_on_halt=False``. ``container_format`` names a
        pipe's container (``"mpegts"``, ``"matroska"``)."""
        windows = iter_windows(source, self.hop_s, self.sampling, container_format=container_format)
        try:
            yield from self.score_windows(windows, stream_id=stream_id, transcript=transcript)
        finally:
            close = getattr(windows, "close", None)
            if close is not None:
                close()  # a halt ends the read: the container (and the pipe) is let go now

    def score_windows(
        self,
        windows: Iterable[Window],
        *,
        stream_id: str = "stream",
        transcript: Iterable[Any] | None = None,
    ) -> Iterator[LivestreamEvent]:
        """The state machine over windows already decoded (``iter_windows``' hops)."""
        state = self.open(stream_id, transcript)
        hops: deque[Window] = deque(maxlen=self.hops)
        for window in windows:
            hops.append(window)
            event = self._step(state, list(hops))
            state.last = event
            yield event
            if event.final:
                return
        if state.last is None:  # no window at all: say so rather than go quiet
            state.last = self._end(state, "the stream yielded no window", ())
            yield state.last
            return
        flags = state.last.flags
        how = (
            f"cut off: {', '.join(flags)}"
            if "video_truncated" in flags or "video_unreadable" in flags
            else "ended"
        )
        yield self._end(state, f"stream {how} at {state.last.stream_time_s:.2f} s", flags)

    def open(self, stream_id: str, transcript: Iterable[Any] | None = None) -> StreamState:
        """Start (or restart) the state of ``stream_id``, with the transcript known so far."""
        state = StreamState(str(stream_id), self.policy)
        if transcript is not None:
            state.add_transcript(transcript)
        self._streams[state.stream_id] = state
        return state

    def add_transcript(self, stream_id: str, segments: Iterable[Any]) -> None:
        """More transcript for a running stream, e.g. from an ASR thread; later windows hear it."""
        state = self._streams.get(str(stream_id))
        if state is None:
            raise KeyError(
                f"no stream {stream_id!r} is being scored; known: {sorted(self._streams)}"
            )
        state.add_transcript(segments)

    def state(self, stream_id: str) -> StreamState:
        return self._streams[str(stream_id)]

    # --- one window ------------------------------------------------------------------------

    def _step(self, state: StreamState, hops: list[Window]) -> LivestreamEvent:
        window = hops[-1]
        scored = self._score(state, hops)
        state.windows += 1
        state.recent.append(_Recent(scored.score, scored.evidence_time_s))
        if state.halted_at_s is not None:  # latched: scoring goes on only because it was asked
            reason = f"halted at {state.halted_at_s:.2f} s; still reading as asked"
            return self._event(state, window, scored, reason)
        scores = [r.score for r in state.recent]
        decision = self.policy.decide(scores)
        reason = self._reason(decision, state, scores, scored, window)
        if decision == "halt":
            state.halted_at_s = window.end_s
        elif decision == "review" and state.review_since_s is None:
            state.review_since_s = window.end_s
        state.decision = decision
        event = self._event(state, window, scored, reason)
        if decision != "review":
            state.review_since_s = None
        return event

    def _score(self, state: StreamState, hops: list[Window]) -> _Scored:
        start_s, end_s = hops[0].start_s, hops[-1].end_s
        frames, times = _frames_of(hops, self.sampling.max_frames)
        text = state.heard(start_s, end_s, self.transcript_lookback_s)
        if frames is None:
            if text is None:
                return _Scored(start_s, math.nan, None, 0, 0.0)
            # no frame, but words were said: the transcript alone is scored (T = 0)
            frames, times = np.zeros((0, 1, 1, 3), dtype=np.uint8), np.zeros(0)
        began = time.perf_counter()
        result = self.scorer.score_frames(frames, times, text)
        took = time.perf_counter() - began
        score = float(result.score)
        if not math.isfinite(score):
            return _Scored(start_s, math.nan, None, len(frames), took)
        return _Scored(start_s, score, _evidence(result, times), len(frames), took)

    def _reason(
        self,
        decision: str,
        state: StreamState,
        scores: list[float],
        scored: _Scored,
        window: Window,
    ) -> str:
        policy = self.policy
        shown = ", ".join("-" if math.isnan(s) else f"{s:.3f}" for s in scores)
        above = sum(1 for s in scores if s >= policy.halt_threshold)
        if decision == "halt":
            text = (
                f"{above} of the last {len(scores)} windows at or above the halt threshold "
                f"{policy.halt_threshold:.3f} (needs {policy.k} of {policy.n}; scores {shown})"
            )
            if state.review_since_s is not None:
                text += f"; escalated from review raised at {state.review_since_s:.2f} s"
            return text
        parts = []
        if scored.frames == 0 and not math.isnan(scored.score):
            parts.append("no frame in this window: scored on the transcript alone")
        elif math.isnan(scored.score):
            parts.append(
                "no frame to score in this window"
                + (f" ({', '.join(window.flags)}: {window.detail})" if window.flags else "")
            )
        elif window.flags:
            parts.append(f"{', '.join(window.flags)}: {window.detail}")
        if decision == "review":
            strongest = max(s for s in scores if not math.isnan(s))
            parts.append(
                f"a window of the last {len(scores)} scored {strongest:.3f}, at or above the "
                f"review threshold {policy.review_threshold:.3f}; halts once {policy.k} of "
                f"{policy.n} reach {policy.halt_threshold:.3f} (scores {shown})"
            )
        else:
            parts.append(
                f"below the review threshold {policy.review_threshold:.3f} (scores {shown})"
            )
        return "; ".join(parts)

    def _event(
        self, state: StreamState, window: Window, scored: _Scored, reason: str
    ) -> LivestreamEvent:
        halted = state.halted_at_s is not None
        return LivestreamEvent(
            stream_id=state.stream_id,
            event="window",
            window_index=window.index,
            window_start_s=round(scored.start_s, 6),
            window_end_s=round(window.end_s, 6),
            stream_time_s=round(window.end_s, 6),
            score=None if math.isnan(scored.score) else scored.score,
            running_score=self.policy.running_score([r.score for r in state.recent]),
            decision="halt" if halted else state.decision,
            evidence_time_s=_strongest(state.recent),
            reason=reason,
            frames=scored.frames,
            flags=tuple(window.flags),
            halted_at_s=state.halted_at_s,
            review_since_s=state.review_since_s,
            final=halted and self.stop_on_halt,
            scored_in_s=round(scored.seconds, 6),
        )

    def _end(self, state: StreamState, reason: str, flags: tuple[str, ...]) -> LivestreamEvent:
        last = state.last
        return LivestreamEvent(
            stream_id=state.stream_id,
            event="end",
            window_index=last.window_index if last else 0,
            window_start_s=last.window_start_s if last else 0.0,
            window_end_s=last.window_end_s if last else 0.0,
            stream_time_s=last.stream_time_s if last else 0.0,
            score=None,
            running_score=self.policy.running_score([r.score for r in state.recent]),
            decision="halt" if state.halted_at_s is not None else state.decision,
            evidence_time_s=_strongest(state.recent),
            reason=f"{reason} after {state.windows} windows; last decision {state.decision}",
            frames=0,
            flags=flags,
            halted_at_s=state.halted_at_s,
            review_since_s=state.review_since_s,
            final=True,
        )


def _frames_of(hops: list[Window], max_frames: int) -> tuple[np.ndarray | None, np.ndarray]:
    """The frames of the hops in one (T, H, W, 3) stack, evenly thinned to ``max_frames``.

    Frames of another size than the newest (the stream changed resolution) are left out."""
    frames = [f for hop in hops for f in hop.frames]
    times = [t for hop in hops for t in hop.timestamps]
    if not frames:
        return None, np.asarray(times, dtype=np.float64)
    shape = frames[-1].shape
    keep = [i for i, f in enumerate(frames) if f.shape == shape]
    if len(keep) > max_frames:
        keep = [keep[i] for i in np.linspace(0, len(keep) - 1, max_frames).round().astype(int)]
    return (
        np.stack([frames[i] for i in keep]),
        np.asarray([times[i] for i in keep], dtype=np.float64),
    )


def _evidence(result: WindowScore, times: np.ndarray) -> float | None:
    told = getattr(result, "evidence_time_s", None)
    if told is not None and math.isfinite(float(told)):
        return float(told)
    weights = np.asarray(getattr(result, "frame_weights", ()), dtype=np.float64)
    if weights.size == times.size and weights.size:
        return float(times[int(np.argmax(weights))])
    return None


def _strongest(recent: Iterable[_Recent]) -> float | None:
    scored = [r for r in recent if not math.isnan(r.score) and r.evidence_time_s is not None]
    return max(scored, key=lambda r: r.score).evidence_time_s if scored else None


__all__ = [
    "EVENT_KINDS",
    "LivestreamEvent",
    "LivestreamScorer",
    "StreamState",
    "TranscriptSegment",
    "WindowScore",
    "WindowScorer",
    "read_transcript",
    "transcript_segments",
]
