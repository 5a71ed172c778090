"""The video-manifest contract as code: short videos and recorded livestream segments.

A video manifest follows the listing manifest's rules (:mod:`ipguard.data.schema`) so a team
learns them once: CSV (any of the detected separators, with or without a byte-order mark),
Parquet or JSON lines; paths relative to the manifest's folder that may not escape it; a
team's own label values mapped onto ``genuine`` / ``infringing``; and exactly two outcomes
per row: typed and valid, or reported with file, row, column and reason (raised together, or
set aside with ``on_error="quarantine"``), so that ``rows_in == rows_valid + rows_rejected``.

What is new for video: ``infringement_spans`` (where in the video the infringement is
visible, ``"3.5-8.0;12-14.2"`` in seconds or JSON ``[[3.5, 8.0]]``; what frame-level training
and the time-to-decision measurement learn from) is parsed into a list of ``(start, end)``
pairs and checked against the video's duration; ``listing_ids`` (the listings a video
promotes) into a list; and each video file is probed (:func:`ipguard.data.video_probe.probe_video`)
so a missing, unreadable, truncated or audio-only file is flagged, never a crash: its row is
kept and flagged (``unusable_videos="keep"``: the transcript can still be screened) or set
aside (``"reject"``), as ``unusable_images`` does for listing photos.

The contract's names live in :mod:`ipguard.data.video_columns` (pandera-free, for the
screening service); they are re-exported here.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from ipguard.data import io
from ipguard.data.coercion import coerce_text, coerce_timestamp
from ipguard.data.columns import BOOKKEEPING_COLUMNS, LABELS, REJECT_REASON, SOURCE_FILE
from ipguard.data.errors import ManifestError, Problem, file_problem
from ipguard.data.pandera_import import pa
from ipguard.data.schema import (
    ISO_639_1_LANGUAGES,
    ISO_3166_MARKETS,
    _allowed_reason,
    _check_columns,
    _duplicate_problems,
    _frame_source,
    _label_reason,
    _line_finder,
    _path_escapes,
    _problem_list,
    _provenance,
    _RowProblems,
    _schema_problems,
    _shown,
    _text_column,
    label_mapping,
    split_rows,
)
from ipguard.data.video_columns import (
    PROBE_COLUMNS,
    REQUIRED_VIDEO_COLUMNS,
    SPAN_SEPARATOR,
    VIDEO_COLUMNS,
    VIDEO_KINDS,
    VIDEO_REQUEST_COLUMNS,
)
from ipguard.data.video_probe import VIDEO_FLAGS, VideoProbe, probe_video, probe_videos

__all__ = [
    "PROBE_COLUMNS",
    "REQUIRED_VIDEO_COLUMNS",
    "UNUSABLE_VIDEO_ACTIONS",
    "VIDEO_COLUMNS",
    "VIDEO_FLAGS",
    "VIDEO_KINDS",
    "VIDEO_REQUEST_COLUMNS",
    "Span",
    "VideoManifest",
    "VideoProbe",
    "format_spans",
    "load_video_manifest",
    "parse_listing_ids",
    "parse_spans",
    "probe_video",
    "validate_video_manifest",
]

logger = logging.getLogger(__name__)

UNUSABLE_VIDEO_ACTIONS = ("keep", "reject")
"""What validation does with a row whose video file cannot be used (``unusable_videos``)."""
UnusableVideos = Literal["keep", "reject"]
Span = tuple[float, float]
"""``(start, end)`` in seconds from the start of the video, ``0 <= start < end``."""

_SPAN_TEXT = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+))\s*[-–]\s*([+-]?(?:\d+\.?\d*|\.\d+))\s*$")
_SPAN_EXAMPLE = "expected spans in seconds such as '3.5-8.0;12-14.2' or JSON [[3.5, 8.0]]"
_NESTED = (list, tuple, np.ndarray)


@dataclass
class VideoManifest:
    """Typed valid rows, rejected rows with their reasons, and the counts that must add up.

    ``valid`` holds the contract's columns typed (text as ``str``, ``recorded_at`` as UTC
    timestamps, ``infringement_spans`` as a list of :data:`Span` per row or ``None`` where not
    given, ``listing_ids`` as a list of ids or ``None``), the probe's :data:`PROBE_COLUMNS`,
    any extra columns as read, and ``_source_file`` / ``_source_row``. ``rejected`` holds the
    rejected rows as written plus ``reject_reason`` (every reason, one row each), the same
    column listing rejects have. ``root`` is the folder ``video_path`` values resolve against
    (:meth:`video_file`). ``videos_unusable`` counts flagged files per flag whatever else is
    wrong with the row; with ``unusable_videos="reject"`` these rows are among the rejected.
    """

    valid: pd.DataFrame
    rejected: pd.DataFrame
    root: Path
    rows_in: int
    rows_valid: int
    rows_rejected: int
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    videos_checked: int = 0
    videos_unusable: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.rows_in != self.rows_valid + self.rows_rejected:
            raise ValueError(
                f"row accounting broken: rows_in={self.rows_in} != rows_valid={self.rows_valid}"
                f" + rows_rejected={self.rows_rejected}"
            )

    @property
    def videos_unusable_total(self) -> int:
        return sum(self.videos_unusable.values())

    def video_file(self, video_path: str) -> Path:
        """The file a row's ``video_path`` names."""
        return io.image_file(self.root, video_path)

    def summary(self) -> str:
        """The one line scripts parse; ``videos_unusable=N`` joins it when N > 0."""
        line = (
            f"rows_in={self.rows_in} rows_valid={self.rows_valid} "
            f"rows_rejected={self.rows_rejected}"
        )
        if self.videos_unusable_total:
            line += f" videos_unusable={self.videos_unusable_total}"
        return line


