"""Perceptual photo hashes and near-duplicate clustering.

Marketplaces are full of the same product photo reused across listings, often re-encoded,
resized or lightly cropped. If one copy sits in train and another in test, the model is graded
on a picture it has memorised. This module finds those copies so splits can keep them together,
without comparing every pair.

Two hashes, because catalogue photos defeat the classic one:

- ``kind="phash"``: imagehash's 64-bit pHash, 16 hex digits, compared by Hamming distance.
  It is what most tools use, but on studio product shots (light background, one centred
  product, the same framing for every item) it sees mostly the shared layout: on the
  catalogue-like demo data (:mod:`ipguard.demo.catalogue`) 1 in 285 pairs of *different*
  items lies within 4 bits, while a quarter of re-uploaded copies drift further (up to 14).
- ``kind="signature"`` (what splits use): a *photo signature* of the product itself. The
  picture is aligned on its product (trimmed mean and interquartile width of everything
  that differs from the backdrop, to a fraction of a pixel), so cropping or resizing the backdrop
  hardly changes it;
  then the colour of a 16x16 grid of cells relative to the backdrop is kept, one byte per cell
  and channel. Signatures are compared by their summed cell differences. Photos without a
  plain backdrop are described whole.

Near-duplicates form *bounded clusters* (:func:`near_duplicate_clusters`): a photo joins a
cluster only when it is close to the cluster's first photo, its leader, so a chain of
look-alikes cannot join unrelated photos the way transitive grouping
(:func:`near_duplicate_groups`, kept for pHashes) does.
"""

from __future__ import annotations

import base64
import logging
import os
import stat
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import imagehash
import numpy as np
import pandas as pd
from PIL import Image, ImageFilter, ImageOps

from ipguard.data.images import DEFAULT_MAX_PIXELS

__all__ = [
    "DEFAULT_MAX_DISTANCE",
    "HASH_BITS",
    "HASH_KINDS",
    "SIGNATURE_PREFIX",
    "HashKind",
    "PhotoClusters",
    "connected_groups",
    "hash_kind",
    "image_hash",
    "image_hashes",
    "near_duplicate_clusters",
    "near_duplicate_groups",
    "photo_signature",
]

logger = logging.getLogger(__name__)

HASH_BITS = 64
"""pHash with imagehash's default hash_size=8: 64 bits, written as 16 hex digits."""

HashKind = Literal["phash", "signature"]
HASH_KINDS: tuple[str, ...] = ("phash", "signature")

SIGNATURE_PREFIX = "sig1:"
"""Photo signatures are written as this prefix and the base64 of their cell bytes; the
version in it changes whenever the signature's definition does, so old and new never mix."""

DEFAULT_MAX_DISTANCE: dict[str, int] = {"phash": 4, "signature": 200}
"""Distance at or below which two photos are near-duplicates, per hash kind: bits of a pHash;
for signatures, cell differences beyond one unit, summed over the 768 cell bytes (nearly every
copy cropped by up to 3% a side, resized and re-encoded stays below it; see docs/data.md)."""

_HEX_DIGITS = HASH_BITS // 4

# The pHash works on a 32x32 greyscale thumbnail, so decoding a 4000px JPEG at full size is
# wasted work. Pillow's draft mode lets the JPEG decoder scale down by up to 8x for free; the
# requested size stays well above 32x32 so the hash is as stable as with a full decode.
_DRAFT_SIZE = (128, 128)

# The photo formats ipguard.data.images decodes for the models (a test keeps the two in step).
# Anything else (EPS would start Ghostscript on untrusted bytes) gets no hash.
_PHOTO_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "TIFF", "AVIF")

_WHITE = (255, 255, 255, 255)

