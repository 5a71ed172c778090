"""A listing manifest read as a stream of equal chunks, for scoring millions of rows.

:func:`ipguard.data.io.read_manifest` reads a whole manifest into one frame, which training
needs and a catalogue rescan cannot afford. This reader walks the same files in the same order
(one CSV, Parquet or JSON-lines file, or a folder or glob of part files; hidden and ``_`` names
skipped, Hive partition folders as columns), reads only the columns a model reads, and yields
chunks of exactly ``chunk_size`` rows across file boundaries (the last one shorter), so chunk
``k`` always holds rows ``k * chunk_size ...`` of the whole input. That is what lets a resumed
run skip the parts it already wrote.

CSV is read as the manifest reader reads it: separator and byte-order mark detected
(:func:`ipguard.data.io.csv_format`), every cell text, only empty cells missing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ipguard.data.columns import SOURCE_FILE, SOURCE_ROW
from ipguard.data.errors import ManifestError, file_error
from ipguard.data.io import (
    MANIFEST_SUFFIXES,
    csv_format,
    manifest_files,
    manifest_root,
    partition_values,
)
from ipguard.serving.batch import request_columns

__all__ = ["Chunk", "InputFile", "ManifestStream"]

_READ_BYTES = 1 << 20


@dataclass(frozen=True)
class InputFile:
    path: Path
    rel: str
    """Its name relative to the manifest's folder, as ``_source_file`` gives it."""
    format: str
    """``csv``, ``parquet`` or ``jsonl``."""
    rows: int | None
    """Known without reading it for Parquet (its footer); None for text formats."""


@dataclass(frozen=True)
class Chunk:
    index: int
    first_row: int
    """0-based position of its first row in the whole input."""
    frame: pd.DataFrame
    """The model's input columns present, the ``keep`` columns, ``_source_file`` and
    ``_source_row`` (1-based within that file, as the manifest reader numbers rows)."""


