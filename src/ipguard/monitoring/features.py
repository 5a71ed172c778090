"""The inputs monitoring watches, read the same way from a reference and from traffic.

A profile and a window of traffic are compared feature by feature, so each feature must be
derived by one function from whatever frame it is given: the validation rows an export scores,
or the output of ``ipguard-score`` / a service log (the model's output columns plus the request
columns). Only pandas and numpy: the profile is built inside the export, beside serving code.

* categorical: ``market``, ``language``, ``category``, ``currency`` as text, a missing or blank
  value as :data:`MISSING` (a missing market is a value to watch, not a row to drop);
* ``text_length``: characters of title plus description, what a new counterfeit wording moves;
* ``unknown_words``: the share of a listing's words (title and description, letters only,
  case-folded) outside the reference's vocabulary (its 2,000 most frequent words): a new
  counterfeit wording that keeps the length of the old one still moves this;
* ``price_ratio``: the price against the reference's median price of the same brand in the
  same currency (or of the currency alone where the reference has too few listings of the
  brand). ipguard carries no exchange rates (see :mod:`ipguard.data.tabular`), so a ratio is
  only ever taken within one currency; a price-level change moves it in every market;
* flags: the scorer's per-row flags (``image_missing`` is image presence).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ipguard.data.columns import DECISIONS, FLAG_SEPARATOR

__all__ = [
    "CATEGORICAL",
    "LANES",
    "MISSING",
    "NUMERIC",
    "SLICE_COLUMNS",
    "categorical_values",
    "flag_counts",
    "flag_sets",
    "numeric_values",
    "price_reference",
    "unknown_word_shares",
    "vocabulary",
]

CATEGORICAL: tuple[str, ...] = ("market", "language", "category", "currency")
NUMERIC: tuple[str, ...] = ("score", "text_length", "unknown_words", "price_ratio")
SLICE_COLUMNS: tuple[str, ...] = ("market", "language", "category")
LANES: tuple[str, ...] = DECISIONS
MISSING = "(missing)"
#: listings of one brand in one currency the reference needs before its median is used
MIN_BRAND_ROWS = 5
#: words the reference's vocabulary keeps (the most frequent), and how often a word must occur
VOCABULARY_SIZE = 2000
MIN_WORD_COUNT = 2
_WORD = re.compile(r"[^\W\d_]+")


def _text(column: pd.Series) -> pd.Series:
    values = column.astype(object)
    blank = values.isna() | values.map(lambda v: isinstance(v, str) and not v.strip())
    return values.where(~blank, None)


def categorical_values(frame: pd.DataFrame, column: str) -> pd.Series:
    """``column`` as stripped text, :data:`MISSING` where null or blank."""
    values = _text(frame[column])
    return values.map(lambda v: MISSING if v is None else str(v).strip()).astype(object)


def text_lengths(frame: pd.DataFrame) -> np.ndarray:
    """Characters of title plus description per row (0 for a row with neither)."""
    total = np.zeros(len(frame), dtype=np.float64)
    for column in ("title", "description"):
        if column in frame:
            values = _text(frame[column])
            total += values.map(lambda v: 0 if v is None else len(str(v))).to_numpy(float)
    return total


def _words(frame: pd.DataFrame) -> list[list[str]]:
    rows: list[list[str]] = [[] for _ in range(len(frame))]
    for column in ("title", "description"):
        if column in frame:
            for i, value in enumerate(_text(frame[column])):
                if value is not None:
                    rows[i] += _WORD.findall(str(value).casefold())
    return rows


def vocabulary(frame: pd.DataFrame, size: int = VOCABULARY_SIZE) -> list[str]:
    """The reference's most frequent words (seen at least :data:`MIN_WORD_COUNT` times)."""
    counts: Counter[str] = Counter()
    for words in _words(frame):
        counts.update(words)
    common = [w for w, c in counts.most_common() if c >= MIN_WORD_COUNT]
    return sorted(common[:size])