# --- cells that hold more than one value ---------------------------------------------------------


def parse_spans(value: object) -> list[Span]:
    """One ``infringement_spans`` cell as ``(start, end)`` pairs in seconds, sorted by start.

    Accepts the text form ``"3.5-8.0;12-14.2"`` (``;`` between spans), a JSON list of pairs
    (``"[[3.5, 8.0]]"``) and the same as a list (Parquet, JSON lines). ``""`` / ``"[]"`` is an
    empty list: no span visible. Raises ``ValueError`` saying what is wrong: not a number, a
    negative start, an end not after its start. Overlapping spans are kept as written.
    """
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return _span_pairs(_json_list(value, _SPAN_EXAMPLE), value)
        spans = []
        for part in text.split(SPAN_SEPARATOR) if text else []:
            if not part.strip():
                raise ValueError(f"{_shown(value)} has an empty span; {_SPAN_EXAMPLE}")
            match = _SPAN_TEXT.match(part)
            if match is None:
                raise ValueError(f"span {_shown(part.strip())} is not START-END; {_SPAN_EXAMPLE}")
            spans.append(_checked_span(float(match[1]), float(match[2]), part.strip()))
        return sorted(spans)
    if isinstance(value, _NESTED):
        return _span_pairs(value, value)
    raise ValueError(f"expected text or a list of [start, end] pairs, found {type(value).__name__}")


def _json_list(cell: str, expected: str) -> object:
    """A cell written as JSON (it starts with ``[``), or a ValueError saying what is expected."""
    try:
        return json.loads(cell.strip())
    except json.JSONDecodeError as err:
        raise ValueError(f"{_shown(cell)} is not valid JSON ({err.msg}); {expected}") from None


def _span_pairs(loaded: object, shown: object) -> list[Span]:
    if not isinstance(loaded, _NESTED):
        raise ValueError(f"{_shown(shown)} is not a list of [start, end] pairs; {_SPAN_EXAMPLE}")
    spans = []
    for pair in loaded:
        if not isinstance(pair, _NESTED) or len(pair) != 2:
            raise ValueError(f"{_shown(str(pair))} is not a [start, end] pair; {_SPAN_EXAMPLE}")
        start, end = (_number(x, pair) for x in pair)
        spans.append(_checked_span(start, end, f"{start:g}-{end:g}"))
    return sorted(spans)


