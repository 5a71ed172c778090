"""Tabular listing features for the fused models: price against the brand catalog, brand mentions.

A counterfeit may have a clean title and a plausible photo and still give itself away by its
price: a watch at a fifth of the brand's reference price. :class:`TabularFeaturizer` turns a
listing frame into a small fixed-width float32 matrix with those facts:

* ``price_log_ratio``: ``log(price / reference_price)``, clipped to
  +-:data:`MAX_ABS_LOG_RATIO`, against the brand's reference price *in the listing's own
  currency*. A catalog holds one reference price per brand and currency (a marketplace in the
  US, Mexico and Japan lists a brand at 160 USD, 2,700 MXN and 24,000 JPY), because local list
  prices are set per market and ipguard carries no exchange rates: a ratio built on a stale or
  guessed rate would look exactly like the price anomaly it is meant to find. Without a
  reference in that currency the ratio is 0 and ``price_ratio_missing`` says so, with the
  reason in one of the flags below.
* ``price_missing``: no price, or one that is not a positive finite number.
* ``brand_unknown``: neither the ``brand`` column nor the listing text names a catalog brand.
* ``currency_mismatch``: price and brand are known and the catalog has reference prices for
  the brand, but none in the listing's currency (or the listing has no currency).
* the brand-mention features of :class:`ipguard.text.features.BrandMatcher` over the
  listing text (how well, and how disguised, a catalog brand is named);
* ``text_empty``: no title and no description.

Missing values are 0 plus a flag, never NaN, so the matrix can go straight into a network or
a logistic regression. Without a catalog only the flags carry information. The featurizer is
a plain value that serialises to JSON (:meth:`to_dict`), so an exported model rebuilds exactly
the features it was trained on; a brand catalog file becomes one through
:func:`ipguard.data.catalog.catalog_featurizer`, which reads and validates it (training and
export only: serving never reads a catalog file, so this module imports no pandera).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ipguard.data.coercion import coerce_price
from ipguard.text.features import FEATURE_NAMES as BRAND_FEATURE_NAMES
from ipguard.text.features import BrandMatcher
from ipguard.text.normalization import is_missing, normalize, text_of

__all__ = [
    "FEATURE_DIM",
    "FEATURE_NAMES",
    "MAX_ABS_LOG_RATIO",
    "CatalogEntry",
    "TabularFeaturizer",
    "brand_key",
    "catalog_entry",
]

#: Column names of :meth:`TabularFeaturizer.transform`, in order.
FEATURE_NAMES: tuple[str, ...] = (
    "price_log_ratio",
    "price_ratio_missing",
    "price_missing",
    "brand_unknown",
    "currency_mismatch",
    *BRAND_FEATURE_NAMES,
    "text_empty",
)
FEATURE_DIM = len(FEATURE_NAMES)
#: A price 55x above or below the reference is as suspicious as any further out.
MAX_ABS_LOG_RATIO = 4.0

_DICT_FORMAT = "ipguard.tabular_featurizer"
# Version 2: the catalog may list a brand once per currency. Version 1 (one row per brand) is
# the special case of it, so models registered with version 1 load and compute the same.
_DICT_VERSION = 2
_READABLE_VERSIONS = (1, 2)
# What a catalog brand matched in the text looks like when nothing was found.
_NO_MENTION = np.array([0.0, 0.0, 0.0, 1.0, 0.0], dtype=np.float32)


@dataclass(frozen=True)
class CatalogEntry:
    """One row of the catalog: a brand's reference price, when known, in one currency.

    A brand sold in several currencies has one entry per currency.
    """

    brand: str
    reference_price: float | None
    currency: str | None


def catalog_entry(brand: object, reference_price: object, currency: object) -> CatalogEntry:
    """An entry from raw values: a missing price is ``None``, the currency upper case."""
    price = None if is_missing(reference_price) else float(reference_price)  # type: ignore[arg-type]
    return CatalogEntry(str(brand), price, _currency_key(currency))


def brand_key(name: str) -> str:
    """A brand's lookup key: normalised, spaces dropped ("Louis  Vuitton" = "louisvuitton")."""
    return "".join(normalize(name).split())


_brand_key = brand_key


def _currency_key(value: object) -> str | None:
    if is_missing(value) or not str(value).strip():
        return None
    return str(value).strip().upper()


def _prices(frame: pd.DataFrame) -> np.ndarray:
    """Listing prices as float64; NaN where absent, unparsable, infinite or not positive."""
    if "price" not in frame.columns:
        return np.full(len(frame), np.nan)
    number, _ = coerce_price(frame["price"].reset_index(drop=True))
    values = number.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.where(np.isfinite(values) & (values > 0), values, np.nan)


