"""The feedback-file contract: what reviewers and appeals decided about scored listings.

The review lane and the appeals desk produce the best labels the team will ever get, but only
if a file of their outcomes reads as strictly as a manifest does: a decision nobody can place
in time, or a value nobody can map onto ``genuine`` / ``infringing``, must not become a
training label. So a feedback file follows the listing manifest's rules
(:mod:`ipguard.data.schema`): CSV (separator and byte-order mark detected), Parquet or JSON
lines; a team's own decision values mapped onto the contract's labels (``label_values``, the
same mapping manifests use, e.g. ``approve`` -> ``genuine``, ``reject`` -> ``infringing``);
and exactly two outcomes per row: typed and valid, or reported with file, row, column and
reason (raised together, or set aside with ``on_error="quarantine"``), so that
``rows_in == rows_valid + rows_rejected``.

One row is one decision about one listing:

* a **review** (``appeal_outcome`` blank or ``none``): ``reviewer_decision`` is its label;
* an **appeal** (``appeal_outcome`` ``upheld`` or ``overturned``): sellers appeal a
  rejection, so ``upheld`` means infringing and ``overturned`` genuine. ``reviewer_decision``
  may name the decision appealed; if given it must be infringing (nobody appeals an approval).

How rows about the same listing are resolved, and joined with the scored traffic, is
:mod:`ipguard.data.feedback_join`'s job.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ipguard.data import io
from ipguard.data.columns import BOOKKEEPING_COLUMNS, LABELS, REJECT_REASON, SOURCE_FILE
from ipguard.data.errors import ManifestError, Problem, file_problem
from ipguard.data.pandera_import import pa
from ipguard.data.schema import (
    ValidationResult,
    _allowed_reason,
    _check_columns,
    _frame_source,
    _label_reason,
    _line_finder,
    _provenance,
    _RowProblems,
    _schema_problems,
    _text_column,
    label_mapping,
    split_rows,
    typed_columns,
)

__all__ = [
    "APPEAL_OUTCOMES",
    "FEEDBACK_COLUMNS",
    "REQUIRED_FEEDBACK_COLUMNS",
    "Feedback",
    "load_feedback",
    "validate_feedback",
]

FEEDBACK_COLUMNS: tuple[str, ...] = (
    "listing_id",
    "reviewer_decision",
    "appeal_outcome",
    "decided_at",
    "reviewer_id",
    "queue_id",
    "appealed_at",
)
REQUIRED_FEEDBACK_COLUMNS: tuple[str, ...] = ("listing_id", "decided_at")
"""Plus ``reviewer_id`` or ``queue_id`` (either names who decided)."""
APPEAL_OUTCOMES: tuple[str, ...] = ("upheld", "overturned", "none")
APPEAL_LABELS: dict[str, str] = {"upheld": LABELS[1], "overturned": LABELS[0]}
"""An appeal challenges a rejection: upheld, the listing infringes; overturned, it does not."""
DECIDER_COLUMNS: tuple[str, ...] = ("reviewer_id", "queue_id")
KIND = "kind"
"""Added to every valid row: ``review`` or ``appeal``."""
LABEL = "label"
"""Added to every valid row: the contract label the row's decision means."""

_TIMESTAMP = "expected ISO 8601 such as 2024-03-01T12:00:00Z"
_OWN_LABELS = {label: label for label in LABELS}


def _same(found: _RowProblems, mask: pd.Series | np.ndarray, column: str, reason: str) -> None:
    """One reason for every row ``mask`` marks."""
    positions = np.flatnonzero(np.asarray(mask, dtype=bool))
    found.add(positions, column, [reason] * len(positions))


Feedback = ValidationResult
"""What reading a feedback file gives, counted like a manifest's validation: ``valid`` holds
the contract's columns typed (``decided_at`` / ``appealed_at`` as UTC timestamps,
``reviewer_decision`` mapped onto a contract label, ``appeal_outcome`` lower case with blank
read as ``none``), plus ``kind`` (``review`` / ``appeal``), ``label``, any extra columns as
read, and ``_source_file`` / ``_source_row``; ``rejects`` the rejected rows as written plus
``reject_reason``; ``rows_in == rows_valid + rows_rejected``."""


@lru_cache(maxsize=1)
def feedback_schema() -> pa.DataFrameSchema:
    """The pandera schema for a typed feedback file's text columns."""
    return pa.DataFrameSchema(
        {
            "listing_id": _text_column(required=True),
            "reviewer_decision": _text_column(pa.Check.isin(LABELS, error="reviewer_decision")),
            "appeal_outcome": _text_column(
                pa.Check.isin(APPEAL_OUTCOMES, error="appeal_outcome"), required=True
            ),
            "reviewer_id": _text_column(),
            "queue_id": _text_column(),
        },
        strict=False,
        name="feedback file",
    )


def _typed_feedback(
    raw: pd.DataFrame, found: _RowProblems, labels: Mapping[str, str]
) -> pd.DataFrame:
    """Contract columns typed (absent optional ones added as missing), extra columns kept;
    decisions mapped onto contract labels, appeal outcomes lower case (blank: ``none``)."""
    typed = typed_columns(raw, FEEDBACK_COLUMNS, found, timestamps=("decided_at", "appealed_at"))
    blank = raw["decided_at"].isna() | raw["decided_at"].astype(str).str.strip().eq("")
    _same(found, blank.to_numpy(), "decided_at", f"missing decided_at; {_TIMESTAMP}")
    decision = typed["reviewer_decision"]
    mapped = decision.str.strip().str.casefold().map({**_OWN_LABELS, **labels})
    typed["reviewer_decision"] = mapped.where(mapped.notna(), decision)
    typed["appeal_outcome"] = typed["appeal_outcome"].str.strip().str.lower().fillna("none")
    return typed


