"""A content hash of a dataset, so a registered model can say exactly which data it saw.

The hash covers what a model can learn from: the contract columns of every row and the bytes
of every referenced image. It deliberately ignores what cannot change a model: row order, file
format (CSV "12.50" and Parquet 12.5 are the same price), extra columns and bookkeeping.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ipguard.data.coercion import coerce_price, coerce_text, coerce_timestamp
from ipguard.data.columns import MANIFEST_COLUMNS, SOURCE_FILE, SOURCE_ROW
from ipguard.data.errors import ManifestError, Problem
from ipguard.data.io import image_file

__all__ = ["dataset_fingerprint"]

_VERSION = b"ipguard-dataset-fingerprint/v1\n"
_ROWS_PER_CHUNK = 20_000
_READ_BYTES = 1 << 20
_MISSING = "-"


def dataset_fingerprint(df: pd.DataFrame, root: str | Path) -> str:
    """sha256 hex digest of the manifest rows (sorted by listing_id) and their images' bytes.

    Rows are serialised column by column in contract order with typed, canonical values, so
    the same data gives the same hash whatever its row order or file format; an absent
    optional column counts as all-missing. Each image is streamed from disk (``root`` is the
    folder relative paths resolve against) and enters the hash as its own sha256, in row order.
    A referenced image that does not exist raises :class:`ManifestError` naming the rows.
    """
    root = Path(root)
    encoded = _encoded_rows(df)
    ids = _canonical(df, "listing_id")
    order = (
        pd.DataFrame({"id": ids.to_numpy(dtype=object), "row": encoded})
        .sort_values(["id", "row"], kind="stable", na_position="last")
        .index.to_numpy()
    )
    digest = hashlib.sha256(_VERSION)
    digest.update(f"columns={','.join(MANIFEST_COLUMNS)}\nrows={len(df)}\n".encode())
    for start in range(0, len(order), _ROWS_PER_CHUNK):
        chunk = order[start : start + _ROWS_PER_CHUNK]
        digest.update("".join(encoded[i] + "\n" for i in chunk).encode("utf-8"))
    paths = _canonical(df, "image_path").to_numpy(dtype=object, na_value=None)[order]
    _hash_images(digest, paths, root, df, order)
    return digest.hexdigest()


def _canonical(df: pd.DataFrame, column: str) -> pd.Series:
    """One contract column as canonical text in ``str`` dtype (missing stays missing)."""
    n = len(df)
    if column not in df:
        return pd.Series([None] * n, dtype="str")
    values = df[column].reset_index(drop=True)
    if column == "price":
        number, bad = coerce_price(values)
        # + 0.0 folds -0.0 into 0.0: some writers (JSON) do not keep the sign of zero.
        text = (number + 0.0).map(repr, na_action="ignore").astype("str")
    elif column == "listed_at":
        stamp, bad = coerce_timestamp(values)
        # Microseconds since the epoch: exact, and much cheaper than formatting dates.
        micros = pd.Series(stamp.dt.as_unit("us").array.asi8, index=stamp.index)
        text = micros.astype("str").where(stamp.notna())
    else:
        return coerce_text(values)[0]
    if bad.any():
        # A value that does not parse still has to count, as the text it is.
        text = text.where(~bad, "raw:" + coerce_text(values)[0])
    return text


def _encoded_rows(df: pd.DataFrame) -> list[str]:
    """Each row as one unambiguous string: every value length-prefixed, missing as '-'."""
    if len(df) == 0:
        return []
    joined: pd.Series | None = None
    for column in MANIFEST_COLUMNS:
        text = _canonical(df, column)
        field = ("+" + text.str.len().astype("str") + ":" + text).fillna(_MISSING)
        joined = field if joined is None else joined + field
    assert joined is not None
    return joined.tolist()


def _hash_images(
    digest: hashlib._Hash, paths: np.ndarray, root: Path, df: pd.DataFrame, order: np.ndarray
) -> None:
    """Feed each referenced image's sha256 in row order; each file is read once, streamed."""
    seen: dict[str, bytes] = {}
    missing: list[int] = []
    for index, path in enumerate(paths):
        if path is None:
            digest.update(b"image:-\n")
            continue
        if path not in seen:
            try:
                seen[path] = _file_sha256(image_file(root, path))
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                seen[path] = b""
        if not seen[path]:
            missing.append(index)
            continue
        digest.update(b"image:" + seen[path] + b"\n")
    if missing:
        raise ManifestError(
            [_missing_image(df, int(order[i]), str(paths[i]), root) for i in missing]
        )


def _file_sha256(path: Path) -> bytes:
    if not os.path.isfile(path):
        raise FileNotFoundError(path)
    file_digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_READ_BYTES):
            file_digest.update(block)
    return file_digest.digest()


def _missing_image(df: pd.DataFrame, position: int, path: str, root: Path) -> Problem:
    file = str(df[SOURCE_FILE].iat[position]) if SOURCE_FILE in df else "<dataframe>"
    row = int(df[SOURCE_ROW].iat[position]) if SOURCE_ROW in df else position + 1
    return Problem(
        file,
        row,
        "image_path",
        path,
        f"image file {path!r} not found (looked for {image_file(root, path)}); "
        "cannot fingerprint without it",
    )
