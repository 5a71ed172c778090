"""Image features computed once per image through a frozen backbone, cached on disk.

With a frozen pretrained backbone the features of a photo never change during a run, and
computing them is nearly all of the cost (EfficientNet-Lite0 at 128 px: ~20 ms a photo on a
CPU core, the head on top: microseconds). So the data module computes them once, here, and
the head trains on the vectors; a second run with the same backbone and images (another
seed, another head, a sweep) reads them back from the cache instead.

The cache entry of a split is keyed by the embedder's key (weights, input size,
normalisation) and, for each row, the image path, size and modification time, so replacing a
photo or changing the backbone computes afresh. Entries are written atomically, so two
processes (DDP ranks) filling the same entry cannot leave a torn file.

This module takes the embedder as a plain callable: the data package knows nothing of the
networks that produce the features.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

__all__ = ["CachedEmbeddings", "Embedder", "image_embeddings"]

log = logging.getLogger(__name__)

_CACHE_VERSION = 1


class Embedder(Protocol):
    """What :func:`image_embeddings` needs: features per image batch, and a stable key."""

    key: str

    def __call__(self, images: torch.Tensor) -> np.ndarray: ...


@dataclass(frozen=True)
class CachedEmbeddings:
    """Per row of a frame: features (zeros where no usable image) and the image's state."""

    features: np.ndarray  # float32 (n, D)
    present: np.ndarray  # bool (n,): the image decoded and was embedded
    unusable: np.ndarray  # bool (n,): a path was given but the image could not be used


def _row_identity(root: Path, rel: object) -> str:
    if not isinstance(rel, str) or not rel:
        return "-"
    try:
        stat = os.stat(root / rel)
    except OSError:
        return f"{rel}|missing"
    return f"{rel}|{stat.st_size}|{stat.st_mtime_ns}"


def files_key(prefix: str, root: Path, paths: Iterable[object]) -> str:
    """A cache entry's name: ``prefix`` (what computes the features, and how) and each row's
    file by path, size and modification time, in row order; a missing path counts as one."""
    digest = hashlib.sha256(prefix.encode())
    for rel in paths:
        digest.update(_row_identity(root, rel).encode())
        digest.update(b"\0")
    return digest.hexdigest()[:40]


def _entry_key(frame: pd.DataFrame, root: Path, embedder_key: str) -> str:
    paths = frame["image_path"] if "image_path" in frame else [None] * len(frame)
    return files_key(f"v{_CACHE_VERSION}|{embedder_key}", root, paths)


def _load(path: Path, n: int) -> CachedEmbeddings | None:
    try:
        with np.load(path) as data:
            cached = CachedEmbeddings(data["features"], data["present"], data["unusable"])
    except (OSError, KeyError, ValueError) as err:
        log.warning("ignoring unreadable embedding cache entry %s: %s", path, err)
        return None
    return cached if len(cached.present) == n else None


def _save(path: Path, result: CachedEmbeddings) -> None:
    save_arrays(path, features=result.features, present=result.present, unusable=result.unusable)


def save_arrays(path: Path, **arrays: np.ndarray) -> None:
    """Write ``arrays`` as one ``.npz`` atomically (temp file, then rename), so a run stopped
    mid-write never leaves an entry that a later run would read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp.npz")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _compute(
    dataset: torch.utils.data.Dataset, embedder: Embedder, *, batch_size: int, num_workers: int
) -> CachedEmbeddings:
    n = len(dataset)  # type: ignore[arg-type]
    present = np.zeros(n, dtype=bool)
    unusable = np.zeros(n, dtype=bool)
    features: np.ndarray | None = None
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    for batch in loader:
        index = batch["index"].numpy()
        rows = batch["image_present"].numpy().astype(bool)
        unusable[index] = batch["image_unusable"].numpy().astype(bool)
        present[index] = rows
        if not rows.any():
            continue
        out = embedder(batch["image"][torch.from_numpy(rows)])
        if features is None:
            features = np.zeros((n, out.shape[1]), dtype=np.float32)
        features[index[rows]] = out
    if features is None:  # no usable image at all: the width comes from one blank image
        sample = dataset[0]["image"] if n else torch.zeros(3, 32, 32)
        width = embedder(sample.unsqueeze(0)).shape[1]
        features = np.zeros((n, width), dtype=np.float32)
    return CachedEmbeddings(features, present, unusable)


def image_embeddings(
    frame: pd.DataFrame,
    root: str | Path,
    embedder: Embedder,
    make_dataset: Callable[[pd.DataFrame], torch.utils.data.Dataset],
    *,
    cache_dir: str | Path | None,
    batch_size: int = 64,
    num_workers: int = 0,
    what: str = "images",
) -> CachedEmbeddings:
    """Features of every row's image, from the cache when this exact entry exists.

    ``make_dataset`` builds the decoding dataset (eval transform, no augmentation) for the
    frame; its items carry ``index``, ``image``, ``image_present`` and ``image_unusable``.
    """
    root = Path(root)
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"{_entry_key(frame, root, embedder.key)}.npz"
        if path.is_file():
            cached = _load(path, len(frame))
            if cached is not None:
                log.info("image embeddings for %d %s read from %s", len(frame), what, path)
                return cached
    started = time.perf_counter()
    result = _compute(make_dataset(frame), embedder, batch_size=batch_size, num_workers=num_workers)
    log.info(
        "image embeddings for %d %s computed in %.1f s (%d without a usable image)%s",
        len(frame),
        what,
        time.perf_counter() - started,
        int((~result.present).sum()),
        f", cached at {path}" if path else "",
    )
    if path is not None:
        _save(path, result)
    return result
