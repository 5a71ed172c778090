"""A brand catalog file -> the featurizer's catalog, read and checked at training time.

The catalog CSV is read like a manifest CSV (separator and byte-order mark detected, see
:func:`ipguard.data.io.csv_format`) and checked by :func:`ipguard.data.schema.validate_brands`,
whose errors name the file, row and column of every problem. This lives apart from
:mod:`ipguard.data.tabular` because the featurizer also runs in the screening service, which
rebuilds it from the exported model and must not import pandera.
"""

from __future__ import annotations

from pathlib import Path

from ipguard.data.columns import BRAND_COLUMNS
from ipguard.data.io import read_csv_table
from ipguard.data.schema import validate_brands
from ipguard.data.tabular import CatalogEntry, TabularFeaturizer, catalog_entry

__all__ = ["catalog_featurizer", "read_catalog"]


def read_catalog(brands_path: str | Path) -> list[CatalogEntry]:
    """The rows of a brand catalog CSV (brand, reference_price, currency), one per brand and
    currency, validated; :class:`ipguard.data.errors.ManifestError` names every bad row."""
    path = Path(brands_path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"data.brands={brands_path}: expected a brand catalog CSV (brand, "
            "reference_price, currency), found no such file"
        )
    typed = validate_brands(read_csv_table(path, known_columns=BRAND_COLUMNS), source=str(path))
    return [
        catalog_entry(row.brand, row.reference_price, row.currency)
        for row in typed.itertuples(index=False)
    ]


def catalog_featurizer(
    brands_path: str | Path | None, *, threshold: float = 0.8
) -> TabularFeaturizer:
    """The featurizer for the catalog at ``brands_path``; ``None``: no catalog (flags only)."""
    catalog = () if brands_path is None else read_catalog(brands_path)
    return TabularFeaturizer(catalog, threshold=threshold)
