"""A brand catalog on disk -> the featurizer's catalog, read and checked at training time.

The catalog is a brands CSV (``brand, reference_price, currency``) or a brand reference catalog
folder (:func:`ipguard.data.reference_catalog.read_brand_catalog`: prices, reference images,
authorised sellers, aliases), of which the featurizer takes the prices. A CSV is read like a
manifest CSV (separator and byte-order mark detected, see :func:`ipguard.data.io.csv_format`)
and checked by :func:`ipguard.data.schema.validate_brands`, whose errors name the file, row and
column of every problem. This lives apart from :mod:`ipguard.data.tabular` because the
featurizer also runs in the screening service, which rebuilds it from the exported model and
must not import pandera.
"""

from __future__ import annotations

from pathlib import Path

from ipguard.data.reference_catalog import read_brand_catalog
from ipguard.data.tabular import CatalogEntry, TabularFeaturizer

__all__ = ["catalog_featurizer", "read_catalog"]


def read_catalog(brands_path: str | Path) -> list[CatalogEntry]:
    """The featurizer's rows of the catalog at ``brands_path`` (a brands CSV or a catalog
    folder), one per brand and currency, validated; :class:`ipguard.data.errors.ManifestError`
    names every bad row.

    The images of a folder catalog are not decoded here (only its prices are used); a brand
    with references but no price has a row without one (see
    :func:`~ipguard.data.reference_catalog.read_brand_catalog`), so its name feeds the
    brand-mention features as a price-less row of a CSV does.
    """
    path = Path(brands_path).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"data.brands={brands_path}: expected a brand catalog CSV (brand, "
            "reference_price, currency) or a brand catalog folder, found no such file or folder"
        )
    return list(read_brand_catalog(path, check_images=False).prices)


def catalog_featurizer(
    brands_path: str | Path | None, *, threshold: float = 0.8
) -> TabularFeaturizer:
    """The featurizer for the catalog at ``brands_path``; ``None``: no catalog (flags only)."""
    catalog = () if brands_path is None else read_catalog(brands_path)
    return TabularFeaturizer(catalog, threshold=threshold)