def unknown_word_shares(frame: pd.DataFrame, known: Collection[str]) -> np.ndarray:
    """Per row, the share of its words outside ``known``; NaN for a row without words."""
    known = set(known)
    return np.asarray(
        [sum(w not in known for w in ws) / len(ws) if ws else np.nan for ws in _words(frame)],
        dtype=np.float64,
    )


def _prices(frame: pd.DataFrame) -> np.ndarray:
    prices = np.array(pd.to_numeric(frame["price"], errors="coerce"), dtype=np.float64)
    prices[~(np.isfinite(prices) & (prices > 0))] = np.nan
    return prices


def _brand_keys(frame: pd.DataFrame) -> list[str]:
    brands = (
        categorical_values(frame, "brand").str.casefold()
        if "brand" in frame
        else pd.Series([MISSING] * len(frame))
    )
    currencies = categorical_values(frame, "currency").str.upper()
    return [f"{b}|{c}" for b, c in zip(brands, currencies, strict=True)]


def price_reference(frame: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Median prices of the reference, per currency and per brand within a currency."""
    if "price" not in frame or "currency" not in frame:
        return {"currency": {}, "brand_currency": {}}
    prices = _prices(frame)
    currencies = categorical_values(frame, "currency").str.upper().to_numpy()
    keys = np.asarray(_brand_keys(frame), dtype=object)
    ok = np.isfinite(prices)
    by_currency = {
        str(c): float(np.median(prices[ok & (currencies == c)]))
        for c in sorted(set(currencies[ok]))
        if c != MISSING.upper()
    }
    by_brand: dict[str, float] = {}
    for key in sorted(set(keys[ok])):
        rows = prices[ok & (keys == key)]
        if len(rows) >= MIN_BRAND_ROWS and not key.endswith(MISSING.upper()):
            by_brand[str(key)] = float(np.median(rows))
    return {"currency": by_currency, "brand_currency": by_brand}


def price_ratios(frame: pd.DataFrame, reference: Mapping[str, Mapping[str, float]]) -> np.ndarray:
    """Price over the reference median (brand and currency, else currency); NaN without one."""
    if "price" not in frame or "currency" not in frame:
        return np.full(len(frame), np.nan)
    prices = _prices(frame)
    currencies = categorical_values(frame, "currency").str.upper().tolist()
    by_brand, by_currency = reference.get("brand_currency", {}), reference.get("currency", {})
    medians = [
        by_brand.get(key, by_currency.get(currency, np.nan))
        for key, currency in zip(_brand_keys(frame), currencies, strict=True)
    ]
    return prices / np.asarray(medians, dtype=np.float64)


def numeric_values(
    frame: pd.DataFrame,
    name: str,
    prices: Mapping[str, Mapping[str, float]],
    known_words: Collection[str] = (),
) -> np.ndarray:
    """One of :data:`NUMERIC` per row, NaN where it cannot be had."""
    if name == "score":
        return pd.to_numeric(frame["score"], errors="coerce").to_numpy(dtype=np.float64)
    if name == "text_length":
        return text_lengths(frame)
    if name == "unknown_words":
        return unknown_word_shares(frame, known_words)
    if name == "price_ratio":
        return price_ratios(frame, prices)
    raise ValueError(f"numeric feature {name!r}: expected one of {NUMERIC}")


def flag_sets(frame: pd.DataFrame) -> list[set[str]]:
    """The flags of each row (an empty set where it has none, or the frame has no flags)."""
    if "flags" not in frame:
        return [set() for _ in range(len(frame))]
    return [
        {f for f in str(v).split(FLAG_SEPARATOR) if f} if isinstance(v, str) else set()
        for v in frame["flags"].astype(object)
    ]


def flag_counts(flags: list[set[str]]) -> dict[str, int]:
    """Rows carrying each flag, plus ``any`` for rows with at least one."""
    counts: Counter[str] = Counter()
    for row in flags:
        counts.update(row)
        if row:
            counts["any"] += 1
    return dict(sorted(counts.items()))


def lane_counts(decisions: Any) -> dict[str, int]:
    """Rows per decision lane, every lane present (0 where none)."""
    counts = Counter(str(d) for d in decisions)
    return {lane: int(counts.get(lane, 0)) for lane in LANES}
