"""The video-manifest contract's names: its columns, kinds and what validation adds.

Plain Python with no imports, like :mod:`ipguard.data.columns` for listings, so the screening
service's video inputs, the frame sampler, the demo clips and validation share one spelling
of the contract without pulling in pandera (which the service may not import). Labels are
the listing contract's (:data:`ipguard.data.columns.LABELS`): a video is ``genuine`` or
``infringing``, index 1 the positive class.
"""

from __future__ import annotations

VIDEO_COLUMNS: tuple[str, ...] = (
    "video_id",
    "video_path",
    "transcript",
    "listing_ids",
    "seller_id",
    "market",
    "language",
    "label",
    "infringement_spans",
    "recorded_at",
    "kind",
)
REQUIRED_VIDEO_COLUMNS: tuple[str, ...] = ("video_id", "video_path")
VIDEO_REQUEST_COLUMNS: tuple[str, ...] = tuple(
    c for c in VIDEO_COLUMNS if c not in ("label", "infringement_spans")
)
"""What a screening service is sent: the video, not what a reviewer found out about it."""

VIDEO_KINDS: tuple[str, ...] = ("short_video", "livestream")
"""``short_video``: a posted clip; ``livestream``: a recorded segment of a live session."""

SPAN_SEPARATOR = ";"
"""Between spans in the text form ``"3.5-8.0;12-14.2"`` (seconds), and between listing ids."""

PROBE_COLUMNS: tuple[str, ...] = (
    "video_flag",
    "duration_s",
    "fps",
    "frame_count",
    "width",
    "height",
)
"""Added to every validated row from the file itself (all missing when files are not opened):
why the video is unusable (one of :data:`ipguard.data.video_probe.VIDEO_FLAGS`, else missing)
and what its container says."""


CONTAINER_FORMATS = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,mpegts,avi,flv"
"""FFmpeg demuxers allowed to open a video (``format_whitelist``); anything else is unreadable.

Without the list FFmpeg picks a demuxer from the bytes, and an uploaded ``.m3u8`` playlist
makes it read whatever local files the playlist names; probing and decoding both pass it."""