# --- photo signature parameters -------------------------------------------------------------
# The product is found as everything that differs from the backdrop, each pixel weighted by
# how much its most different channel differs beyond _INK_FLOOR (JPEG noise, the light
# fall-off of a studio sweep). A linear weight, not a threshold: a part close to the backdrop's
# colour (a white strap on white) then moves the centre only a little when a copy's noise
# moves it, where a threshold would switch the whole part on and off.
_INK_FLOOR = 8.0
# A photo has a plain backdrop when this share of its border is within _PLAIN_TOLERANCE of
# the border's median colour; anything else (a scene, a full-frame close-up) is described whole.
_PLAIN_TOLERANCE = 16.0
_PLAIN_BORDER_SHARE = 0.75
_MIN_INK = 0.05  # mean weight per pixel below this: a blank picture, described whole
_WORK_SIDE = 160  # photos are reduced to at most this side before measuring the product
_FRAME = 64  # side of the aligned frame the cells are cut from
_GRID = 16  # cells per side: 16 x 16 cells of 4 x 4 frame pixels
_SPREAD = 0.25  # the product's interquartile width, as a share of the frame side
_FRAME_BLUR = 1.5  # Gaussian radius, in frame pixels
_CENTRE_QUANTILES = np.linspace(0.2, 0.8, 13)
_SIGNATURE_BYTES = 3 * _GRID * _GRID
# Cell colour as Y, Cb, Cr minus the backdrop's; luminance at half weight, so that colour
# (what tells two products of one silhouette apart) counts twice as much per unit.
_CHANNEL_SCALE = np.array([0.5, 1.0, 1.0], dtype=np.float32)
_TO_YCBCR = np.array(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]],
    dtype=np.float32,
)
_GREY = np.array([128.0, 128.0, 128.0], dtype=np.float32)
_SHRINK = 1.5  # cell differences this small are the backdrop, exactly (see photo_signature)

# --- signature band index -------------------------------------------------------------------
# Candidates come from bands as for pHashes, but a band is not a run of hash bits: it is the
# grid cell that _BAND_PROJECTIONS fixed random projections of the signature fall in
# (p-stable locality-sensitive hashing). Bits of a fixed hash of studio photos agree far more
# often than chance (the shared layout): on the 3,000-listing catalogue 4.7% of all pairs
# share one of the 5 bands of their 64-bit pHashes, against 0.085% for random hashes.
# Projections of the product's cells have no such bias. The cell width scales with the
# distance asked for, so a pair within it shares some band with high probability: all 412
# pairs within 200 of that catalogue were found comparing 0.55 pairs per row; at 200,000
# listings 19 pairs per row were compared (docs/data.md).
_BANDS = 96
_BAND_PROJECTIONS = 16
_CELL_PER_DISTANCE = 0.9
_PROJECTION_SEED = 20240611
_VERIFY_CHUNK = 65536  # pairs whose distance is computed at once
_KEY_BLOCK = 4096  # signatures projected at once (a block of cells is ~50 MB)


def image_hash(path: str | Path, *, kind: HashKind = "phash") -> str | None:
    """Return the hash of the image at ``path``: a 16-hex-digit pHash or a photo signature.

    Returns None (and logs why at debug level) when the file is missing, not a regular file,
    not a listing photo format, larger than the models accept, or cannot be decoded: one bad
    photo among 200k listings must not stop a split, and callers count the Nones.

    The hash is of the picture a viewer sees: EXIF rotation applied and transparency flattened
    onto white, so a re-upload with the rotation or the white background baked in still matches.
    """
    if kind not in HASH_KINDS:
        raise ValueError(f"image_hash: kind must be one of {HASH_KINDS}, found {kind!r}")
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO or device would block or never end
            logger.debug("no image hash for %s: not a regular file", path)
            return None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        logger.debug("no image hash for %s: %s", path, exc)
        return None
    # Pillow's plugins raise a zoo of exception types on damaged or hostile files (OSError,
    # SyntaxError, struct.error, IndexError, zlib.error, DecompressionBombError, ...). Only
    # Pillow, imagehash and this module's numpy run in this block, so any exception here
    # means a bad image.
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
            img.draft("L" if kind == "phash" else "RGB", _DRAFT_SIZE)
            img.load()
            seen = _as_seen(img)
            if kind == "phash":
                return str(imagehash.phash(seen))
            return photo_signature(seen)
    except Exception as exc:
        logger.debug("no image hash for %s: %s: %s", path, type(exc).__name__, exc)
        return None


def image_hashes(
    paths: Sequence[str | Path | None], *, workers: int = 0, kind: HashKind = "phash"
) -> list[str | None]:
    """Hash many images, keeping their order; a None path gives a None hash.

    ``workers=0`` hashes in this thread. ``workers=N`` uses N threads: Pillow releases the GIL
    while it decodes and resizes, so threads overlap file I/O and decoding without the cost
    of pickling work to other processes.
    """
    if workers < 0:
        raise ValueError(f"image_hashes: workers must be >= 0, found {workers}")
    if kind not in HASH_KINDS:
        raise ValueError(f"image_hashes: kind must be one of {HASH_KINDS}, found {kind!r}")

    def hash_one(path: str | Path | None) -> str | None:
        return None if path is None else image_hash(path, kind=kind)

    if workers == 0 or len(paths) <= 1:
        return [hash_one(p) for p in paths]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(hash_one, paths, chunksize=64))


