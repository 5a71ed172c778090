"""Turn whatever a screening service sends into usable model inputs, flagging what is not.

The contract: optional columns may be absent, and any single row may be broken (undecodable
image, empty title, a price that is not a number, a number where text is expected, a JSON list
where a value is expected); the batch is still scored row by row, and each broken value earns
its row a flag instead of failing the request. That is why the MLflow signature declares every
column ``Any`` (see ``signature.py``): the types below are enforced here, per row.

Values are coerced exactly as the manifest reader coerces training data
(:func:`ipguard.data.schema.coerce_text` and friends), so a listing scores the same whether it
came from a manifest or a request.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from PIL import Image

from ipguard.data.images import decode_base64_image, decode_image
from ipguard.data.schema import coerce_price, coerce_text, coerce_timestamp

FLAG_SEPARATOR = ","

#: The request columns and the type each must have; only ``listing_id`` is required.
INPUT_COLUMNS: dict[str, str] = {
    "listing_id": "string",
    "title": "string",
    "description": "string",
    "brand": "string",
    "category": "string",
    "market": "string",
    "language": "string",
    "price": "double",
    "currency": "string",
    "seller_id": "string",
    "image_path": "string",
    "image_b64": "string",
    "listed_at": "timestamp",
}
REQUIRED_INPUTS = ("listing_id",)


@dataclass
class ScoringInputs:
    """Per-row inputs aligned with the request, plus the flags each row earned.

    ``frame`` holds the request's contract columns coerced to their types (a value that did
    not fit is missing there and flagged ``<column>_invalid``), plus any extra columns as sent.
    """

    listing_ids: list[str]
    titles: list[str | None]
    descriptions: list[str | None]
    images: list[Image.Image | None]
    frame: pd.DataFrame
    flags: list[list[str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.listing_ids)


def _is_number(value: object) -> bool:
    """A number (or bool) that is not a missing-value marker."""
    if isinstance(value, (bool, np.bool_, int, np.integer)):
        return True
    return isinstance(value, (float, np.floating)) and not np.isnan(value)


def _coerce(values: pd.Series, kind: str) -> tuple[pd.Series, pd.Series]:
    """One column typed as the contract says, and a mask of present values that did not fit.

    Text columns read numbers as their decimal text (as training does, so "123" and 123 give
    the same title) but still flag them, since a service that sends a number where text is
    expected is probably sending the wrong field.
    """
    text, nested = coerce_text(values)  # nested: JSON lists/objects, never a usable value
    if kind != "string":
        typed, bad = (coerce_price if kind == "double" else coerce_timestamp)(values)
        return typed, bad | nested
    if pd.api.types.is_numeric_dtype(values.dtype):
        numbers = values.notna()
    else:
        numbers = values.map(_is_number).astype(bool)
    return text, nested | numbers


def _as_list(column: pd.Series | None, n: int) -> list[str | None]:
    if column is None:
        return [None] * n
    return [None if pd.isna(v) else str(v) for v in column.tolist()]


def _decode_images(
    b64: list[str | None], paths: list[str | None], flags: list[list[str]]
) -> list[Image.Image | None]:
    """Base64 wins over a path when a row has both: it is what the request itself carried."""
    images: list[Image.Image | None] = [None] * len(flags)
    for i, row_flags in enumerate(flags):
        if b64[i] is not None:
            decoded = decode_base64_image(b64[i])
        elif paths[i] is not None:
            decoded = decode_image(paths[i])
        else:
            row_flags.append("image_missing")
            continue
        if decoded.ok:
            images[i] = decoded.image
        else:
            # a path or payload that was sent but yields nothing is unreadable, not missing
            row_flags.append(
                "image_unreadable" if decoded.flag == "image_missing" else str(decoded.flag)
            )
    return images


def collect_inputs(frame: pd.DataFrame, *, want_images: bool = True) -> ScoringInputs:
    """Read a request frame; never raises for bad values, only records flags per row.

    Flags, in the order a row earns them: ``<column>_invalid`` for a value of the wrong type,
    ``listing_id_missing``, ``title_missing`` (there is a description), ``text_empty`` (no
    title and no description), then, when ``want_images``, ``image_missing`` or the decoder's
    ``image_unreadable`` / ``image_too_large`` / ``image_too_small``.
    """
    frame = frame.reset_index(drop=True)
    n = len(frame)
    flags: list[list[str]] = [[] for _ in range(n)]
    typed = frame.copy()
    for name, kind in INPUT_COLUMNS.items():
        if name not in frame.columns:
            continue
        values, bad = _coerce(frame[name], kind)
        if name == "listing_id":
            bad = bad & ~frame[name].map(_is_number).astype(bool)  # integer ids are ids
        for i in np.flatnonzero(bad.to_numpy()):
            flags[i].append(f"{name}_invalid")
        typed[name] = values  # bad values are missing now, except numbers read as text
    column = {name: typed[name] if name in typed.columns else None for name in INPUT_COLUMNS}
    ids = _as_list(column["listing_id"], n)
    titles = _as_list(column["title"], n)
    descriptions = _as_list(column["description"], n)
    for i in range(n):
        if ids[i] is None:
            flags[i].append("listing_id_missing")
        if titles[i] is None:
            flags[i].append("text_empty" if descriptions[i] is None else "title_missing")
    images: list[Image.Image | None] = [None] * n
    if want_images:
        b64 = _as_list(column["image_b64"], n)
        images = _decode_images(b64, _as_list(column["image_path"], n), flags)
    return ScoringInputs(
        listing_ids=[v or "" for v in ids],
        titles=titles,
        descriptions=descriptions,
        images=images,
        frame=typed,
        flags=flags,
    )
