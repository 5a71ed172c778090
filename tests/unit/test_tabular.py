"""TabularFeaturizer: price against the brand catalog, brand mentions, flags instead of NaN."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ipguard.data.schema import ManifestError
from ipguard.data.tabular import (
    FEATURE_DIM,
    FEATURE_NAMES,
    MAX_ABS_LOG_RATIO,
    CatalogEntry,
    TabularFeaturizer,
)

COL = {name: i for i, name in enumerate(FEATURE_NAMES)}
CATALOG = [
    CatalogEntry("Zentaro", 100.0, "USD"),
    CatalogEntry("Louis Vuittan", 1000.0, "EUR"),
    CatalogEntry("Nopricer", None, None),
]


@pytest.fixture
def featurizer() -> TabularFeaturizer:
    return TabularFeaturizer(CATALOG)


def _one(featurizer: TabularFeaturizer, **row: object) -> dict[str, float]:
    values = featurizer.transform(pd.DataFrame([row]))[0]
    return {name: float(values[i]) for name, i in COL.items()}


def test_price_ratio_is_log_of_price_over_reference_in_the_same_currency(featurizer) -> None:
    row = _one(featurizer, title="Zentaro runner", brand="Zentaro", price=20.0, currency="USD")
    assert row["price_log_ratio"] == pytest.approx(math.log(0.2), abs=1e-6)
    assert row["price_ratio_missing"] == 0.0
    assert row["price_missing"] == row["brand_unknown"] == row["currency_mismatch"] == 0.0


def test_brand_and_currency_are_matched_loosely(featurizer) -> None:
    # case, spacing and currency case do not matter; the price may arrive as text
    row = _one(featurizer, title="bag", brand="louis  VUITTAN", price="2500", currency=" eur ")
    assert row["price_log_ratio"] == pytest.approx(math.log(2.5), abs=1e-6)


def test_other_currency_leaves_the_ratio_missing_and_flags_the_mismatch(featurizer) -> None:
    row = _one(featurizer, title="Zentaro", brand="Zentaro", price=1700.0, currency="MXN")
    assert row["price_log_ratio"] == 0.0
    assert row["price_ratio_missing"] == 1.0
    assert row["currency_mismatch"] == 1.0
    assert row["price_missing"] == 0.0


def test_missing_or_bad_price_sets_price_missing(featurizer) -> None:
    frame = pd.DataFrame(
        {
            "title": ["Zentaro"] * 4,
            "brand": ["Zentaro"] * 4,
            "price": [None, "twelve", -5.0, float("inf")],
            "currency": ["USD"] * 4,
        }
    )
    out = featurizer.transform(frame)
    assert (out[:, COL["price_missing"]] == 1.0).all()
    assert (out[:, COL["price_ratio_missing"]] == 1.0).all()
    assert (out[:, COL["currency_mismatch"]] == 0.0).all()


def test_unknown_brand_is_flagged_and_has_no_ratio(featurizer) -> None:
    row = _one(featurizer, title="plain socks", brand="Acme", price=5.0, currency="USD")
    assert row["brand_unknown"] == 1.0
    assert row["price_ratio_missing"] == 1.0
    assert row["brand_found"] == 0.0


def test_brand_named_only_in_the_text_still_gets_its_reference_price(featurizer) -> None:
    row = _one(featurizer, title="Zentaro Aero 3 sneakers", price=50.0, currency="USD")
    assert row["brand_unknown"] == 0.0
    assert row["price_log_ratio"] == pytest.approx(math.log(0.5), abs=1e-6)


def test_brand_without_reference_price_has_no_ratio_and_no_mismatch(featurizer) -> None:
    row = _one(featurizer, title="Nopricer", brand="Nopricer", price=5.0, currency="USD")
    assert row["price_ratio_missing"] == 1.0
    assert row["currency_mismatch"] == 0.0
    assert row["brand_unknown"] == 0.0


def test_extreme_prices_are_clipped(featurizer) -> None:
    row = _one(featurizer, title="Zentaro", brand="Zentaro", price=0.0001, currency="USD")
    assert row["price_log_ratio"] == -MAX_ABS_LOG_RATIO


def test_disguised_brand_mention_shows_in_the_brand_features(featurizer) -> None:
    clean = _one(featurizer, title="Zentaro runner")
    disguised = _one(featurizer, title="Z3nt.a.r.o runner")
    assert clean["brand_exact_raw"] == 1.0 and clean["brand_disguise"] == 0.0
    assert disguised["brand_found"] == 1.0
    assert disguised["brand_disguise"] > clean["brand_disguise"]


def test_frame_with_only_a_title_column_gives_flags_not_nan(featurizer) -> None:
    out = featurizer.transform(pd.DataFrame({"title": ["socks", None, "   "]}))
    assert out.shape == (3, FEATURE_DIM) and out.dtype == np.float32
    assert np.isfinite(out).all()
    assert (out[:, COL["price_missing"]] == 1.0).all()
    assert out[:, COL["text_empty"]].tolist() == [0.0, 1.0, 1.0]


def test_without_a_catalog_only_flags_carry_information() -> None:
    plain = TabularFeaturizer.from_catalog(None)
    frame = pd.DataFrame(
        {"title": ["Zentaro", ""], "brand": ["Zentaro", None], "price": [10.0, None]}
    )
    out = plain.transform(frame)
    assert np.isfinite(out).all()
    assert (out[:, COL["brand_unknown"]] == 1.0).all()
    assert (out[:, COL["price_log_ratio"]] == 0.0).all()
    assert out[:, COL["price_missing"]].tolist() == [0.0, 1.0]
    assert out[:, COL["text_empty"]].tolist() == [0.0, 1.0]


def test_empty_frame_gives_an_empty_matrix(featurizer) -> None:
    assert featurizer.transform(pd.DataFrame({"title": []})).shape == (0, FEATURE_DIM)


def test_round_trip_through_json_rebuilds_the_same_features(featurizer) -> None:
    frame = pd.DataFrame(
        {"title": ["Zentaro x", "bag"], "brand": ["Zentaro", "Louis Vuittan"], "price": [5, 900]}
    ).assign(currency=["USD", "EUR"])
    restored = TabularFeaturizer.from_dict(json.loads(json.dumps(featurizer.to_dict())))
    assert restored == featurizer
    assert restored.feature_names == FEATURE_NAMES
    np.testing.assert_array_equal(restored.transform(frame), featurizer.transform(frame))


def test_from_dict_refuses_a_featurizer_with_other_features(featurizer) -> None:
    stored = featurizer.to_dict() | {"feature_names": ["price_log_ratio"]}
    with pytest.raises(ValueError, match="trained on features"):
        TabularFeaturizer.from_dict(stored)


def test_catalog_file_is_read_and_checked(tmp_path: Path) -> None:
    good = tmp_path / "brands.csv"
    good.write_text("brand,reference_price,currency\nZentaro,100,USD\nKestrune,,\n")
    assert TabularFeaturizer.from_catalog(good).catalog == (
        CatalogEntry("Zentaro", 100.0, "USD"),
        CatalogEntry("Kestrune", None, None),
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("brand,reference_price,currency\nZentaro,cheap,USD\n")
    with pytest.raises(ManifestError, match=r"bad.csv row 1.*'reference_price'"):
        TabularFeaturizer.from_catalog(bad)
    with pytest.raises(FileNotFoundError, match=r"data\.brands="):
        TabularFeaturizer.from_catalog(tmp_path / "absent.csv")


def test_demo_catalog_gives_ratios_for_listings_in_the_catalog_currency(demo_small) -> None:
    featurizer = TabularFeaturizer.from_catalog(demo_small.brands_path)
    frame = pd.read_csv(demo_small.manifest_path)
    out = featurizer.transform(frame)
    assert np.isfinite(out).all()
    same = frame["currency"].eq("USD").to_numpy()
    assert same.any() and (~same).any()
    assert (out[same, COL["price_ratio_missing"]] == 0.0).all()
    assert (out[~same, COL["currency_mismatch"]] == 1.0).all()
    assert (out[:, COL["brand_unknown"]] == 0.0).all()
