"""Per-slice metrics: is the model as good for every brand, market, language and category?

A model with a fine overall AUROC can still fail one market or one brand's counterfeits;
trust-and-safety teams are asked about exactly those. Each slice gets the ranking metrics and
what the policy does to it (recall at the reject threshold, traffic share per lane).

``infringement_type`` is special: genuine listings have no type, so slicing on the column as
is would give "counterfeit" slices with no negatives (AUROC undefined) and a "<missing>" slice
that is nearly all negatives. Instead each type's slice is *the infringing listings of that
type plus all genuine listings*: per-type recall and AUROC then answer "how well do we catch
this kind of infringement against the normal background traffic". Genuine listings that
nevertheless carry a type are part of that background in every type's slice, never a slice
of their own.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ipguard.evaluation.metrics import auroc, average_precision, lane_metrics
from ipguard.evaluation.policy import Policy, check_scores_labels

SLICE_COLUMNS = ("brand", "category", "market", "language", "infringement_type")

MISSING = "<missing>"
"""Slice value for rows where the column is empty, so they are reported, not dropped."""

_TYPE_COLUMN = "infringement_type"

RESULT_COLUMNS = (
    "column",
    "value",
    "n",
    "positives",
    "auroc",
    "average_precision",
    "recall_at_reject",
    "precision_reject",
    "share_reject",
    "share_review",
    "share_approve",
)


def sliced_metrics(
    frame: pd.DataFrame,
    *,
    score_col: str = "score",
    label_col: str = "label",
    policy: Policy | None = None,
    columns: Sequence[str] = SLICE_COLUMNS,
    min_count: int = 1,
) -> pd.DataFrame:
    """One row per (column, value) with at least ``min_count`` listings; largest slices first.

    Columns absent from ``frame`` are listed in ``result.attrs["skipped"]``; slices smaller than
    ``min_count`` in ``result.attrs["below_min_count"]`` as ``(column, value, n)``, so a reader
    can tell a slice was too small from a slice that does not exist. Without a policy the
    policy columns are NaN.
    """
    for key in (score_col, label_col):
        if key not in frame.columns:
            raise ValueError(
                f"sliced_metrics: expected column {key!r} in the frame, found {list(frame.columns)}"
            )
    if isinstance(columns, str):
        raise TypeError(f"sliced_metrics: expected a sequence of column names, found {columns!r}")
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        raise ValueError(f"sliced_metrics: expected min_count as an int >= 1, found {min_count!r}")
    scores, labels = check_scores_labels(
        frame[score_col].to_numpy(), frame[label_col].to_numpy(), where="sliced_metrics"
    )

    rows: list[dict[str, object]] = []
    skipped: list[str] = []
    small: list[tuple[str, str, int]] = []
    for column in columns:
        if column not in frame.columns:
            skipped.append(column)
            continue
        for value, mask in _slice_masks(frame[column], labels, is_type=column == _TYPE_COLUMN):
            n = int(mask.sum())
            if n < min_count:
                small.append((column, value, n))
                continue
            rows.append(
                {"column": column, "value": value, **_slice_row(scores, labels, mask, policy)}
            )

    result = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    result = result.astype({"n": "int64", "positives": "int64"})
    result.attrs["skipped"] = skipped
    result.attrs["below_min_count"] = small
    return result


def _slice_masks(
    column: pd.Series, labels: np.ndarray, *, is_type: bool
) -> list[tuple[str, np.ndarray]]:
    """``(value, row mask)`` per slice, largest first; values as strings, NA as ``<missing>``."""
    values = column.astype(object).where(column.notna(), MISSING).map(str).to_numpy()
    members = labels == 1 if is_type else np.ones(labels.shape, dtype=bool)
    background = ~members
    names, counts = np.unique(values[members], return_counts=True)
    order = np.lexsort((names, -counts))
    return [(str(v), (members & (values == v)) | background) for v in names[order]]


def _slice_row(
    scores: np.ndarray, labels: np.ndarray, mask: np.ndarray, policy: Policy | None
) -> dict[str, float]:
    s, y = scores[mask], labels[mask]
    row: dict[str, float] = {
        "n": int(mask.sum()),
        "positives": int(y.sum()),
        "auroc": auroc(s, y),
        "average_precision": average_precision(s, y),
    }
    lanes = lane_metrics(s, y, policy) if policy is not None else {}
    for key in RESULT_COLUMNS[6:]:
        row[key] = lanes.get(key, float("nan"))
    return row
