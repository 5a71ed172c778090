"""Reading and writing listing manifests (CSV, Parquet, JSON lines; one file or many parts).

Reading is deliberately literal: CSV cells come back as strings (a listing id "007" must not
become 7, a title "NA" must not become missing), only empty cells are missing, and every row
carries where it came from (``_source_file``, ``_source_row``) so that validation can name the
exact file and row of each problem. Typing and checking happen in :mod:`ipguard.data.schema`.

CSV comes in dialects: Excel in Brazil or Germany writes ``;`` because ``,`` is the decimal
mark, other tools write tabs or ``|``, and Windows tools add a byte-order mark or write cp1252.
So the separator is detected from the header and the first lines (:data:`CSV_SEPARATORS`), a
UTF-8 or UTF-16 byte-order mark is honoured, and a file that is not UTF-8 is reported with the
line and byte where decoding failed and the encoding it most likely is, instead of being read
as mojibake or failing on every row.
"""

from __future__ import annotations

import codecs
import csv
import glob
import io
import json
import os
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ipguard.data.columns import (
    BOOKKEEPING_COLUMNS,
    MANIFEST_COLUMNS,
    REQUIRED_COLUMNS,
    SOURCE_FILE,
    SOURCE_ROW,
)
from ipguard.data.errors import ManifestError, Problem, file_error, file_problem

__all__ = [
    "CSV_SEPARATORS",
    "MANIFEST_SUFFIXES",
    "SOURCE_FILE",
    "SOURCE_ROW",
    "CsvFormat",
    "csv_format",
    "image_file",
    "image_files",
    "manifest_files",
    "manifest_root",
    "partition_values",
    "read_csv_table",
    "read_manifest",
    "read_table",
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

CSV_SEPARATORS: tuple[str, ...] = (",", ";", "\t", "|")
"""Field separators a CSV may use, detected per file; on a tie the earlier one wins."""
_SEPARATOR_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
# Enough of the file to see the header and a few dozen rows; the separator is decided there.
_SNIFF_BYTES = 64 * 1024
_SNIFF_RECORDS = 50


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


def image_file(root: str | Path, image_path: str) -> Path:
    """The file a manifest's ``image_path`` names: relative paths resolve against ``root``
    (the manifest folder, :func:`manifest_root`); an absolute one is kept as it is."""
    return Path(root) / str(image_path)


def image_files(image_paths: Iterable[object], root: str | Path) -> list[Path | None]:
    """:func:`image_file` for a column of image paths; ``None`` where a row has none."""
    return [None if _is_blank(path) else image_file(root, str(path)) for path in image_paths]


def _is_blank(value: object) -> bool:
    if value is None or (not isinstance(value, str) and bool(pd.isna(value))):
        return True
    return not str(value).strip()


def _take_until_glob(parts: tuple[str, ...]) -> Iterator[str]:
    for part in parts:
        if _is_glob(part):
            return
        yield part


def _format_of(path: Path, where: str) -> str:
    fmt = MANIFEST_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise file_error(
            where,
            f"unknown manifest format {path.suffix or '(no suffix)'!r}; "
            f"expected one of {sorted(MANIFEST_SUFFIXES)}",
        )
    return fmt


def _part_files(path: str | Path, root: Path) -> list[Path]:
    """The files that make up a manifest: one file, or the parts of a dataset folder or glob."""
    text = str(path)
    if _is_glob(text):
        files = sorted(Path(p) for p in glob.glob(text, recursive=True) if os.path.isfile(p))
        if not files:
            raise file_error(text, "no files match this pattern")
        for file in files:
            _format_of(file, _relative(file, root))
        return files
    if Path(text).is_dir():
        return _dataset_parts(Path(text), root)
    if not Path(text).exists():
        raise file_error(text, "file not found")
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
                    file_problem(
                        _relative(file, root),
                        "unexpected file in a dataset folder; expected only manifest part files "
                        f"{sorted(MANIFEST_SUFFIXES)} (names starting with '_' or '.' are skipped)",
                    )
                )
    if strangers:
        raise ManifestError(strangers)
    if not parts:
        raise file_error(str(folder), "dataset folder holds no manifest part files")
    formats = {MANIFEST_SUFFIXES[p.suffix.lower()] for p in parts}
    if len(formats) > 1:
        raise file_error(
            str(folder),
            f"dataset folder mixes formats {sorted(formats)}; expected parts of one format",
        )
    return parts


