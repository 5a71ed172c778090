"""The livestream scorer's state machine, its inputs (pipes, cut-off streams, timed transcripts)
and the stream policy's fit, under a deterministic pixel-rule scorer."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest

from ipguard.data.video_frames import SamplingConfig, Window
from ipguard.evaluation.policy import Policy
from ipguard.serving.livestream import (
    LivestreamScorer,
    WindowScorer,
    read_transcript,
    transcript_segments,
)
from ipguard.serving.stream_policy import (
    StreamPolicy,
    ValidationStream,
    fit_stream_policy,
    halt_outcomes,
    running_scores,
)

RED = (200, 30, 30)
GREY = (90, 90, 90)
SAMPLING = SamplingConfig(rate=2.0, scene_threshold=None, max_frames=16, max_side=32)


@dataclass(frozen=True)
class _Score:
    score: float
    logit: float
    frame_weights: np.ndarray
    frame_scores: np.ndarray
    evidence_time_s: float | None


class RednessScorer:
    """A tiny logistic rule on how red the frames are: the test double for the video model.

    Each frame scores ``sigmoid(10 * (mean red / 255 - 0.5))``; the window takes its reddest
    frame (the multiple-instance rule) and reports its time as the evidence. It records the
    transcript each window was given."""

    sampling = SAMPLING

    def __init__(self) -> None:
        self.heard: list[str | None] = []
        self.calls = 0

    def score_frames(
        self, frames: np.ndarray, timestamps: np.ndarray, transcript: str | None = None
    ) -> _Score:
        self.calls += 1
        self.heard.append(transcript)
        if len(frames) == 0:  # the words alone: this rule only sees pixels
            return _Score(math.nan, math.nan, np.zeros(0), np.zeros(0), None)
        red = frames[..., 0].reshape(len(frames), -1).mean(axis=1) / 255.0
        logits = 10.0 * (red - 0.5)
        scores = 1.0 / (1.0 + np.exp(-logits))
        top = int(np.argmax(scores))
        weights = np.exp(logits - logits.max())
        return _Score(
            float(scores[top]),
            float(logits[top]),
            weights / weights.sum(),
            scores,
            float(timestamps[top]),
        )


def _red_for(probability: float) -> int:
    """The red level whose frames :class:`RednessScorer` scores ``probability``."""
    return round(255 * (0.5 + math.log(probability / (1 - probability)) / 10.0))


def _windows(scores: list[float | None], window_s: float = 2.0) -> Iterator[Window]:
    """Windows whose frames score ``scores`` (None: a window with no frame)."""
    for i, p in enumerate(scores):
        start = i * window_s
        if p is None:
            yield Window(i, start, start + window_s, [], [], [], [])
            continue
        frame = np.zeros((8, 8, 3), dtype=np.uint8)
        frame[..., 0] = _red_for(p)
        times = [start + 0.5, start + 1.5]
        yield Window(i, start, start + window_s, [frame, frame], times, ["uniform"] * 2, [0, 0])


class _Counting:
    """Wraps windows and counts how many the scorer pulled."""

    def __init__(self, windows: Iterator[Window]) -> None:
        self.windows, self.pulled = windows, 0

    def __iter__(self) -> Iterator[Window]:
        for window in self.windows:
            self.pulled += 1
            yield window


POLICY = StreamPolicy(halt_threshold=0.9, review_threshold=0.5, k=2, n=3)


def _scorer(**kwargs: object) -> LivestreamScorer:
    return LivestreamScorer(RednessScorer(), POLICY, window_s=2.0, **kwargs)  # type: ignore[arg-type]


def test_the_double_scorer_has_the_window_scorer_shape() -> None:
    assert isinstance(RednessScorer(), WindowScorer)
    windows = list(_windows([0.2, 0.95]))
    frames = np.stack(windows[1].frames)
    assert RednessScorer().score_frames(frames, np.array([0.5, 1.5])).score == pytest.approx(
        0.95, abs=0.01
    )


def test_a_single_spike_raises_review_but_never_halts() -> None:
    events = list(_scorer().score_windows(_windows([0.1, 0.1, 0.99, 0.1, 0.1, 0.1, 0.1])))
    decisions = [e.decision for e in events if e.event == "window"]
    assert decisions == ["continue"] * 2 + ["review"] * 3 + ["continue"] * 2
    spike = events[2]
    assert spike.evidence_time_s == pytest.approx(4.5)
    assert spike.running_score < POLICY.halt_threshold
    assert spike.review_since_s == pytest.approx(6.0)
    assert events[-1].event == "end" and events[-1].final and events[-1].decision == "continue"


def test_sustained_evidence_escalates_review_to_a_final_halt() -> None:
    windows = _Counting(_windows([0.1, 0.7, 0.95, 0.97, 0.99, 0.99, 0.99]))
    events = list(_scorer().score_windows(windows))
    assert [e.decision for e in events] == ["continue", "review", "review", "halt"]
    halt = events[-1]
    assert halt.final and halt.halted_at_s == pytest.approx(8.0)
    assert "escalated from review raised at 4.00 s" in halt.reason
    assert "2 of the last 3 windows" in halt.reason
    assert halt.running_score == pytest.approx(0.95, abs=0.01)
    assert halt.evidence_time_s == pytest.approx(6.5)  # the strongest of the windows behind it
    assert windows.pulled == 4, "a halt must stop reading the stream"


def test_a_halt_latches_when_asked_to_keep_reading() -> None:
    scorer = _scorer(stop_on_halt=False)
    events = list(scorer.score_windows(_windows([0.95, 0.95, 0.1, 0.1, 0.1, 0.1])))
    windows = [e for e in events if e.event == "window"]
    assert [e.decision for e in windows] == ["review", "halt", "halt", "halt", "halt", "halt"]
    assert all(e.halted_at_s == pytest.approx(4.0) for e in windows[1:])
    assert not any(e.final for e in windows)
    assert "still reading as asked" in windows[-1].reason
    assert events[-1].event == "end" and events[-1].decision == "halt" and events[-1].final


def test_a_clean_stream_never_halts_under_the_double_scorer() -> None:
    rng = np.random.default_rng(0)
    clean = [float(p) for p in rng.uniform(0.02, 0.6, size=300)]
    events = list(_scorer().score_windows(_windows(clean)))
    assert len(events) == 301
    assert not any(e.decision == "halt" for e in events)
    assert any(e.decision == "review" for e in events)  # the review lane does see the noise


def test_a_window_without_frames_is_not_scored_and_does_not_count() -> None:
    scorer = RednessScorer()
    live = LivestreamScorer(scorer, POLICY, window_s=2.0)
    events = list(live.score_windows(_windows([0.95, None, 0.95])))
    assert events[1].score is None and events[1].frames == 0
    assert "no frame to score" in events[1].reason
    assert scorer.calls == 2
    assert events[2].decision == "halt"  # 2 of the last 3 (the empty one counts as 0)

    heard = RednessScorer()
    live = LivestreamScorer(heard, POLICY, window_s=2.0)
    events = list(live.score_windows(_windows([0.1, None]), transcript=[(2.5, 3.0, "fake")]))
    assert heard.calls == 2 and heard.heard[-1] == "fake", "words alone are still scored"
    assert events[1].score is None and "no frame to score" in events[1].reason


def test_overlapping_windows_score_the_last_window_s_of_frames() -> None:
    scorer = RednessScorer()
    live = LivestreamScorer(scorer, POLICY, window_s=4.0, hop_s=2.0)
    events = list(live.score_windows(_windows([0.1, 0.1, 0.1])))
    assert [(e.window_start_s, e.window_end_s) for e in events[:3]] == [
        (0.0, 2.0),
        (0.0, 4.0),
        (2.0, 6.0),
    ]
    assert [e.frames for e in events[:3]] == [2, 4, 4]
    with pytest.raises(ValueError, match="whole number"):
        LivestreamScorer(scorer, POLICY, window_s=3.0, hop_s=2.0)


def test_each_window_hears_the_transcript_spoken_by_its_end() -> None:
    segments = [(0.0, 1.5, "hola"), (1.5, 3.5, "replica"), (3.9, 6.5, "calidad")]
    scorer = RednessScorer()
    live = LivestreamScorer(scorer, POLICY, window_s=2.0)
    list(live.score_windows(_windows([0.1] * 4), transcript=segments))
    assert scorer.heard == ["hola", "replica", None, "calidad"]

    so_far = RednessScorer()
    live = LivestreamScorer(so_far, POLICY, window_s=2.0, transcript_lookback_s=None)
    list(live.score_windows(_windows([0.1] * 4), transcript=segments))
    assert so_far.heard[-1] == "hola replica calidad"


def test_transcript_pieces_can_arrive_while_the_stream_runs() -> None:
    scorer = RednessScorer()
    live = LivestreamScorer(scorer, POLICY, window_s=2.0)
    stream = live.score_windows(_windows([0.1] * 3), stream_id="s1")
    next(stream)
    live.add_transcript("s1", [{"start_s": 2.2, "end_s": 3.0, "text": "1:1 copy"}])
    list(stream)
    assert scorer.heard == [None, "1:1 copy", None]
    with pytest.raises(KeyError, match="no stream 'other'"):
        live.add_transcript("other", [])


def test_bad_transcript_segments_are_named() -> None:
    with pytest.raises(ValueError, match=r"segment 1: start_s 5\.0 is after end_s 2\.0"):
        transcript_segments([(0, 1, "a"), (5, 2, "b")])
    with pytest.raises(ValueError, match="segment 0: end_s must be a finite number"):
        transcript_segments([(0, float("nan"), "a")])
    with pytest.raises(ValueError, match="missing key"):
        transcript_segments([{"start_s": 0, "text": "a"}])


def test_transcript_files_in_three_formats(tmp_path: Path) -> None:
    rows = [(0.0, 2.0, "first"), (2.0, 4.0, "second, with a comma")]
    (tmp_path / "t.json").write_text(json.dumps([list(r) for r in rows]))
    lines = "\n".join(json.dumps({"start_s": a, "end_s": b, "text": t}) for a, b, t in rows)
    (tmp_path / "t.jsonl").write_text(lines + "\n")
    (tmp_path / "t.csv").write_text('start_s,end_s,text\n0,2,first\n2,4,"second, with a comma"\n')
    for name in ("t.json", "t.jsonl", "t.csv"):
        assert [(s.start_s, s.end_s, s.text) for s in read_transcript(tmp_path / name)] == rows
    (tmp_path / "bad.jsonl").write_text('{"start_s": 0, "end_s": 1, "text": "a"}\nnot json\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl, line 2: not valid JSON"):
        read_transcript(tmp_path / "bad.jsonl")


# --------------------------------------------------------------------------- real streams


def _encode(
    target: Path | io.BytesIO,
    colour_at: Callable[[float], tuple[int, int, int]],
    *,
    seconds: float,
    fps: int = 8,
    container_format: str | None = None,
    options: dict[str, str] | None = None,
) -> None:
    with av.open(target, "w", format=container_format, options=options or {}) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for index in range(round(seconds * fps)):
            image = np.empty((32, 32, 3), dtype=np.uint8)
            image[:] = colour_at(index / fps)
            image[:, (index * 2) % 32 :][:, :2] = 255  # a moving bar: the camera pans
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _red_from(onset: float) -> Callable[[float], tuple[int, int, int]]:
    return lambda t: RED if t >= onset else GREY


def test_a_stream_piped_from_another_process_halts_after_the_onset(tmp_path: Path) -> None:
    clip = tmp_path / "live.ts"
    _encode(clip, _red_from(5.0), seconds=12.0, container_format="mpegts")
    writer = (
        "import sys, time\n"
        "data = open(sys.argv[1], 'rb').read()\n"
        "for i in range(0, len(data), 4096):\n"
        "    sys.stdout.buffer.write(data[i:i + 4096]); sys.stdout.buffer.flush()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", writer, str(clip)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        live = LivestreamScorer(RednessScorer(), POLICY, window_s=1.0)
        events = list(live.run(proc.stdout, stream_id="pipe", container_format="mpegts"))
    finally:
        proc.stdout.close()  # type: ignore[union-attr]
        proc.wait(timeout=10)
    halt = events[-1]
    assert halt.decision == "halt" and halt.final and halt.stream_id == "pipe"
    assert all(e.decision == "continue" for e in events[:-1] if e.window_end_s <= 5.0)
    assert 5.0 < halt.halted_at_s <= 8.0  # 2 of 3 one-second windows after the onset
    assert halt.evidence_time_s is not None and halt.evidence_time_s >= 5.0
    assert len(events) < 12, "the rest of the stream is not read after the halt"


def test_a_cut_off_recording_ends_with_an_event_that_says_so(tmp_path: Path) -> None:
    clip = tmp_path / "live.mkv"  # a recording whose header declares its duration
    _encode(clip, lambda t: GREY, seconds=10.0, container_format="matroska")
    data = clip.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    events = list(LivestreamScorer(RednessScorer(), POLICY, window_s=2.0).run(cut))
    end = events[-1]
    assert end.event == "end" and end.final
    assert "video_truncated" in end.flags and "cut off" in end.reason
    assert 0 < end.stream_time_s < 9.0
    assert all(e.decision == "continue" for e in events)


def test_a_pipe_that_stops_mid_stream_ends_cleanly(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    _encode(buffer, lambda t: GREY, seconds=8.0, container_format="mpegts")
    data = buffer.getvalue()
    pipe = _Pipe(data[: len(data) // 2 + 77])  # not on a packet boundary
    events = list(
        LivestreamScorer(RednessScorer(), POLICY, window_s=1.0).run(pipe, container_format="mpegts")
    )
    assert events[-1].event == "end" and events[-1].final
    assert 1.0 < events[-1].stream_time_s < 6.0
    assert sum(e.event == "window" for e in events) >= 2


def test_bytes_that_are_no_video_give_a_flagged_window_and_an_end(tmp_path: Path) -> None:
    junk = tmp_path / "junk.ts"
    junk.write_bytes(b"<html>not a stream</html>" * 40)
    events = list(LivestreamScorer(RednessScorer(), POLICY, window_s=2.0).run(junk))
    assert [e.event for e in events] == ["window", "end"]
    assert events[0].score is None and "video_unreadable" in events[0].flags
    assert events[-1].final and events[-1].decision == "continue"


class _Pipe(io.RawIOBase):
    """A non-seekable reader handing out at most 1500 bytes a read."""

    def __init__(self, data: bytes) -> None:
        self.data, self.position = data, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        chunk = self.data[self.position : self.position + min(len(buffer), 1500)]
        buffer[: len(chunk)] = chunk
        self.position += len(chunk)
        return len(chunk)


# --------------------------------------------------------------------------- the stream policy


def _stream(
    name: str, scores: list[float], onset: float | None, window_s: float = 2.0
) -> ValidationStream:
    ends = window_s * np.arange(1, len(scores) + 1)
    return ValidationStream(name, ends, np.asarray(scores), onset)


def test_running_scores_match_the_policy_window_by_window() -> None:
    rng = np.random.default_rng(3)
    scores = rng.uniform(size=40)
    scores[[4, 17]] = np.nan
    for k, n in ((1, 1), (2, 3), (3, 5)):
        policy = StreamPolicy(halt_threshold=0.5, review_threshold=0.1, k=k, n=n)
        expected = [policy.running_score(scores[: i + 1]) for i in range(scores.size)]
        np.testing.assert_allclose(running_scores(scores, k, n), expected)


def test_the_fitted_policy_halts_no_clean_stream_and_smooths_out_spikes() -> None:
    rng = np.random.default_rng(1)
    streams = []
    for i in range(8):  # clean streams with one strong spike each
        scores = list(rng.uniform(0.05, 0.4, size=30))
        scores[int(rng.integers(30))] = float(rng.uniform(0.85, 0.97))
        streams.append(_stream(f"clean{i}", scores, None))
    for i in range(8):  # infringing from window 10 on: sustained 0.7-0.9
        scores = list(rng.uniform(0.05, 0.4, size=10)) + list(rng.uniform(0.7, 0.9, size=20))
        streams.append(_stream(f"bad{i}", scores, onset=20.0))
    policy = fit_stream_policy(streams)
    assert policy.k >= 2, "with k=1 a spike halts, so the threshold would sit above every spike"
    outcome = halt_outcomes(streams, policy.halt_threshold, policy.k, policy.n)
    assert outcome.false_halts == 0 and outcome.missed == 0
    assert max(outcome.delays_s) <= 2.0 * policy.n
    assert policy.validation["false_halts"] == 0 and policy.validation["true_halts"] == 8
    assert policy.review_threshold <= policy.halt_threshold
    assert policy.target_false_halts_per_hour == 0.0
    assert StreamPolicy.from_dict(json.loads(json.dumps(policy.to_dict()))) == policy


def test_a_halt_before_the_onset_is_a_false_halt() -> None:
    early = _stream("early", [0.95, 0.95, 0.1, 0.95, 0.95], onset=6.0)
    outcome = halt_outcomes([early], 0.9, 2, 3)
    assert outcome.false_halts == 1 and outcome.true_halts == 0 and outcome.missed == 1


def test_a_false_halt_budget_lets_the_threshold_fall() -> None:
    clean = [_stream(f"c{i}", [0.1, 0.8, 0.8, 0.1] * 5, None) for i in range(2)]
    bad = [_stream("b", [0.1] * 5 + [0.75] * 15, onset=10.0)]
    strict = fit_stream_policy(clean + bad, smoothing=[(2, 3)])
    assert strict.halt_threshold > 0.8 and strict.validation["true_halts"] == 0
    assert any("nothing is halted" in note for note in strict.notes)
    hours = 2 * 40 / 3600 + 10 / 3600
    loose = fit_stream_policy(
        clean + bad, smoothing=[(2, 3)], target_false_halts_per_hour=2 / hours
    )
    assert loose.halt_threshold == pytest.approx(0.75)
    assert loose.validation["true_halts"] == 1 and loose.validation["false_halts"] == 2


def test_without_a_fitted_policy_the_models_listing_policy_is_used() -> None:
    listing = Policy(reject_threshold=0.8, approve_threshold=0.3)
    live = LivestreamScorer(RednessScorer(), listing, window_s=2.0)
    assert (live.policy.halt_threshold, live.policy.review_threshold) == (0.8, 0.3)
    assert (live.policy.k, live.policy.n) == (2, 3)
    assert "not fitted on streams" in live.policy.notes[0]


def test_stream_policy_files_round_trip_and_bad_ones_are_named(tmp_path: Path) -> None:
    path = POLICY.save(tmp_path)
    assert path.name == "stream_policy.json" and StreamPolicy.load(tmp_path) == POLICY
    path.write_text(json.dumps({"halt_threshold": 0.5, "review_threshold": 0.7}))
    with pytest.raises(ValueError, match=r"stream_policy.json: StreamPolicy: expected review"):
        StreamPolicy.load(path)
    path.write_text(json.dumps({"halt_threshold": 0.5, "review_threshold": 0.1, "k": 4, "n": 3}))
    with pytest.raises(ValueError, match="k <= n"):
        StreamPolicy.load(path)
