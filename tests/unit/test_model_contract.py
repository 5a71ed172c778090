"""The model contract a screening service relies on (DESIGN.md): optional columns may be
absent, bad rows are scored with what is usable and flagged, one output row per input row in
request order, and nothing a single listing sends can fail the whole batch, neither in
``ListingScorer`` nor behind MLflow's schema enforcement."""

from __future__ import annotations

import base64
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from mlflow.exceptions import MlflowException

from ipguard.models.image_classifier import ImageClassifier
from ipguard.registry.package import write_model_dir
from ipguard.registry.registration import pyfunc_arguments
from ipguard.serving.scorer import OUTPUT_COLUMNS, ListingScorer

NOT_AN_IMAGE = base64.b64encode(b"<html>404</html>").decode()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    folder, spec = write_model_dir(
        ImageClassifier("tiny_cnn", image_size=32),
        tmp_path_factory.mktemp("model"),
        calibrator={"method": "temperature", "temperature": 2.0},
        policy={"reject_threshold": 0.9, "approve_threshold": 0.1},
    )
    spec.model_version = "7"
    spec.save(folder)
    return folder


@pytest.fixture(scope="module")
def scorer(model_dir: Path) -> ListingScorer:
    return ListingScorer.load(model_dir)


@pytest.fixture(scope="module")
def listings(demo_small) -> pd.DataFrame:
    """Six demo listings as a REST client sends them (base64 images, no label)."""
    rows = pd.read_csv(demo_small.manifest_path).head(6).reset_index(drop=True)
    root = demo_small.manifest_path.parent
    return rows.drop(columns=["label", "image_path"]).assign(
        image_b64=[base64.b64encode((root / p).read_bytes()).decode() for p in rows["image_path"]]
    )


def test_output_has_one_row_per_input_in_request_order(
    scorer: ListingScorer, listings: pd.DataFrame
) -> None:
    shuffled = listings.iloc[[3, 0, 5, 1, 4, 2]].set_axis([10, 11, 12, 13, 14, 15])
    out = scorer.score(shuffled)
    assert list(out.columns) == list(OUTPUT_COLUMNS)
    assert out["listing_id"].tolist() == shuffled["listing_id"].tolist()
    alone = [scorer.score(shuffled.iloc[[i]])["score"].item() for i in range(len(shuffled))]
    assert out["score"].to_numpy() == pytest.approx(alone, abs=1e-6)  # batch-invariant
    assert set(out["decision"]) <= {"reject", "review", "approve"}
    assert (out["flags"] == "").all()
    assert (out["model_version"] == "7").all()


def test_absent_optional_columns_are_scored_with_what_is_there(
    scorer: ListingScorer, listings: pd.DataFrame
) -> None:
    ids_and_images = scorer.score(listings[["listing_id", "image_b64"]])
    assert ids_and_images["score"].between(0, 1).all()
    assert ids_and_images["flags"].eq("text_empty").all()
    full = scorer.score(listings)
    assert ids_and_images["score"].to_numpy() == pytest.approx(full["score"].to_numpy())
    ids_only = scorer.score(listings[["listing_id"]])
    assert ids_only["score"].isna().all()
    assert ids_only["decision"].eq("review").all()  # unscored listings go to a human
    assert ids_only["flags"].eq("text_empty,image_missing,not_scored").all()


def test_bad_rows_are_flagged_and_the_rest_of_the_batch_is_scored(
    scorer: ListingScorer, listings: pd.DataFrame
) -> None:
    batch = listings.head(5).assign(price=[12.5, "abc", 3, None, [1, 2]]).astype(object)
    batch.at[1, "image_b64"] = NOT_AN_IMAGE
    batch.at[2, "title"] = ""
    batch.at[3, "title"] = 123
    batch.at[4, "brand"] = {"name": "x"}

    out = scorer.score(batch)

    assert out["flags"].tolist() == [
        "",
        "price_invalid,image_unreadable,not_scored",
        "title_missing",
        "title_invalid",
        "brand_invalid,price_invalid",
    ]
    assert np.isnan(out["score"][1]) and out["decision"][1] == "review"
    good = [0, 2, 3, 4]
    assert out["score"][good].between(0, 1).all()
    clean = scorer.score(listings.head(5))["score"][good]
    assert out["score"][good].to_numpy() == pytest.approx(clean.to_numpy())  # same images


def test_image_paths_and_missing_ids_are_handled_per_row(scorer: ListingScorer, demo_small) -> None:
    root = demo_small.manifest_path.parent
    frame = pd.DataFrame(
        {
            "listing_id": ["a", None, "c"],
            "title": ["one", "two", "three"],
            "image_path": [str(root / "images" / "L000001.jpg"), None, str(root / "nope.jpg")],
        }
    )
    out = scorer.score(frame)
    assert out["listing_id"].tolist() == ["a", "", "c"]
    assert out["flags"].tolist() == [
        "",
        "listing_id_missing,image_missing,not_scored",
        "image_unreadable,not_scored",
    ]


def test_empty_request_gives_empty_output_with_contract_columns(scorer: ListingScorer) -> None:
    out = scorer.score(pd.DataFrame({"listing_id": pd.Series([], dtype=str)}))
    assert out.empty and list(out.columns) == list(OUTPUT_COLUMNS)


@pytest.fixture(scope="module")
def pyfunc(model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """The screener saved from code, as registered, minus the registry."""
    path = tmp_path_factory.mktemp("pyfunc") / "model"
    mlflow.pyfunc.save_model(
        path,
        **pyfunc_arguments(model_dir, runtime="torch"),
    )
    return mlflow.pyfunc.load_model(str(path))


def test_wrong_types_pass_the_pyfunc_signature_and_come_back_flagged(
    pyfunc, listings: pd.DataFrame
) -> None:
    # each of these alone makes MLflow reject a whole batch under a string/double signature
    one_row = listings.head(1).assign(title=[123], price=["abc"])
    out = pyfunc.predict(one_row)
    assert out["flags"].tolist() == ["title_invalid,price_invalid"]
    assert out["score"].between(0, 1).all()
    ints = pyfunc.predict(listings.head(2).assign(listing_id=[1, 2], price=[10, 20]))
    assert ints["listing_id"].tolist() == ["1", "2"] and ints["flags"].eq("").all()


def test_pyfunc_refuses_a_request_without_listing_id(pyfunc, listings: pd.DataFrame) -> None:
    with pytest.raises(MlflowException, match="listing_id"):
        pyfunc.predict(listings.drop(columns=["listing_id"]))