class TabularFeaturizer:
    """Listing frame -> float32 ``(n, FEATURE_DIM)`` features; see the module docstring."""

    FEATURE_NAMES: tuple[str, ...] = FEATURE_NAMES

    def __init__(self, catalog: Sequence[CatalogEntry] = (), *, threshold: float = 0.8) -> None:
        self._catalog: tuple[CatalogEntry, ...] = tuple(catalog)
        self._names: dict[str, str] = {}  # brand key -> the name as the catalog first spells it
        self._priced: set[str] = set()  # brand keys with a reference price in some currency
        self._prices: dict[tuple[str, str], float] = {}  # (brand key, currency) -> reference
        seen: dict[tuple[str, str | None], int] = {}
        for index, entry in enumerate(self._catalog):
            key = _brand_key(entry.brand)
            pair = (key, entry.currency)
            if pair in seen:
                raise ValueError(
                    f"catalog[{index}]: brand {entry.brand!r} with currency {entry.currency!r} "
                    f"repeats catalog[{seen[pair]}] ({self._catalog[seen[pair]].brand!r}); "
                    "expected one reference price per brand and currency"
                )
            seen[pair] = index
            self._names.setdefault(key, entry.brand)
            if entry.reference_price is not None:
                self._priced.add(key)
                if entry.currency is not None:
                    self._prices[(key, entry.currency)] = entry.reference_price
        self._matcher = (
            BrandMatcher(list(self._names.values()), threshold=threshold) if self._names else None
        )
        self._threshold = float(threshold)

    # --- construction ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable description; :meth:`from_dict` rebuilds an equal featurizer."""
        return {
            "format": _DICT_FORMAT,
            "version": _DICT_VERSION,
            "feature_names": list(FEATURE_NAMES),
            "threshold": self._threshold,
            "catalog": [
                {"brand": e.brand, "reference_price": e.reference_price, "currency": e.currency}
                for e in self._catalog
            ],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TabularFeaturizer:
        if not isinstance(d, Mapping):
            raise TypeError(f"tabular featurizer: expected a mapping, found {type(d).__name__}")
        if d.get("format") != _DICT_FORMAT or d.get("version") not in _READABLE_VERSIONS:
            raise ValueError(
                f"tabular featurizer: expected format {_DICT_FORMAT!r} version "
                f"{' or '.join(map(str, _READABLE_VERSIONS))}, "
                f"found format {d.get('format')!r} version {d.get('version')!r}"
            )
        names = tuple(d.get("feature_names", ()))
        if names != FEATURE_NAMES:
            raise ValueError(
                f"tabular featurizer: the model was trained on features {list(names)}, this "
                f"ipguard computes {list(FEATURE_NAMES)}; use the ipguard version it was built with"
            )
        catalog = [
            catalog_entry(e["brand"], e.get("reference_price"), e.get("currency"))
            for e in d.get("catalog", [])
        ]
        return cls(catalog, threshold=float(d.get("threshold", 0.8)))

    # --- what it knows --------------------------------------------------------------------
    @property
    def feature_names(self) -> tuple[str, ...]:
        return FEATURE_NAMES

    @property
    def catalog(self) -> tuple[CatalogEntry, ...]:
        return self._catalog

    @property
    def threshold(self) -> float:
        """The brand matcher's similarity threshold for a mention."""
        return self._threshold

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TabularFeaturizer):
            return NotImplemented
        return self._catalog == other._catalog and self._threshold == other._threshold

    def __hash__(self) -> int:
        return hash((self._catalog, self._threshold))

    @property
    def currencies(self) -> tuple[str, ...]:
        """The currencies the catalog has reference prices in, sorted."""
        return tuple(sorted({currency for _, currency in self._prices}))

    def reference_price(self, brand: str, currency: str | None) -> float | None:
        """The catalog's reference price of ``brand`` in ``currency``, or ``None``."""
        key = _currency_key(currency)
        return None if key is None else self._prices.get((_brand_key(brand), key))

    def __repr__(self) -> str:
        return (
            f"TabularFeaturizer({len(self._names)} brands, {len(self._catalog)} catalog rows, "
            f"threshold={self._threshold})"
        )

    # --- features -------------------------------------------------------------------------
    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Float32 ``(len(frame), FEATURE_DIM)``, columns as :data:`FEATURE_NAMES`; no NaN.

        Any of ``title``, ``description``, ``brand``, ``price``, ``currency`` may be absent
        from ``frame``; a value that cannot be used counts as missing and sets its flag.
        """
        return self.featurize(_frame_columns(frame), facts=False)[0]

    def explain(self, frame: pd.DataFrame) -> list[dict[str, Any]]:
        """Per row, the facts behind the features, for a reviewer: the catalog brand and how
        the text named it, and the price against the reference in the listing's currency."""
        return self.featurize(_frame_columns(frame))[1]

    def featurize(
        self, columns: Mapping[str, Sequence[Any]], *, facts: bool = True
    ) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """:meth:`transform`'s features and :meth:`explain`'s facts in one pass over the rows.

        ``columns`` maps any of ``title``, ``description``, ``brand``, ``currency`` (values,
        ``None`` or NaN where missing) and ``price`` (raw values, or float64 already coerced)
        to equal-length sequences. The serving path hands over the columns it has already
        coerced, so no pandas object is built per request, and the fuzzy brand matcher runs
        once per listing text instead of once for the features and again for the evidence.
        ``facts=False`` skips building the facts (an empty list is returned).
        """
        n = _length(columns)
        titles = _texts(columns.get("title"), n)
        descriptions = _texts(columns.get("description"), n)
        claimed = _texts(columns.get("brand"), n)
        currency_values = columns.get("currency")
        currencies = (
            [None] * n if currency_values is None else [_currency_key(c) for c in currency_values]
        )
        prices = _price_array(columns.get("price"), n)
        out = np.zeros((n, FEATURE_DIM), dtype=np.float32)
        rows: list[dict[str, Any]] = []
        first = _COL[BRAND_FEATURE_NAMES[0]]
        mentions = slice(first, first + len(BRAND_FEATURE_NAMES))
        for i in range(n):
            text = text_of(titles[i], descriptions[i])
            mention = self._matcher.match(text) if self._matcher is not None and text else None
            key = None if claimed[i] is None else _brand_key(claimed[i])  # type: ignore[arg-type]
            if key not in self._names:
                key = (
                    None if mention is None or mention.brand is None else _brand_key(mention.brand)
                )
            price = float(prices[i])
            price_missing = bool(np.isnan(price))
            currency = currencies[i]
            reference = (
                None if key is None or currency is None else self._prices.get((key, currency))
            )
            usable = not price_missing and reference is not None and reference > 0
            row = out[i]
            if usable:
                row[_COL["price_log_ratio"]] = np.clip(
                    np.log(price / reference),
                    -MAX_ABS_LOG_RATIO,
                    MAX_ABS_LOG_RATIO,  # type: ignore[operator]
                )
            row[_COL["price_ratio_missing"]] = not usable
            row[_COL["price_missing"]] = price_missing
            row[_COL["brand_unknown"]] = key is None
            row[_COL["currency_mismatch"]] = (
                not price_missing and key in self._priced and reference is None
            )
            row[_COL["text_empty"]] = not text
            if mention is None:
                row[mentions] = _NO_MENTION
            else:
                row[mentions] = (
                    mention.score,
                    mention.exact_raw,
                    mention.exact_normalised,
                    mention.disguise,
                    mention.found,
                )
            if facts:
                rows.append(_facts(self._names, key, mention, price, currency, reference))
        return out, rows