def _decision_problems(typed: pd.DataFrame, found: _RowProblems) -> None:
    """What no single column's rule can see: a row without a label, nobody who decided."""
    appeal = typed["appeal_outcome"].isin(tuple(APPEAL_LABELS)).to_numpy()
    review = typed["appeal_outcome"].eq("none").to_numpy()
    _same(
        found,
        review & typed["reviewer_decision"].isna().to_numpy(),
        "reviewer_decision",
        "no label: a review without reviewer_decision and no upheld or overturned appeal_outcome",
    )
    _same(
        found,
        appeal & typed["reviewer_decision"].eq(LABELS[0]).fillna(False).to_numpy(dtype=bool),
        "reviewer_decision",
        f"an appeal of a listing the reviewer found {LABELS[0]}; sellers appeal rejections, so "
        f"an appealed reviewer_decision must be {LABELS[1]}",
    )
    _same(
        found,
        typed[list(DECIDER_COLUMNS)].isna().all(axis=1),
        "reviewer_id",
        "missing who decided; expected a reviewer_id or a queue_id",
    )


def _with_labels(valid: pd.DataFrame) -> pd.DataFrame:
    appeal = valid["appeal_outcome"].isin(tuple(APPEAL_LABELS))
    valid[KIND] = np.where(appeal, "appeal", "review")
    valid[LABEL] = (
        valid["appeal_outcome"].map(APPEAL_LABELS).where(appeal, valid["reviewer_decision"])
    )
    return valid


def _column_warnings(raw: pd.DataFrame, where: str) -> list[Problem]:
    known = set(FEEDBACK_COLUMNS) | set(BOOKKEEPING_COLUMNS) | {REJECT_REASON}
    return [
        file_problem(where, "not a feedback contract column; kept as is", column=str(name))
        for name in raw.columns
        if name not in known
    ]


def validate_feedback(
    df: pd.DataFrame,
    *,
    on_error: Literal["raise", "quarantine"] = "raise",
    label_values: Mapping[str, str | Iterable[str]] | None = None,
    source: str | None = None,
) -> Feedback:
    """Check every row of a feedback file already read into ``df``; see the module docstring."""
    return _validate(
        df, on_error=on_error, label_values=label_values, source=source, find_lines=None
    )


def _validate(
    df: pd.DataFrame,
    *,
    on_error: str,
    label_values: Mapping[str, str | Iterable[str]] | None,
    source: str | None,
    find_lines: object,
) -> Feedback:
    if on_error not in ("raise", "quarantine"):
        raise ValueError(f"on_error must be 'raise' or 'quarantine', got {on_error!r}")
    labels = label_mapping(label_values)
    raw = df.reset_index(drop=True)
    files, rows = _provenance(raw, source)
    where = _frame_source(files, source)
    _check_columns(raw, REQUIRED_FEEDBACK_COLUMNS, where)
    if not any(c in raw for c in DECIDER_COLUMNS):
        raise ManifestError(
            file_problem(
                where,
                f"missing column 'reviewer_id' or 'queue_id' (who decided); found columns "
                f"{[str(c) for c in raw.columns]}",
                column="reviewer_id",
            )
        )
    found = _RowProblems()
    typed = _typed_feedback(raw, found, labels)
    decision = _label_reason(labels) if labels else _allowed_reason("label", LABELS)
    reasons = {
        "reviewer_decision": lambda v: decision(v).replace("unknown label", "unknown decision"),
        "appeal_outcome": _allowed_reason("appeal_outcome", APPEAL_OUTCOMES),
    }
    frame_level = _schema_problems(feedback_schema(), typed, raw, found, reasons)
    if frame_level:
        raise ManifestError([file_problem(where, text) for text in frame_level])
    _decision_problems(typed, found)
    valid, rejects, problems = split_rows(
        raw, typed, files, rows, found.frame(FEEDBACK_COLUMNS), find_lines, on_error=on_error
    )
    return Feedback(
        valid=_with_labels(valid),
        rejects=rejects,
        rows_in=len(raw),
        rows_valid=len(valid),
        rows_rejected=len(rejects),
        problems=problems,
        warnings=_column_warnings(raw, where),
    )


def load_feedback(
    path: str | Path,
    *,
    on_error: Literal["raise", "quarantine"] = "raise",
    label_values: Mapping[str, str | Iterable[str]] | None = None,
    rejects_path: str | Path | None = None,
    encoding: str | None = None,
) -> Feedback:
    """Read a feedback file (CSV, Parquet or JSON lines), validate it, and write the rejects
    (always, even if none) to ``rejects_path`` when given. Messages carry the physical line of
    each bad row for CSV and JSON-lines files."""
    label_mapping(label_values)  # a bad mapping is a config error: say so before reading
    frame = io.read_table(path, known_columns=FEEDBACK_COLUMNS, encoding=encoding)
    root = io.manifest_root(path)
    result = _validate(
        frame,
        on_error=on_error,
        label_values=label_values,
        source=None,
        find_lines=_line_finder(root, frame[SOURCE_FILE].value_counts().to_dict(), encoding),
    )
    if rejects_path is not None:
        io.write_table(result.rejects, rejects_path, default_format="csv")
    return result
