"""VideoDataModule: video manifest -> validated rows -> seller-safe splits -> DataLoaders.

The video counterpart of :class:`ipguard.data.datamodule.ListingDataModule`, with the same
surface ``ipguard.jobs.train.train`` reads (``frames[split]`` with ``label``, ``loader``,
``summary``, ``validation.valid``, ``fingerprint``, ``configure_inputs``, ``export_extras``
...), so ``ipguard-train experiment=video`` runs the same steps as every listing model.

Rows are validated by :func:`ipguard.data.videos.load_video_manifest` (quarantine writes
``rejects.csv``; an unreadable or truncated file is kept and flagged by default, so its
transcript still trains and the model learns to score flagged videos). Splits keep each
seller whole (:func:`ipguard.data.splits.split_manifest`, grouped by ``seller_id``; the demo's
sellers have habits a model could otherwise memorise). Videos are decoded lazily in DataLoader
workers (:class:`~ipguard.data.video_frames.VideoFrameDataset`); with a frozen frame tower the
frames' features are computed once per (video, sampling) and cached
(:mod:`ipguard.data.video_embeddings`), and the loaders serve features instead of pixels.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ipguard.data.columns import label_array
from ipguard.data.io import image_file
from ipguard.data.splits import SPLITS, SplitConfig, split_manifest
from ipguard.data.transforms import Preprocessing, build_eval_transform
from ipguard.data.video_embeddings import VideoFeatureDataset, collate_features, frame_features
from ipguard.data.video_frames import SamplingConfig, VideoFrameDataset, collate_videos
from ipguard.data.video_windows import WindowConfig, WindowDataset
from ipguard.data.videos import VideoManifest, format_spans, load_video_manifest

log = logging.getLogger(__name__)

#: the model inputs a video model may read (``modalities``)
VIDEO_MODALITIES = frozenset({"frames", "transcript"})
#: columns the test metrics are sliced by (``ipguard.evaluation.slices``)
VIDEO_SLICE_COLUMNS = ("market", "language", "kind")
_FINGERPRINT_COLUMNS = ("video_id", "transcript", "seller_id", "market", "language", "label")
_FINGERPRINT_VERSION = b"ipguard-video-fingerprint/v1\n"


def video_fingerprint(frame: pd.DataFrame, root: str | Path) -> str:
    """sha256 of the rows a video model learns from (sorted by ``video_id``) and of every
    referenced video file's bytes; row order and extra columns do not count."""
    root = Path(root)
    digest = hashlib.sha256(_FINGERPRINT_VERSION)
    order = frame.sort_values("video_id", kind="stable")
    for _, row in order.iterrows():
        for column in _FINGERPRINT_COLUMNS:
            value = row.get(column)
            text = (
                "-"
                if value is None or (isinstance(value, float) and np.isnan(value))
                else str(value)
            )
            digest.update(f"+{len(text)}:{text}".encode())
        spans = row.get("infringement_spans")
        digest.update(f"|{format_spans(spans) if isinstance(spans, list) else '-'}".encode())
        rel = row.get("video_path")
        try:
            file_digest = hashlib.sha256(image_file(root, str(rel)).read_bytes()).hexdigest()
        except OSError:
            file_digest = "missing"
        digest.update(f"|{file_digest}\n".encode())
    return digest.hexdigest()


