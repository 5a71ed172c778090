"""Decode a video with PyAV and keep the few frames worth screening, or flag why it cannot be used.

A short video or a livestream is screened on a handful of frames, not on every one: frames at a
uniform rate (``SamplingConfig.rate`` per second, so a 60 s clip at 1 fps gives 60) plus the
first frame after each scene change (a cut to a new product, the moment a counterfeit bag is
held up), capped at ``max_frames``. The video is streamed in one pass, packet by packet; only
the kept frames are converted to RGB (shrunk on decode to ``max_side``), every other frame is
decoded (the codec needs it as a reference) and reduced to a 16x16 thumbnail for the scene score,
so memory holds at most ``max_frames`` small frames whatever the video's length. Frames that no
other frame refers to need not be decoded at all: at 15 frames a second and more they are
skipped (``SamplingConfig.skip_frames``), which halves the decoding of a typical H.264 upload.

Scene score: the mean absolute difference of 16x16 RGB thumbnails of consecutive decoded
frames, 0..1 (colour, not grey: a red bag swapped for a blue one of the same brightness is a
cut). As in FFmpeg's ``select='gt(scene,...)'``, a spike is what counts: the score is
``min(d_t, |d_t - d_{t-1}|)``, so a steady pan or a shaky hand-held phone (large but sustained
differences) does not read as a cut every frame, while a hard cut does.

Over the cap, scene-change frames are kept first and the uniform frames are thinned evenly:
every other one is dropped (the uniform rate halves) until the frames fit, so the uniform frames
that survive are still evenly spaced; if scene frames alone exceed the cap, the weakest cuts go.
A long video therefore keeps between ``max_frames / 2`` and ``max_frames`` frames.

Like :mod:`ipguard.data.images`, bad input never raises: a missing file, bytes that are no
video, a file cut off half-way (a failed upload) or corrupt packets give a :class:`SampledVideo`
with whatever frames could be decoded and one of :data:`VIDEO_FLAGS`. Only the container formats
in :data:`CONTAINER_FORMATS` are opened, so untrusted bytes never reach FFmpeg's playlist
demuxers (an HLS playlist would make FFmpeg read other local files).

Which formats work from a pipe (a non-seekable stream, :func:`iter_windows`): MPEG-TS, Matroska
and WebM, FLV, fragmented MP4 (``movflags=frag_keyframe+empty_moov``) and MP4 written with
``movflags=faststart``. A plain MP4 whose index (``moov``) is written last cannot be read from a
pipe, and cut off it cannot be read at all (nothing decodes: ``video_unreadable``).
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import av
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from ipguard.data.columns import LABEL_INDEX
from ipguard.data.transforms import Preprocessing, build_eval_transform
from ipguard.data.video_columns import CONTAINER_FORMATS

VIDEO_FLAGS = (
    "video_missing",
    "video_unreadable",
    "video_truncated",
    "video_no_stream",
    "video_corrupt",
)
"""Why a video's frames are missing or incomplete; the screening output carries these in ``flags``.

``video_missing``: no path, or no file there. ``video_unreadable``: nothing could be decoded.
``video_truncated``: decoding stopped before the end the container declares (a cut-off upload);
the frames before the cut are kept. ``video_no_stream``: a container without a video stream (an
audio-only recording). ``video_corrupt``: some packets failed to decode and were skipped; the
frames around them are kept. The first four are the flags :mod:`ipguard.data.video_probe` gives.
"""

SKIP_FRAMES = ("auto", "none", "nonref")
"""Which frames the decoder may skip: see :attr:`SamplingConfig.skip_frames`."""
#: ``skip_frames="auto"`` skips non-reference frames from this stream frame rate up
AUTO_SKIP_MIN_FPS = 15.0

REASONS = ("uniform", "scene")
"""Why a frame was kept: on the uniform grid, or as the first frame after a scene change."""


# Containers whose header declares the duration (so a file that decodes short was cut off).
# MPEG-TS has no such header: FFmpeg estimates its duration from the bytes present, so a
# truncated .ts file is indistinguishable from a short one and is not flagged.
_DECLARES_DURATION = ("mov", "mp4", "matroska", "webm", "avi")
_THUMB_SIDE = 16
_MAX_CONSECUTIVE_ERRORS = 25
_DATA_URL_PREFIX = re.compile(r"^data:[^,]*;base64,", re.IGNORECASE)

VideoSource = str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO
"""A path, the file's bytes, or a binary file-like object (a pipe, ``sys.stdin.buffer``)."""


