"""Frame features of every video computed once through a frozen backbone, cached on disk.

With the pretrained frame tower frozen, a sampled frame has one feature vector for the whole
run, and decoding plus the backbone are nearly all of the cost; the attention pooling and the
heads on top train in seconds. So each video is decoded once (lazily, in DataLoader workers,
one video at a time: never a whole split in memory as pixels) and only its frames' features
are kept: ragged, ``offsets[i]:offsets[i+1]`` are video ``i``'s frames.

An entry is keyed by the embedder's key (weights, input size, normalisation), the sampling
settings, and per row the video path, size and modification time, so a new clip, another
sampling rate or another backbone computes afresh. Entries are written atomically.

The embedder is a plain callable (``images (N,3,S,S) -> features (N,D)``): the data package
knows nothing of the networks.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from ipguard.data.embeddings import Embedder, files_key, save_arrays
from ipguard.data.video_frames import SamplingConfig, VideoFrameDataset, collate_videos

__all__ = ["FrameFeatures", "VideoFeatureDataset", "collate_features", "frame_features"]

log = logging.getLogger(__name__)

_CACHE_VERSION = 1
_FLAG_JOIN = ","


@dataclass(frozen=True)
class FrameFeatures:
    """Ragged per-video frame features: video ``i`` owns rows ``offsets[i]:offsets[i+1]``."""

    features: np.ndarray  # float32 (total frames, D)
    timestamps: np.ndarray  # float32 (total frames,)
    offsets: np.ndarray  # int64 (n + 1,)
    flags: list[tuple[str, ...]]  # the sampling flags of each video

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def of(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        start, end = int(self.offsets[i]), int(self.offsets[i + 1])
        return self.features[start:end], self.timestamps[start:end]


def _entry_key(frame: pd.DataFrame, root: Path, embedder_key: str, config: SamplingConfig) -> str:
    sampling = asdict(config)
    sampling.pop("decode_threads")  # how fast, not which frames
    prefix = f"v{_CACHE_VERSION}|{embedder_key}|{json.dumps(sampling, sort_keys=True)}"
    return files_key(prefix, root, frame["video_path"])


def _load(path: Path, n: int) -> FrameFeatures | None:
    try:
        with np.load(path) as data:
            flags = [tuple(f for f in str(s).split(_FLAG_JOIN) if f) for s in data["flags"]]
            cached = FrameFeatures(data["features"], data["timestamps"], data["offsets"], flags)
    except (OSError, KeyError, ValueError) as err:
        log.warning("ignoring unreadable frame-feature cache entry %s: %s", path, err)
        return None
    return cached if len(cached) == n else None


def _save(path: Path, result: FrameFeatures) -> None:
    save_arrays(
        path,
        features=result.features,
        timestamps=result.timestamps,
        offsets=result.offsets,
        flags=np.array([_FLAG_JOIN.join(f) for f in result.flags], dtype=str),
    )


def _compute(dataset: VideoFrameDataset, embedder: Embedder, *, num_workers: int) -> FrameFeatures:
    n = len(dataset)
    per_video: list[tuple[np.ndarray, np.ndarray]] = [None] * n  # type: ignore[list-item]
    flags: list[tuple[str, ...]] = [()] * n
    width: int | None = None
    loader = DataLoader(
        dataset, batch_size=1, shuffle=False, num_workers=num_workers, collate_fn=collate_videos
    )
    for batch in loader:
        i = int(batch["index"][0])
        mask = batch["frame_mask"][0]
        flags[i] = tuple(batch["flags"][0])
        if mask.any():
            out = np.asarray(embedder(batch["frames"][0][mask]), dtype=np.float32)
            width = out.shape[1]
            per_video[i] = (out, batch["timestamps"][0][mask].numpy().astype(np.float32))
        else:
            per_video[i] = (np.zeros((0, 0), np.float32), np.zeros(0, np.float32))
    if width is None:  # no frame decoded anywhere: the width comes from one blank frame
        size = dataset.image_size
        width = int(np.asarray(embedder(torch.zeros(1, 3, size, size))).shape[1])
    features = [f if len(f) else np.zeros((0, width), np.float32) for f, _ in per_video]
    counts = np.array([len(f) for f in features], dtype=np.int64)
    return FrameFeatures(
        features=np.concatenate(features) if n else np.zeros((0, width), np.float32),
        timestamps=np.concatenate([t for _, t in per_video]) if n else np.zeros(0, np.float32),
        offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        flags=flags,
    )


def frame_features(
    dataset: VideoFrameDataset,
    frame: pd.DataFrame,
    embedder: Embedder,
    *,
    cache_dir: str | Path | None,
    num_workers: int = 0,
    what: str = "videos",
) -> FrameFeatures:
    """Features of every row's sampled frames, from the cache when this exact entry exists.

    ``dataset`` decodes ``frame``'s rows (eval transform, the model's sampling settings).
    """
    root = dataset.root
    path = None
    if cache_dir is not None:
        key = _entry_key(frame, root, embedder.key, dataset.config)
        path = Path(cache_dir) / f"frames-{key}.npz"
        if path.is_file():
            cached = _load(path, len(frame))
            if cached is not None:
                log.info("frame features of %d %s read from %s", len(frame), what, path)
                return cached
    started = time.perf_counter()
    result = _compute(dataset, embedder, num_workers=num_workers)
    log.info(
        "frame features of %d %s (%d frames) computed in %.1f s (%d without a frame)%s",
        len(frame),
        what,
        len(result.features),
        time.perf_counter() - started,
        int((np.diff(result.offsets) == 0).sum()),
        f", cached at {path}" if path else "",
    )
    if path is not None:
        _save(path, result)
    return result


class VideoFeatureDataset(Dataset[dict[str, Any]]):
    """Items like :class:`~ipguard.data.video_frames.VideoFrameDataset`'s, with the frozen
    backbone's ``frame_features`` (T, D) in place of pixels, padded to ``max_frames``."""

    def __init__(self, source: VideoFrameDataset, features: FrameFeatures) -> None:
        if len(source) != len(features):
            raise ValueError(
                f"VideoFeatureDataset: {len(source)} videos but features for {len(features)}"
            )
        self.source = source
        self.features = features
        self.max_frames = source.config.max_frames
        self.labels = source.labels

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, idx: int) -> dict[str, Any]:
        feats, times = self.features.of(idx)
        t = min(len(feats), self.max_frames)
        width = self.features.features.shape[1]
        padded = torch.zeros(self.max_frames, width)
        stamps = torch.zeros(self.max_frames)
        mask = torch.zeros(self.max_frames, dtype=torch.bool)
        padded[:t] = torch.from_numpy(feats[:t])
        stamps[:t] = torch.from_numpy(times[:t])
        mask[:t] = True
        return {
            "index": idx,
            "video_id": self.source.video_ids[idx],
            "frame_features": padded,
            "frame_mask": mask,
            "timestamps": stamps,
            "transcript": self.source.transcripts[idx],
            "label": int(self.labels[idx]),
            "flags": self.features.flags[idx],
        }


def collate_features(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch :class:`VideoFeatureDataset` items: tensors stacked, text and flags as lists."""
    if not items:
        raise ValueError("collate_features needs at least one item; found an empty batch")
    return {
        "index": torch.tensor([item["index"] for item in items], dtype=torch.long),
        "video_id": [item["video_id"] for item in items],
        "frame_features": torch.stack([item["frame_features"] for item in items]),
        "frame_mask": torch.stack([item["frame_mask"] for item in items]),
        "timestamps": torch.stack([item["timestamps"] for item in items]),
        "transcript": [item["transcript"] for item in items],
        "label": torch.tensor([item["label"] for item in items], dtype=torch.long),
        "flags": [item["flags"] for item in items],
    }
