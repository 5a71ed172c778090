"""Refuse training data on which a text model could only learn something degenerate.

A manifest whose titles are mostly empty teaches "empty means genuine" (or the opposite), and
a training split with one class teaches a constant; both would still export, register and
serve, silently. Every text model calls :func:`check_text_training_data` before it fits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ipguard.data.columns import LABEL_INDEX, label_array
from ipguard.models.baselines import MAX_EMPTY_FRACTION
from ipguard.text.normalization import normalize, text_of


class DegenerateTextDataError(ValueError):
    """The training rows cannot teach a text model anything useful."""


def _column(frame: pd.DataFrame, name: str) -> list[object]:
    return frame[name].tolist() if name in frame else [None] * len(frame)


def empty_text_count(frame: pd.DataFrame) -> int:
    """Rows with neither title nor description left after normalisation."""
    titles, descriptions = _column(frame, "title"), _column(frame, "description")
    return sum(
        1
        for title, description in zip(titles, descriptions, strict=True)
        if not normalize(text_of(title, description))  # type: ignore[arg-type]
    )


def check_text_training_data(
    frame: pd.DataFrame,
    *,
    source: str | Path | None = None,
    max_empty_fraction: float = MAX_EMPTY_FRACTION,
) -> None:
    """Raise :class:`DegenerateTextDataError` for one-class labels or mostly empty texts.

    ``frame`` is the training split (manifest columns, ``label`` as genuine/infringing);
    ``source`` names the manifest in the message.
    """
    where = f"{source}: " if source else ""
    n = len(frame)
    if n == 0:
        raise DegenerateTextDataError(f"{where}expected training rows, found none")
    labels = label_array(frame["label"])
    present = np.unique(labels)
    if len(present) < 2:
        found = next(name for name, index in LABEL_INDEX.items() if index == present[0])
        raise DegenerateTextDataError(
            f"{where}column 'label': expected both 'genuine' and 'infringing' among the "
            f"training rows, found only {found!r} in all {n}; a text model would learn a constant"
        )
    empty = empty_text_count(frame)
    if empty > max_empty_fraction * n:
        raise DegenerateTextDataError(
            f"{where}columns 'title'/'description': expected at most {max_empty_fraction:.0%} "
            f"of training rows with empty text after normalisation, found {empty} of {n} "
            f"({empty / n:.0%}); a text model would learn from the emptiness, not the text"
        )
