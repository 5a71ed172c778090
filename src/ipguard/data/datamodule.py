"""ListingDataModule: manifest -> validated rows -> leakage-safe splits -> DataLoaders.

Everything a run needs to be reproduced is written to ``output_dir``: the rejects file (what
quarantine mode set aside and why) and ``splits.csv`` (ids per split, reusable through
``split_file``). It reads whatever manifest it is given; the demo data is a manifest like any
other, which the ``data=demo`` config generates on first use (:mod:`ipguard.demo.listings`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from ipguard.data.catalog import catalog_featurizer
from ipguard.data.columns import label_array
from ipguard.data.datasets import ListingDataset
from ipguard.data.embeddings import image_embeddings
from ipguard.data.feedback_training import merge_feedback
from ipguard.data.fingerprint import dataset_fingerprint
from ipguard.data.images import decode_image, to_rgb_array
from ipguard.data.io import image_file, manifest_root
from ipguard.data.samplers import EpochWeightedSampler, balanced_weights
from ipguard.data.schema import load_manifest
from ipguard.data.splits import SplitConfig, load_splits, save_splits, split_manifest
from ipguard.data.tabular import TabularFeaturizer
from ipguard.data.transforms import Preprocessing, build_eval_transform, build_train_transform

SAMPLERS = ("none", "weighted")
IMAGE_CHECKS = ("none", "header", "full")
UNUSABLE_IMAGES = ("keep", "reject")

log = logging.getLogger(__name__)


def _seed_worker_transform(worker_id: int) -> None:
    """albumentations keeps its own RNG, which forked workers would otherwise all share."""
    info = torch.utils.data.get_worker_info()
    transform = getattr(info.dataset, "transform", None) if info else None
    if transform is not None and hasattr(transform, "set_random_seed"):
        transform.set_random_seed(torch.initial_seed() % 2**32)


class ListingDataModule(L.LightningDataModule):
    """Data for every ipguard model; which inputs are decoded follows ``modalities``."""

    def __init__(
        self,
        manifest: str | None = None,
        *,
        brands: str | None = None,
        on_error: str = "raise",
        check_images: bool = True,
        decode_images: str = "header",
        unusable_images: str = "keep",
        label_values: Mapping[str, Any] | None = None,
        encoding: str | None = None,
        split: dict[str, Any] | None = None,
        split_file: str | None = None,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        persistent_workers: bool = False,
        augment: str = "standard",
        sampler: str = "none",
        image_size: int = 128,
        mean: Iterable[float] = (0.485, 0.456, 0.406),
        std: Iterable[float] = (0.229, 0.224, 0.225),
        modalities: Iterable[str] = ("image", "text"),
        output_dir: str | None = None,
        seed: int = 0,
        embedding_cache: str | None = None,
        feedback: str | None = None,
    ) -> None:
        super().__init__()
        if on_error not in ("raise", "quarantine"):
            raise ValueError(f"data.on_error must be 'raise' or 'quarantine', got {on_error!r}")
        if sampler not in SAMPLERS:
            raise ValueError(f"data.sampler must be one of {SAMPLERS}, got {sampler!r}")
        if decode_images not in IMAGE_CHECKS:
            raise ValueError(
                f"data.decode_images must be one of {IMAGE_CHECKS}, got {decode_images!r}"
            )
        if unusable_images not in UNUSABLE_IMAGES:
            raise ValueError(
                f"data.unusable_images must be one of {UNUSABLE_IMAGES}, got {unusable_images!r}"
            )
        self.manifest = manifest
        # a labelled feedback manifest trained on beside this one (data/feedback_training.py)
        self.feedback = feedback
        self.feedback_report: dict[str, Any] | None = None
        self.brands_path = brands
        self.on_error = on_error
        self.check_images = check_images
        # Training opens only image *headers* up front by default: a stat and a few KB per
        # file name missing, empty, non-image, oversized and tiny images at the start, while a
        # full decode of 200k photos would cost about an epoch's decoding before the first
        # step. Truncated pixel data surfaces in the epoch (train/images_unusable) or with
        # decode_images=full, which ipguard-validate does by default.
        self.decode_images = decode_images if check_images else "none"
        self.unusable_images = unusable_images
        self.label_values = dict(label_values) if label_values else None
        self.encoding = encoding
        self.split_config = dict(split or {})
        self.split_file = split_file
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.persistent_workers = persistent_workers and num_workers > 0
        self.augment = augment
        self.sampler = sampler
        self.preprocessing = {"image_size": image_size, "mean": tuple(mean), "std": tuple(std)}
        self.modalities = frozenset(modalities)
        self.output_dir = Path(output_dir) if output_dir else None
        self.seed = seed
        self.frames: dict[str, pd.DataFrame] = {}
        self._datasets: dict[str, ListingDataset] = {}
        self.validation: Any = None
        self.fingerprint: str | None = None
        self.manifest_path: Path | None = None
        self.root: Path | None = None
        self.featurizer: TabularFeaturizer | None = None  # tabular features, built on first use
        self.split_report: dict[str, Any] | None = None  # how setup() split (SplitReport)
        # a frozen backbone (see configure_inputs): features per image, computed once per split
        self.image_embedder: Any = None
        self.embedding_cache = embedding_cache
        # columns a model appends to the tabular features (the brand-reference features, see
        # ipguard.brands.references): frame -> float32 (n, k), set by the model's attach_data
        self.extra_features: Callable[[pd.DataFrame], np.ndarray] | None = None
        # draws only the train loader's worker base seed, never the global RNG: see train_dataloader
        self._loader_generator = torch.Generator().manual_seed(seed)

    # --- preparation --------------------------------------------------------------------------
    def resolve_manifest(self) -> Path:
        """The manifest to read, which must exist."""
        if not self.manifest:
            raise ValueError(
                "data.manifest: expected the path of a listing manifest (CSV, Parquet or JSON "
                "lines), found none; data=demo provides the demo listings"
            )
        path = Path(self.manifest).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"data.manifest={self.manifest} does not exist")
        return path

    def prepare_data(self) -> None:
        self.resolve_manifest()

    def setup(self, stage: str | None = None) -> None:
        if self.frames:
            return  # idempotent: train() sets up early to size the loss, Lightning calls again
        self.manifest_path = self.resolve_manifest()
        self.validation = self._read(self.manifest_path, "rejects.csv")
        self._log_image_check()
        frame = self.validation.valid.reset_index(drop=True)
        self.root = manifest_root(self.manifest_path)
        self.fingerprint = dataset_fingerprint(frame, self.root)
        if self.split_file:
            splits = load_splits(self.split_file, frame)
            self.split_report = {"split_file": str(self.split_file)}
        else:
            made = split_manifest(frame, SplitConfig(**self.split_config), root=self.root)
            splits = made.splits
            self.split_report = made.report.as_dict()
        if self.feedback:
            frame, splits = self._with_feedback(frame, splits)
        if self.output_dir:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            save_splits(self.output_dir / "splits.csv", frame["listing_id"], splits)
        for name in ("train", "val", "test"):
            part = frame[splits.to_numpy() == name].reset_index(drop=True)
            if part.empty:
                raise ValueError(f"the {name} split is empty; check data.split fractions")
            self.frames[name] = part

    def _read(self, path: Path, rejects_name: str) -> Any:
        """A labelled manifest validated with this module's options; in quarantine mode its
        rejects go to ``output_dir / rejects_name``."""
        rejects = self.output_dir / rejects_name if self.output_dir else None
        return load_manifest(
            path,
            on_error=self.on_error,
            require_label=True,
            check_images=self.check_images,
            rejects_path=rejects if self.on_error == "quarantine" else None,
            label_values=self.label_values,
            decode_images=self.decode_images,  # type: ignore[arg-type]
            unusable_images=self.unusable_images,  # type: ignore[arg-type]
            encoding=self.encoding,
        )

    def _with_feedback(self, frame: pd.DataFrame, splits: pd.Series) -> tuple[Any, Any]:
        """The base rows as split, plus the feedback manifest's rows (its own rejects file)."""
        path = Path(str(self.feedback)).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"data.feedback={self.feedback} does not exist")
        checked = self._read(path, "feedback_rejects.csv")
        merged = merge_feedback(
            frame,
            pd.Series(np.asarray(splits, dtype=object), index=frame.index),
            checked.valid,
            manifest_root(path),
            group_column=self.split_config.get("group_column", "seller_id"),
        )
        self.feedback_report = {
            "manifest": str(path.resolve()),
            "fingerprint": dataset_fingerprint(checked.valid, manifest_root(path)),
            "rows_in": checked.rows_in,
            "rows_valid": checked.rows_valid,
            "rows_rejected": checked.rows_rejected,
            **merged.counts,
        }
        log.info("data.feedback: %s", self.feedback_report)
        return merged.frame, merged.splits

    def configure_inputs(
        self,
        *,
        modalities: Iterable[str],
        preprocessing: dict[str, Any] | None = None,
        image_embedder: Any = None,
    ) -> None:
        """Decode only what the model reads, the way the model expects it.

        The model owns its preprocessing (input size, mean, std of its pretrained weights), so
        the training run hands it over here before the first loader is built. A model with a
        frozen backbone hands over its ``image_embedder``: every split's images then go
        through it once (cached under ``embedding_cache``), and the loaders serve features
        instead of decoded images, without augmentation.
        """
        self.modalities = frozenset(modalities)
        if preprocessing:
            self.preprocessing = {**self.preprocessing, **preprocessing}
        self.image_embedder = image_embedder
        self._datasets.clear()

    def dataset(self, name: str) -> ListingDataset:
        if name not in self._datasets:
            if name not in self.frames:
                raise RuntimeError("call setup() before asking for a dataset")
            self._datasets[name] = self._dataset(self.frames[name], train=name == "train")
        return self._datasets[name]

    def _dataset(self, frame: pd.DataFrame, *, train: bool) -> ListingDataset:
        pre = Preprocessing(**self.preprocessing)
        transform = None
        embeddings = None
        if "image" in self.modalities and self.image_embedder is not None:
            embeddings = self._embeddings(frame, pre, "training" if train else "evaluation")
        elif "image" in self.modalities:
            transform = (
                build_train_transform(self.augment, pre) if train else build_eval_transform(pre)
            )
            transform.set_random_seed(self.seed)
        return ListingDataset(
            frame,
            self.root or ".",
            transform=transform,
            image_size=pre.image_size,
            load_images="image" in self.modalities,
            load_text="text" in self.modalities,
            tabular=self.tabular_features(frame) if "tabular" in self.modalities else None,
            embeddings=embeddings,
        )

    def _embeddings(self, frame: pd.DataFrame, pre: Any, what: str) -> Any:
        def decoding_dataset(rows: pd.DataFrame) -> ListingDataset:
            return ListingDataset(
                rows,
                self.root or ".",
                transform=build_eval_transform(pre),
                image_size=pre.image_size,
                load_text=False,
            )

        return image_embeddings(
            frame,
            self.root or ".",
            self.image_embedder,
            decoding_dataset,
            cache_dir=self.embedding_cache,
            batch_size=self.eval_batch_size,
            num_workers=self.num_workers,
            what=f"{what} listings",
        )

    def reseed_augmentation(self, seed: int) -> None:
        """Restart the training augmentation stream; called at every epoch start so a resumed
        run augments its remaining epochs exactly as an uninterrupted run would."""
        dataset = self._datasets.get("train")
        if dataset is not None and hasattr(dataset.transform, "set_random_seed"):
            dataset.transform.set_random_seed(seed)

    def tabular_features(self, frame: pd.DataFrame) -> np.ndarray:
        """Price and brand-mention features, then any :attr:`extra_features` columns."""
        if self.featurizer is None:
            self.featurizer = catalog_featurizer(self.brands_path)
        features = self.featurizer.transform(frame)
        if self.extra_features is None:
            return features
        return np.concatenate([features, self.extra_features(frame)], axis=1).astype(np.float32)

    def export_extras(self) -> dict[str, Any]:
        """Data-side state the exported model needs at serving time (the tabular featurizer)."""
        return {"tabular": self.featurizer.to_dict()} if self.featurizer is not None else {}

    # --- facts the training run logs ---------------------------------------------------------
    def sample_images(self, n: int = 4) -> list[np.ndarray]:
        """A few decodable training images, for the augmentation grid logged with a run."""
        out: list[np.ndarray] = []
        for rel in self.frames["train"].get("image_path", pd.Series(dtype=str)).dropna():
            decoded = decode_image(image_file(self.root or ".", str(rel)))
            if decoded.ok and decoded.image is not None:
                out.append(to_rgb_array(decoded.image))
            if len(out) == n:
                break
        return out

    def _log_image_check(self) -> None:
        v = self.validation
        if v.image_check == "none":
            log.info(
                "images: not opened up front (data.decode_images=none); unusable images are "
                "counted per epoch as train/images_unusable"
            )
            return
        how = "decoded" if v.image_check == "full" else "header-checked"
        reasons = ", ".join(f"{flag} {n}" for flag, n in v.images_unusable.items()) or "none"
        action = (
            "set aside as rejects"
            if self.unusable_images == "reject"
            else "kept and trained without their image"
        )
        log.info(
            "images: %d %s (data.decode_images=%s), %d unusable (%s); %s (data.unusable_images=%s)",
            v.images_checked,
            how,
            v.image_check,
            v.images_unusable_total,
            reasons,
            action,
            self.unusable_images,
        )

    def _image_summary(self) -> dict[str, Any]:
        """Image counts of the up-front check; ``images_unusable`` is None when not checked."""
        v = self.validation
        checked = v.image_check != "none"
        return {
            "images_check": v.image_check,
            "images_checked": v.images_checked,
            "images_unusable": v.images_unusable_total if checked else None,
            "images_unusable_by_reason": dict(v.images_unusable),
        }

    def positive_fraction(self) -> float:
        labels = label_array(self.frames["train"]["label"])
        return float(labels.mean())

    def summary(self) -> dict[str, Any]:
        v = self.validation
        return {
            "manifest": str(self.manifest_path),
            "fingerprint": self.fingerprint,
            "rows_in": v.rows_in,
            "rows_valid": v.rows_valid,
            "rows_rejected": v.rows_rejected,
            **self._image_summary(),
            **{f"rows_{k}": len(f) for k, f in self.frames.items()},
            "train_positive_fraction": self.positive_fraction(),
            "split": self.split_report,
            **({"feedback": self.feedback_report} if self.feedback_report else {}),
        }

    # --- loaders -----------------------------------------------------------------------------
    def _loader(
        self, name: str, *, shuffle: bool, batch_size: int, distributed: bool = True
    ) -> DataLoader:
        dataset = self.dataset(name)
        world_size = self.trainer.world_size if self.trainer is not None else 1
        rank = self.trainer.global_rank if self.trainer is not None else 0
        sampler: Sampler[int] | None = None
        generator = None
        if name == "train" and shuffle:
            generator = self._loader_generator
        if name == "train" and self.sampler == "weighted":
            # classes balanced, drawn from (seed, epoch) alone and sharded over DDP ranks
            sampler = EpochWeightedSampler(
                dataset,
                balanced_weights(dataset.labels),
                num_replicas=world_size,
                rank=rank,
                seed=self.seed,
            )
            shuffle = False
        elif name == "train" and shuffle:
            # order from (seed, epoch) alone, set by Lightning's set_epoch; the same sampler
            # shards rows over DDP ranks (world_size 1: a plain epoch-seeded shuffle)
            sampler = DistributedSampler(
                dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=self.seed
            )
            shuffle = False
        elif name != "train" and distributed and world_size > 1:
            # no padding with repeated rows: DDP metrics then cover the split exactly once
            sampler = UnrepeatedDistributedSampler(
                dataset,
                num_replicas=world_size,
                rank=rank,
                shuffle=False,
            )
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.persistent_workers,
            worker_init_fn=_seed_worker_transform if self.num_workers else None,
            generator=generator,
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches whose randomness a resumed run can replay.

        Lightning creates the first iterator of a process before ``on_train_epoch_start`` (and
        before a resumed checkpoint's loop state is restored), later ones after it. So nothing
        random is drawn from the global RNG at that moment: the order comes from the sampler's
        ``(seed, epoch)``, and the loader's own generator supplies the worker base seed.
        """
        return self._loader("train", shuffle=True, batch_size=self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False, batch_size=self.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False, batch_size=self.eval_batch_size)

    def loader(self, name: str) -> DataLoader:
        """Unshuffled loader over every row of a split, for predictions after training.

        Never sharded: after a DDP fit the trainer (and its world size) is still attached, but
        calibration and the policy run in one process and must see the whole split.
        """
        return self._loader(name, shuffle=False, batch_size=self.eval_batch_size, distributed=False)
