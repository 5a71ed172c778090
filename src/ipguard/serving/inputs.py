"""Turn whatever a screening service sends into usable model inputs, flagging what is not.

The contract: optional columns may be absent, and any single row may be broken (undecodable
image, empty title, a price that is not a number, a number where text is expected, a JSON list
where a value is expected); the batch is still scored row by row, and each broken value earns
its row a flag instead of failing the request. That is why the MLflow signature declares every
column ``Any`` (see ``signature.py``): the types below are enforced here, per row.

Values are coerced exactly as the manifest reader coerces training data
(:func:`ipguard.data.coercion.coerce_text` and friends), so a listing scores the same whether it
came from a manifest or a request.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from PIL import Image

from ipguard.data.coercion import coerce_price, coerce_text, coerce_timestamp
from ipguard.data.images import decode_base64_image, decode_image

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

    def text_rows(self) -> list[int]:
        """Rows a text model can score: a title or a description; the others stay NaN."""
        return [
            i
            for i, (title, description) in enumerate(
                zip(self.titles, self.descriptions, strict=True)
            )
            if title is not None or description is not None
        ]


def _is_number(value: object) -> bool:
    """A number (or bool) that is not a missing-value marker."""
    if isinstance(value, (bool, np.bool_, int, np.integer)):
        return True
    return isinstance(value, (float, np.floating)) and not np.isnan(value)


def _text_pass(frame: pd.DataFrame, names: list[str]) -> tuple[np.ndarray, ...]:
    """``names`` coerced as text in one pass: (text, nested, numbers), each ``(len(names), n)``.

    At request sizes pandas costs per call, not per value, so the columns are stacked and
    coerced together; column by column, a one-listing request spent most of its time here.
    ``text`` is None where missing; ``nested`` marks JSON lists/objects (never a usable value),
    ``numbers`` marks numbers, which text columns read as their decimal text (as training does,
    so "123" and 123 give the same title) but still flag.
    """
    shape = (len(names), len(frame))
    flat = pd.Series(frame[names].to_numpy(dtype=object).T.reshape(-1), dtype=object)
    text, nested = coerce_text(flat)
    numbers = np.fromiter((_is_number(v) for v in flat.tolist()), dtype=bool, count=len(flat))
    return (
        text.to_numpy(dtype=object, na_value=None).reshape(shape),
        nested.to_numpy(dtype=bool).reshape(shape),
        numbers.reshape(shape),
    )


def _coerce(frame: pd.DataFrame) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Every contract column present, typed (bad values missing, numbers in text kept as text),
    and a mask per column of the values that did not fit its type."""
    present = [name for name in INPUT_COLUMNS if name in frame.columns]
    values: dict[str, np.ndarray] = {}
    bad: dict[str, np.ndarray] = {}
    if not present:
        return values, bad
    text, nested, numbers = _text_pass(frame, present)
    for row, name in enumerate(present):
        kind = INPUT_COLUMNS[name]
        if kind == "string":
            values[name] = text[row]
            # integer ids are ids: only a list or object in listing_id is wrong
            bad[name] = nested[row] | (numbers[row] & (name != "listing_id"))
            continue
        coerce = coerce_price if kind == "double" else coerce_timestamp
        typed, wrong = coerce(frame[name])
        values[name] = typed.to_numpy()
        bad[name] = wrong.to_numpy(dtype=bool) | nested[row]
    return values, bad


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

    Flags, in the order a row earns them: ``<column>_invalid`` for a value of the wrong type
    (in contract column order), ``listing_id_missing``, ``title_missing`` (there is a
    description), ``text_empty`` (no title and no description), then, when ``want_images``,
    ``image_missing`` or the decoder's ``image_unreadable`` / ``image_too_large`` /
    ``image_too_small``.
    """
    frame = frame.reset_index(drop=True)
    n = len(frame)
    flags: list[list[str]] = [[] for _ in range(n)]
    values, bad = _coerce(frame)
    for name, mask in bad.items():
        for i in np.flatnonzero(mask):
            flags[i].append(f"{name}_invalid")
    nothing = [None] * n
    ids = list(values.get("listing_id", nothing))
    titles = list(values.get("title", nothing))
    descriptions = list(values.get("description", nothing))
    for i in range(n):
        if ids[i] is None:
            flags[i].append("listing_id_missing")
        if titles[i] is None:
            flags[i].append("text_empty" if descriptions[i] is None else "title_missing")
    images: list[Image.Image | None] = [None] * n
    if want_images:
        b64, paths = values.get("image_b64", nothing), values.get("image_path", nothing)
        images = _decode_images(list(b64), list(paths), flags)
    return ScoringInputs(
        listing_ids=[v or "" for v in ids],
        titles=titles,
        descriptions=descriptions,
        images=images,
        frame=frame.assign(**values),  # bad values are missing here, numbers in text as text
        flags=flags,
    )