@dataclass(frozen=True)
class SamplingConfig:
    """Which frames of a video are decoded into pixels, and how large."""

    rate: float = 1.0
    """Uniform frames per second of video (the first frame at or after each 1/rate s mark)."""
    scene_threshold: float | None = 0.3
    """Scene score (0..1) above which a frame is kept as a scene change; None: uniform only."""
    max_frames: int = 64
    """Most frames kept per video (per window for :func:`iter_windows`); see the module doc."""
    min_gap_s: float = 0.25
    """A scene-change frame is kept only this long after the previous kept frame (no bursts)."""
    max_side: int = 256
    """Kept frames are shrunk on decode so their longer side is at most this many pixels."""
    decode_threads: int = 0
    """FFmpeg decoder threads; 0 lets FFmpeg choose. Use 1 inside many DataLoader workers."""
    skip_frames: str = "auto"
    """``"nonref"``: the decoder skips the frames no other frame refers to (FFmpeg's
    ``skip_frame=NONREF``: most B-frames, about half of an H.264 phone upload, half its decoding
    time); kept frames are then the first *decoded* frame at or after each mark, or after a cut,
    a frame or two later than with ``"none"`` (every frame decoded). ``"auto"``: ``"nonref"``
    for streams of at least :data:`AUTO_SKIP_MIN_FPS` frames a second, where a skipped frame
    is a few hundredths of a second from a decoded one, else ``"none"``."""

    def __post_init__(self) -> None:
        _check_number("rate", self.rate, low=0.0, low_open=True)
        if self.scene_threshold is not None:
            _check_number("scene_threshold", self.scene_threshold, low=0.0, high=1.0)
        _check_int("max_frames", self.max_frames, low=1)
        _check_number("min_gap_s", self.min_gap_s, low=0.0)
        _check_int("max_side", self.max_side, low=8)
        _check_int("decode_threads", self.decode_threads, low=0)
        if self.skip_frames not in SKIP_FRAMES:
            raise ValueError(
                f"SamplingConfig.skip_frames must be one of {SKIP_FRAMES}; "
                f"found {self.skip_frames!r}"
            )


@dataclass(frozen=True)
class SampledVideo:
    """The frames kept from one video, in time order, or the flag that says why there are none."""

    frames: list[np.ndarray]
    """HxWx3 uint8 RGB arrays, longer side <= ``max_side``, display rotation applied."""
    timestamps: list[float]
    """Seconds from the start of the video (stream start time), from each frame's PTS."""
    reasons: list[str]
    """One of :data:`REASONS` per frame."""
    scene_scores: list[float]
    """The scene score (0..1) of each kept frame against the frame before it."""
    duration_s: float | None
    """Duration the container declares, else the decoded span; None when nothing decoded."""
    fps: float | None
    """The stream's average frame rate, None when the container does not say."""
    flags: tuple[str, ...] = ()
    """Members of :data:`VIDEO_FLAGS`; empty for a video decoded to the end."""
    detail: str = ""
    """Human-readable account: what was decoded, or why not, naming the source."""
    frames_decoded: int = 0
    """How many frames the decoder produced (kept or not)."""

    @property
    def ok(self) -> bool:
        """True when at least one frame was kept."""
        return bool(self.frames)


@dataclass(frozen=True)
class Window:
    """The frames kept from one stretch ``[start_s, end_s)`` of a stream, for live screening."""

    index: int
    """0, 1, 2, ... in stream order; windows are consecutive, an empty stretch is still yielded."""
    start_s: float
    """Seconds from the stream's start."""
    end_s: float
    """``start_s + window_s``; for the last window, just after its last decoded frame."""
    frames: list[np.ndarray]
    timestamps: list[float]
    reasons: list[str]
    scene_scores: list[float]
    flags: tuple[str, ...] = ()
    """:data:`VIDEO_FLAGS` raised while decoding, on the window where they arose."""
    detail: str = ""


# --------------------------------------------------------------------------- public functions


