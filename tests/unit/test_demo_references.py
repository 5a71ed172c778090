"""The demo's brand reference catalog: every brand with a photo per colourway and its logo,
local prices, authorised sellers that are honest sellers of the brand, misspellings as aliases
-- and the listings exactly what they are without it."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

import ipguard.config  # noqa: F401  (registers the resolvers)
from ipguard.data.reference_catalog import read_brand_catalog
from ipguard.data.tabular import brand_key
from ipguard.demo import listings
from ipguard.demo.listings import (
    BRANDS,
    CATALOG_CURRENCIES,
    _make_sellers,
    demo_reference_catalog,
    ensure_demo_data,
    generate_demo_data,
    local_reference_price,
)
from ipguard.demo.references import AUTHORISED_SHARE, official_photo, stolen_copy

N, SEED, SIZE = 200, 5, 40


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> listings.DemoDataset:
    return generate_demo_data(tmp_path_factory.mktemp("demo"), n=N, seed=SEED, image_size=SIZE)


def _listing_hashes(root: Path) -> dict[str, str]:
    files = [root / "listings.csv", *sorted((root / "images").glob("*.jpg"))]
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def test_every_brand_has_a_photo_per_colourway_its_logo_and_local_prices(demo) -> None:
    catalog = read_brand_catalog(demo.reference_catalog_path)
    assert catalog.problems == ()
    assert catalog.brands == tuple(sorted(b.name for b in BRANDS))
    for brand in BRANDS:
        photos = {r.reference_id for r in catalog.images_of(brand.name, "photo")}
        assert photos == {f"{brand.name}/photo/{c}" for c in brand.colourways}
        assert len(catalog.images_of(brand.name, "logo")) == 1
        prices = {e.currency: e.reference_price for e in catalog.prices if e.brand == brand.name}
        assert prices == {c: local_reference_price(brand, c) for c in CATALOG_CURRENCIES}


def test_the_catalog_photos_are_the_official_photos(demo) -> None:
    catalog = read_brand_catalog(demo.reference_catalog_path)
    brand = BRANDS[2]
    ref = catalog.images_of(brand.name, "photo")[1]
    stored = np.asarray(Image.open(catalog.image_file(ref)).convert("RGB"))
    colourway = ref.reference_id.rsplit("/", 1)[1]
    assert np.array_equal(stored, np.asarray(official_photo(brand.name, colourway, size=SIZE)))
    other = np.asarray(official_photo(brand.name, brand.colourways[0], size=SIZE))
    assert not np.array_equal(stored, other)  # each colourway its own photo


def test_authorised_sellers_are_honest_sellers_of_the_brand(demo) -> None:
    # seller habits as the generator planned them (its first stream), not as the catalog read them
    rng = np.random.default_rng(np.random.SeedSequence(SEED).spawn(3)[0])
    kind = {s.seller_id: s.kind for s in _make_sellers(N, rng)}
    with demo.manifest_path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    catalog = read_brand_catalog(demo.reference_catalog_path)
    total_honest = total_authorised = 0
    for brand in BRANDS:
        honest = {
            r["seller_id"]
            for r in rows
            if r["brand"] == brand.name and kind[r["seller_id"]] == "honest"
        }
        authorised = catalog.sellers_of(brand.name)
        assert authorised <= honest
        assert len(authorised) == (max(1, round(AUTHORISED_SHARE * len(honest))) if honest else 0)
        total_honest, total_authorised = (
            total_honest + len(honest),
            total_authorised + len(authorised),
        )
    assert total_authorised > 0
    assert 0.3 < total_authorised / total_honest < 0.55


def test_aliases_are_misspellings_of_their_own_brand_only(demo) -> None:
    catalog = read_brand_catalog(demo.reference_catalog_path)
    names = {brand_key(b.name) for b in BRANDS}
    for brand in BRANDS:
        aliases = catalog.aliases_of(brand.name)
        assert len(aliases) == 3
        for alias in aliases:
            assert brand_key(alias) not in names | {brand_key(brand.parody_name)}
            assert abs(len(alias) - len(brand.name)) <= 1 and alias[0] == brand.name[0]


def test_the_listings_are_the_same_bytes_with_and_without_the_catalog(
    demo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ipguard.demo.references as references

    monkeypatch.setattr(references, "write_reference_catalog", lambda *a, **k: None)
    without = generate_demo_data(tmp_path / "without", n=N, seed=SEED, image_size=SIZE)
    assert not without.reference_catalog_path.exists()
    assert _listing_hashes(without.root) == _listing_hashes(demo.root)
    assert len(_listing_hashes(demo.root)) == N + 1


def test_an_older_demo_folder_gets_its_catalog_without_new_listings(tmp_path: Path) -> None:
    import shutil

    first = generate_demo_data(tmp_path / "d", n=60, seed=1, image_size=32)
    expected = read_brand_catalog(first.reference_catalog_path).fingerprint
    shutil.rmtree(first.reference_catalog_path)  # as written before the catalog existed
    listed = first.manifest_path.stat().st_mtime_ns
    again = ensure_demo_data(tmp_path / "d", n=60, seed=1, image_size=32)
    assert again.manifest_path.stat().st_mtime_ns == listed
    assert read_brand_catalog(again.reference_catalog_path).fingerprint == expected
    assert not list((tmp_path / "d").glob(".brand_catalog*"))  # no temporary folder left


def test_the_resolver_finds_the_catalog_of_a_demo_manifest_only(demo, tmp_path: Path) -> None:
    assert demo_reference_catalog(demo.manifest_path) == str(demo.reference_catalog_path)
    (tmp_path / "listings.csv").write_text("listing_id,title\nL1,x\n")
    assert demo_reference_catalog(tmp_path / "listings.csv") is None
    assert demo_reference_catalog(None) is None
    cfg = OmegaConf.create(
        {
            "manifest": str(demo.manifest_path),
            "refs": "${ipguard.demo_reference_catalog:${manifest}}",
        }
    )
    assert cfg.refs == str(demo.reference_catalog_path)


def test_a_stolen_copy_is_a_smaller_recompressed_bannered_copy() -> None:
    photo = official_photo("Zentaro", size=100)
    copy = stolen_copy(photo, np.random.default_rng(3), crop=0.1, scale=0.5, banner="SALE")
    assert copy.size == (45, 45)
    again = stolen_copy(photo, np.random.default_rng(3), crop=0.1, scale=0.5, banner="SALE")
    assert np.array_equal(np.asarray(copy), np.asarray(again))
    plain = stolen_copy(photo, np.random.default_rng(3), crop=0.1, scale=0.5, banner=None)
    rows = np.abs(np.asarray(copy, float) - np.asarray(plain, float)).mean(axis=(1, 2))
    band = rows > 20  # the banner's rows, and only those, differ
    assert 4 <= band.sum() <= 10 and (band[0] or band[-1])

    def closeness(original: Image.Image) -> float:
        """Best correlation over the crops stolen_copy could have taken (10 px in all)."""
        y = np.asarray(plain.convert("L"), float).ravel()
        best = -1.0
        for left in range(11):
            for top in range(11):
                part = original.crop((left, top, 90 + left, 90 + top)).resize((45, 45))
                x = np.asarray(part.convert("L"), float).ravel()
                best = max(best, float(np.corrcoef(x, y)[0, 1]))
        return best

    assert closeness(photo) > 0.95 > 0.8 > closeness(official_photo("Kestrune", size=100))
    with pytest.raises(ValueError, match="crop"):
        stolen_copy(photo, np.random.default_rng(0), crop=0.6)