_COL = {name: i for i, name in enumerate(FEATURE_NAMES)}


def _facts(
    names: Mapping[str, str],
    key: str | None,
    mention: Any,
    price: float,
    currency: str | None,
    reference: float | None,
) -> dict[str, Any]:
    """One row of :meth:`TabularFeaturizer.explain`."""
    found = None
    if mention is not None and mention.found:
        found = {
            "brand": mention.brand,
            "verbatim": mention.exact_raw,
            "disguised": not mention.exact_raw,
            "similarity": round(mention.score, 4),
        }
    return {
        "brand": None if key is None else names[key],
        "brand_mention": found,
        "price": None
        if np.isnan(price)
        else {
            "amount": price,
            "currency": currency,
            "reference_price": reference,
            "ratio": None if not reference else round(price / reference, 4),
        },
    }


def _length(columns: Mapping[str, Sequence[Any]]) -> int:
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise ValueError(
            f"tabular featurizer: columns {sorted(columns)} differ in length ({sorted(lengths)})"
        )
    return lengths.pop() if lengths else 0


def _texts(values: Sequence[Any] | None, n: int) -> list[str | None]:
    """Text values with missing and blank ones as ``None``."""
    if values is None:
        return [None] * n
    return [None if is_missing(v) or not str(v).strip() else str(v) for v in values]


def _price_array(values: Sequence[Any] | None, n: int) -> np.ndarray:
    """Listing prices as float64; NaN where absent, unparsable, infinite or not positive."""
    if values is None:
        return np.full(n, np.nan)
    array = np.asarray(values)
    if array.dtype.kind != "f":  # raw values: parsed as the manifest reader parses them
        number, _ = coerce_price(pd.Series(list(values), dtype=object))
        array = number.to_numpy(dtype=np.float64, na_value=np.nan)
    array = array.astype(np.float64, copy=False)
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(array) & (array > 0), array, np.nan)


def _frame_columns(frame: pd.DataFrame) -> dict[str, Sequence[Any]]:
    """The featurizer's columns of a listing frame, the price parsed as the manifest reader does."""
    columns: dict[str, Sequence[Any]] = {
        name: frame[name].tolist()
        for name in ("title", "description", "brand", "currency")
        if name in frame.columns
    }
    if "price" in frame.columns:
        columns["price"] = _prices(frame)
    elif not columns:
        columns["title"] = [None] * len(frame)
    return columns
