"""Can this video file be used? A cheap look with PyAV that flags, never raises, for bad files.

Videos on a shopping platform arrive as dead paths, uploads cut off half way, HTML error pages
saved as ``.mp4``, audio-only recordings of a livestream, and files whose header promises more
frames than the file holds. Validation and the screening service both need to know which of
these a file is *before* a DataLoader worker or a request trips over it, so
:func:`probe_video` answers with a :class:`VideoProbe`: usable (with the container's duration,
frame rate, frame count and size), or one of :data:`VIDEO_FLAGS` and a reason naming the file.

What it costs: a ``stat``, a walk over the container's top-level boxes or elements (MP4/MOV,
Matroska/WebM: a few reads), one pass over the video stream's packets without decoding them
(I/O, no pixels), and the decode of the first frame (so a codec FFmpeg cannot decode is found
here). Frame sampling and decoding proper live in :mod:`ipguard.data.video_frames`.

Pandas- and pandera-free, so the screening service can use it.
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import av

from ipguard.data.video_columns import CONTAINER_FORMATS

VIDEO_FLAGS: tuple[str, ...] = (
    "video_missing",
    "video_unreadable",
    "video_truncated",
    "video_no_stream",
)
"""Why a video cannot be used: no file; not a video FFmpeg can open or decode; cut off (the
container says more than the file holds); a container without a video stream (audio only)."""

_MP4_BOX_TYPES = frozenset({b"ftyp", b"styp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pdin"})
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_MATROSKA_SEGMENT = b"\x18\x53\x80\x67"
_MAX_BOXES = 100_000  # a file of more top-level boxes is not a video a camera wrote


@dataclass(frozen=True)
class VideoProbe:
    """What :func:`probe_video` found out about one file; no pixels kept.

    The numbers are the container's where it states them (``frames`` counted from the
    packets where it does not) and may be present on a flagged file too (a truncated MP4
    still declares its full duration); ``None`` where unknown.
    """

    flag: str | None
    """One of :data:`VIDEO_FLAGS`, or ``None`` when the video can be used."""
    detail: str
    """Why it cannot be used, or what was found; names the file."""
    duration_s: float | None = None
    fps: float | None = None
    frames: int | None = None
    width: int | None = None
    height: int | None = None
    codec: str | None = None

    def __post_init__(self) -> None:
        if self.flag is not None and self.flag not in VIDEO_FLAGS:
            raise ValueError(
                f"VideoProbe flag must be one of {VIDEO_FLAGS} or None; found {self.flag!r}"
            )

    @property
    def ok(self) -> bool:
        """True when the video can be decoded and sampled."""
        return self.flag is None


def probe_video(path: str | os.PathLike[str]) -> VideoProbe:
    """Whether the video file at ``path`` can be used, and its duration, rate, frames and size.

    Raises only for a ``path`` of the wrong type; every problem of the file itself comes back
    as a flag (:data:`VIDEO_FLAGS`) with the reason.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"probe_video expects a path (str or os.PathLike); found {type(path)}")
    if not str(path).strip():
        return VideoProbe("video_missing", "video path is empty")
    file = Path(path)
    where = f"video file '{file}'"
    problem = _file_problem(file, where)
    if problem is not None:
        return problem
    try:
        cut = _container_cut(file)
    except OSError as err:
        return VideoProbe("video_unreadable", f"{where} cannot be read: {err}")
    if cut is not None:
        return VideoProbe("video_truncated", f"{where} is truncated: {cut}")
    return _probe_streams(file, where)


def probe_videos(
    paths: Sequence[str | os.PathLike[str]], *, workers: int | None = None
) -> list[VideoProbe]:
    """:func:`probe_video` for many files, in order; ``workers`` threads (``None``: up to 8,
    one per CPU; ``0``: this thread). FFmpeg releases the GIL while it reads and decodes."""
    if workers is not None and workers < 0:
        raise ValueError(f"probe_videos: workers must be >= 0 (0: this thread); found {workers}")
    threads = min(8, os.cpu_count() or 1) if workers is None else workers
    if threads <= 1 or len(paths) <= 1:
        return [probe_video(p) for p in paths]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(probe_video, paths))


