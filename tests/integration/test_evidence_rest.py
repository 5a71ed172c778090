"""The ``evidence`` column over REST: a real ``mlflow models serve`` of a fused model trained with
the demo's brand reference catalog (``model.references=true``) tells a review tool, in plain
JSON, that a listing's photo is a stolen copy of a brand's official photo, which counterfeit
wording its title uses and that its seller is not authorised -- while a client that reads only
the contract's older columns gets exactly what the model gives in process."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from tiny_registry import TinyStore, post_rows, request_rows, serving, train_cli

from ipguard.data.reference_catalog import read_brand_catalog
from ipguard.demo.listings import generate_demo_data
from ipguard.demo.references import stolen_copy
from ipguard.serving.scorer import OUTPUT_COLUMNS, ListingScorer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BRAND = "Zentaro"
# what a client written before the evidence column reads
OLD_COLUMNS = [c for c in OUTPUT_COLUMNS if c != "evidence"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> TinyStore:
    """A tiny fused model with references, trained and registered by the real CLI; champion."""
    home = tmp_path_factory.mktemp("home")
    # photos at 128 px: at the 48 px of the shared small demo a stolen copy is 32 px across
    demo = generate_demo_data(home / "demo", n=240, seed=7, image_size=128)
    summary = train_cli(
        home,
        "debug=fast",
        "model=fusion",
        "model.image_backbone=tiny_cnn",
        "model.references=true",
        "model.reference_image_size=64",
        f"data.manifest={demo.manifest_path}",
        f"data.brands={demo.reference_catalog_path}",
        "onnx=false",
        "seed=3",
    )
    assert summary["name"] == "ipguard-listing"
    (model_dir,) = (home / "runs" / "train").glob("*/model")
    trained = TinyStore(
        home, summary["uri"], summary["name"], summary["version"], model_dir, demo.manifest_path
    )
    trained.client().set_registered_model_alias(trained.name, "champion", trained.version)
    return trained


@pytest.fixture(scope="module")
def server(store: TinyStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving(store, "champion", tmp_path_factory.mktemp("server")) as url:
        yield url


def _b64_jpeg(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return base64.b64encode(buffer.getvalue()).decode()


def _scraped_listings(store: TinyStore) -> tuple[pd.DataFrame, list[str]]:
    """One listing per official photo of BRAND: a stolen copy of it, titled a replica, from a
    seller the brand has not authorised; and the reference id each one copies."""
    catalog = read_brand_catalog(store.manifest.parent / "brand_catalog")
    officials = catalog.images_of(BRAND, "photo")
    assert officials, f"the demo catalog has no photos of {BRAND}"
    seller = "S-not-authorised"
    assert seller not in catalog.sellers_of(BRAND)
    rng = np.random.default_rng(11)
    rows = pd.DataFrame(
        [
            {
                "listing_id": f"scraped-{i}",
                "title": f"{BRAND} sneakers replica, top quality",
                "brand": BRAND,
                "market": "US",
                "price": 35.0,
                "currency": "USD",
                "seller_id": seller,
                "image_b64": _b64_jpeg(stolen_copy(Image.open(catalog.image_file(ref)), rng)),
            }
            for i, ref in enumerate(officials)
        ]
    )
    return rows, [ref.reference_id for ref in officials]


def test_evidence_names_the_stolen_official_photo_the_wording_and_the_seller(
    server: str, store: TinyStore, tmp_path_factory: pytest.TempPathFactory
) -> None:
    rows, copied = _scraped_listings(store)
    predictions = post_rows(server, rows.head(1))

    evidence = json.loads(predictions[0]["evidence"])  # a JSON string, as the contract says
    stolen = evidence["references"]["stolen_photo"]
    assert stolen is not None, evidence["references"]
    assert stolen["brand"] == BRAND
    # one of the brand's official photos; exactly which colourway: the xfail test below
    assert stolen["reference_id"] in copied
    assert stolen["copy_score"] >= 0.75  # the model's stolen_threshold
    assert "replica" in evidence["text"]["counterfeit_terms"]
    assert evidence["references"]["seller_authorised"] is False
    assert evidence["references"]["brand"] == BRAND
    assert evidence["price"]["currency"] == "USD" and evidence["price"]["ratio"] < 0.5
    pretty = json.dumps(evidence, indent=2, ensure_ascii=False)
    (tmp_path_factory.getbasetemp() / "evidence_rest.json").write_text(pretty + "\n")
    print(pretty)  # `pytest -s` shows what a review tool receives


@pytest.mark.xfail(
    strict=True,
    reason="at the demo catalog's 128-px official photos the copy check names the exact "
    "photo for 28 of 32 copies (docs/brand_protection.md): here the copy of Zentaro's white "
    "product on a white backdrop has too little texture to pass the copy threshold",
)
def test_evidence_names_the_exact_official_photo_each_copy_was_made_from(
    server: str, store: TinyStore
) -> None:
    rows, copied = _scraped_listings(store)
    predictions = post_rows(server, rows)
    named = [
        (json.loads(p["evidence"])["references"]["stolen_photo"] or {}).get("reference_id")
        for p in predictions
    ]
    assert named == copied


def test_a_client_reading_only_the_older_columns_sees_them_unchanged(
    server: str, store: TinyStore
) -> None:
    rows = request_rows(store.manifest, 4)
    predictions = post_rows(server, rows)

    # the evidence is one added column: every older one is there, under its name, in order
    assert list(predictions[0]) == [*OLD_COLUMNS, "evidence"]
    served = pd.DataFrame(predictions)[OLD_COLUMNS]
    in_process = ListingScorer.load(store.model_dir).score(rows)[OLD_COLUMNS]
    assert served["listing_id"].tolist() == rows["listing_id"].tolist()
    for column in ("listing_id", "decision", "flags"):
        assert served[column].tolist() == in_process[column].tolist()
    for column in ("score", "image_score", "text_score"):
        np.testing.assert_allclose(
            served[column].astype(float), in_process[column].astype(float), atol=1e-6
        )
    assert (served["model_version"] == store.version).all()
