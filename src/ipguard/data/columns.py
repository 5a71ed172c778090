"""The listing-manifest contract's names: its columns and its labels, in one place.

Plain Python with no imports, so everything that speaks the contract (validation, datasets,
splits, the demo generators, evaluation and the screening service) shares one spelling of it
without pulling in the validation machinery. The positive class is ``infringing``, index 1.
"""

from __future__ import annotations

from typing import Any

DECISIONS: tuple[str, ...] = ("reject", "review", "approve")
"""The model contract's decision lanes, strictest first (the ``decision`` output column)."""
FLAG_SEPARATOR = ","
"""Joins a row's flags in the ``flags`` output column (listing and video models alike)."""

SOURCE_FILE = "_source_file"
SOURCE_ROW = "_source_row"
BOOKKEEPING_COLUMNS: tuple[str, ...] = (SOURCE_FILE, SOURCE_ROW)
"""Where each row was read from; added by the reader, never part of a written manifest."""
REJECT_REASON = "reject_reason"

MANIFEST_COLUMNS: tuple[str, ...] = (
    "listing_id",
    "title",
    "description",
    "brand",
    "category",
    "market",
    "language",
    "price",
    "currency",
    "seller_id",
    "image_path",
    "listed_at",
    "label",
    "infringement_type",
)
REQUIRED_COLUMNS: tuple[str, ...] = ("listing_id", "title")
TEXT_COLUMNS: tuple[str, ...] = tuple(
    c for c in MANIFEST_COLUMNS if c not in ("price", "listed_at")
)
REQUEST_COLUMNS: tuple[str, ...] = tuple(
    c for c in MANIFEST_COLUMNS if c not in ("label", "infringement_type")
)
"""What a screening service is sent: the listing, not what a reviewer found out about it."""

BRAND_COLUMNS: tuple[str, ...] = ("brand", "reference_price", "currency")
REQUIRED_BRAND_COLUMNS: tuple[str, ...] = ("brand",)

LABELS: tuple[str, ...] = ("genuine", "infringing")
"""The contract's labels, ordered by their index."""
POSITIVE_LABEL = LABELS[1]
LABEL_INDEX: dict[str, int] = {label: index for index, label in enumerate(LABELS)}
INFRINGEMENT_TYPES: tuple[str, ...] = ("counterfeit", "logo_misuse", "copyright", "other")
"""The documented infringement types; other values are kept, normalised, and counted."""


def label_index(value: object) -> int:
    """0/1 for a contract label (any case, outer spaces ignored), -1 for anything else."""
    return LABEL_INDEX.get(value.strip().lower(), -1) if isinstance(value, str) else -1


def label_array(labels: Any) -> Any:
    """A column of contract labels (a pandas Series) as int64 0/1; validation has already
    rejected any other value."""
    return labels.map(LABEL_INDEX).to_numpy(dtype="int64")
