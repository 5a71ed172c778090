"""Turn whatever a screening service sends into usable model inputs, flagging what is not.

The contract: optional columns may be absent, any single row may be broken (undecodable
image, empty title, price that is not a number), and the batch is still scored row by row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from PIL import Image

from ipguard.data.images import decode_base64_image, decode_image

FLAG_SEPARATOR = ","


def _clean(value: object) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    text = str(value)
    return text if text.strip() else None


@dataclass
class ScoringInputs:
    """Per-row inputs aligned with the request, plus the flags each row earned."""

    listing_ids: list[str]
    titles: list[str | None]
    descriptions: list[str | None]
    images: list[Image.Image | None]
    frame: pd.DataFrame
    flags: list[list[str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.listing_ids)


def _column(frame: pd.DataFrame, name: str) -> list[str | None]:
    if name not in frame.columns:
        return [None] * len(frame)
    return [_clean(v) for v in frame[name].tolist()]


def collect_inputs(frame: pd.DataFrame, *, want_images: bool = True) -> ScoringInputs:
    """Read a request frame; never raises for bad values, only records flags."""
    frame = frame.reset_index(drop=True)
    n = len(frame)
    flags: list[list[str]] = [[] for _ in range(n)]
    ids = _column(frame, "listing_id")
    for i, value in enumerate(ids):
        if value is None:
            flags[i].append("listing_id_missing")
    titles, descriptions = _column(frame, "title"), _column(frame, "description")
    for i in range(n):
        if titles[i] is None and descriptions[i] is None:
            flags[i].append("text_empty")
    if "price" in frame.columns:
        raw = frame["price"]
        numeric = pd.to_numeric(raw, errors="coerce")
        for i in np.flatnonzero(numeric.isna().to_numpy() & raw.notna().to_numpy()):
            if _clean(raw.iloc[i]) is not None:
                flags[i].append("price_invalid")
    images: list[Image.Image | None] = [None] * n
    if want_images:
        b64, paths = _column(frame, "image_b64"), _column(frame, "image_path")
        for i in range(n):
            if b64[i] is not None:
                decoded = decode_base64_image(b64[i])
            elif paths[i] is not None:
                decoded = decode_image(paths[i])
            else:
                flags[i].append("image_missing")
                continue
            if decoded.ok:
                images[i] = decoded.image
            else:
                flags[i].append(
                    "image_unreadable" if decoded.flag == "image_missing" else decoded.flag
                )
    return ScoringInputs(
        listing_ids=[v or "" for v in ids],
        titles=titles,
        descriptions=descriptions,
        images=images,
        frame=frame,
        flags=flags,
    )
