"""Reading and writing listing manifests (CSV, Parquet, JSON lines; one file or many parts).

Reading is deliberately literal: CSV cells come back as strings (a listing id "007" must not
become 7, a title "NA" must not become missing), only empty cells are missing, and every row
carries where it came from (``_source_file``, ``_source_row``) so that validation can name the
exact file and row of each problem. Typing and checking happen in :mod:`ipguard.data.schema`.
"""

from __future__ import annotations

import csv
import glob
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from ipguard.data.schema import (
    BOOKKEEPING_COLUMNS,
    REQUIRED_COLUMNS,
    SOURCE_FILE,
    SOURCE_ROW,
    ManifestError,
    Problem,
)

__all__ = [
    "MANIFEST_SUFFIXES",
    "SOURCE_FILE",
    "SOURCE_ROW",
    "manifest_root",
    "read_manifest",
    "record_lines",
    "write_manifest",
    "write_table",
]

MANIFEST_SUFFIXES: dict[str, str] = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
_GLOB_CHARS = frozenset("*?[")
# Writers of partitioned datasets (Spark, pyarrow, Hive) leave markers such as _SUCCESS,
# _metadata or .crc files next to the parts; the same convention pyarrow uses skips them.
_HIDDEN_PREFIXES = ("_", ".")


def _is_glob(path: str) -> bool:
    return any(ch in _GLOB_CHARS for ch in path)


def manifest_root(path: str | Path) -> Path:
    """The folder that relative ``image_path`` values resolve against.

    A file's own folder; a dataset directory itself; for a glob, the deepest folder above the
    first wildcard.
    """
    text = str(path)
    if _is_glob(text):
        parts = Path(text).parts
        fixed = [p for p in _take_until_glob(parts)]
        base = Path(*fixed) if fixed else Path(".")
    elif Path(text).is_dir():
        base = Path(text)
    else:
        base = Path(text).parent
    return Path(os.path.abspath(base))


def _take_until_glob(parts: tuple[str, ...]) -> Iterator[str]:
    for part in parts:
        if _is_glob(part):
            return
        yield part


def _format_of(path: Path, where: str) -> str:
    fmt = MANIFEST_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise ManifestError(
            Problem(
                where,
                None,
                None,
                None,
                f"unknown manifest format {path.suffix or '(no suffix)'!r}; "
                f"expected one of {sorted(MANIFEST_SUFFIXES)}",
            )
        )
    return fmt


def _part_files(path: str | Path, root: Path) -> list[Path]:
    """The files that make up a manifest: one file, or the parts of a dataset folder or glob."""
    text = str(path)
    if _is_glob(text):
        files = sorted(Path(p) for p in glob.glob(text, recursive=True) if os.path.isfile(p))
        if not files:
            raise ManifestError(Problem(text, None, None, None, "no files match this pattern"))
        for file in files:
            _format_of(file, _relative(file, root))
        return files
    if Path(text).is_dir():
        return _dataset_parts(Path(text), root)
    if not Path(text).exists():
        raise ManifestError(Problem(text, None, None, None, "file not found"))
    _format_of(Path(text), Path(text).name)
    return [Path(text)]


def _dataset_parts(folder: Path, root: Path) -> list[Path]:
    parts: list[Path] = []
    strangers: list[Problem] = []
    for here, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(_HIDDEN_PREFIXES))
        for name in sorted(names):
            if name.startswith(_HIDDEN_PREFIXES):
                continue
            file = Path(here) / name
            if file.suffix.lower() in MANIFEST_SUFFIXES:
                parts.append(file)
            else:
                strangers.append(
                    Problem(
                        _relative(file, root),
                        None,
                        None,
                        None,
                        "unexpected file in a dataset folder; expected only manifest part files "
                        f"{sorted(MANIFEST_SUFFIXES)} (names starting with '_' or '.' are skipped)",
                    )
                )
    if strangers:
        raise ManifestError(strangers)
    if not parts:
        raise ManifestError(
            Problem(str(folder), None, None, None, "dataset folder holds no manifest part files")
        )
    formats = {MANIFEST_SUFFIXES[p.suffix.lower()] for p in parts}
    if len(formats) > 1:
        raise ManifestError(
            Problem(
                str(folder),
                None,
                None,
                None,
                f"dataset folder mixes formats {sorted(formats)}; expected parts of one format",
            )
        )
    return parts


