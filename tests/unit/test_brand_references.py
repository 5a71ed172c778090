"""Brand references: similarity to a brand's own photos and logos, stolen photos, authorisation.

The catalog is generated here from three of the demo's fictional brands: official studio
photos of the product in two colourways and one logo image each. The embedder is the real pretrained
EfficientNet-Lite0 (installed as a package) at a small input size, because what is tested --
that a re-encoded, resized, cropped, bannered copy of an official photo stays close to it while
another brand's product does not -- is a property of pretrained features, not of random ones.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ipguard.brands.embedding import ReferenceEmbedder
from ipguard.brands.references import BrandReferences
from ipguard.data.reference_catalog import read_brand_catalog
from ipguard.data.reference_features import REFERENCE_FEATURE_NAMES
from ipguard.demo.listings import BRANDS as DEMO_BRANDS
from ipguard.demo.listings import _shot
from ipguard.demo.photos import ImageSpec, PhotoStyle, render_image
from ipguard.demo.references import official_logo, official_photo, stolen_copy

COL = {name: i for i, name in enumerate(REFERENCE_FEATURE_NAMES)}
SIZE = 96
BRANDS = {brand.name: brand for brand in DEMO_BRANDS[:3]}  # Zentaro, Kestrune, Quivelle


def product_photo(brand: str, style: PhotoStyle | None = None, *, seed: int = 0) -> Image.Image:
    """A seller's own shot of the brand's genuine product: its backdrop, noise and tilt."""
    style = style or PhotoStyle("gradient", (200, 220, 240), 6.0, 80, 8.0)
    shot = _shot(BRANDS[brand], BRANDS[brand].colourways[0])
    return render_image(ImageSpec((shot,), style, "", ""), 256, np.random.default_rng(seed))


def copy_of(photo: Image.Image, seed: int = 0) -> Image.Image:
    """What a copier does: crop a few percent, shrink, add a banner, save as a poor JPEG."""
    return stolen_copy(photo, np.random.default_rng(seed), crop=0.06, scale=0.7, quality=60)


@pytest.fixture(scope="module")
def catalog_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("catalog")
    (root / "images").mkdir()
    refs, prices = [], []
    for name, brand in BRANDS.items():
        for colourway in brand.colourways[:2]:
            path = f"images/{name.lower()}_{colourway}.png"
            official_photo(brand, colourway, size=256).save(root / path)
            refs.append([name, "photo", path])
        path = f"images/{name.lower()}_logo.png"
        official_logo(brand, size=256).save(root / path)
        refs.append([name, "logo", path])
        prices.append([name, "USD", "100"])
    pd.DataFrame(refs, columns=["brand", "kind", "image_path"]).to_csv(
        root / "references.csv", index=False
    )
    pd.DataFrame(prices, columns=["brand", "currency", "reference_price"]).to_csv(
        root / "brands.csv", index=False
    )
    pd.DataFrame([["Zentaro", "s-official"]], columns=["brand", "seller_id"]).to_csv(
        root / "sellers.csv", index=False
    )
    pd.DataFrame([["Zentaro", "Zentar0"]], columns=["brand", "alias"]).to_csv(
        root / "aliases.csv", index=False
    )
    return root


@pytest.fixture(scope="module")
def references(catalog_dir: Path) -> BrandReferences:
    catalog = read_brand_catalog(catalog_dir)
    return BrandReferences.build(catalog, ReferenceEmbedder("efficientnet_lite0", image_size=SIZE))


def official(brand: str) -> Image.Image:
    return official_photo(BRANDS[brand], BRANDS[brand].colourways[0], size=256)


def _frame(**columns) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    return pd.DataFrame({"listing_id": [f"l{i}" for i in range(n)], **columns})


def test_a_copy_of_an_official_photo_from_an_unauthorised_seller_is_a_stolen_photo(
    references: BrandReferences,
) -> None:
    source = official("Zentaro")
    images = [copy_of(source), copy_of(source, 1), product_photo("Zentaro", seed=7)]
    frame = _frame(
        title=["Zentaro runner", "Zentaro runner", "Zentaro runner"],
        brand=["Zentaro", "Zentaro", "Zentaro"],
        seller_id=["s-copycat", "s-official", "s-reseller"],
    )
    found = references.features(frame, images)
    m = found.matrix
    assert m[0, COL["stolen_photo"]] == 1.0
    assert m[0, COL["stolen_similarity"]] >= references.stolen_threshold
    stolen = found.evidence[0]["stolen_photo"]
    assert stolen is not None and stolen["brand"] == "Zentaro"
    assert stolen["reference_id"] == references.reference(stolen["reference_id"]).reference_id
    assert BRANDS["Zentaro"].colourways[0] in references.reference(stolen["reference_id"]).path
    # the same copy from the brand's own authorised shop is not a theft
    assert m[1, COL["stolen_photo"]] == 0.0 and m[1, COL["seller_authorised"]] == 1.0
    assert m[0, COL["seller_unauthorised"]] == 1.0
    # a seller's own shot of the same genuine product is no copy of the official photo
    assert m[2, COL["stolen_photo"]] == 0.0
    assert m[2, COL["stolen_similarity"]] < references.stolen_threshold
    assert found.evidence[2]["stolen_photo"] is None


def test_the_claimed_brands_own_photos_are_nearer_than_another_brands(
    references: BrandReferences,
) -> None:
    shot = product_photo("Kestrune", seed=11)
    frame = _frame(title=["tote", "tote"], brand=["Kestrune", "Zentaro"])
    m = references.features(frame, [shot, shot]).matrix
    # claimed Kestrune: its photos match; claimed Zentaro: the photo looks like another brand
    assert m[0, COL["ref_photo_similarity"]] > m[1, COL["ref_photo_similarity"]]
    assert m[0, COL["ref_nearest_other_brand"]] == 0.0
    assert m[1, COL["ref_nearest_other_brand"]] == 1.0
    assert m[0, COL["ref_logo_similarity"]] > 0


def test_the_claimed_brand_comes_from_the_column_then_the_text_then_the_photo(
    references: BrandReferences,
) -> None:
    shot = product_photo("Quivelle", seed=3)
    frame = _frame(
        title=["great watch", "Zentar0 sneakers 1:1", "no brand named", "no photo"],
        brand=["Quivelle", None, None, None],
    )
    found = references.features(frame, [shot, shot, shot, None])
    sources = [(e["brand"], e["brand_source"]) for e in found.evidence]
    assert sources[:3] == [("Quivelle", "brand"), ("Zentaro", "text"), ("Quivelle", "image")]
    # named by the catalogued misspelling
    assert found.matrix[1, COL["brand_alias_mention"]] == 1.0
    assert found.matrix[0, COL["brand_alias_mention"]] == 0.0
    # no photo: no similarities, and the flag says so
    assert found.matrix[3, COL["ref_missing"]] == 1.0
    assert found.matrix[3, COL["ref_photo_similarity"]] == 0.0
    assert found.evidence[3]["photo_similarity"] is None
    assert not np.isnan(found.matrix).any()


def test_saved_references_compute_the_same_features(
    references: BrandReferences, tmp_path: Path
) -> None:
    folder = references.save(tmp_path / "model")
    loaded = BrandReferences.load(tmp_path / "model")
    assert folder.name == "references"
    assert loaded.fingerprint == references.fingerprint
    frame = _frame(title=["a", "b"], brand=["Zentaro", "Kestrune"], seller_id=["x", "y"])
    images = [copy_of(official("Zentaro")), product_photo("Kestrune", seed=5)]
    ours, theirs = references.features(frame, images), loaded.features(frame, images)
    np.testing.assert_allclose(ours.matrix, theirs.matrix, atol=1e-6)
    assert json.dumps(ours.evidence) == json.dumps(theirs.evidence)


def test_a_model_folder_built_with_other_features_is_refused(
    references: BrandReferences, tmp_path: Path
) -> None:
    folder = references.save(tmp_path / "model")
    config = json.loads((folder / "references.json").read_text())
    config["features"] = config["features"][:-1]
    (folder / "references.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="reference features"):
        BrandReferences.load(tmp_path / "model")


def test_training_and_serving_compute_the_same_features(
    references: BrandReferences, tmp_path: Path
) -> None:
    """Training reads photos from a manifest (views cached on disk); serving decodes a
    request's photos: the features must not drift between the two."""
    photos = {
        "a.jpg": copy_of(official("Zentaro")),
        "b.jpg": product_photo("Kestrune", seed=2),
        "c.jpg": product_photo("Quivelle", seed=4),
    }
    for name, image in photos.items():
        image.save(tmp_path / name, quality=90)
    frame = _frame(
        title=["Zentaro runner", "Kestrune tote replica", "watch"],
        brand=["Zentaro", None, "Quivelle"],
        seller_id=["s1", "s2", "s-official"],
        image_path=list(photos),
    )
    frame.loc[3] = ["l3", "no photo", None, "s3", None]
    trained = references.manifest_features(frame, tmp_path, cache_dir=tmp_path / "cache")
    again = references.manifest_features(frame, tmp_path, cache_dir=tmp_path / "cache")
    decoded = [
        Image.open(tmp_path / p).convert("RGB") if isinstance(p, str) else None
        for p in frame["image_path"]
    ]
    served = references.features(frame, decoded).matrix
    np.testing.assert_allclose(trained, served, atol=1e-5)
    np.testing.assert_array_equal(trained, again)  # read back from the cache
    assert trained[0, COL["stolen_photo"]] == 1.0
    assert trained[3, COL["ref_missing"]] == 1.0