def sample_frames(source: VideoSource, config: SamplingConfig | None = None) -> SampledVideo:
    """Stream ``source`` once and keep its uniform and scene-change frames (see the module doc).

    Never raises for bad input (see :data:`VIDEO_FLAGS`); raises ``TypeError`` only for a
    ``source`` of the wrong type. Base64 text (a REST payload) goes to
    :func:`sample_frames_base64` instead: a ``str`` here is always a path.
    """
    config = config or SamplingConfig()
    opened = _open(source, container_format=None)
    if isinstance(opened, _Failure):
        return _failed(opened)
    with opened.container:
        keeper = _Keeper(config, first_due=0, aspect=opened.aspect)
        scorer = _SceneScorer()
        decoder = _Decoder(opened, config)
        for time_s, frame in decoder.frames():
            keeper.offer(time_s, frame, scorer.score(frame) if config.scene_threshold else 0.0)
        result = decoder.finish()
    kept = keeper.kept
    duration = result.declared_s if result.declared_s is not None else result.decoded_s
    return SampledVideo(
        frames=[k.image for k in kept],
        timestamps=[k.time_s for k in kept],
        reasons=[k.reason for k in kept],
        scene_scores=[k.score for k in kept],
        duration_s=duration if result.frames_decoded else None,
        fps=opened.fps,
        flags=result.flags,
        detail=f"{opened.where}: {result.describe(len(kept))}",
        frames_decoded=result.frames_decoded,
    )


def sample_frames_base64(b64: str, config: SamplingConfig | None = None) -> SampledVideo:
    """:func:`sample_frames` on a base64-encoded clip, as a REST client sends it.

    Accepts a ``data:video/...;base64,`` prefix, line breaks, the URL-safe alphabet and missing
    padding; an empty string is ``video_missing``, text that is not base64 ``video_unreadable``.
    """
    if not isinstance(b64, str):
        raise TypeError(f"sample_frames_base64 expects a str; found {type(b64).__name__}")
    data = _base64_bytes(b64)
    return _failed(data) if isinstance(data, _Failure) else sample_frames(data, config)


def base64_video_bytes(b64: str) -> bytes | None:
    """The clip a REST payload carries, read as :func:`sample_frames_base64` reads it; None
    when nothing was sent or it is not base64."""
    data = _base64_bytes(b64)
    return None if isinstance(data, _Failure) else data


@dataclass(frozen=True)
class VideoLength:
    """How long a video says it is, from its container's header (nothing decoded)."""

    seconds: float | None
    """The declared duration; FFmpeg's estimate from the bit rate where the format declares
    none (MPEG-TS); None when neither is known."""
    frames: int | None
    """Frames the stream declares, else ``seconds`` x its average rate; None when unknown."""
    container: str


def video_length(source: VideoSource) -> VideoLength | None:
    """The length a video declares, or None when FFmpeg cannot open it (then decoding flags it).

    Costs the container's header, not a decode: a service checks a request against its limits
    before spending the decode on it."""
    opened = _open(source, container_format=None)
    if isinstance(opened, _Failure):
        return None
    with opened.container as container:
        stream = opened.stream
        seconds = opened.declared_s
        if seconds is None and container.duration is not None:
            seconds = container.duration / av.time_base
        frames = int(stream.frames) if stream.frames else None
        if frames is None and seconds is not None and opened.fps:
            frames = math.ceil(seconds * opened.fps)
        return VideoLength(seconds, frames, container.format.name)


