"""A brand only the catalog knows: trained without it, protected after ``ipguard-export``.

The fused model trains with ``model.references=true`` on the demo listings of every brand but
one, against a reference catalog without that brand. ``export(model_dir=..., brands=FULL)``
then registers the same weights pointed at the full catalog. The test checks what changes for
the held-back brand's listings: before, the brand is unknown (no reference price, no reference
photos: the reference features are flagged missing); after, its listings are compared with its
own official photos, logo, prices and authorised sellers, as the registered model's evidence
shows -- and a copy of one of its official photos from an unauthorised seller is flagged stolen.
The AUROC gain is measured in ``benchmarks/open_set.py`` (docs/brand_protection.md); with a
model trained for seconds it would be noise here.
"""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ipguard.config import compose
from ipguard.data.brand_catalog import REFERENCES_FILE
from ipguard.data.io import image_file
from ipguard.data.reference_features import REFERENCE_FEATURE_NAMES
from ipguard.demo.listings import BRANDS, ensure_demo_data
from ipguard.demo.open_set import hold_out_brand
from ipguard.demo.references import official_photo, stolen_copy
from ipguard.jobs.export import export
from ipguard.jobs.train import train
from ipguard.serving.scorer import ListingScorer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BRAND = "Lumenor"
TINY = [
    "model=fusion",
    "model.image_backbone=tiny_cnn",
    "model.n_buckets=4096",
    "model.references=true",
    "model.reference_image_size=64",
    "data.image_size=32",
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=3",
    "+trainer.limit_val_batches=2",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "onnx=false",
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    home = tmp_path_factory.mktemp("open_set")
    demo = ensure_demo_data(home / "demo", n=320, seed=4, image_size=64)
    held = hold_out_brand(demo.manifest_path, demo.reference_catalog_path, BRAND, home / "held")
    result = train(
        compose(
            "train",
            [
                *TINY,
                f"data.manifest={held.known_manifest}",
                f"data.brands={held.catalog_without}",
                f"paths.root_dir={home}",
                "seed=3",
            ],
        )
    )
    exported = export(
        compose(
            "export",
            [
                f"model_dir={result.output_dir / 'model'}",
                f"brands={held.catalog_with}",
                f"paths.root_dir={home}",
                f"mlflow.tracking_uri={result.tracking_uri}",
                "onnx=false",
            ],
        )
    )
    return {"home": home, "held": held, "trained": result, "exported": exported}


def _new_brand_rows(held) -> pd.DataFrame:
    frame = pd.read_csv(held.new_manifest, dtype=str, keep_default_na=False)
    frame["image_path"] = [
        str(image_file(held.new_manifest.parent, p)) for p in frame["image_path"]
    ]
    return frame.drop(columns=["label"])


def test_the_held_back_brand_is_unknown_to_the_model_as_trained(world: dict) -> None:
    held = world["held"]
    assert not held.catalog_without.joinpath(REFERENCES_FILE).read_text().count(BRAND)
    scorer = ListingScorer.load(world["trained"].output_dir / "model")
    assert BRAND not in scorer.predictor.references.catalog.brands
    evidence = [json.loads(e) for e in scorer.score(_new_brand_rows(held).head(12))["evidence"]]
    assert all(e["price"] is None or e["price"]["reference_price"] is None for e in evidence)
    assert all(e["references"]["brand"] != BRAND for e in evidence)


def test_exported_with_the_full_catalog_it_compares_the_brand_with_its_own_references(
    world: dict,
) -> None:
    held, exported = world["held"], world["exported"]
    trained_dir = world["trained"].output_dir / "model"
    # the same network, calibrator and policy: only the catalog changed
    assert (exported.model_dir / "weights.safetensors").read_bytes() == (
        trained_dir / "weights.safetensors"
    ).read_bytes()
    scorer = ListingScorer.load(exported.model_dir)
    assert BRAND in scorer.predictor.references.catalog.brands
    rows = _new_brand_rows(held).head(12)
    out = scorer.score(rows)
    evidence = [json.loads(e) for e in out["evidence"]]
    assert all(e["references"]["brand"] == BRAND for e in evidence)
    assert all(e["references"]["brand_source"] == "brand" for e in evidence)
    priced = [e for e in evidence if e["price"] is not None]
    assert priced and all(e["price"]["reference_price"] for e in priced)
    found = scorer.predictor.references.features(rows, [None] * len(rows))
    missing = REFERENCE_FEATURE_NAMES.index("ref_missing")
    assert (found.matrix[:, missing] == 1).all()  # without photos nothing is compared
    with_photos = scorer.predictor.references.features(rows, [_open(p) for p in rows["image_path"]])
    assert (with_photos.matrix[:, missing] == 0).all()


def test_a_copy_of_the_new_brands_official_photo_is_flagged_by_the_registered_model(
    world: dict,
) -> None:
    exported = world["exported"]
    brand = next(b for b in BRANDS if b.name == BRAND)
    copy = stolen_copy(official_photo(brand, size=256), np.random.default_rng(0))
    path = world["home"] / "copy.jpg"
    copy.save(path)
    mlflow.set_tracking_uri(exported.tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{exported.registered.name}@challenger")
    row = pd.DataFrame(
        {
            "listing_id": ["copy-1"],
            "title": [f"{BRAND} Nova watch original"],
            "brand": [BRAND],
            "seller_id": ["S-not-authorised"],
            "image_path": [str(path)],
        }
    )
    evidence = json.loads(model.predict(row)["evidence"][0])
    stolen = evidence["references"]["stolen_photo"]
    assert stolen is not None and stolen["brand"] == BRAND
    assert stolen["copy_score"] >= 0.75
    assert evidence["references"]["seller_authorised"] is False


def _open(path: str) -> Image.Image:
    return Image.open(path).convert("RGB")