def _relative(file: Path, root: Path) -> str:
    return Path(os.path.relpath(os.path.abspath(file), root)).as_posix()


def manifest_files(path: str | Path) -> list[tuple[Path, str]]:
    """The files :func:`read_manifest` reads for ``path``, in reading order, each with its name
    relative to :func:`manifest_root`, for readers that stream a manifest instead (same
    errors for an unknown format, a stray file in a dataset folder or a folder of no parts)."""
    root = manifest_root(path)
    return [(file, _relative(file, root)) for file in _part_files(path, root)]


def partition_values(rel: str) -> dict[str, str]:
    """Hive-style partition folders of a part's relative name (``market=US/part-0.parquet``
    gives ``{"market": "US"}``), which :func:`read_manifest` adds as columns."""
    return _partition_values(rel)


def read_manifest(path: str | Path, *, encoding: str | None = None) -> pd.DataFrame:
    """Read a manifest file, dataset folder or glob of parts into one DataFrame.

    Adds ``_source_file`` (path relative to :func:`manifest_root`) and ``_source_row`` (1-based
    data-row number within that file; blank lines are not rows). Hive-style partition folders
    (``market=US/part-0.parquet``) become columns unless the file already has that column.
    Raises :class:`ManifestError` naming the file for an unknown format, an unreadable file or
    a missing required header (``listing_id``, ``title``).

    ``encoding`` is the text encoding of CSV and JSON-lines files; ``None`` means UTF-8 (with
    or without a byte-order mark) or, for a CSV that starts with a UTF-16 byte-order mark,
    UTF-16. CSV separators are detected per file (:func:`csv_format`).
    """
    root = manifest_root(path)
    frames = []
    for file in _part_files(path, root):
        rel = _relative(file, root)
        frame = _READERS[_format_of(file, rel)](file, rel, encoding)
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


def read_table(
    path: str | Path, *, known_columns: Collection[str], encoding: str | None = None
) -> pd.DataFrame:
    """Read one manifest-like file of another contract (a video manifest, say) as literally as
    :func:`read_manifest` reads a listing manifest, with ``_source_file`` and ``_source_row``.

    ``known_columns`` are that contract's header names (CSV separators are detected by them);
    checking its required columns is the caller's job. Raises :class:`ManifestError` naming the
    file for an unknown format or an unreadable file.
    """
    file = Path(path)
    root = manifest_root(path)
    if not file.is_file():
        raise file_error(str(path), "file not found")
    rel = _relative(file, root)
    fmt = _format_of(file, rel)
    if fmt == "csv":
        frame = _read_csv_as(
            file, rel, csv_format(file, encoding=encoding, known_columns=known_columns, rel=rel)
        )
    else:
        frame = _READERS[fmt](file, rel, encoding)
        if fmt == "jsonl" and frame.empty:
            frame = pd.DataFrame()  # no records: no columns either
    frame[SOURCE_FILE] = pd.Series([rel] * len(frame), dtype="str")
    frame[SOURCE_ROW] = np.arange(1, len(frame) + 1, dtype=np.int64)
    return frame


def _partition_values(rel: str) -> dict[str, str]:
    folders = Path(rel).parts[:-1]
    return dict(part.split("=", 1) for part in folders if "=" in part)


def _require_header(frame: pd.DataFrame, rel: str) -> None:
    columns = [str(c) for c in frame.columns if c not in BOOKKEEPING_COLUMNS]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise ManifestError(
            [
                file_problem(rel, f"missing required column {name!r}; found {columns}", column=name)
                for name in missing
            ]
        )


def _unreadable(rel: str, what: str, err: Exception) -> ManifestError:
    return file_error(rel, f"cannot read as {what}: {err}")


