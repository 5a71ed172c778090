"""Raw values -> typed ones, in pandas only (no pandera), shared by the manifest loader and
serving, so a listing reads the same whether it comes from a CSV or a REST request."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

# --- turning raw values into typed ones -------------------------------------------------------

_NON_TEXT = (list, tuple, dict, set, bytes, np.ndarray)


def coerce_text(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Raw values -> ``str`` dtype with blank strings as missing, plus a mask of non-text values.

    Numbers (from Parquet or JSON) become their decimal text, so an integer id 7 reads as "7";
    nested values (JSON lists/objects, Parquet lists) cannot be text, so they are flagged
    rather than stringified into something nobody wrote.
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(object)
    nested = pd.Series(False, index=values.index)
    if values.dtype == object:
        nested = values.map(lambda v: isinstance(v, _NON_TEXT)).astype(bool)
        if nested.any():
            values = values.mask(nested)
    text = values.astype("str")
    blank = text.str.strip().eq("").fillna(False).astype(bool)
    return text.mask(blank), nested


def text_value(value: object) -> tuple[str | None, bool]:
    """One raw value as :func:`coerce_text` reads it: (text or None, nested).

    For a serving request of a few rows, where one pandas call costs more than the whole
    column in plain Python (``ipguard.serving.inputs``); ``tests/unit/test_serving_fast_path.py``
    holds the two readings equal.
    """
    if isinstance(value, str):
        return (value if value.strip() else None), False
    if isinstance(value, _NON_TEXT):
        return None, True
    if pd.isna(value):
        return None, False
    text = str(value)
    return (text if text.strip() else None), False


def coerce_price(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Raw values -> float64, plus a mask of present values that are not finite numbers."""
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        number = values.astype("float64")
        present = values.notna()
    else:
        text, _ = coerce_text(values)
        present = text.notna()
        number = pd.to_numeric(text, errors="coerce").astype("float64")
        unparsed = present & number.isna()
        if unparsed.any():
            number = number.mask(unparsed, text[unparsed].map(_localised_number))
    bad = present & ~np.isfinite(number.fillna(0.0))
    bad |= present & number.isna()
    return number.mask(bad), bad


# Prices as people write them in spreadsheets, where only one reading is possible: a decimal
# comma with one or two decimals (Brazil, most of Europe: "19,90", "1.299,00") and comma
# thousands with an optional decimal point ("1,299" or "1,299.00"). "1.299" stays 1.299: it
# is a valid plain number, and guessing otherwise would change prices silently.
_DECIMAL_COMMA = re.compile(r"^[+-]?(\d{1,3}(\.\d{3})+|\d+),\d{1,2}$")
_COMMA_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")


def _localised_number(value: str) -> float:
    """A price written with a decimal comma or comma thousands, else NaN."""
    text = value.strip().replace("\u00a0", "").replace(" ", "")
    if _DECIMAL_COMMA.match(text):
        return float(text.replace(".", "").replace(",", "."))
    if _COMMA_THOUSANDS.match(text):
        return float(text.replace(",", ""))
    return float("nan")


def coerce_timestamp(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Raw values -> tz-aware UTC datetimes, plus a mask of present values that do not parse.

    Only ISO 8601 is accepted: "03/04/2024" means different days in different markets, and a
    silently wrong date would corrupt time-based splits. Naive timestamps are taken as UTC.
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC"), pd.Series(False, index=values.index)
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values.dt.tz_localize("UTC"), pd.Series(False, index=values.index)
    text, _ = coerce_text(values)
    stamp = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    return stamp, text.notna() & stamp.isna()
