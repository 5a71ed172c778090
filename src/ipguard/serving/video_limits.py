"""Refuse ``ipguard-video`` REST requests too big to be a screening call, with a 400.

A video request costs what its clips decode to: a 20-minute clip or a 200 MB upload would hold
the server for a minute while every other client waits, and MLflow's scoring server bounds a
request only by time (see :mod:`ipguard.serving.request_limits`, the listing pyfunc's limits).
So, inside ``mlflow models serve`` only (in process the caller owns its memory), the video
pyfunc refuses before it decodes anything a request over one of these limits, each set by an
environment variable of the server process (``0`` turns it off):

* ``IPGUARD_MAX_VIDEO_ROWS`` videos in one request (default 16: a video takes about a second
  on 2 cores, MLflow's request timeout is 60 s);
* ``IPGUARD_MAX_VIDEO_BYTES`` decoded bytes of one ``video_b64`` (default 64 MiB: a minute of
  phone video at 720p is 10-20 MB); read from the base64 text's length, nothing decoded;
* ``IPGUARD_MAX_VIDEO_SECONDS`` seconds one video declares (default 600: a short video; a
  livestream goes to ``ipguard-livestream``) and ``IPGUARD_MAX_VIDEO_FRAMES`` frames it
  declares (default 36,000: 10 minutes at 60 fps; decoding costs per frame), read from the
  container's header (:func:`ipguard.data.video_frames.video_length`), for clips and paths;
* ``IPGUARD_MAX_REQUEST_BYTES`` characters of text in all values together (the listing
  pyfunc's limit, default 256 MiB), so many clips under their own limit still have a bound.

A video that cannot be opened is not refused here: the predictor flags it and scores its
transcript, as outside a server.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from ipguard.data.video_frames import base64_video_bytes, video_length
from ipguard.serving.request_limits import (
    ENV_REQUEST_BYTES,
    RequestLimits,
    RequestTooLarge,
    _mib,
    check_request,
    limits_from_env,
)

ENV_VIDEO_ROWS = "IPGUARD_MAX_VIDEO_ROWS"
ENV_VIDEO_BYTES = "IPGUARD_MAX_VIDEO_BYTES"
ENV_VIDEO_SECONDS = "IPGUARD_MAX_VIDEO_SECONDS"
ENV_VIDEO_FRAMES = "IPGUARD_MAX_VIDEO_FRAMES"
_MIB = 2**20
_VARIABLES = {
    "max_rows": ENV_VIDEO_ROWS,
    "max_clip_bytes": ENV_VIDEO_BYTES,
    "max_seconds": ENV_VIDEO_SECONDS,
    "max_frames": ENV_VIDEO_FRAMES,
}


@dataclass(frozen=True)
class VideoLimits:
    """Upper bounds on one video request; ``0`` means no bound."""

    max_rows: int = 16
    max_clip_bytes: int = 64 * _MIB
    max_seconds: int = 600
    max_frames: int = 36_000
    max_request_bytes: int = RequestLimits.max_request_bytes

    def __post_init__(self) -> None:
        for name in (*_VARIABLES, "max_request_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"VideoLimits.{name} must be an int >= 0; found {value!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> VideoLimits:
        """The defaults, overridden by ``IPGUARD_MAX_VIDEO_*`` and ``IPGUARD_MAX_REQUEST_BYTES``
        (only those: a video server does not read the listing limits, so a bad
        ``IPGUARD_MAX_ROWS`` meant for the listing server cannot stop it)."""
        env = os.environ if environ is None else environ
        return cls(**limits_from_env(env, {**_VARIABLES, "max_request_bytes": ENV_REQUEST_BYTES}))


def check_video_request(frame: pd.DataFrame, limits: VideoLimits) -> None:
    """Raise :class:`~ipguard.serving.request_limits.RequestTooLarge` naming the row and the
    limit if ``frame`` breaks one: rows, then each clip's size, all text, then each video's
    declared length (the only step that opens a video, its header only)."""
    rows = len(frame)
    if limits.max_rows and rows > limits.max_rows:
        raise RequestTooLarge(
            f"request has {rows} videos, over the limit of {limits.max_rows} per request "
            f"({ENV_VIDEO_ROWS}); send them in several requests"
        )
    clips = _column(frame, "video_b64")
    if limits.max_clip_bytes:
        for row, clip in enumerate(clips):
            decoded = len(clip) * 3 // 4 if isinstance(clip, str) else 0
            if decoded > limits.max_clip_bytes:
                raise RequestTooLarge(
                    f"{_where(frame, row)}: video_b64 is {len(clip)} characters, about "
                    f"{_mib(decoded)} decoded, over the limit of {_mib(limits.max_clip_bytes)} "
                    f"per clip ({ENV_VIDEO_BYTES}); send a shorter or smaller clip"
                )
    text = RequestLimits(max_rows=0, max_image_bytes=0, max_request_bytes=limits.max_request_bytes)
    check_request(frame, text)  # all values' text together, the listing pyfunc's bound
    if limits.max_seconds or limits.max_frames:
        paths = _column(frame, "video_path")
        for row in range(rows):
            _check_length(frame, row, clips[row], paths[row], limits)


def _check_length(
    frame: pd.DataFrame, row: int, clip: object, path: object, limits: VideoLimits
) -> None:
    # the same choice as the predictor's: a clip that was sent first, else the path
    source: bytes | str | None = None
    if isinstance(clip, str) and clip.strip():
        source = base64_video_bytes(clip)
    elif isinstance(path, str) and path.strip():
        source = path
    length = video_length(source) if source is not None else None
    if length is None:
        return  # missing or unreadable: flagged by the predictor, not refused
    container = length.container.split(",")[0]
    if limits.max_seconds and length.seconds is not None and length.seconds > limits.max_seconds:
        raise RequestTooLarge(
            f"{_where(frame, row)}: the video is {length.seconds:.1f} s long (its {container} "
            f"header), over the limit of {limits.max_seconds} s per video ({ENV_VIDEO_SECONDS}); "
            "send a shorter clip, or screen a long recording with ipguard-livestream"
        )
    if limits.max_frames and length.frames is not None and length.frames > limits.max_frames:
        raise RequestTooLarge(
            f"{_where(frame, row)}: the video has {length.frames} frames (its {container} "
            f"header), over the limit of {limits.max_frames} per video ({ENV_VIDEO_FRAMES}); "
            "send a shorter clip or a lower frame rate"
        )


def _column(frame: pd.DataFrame, name: str) -> list[object]:
    return frame[name].tolist() if name in frame.columns else [None] * len(frame)


def _where(frame: pd.DataFrame, row: int) -> str:
    video = frame["video_id"].iloc[row] if "video_id" in frame.columns else None
    return f"row {row} (video_id {video!r})"