@dataclass(frozen=True)
class CsvFormat:
    """How one CSV file is written: its text encoding and its field separator."""

    encoding: str
    """As given to :func:`open`; ``utf-8-sig`` reads UTF-8 with or without a byte-order mark."""
    separator: str
    """One of :data:`CSV_SEPARATORS`."""
    detected: bool
    """Whether the header (and first lines) showed the separator, or it is the default ``,``."""

    def describe(self) -> str:
        how = "detected from the header" if self.detected else "the default"
        return f"{_SEPARATOR_NAMES[self.separator]}-separated ({self.separator!r}, {how})"


def csv_format(
    file: str | Path,
    *,
    encoding: str | None = None,
    known_columns: Collection[str] = MANIFEST_COLUMNS,
    rel: str | None = None,
) -> CsvFormat:
    """The encoding and separator of a CSV file, from its first bytes.

    The separator is the candidate of :data:`CSV_SEPARATORS` under which the header names the
    most ``known_columns``; where that does not decide (a header of unknown names), the one
    under which the first lines have as many fields as the header, then the widest header.
    Raises :class:`ManifestError` (naming ``rel``, the line and the byte) when the start of the
    file is not text in ``encoding``.
    """
    file = Path(file)
    rel = rel or file.name
    try:
        with open(file, "rb") as handle:
            head = handle.read(_SNIFF_BYTES)
            at_end = not handle.read(1)
    except OSError as err:
        raise _unreadable(rel, "CSV", err) from None
    chosen = _encoding_for(head, encoding, rel)
    decoder = codecs.getincrementaldecoder(chosen)()
    try:
        sample = decoder.decode(head, final=at_end)
    except UnicodeDecodeError:
        raise _encoding_error(file, rel, chosen) from None
    separator, detected = _sniff_separator(sample, at_end, set(known_columns))
    found = CsvFormat(chosen, separator, detected)
    _refuse_mixed_separators(sample, at_end, found, rel)
    return found


def _refuse_mixed_separators(sample: str, complete: bool, fmt: CsvFormat, rel: str) -> None:
    """A header in one dialect over rows in another (pasted together from two tools) would
    read as rows of one field each, every other column missing; say so once, up front."""
    records = _sample_records(sample, fmt.separator, complete)
    header, rows = (records[0], records[1:]) if records else ([], [])
    if len(header) < 2 or not rows or any(len(r) != 1 for r in rows):
        return
    for other in CSV_SEPARATORS:
        widths = {len(r) for r in _sample_records(sample, other, complete)[1:]}
        if other != fmt.separator and len(widths) == 1 and widths != {1}:
            raise file_error(
                rel,
                f"the header is {fmt.describe()} with {len(header)} fields, but the rows "
                f"below it have one field each and look {_SEPARATOR_NAMES[other]}-separated "
                f"({other!r}, {widths.pop()} fields); use one separator throughout",
                line=2,
            )


def _encoding_for(head: bytes, encoding: str | None, rel: str) -> str:
    if encoding is None:
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        return "utf-8-sig"
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise file_error(
            rel,
            f"unknown encoding {encoding!r}; expected a Python codec name such as 'utf-8', "
            "'cp1252' or 'latin-1'",
        ) from None
    return "utf-8-sig" if name == "utf-8" else name  # a BOM is never part of the first name


def _sniff_separator(sample: str, complete: bool, known: set[str]) -> tuple[str, bool]:
    best: tuple[int, int, int] = (0, 0, 1)
    chosen = ","
    for separator in CSV_SEPARATORS:
        records = _sample_records(sample, separator, complete)
        if not records:
            continue
        header = [name.strip() for name in records[0]]
        rows = records[1:]
        score = (
            sum(name in known for name in header),
            sum(len(row) == len(header) for row in rows),
            len(header),
        )
        if len(header) > 1 and score > best:
            best, chosen = score, separator
    return chosen, best[2] > 1


def _sample_records(sample: str, separator: str, complete: bool) -> list[list[str]]:
    try:
        records = [
            r
            for r in csv.reader(io.StringIO(sample, newline=""), delimiter=separator)
            if r and not (len(r) == 1 and not r[0].strip())
        ][: _SNIFF_RECORDS + 1]
    except csv.Error:
        return []
    if not complete and len(records) > 1:
        records = records[:-1]  # the sample may end in the middle of a record
    return records


