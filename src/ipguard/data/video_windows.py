"""Short windows cut from a clip's cached frame features, for training on what a stream gives.

The livestream scorer scores 4-second windows (2-8 frames); a model trained on whole clips
(up to 24 frames) never saw so few frames at once, and its window scores did not separate
infringing streams from clean ones. So, for training, each clip also yields a few random
contiguous windows of its sampled frames (from the frame-feature cache: no decoding).

A window's label:

- the clip has ``infringement_spans`` (given, possibly ``[]``): infringing only if one of the
  window's frames lies inside a span (the frames are what the model sees; a window that only
  grazes a span between two sampled frames shows nothing of it), else genuine. The window
  carries no transcript: the manifest's words are untimed, so they cannot be placed in a
  window, and an infringing clip's counterfeit wording on a window labelled genuine would
  teach the text tower the opposite of the truth;
- no spans given (every genuine clip, and an infringing one whose infringement is not
  located, e.g. in its words): the clip's label and the clip's transcript, as multiple-
  instance learning would read the clip.

A window holds at least one frame (draws over a gap with none are redrawn, then skipped); a
clip with no frame yields no window and still trains as a whole clip.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ipguard.data.video_embeddings import VideoFeatureDataset

__all__ = ["TrainWindow", "WindowConfig", "WindowDataset", "draw_windows", "window_label"]

_MAX_TRIES = 8


@dataclass(frozen=True)
class WindowConfig:
    """How training windows are drawn (``data.train_windows``)."""

    min_s: float = 2.0  # the shortest window, seconds (the livestream scorer's are 4 s)
    max_s: float = 8.0
    per_clip: int = 8  # windows drawn per clip, once, from the data module's seed
    keep_clips: bool = True  # also train on every whole clip, as without windows

    def __post_init__(self) -> None:
        if not (0 < self.min_s <= self.max_s):
            raise ValueError(
                f"data.train_windows: expected 0 < min_s <= max_s, found min_s={self.min_s} "
                f"max_s={self.max_s}"
            )
        if self.per_clip < 1:
            raise ValueError(f"data.train_windows.per_clip: expected >= 1, found {self.per_clip}")

    @classmethod
    def of(cls, value: Mapping[str, Any] | None) -> WindowConfig | None:
        return None if value is None else cls(**dict(value))


@dataclass(frozen=True)
class TrainWindow:
    """Frames ``lo:hi`` of clip ``clip`` (its sampled, cached frames), over ``[start_s, end_s)``."""

    clip: int
    start_s: float
    end_s: float
    lo: int
    hi: int
    label: int
    keeps_transcript: bool


def window_label(
    frame_times: np.ndarray, spans: Sequence[Sequence[float]] | None, clip_label: int
) -> tuple[int, bool]:
    """(label, keeps_transcript) of a window holding frames at ``frame_times``; see the module
    docstring. A span covers ``[start, end)``."""
    if spans is None:
        return int(clip_label), True
    inside = any(((frame_times >= s) & (frame_times < e)).any() for s, e in spans)
    return int(inside), False


def draw_windows(
    clip: int,
    timestamps: np.ndarray,
    duration_s: float,
    spans: Sequence[Sequence[float]] | None,
    clip_label: int,
    config: WindowConfig,
    rng: np.random.Generator,
) -> list[TrainWindow]:
    """``config.per_clip`` random windows of one clip whose sampled frames are at
    ``timestamps`` (sorted); a window longer than the clip is the whole clip."""
    if len(timestamps) == 0:
        return []
    end_of_clip = duration_s if math.isfinite(duration_s) and duration_s > 0 else 0.0
    end_of_clip = max(end_of_clip, float(timestamps[-1]) + 1e-3)
    windows: list[TrainWindow] = []
    for _ in range(config.per_clip):
        for _ in range(_MAX_TRIES):
            length = min(float(rng.uniform(config.min_s, config.max_s)), end_of_clip)
            start = float(rng.uniform(0.0, end_of_clip - length))
            end = start + length
            lo = int(np.searchsorted(timestamps, start, side="left"))
            hi = int(np.searchsorted(timestamps, end, side="left"))
            if hi > lo:
                label, keeps = window_label(timestamps[lo:hi], spans, clip_label)
                windows.append(TrainWindow(clip, start, end, lo, hi, label, keeps))
                break
    return windows


class WindowDataset(Dataset[dict[str, Any]]):
    """The training split's whole clips (``keep_clips``) followed by their windows, as
    :class:`~ipguard.data.video_embeddings.VideoFeatureDataset` items (same keys; a window's
    ``index`` is its clip's)."""

    def __init__(
        self,
        clips: VideoFeatureDataset,
        spans: Sequence[Sequence[Sequence[float]] | None],
        durations: Sequence[float],
        config: WindowConfig,
        seed: int,
    ) -> None:
        if not (len(clips) == len(spans) == len(durations)):
            raise ValueError(
                f"WindowDataset: {len(clips)} clips, {len(spans)} span cells and "
                f"{len(durations)} durations; expected one each per clip"
            )
        self.clips = clips
        self.config = config
        rng = np.random.default_rng(seed)
        self.windows: list[TrainWindow] = []
        for i in range(len(clips)):
            _, times = clips.features.of(i)
            self.windows += draw_windows(
                i, times, float(durations[i]), spans[i], int(clips.labels[i]), config, rng
            )
        self.n_clips = len(clips) if config.keep_clips else 0
        self.labels = np.concatenate(
            [clips.labels[: self.n_clips], np.array([w.label for w in self.windows], dtype=int)]
        )

    def __len__(self) -> int:
        return self.n_clips + len(self.windows)

    def __getitem__(self, idx: int) -> dict[str, Any]:
        if idx < self.n_clips:
            return self.clips[idx]
        w = self.windows[idx - self.n_clips]
        item = self.clips[w.clip]
        keep = torch.zeros_like(item["frame_mask"])
        keep[w.lo : w.hi] = True
        mask = item["frame_mask"] & keep
        # the window's frames first, as a window scored live arrives: padding after them
        order = torch.cat([torch.nonzero(mask).flatten(), torch.nonzero(~mask).flatten()])
        features = item["frame_features"][order] * mask[order].unsqueeze(1)
        return {
            **item,
            "frame_features": features,
            "frame_mask": mask[order],
            "timestamps": item["timestamps"][order] * mask[order],
            "transcript": item["transcript"] if w.keeps_transcript else "",
            "label": w.label,
        }
