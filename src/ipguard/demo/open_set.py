"""A brand the model never saw: the demo data split into known brands and one held back.

Open-set brand protection is measured by training on some brands and then protecting one
that only the brand catalog knows (docs/brand_protection.md, "A brand the model never saw").
:func:`hold_out_brand` writes what that needs from a generated demo folder: a training
manifest without the brand, a manifest of the brand's listings only, and the demo's reference
catalog with and without the brand. Both manifests sit in a folder of their own whose
``images`` link to the demo's, so their relative image paths resolve as in the demo.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from ipguard.data.brand_catalog import BrandCatalog, copy_catalog
from ipguard.data.reference_catalog import read_brand_catalog
from ipguard.data.tabular import brand_key

__all__ = ["HeldOutBrand", "hold_out_brand"]


@dataclass(frozen=True)
class HeldOutBrand:
    brand: str
    known_manifest: Path  # every listing of the other brands
    new_manifest: Path  # the held-back brand's listings only
    catalog_without: Path  # the reference catalog without the brand
    catalog_with: Path  # the full reference catalog
    n_known: int
    n_new: int


def _without(catalog: BrandCatalog, brand: str) -> BrandCatalog:
    key = brand_key(brand)
    return replace(
        catalog,
        prices=tuple(e for e in catalog.prices if brand_key(e.brand) != key),
        images=tuple(r for r in catalog.images if brand_key(r.brand) != key),
        authorised_sellers=tuple(p for p in catalog.authorised_sellers if brand_key(p[0]) != key),
        aliases=tuple(p for p in catalog.aliases if brand_key(p[0]) != key),
        problems=(),
        recorded_fingerprint=None,
    )


def hold_out_brand(
    demo_manifest: str | Path, catalog: str | Path, brand: str, out_dir: str | Path
) -> HeldOutBrand:
    """Split the demo listings at ``demo_manifest`` by ``brand`` into ``out_dir``."""
    manifest = Path(demo_manifest)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    is_new = frame["brand"].map(brand_key) == brand_key(brand)
    if not is_new.any():
        raise ValueError(f"{manifest}: no listing of brand {brand!r} to hold back")
    images = out / "images"
    if not images.exists():
        os.symlink((manifest.parent / "images").resolve(), images, target_is_directory=True)
    known, new = out / "known_brands.csv", out / f"new_brand_{brand_key(brand)}.csv"
    frame[~is_new].to_csv(known, index=False)
    frame[is_new].to_csv(new, index=False)
    full = read_brand_catalog(catalog)
    if brand_key(brand) not in {brand_key(b) for b in full.brands}:
        raise ValueError(f"{catalog}: brand {brand!r} is not in the catalog")
    with_dir, without_dir = out / "catalog_with", out / "catalog_without"
    for folder, value in ((with_dir, full), (without_dir, _without(full, brand))):
        if not folder.exists():
            copy_catalog(value, folder)
    return HeldOutBrand(
        brand, known, new, without_dir, with_dir, int((~is_new).sum()), int(is_new.sum())
    )