def _encoding_error(file: Path, rel: str, encoding: str) -> ManifestError:
    """Where a file stops being text in ``encoding``, and which encoding it probably is."""
    try:
        data = file.read_bytes()
    except OSError as err:
        return _unreadable(rel, "text", err)
    base = 0
    codec = encoding
    if encoding == "utf-8-sig":
        codec = "utf-8"
        if data.startswith(codecs.BOM_UTF8):
            base = len(codecs.BOM_UTF8)
    try:
        data[base:].decode(codec)
    except UnicodeDecodeError as err:
        start, end = base + err.start, base + err.end
    else:  # the file changed since it failed to decode; say what we know
        return file_error(rel, f"not {_codec_name(codec)} text")
    line = data.count(b"\n", 0, start) + 1
    bad = data[start : min(end, start + 4)]
    shown = " ".join(f"0x{b:02x}" for b in bad)
    reason = f"not {_codec_name(codec)} text: byte {start} ({shown}) cannot be decoded"
    if codec == "utf-8":
        guess = "cp1252" if _decodes(data, "cp1252") else "latin-1"
        reason += (
            f"; it reads as {bad.decode(guess, errors='replace')!r} in {guess}, so the file is "
            f"probably {guess} (Windows/Latin-1 Western European): save it as UTF-8, or read it "
            f"with encoding={guess!r} (ipguard-validate --encoding {guess}, "
            f"data.encoding={guess})"
        )
    else:
        reason += f"; expected {codec} text as the encoding option says"
    return file_error(rel, reason, line=line)


def _codec_name(codec: str) -> str:
    return "UTF-8" if codec == "utf-8" else codec


def _decodes(data: bytes, codec: str) -> bool:
    try:
        data.decode(codec)
    except UnicodeDecodeError:
        return False
    return True


def _read_csv(file: Path, rel: str, encoding: str | None = None) -> pd.DataFrame:
    fmt = csv_format(file, encoding=encoding, rel=rel)
    return _read_csv_as(file, rel, fmt)


def _read_csv_as(file: Path, rel: str, fmt: CsvFormat) -> pd.DataFrame:
    header = _csv_header(file, rel, fmt)
    try:
        frame = pd.read_csv(
            file,
            sep=fmt.separator,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            index_col=False,
            encoding=fmt.encoding,
            skip_blank_lines=True,
        )
    except UnicodeDecodeError:
        raise _encoding_error(file, rel, fmt.encoding) from None
    except pd.errors.ParserError as err:
        try:
            problems = _csv_shape_problems(file, rel, len(header), fmt)
        except UnicodeDecodeError:
            raise _encoding_error(file, rel, fmt.encoding) from None
        raise (ManifestError(problems) if problems else _unreadable(rel, "CSV", err)) from None
    except (OSError, ValueError) as err:
        raise _unreadable(rel, "CSV", err) from None
    frame.columns = header  # pandas renames duplicates ("title.1"); _csv_header rejects those
    return frame


def read_csv_table(
    path: str | Path,
    *,
    known_columns: Collection[str],
    encoding: str | None = None,
    source: str | None = None,
) -> pd.DataFrame:
    """Read any CSV table (a brand catalog, say) as literally as a manifest: text cells, only
    empty cells missing, the separator detected with ``known_columns`` as the expected header
    names. Problems are raised as :class:`ManifestError` naming ``source`` (default: the path).
    """
    file = Path(path)
    rel = source or str(path)
    fmt = csv_format(file, encoding=encoding, known_columns=known_columns, rel=rel)
    return _read_csv_as(file, rel, fmt)


def _csv_header(file: Path, rel: str, fmt: CsvFormat) -> list[str]:
    try:
        with open(file, newline="", encoding=fmt.encoding) as handle:
            header = next(csv.reader(handle, delimiter=fmt.separator), None)
    except UnicodeDecodeError:
        raise _encoding_error(file, rel, fmt.encoding) from None
    except (OSError, csv.Error) as err:
        raise _unreadable(rel, "CSV", err) from None
    if not header:
        raise file_error(rel, "file is empty; expected a header row of column names")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise ManifestError(
            [
                file_problem(rel, "column appears more than once in the header", column=name)
                for name in repeated
            ]
        )
    return header


