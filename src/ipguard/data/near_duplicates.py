"""Perceptual image hashes and near-duplicate clustering.

Marketplaces are full of the same product photo reused across listings, often re-encoded,
resized or lightly cropped. If one copy sits in train and another in test, the model is graded
on a picture it has memorised. This module finds those copies so splits can keep them together:
a 64-bit perceptual hash (imagehash's pHash) per image, and groups of hashes that lie within a
small Hamming distance of each other, found without comparing every pair.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import imagehash
import numpy as np
import pandas as pd
from PIL import Image, ImageOps

from ipguard.data.images import DEFAULT_MAX_PIXELS

__all__ = [
    "HASH_BITS",
    "connected_groups",
    "image_hash",
    "image_hashes",
    "near_duplicate_groups",
]

logger = logging.getLogger(__name__)

HASH_BITS = 64
"""pHash with imagehash's default hash_size=8: 64 bits, written as 16 hex digits."""

_HEX_DIGITS = HASH_BITS // 4

# The pHash works on a 32x32 greyscale thumbnail, so decoding a 4000px JPEG at full size is
# wasted work. Pillow's draft mode lets the JPEG decoder scale down by up to 8x for free; the
# requested size stays well above 32x32 so the hash is as stable as with a full decode.
_DRAFT_SIZE = (128, 128)

# The photo formats ipguard.data.images decodes for the models (a test keeps the two in step).
# Anything else (EPS would start Ghostscript on untrusted bytes) gets no hash.
_PHOTO_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "TIFF", "AVIF")

_WHITE = (255, 255, 255, 255)


def image_hash(path: str | Path) -> str | None:
    """Return the 64-bit pHash of the image at ``path`` as 16 hex digits.

    Returns None (and logs why at debug level) when the file is missing, not a regular file,
    not a listing photo format, larger than the models accept, or cannot be decoded: one bad
    photo among 200k listings must not stop a split, and callers count the Nones.

    The hash is of the picture a viewer sees: EXIF rotation applied and transparency flattened
    onto white, so a re-upload with the rotation or the white background baked in still matches.
    """
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO or device would block or never end
            logger.debug("no image hash for %s: not a regular file", path)
            return None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        logger.debug("no image hash for %s: %s", path, exc)
        return None
    # Pillow's plugins raise a zoo of exception types on damaged or hostile files (OSError,
    # SyntaxError, struct.error, IndexError, zlib.error, DecompressionBombError, ...). Only
    # Pillow and imagehash run in this block, so any exception here means a bad image.
    try:
        with Image.open(path, formats=_available_photo_formats()) as img:
            if img.width * img.height > DEFAULT_MAX_PIXELS:
                logger.debug(
                    "no image hash for %s: %dx%d pixels is more than %d",
                    path,
                    img.width,
                    img.height,
                    DEFAULT_MAX_PIXELS,
                )
                return None
            img.draft("L", _DRAFT_SIZE)
            img.load()
            return str(imagehash.phash(_as_seen(img)))
    except Exception as exc:
        logger.debug("no image hash for %s: %s: %s", path, type(exc).__name__, exc)
        return None


def image_hashes(paths: Sequence[str | Path | None], *, workers: int = 0) -> list[str | None]:
    """Hash many images, keeping their order; a None path gives a None hash.

    ``workers=0`` hashes in this thread. ``workers=N`` uses N threads: Pillow releases the GIL
    while it decodes and resizes, so threads overlap file I/O and decoding without the cost
    of pickling work to other processes.
    """
    if workers < 0:
        raise ValueError(f"image_hashes: workers must be >= 0, found {workers}")

    def hash_one(path: str | Path | None) -> str | None:
        return None if path is None else image_hash(path)

    if workers == 0 or len(paths) <= 1:
        return [hash_one(p) for p in paths]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(hash_one, paths, chunksize=64))


def near_duplicate_groups(hashes: Sequence[str | None], *, max_distance: int = 4) -> np.ndarray:
    """Group hashes that are within ``max_distance`` bits of each other, transitively.

    Returns one int group id per item, numbered 0, 1, ... in order of first appearance. A
    missing hash (None or NaN) gets a singleton group of its own: an unreadable image is not a
    duplicate of anything we can see.

    Comparing all pairs is hopeless at 200k listings (2e10 pairs), so candidates come from the
    pigeonhole principle: cut the 64 bits into ``max_distance + 1`` bands; two hashes that
    differ in at most ``max_distance`` bits agree exactly on at least one band. Only hashes
    sharing a band value are compared, then joined with a vectorised union-find. This is close
    to linear for well-spread hashes; a large set of hashes that all agree on one band (many
    near-blank images, say) still costs the square of that set's size.
    """
    if max_distance < 0:
        raise ValueError(f"near_duplicate_groups: max_distance must be >= 0, found {max_distance}")
    values, present = _parse_hashes(hashes)
    unique, inverse = np.unique(values[present], return_inverse=True)
    unique_group = _group_unique_hashes(unique, max_distance)

    labels = np.empty(len(values), dtype=np.int64)
    labels[present] = unique_group[inverse]
    n_missing = int((~present).sum())
    labels[~present] = unique_group.max(initial=-1) + 1 + np.arange(n_missing)
    return _dense_in_order_of_appearance(labels)