def _file_problem(file: Path, where: str) -> VideoProbe | None:
    """Why ``file`` cannot even be opened, from ``stat`` alone (a FIFO would block FFmpeg)."""
    try:
        info = file.stat()
    except FileNotFoundError:
        return VideoProbe("video_missing", f"{where} does not exist")
    except (OSError, ValueError) as err:  # ValueError: a NUL byte in the path
        return VideoProbe("video_unreadable", f"{where} cannot be accessed: {err}")
    if stat.S_ISDIR(info.st_mode):
        return VideoProbe("video_unreadable", f"{where} is a directory, expected a video file")
    if not stat.S_ISREG(info.st_mode):
        return VideoProbe("video_unreadable", f"{where} is not a regular file")
    if info.st_size == 0:
        return VideoProbe("video_unreadable", f"{where} is empty (0 bytes)")
    return None


# --- truncation seen in the container's own framing --------------------------------------------


def _container_cut(file: Path) -> str | None:
    """How the file's top-level framing says it was cut off, or ``None``.

    MP4/MOV files are a sequence of boxes, each stating its size; Matroska/WebM files hold one
    Segment element stating its size (unless written live, with an unknown size). A file that
    ends inside a box or before its Segment's end lost its tail, wherever the index (``moov``)
    sits; FFmpeg alone would call a cut file with the index at the end "invalid data" and read
    one with the index first as if it were whole.
    """
    size = file.stat().st_size
    with file.open("rb") as handle:
        head = handle.read(16)
        if len(head) >= 8 and head[4:8] in _MP4_BOX_TYPES:
            return _mp4_cut(handle, size)
        if head.startswith(_EBML_MAGIC):
            return _matroska_cut(handle, size)
    return None


def _mp4_cut(handle: BinaryIO, size: int) -> str | None:
    offset, boxes = 0, 0
    read, seek = handle.read, handle.seek
    while offset < size and boxes < _MAX_BOXES:
        seek(offset)
        header = read(16)
        if len(header) < 8:
            return f"{size - offset} stray bytes at offset {offset}, too few for a box header"
        box_size, kind = int.from_bytes(header[:4], "big"), header[4:8]
        name = kind.decode("latin-1")
        if box_size == 1:  # a 64-bit size follows the type
            if len(header) < 16:
                return f"box {name!r} at offset {offset} ends inside its own header"
            box_size = int.from_bytes(header[8:16], "big")
        elif box_size == 0:  # the last box runs to the end of the file
            return None
        if box_size < 8:
            return None  # not a box structure after all; let FFmpeg judge the file
        if offset + box_size > size:
            return (
                f"box {name!r} at offset {offset} declares {box_size} bytes, but the file ends "
                f"{offset + box_size - size} bytes short of it ({size} bytes in all)"
            )
        offset += box_size
        boxes += 1
    return None


def _matroska_cut(handle: BinaryIO, size: int) -> str | None:
    read, seek = handle.read, handle.seek
    seek(4)
    header_size, width = _ebml_size(read(8))
    if header_size is None:
        return None
    offset = 4 + width + header_size
    seek(offset)
    element = read(12)
    if element[:4] != _MATROSKA_SEGMENT:
        return None
    segment_size, width = _ebml_size(element[4:])
    if segment_size is None:  # unknown size: a live recording; nothing to compare against
        return None
    end = offset + 4 + width + segment_size
    if end > size:
        return (
            f"the Matroska Segment at offset {offset} declares {segment_size} bytes, but the "
            f"file ends {end - size} bytes short of it ({size} bytes in all)"
        )
    return None