def _relative(file: Path, root: Path) -> str:
    return Path(os.path.relpath(os.path.abspath(file), root)).as_posix()


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Read a manifest file, dataset folder or glob of parts into one DataFrame.

    Adds ``_source_file`` (path relative to :func:`manifest_root`) and ``_source_row`` (1-based
    data-row number within that file; blank lines are not rows). Hive-style partition folders
    (``market=US/part-0.parquet``) become columns unless the file already has that column.
    Raises :class:`ManifestError` naming the file for an unknown format, an unreadable file or
    a missing required header (``listing_id``, ``title``).
    """
    root = manifest_root(path)
    frames = []
    for file in _part_files(path, root):
        rel = _relative(file, root)
        frame = _READERS[_format_of(file, rel)](file, rel)
        _require_header(frame, rel)
        for key, value in _partition_values(rel).items():
            if key not in frame:
                frame[key] = pd.Series([value] * len(frame), dtype="str")
        frame[SOURCE_FILE] = pd.Series([rel] * len(frame), dtype="str")
        frame[SOURCE_ROW] = np.arange(1, len(frame) + 1, dtype=np.int64)
        frames.append(frame)
    if len(frames) == 1:
        return frames[0]
    return pd.concat(frames, ignore_index=True)


def _partition_values(rel: str) -> dict[str, str]:
    folders = Path(rel).parts[:-1]
    return dict(part.split("=", 1) for part in folders if "=" in part)


def _require_header(frame: pd.DataFrame, rel: str) -> None:
    columns = [str(c) for c in frame.columns if c not in BOOKKEEPING_COLUMNS]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise ManifestError(
            [
                Problem(rel, None, name, None, f"missing required column {name!r}; found {columns}")
                for name in missing
            ]
        )


def _unreadable(rel: str, what: str, err: Exception) -> ManifestError:
    return ManifestError(Problem(rel, None, None, None, f"cannot read as {what}: {err}"))


def _read_csv(file: Path, rel: str) -> pd.DataFrame:
    header = _csv_header(file, rel)
    try:
        frame = pd.read_csv(
            file,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            index_col=False,
            encoding="utf-8-sig",
            skip_blank_lines=True,
        )
    except pd.errors.ParserError as err:
        problems = _csv_shape_problems(file, rel, len(header))
        raise (ManifestError(problems) if problems else _unreadable(rel, "CSV", err)) from None
    except (OSError, ValueError) as err:
        raise _unreadable(rel, "CSV", err) from None
    frame.columns = header  # pandas renames duplicates ("title.1"); _csv_header rejects those
    return frame


def _csv_header(file: Path, rel: str) -> list[str]:
    try:
        with open(file, newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), None)
    except UnicodeDecodeError as err:
        raise ManifestError(
            Problem(rel, None, None, None, f"not UTF-8 text (byte {err.start}); expected UTF-8 CSV")
        ) from None
    except (OSError, csv.Error) as err:
        raise _unreadable(rel, "CSV", err) from None
    if not header:
        raise ManifestError(
            Problem(rel, None, None, None, "file is empty; expected a header row of column names")
        )
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise ManifestError(
            [
                Problem(rel, None, name, None, "column appears more than once in the header")
                for name in repeated
            ]
        )
    return header


def _csv_shape_problems(file: Path, rel: str, width: int) -> list[Problem]:
    """Every row with more fields than the header, so one pass fixes them all."""
    problems = []
    with open(file, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        row = 0
        start = reader.line_num + 1
        for fields in reader:
            if fields and not (len(fields) == 1 and not fields[0].strip()):
                row += 1
                if len(fields) > width:
                    problems.append(
                        Problem(
                            rel,
                            row,
                            None,
                            None,
                            f"{len(fields)} fields, expected at most {width} as in the header",
                            start,
                        )
                    )
            start = reader.line_num + 1
    return problems


def _read_parquet(file: Path, rel: str) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(file)
    except Exception as err:  # pyarrow raises several unrelated types for a corrupt file
        raise _unreadable(rel, "Parquet", err) from None
    if not isinstance(frame.index, pd.RangeIndex):
        # A frame saved with e.g. listing_id as its index: bring the column back.
        frame = frame.reset_index()
    return frame.reset_index(drop=True)


def _read_jsonl(file: Path, rel: str) -> pd.DataFrame:
    records: list[dict] = []
    problems: list[Problem] = []
    try:
        with open(file, encoding="utf-8-sig") as handle:
            for line_number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                row = len(records) + len(problems) + 1
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    problems.append(
                        Problem(rel, row, None, None, f"not valid JSON: {err.msg}", line_number)
                    )
                    continue
                if not isinstance(record, dict):
                    problems.append(
                        Problem(
                            rel,
                            row,
                            None,
                            None,
                            f"expected a JSON object, found {type(record).__name__}",
                            line_number,
                        )
                    )
                    continue
                records.append(record)
    except UnicodeDecodeError as err:
        raise ManifestError(
            Problem(rel, None, None, None, f"not UTF-8 text (byte {err.start}); expected UTF-8")
        ) from None
    except OSError as err:
        raise _unreadable(rel, "JSON lines", err) from None
    if problems:
        raise ManifestError(problems)
    if not records:
        return pd.DataFrame({name: pd.Series([], dtype="str") for name in REQUIRED_COLUMNS})
    return pd.DataFrame.from_records(records)


_READERS = {"csv": _read_csv, "parquet": _read_parquet, "jsonl": _read_jsonl}


def record_lines(file: str | Path) -> np.ndarray | None:
    """The physical line where each data row of a CSV or JSON-lines file starts.

    Used to put line numbers into messages, which differ from row numbers once a description
    spans lines or the file has blank lines. ``None`` when the file has no lines (Parquet) or
    cannot be re-read.
    """
    file = Path(file)
    fmt = MANIFEST_SUFFIXES.get(file.suffix.lower())
    try:
        if fmt == "csv":
            return _csv_record_lines(file)
        if fmt == "jsonl":
            with open(file, encoding="utf-8-sig") as handle:
                starts = [i for i, line in enumerate(handle, start=1) if line.strip()]
            return np.asarray(starts, dtype=np.int64)
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    return None


def _csv_record_lines(file: Path) -> np.ndarray:
    # pandas skips empty and whitespace-only lines; count rows the same way.
    starts: list[int] = []
    with open(file, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        start = reader.line_num + 1
        for fields in reader:
            if fields and not (len(fields) == 1 and not fields[0].strip()):
                starts.append(start)
            start = reader.line_num + 1
    return np.asarray(starts, dtype=np.int64)


def write_table(df: pd.DataFrame, path: str | Path, *, default_format: str | None = None) -> Path:
    """Write ``df`` as is, in the format its suffix names (or ``default_format`` if unknown)."""
    path = Path(path)
    fmt = MANIFEST_SUFFIXES.get(path.suffix.lower(), default_format)
    if fmt is None:
        raise ValueError(
            f"cannot tell the format of {str(path)!r} from its suffix; "
            f"expected one of {sorted(MANIFEST_SUFFIXES)}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        df.to_parquet(path, index=False)
    elif fmt == "jsonl":
        _write_jsonl(df, path)
    elif fmt == "csv":
        _with_iso_timestamps(df).to_csv(path, index=False)
    else:
        raise ValueError(
            f"unknown format {fmt!r}; expected one of {sorted(set(MANIFEST_SUFFIXES.values()))}"
        )
    return path


def _write_jsonl(df: pd.DataFrame, path: Path) -> None:
    """One JSON object per row, floats exact (pandas' to_json rounds to 10 digits), NA as null."""
    frame = _with_iso_timestamps(df)
    columns = [str(c) for c in frame.columns]
    values = frame.astype(object).where(frame.notna(), None).itertuples(index=False, name=None)
    with open(path, "w", encoding="utf-8") as handle:
        for row in values:
            record = dict(zip(columns, map(_json_value, row), strict=True))
            handle.write(json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n")


def _json_value(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _with_iso_timestamps(df: pd.DataFrame) -> pd.DataFrame:
    """Timestamps as unambiguous ISO 8601 text, so a written CSV reads back to the same instant."""
    stamped = [c for c in df.columns if isinstance(df[c].dtype, pd.DatetimeTZDtype)]
    if not stamped:
        return df
    out = df.copy()
    for column in stamped:
        out[column] = out[column].dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return out


def write_manifest(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a manifest in the format its suffix names, without the bookkeeping columns."""
    return write_table(df.drop(columns=[c for c in BOOKKEEPING_COLUMNS if c in df]), path)