class VideoDataModule(L.LightningDataModule):
    """Data for the video model; see the module docstring."""

    def __init__(
        self,
        manifest: str | None = None,
        *,
        on_error: str = "raise",
        check_videos: bool = True,
        unusable_videos: str = "keep",
        label_values: Mapping[str, Any] | None = None,
        encoding: str | None = None,
        split: dict[str, Any] | None = None,
        split_file: str | None = None,
        sampling: Mapping[str, Any] | None = None,
        batch_size: int = 16,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        persistent_workers: bool = False,
        image_size: int = 96,
        mean: Iterable[float] = (0.485, 0.456, 0.406),
        std: Iterable[float] = (0.229, 0.224, 0.225),
        modalities: Iterable[str] = VIDEO_MODALITIES,
        output_dir: str | None = None,
        seed: int = 0,
        embedding_cache: str | None = None,
        limit_videos: int | None = None,
        train_windows: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if on_error not in ("raise", "quarantine"):
            raise ValueError(f"data.on_error must be 'raise' or 'quarantine', got {on_error!r}")
        self.manifest = manifest
        self.on_error = on_error
        self.check_videos = check_videos
        self.unusable_videos = unusable_videos
        self.label_values = dict(label_values) if label_values else None
        self.encoding = encoding
        # photos do not apply: a video split groups by seller only, unless told otherwise
        self.split_config = {"near_duplicates": False, **dict(split or {})}
        self.split_file = split_file
        self.sampling = SamplingConfig(**dict(sampling or {}))
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.persistent_workers = persistent_workers and num_workers > 0
        self.preprocessing = {"image_size": image_size, "mean": tuple(mean), "std": tuple(std)}
        self.modalities = frozenset(modalities)
        self.output_dir = Path(output_dir) if output_dir else None
        self.seed = seed
        self.embedding_cache = embedding_cache
        if limit_videos is not None and limit_videos < 3:
            raise ValueError(f"data.limit_videos: expected null or >= 3, found {limit_videos}")
        self.limit_videos = limit_videos
        # null: train on whole clips only; else also on short windows (ipguard.data.video_windows)
        self.train_windows = WindowConfig.of(train_windows)
        self.augment = "none"  # frames are not augmented (the listing grid is not drawn)
        self.frames: dict[str, pd.DataFrame] = {}
        self._datasets: dict[str, Dataset[dict[str, Any]]] = {}
        self.validation: VideoManifest | None = None
        self.fingerprint: str | None = None
        self.manifest_path: Path | None = None
        self.root: Path | None = None
        self.split_report: dict[str, Any] | None = None
        self.image_embedder: Any = None
        self.slice_columns = VIDEO_SLICE_COLUMNS
        self.text_column = "transcript"
        self._loader_generator = torch.Generator().manual_seed(seed)

    # --- preparation --------------------------------------------------------------------------
    def resolve_manifest(self) -> Path:
        if not self.manifest:
            raise ValueError(
                "data.manifest: expected the path of a video manifest (CSV, Parquet or JSON "
                "lines), found none; data=demo_video provides the demo clips"
            )
        path = Path(self.manifest).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"data.manifest={self.manifest} does not exist")
        return path

    def prepare_data(self) -> None:
        self.resolve_manifest()

    def setup(self, stage: str | None = None) -> None:
        if self.frames:
            return  # idempotent: train() sets up early, Lightning calls again
        self.manifest_path = self.resolve_manifest()
        rejects = self.output_dir / "rejects.csv" if self.output_dir else None
        self.validation = load_video_manifest(
            self.manifest_path,
            on_error=self.on_error,  # type: ignore[arg-type]
            check_videos=self.check_videos,
            label_values=self.label_values,
            require_label=True,
            unusable_videos=self.unusable_videos,  # type: ignore[arg-type]
            rejects_path=rejects if self.on_error == "quarantine" else None,
            encoding=self.encoding,
        )
        v = self.validation
        log.info("video manifest %s: %s", self.manifest_path, v.summary())
        frame = v.valid.reset_index(drop=True)
        if self.limit_videos is not None and len(frame) > self.limit_videos:
            frame = frame.head(self.limit_videos).reset_index(drop=True)
        self.root = v.root
        self.fingerprint = video_fingerprint(frame, self.root)
        splits = self._splits(frame)
        if self.output_dir:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            pd.DataFrame({"video_id": frame["video_id"], "split": splits}).to_csv(
                self.output_dir / "splits.csv", index=False
            )
        for name in SPLITS:
            part = frame[splits.to_numpy() == name].reset_index(drop=True)
            if part.empty:
                raise ValueError(f"the {name} split of the videos is empty; check data.split")
            self.frames[name] = part

    def _splits(self, frame: pd.DataFrame) -> pd.Series:
        if self.split_file:
            saved = pd.read_csv(self.split_file, dtype=str, keep_default_na=False)
            if list(saved.columns[:2]) != ["video_id", "split"]:
                raise ValueError(f"{self.split_file}: expected columns video_id,split")
            by_id = dict(zip(saved["video_id"], saved["split"], strict=True))
            missing = [v for v in frame["video_id"] if v not in by_id]
            if missing:
                raise ValueError(
                    f"{self.split_file}: {len(missing)} videos have no saved split, "
                    f"e.g. {missing[:5]}"
                )
            self.split_report = {"split_file": str(self.split_file)}
            return pd.Series([by_id[v] for v in frame["video_id"]], index=frame.index)
        made = split_manifest(frame, SplitConfig(**self.split_config))
        self.split_report = made.report.as_dict()
        return made.splits

    def configure_inputs(
        self,
        *,
        modalities: Iterable[str],
        preprocessing: dict[str, Any] | None = None,
        image_embedder: Any = None,
    ) -> None:
        """Decode what the model reads, as it expects it; a frozen frame tower's embedder
        makes every split's frames go through it once (cached) and the loaders serve
        features."""
        self.modalities = frozenset(modalities)
        if preprocessing:
            self.preprocessing = {**self.preprocessing, **preprocessing}
        self.image_embedder = image_embedder
        self._datasets.clear()

    def _frame_dataset(self, frame: pd.DataFrame) -> VideoFrameDataset:
        pre = Preprocessing(**self.preprocessing)
        sampling = self.sampling
        if "frames" not in self.modalities:
            # a transcript-only model decodes nothing: a zero-frame cap keeps items tiny
            sampling = SamplingConfig(**{**asdict(sampling), "max_frames": 1})
            frame = frame.assign(video_path=None)
        return VideoFrameDataset(
            frame,
            self.root or ".",
            config=sampling,
            transform=build_eval_transform(pre),
            image_size=pre.image_size,
        )

    def dataset(self, name: str) -> Dataset[dict[str, Any]]:
        if name not in self._datasets:
            if name not in self.frames:
                raise RuntimeError("call setup() before asking for a dataset")
            frame = self.frames[name]
            source = self._frame_dataset(frame)
            if "frames" in self.modalities and self.image_embedder is not None:
                features = frame_features(
                    source,
                    frame,
                    self.image_embedder,
                    cache_dir=self.embedding_cache,
                    num_workers=self.num_workers,
                    what=f"{name} videos",
                )
                clips = VideoFeatureDataset(source, features)
                self._datasets[name] = (
                    self._windows(clips, frame)
                    if name == "train" and self.train_windows is not None
                    else clips
                )
            else:
                if name == "train" and self.train_windows is not None:
                    if "frames" not in self.modalities:
                        log.warning(
                            "data.train_windows ignored: this model reads no frames, and a "
                            "window's words are its clip's"
                        )
                        self._datasets[name] = source
                        return source
                    raise ValueError(
                        "data.train_windows needs cached frame features (a model that reads "
                        "frames through a frozen frame tower); set data.train_windows=null"
                    )
                self._datasets[name] = source
        return self._datasets[name]

    def _windows(
        self, clips: VideoFeatureDataset, frame: pd.DataFrame, config: WindowConfig | None = None
    ) -> WindowDataset:
        """A split's clips plus their random windows, drawn once from the run's seed."""
        config = config or self.train_windows
        assert config is not None
        n = len(frame)
        spans = frame["infringement_spans"] if "infringement_spans" in frame else [None] * n
        durations = frame["duration_s"] if "duration_s" in frame else [float("nan")] * n
        windows = WindowDataset(
            clips,
            [s if isinstance(s, list) else None for s in spans],
            [float(d) if d is not None else float("nan") for d in durations],
            config,
            seed=self.seed,
        )
        log.info(
            "%d clips and %d windows of %g-%g s (%d infringing windows)",
            windows.n_clips,
            len(windows.windows),
            config.min_s,
            config.max_s,
            sum(w.label for w in windows.windows),
        )
        return windows

    def window_loader(self, name: str, config: WindowConfig) -> DataLoader:
        """Unshuffled loader over windows of a split's clips (``config.keep_clips=False``: the
        windows alone), labelled as for training: for a window-level AUROC."""
        clips = self.dataset(name)
        if isinstance(clips, WindowDataset):
            clips = clips.clips
        if not isinstance(clips, VideoFeatureDataset):
            raise ValueError("window_loader needs cached frame features (a frozen frame tower)")
        return DataLoader(
            self._windows(clips, self.frames[name], config),
            batch_size=self.eval_batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            collate_fn=collate_features,
        )

    def _collate(self) -> Any:
        uses_features = "frames" in self.modalities and self.image_embedder is not None
        return collate_features if uses_features else collate_videos

    def export_extras(self) -> dict[str, Any]:
        """What the served model needs from the data side: the sampling it was trained on."""
        return {"sampling": asdict(self.sampling)}

    # --- facts the training run logs ---------------------------------------------------------
    def sample_images(self, n: int = 4) -> list[np.ndarray]:
        """No augmentation grid for videos (frames are not augmented)."""
        return []

    def positive_fraction(self) -> float:
        return float(label_array(self.frames["train"]["label"]).mean())

    def summary(self) -> dict[str, Any]:
        v = self.validation
        if v is None:
            raise RuntimeError("call setup() before summary()")
        return {
            "manifest": str(self.manifest_path),
            "fingerprint": self.fingerprint,
            "rows_in": v.rows_in,
            "rows_valid": v.rows_valid,
            "rows_rejected": v.rows_rejected,
            "videos_checked": v.videos_checked,
            "videos_unusable": v.videos_unusable_total,
            "videos_unusable_by_reason": dict(v.videos_unusable),
            **{f"rows_{k}": len(f) for k, f in self.frames.items()},
            "train_positive_fraction": self.positive_fraction(),
            "sampling": asdict(self.sampling),
            "train_windows": asdict(self.train_windows) if self.train_windows else None,
            "split": self.split_report,
        }

    # --- loaders -----------------------------------------------------------------------------
    def _loader(self, name: str, *, shuffle: bool, batch_size: int) -> DataLoader:
        dataset = self.dataset(name)
        sampler = None
        if shuffle:
            world = self.trainer.world_size if self.trainer is not None else 1
            rank = self.trainer.global_rank if self.trainer is not None else 0
            # order from (seed, epoch) alone, as the listing loaders; shards over DDP ranks
            sampler = DistributedSampler(
                dataset, num_replicas=world, rank=rank, shuffle=True, seed=self.seed
            )
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.persistent_workers,
            collate_fn=self._collate(),
            generator=self._loader_generator if shuffle else None,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True, batch_size=self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False, batch_size=self.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False, batch_size=self.eval_batch_size)

    def loader(self, name: str) -> DataLoader:
        """Unshuffled loader over every row of a split, for predictions after training."""
        return self._loader(name, shuffle=False, batch_size=self.eval_batch_size)