def _ebml_size(data: bytes) -> tuple[int | None, int]:
    """An EBML variable-length size: (value, bytes it took); value ``None`` when unknown."""
    if not data or data[0] == 0:
        return None, 1
    width = 8 - data[0].bit_length() + 1
    if len(data) < width:
        return None, width
    value = data[0] & (0xFF >> width)
    for byte in data[1:width]:
        value = (value << 8) | byte
    if value == (1 << (7 * width)) - 1:  # all ones: size unknown
        return None, width
    return value, width


# --- what FFmpeg makes of it ----------------------------------------------------------------------


def _probe_streams(file: Path, where: str) -> VideoProbe:
    # FFmpeg (through PyAV) raises a range of error types on damaged or hostile input; this
    # block only runs it on untrusted bytes, so any Exception is a bad file, never a crash.
    try:
        container = av.open(
            str(file),
            mode="r",
            metadata_errors="ignore",
            options={"format_whitelist": CONTAINER_FORMATS},
        )
    except Exception as err:
        return VideoProbe(
            "video_unreadable", f"{where}: not a video FFmpeg can open ({_describe(err)})"
        )
    with container:
        if not container.streams.video:
            found = _stream_kinds(container)
            return VideoProbe(
                "video_no_stream",
                f"{where}: no video stream (found {found or 'no streams'}); "
                "expected a video with moving pictures",
            )
        stream = container.streams.video[0]
        facts = _stream_facts(container, stream)
        try:
            packets, decoded = _read_packets(container, stream)
        except Exception as err:
            return VideoProbe(
                "video_unreadable",
                f"{where}: reading the video stream failed ({_describe(err)})",
                **facts,
            )
    declared = facts["frames"]
    if declared and packets < declared:
        return VideoProbe(
            "video_truncated",
            f"{where}: the container declares {declared} frames but holds {packets}",
            **facts,
        )
    if packets == 0:
        return VideoProbe("video_unreadable", f"{where}: the video stream holds no frames", **facts)
    if not decoded:
        return VideoProbe(
            "video_unreadable",
            f"{where}: none of {packets} frames decodes with codec {facts['codec']!r}",
            **facts,
        )
    if not declared:
        facts["frames"] = packets
    return VideoProbe(None, f"{where}: {_summary(facts)}", **facts)


def _stream_kinds(container: av.container.InputContainer) -> str:
    kinds = Counter(str(stream.type) for stream in container.streams)
    return ", ".join(f"{count} {kind} stream(s)" for kind, count in sorted(kinds.items()))


def _stream_facts(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> dict[str, Any]:
    duration = None
    if stream.duration and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    elif container.duration:
        duration = container.duration / av.time_base
    rate = stream.average_rate or stream.guessed_rate
    context = stream.codec_context
    return {
        "duration_s": duration,
        "fps": float(rate) if rate else None,
        "frames": int(stream.frames) or None,
        "width": int(context.width) or None,
        "height": int(context.height) or None,
        "codec": context.name,
    }


def _read_packets(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> tuple[int, bool]:
    """(packets with data, whether a frame decoded): decodes until the first frame, then only
    counts, so a long recording costs one read of the file and one decoded picture."""
    packets, decoded = 0, False
    for packet in container.demux(stream):
        if packet.size == 0:  # the flush packet at the end
            if not decoded:
                decoded = any(True for _ in packet.decode())
            continue
        packets += 1
        if not decoded:
            decoded = any(True for _ in packet.decode())
    return packets, decoded


def _describe(err: Exception) -> str:
    return f"{type(err).__name__}: {err}"


def _summary(facts: dict[str, Any]) -> str:
    parts = [str(facts["codec"])]
    if facts["width"] and facts["height"]:
        parts.append(f"{facts['width']}x{facts['height']}")
    if facts["fps"]:
        parts.append(f"{facts['fps']:g} fps")
    if facts["duration_s"] is not None:
        parts.append(f"{facts['duration_s']:.2f} s")
    if facts["frames"]:
        parts.append(f"{facts['frames']} frames")
    return ", ".join(parts)