def connected_groups(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Connected components of ``n`` nodes joined by the edges ``left[i] -- right[i]``.

    Returns a component id per node, numbered in order of first appearance. It is a
    union-find done with whole-array operations instead of a Python loop per edge: every round
    hooks each root onto the smallest root it shares an edge with, then compresses paths
    fully. Each round at least halves the number of unfinished components, so it takes
    O(log n) rounds. Splits reuse it to merge seller groups with image groups.
    """
    left = np.asarray(left, dtype=np.int64)
    right = np.asarray(right, dtype=np.int64)
    if left.shape != right.shape:
        raise ValueError(
            f"connected_groups: left and right must have the same shape, "
            f"found {left.shape} and {right.shape}"
        )
    if left.size and (min(left.min(), right.min()) < 0 or max(left.max(), right.max()) >= n):
        raise ValueError(f"connected_groups: edge endpoints must lie in [0, {n}), found outside")
    parent = np.arange(n, dtype=np.int64)
    while left.size:
        root_left, root_right = parent[left], parent[right]
        crossing = root_left != root_right
        left, right = left[crossing], right[crossing]
        if not left.size:
            break
        low = np.minimum(root_left[crossing], root_right[crossing])
        high = np.maximum(root_left[crossing], root_right[crossing])
        # A root always hooks onto a smaller root, so the parent links can never form a cycle.
        np.minimum.at(parent, high, low)
        while True:
            grandparent = parent[parent]
            if np.array_equal(grandparent, parent):
                break
            parent = grandparent
    return _dense_in_order_of_appearance(parent)


@cache
def _available_photo_formats() -> tuple[str, ...]:
    Image.init()
    return tuple(fmt for fmt in _PHOTO_FORMATS if fmt in Image.OPEN)


def _as_seen(img: Image.Image) -> Image.Image:
    """Apply EXIF rotation and flatten transparency onto white, as a browser would show it."""
    img = ImageOps.exif_transpose(img)
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, _WHITE), rgba)
    return img


def _parse_hashes(hashes: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """Turn hex strings into uint64 values plus a mask of which items have a hash."""
    values = np.zeros(len(hashes), dtype=np.uint64)
    present = np.zeros(len(hashes), dtype=bool)
    for i, text in enumerate(hashes):
        if text is None or (not isinstance(text, str) and pd.isna(text)):
            continue
        if not isinstance(text, str) or len(text) != _HEX_DIGITS:
            raise ValueError(
                f"hashes[{i}]: expected a {_HEX_DIGITS}-digit hex string "
                f"({HASH_BITS}-bit pHash) or None, found {text!r}"
            )
        try:
            values[i] = int(text, 16)
        except ValueError:
            raise ValueError(
                f"hashes[{i}]: expected a {_HEX_DIGITS}-digit hex string "
                f"({HASH_BITS}-bit pHash) or None, found {text!r}"
            ) from None
        present[i] = True
    return values, present


def _group_unique_hashes(unique: np.ndarray, max_distance: int) -> np.ndarray:
    """Group ids for distinct hash values: candidates per band, then union-find."""
    n = len(unique)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if max_distance >= HASH_BITS:
        return np.zeros(n, dtype=np.int64)
    left_parts: list[np.ndarray] = []
    right_parts: list[np.ndarray] = []
    for start, width in _bands(max_distance + 1):
        band = (unique >> np.uint64(start)) & np.uint64((1 << width) - 1)
        for first, second in _pairs_sharing_a_value(band):
            close = _popcount(unique[first] ^ unique[second]) <= max_distance
            left_parts.append(first[close])
            right_parts.append(second[close])
    left = np.concatenate(left_parts) if left_parts else np.zeros(0, dtype=np.int64)
    right = np.concatenate(right_parts) if right_parts else np.zeros(0, dtype=np.int64)
    return connected_groups(n, left, right)


def _bands(count: int) -> list[tuple[int, int]]:
    """(start bit, width) of ``count`` contiguous bands covering all 64 bits, widths +-1."""
    base, extra = divmod(HASH_BITS, count)
    bands, start = [], 0
    for i in range(count):
        width = base + (1 if i < extra else 0)
        bands.append((start, width))
        start += width
    return bands


def _pairs_sharing_a_value(keys: np.ndarray):
    """Yield (first, second) index arrays covering every pair of items with equal keys.

    Items are sorted by key; the d-th round pairs each item with the one d places after it,
    keeping only items whose bucket still reaches that far. So memory stays O(n) per round,
    and the rounds stop at the largest bucket's size.
    """
    if not len(keys):
        return
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    is_start = np.empty(len(keys), dtype=bool)
    is_start[:1] = True
    is_start[1:] = sorted_keys[1:] != sorted_keys[:-1]
    starts = np.flatnonzero(is_start)
    ends = np.append(starts[1:], len(keys))
    bucket_end = np.repeat(ends, ends - starts)
    position = np.arange(len(keys))
    step = 1
    while True:
        position = position[position + step < bucket_end[position]]
        if not position.size:
            return
        yield order[position], order[position + step]
        step += 1


def _popcount(values: np.ndarray) -> np.ndarray:
    """Number of set bits per uint64."""
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(values)
    as_bytes = values.astype("<u8").view(np.uint8).reshape(-1, 8)
    return np.unpackbits(as_bytes, axis=1).sum(axis=1)


def _dense_in_order_of_appearance(labels: np.ndarray) -> np.ndarray:
    """Renumber arbitrary labels as 0, 1, 2, ... in the order each label first appears."""
    _, first_index, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(len(first_index), dtype=np.int64)
    rank[np.argsort(first_index, kind="stable")] = np.arange(len(first_index))
    return rank[inverse.reshape(-1)]
