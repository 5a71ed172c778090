"""The columnar serving path reads a request exactly as the manifest reader's pandas coercion
does, computes the tabular features and their evidence in one pass, and builds the pyfunc's
null-filled output directly; none of that may change what a listing scores or earns."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from ipguard.data.coercion import coerce_price, coerce_text
from ipguard.data.tabular import CatalogEntry, TabularFeaturizer
from ipguard.models.fusion_classifier import FusionClassifier
from ipguard.registry.package import write_model_dir
from ipguard.serving.inputs import collect_inputs
from ipguard.serving.scorer import ListingScorer, with_nulls
from ipguard.text.features import BrandMatcher

CATALOG = [
    CatalogEntry("Lumenor", 160.0, "USD"),
    CatalogEntry("Lumenor", 2700.0, "MXN"),
    CatalogEntry("Solmira", 90.0, "USD"),
    CatalogEntry("Vantor", None, None),
]

#: values a JSON, CSV or Parquet request may carry in any column
ODD_VALUES: list[object] = [
    None,
    np.nan,
    pd.NA,
    pd.NaT,
    "",
    "   ",
    "Lumenor watch",
    " 12,50 ",
    "1,299.00",
    "abc",
    "inf",
    "1e3",
    7,
    np.int64(-3),
    2**70,
    12.5,
    np.float32(0.1),
    np.float64(19.9),
    float("inf"),
    True,
    np.bool_(False),
    [1, 2],
    {"a": 1},
    b"bytes",
    pd.Timestamp("2024-01-01"),
]


def _jpeg(seed: int, size: int = 40) -> str:
    pixels = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG")
    return base64.b64encode(buffer.getvalue()).decode()


def _request(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    titles = ["Lumenor Nova watch", "L u m e n o r replica", "", "sunglasses Solmira", "plain mug"]
    return pd.DataFrame(
        {
            "listing_id": [f"L{i}" for i in range(n)],
            "title": [titles[i % len(titles)] for i in range(n)],
            "brand": [["Lumenor", None, "Solmira", "unknown", "Vantor"][i % 5] for i in range(n)],
            "price": rng.uniform(5, 400, n).round(2),
            "currency": [["USD", "MXN", "EUR", None][i % 4] for i in range(n)],
            "image_b64": [_jpeg(i) if i % 3 else "bm90IGFuIGltYWdl" for i in range(n)],
        }
    )


@pytest.fixture(scope="module")
def fused_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    featurizer = TabularFeaturizer(CATALOG)
    folder, spec = write_model_dir(
        FusionClassifier("tiny_cnn", image_size=32, pretrained=False, n_buckets=1024),
        tmp_path_factory.mktemp("fused"),
        calibrator={"method": "temperature", "temperature": 1.5},
        policy={"reject_threshold": 0.9, "approve_threshold": 0.1},
        extras={"tabular": featurizer.to_dict()},
    )
    spec.model_version = "3"
    spec.save(folder)
    return folder


def test_request_columns_read_as_the_pandas_coercion_reads_them() -> None:
    raw = pd.Series(ODD_VALUES, dtype=object)
    frame = pd.DataFrame({"listing_id": [f"L{i}" for i in range(len(raw))], "title": raw})
    frame["price"] = raw
    inputs = collect_inputs(frame, want_images=False)

    text, nested = coerce_text(raw)
    expected_text = text.to_numpy(dtype=object, na_value=None).tolist()
    assert inputs.columns["title"].tolist() == expected_text
    price, price_bad = coerce_price(raw)
    expected_price = price.to_numpy(dtype=np.float64, na_value=np.nan)
    np.testing.assert_array_equal(inputs.columns["price"], expected_price)
    for i, value in enumerate(ODD_VALUES):
        flags = inputs.flags[i]
        numeric = isinstance(value, (bool, np.bool_, int, np.integer, float, np.floating)) and not (
            isinstance(value, float) and np.isnan(value)
        )
        assert ("title_invalid" in flags) == bool(nested.iloc[i] or numeric), (value, flags)
        assert ("price_invalid" in flags) == bool(price_bad.iloc[i] or nested.iloc[i]), value


def test_typed_columns_read_as_before() -> None:
    frame = pd.DataFrame(
        {
            "listing_id": [1, 2, 3],
            "title": pd.Series(["a", None, "c"], dtype="str"),
            "price": pd.Series([1.5, np.nan, np.inf], dtype="float32"),
        }
    )
    inputs = collect_inputs(frame, want_images=False)
    assert inputs.listing_ids == ["1", "2", "3"]
    assert inputs.titles == ["a", None, "c"]
    expected, _ = coerce_price(frame["price"])
    np.testing.assert_array_equal(inputs.columns["price"], expected.to_numpy())
    assert inputs.flags == [[], ["text_empty"], ["price_invalid"]]
    # the coerced frame is still there for the models that read one
    assert inputs.frame["title"].tolist()[0] == "a" and "price" in inputs.frame


def test_featurize_gives_transform_and_explain_with_one_match_per_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    featurizer = TabularFeaturizer(CATALOG)
    frame = _request(10).drop(columns=["image_b64"])
    frame.loc[1, "price"] = np.nan
    features = featurizer.transform(frame)
    facts = featurizer.explain(frame)

    calls = []
    original = BrandMatcher.match
    monkeypatch.setattr(
        BrandMatcher, "match", lambda self, text: calls.append(text) or original(self, text)
    )
    inputs = collect_inputs(frame, want_images=False)
    one_pass, one_pass_facts = featurizer.featurize(inputs.columns)
    np.testing.assert_array_equal(one_pass, features)
    assert one_pass_facts == facts
    assert len(calls) == sum(bool(t) for t in frame["title"])  # once per listing with text
    lumenor = facts[0]
    assert lumenor["brand"] == "Lumenor" and lumenor["price"]["reference_price"] == 160.0
    assert lumenor["brand_mention"]["verbatim"] is True


def test_fused_scorer_output_is_what_the_contract_says(fused_dir: Path) -> None:
    scorer = ListingScorer.load(fused_dir)
    request = _request(7)
    out = scorer.score(request)
    direct = scorer.score(request, nulls=True)
    pd.testing.assert_frame_equal(direct, with_nulls(out))
    assert direct["image_score"].tolist()[0] is None  # the first row's image is not a JPEG
    assert out["flags"].tolist()[0] == "image_unreadable"
    assert out["flags"].tolist()[2] == "text_empty"
    assert out["model_version"].eq("3").all() and out["score"].between(0, 1).all()
    evidence = [json.loads(e) for e in out["evidence"]]
    assert evidence[0]["brand"] == "Lumenor" and evidence[0]["text"]["brand_mention"]
    assert evidence[2]["text"] is None


def test_fused_scores_do_not_depend_on_the_batch_around_a_listing(fused_dir: Path) -> None:
    scorer = ListingScorer.load(fused_dir)
    request = _request(6)
    together = scorer.score(request)
    alone = pd.concat([scorer.score(request.iloc[[i]]) for i in range(len(request))])
    np.testing.assert_allclose(
        together["score"].to_numpy(), alone["score"].to_numpy(), rtol=0, atol=1e-6
    )
    assert together["evidence"].tolist() == alone["evidence"].tolist()


@pytest.mark.parametrize("image_size", [32, 33])
def test_batched_eval_transform_equals_the_compose_bit_for_bit(image_size: int) -> None:
    from ipguard.serving.predictors.image import ImageTower

    rng = np.random.default_rng(image_size)
    tower = ImageTower(
        torch.nn.Identity(),
        {"image_size": image_size, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
    )
    assert tower._batched is not None  # the eval transform takes the batched path
    # larger and smaller than the network's input, odd sides, portrait, landscape, grey
    shapes = [(128, 128), (40, 97), (97, 40), (7, 9), (33, 33), (31, 64), (300, 301)]
    photos = [rng.integers(0, 256, (*s, 3), dtype=np.uint8) for s in shapes]
    photos.append(np.repeat(rng.integers(0, 256, (50, 20, 1), dtype=np.uint8), 3, axis=2))
    inputs = collect_inputs(pd.DataFrame({"listing_id": [f"L{i}" for i in range(len(photos))]}))
    inputs.images = [Image.fromarray(p) for p in photos]
    rows = list(range(len(photos)))
    batched = tower.tensor(inputs, rows)
    expected = torch.stack([tower.transform(image=p)["image"] for p in photos])
    assert batched.dtype == expected.dtype and batched.shape == expected.shape
    assert torch.equal(batched, expected)
    assert torch.equal(tower.tensor(inputs, [3]), expected[3:4])


def test_fast_path_scores_equal_the_compose_path_on_a_mixed_batch(fused_dir: Path) -> None:
    """Scores, flags and evidence through the batched transform and the one-object output
    block are those of the plain albumentations path and a pandas-built frame."""
    scorer = ListingScorer.load(fused_dir)
    request = _request(9, seed=4)
    request.loc[4, "title"] = None  # no text
    request.loc[5, "price"] = np.nan
    fast = scorer.score(request, nulls=True)
    scorer.predictor.tower._batched = None  # the Compose, photo by photo
    slow = scorer.score(request)
    assert list(fast.columns) == list(slow.columns) and len(fast) == len(request)
    for name in ("score", "image_score", "text_score"):
        values = fast[name].to_numpy()
        missing = np.array([v is None for v in values])
        np.testing.assert_array_equal(missing, slow[name].isna().to_numpy())
        np.testing.assert_allclose(
            values[~missing].astype(float), slow[name].to_numpy()[~missing], rtol=0, atol=1e-6
        )
    assert fast["image_score"].notna().sum() == 6  # every third row's image is not a JPEG
    for name in ("listing_id", "decision", "flags", "model_version", "evidence"):
        assert fast[name].tolist() == slow[name].tolist()