def photo_signature(image: Image.Image) -> str:
    """The photo signature of a decoded picture, as ``SIGNATURE_PREFIX`` + base64 text.

    For a picture on a plain backdrop the product is moved to the frame's centre and scaled to
    a fixed size, with sub-pixel precision, before the cells are measured: a re-upload cropped
    or resized around the product then gives nearly the same cells. Other pictures are
    measured whole against mid grey.
    """
    rgb = image.convert("RGB")
    if max(rgb.size) > _WORK_SIDE:
        rgb = rgb.copy()
        rgb.thumbnail((_WORK_SIDE, _WORK_SIDE), Image.Resampling.BOX)
    pixels = np.asarray(rgb, dtype=np.float32)
    backdrop = _plain_backdrop(pixels)
    frame = None if backdrop is None else _aligned_frame(rgb, pixels, backdrop)
    if frame is None:
        frame, backdrop = rgb.resize((_FRAME, _FRAME), Image.Resampling.BOX), _GREY
    # A light blur before the cells are averaged: a product edge or a JPEG block boundary
    # shifted by a fraction of a pixel then changes its cells a little, not by a whole step.
    frame = frame.filter(ImageFilter.GaussianBlur(_FRAME_BLUR))
    cells = (
        np.asarray(frame, dtype=np.float32)
        .reshape(_GRID, _FRAME // _GRID, _GRID, _FRAME // _GRID, 3)
        .mean(axis=(1, 3))
    )
    relative = (cells - backdrop) @ _TO_YCBCR.T * _CHANNEL_SCALE  # (grid, grid, channel)
    # Differences within _SHRINK of the backdrop become exactly 0 (and larger ones move by
    # _SHRINK, continuously), so backdrop cells match exactly however a copy was re-encoded.
    relative = np.sign(relative) * np.maximum(np.abs(relative) - _SHRINK, 0.0)
    values = np.clip(np.rint(relative) + 128, 0, 255).astype(np.uint8)
    payload = np.moveaxis(values, -1, 0).tobytes()  # all Y cells, then Cb, then Cr
    return SIGNATURE_PREFIX + base64.urlsafe_b64encode(payload).decode("ascii")


def hash_kind(hashes: Sequence[str | None]) -> HashKind | None:
    """The kind of the hashes given (None when none is present); mixed kinds are an error."""
    kinds = {_kind_of(i, h) for i, h in enumerate(hashes) if not _missing(h)}
    if len(kinds) > 1:
        raise ValueError(
            "hashes: expected one kind of hash, found both 16-digit pHashes and "
            f"{SIGNATURE_PREFIX} photo signatures; hash every photo the same way"
        )
    return kinds.pop() if kinds else None


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


@dataclass(frozen=True)
class PhotoClusters:
    """Near-duplicate clusters of photos, and what it took to find them."""

    labels: np.ndarray
    """Cluster id per item, 0, 1, ... in order of first appearance; a missing hash is a
    cluster of its own."""
    kind: HashKind | None
    """The hashes' kind (None when every hash was missing)."""
    max_distance: int
    """The distance used: bits for pHashes, summed cell-byte differences for signatures."""
    candidate_pairs: int
    """Pairs of distinct hashes the band index proposed and whose distance was computed."""
    close_pairs: int
    """Of those, the pairs within ``max_distance``."""
    distance_to_leader: np.ndarray
    """Per item, its hash's distance to its cluster leader's (0 for a leader or a missing hash):
    how strong the link that put it in the cluster is."""

    @property
    def linked(self) -> int:
        """Items joined to a cluster led by another item: each is one near-duplicate link."""
        return int(len(self.labels) - len(np.unique(self.labels)))


def near_duplicate_clusters(
    hashes: Sequence[str | None], *, max_distance: int | None = None
) -> PhotoClusters:
    """Cluster photos whose hashes are near-duplicates, without chains.

    Distinct hash values are taken in order of first appearance; each joins the first earlier
    *leader* within ``max_distance``, or else leads a cluster of its own. Every member is thus
    within ``max_distance`` of its leader and a cluster cannot grow beyond twice that
    diameter, however many look-alikes line up between two unrelated photos (transitive
    grouping joins them all). Identical hashes always share a cluster; a missing hash (None or
    NaN) is a cluster of its own. The same hashes in the same order give the same clusters.

    ``hashes`` are all 16-digit pHashes (Hamming distance, candidates from the exact
    pigeonhole bands of :func:`near_duplicate_groups`) or all photo signatures (L1 distance,
    candidates from random-projection bands, which find a pair within ``max_distance`` with
    high probability, not certainty). ``max_distance=None`` uses
    :data:`DEFAULT_MAX_DISTANCE` for the kind.
    """
    kind = hash_kind(hashes)
    distance = DEFAULT_MAX_DISTANCE[kind or "phash"] if max_distance is None else max_distance
    if distance < 0:
        raise ValueError(f"near_duplicate_clusters: max_distance must be >= 0, found {distance}")
    present = np.array([not _missing(h) for h in hashes], dtype=bool)
    texts = [h for h in hashes if not _missing(h)]
    # Distinct values in order of first appearance: that order decides who leads.
    lookup: dict[str, int] = {}
    for text in texts:
        lookup.setdefault(text, len(lookup))
    inverse = np.fromiter((lookup[t] for t in texts), dtype=np.int64, count=len(texts))
    distinct = list(lookup)
    if kind == "signature":
        left, right, gaps, compared = _close_signature_pairs(_parse_signatures(distinct), distance)
    elif kind == "phash":
        values = np.array([int(t, 16) for t in distinct], dtype=np.uint64)
        left, right, gaps, compared = _close_phash_pairs(values, distance)
    else:
        left = right = gaps = np.zeros(0, dtype=np.int64)
        compared = 0
    leader, gap_to_leader = _leaders(len(distinct), left, right, gaps)

    labels = np.empty(len(hashes), dtype=np.int64)
    labels[present] = leader[inverse]
    n_missing = int((~present).sum())
    labels[~present] = len(distinct) + np.arange(n_missing)
    to_leader = np.zeros(len(hashes), dtype=np.int64)
    to_leader[present] = gap_to_leader[inverse]
    return PhotoClusters(
        labels=_dense_in_order_of_appearance(labels),
        kind=kind,
        max_distance=int(distance),
        candidate_pairs=int(compared),
        close_pairs=len(left),
        distance_to_leader=to_leader,
    )


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


def _missing(value: object) -> bool:
    """None, NaN, pd.NA: no hash for this item."""
    if value is None:
        return True
    if isinstance(value, str):
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # a list or array: not missing, and not a hash either
        return False


_SIGNATURE_TEXT = len(SIGNATURE_PREFIX) + 4 * _SIGNATURE_BYTES // 3
_HEX = frozenset("0123456789abcdefABCDEF")


def _kind_of(position: int, text: object) -> HashKind:
    """The kind of one present hash, or an error naming its position and value."""
    if isinstance(text, str):
        if text.startswith(SIGNATURE_PREFIX) and len(text) == _SIGNATURE_TEXT:
            return "signature"
        if len(text) == _HEX_DIGITS and set(text) <= _HEX:
            return "phash"
    shown = repr(text) if len(repr(text)) <= 60 else repr(text)[:57] + "..."
    raise ValueError(
        f"hashes[{position}]: expected a {_HEX_DIGITS}-digit hex string ({HASH_BITS}-bit pHash), "
        f"a {SIGNATURE_PREFIX} photo signature of {_SIGNATURE_TEXT} characters, or None; "
        f"found {shown}"
    )


def _parse_signatures(texts: Sequence[str]) -> np.ndarray:
    """Signature texts as a (n, 768) uint8 matrix."""
    out = np.empty((len(texts), _SIGNATURE_BYTES), dtype=np.uint8)
    start = len(SIGNATURE_PREFIX)
    for i, text in enumerate(texts):
        try:
            out[i] = np.frombuffer(base64.urlsafe_b64decode(text[start:]), dtype=np.uint8)
        except ValueError:  # binascii.Error is a ValueError; so is a wrong length
            raise ValueError(
                f"photo signature {text[:24]!r}...: not valid base64 of {_SIGNATURE_BYTES} bytes"
            ) from None
    return out


def _plain_backdrop(pixels: np.ndarray) -> np.ndarray | None:
    """The backdrop colour when the picture's border is plain (a studio sweep), else None."""
    if min(pixels.shape[:2]) < 8:
        return None
    border = np.concatenate([pixels[0], pixels[-1], pixels[1:-1, 0], pixels[1:-1, -1]])
    median = np.median(border, axis=0)
    near = _channel_max(np.abs(border - median)) <= _PLAIN_TOLERANCE
    if near.mean() < _PLAIN_BORDER_SHARE:
        return None
    # The mean of the plain part, not the median: a re-encoded copy's backdrop moves by a
    # fraction of a level, which the median (a pixel's value) turns into jumps of whole levels
    # that every cell, measured against it, would inherit.
    return border[near].mean(axis=0)


def _aligned_frame(
    image: Image.Image, pixels: np.ndarray, backdrop: np.ndarray
) -> Image.Image | None:
    """The product centred in a ``_FRAME`` square at a fixed size; None if the photo is blank.

    Centre and size come from where the product's weight lies in x and y: a trimmed mean
    and the mean of the interquartile widths (see _weighted_quantiles). They move smoothly with
    the picture, so a crop or a resize of the backdrop shifts them by a fraction of a pixel,
    where a bounding box jumps with every speck of JPEG noise or soft shadow at its edge.
    """
    weight = np.maximum(_channel_max(np.abs(pixels - backdrop)) - _INK_FLOOR, 0.0)
    if float(weight.sum()) < _MIN_INK * weight.size:
        return None
    x25, cx, x75 = _weighted_quantiles(weight.sum(axis=0))
    y25, cy, y75 = _weighted_quantiles(weight.sum(axis=1))
    size = max(((x75 - x25) + (y75 - y25)) / 2, 1e-3)
    step_x = step_y = size / (_SPREAD * _FRAME)  # input pixels per frame pixel
    if step_x > 1.5:  # shrink with averaging first, so sampling skips no detail
        width = max(1, round(image.width / step_x))
        height = max(1, round(image.height / step_y))
        ratio_x, ratio_y = image.width / width, image.height / height
        image = image.resize((width, height), Image.Resampling.BOX)
        cx, cy = cx / ratio_x, cy / ratio_y
        step_x, step_y = step_x / ratio_x, step_y / ratio_y
    half = _FRAME / 2
    fill = tuple(round(float(c)) for c in backdrop)
    affine = (step_x, 0.0, cx - half * step_x, 0.0, step_y, cy - half * step_y)
    return image.transform(
        (_FRAME, _FRAME),
        Image.Transform.AFFINE,
        affine,
        resample=Image.Resampling.BILINEAR,
        fillcolor=fill,
    )


def _channel_max(values: np.ndarray) -> np.ndarray:
    """Largest of the last axis' three channels (much faster than ``max(axis=-1)``)."""
    return np.maximum(np.maximum(values[..., 0], values[..., 1]), values[..., 2])


def _weighted_quantiles(masses: np.ndarray) -> tuple[float, float, float]:
    """Lower quartile, centre and upper quartile of a 1-D weight profile, in pixels (0..n).

    Interpolated in the cumulative weight, so they move by sub-pixel amounts. The centre is
    the mean of the quantiles from 20% to 80% (a trimmed mean): unlike the mean it hardly moves
    when a crop takes away the end of a strap running off the frame, and unlike the median it
    does not slide across the gap between the two cups of a pair of headphones.
    """
    cumulative = np.concatenate([[0.0], np.cumsum(masses, dtype=np.float64)])
    cumulative /= cumulative[-1]
    edges = np.arange(len(cumulative), dtype=np.float64)
    q25, q75 = np.interp([0.25, 0.75], cumulative, edges)
    centre = np.interp(_CENTRE_QUANTILES, cumulative, edges).mean()
    return float(q25), float(centre), float(q75)


_Pairs = tuple[np.ndarray, np.ndarray, np.ndarray, int]


def _no_pairs() -> _Pairs:
    empty = np.zeros(0, dtype=np.int64)
    return empty, empty, empty, 0


def _close_phash_pairs(values: np.ndarray, max_distance: int) -> _Pairs:
    """(left, right, distance, compared): distinct pHash pairs within ``max_distance`` bits,
    left < right. Exact: candidates from ``max_distance + 1`` pigeonhole bands."""
    n = len(values)
    if n < 2:
        return _no_pairs()
    if max_distance >= HASH_BITS:  # everything is close: joining all to the first suffices
        right = np.arange(1, n, dtype=np.int64)
        gaps = _popcount(values[0] ^ values[1:]).astype(np.int64)
        return np.zeros(n - 1, dtype=np.int64), right, gaps, n - 1
    codes: list[np.ndarray] = []
    for start, width in _bands(max_distance + 1):
        band = (values >> np.uint64(start)) & np.uint64((1 << width) - 1)
        for first, second in _pairs_sharing_a_value(band):
            codes.append(np.minimum(first, second) * n + np.maximum(first, second))
    pairs = np.unique(np.concatenate(codes)) if codes else np.zeros(0, dtype=np.int64)
    left, right = pairs // n, pairs % n
    gaps = _popcount(values[left] ^ values[right]).astype(np.int64)
    close = gaps <= max_distance
    return left[close], right[close], gaps[close], len(pairs)


@cache
def _projections(count: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixed random projections and grid offsets for the signature bands (one seed, always)."""
    rng = np.random.default_rng(_PROJECTION_SEED)
    directions = rng.standard_normal((count, _SIGNATURE_BYTES)).astype(np.float32)
    offsets = rng.uniform(size=count).astype(np.float32)
    return directions, offsets


def _signature_band_keys(signatures: np.ndarray, max_distance: int) -> np.ndarray:
    """One int64 key per signature and band: the grid cell of its band's projections."""
    n = len(signatures)
    directions, offsets = _projections(_BANDS * _BAND_PROJECTIONS)
    width = max(float(max_distance), 1.0) * _CELL_PER_DISTANCE
    keys = np.empty((n, _BANDS), dtype=np.uint64)
    for start in range(0, n, _KEY_BLOCK):
        block = signatures[start : start + _KEY_BLOCK].astype(np.float32)
        cells = np.floor(block @ directions.T / width + offsets).astype(np.int64)
        cells = cells.reshape(len(block), _BANDS, _BAND_PROJECTIONS).view(np.uint64)
        mixed = np.zeros((len(block), _BANDS), dtype=np.uint64)
        for k in range(_BAND_PROJECTIONS):  # wrapping polynomial mix of the band's cells
            mixed = mixed * np.uint64(0x9E3779B97F4A7C15) + cells[:, :, k]
        keys[start : start + len(block)] = mixed
    return keys.view(np.int64)


def _close_signature_pairs(signatures: np.ndarray, max_distance: int) -> _Pairs:
    """(left, right, distance, compared): distinct signature pairs within ``max_distance``,
    left < right."""
    n = len(signatures)
    if n < 2:
        return _no_pairs()
    keys = _signature_band_keys(signatures, max_distance)
    codes: list[np.ndarray] = []
    for band in range(_BANDS):
        band_codes = [
            np.minimum(first, second) * n + np.maximum(first, second)
            for first, second in _pairs_sharing_a_value(keys[:, band])
        ]
        if band_codes:
            codes.append(np.unique(np.concatenate(band_codes)))
    pairs = np.unique(np.concatenate(codes)) if codes else np.zeros(0, dtype=np.int64)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for start in range(0, len(pairs), _VERIFY_CHUNK):
        chunk = pairs[start : start + _VERIFY_CHUNK]
        left, right = chunk // n, chunk % n
        gaps = _signature_distance(signatures[left], signatures[right]).astype(np.int64)
        close = gaps <= max_distance
        parts.append((left[close], right[close], gaps[close]))
    if not parts:
        return _no_pairs()
    left, right, gaps = (np.concatenate(column) for column in zip(*parts, strict=True))
    return left, right, gaps, len(pairs)


def _signature_distance(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Summed cell differences beyond one unit each: re-encoding moves every cell of a
    colourful full-frame photo by a unit or so, which would otherwise add up over 768 cells."""
    gap = np.abs(first.astype(np.int16) - second.astype(np.int16))
    return np.maximum(gap - 1, 0).sum(axis=-1)


def _leaders(
    n: int, left: np.ndarray, right: np.ndarray, gaps: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Leader per item for close pairs ``left < right`` (and the distance to it): the first
    earlier leader it is close to, or itself. Items are final in index order, so one pass over
    the pairs sorted by (right, left) decides them all."""
    leader = list(range(n))
    to_leader = [0] * n
    leads = [True] * n
    order = np.lexsort((left, right))
    pairs = zip(left[order].tolist(), right[order].tolist(), gaps[order].tolist(), strict=True)
    for i, j, gap in pairs:
        if leads[j] and leads[i]:
            leader[j], to_leader[j] = i, gap
            leads[j] = False
    return np.asarray(leader, dtype=np.int64), np.asarray(to_leader, dtype=np.int64)


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