def iter_windows(
    source: VideoSource,
    window_s: float,
    config: SamplingConfig | None = None,
    *,
    container_format: str | None = None,
) -> Iterator[Window]:
    """Read a stream incrementally and yield its sampled frames window by window.

    Each window is yielded as soon as a frame past its end has been decoded (or the stream
    ends), so a consumer scores a livestream while it is still arriving; memory holds one
    window's kept frames. ``source`` may be a path (a file, or a named pipe) or a binary
    file-like object read front to back (``sys.stdin.buffer``, a socket file); name the
    container with ``container_format`` (``"mpegts"``, ``"matroska"``, ...) when the stream
    cannot be probed cheaply. The uniform grid and the scene score run on across windows;
    ``max_frames`` caps each window. A stream that cannot be opened yields one empty window
    carrying its flag, so a consumer always hears why a stream gave nothing.
    """
    _check_number("window_s", window_s, low=0.0, low_open=True, owner="iter_windows")
    config = config or SamplingConfig()
    opened = _open(source, container_format=container_format)
    if isinstance(opened, _Failure):
        yield Window(0, 0.0, 0.0, [], [], [], [], (opened.flag,), opened.detail)
        return
    with opened.container:
        decoder = _Decoder(opened, config)
        scorer = _SceneScorer()
        index = 0
        keeper = _Keeper(config, first_due=0, aspect=opened.aspect)
        last_time = 0.0
        for time_s, frame in decoder.frames():
            while time_s >= (index + 1) * window_s:
                yield _window(index, window_s, keeper, (index + 1) * window_s, ())
                index += 1
                keeper = _Keeper(
                    config,
                    first_due=math.ceil(index * window_s * config.rate - 1e-6),
                    aspect=opened.aspect,
                )
            keeper.offer(time_s, frame, scorer.score(frame) if config.scene_threshold else 0.0)
            last_time = time_s
        result = decoder.finish()
    if result.frames_decoded == 0:
        flags = result.flags or ("video_unreadable",)
        yield Window(0, 0.0, 0.0, [], [], [], [], flags, f"{opened.where}: {result.describe(0)}")
        return
    end = min((index + 1) * window_s, last_time + (1.0 / opened.fps if opened.fps else 0.0))
    yield _window(
        index, window_s, keeper, end, result.flags, f"{opened.where}: {result.describe()}"
    )


# --------------------------------------------------------------------------- the dataset


class VideoFrameDataset(Dataset[dict[str, Any]]):
    """Rows of a video manifest frame as model inputs, decoded lazily in ``__getitem__``.

    A DataLoader worker decodes its own video: the dataset holds only paths, transcripts and
    labels, never pixels. Frames go through the listing pipeline's eval transform (letterbox to
    ``image_size``, ImageNet normalisation), so a frame is preprocessed exactly like a listing
    photo and the image tower sees the same pixels in both. Each item pads the frames to
    ``config.max_frames``: ``frames`` (T, 3, S, S) float, ``frame_mask`` (T,) bool,
    ``timestamps`` (T,) seconds; a video that cannot be decoded has every mask entry false and
    its flag in ``flags``, never an exception. ``label`` is 0/1, or -1 when the frame has no
    ``label`` column (scoring). Use :func:`collate_videos` as the DataLoader's ``collate_fn``.

    ``transform`` replaces the eval transform (it is called as ``transform(image=HxWx3 uint8)``
    and must return ``{"image": FloatTensor[3, image_size, image_size]}``); note that a random
    augmentation is drawn afresh for every frame.
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        root: str | Path,
        *,
        config: SamplingConfig | None = None,
        transform: Callable[..., dict[str, Any]] | None = None,
        image_size: int = 128,
    ) -> None:
        for column in ("video_id", "video_path"):
            if column not in frame.columns:
                raise ValueError(
                    f"VideoFrameDataset: the video manifest frame has no {column!r} column; "
                    f"found columns {list(frame.columns)}"
                )
        frame = frame.reset_index(drop=True)
        self.root = Path(root)
        self.config = config or SamplingConfig()
        self.image_size = int(image_size)
        self.transform = transform or build_eval_transform(Preprocessing(image_size=image_size))
        self.video_ids = [str(v) for v in frame["video_id"].tolist()]
        self.paths = [_text(v) for v in frame["video_path"].tolist()]
        self.transcripts = (
            [_text(v) or "" for v in frame["transcript"].tolist()]
            if "transcript" in frame.columns
            else [""] * len(frame)
        )
        self.labels = _labels(frame)

    def __len__(self) -> int:
        return len(self.video_ids)

    def __getitem__(self, idx: int) -> dict[str, Any]:
        rel = self.paths[idx]
        if rel is None:
            sampled = _failed(_Failure("video_missing", f"row {idx}: video_path is empty"))
        else:
            sampled = sample_frames(self.root / rel, self.config)
        length, size = self.config.max_frames, self.image_size
        frames = torch.zeros(length, 3, size, size)
        mask = torch.zeros(length, dtype=torch.bool)
        times = torch.zeros(length, dtype=torch.float32)
        for slot, (image, time_s) in enumerate(
            zip(sampled.frames, sampled.timestamps, strict=True)
        ):
            frames[slot] = self.transform(image=image)["image"]
            mask[slot] = True
            times[slot] = time_s
        return {
            "index": idx,
            "video_id": self.video_ids[idx],
            "frames": frames,
            "frame_mask": mask,
            "timestamps": times,
            "transcript": self.transcripts[idx],
            "label": int(self.labels[idx]),
            "flags": sampled.flags,
            "duration_s": float("nan") if sampled.duration_s is None else sampled.duration_s,
        }


def collate_videos(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batch :class:`VideoFrameDataset` items: tensors stacked, text and flags kept as lists.

    ``frames`` (B, T, 3, S, S), ``frame_mask`` and ``timestamps`` (B, T), ``label``, ``index``
    and ``duration_s`` (B,); ``video_id``, ``transcript`` and ``flags`` are lists of length B.
    """
    if not items:
        raise ValueError("collate_videos needs at least one item; found an empty batch")
    return {
        "index": torch.tensor([item["index"] for item in items], dtype=torch.long),
        "video_id": [item["video_id"] for item in items],
        "frames": torch.stack([item["frames"] for item in items]),
        "frame_mask": torch.stack([item["frame_mask"] for item in items]),
        "timestamps": torch.stack([item["timestamps"] for item in items]),
        "transcript": [item["transcript"] for item in items],
        "label": torch.tensor([item["label"] for item in items], dtype=torch.long),
        "flags": [item["flags"] for item in items],
        "duration_s": torch.tensor([item["duration_s"] for item in items], dtype=torch.float64),
    }


