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

from ipguard.data.coercion import coerce_price, coerce_timestamp, text_value
from ipguard.data.images import decode_base64_image, decode_image

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

    ``columns`` holds the request's contract columns coerced to their types (a value that did
    not fit is missing there and flagged ``<column>_invalid``), as arrays; ``frame`` is the
    same as a DataFrame, plus any extra columns as sent, built only when a caller asks for it
    (the fused and text models read ``columns``, so a request builds no frame).
    """

    listing_ids: list[str]
    titles: list[str | None]
    descriptions: list[str | None]
    images: list[Image.Image | None]
    columns: dict[str, np.ndarray]
    source: pd.DataFrame
    flags: list[list[str]] = field(default_factory=list)
    _frame: pd.DataFrame | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.listing_ids)

    @property
    def frame(self) -> pd.DataFrame:
        """The request with its contract columns coerced (bad values missing, numbers in text
        as text), plus any extra columns as sent."""
        if self._frame is None:
            self._frame = self.source.reset_index(drop=True).assign(**self.columns)
        return self._frame

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


def _coerce_texts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(text, nested, numbers) of one column; see :func:`~ipguard.data.coercion.text_value`
    and :func:`_is_number`."""
    n = len(values)
    text = np.empty(n, dtype=object)
    nested = np.zeros(n, dtype=bool)
    numbers = np.zeros(n, dtype=bool)
    for i, value in enumerate(values):
        text[i], nested[i] = text_value(value)
        numbers[i] = _is_number(value)
    return text, nested, numbers


def _plain_number(value: object) -> bool:
    """A number whose float is what parsing its decimal text gives; others are parsed."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, (float, np.float64)):
        return True
    return isinstance(value, (int, np.integer)) and -(2**53) < value < 2**53


def _coerce_prices(column: pd.Series, text: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`ipguard.data.coercion.coerce_price` without its per-call pandas cost on the
    common case (numbers, or no price); strings still go through it, all in one call."""
    if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
        number = column.to_numpy(dtype=np.float64, na_value=np.nan)
        present = column.notna().to_numpy()
        bad = present & ~np.isfinite(number)
        return np.where(bad, np.nan, number), bad
    raw = column.to_numpy(dtype=object)
    number = np.full(len(raw), np.nan)
    bad = np.zeros(len(raw), dtype=bool)
    parse: list[int] = []
    for i, value in enumerate(raw):
        if text[i] is None:
            continue  # missing, blank or nested: no price, and not a bad one
        # exactly what parsing their decimal text gives (a float32 does not: 0.1 != "0.1")
        if _plain_number(value):
            number[i] = float(value)
            bad[i] = not np.isfinite(number[i])
        else:
            parse.append(i)
    if parse:
        typed, wrong = coerce_price(pd.Series(raw[parse], dtype=object))
        number[parse] = typed.to_numpy(dtype=np.float64, na_value=np.nan)
        bad[parse] = wrong.to_numpy(dtype=bool)
    number[bad] = np.nan
    return number, bad


def _coerce(frame: pd.DataFrame) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Every contract column present, typed (bad values missing, numbers in text kept as text),
    and a mask per column of the values that did not fit its type."""
    values: dict[str, np.ndarray] = {}
    bad: dict[str, np.ndarray] = {}
    for name, kind in INPUT_COLUMNS.items():
        if name not in frame.columns:
            continue
        column = frame[name]
        if isinstance(column, pd.DataFrame):
            raise ValueError(f"request: column {name!r} appears more than once")
        text, nested, numbers = _coerce_texts(column.to_numpy(dtype=object))
        if kind == "string":
            values[name] = text
            # integer ids are ids: only a list or object in listing_id is wrong
            bad[name] = nested | (numbers & (name != "listing_id"))
        elif kind == "double":
            values[name], wrong = _coerce_prices(column, text)
            bad[name] = wrong | nested
        else:
            typed, wrong = coerce_timestamp(column.reset_index(drop=True))
            values[name] = typed.to_numpy()
            bad[name] = wrong.to_numpy(dtype=bool) | nested
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
        columns=values,
        source=frame,
        flags=flags,
    )