def _number(value: object, pair: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{_shown(str(pair))}: {value!r} is not a number of seconds")
    return float(value)


def _checked_span(start: float, end: float, shown: str) -> Span:
    if not (math.isfinite(start) and math.isfinite(end)):
        raise ValueError(f"span {shown!r} is not finite; {_SPAN_EXAMPLE}")
    if start < 0:
        raise ValueError(f"span {shown!r} starts before 0 s; expected start >= 0")
    if end <= start:
        raise ValueError(f"span {shown!r} ends at or before its start; expected start < end")
    return (start, end)


def format_spans(spans: Iterable[Span]) -> str:
    """Spans in the text form :func:`parse_spans` reads, ``"3.5-8;12-14.2"``."""
    return SPAN_SEPARATOR.join(f"{_seconds(a)}-{_seconds(b)}" for a, b in spans)


def _seconds(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def parse_listing_ids(value: object) -> list[str]:
    """One ``listing_ids`` cell as a list of ids: ``"L1;L2"``, JSON ``'["L1", "L2"]'`` or a list.

    Ids are stripped; raises ``ValueError`` for an empty id (``"L1;;L2"``) or a JSON item that
    is not text or an integer.
    """
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            expected = "expected ids separated by ';' such as 'L1;L2' or a JSON list of ids"
            return _id_list(_json_list(value, expected), value)
        return _id_list(text.split(SPAN_SEPARATOR) if text else [], value)
    if isinstance(value, _NESTED):
        return _id_list(value, value)
    raise ValueError(f"expected text or a list of ids, found {type(value).__name__}")


def _id_list(items: object, shown: object) -> list[str]:
    if not isinstance(items, _NESTED):
        raise ValueError(f"{_shown(shown)} is not a list of listing ids")
    ids = []
    for item in items:
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            item = str(item)
        if not isinstance(item, str):
            raise ValueError(f"listing id {item!r} in {_shown(str(shown))} is not text")
        if not item.strip():
            raise ValueError(f"{_shown(str(shown))} has an empty listing id")
        ids.append(item.strip())
    return ids


# --- the declarative part ------------------------------------------------------------------------


@lru_cache(maxsize=2)
def video_schema(require_label: bool = True) -> pa.DataFrameSchema:
    """The pandera schema for the typed text columns of a video manifest."""
    return pa.DataFrameSchema(
        {
            "video_id": _text_column(required=True),
            "video_path": _text_column(required=True),
            "transcript": _text_column(),
            "seller_id": _text_column(),
            "market": _text_column(pa.Check.isin(ISO_3166_MARKETS, error="market")),
            "language": _text_column(pa.Check.isin(ISO_639_1_LANGUAGES, error="language")),
            "label": _text_column(pa.Check.isin(LABELS, error="label"), required=require_label),
            "kind": _text_column(pa.Check.isin(VIDEO_KINDS, error="kind")),
        },
        strict=False,
        name="video manifest",
    )


def _typed_videos(
    raw: pd.DataFrame, found: _RowProblems, labels: Mapping[str, str]
) -> pd.DataFrame:
    """Contract columns typed (absent ones added as missing), extra columns kept as read."""
    n = len(raw)
    columns: dict[str, pd.Series] = {}
    for name in VIDEO_COLUMNS:
        values = raw[name] if name in raw else pd.Series([None] * n, dtype=object)
        if name == "recorded_at":
            typed, bad = coerce_timestamp(values)
            found.add_mask(
                bad,
                name,
                lambda v: (
                    f"recorded_at {_shown(v)} is not a parseable timestamp; expected ISO 8601 "
                    "such as 2024-03-01T12:00:00Z"
                ),
                values,
            )
        elif name in ("infringement_spans", "listing_ids"):
            typed = _parsed_lists(values, name, found)
        else:
            typed, bad = coerce_text(values)
            found.add_mask(
                bad, name, lambda v: f"expected text, found a {type(v).__name__} value", values
            )
            if name == "label" and labels:
                mapped = typed.str.strip().str.casefold().map(labels)
                typed = mapped.where(mapped.notna(), typed)
        columns[name] = typed.reset_index(drop=True)
    for name in raw.columns:
        if name not in VIDEO_COLUMNS and name not in BOOKKEEPING_COLUMNS:
            columns[name] = raw[name].reset_index(drop=True)
    return pd.DataFrame(columns, index=pd.RangeIndex(n))


def _parsed_lists(values: pd.Series, name: str, found: _RowProblems) -> pd.Series:
    parse = parse_spans if name == "infringement_spans" else parse_listing_ids
    parsed: list[object] = [None] * len(values)
    bad_positions, reasons = [], []
    for pos, value in enumerate(values.to_numpy(dtype=object)):
        if _is_missing(value):
            continue
        try:
            parsed[pos] = parse(value)
        except ValueError as err:
            bad_positions.append(pos)
            reasons.append(str(err))
    found.add(np.asarray(bad_positions, dtype=np.int64), name, reasons)
    return pd.Series(parsed, dtype=object)


def _is_missing(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return np.ndim(value) == 0 and bool(pd.isna(value))


# --- the checks across columns and against the files ---------------------------------------------


def _path_problems(paths: pd.Series, found: _RowProblems) -> dict[str, str | None]:
    """Paths that are absolute or escape the manifest folder; the verdict per distinct path."""
    present = paths.dropna()
    verdicts = {path: _path_escapes(path, "video_path") for path in present.unique()}
    reasons = present.map(verdicts)
    bad = reasons.notna()
    found.add(present.index[bad].to_numpy(), "video_path", reasons[bad].tolist())
    return verdicts


def _probe_rows(
    paths: pd.Series, root: Path, verdicts: Mapping[str, str | None], workers: int | None
) -> pd.DataFrame:
    """The probe's columns per row: each distinct file whose path passed is probed once."""
    usable = [path for path, verdict in verdicts.items() if verdict is None]
    probes = dict(
        zip(
            usable,
            probe_videos([io.image_file(root, p) for p in usable], workers=workers),
            strict=True,
        )
    )
    found = [probes.get(p) if isinstance(p, str) else None for p in paths]
    return pd.DataFrame(
        {
            "video_flag": pd.Series([p.flag if p else None for p in found], dtype="str"),
            "duration_s": pd.Series([_or_nan(p and p.duration_s) for p in found], dtype="float64"),
            "fps": pd.Series([_or_nan(p and p.fps) for p in found], dtype="float64"),
            "frame_count": pd.Series([p.frames if p else None for p in found], dtype="Int64"),
            "width": pd.Series([p.width if p else None for p in found], dtype="Int64"),
            "height": pd.Series([p.height if p else None for p in found], dtype="Int64"),
            "_detail": pd.Series([p.detail if p else None for p in found], dtype=object),
            "_probed": pd.Series([p is not None for p in found], dtype=bool),
        }
    )


def _or_nan(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _no_probe(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "video_flag": pd.Series([None] * n, dtype="str"),
            "duration_s": pd.Series(np.full(n, np.nan), dtype="float64"),
            "fps": pd.Series(np.full(n, np.nan), dtype="float64"),
            "frame_count": pd.Series([None] * n, dtype="Int64"),
            "width": pd.Series([None] * n, dtype="Int64"),
            "height": pd.Series([None] * n, dtype="Int64"),
            "_detail": pd.Series([None] * n, dtype=object),
            "_probed": pd.Series(np.zeros(n, dtype=bool)),
        }
    )


def _span_problems(typed: pd.DataFrame, probed: pd.DataFrame, found: _RowProblems) -> None:
    """Spans on a genuine video, and spans past the end of a video whose duration is known.

    A span may overrun the duration by one frame interval (or 0.1 s where the rate is not
    known): an annotator's "until the end" is often the last frame's timestamp plus a frame.
    """
    positions, reasons = [], []
    spans = typed["infringement_spans"].to_numpy(dtype=object)
    labels = typed["label"].to_numpy(dtype=object)
    usable = probed["video_flag"].isna().to_numpy() & probed["_probed"].to_numpy()
    durations = probed["duration_s"].to_numpy(dtype=float)
    rates = probed["fps"].to_numpy(dtype=float)
    for pos, row_spans in enumerate(spans):
        if not row_spans:
            continue
        if labels[pos] == LABELS[0]:
            positions.append(pos)
            reasons.append(
                f"infringement_spans {format_spans(row_spans)!r} given for a genuine video; "
                "expected spans only where the label is 'infringing'"
            )
            continue
        duration = durations[pos]
        if not usable[pos] or not math.isfinite(duration):
            continue
        slack = 1.0 / rates[pos] if math.isfinite(rates[pos]) and rates[pos] > 0 else 0.1
        late = [span for span in row_spans if span[1] > duration + slack]
        if late:
            positions.append(pos)
            reasons.append(
                f"infringement_spans: span {format_spans(late[:1])!r} ends after the video's "
                f"{duration:g} s; expected spans within the video"
            )
    found.add(np.asarray(positions, dtype=np.int64), "infringement_spans", reasons)


def _video_findings(probed: pd.DataFrame) -> tuple[np.ndarray, list[str], dict[str, int]]:
    flagged = probed["video_flag"].notna().to_numpy()
    positions = np.flatnonzero(flagged)
    flags = probed["video_flag"].to_numpy(dtype=object)[positions]
    details = probed["_detail"].to_numpy(dtype=object)[positions]
    reasons = [f"video unusable ({f}): {d}" for f, d in zip(flags, details, strict=True)]
    return positions, reasons, dict(sorted(Counter(map(str, flags)).items()))


def _column_warnings(raw: pd.DataFrame, where: str) -> list[Problem]:
    known = set(VIDEO_COLUMNS) | set(BOOKKEEPING_COLUMNS) | {REJECT_REASON}
    warnings = []
    for name in (str(c) for c in raw.columns if c not in known):
        if name in PROBE_COLUMNS:
            reason = "computed by validation from the video file; the file's values are replaced"
        else:
            reason = "not a video manifest contract column; kept as is"
        warnings.append(file_problem(where, reason, column=name))
    if warnings:
        logger.warning("%s: %s", where, "; ".join(f"{w.column}: {w.reason}" for w in warnings))
    return warnings


# --- validation ----------------------------------------------------------------------------------


def validate_video_manifest(
    df: pd.DataFrame,
    *,
    root: str | Path,
    on_error: Literal["raise", "quarantine"] = "raise",
    require_label: bool = True,
    check_videos: bool = True,
    label_values: Mapping[str, str | Iterable[str]] | None = None,
    unusable_videos: UnusableVideos = "keep",
    video_workers: int | None = None,
    source: str | None = None,
) -> VideoManifest:
    """Check every row of a video manifest already read into ``df``; see the module docstring.

    ``root`` is the folder relative ``video_path`` values resolve against; ``source`` names
    the data in messages when ``df`` carries no ``_source_file`` column. Missing required
    columns are raised in either mode; row problems are raised all together (``"raise"``) or
    set aside (``"quarantine"``). ``check_videos`` probes every file whose path is valid
    (``video_workers`` threads, ``None``: up to 8); ``False`` leaves the files unopened and the
    probe columns missing. ``label_values`` maps a team's own label values onto the contract's
    (:func:`ipguard.data.schema.label_mapping`).
    """
    return _validate(
        df,
        root=Path(root),
        on_error=on_error,
        require_label=require_label,
        check_videos=check_videos,
        label_values=label_values,
        unusable_videos=unusable_videos,
        video_workers=video_workers,
        source=source,
        find_lines=None,
    )


def _check_options(on_error: object, unusable_videos: object) -> None:
    if on_error not in ("raise", "quarantine"):
        raise ValueError(f"on_error must be 'raise' or 'quarantine', got {on_error!r}")
    if unusable_videos not in UNUSABLE_VIDEO_ACTIONS:
        raise ValueError(f"unusable_videos must be 'keep' or 'reject', got {unusable_videos!r}")


def _validate(
    df: pd.DataFrame,
    *,
    root: Path,
    on_error: str,
    require_label: bool,
    check_videos: bool,
    label_values: Mapping[str, str | Iterable[str]] | None,
    unusable_videos: str,
    video_workers: int | None,
    source: str | None,
    find_lines: Any,
) -> VideoManifest:
    _check_options(on_error, unusable_videos)
    labels = label_mapping(label_values)
    raw = df.reset_index(drop=True)
    files, rows = _provenance(raw, source)
    where = _frame_source(files, source)
    required = REQUIRED_VIDEO_COLUMNS + (("label",) if require_label else ())
    _check_columns(raw, required, where)

    found = _RowProblems()
    typed = _typed_videos(raw, found, labels)
    reasons = {"kind": _allowed_reason("kind", VIDEO_KINDS)}
    if labels:
        reasons["label"] = _label_reason(labels)
    frame_level = _schema_problems(video_schema(require_label), typed, raw, found, reasons)
    if frame_level:
        raise ManifestError([file_problem(where, text) for text in frame_level])
    _duplicate_problems(typed["video_id"], files, rows, found, column="video_id")
    verdicts = _path_problems(typed["video_path"], found)
    probed = (
        _probe_rows(typed["video_path"], root, verdicts, video_workers)
        if check_videos
        else _no_probe(len(typed))
    )
    _span_problems(typed, probed, found)
    positions, video_reasons, unusable = _video_findings(probed)
    video_warnings: list[Problem] = []
    if unusable_videos == "reject":
        found.add(
            positions,
            "video_path",
            [f"{r}; set aside (unusable_videos=reject)" for r in video_reasons],
        )
    elif len(positions):
        kept = _RowProblems()
        kept.add(
            positions,
            "video_path",
            [
                f"{r}; kept, screened without its video (unusable_videos=keep)"
                for r in video_reasons
            ],
        )
        video_warnings = _problem_list(kept.frame(VIDEO_COLUMNS), raw, files, rows, find_lines)

    for name in PROBE_COLUMNS:
        typed[name] = probed[name]
    valid, rejects, problems = split_rows(
        raw, typed, files, rows, found.frame(VIDEO_COLUMNS), find_lines, on_error=on_error
    )
    return VideoManifest(
        valid=valid,
        rejected=rejects,
        root=root,
        rows_in=len(raw),
        rows_valid=len(valid),
        rows_rejected=len(rejects),
        problems=problems,
        warnings=_column_warnings(raw, where) + video_warnings,
        videos_checked=int(probed["_probed"].sum()),
        videos_unusable=unusable,
    )


def load_video_manifest(
    path: str | Path,
    *,
    on_error: Literal["raise", "quarantine"] = "raise",
    check_videos: bool = True,
    label_values: Mapping[str, str | Iterable[str]] | None = None,
    require_label: bool = True,
    unusable_videos: UnusableVideos = "keep",
    rejects_path: str | Path | None = None,
    video_workers: int | None = None,
    encoding: str | None = None,
) -> VideoManifest:
    """Read a video manifest (CSV, Parquet or JSON lines), validate it, and write the rejects
    (always, even if none) to ``rejects_path`` when given.

    Messages carry the physical line of each bad row for CSV and JSON-lines files.
    ``encoding`` is that of CSV and JSON-lines files (``None``: UTF-8, or UTF-16 after its
    byte-order mark); the other options are :func:`validate_video_manifest`'s.
    """
    _check_options(on_error, unusable_videos)
    label_mapping(label_values)  # a bad mapping is a config error: say so before reading
    frame = io.read_table(path, known_columns=VIDEO_COLUMNS, encoding=encoding)
    root = io.manifest_root(path)
    result = _validate(
        frame,
        root=root,
        on_error=on_error,
        require_label=require_label,
        check_videos=check_videos,
        label_values=label_values,
        unusable_videos=unusable_videos,
        video_workers=video_workers,
        source=None,
        find_lines=_line_finder(root, frame[SOURCE_FILE].value_counts().to_dict(), encoding),
    )
    if rejects_path is not None:
        io.write_table(result.rejected, rejects_path, default_format="csv")
    return result