# --------------------------------------------------------------------------- opening


@dataclass(frozen=True)
class _Failure:
    flag: str
    detail: str


@dataclass
class _Opened:
    container: Any
    stream: Any
    where: str
    fps: float | None
    origin_s: float | None
    declared_s: float | None
    aspect: float | None


def _open(source: VideoSource, *, container_format: str | None) -> _Opened | _Failure:
    target: Any
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        where = f"in-memory video ({len(data)} bytes)"
        if not data:
            return _Failure("video_unreadable", f"{where}: no bytes to decode")
        target = io.BytesIO(data)
    elif isinstance(source, (str, os.PathLike)):
        if not str(source).strip():
            return _Failure("video_missing", "video path is empty")
        path = Path(source)
        where = f"video file '{path}'"
        if not path.exists():
            return _Failure("video_missing", f"{where} does not exist")
        if path.is_dir():
            return _Failure("video_unreadable", f"{where} is a directory, expected a video file")
        target = str(path)
    elif hasattr(source, "read"):
        where = f"video stream {getattr(source, 'name', type(source).__name__)!r}"
        target = source if _seekable(source) else _PipeReader(source)
    else:
        raise TypeError(
            "expected a video path, its bytes or a binary file-like object; "
            f"found {type(source).__name__}"
        )
    try:
        container = av.open(
            target,
            mode="r",
            format=container_format,
            options={"format_whitelist": CONTAINER_FORMATS},
        )
    except (av.FFmpegError, OSError, ValueError) as err:
        return _Failure("video_unreadable", f"{where}: not a video FFmpeg can open ({err})")
    if not container.streams.video:
        container.close()
        return _Failure(
            "video_no_stream", f"{where}: the {container.format.name} file has no video stream"
        )
    stream = container.streams.video[0]
    return _Opened(
        container=container,
        stream=stream,
        where=where,
        fps=_seconds(stream.average_rate, 1) or None,
        origin_s=_seconds(stream.start_time, stream.time_base),
        declared_s=_declared_duration(container, stream),
        aspect=_seconds(stream.sample_aspect_ratio, 1),
    )


class _PipeReader:
    """A non-seekable stream as FFmpeg should read it: whatever bytes have arrived.

    PyAV asks for a buffer's worth with ``read(n)``, and a buffered pipe
    (``sys.stdin.buffer``) blocks until all ``n`` bytes are there, which would hold a live
    window back until a whole buffer had arrived; ``read1`` returns what is available. No
    ``seek`` attribute, so FFmpeg knows it cannot seek.
    """

    def __init__(self, stream: Any) -> None:
        self._read = stream.read1 if hasattr(stream, "read1") else stream.read
        self.name = getattr(stream, "name", type(stream).__name__)

    def read(self, size: int = -1) -> bytes:
        return bytes(self._read(size))


def _seekable(stream: Any) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _declared_duration(container: Any, stream: Any) -> float | None:
    if not any(name in container.format.name.split(",") for name in _DECLARES_DURATION):
        return None
    declared = _seconds(stream.duration, stream.time_base)
    if declared is None and container.duration is not None:
        declared = container.duration / av.time_base
    return declared