class ManifestStream:
    """The rows of the manifest at ``path`` in chunks of ``chunk_size`` (see the module
    docstring). Raises :class:`~ipguard.data.errors.ManifestError` naming the file for an
    unknown format, an unreadable file, or a file without a ``listing_id`` column (without ids
    nobody could tell which decision is whose)."""

    def __init__(
        self,
        path: str | Path,
        *,
        chunk_size: int,
        keep: Sequence[str] = (),
        encoding: str | None = None,
    ) -> None:
        if int(chunk_size) < 1:
            raise ValueError(f"chunk_size: expected an int >= 1, found {chunk_size!r}")
        self.path = Path(path)
        self.root = manifest_root(path)
        self.chunk_size = int(chunk_size)
        self.keep = tuple(keep)
        self.encoding = encoding
        self.files = [
            InputFile(file, rel, fmt, _parquet_rows(file, rel) if fmt == "parquet" else None)
            for file, rel in manifest_files(path)
            for fmt in (MANIFEST_SUFFIXES[file.suffix.lower()],)
        ]

    @property
    def total_rows(self) -> int | None:
        """Rows in the whole input where every file's footer says (Parquet), else None."""
        counts = [f.rows for f in self.files]
        return None if any(c is None for c in counts) else int(sum(counts))  # type: ignore[arg-type]

    def keep_types(self) -> dict[str, pa.DataType]:
        """The Arrow type of each ``keep`` column: a Parquet input's own, text otherwise."""
        first = self.files[0]
        schema = pq.read_schema(first.path) if first.format == "parquet" else None
        types = {}
        for name in self.keep:
            if schema is not None and name in schema.names:
                types[name] = schema.field(name).type
            else:
                types[name] = pa.string()
        return types

    def fingerprint(self) -> str:
        """A hash of every input file's name, size and bytes: a resumed run refuses to add
        parts to an output that was scored from other data."""
        digest = hashlib.sha256(b"ipguard-score-input/v1\n")
        for file in self.files:
            digest.update(f"{file.rel}\0{file.path.stat().st_size}\0".encode())
            with open(file.path, "rb") as handle:
                while block := handle.read(_READ_BYTES):
                    digest.update(block)
        return digest.hexdigest()

    def __iter__(self) -> Iterator[Chunk]:
        buffered: list[pd.DataFrame] = []
        rows = 0
        index = 0
        for piece in self._pieces():
            buffered.append(piece)
            rows += len(piece)
            while rows >= self.chunk_size:
                joined = pd.concat(buffered, ignore_index=True)
                yield Chunk(index, index * self.chunk_size, joined.iloc[: self.chunk_size])
                rest = joined.iloc[self.chunk_size :].reset_index(drop=True)
                buffered, rows, index = [rest], len(rest), index + 1
        if rows:
            yield Chunk(index, index * self.chunk_size, pd.concat(buffered, ignore_index=True))

    # --- one file at a time -----------------------------------------------------------------

    def _pieces(self) -> Iterator[pd.DataFrame]:
        for file in self.files:
            start = 1
            for frame in _READERS[file.format](self, file):
                frame = frame.reset_index(drop=True)
                for key, value in partition_values(file.rel).items():
                    if key not in frame:
                        frame[key] = value
                frame[SOURCE_FILE] = file.rel
                frame[SOURCE_ROW] = np.arange(start, start + len(frame), dtype=np.int64)
                start += len(frame)
                yield frame

    def _wanted(self, names: Sequence[str], file: InputFile) -> list[str]:
        """The columns to read from a file whose header is ``names``."""
        partitions = partition_values(file.rel)
        if "listing_id" not in names and "listing_id" not in partitions:
            raise file_error(
                file.rel,
                f"missing required column 'listing_id'; found {list(names)[:20]}",
            )
        missing = [c for c in self.keep if c not in names and c not in partitions]
        if missing:
            raise file_error(file.rel, f"keep: columns {missing} are not in this file")
        wanted = request_columns(names)
        return wanted + [c for c in self.keep if c in names and c not in wanted]

    def _parquet(self, file: InputFile) -> Iterator[pd.DataFrame]:
        try:
            handle = pq.ParquetFile(file.path)
            columns = self._wanted(handle.schema_arrow.names, file)
            for batch in handle.iter_batches(batch_size=self.chunk_size, columns=columns):
                # pandas metadata would turn a saved index back into the index: keep columns
                yield batch.to_pandas(ignore_metadata=True)
        except (OSError, pa.ArrowException) as err:
            raise file_error(file.rel, f"cannot read as Parquet: {err}") from None

    def _csv(self, file: InputFile) -> Iterator[pd.DataFrame]:
        fmt = csv_format(file.path, encoding=self.encoding, rel=file.rel)
        options = {"sep": fmt.separator, "encoding": fmt.encoding, "index_col": False}
        try:
            header = list(pd.read_csv(file.path, nrows=0, dtype=str, **options).columns)
            reader = pd.read_csv(
                file.path,
                usecols=self._wanted(header, file),
                dtype=str,
                keep_default_na=False,
                na_values=[""],
                skip_blank_lines=True,
                chunksize=self.chunk_size,
                **options,
            )
            with reader:
                yield from reader
        except (pd.errors.ParserError, UnicodeDecodeError, OSError) as err:
            raise file_error(file.rel, f"cannot read as {fmt.describe()} CSV: {err}") from None

    def _jsonl(self, file: InputFile) -> Iterator[pd.DataFrame]:
        try:
            reader = pd.read_json(
                file.path,
                lines=True,
                chunksize=self.chunk_size,
                dtype=False,
                convert_dates=False,
                encoding=self.encoding or "utf-8",
            )
            with reader:
                for frame in reader:
                    yield frame[self._wanted(list(frame.columns), file)]
        except ManifestError:
            raise
        except (ValueError, OSError) as err:
            raise file_error(file.rel, f"cannot read as JSON lines: {err}") from None


_READERS = {
    "parquet": ManifestStream._parquet,
    "csv": ManifestStream._csv,
    "jsonl": ManifestStream._jsonl,
}


def _parquet_rows(file: Path, rel: str) -> int:
    try:
        return int(pq.ParquetFile(file).metadata.num_rows)
    except (OSError, pa.ArrowException) as err:
        raise file_error(rel, f"cannot read as Parquet: {err}") from None
