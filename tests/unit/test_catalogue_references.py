"""The studio catalogue's brand reference catalog reads back as the catalog a brand hands over."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ipguard.data.reference_catalog import read_brand_catalog
from ipguard.demo.catalogue import BRANDS, make_catalogue
from ipguard.demo.catalogue_references import AUTHORISED_KINDS, write_studio_catalog


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("studio")
    make_catalogue(root, n_listings=300, n_sellers=40, seed=5, image_size=64, sep=";")
    return root


def test_the_catalog_has_each_brands_photos_logo_prices_and_authorised_sellers(
    catalogue: Path, tmp_path: Path
) -> None:
    folder = write_studio_catalog(catalogue, tmp_path / "catalog", photos_per_brand=2)
    catalog = read_brand_catalog(folder)
    assert not catalog.problems
    assert {b.lower() for b in catalog.brands} == {b.name.lower() for b in BRANDS}
    logos = [r for r in catalog.images if r.kind == "logo"]
    assert len(logos) == len(BRANDS)
    photos = [r for r in catalog.images if r.kind == "photo"]
    assert 0 < len(photos) <= 2 * len(BRANDS)
    listings = pd.read_csv(catalogue / "listings.csv", sep=";", dtype=str, keep_default_na=False)
    truth = pd.read_csv(catalogue / "truth.csv", dtype=str, keep_default_na=False)
    rows = listings.merge(truth, on="listing_id")
    authorised = {seller for _, ids in catalog.authorised_sellers for seller in ids}
    assert authorised
    for seller in authorised:
        kinds = set(rows.loc[rows["seller_id"] == seller, "seller_kind"])
        assert kinds and kinds <= set(AUTHORISED_KINDS), (seller, kinds)
    counterfeiters = set(rows.loc[rows["seller_kind"] == "counterfeiter", "seller_id"])
    assert counterfeiters and not counterfeiters & authorised
    # every official photo is a genuine brand-shop photo of that brand
    shop = rows[(rows["seller_kind"] == "brand_store") & (rows["label"] == "genuine")]
    for ref in photos:
        name = Path(ref.path).name
        assert (shop["image_path"].map(lambda p: Path(p).name) == name).any(), name


def test_photos_per_brand_must_be_a_count(catalogue: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="photos_per_brand"):
        write_studio_catalog(catalogue, tmp_path, photos_per_brand=-1)