def _csv_shape_problems(file: Path, rel: str, width: int, fmt: CsvFormat) -> list[Problem]:
    """Every row with more fields than the header, so one pass fixes them all."""
    problems = []
    hint = _shape_hint(file, fmt)
    with open(file, newline="", encoding=fmt.encoding) as handle:
        reader = csv.reader(handle, delimiter=fmt.separator)
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
                            f"{len(fields)} fields, expected at most {width} as in the header; "
                            + hint,
                            start,
                        )
                    )
            start = reader.line_num + 1
    return problems


def _shape_hint(file: Path, fmt: CsvFormat) -> str:
    """What to do about rows wider than the header: which separator the rows seem to use."""
    read_as = f"read as {fmt.describe()}"
    with open(file, newline="", encoding=fmt.encoding) as handle:
        sample = handle.read(_SNIFF_BYTES)
    complete = len(sample) < _SNIFF_BYTES
    for other in CSV_SEPARATORS:
        if other == fmt.separator:
            continue
        rows = _sample_records(sample, other, complete)[1:]
        widths = {len(r) for r in rows}
        if len(rows) >= 1 and len(widths) == 1 and widths != {1}:
            return (
                f"{read_as}, but the data rows look {_SEPARATOR_NAMES[other]}-separated "
                f"({other!r}); use one separator for the header and the rows"
            )
    return (
        f"{read_as}; a value that contains {fmt.separator!r} must be in double quotes, "
        f"or the file uses another separator than its header"
    )


def _read_parquet(file: Path, rel: str, encoding: str | None = None) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(file)
    except Exception as err:  # pyarrow raises several unrelated types for a corrupt file
        raise _unreadable(rel, "Parquet", err) from None
    if not isinstance(frame.index, pd.RangeIndex):
        # A frame saved with e.g. listing_id as its index: bring the column back.
        frame = frame.reset_index()
    return frame.reset_index(drop=True)


def _read_jsonl(file: Path, rel: str, encoding: str | None = None) -> pd.DataFrame:
    records: list[dict] = []
    problems: list[Problem] = []
    codec = _encoding_for(b"", encoding or "utf-8", rel)
    try:
        with open(file, encoding=codec) as handle:
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
    except UnicodeDecodeError:
        raise _encoding_error(file, rel, codec) from None
    except OSError as err:
        raise _unreadable(rel, "JSON lines", err) from None
    if problems:
        raise ManifestError(problems)
    if not records:
        return pd.DataFrame({name: pd.Series([], dtype="str") for name in REQUIRED_COLUMNS})
    return pd.DataFrame.from_records(records)


_READERS = {"csv": _read_csv, "parquet": _read_parquet, "jsonl": _read_jsonl}


def record_lines(file: str | Path, *, encoding: str | None = None) -> np.ndarray | None:
    """The physical line where each data row of a CSV or JSON-lines file starts.

    Used to put line numbers into messages, which differ from row numbers once a description
    spans lines or the file has blank lines. ``None`` when the file has no lines (Parquet) or
    cannot be re-read. ``encoding`` as for :func:`read_manifest`.
    """
    file = Path(file)
    fmt = MANIFEST_SUFFIXES.get(file.suffix.lower())
    try:
        if fmt == "csv":
            return _csv_record_lines(file, csv_format(file, encoding=encoding))
        if fmt == "jsonl":
            codec = _encoding_for(b"", encoding or "utf-8", file.name)
            with open(file, encoding=codec) as handle:
                starts = [i for i, line in enumerate(handle, start=1) if line.strip()]
            return np.asarray(starts, dtype=np.int64)
    except (OSError, UnicodeDecodeError, csv.Error, ManifestError):
        return None
    return None


def _csv_record_lines(file: Path, fmt: CsvFormat) -> np.ndarray:
    # pandas skips empty and whitespace-only lines; count rows the same way.
    starts: list[int] = []
    with open(file, newline="", encoding=fmt.encoding) as handle:
        reader = csv.reader(handle, delimiter=fmt.separator)
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