def _seconds(value: int | Fraction | None, unit: Fraction | int | None) -> float | None:
    if value is None or unit is None:
        return None
    return float(value * unit)


# --------------------------------------------------------------------------- decoding


@dataclass
class _DecodeResult:
    frames_decoded: int = 0
    decoded_s: float = 0.0
    declared_s: float | None = None
    packet_errors: int = 0
    stopped: str = ""
    flags: tuple[str, ...] = ()

    def describe(self, kept: int | None = None) -> str:
        parts = [f"decoded {self.frames_decoded} frames up to {self.decoded_s:.2f} s"]
        if self.declared_s is not None:
            parts.append(f"of {self.declared_s:.2f} s declared")
        if kept is not None:
            parts.append(f"kept {kept}")
        if self.packet_errors:
            parts.append(f"{self.packet_errors} packets failed to decode")
        if self.stopped:
            parts.append(f"stopped early: {self.stopped}")
        return ", ".join(parts)


class _Decoder:
    """Frames of the first video stream with their time in seconds from the stream's start,
    skipping packets that fail to decode and stopping where the container itself breaks."""

    def __init__(self, opened: _Opened, config: SamplingConfig) -> None:
        self.opened = opened
        self.stream = opened.stream
        self.stream.thread_type = "AUTO"
        if config.decode_threads:
            self.stream.codec_context.thread_count = config.decode_threads
        self.skipping = skip_mode(config, opened.fps) == "nonref"
        if self.skipping:
            self.stream.codec_context.skip_frame = "NONREF"
        self.result = _DecodeResult(declared_s=opened.declared_s)
        self.origin = opened.origin_s
        self.step = 1.0 / opened.fps if opened.fps else 0.0
        self.widest_gap = 0.0  # between consecutive decoded frames

    def frames(self) -> Iterator[tuple[float, Any]]:
        previous: float | None = None
        consecutive = 0
        packets = self.opened.container.demux(self.stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except (av.FFmpegError, OSError) as err:
                self.result.stopped = f"reading the container failed ({err})"
                return
            try:
                decoded = packet.decode()
            except av.FFmpegError as err:
                self.result.packet_errors += 1
                consecutive += 1
                if consecutive >= _MAX_CONSECUTIVE_ERRORS:
                    self.result.stopped = f"{consecutive} packets in a row failed ({err})"
                    return
                continue
            consecutive = 0
            for frame in decoded:
                time_s = self._time(frame, previous)
                if previous is not None:
                    self.widest_gap = max(self.widest_gap, time_s - previous)
                previous = time_s
                self.result.frames_decoded += 1
                self.result.decoded_s = max(self.result.decoded_s, time_s + self.step)
                yield time_s, frame

    def _time(self, frame: Any, previous: float | None) -> float:
        if frame.pts is None or frame.time_base is None:
            return 0.0 if previous is None else previous + self.step
        absolute = float(frame.pts * frame.time_base)
        if self.origin is None:
            self.origin = absolute
        return max(0.0, absolute - self.origin)

    def finish(self) -> _DecodeResult:
        result = self.result
        # skipped frames may include the last ones: allow one gap between decoded frames more
        slack = max(0.5, 2 * self.step, 2 * self.widest_gap if self.skipping else 0.0)
        short = (
            result.declared_s is not None
            and result.frames_decoded > 0
            and result.declared_s - result.decoded_s > slack
        )
        if result.frames_decoded == 0:
            result.flags = ("video_unreadable",)
        elif result.stopped or short:
            result.flags = ("video_truncated",)
        elif result.packet_errors:
            result.flags = ("video_corrupt",)
        return result


# --------------------------------------------------------------------------- choosing frames


def skip_mode(config: SamplingConfig, fps: float | None) -> str:
    """``"nonref"`` or ``"none"``: what :attr:`SamplingConfig.skip_frames` means for a stream."""
    if config.skip_frames == "auto":
        return "nonref" if fps is not None and fps >= AUTO_SKIP_MIN_FPS else "none"
    return config.skip_frames


class _SceneScorer:
    """``min(d_t, |d_t - d_{t-1}|)`` over 16x16 RGB thumbnails of consecutive decoded frames,
    0..1.

    With non-reference frames skipped, decoded frames are one or two frames apart, so a steady
    pan's differences alternate a little and its score rises, still far below the default
    threshold of 0.3 (measured on 30 fps test pans of 3-8 px a frame: at most 0.041, against
    0.008 with every frame decoded). Scaling the previous difference by the ratio of the gaps
    was tried and is worse (up to 0.12): differences saturate on fast pans."""

    def __init__(self) -> None:
        self.previous: np.ndarray | None = None
        self.previous_diff: float | None = None

    def score(self, frame: Any) -> float:
        thumb = _thumbnail(frame)
        previous, self.previous = self.previous, thumb
        if previous is None:
            return 0.0
        diff = float(np.abs(thumb - previous).mean()) / 255.0
        before, self.previous_diff = self.previous_diff, diff
        # The second frame has no difference to compare with: a spike cannot be told from a pan.
        return 0.0 if before is None else min(diff, abs(diff - before))


_PLANAR_YUV = ("yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p")
_YUV_TO_RGB = np.array(
    [[1.0, 0.0, 1.402], [1.0, -0.344136, -0.714136], [1.0, 1.772, 0.0]], dtype=np.float32
)


def _thumbnail(frame: Any) -> np.ndarray:
    """A 16x16 RGB thumbnail (float, 0..255) for the scene score.

    The usual 8-bit planar YUV frames are sampled on a 64x64 grid straight from their planes
    and averaged in 4x4 blocks, without converting the frame: swscale's resize to 16x16 cost
    three times the decode of a 360p frame. Other pixel formats go through swscale."""
    if frame.format.name not in _PLANAR_YUV:
        small = frame.reformat(width=_THUMB_SIDE, height=_THUMB_SIDE, format="rgb24")
        return small.to_ndarray().astype(np.float32)
    grid = 4 * _THUMB_SIDE
    channels = []
    for plane in frame.planes:
        pixels = np.frombuffer(plane, dtype=np.uint8).reshape(plane.height, plane.line_size)
        rows = (np.arange(grid) * plane.height) // grid
        cols = (np.arange(grid) * plane.width) // grid
        sampled = pixels[rows[:, None], cols[None, :]].astype(np.float32)
        channels.append(sampled.reshape(_THUMB_SIDE, 4, _THUMB_SIDE, 4).mean(axis=(1, 3)))
    yuv = np.stack(channels, axis=-1) - np.array([0.0, 128.0, 128.0], dtype=np.float32)
    return np.clip(yuv @ _YUV_TO_RGB.T, 0.0, 255.0)


@dataclass
class _Kept:
    time_s: float
    reason: str
    score: float
    grid: int | None
    image: np.ndarray = field(repr=False)


class _Keeper:
    """The kept frames of one video (or one window), within ``max_frames`` at every moment."""

    def __init__(self, config: SamplingConfig, *, first_due: int, aspect: float | None) -> None:
        self.config = config
        self.aspect = aspect
        self.kept: list[_Kept] = []
        self.stride = 1
        self.due = first_due
        self.last_kept: float | None = None
        self.size: tuple[int, int] | None = None

    def offer(self, time_s: float, frame: Any, score: float) -> None:
        config = self.config
        grid = math.floor(time_s * config.rate + 1e-6)
        uniform = grid >= self.due
        threshold = config.scene_threshold
        scene = (
            threshold is not None
            and score > threshold
            and (self.last_kept is None or time_s - self.last_kept >= config.min_gap_s)
        )
        if not (uniform or scene):
            return
        if uniform:
            self.due = (grid // self.stride + 1) * self.stride
        reason = "scene" if scene else "uniform"
        image = self._pixels(frame)
        self.kept.append(_Kept(time_s, reason, score, None if scene else grid, image))
        self.last_kept = time_s
        while len(self.kept) > config.max_frames:
            self._shed()

    def _shed(self) -> None:
        """Thin the uniform frames to half their rate or, when only one is left, drop the weakest
        scene change."""
        uniform = [k for k in self.kept if k.grid is not None]
        if len(uniform) > 1:
            while True:
                self.stride *= 2
                survivors = _thin(uniform, self.stride)
                if len(survivors) < len(uniform):
                    break
            dropped = {id(k) for k in uniform} - {id(k) for k in survivors}
            self.kept = [k for k in self.kept if id(k) not in dropped]
            last_grid = survivors[-1].grid
            assert last_grid is not None
            self.due = (last_grid // self.stride + 1) * self.stride
            return
        scenes = [k for k in self.kept if k.grid is None]
        weakest = min(scenes, key=lambda k: k.score)
        self.kept = [k for k in self.kept if k is not weakest]

    def _pixels(self, frame: Any) -> np.ndarray:
        if self.size is None:
            self.size = _display_size(frame, self.aspect, self.config.max_side)
        width, height = self.size
        image = frame.reformat(
            width=width, height=height, format="rgb24", interpolation="AREA"
        ).to_ndarray()
        turns = round((frame.rotation or 0) / 90) % 4
        return np.ascontiguousarray(np.rot90(image, k=turns)) if turns else image


def _thin(uniform: list[_Kept], stride: int) -> list[_Kept]:
    """The uniform frames on a grid ``stride`` times coarser: the first of each block of
    ``stride`` grid points."""
    survivors: list[_Kept] = []
    for kept in uniform:
        assert kept.grid is not None
        if not survivors or kept.grid // stride > (survivors[-1].grid or 0) // stride:
            survivors.append(kept)
    return survivors


def _display_size(frame: Any, aspect: float | None, max_side: int) -> tuple[int, int]:
    """Width and height to decode to: square pixels (sample aspect ratio applied), the longer
    side at most ``max_side``, never enlarged."""
    width, height = float(frame.width), float(frame.height)
    if aspect:
        width *= float(aspect)
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _window(
    index: int,
    window_s: float,
    keeper: _Keeper,
    end_s: float,
    flags: tuple[str, ...],
    detail: str = "",
) -> Window:
    kept = keeper.kept
    return Window(
        index=index,
        start_s=index * window_s,
        end_s=end_s,
        frames=[k.image for k in kept],
        timestamps=[k.time_s for k in kept],
        reasons=[k.reason for k in kept],
        scene_scores=[k.score for k in kept],
        flags=flags,
        detail=detail,
    )


# --------------------------------------------------------------------------- small helpers


def _base64_bytes(b64: str) -> bytes | _Failure:
    where = f"base64 video ({len(b64)} characters)"
    text = "".join(_DATA_URL_PREFIX.sub("", b64.strip()).split())
    if not text:
        return _Failure("video_missing", f"{where}: empty, no video sent")
    padded = text + "=" * (-len(text) % 4)
    try:
        altchars = b"-_" if ("-" in text or "_" in text) else None
        return base64.b64decode(padded, altchars=altchars, validate=True)
    except (binascii.Error, ValueError) as err:
        return _Failure("video_unreadable", f"{where}: not valid base64 ({err})")


def _failed(failure: _Failure) -> SampledVideo:
    return SampledVideo(
        frames=[],
        timestamps=[],
        reasons=[],
        scene_scores=[],
        duration_s=None,
        fps=None,
        flags=(failure.flag,),
        detail=failure.detail,
    )


def _text(value: object) -> str | None:
    if value is None or (not isinstance(value, str) and bool(pd.isna(value))):
        return None
    text = str(value)
    return text if text.strip() else None


def _labels(frame: pd.DataFrame) -> np.ndarray:
    if "label" not in frame.columns:
        return np.full(len(frame), -1, dtype=np.int64)
    mapped = frame["label"].map(
        lambda v: LABEL_INDEX.get(v.strip().lower()) if isinstance(v, str) else None
    )
    bad = [int(i) for i in np.flatnonzero(mapped.isna().to_numpy())]
    if bad:
        row = bad[0]
        raise ValueError(
            f"VideoFrameDataset: row {row}, column 'label': expected one of "
            f"{sorted(LABEL_INDEX)}, found {frame['label'].iloc[row]!r} "
            f"({len(bad)} rows like this; validate the manifest first)"
        )
    return mapped.to_numpy(dtype=np.int64)


def _check_number(
    name: str,
    value: object,
    *,
    low: float,
    high: float | None = None,
    low_open: bool = False,
    owner: str = "SamplingConfig",
) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        number = float(value)  # type: ignore[arg-type]
        ok = (number > low if low_open else number >= low) and (high is None or number <= high)
    if not ok:
        bound = f"> {low}" if low_open else f">= {low}"
        if high is not None:
            bound += f" and <= {high}"
        raise ValueError(f"{owner}.{name} must be a finite number {bound}; found {value!r}")


def _check_int(name: str, value: object, *, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"SamplingConfig.{name} must be an int >= {low}; found {value!r}")
