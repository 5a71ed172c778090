"""TabularFeaturizer: price against the brand catalog, brand mentions, flags instead of NaN."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ipguard.data.catalog import catalog_featurizer
from ipguard.data.errors import ManifestError
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
    plain = catalog_featurizer(None)
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
    assert catalog_featurizer(good).catalog == (
        CatalogEntry("Zentaro", 100.0, "USD"),
        CatalogEntry("Kestrune", None, None),
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("brand,reference_price,currency\nZentaro,cheap,USD\n")
    with pytest.raises(ManifestError, match=r"bad.csv row 1.*'reference_price'"):
        catalog_featurizer(bad)
    with pytest.raises(FileNotFoundError, match=r"data\.brands="):
        catalog_featurizer(tmp_path / "absent.csv")


def test_demo_catalog_gives_ratios_for_listings_in_the_catalog_currency(demo_small) -> None:
    featurizer = catalog_featurizer(demo_small.brands_path)
    frame = pd.read_csv(demo_small.manifest_path)
    out = featurizer.transform(frame)
    assert np.isfinite(out).all()
    same = frame["currency"].eq("USD").to_numpy()
    assert same.any() and (~same).any()
    assert (out[same, COL["price_ratio_missing"]] == 0.0).all()
    assert (out[~same, COL["currency_mismatch"]] == 1.0).all()
    assert (out[:, COL["brand_unknown"]] == 0.0).all()


# --- a catalog for several markets: one reference price per brand and currency ---------------

SIX_CURRENCIES = {"USD": 160.0, "MXN": 2700.0, "BRL": 800.0, "EUR": 150.0, "JPY": 24000.0}
SIX_CURRENCIES["IDR"] = 2_500_000.0


def six_currency_catalog(path: Path) -> Path:
    lines = ["brand,reference_price,currency"]
    for brand, factor in (("Zentaro", 1.0), ("Kestrune", 3.0)):
        lines += [f"{brand},{price * factor:g},{cur}" for cur, price in SIX_CURRENCIES.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_six_currency_catalog_gives_each_listing_the_ratio_in_its_own_currency(
    tmp_path: Path,
) -> None:
    featurizer = catalog_featurizer(six_currency_catalog(tmp_path / "brands.csv"))
    assert len(featurizer.catalog) == 12
    assert featurizer.currencies == ("BRL", "EUR", "IDR", "JPY", "MXN", "USD")
    currencies = list(SIX_CURRENCIES)
    frame = pd.DataFrame(
        {
            "title": ["Zentaro runner"] * 6 + ["Kestrune tote"] * 6,
            "brand": ["Zentaro"] * 6 + ["Kestrune"] * 6,
            "currency": currencies * 2,
            # a fifth of the reference for Zentaro, double it for Kestrune, in every currency
            "price": [SIX_CURRENCIES[c] * 0.2 for c in currencies]
            + [SIX_CURRENCIES[c] * 3.0 * 2.0 for c in currencies],
        }
    )
    out = featurizer.transform(frame)
    np.testing.assert_allclose(out[:6, COL["price_log_ratio"]], math.log(0.2), atol=1e-6)
    np.testing.assert_allclose(out[6:, COL["price_log_ratio"]], math.log(2.0), atol=1e-6)
    assert (out[:, COL["price_ratio_missing"]] == 0.0).all()
    assert (out[:, COL["currency_mismatch"]] == 0.0).all()
    assert featurizer.reference_price("kestrune", "jpy") == 72000.0


def test_currency_outside_the_catalog_is_a_mismatch_for_a_multi_currency_brand(
    tmp_path: Path,
) -> None:
    featurizer = catalog_featurizer(six_currency_catalog(tmp_path / "brands.csv"))
    row = _one(featurizer, title="Zentaro", brand="Zentaro", price=100.0, currency="GBP")
    assert row["currency_mismatch"] == 1.0 and row["price_ratio_missing"] == 1.0
    assert row["price_log_ratio"] == 0.0
    no_currency = _one(featurizer, title="Zentaro", brand="Zentaro", price=100.0)
    assert no_currency["currency_mismatch"] == 1.0


def test_repeated_brand_and_currency_in_a_catalog_file_names_the_rows(tmp_path: Path) -> None:
    path = tmp_path / "brands.csv"
    path.write_text(
        "brand,reference_price,currency\nZentaro,160,USD\nZentaro,2700,MXN\nZentaro,150,USD\n"
    )
    with pytest.raises(ManifestError) as caught:
        catalog_featurizer(path)
    [problem] = caught.value.problems
    assert (problem.file, problem.row, problem.column) == (str(path), 3, "brand")
    assert "first seen at row 1 for currency 'USD'" in problem.reason


def test_featurizer_refuses_a_repeated_brand_and_currency_spelled_differently() -> None:
    with pytest.raises(ValueError, match=r"catalog\[1\].*repeats catalog\[0\]"):
        TabularFeaturizer(
            [CatalogEntry("Zentaro", 1.0, "USD"), CatalogEntry("ZENTARO", 2.0, "USD")]
        )
    both = TabularFeaturizer(
        [CatalogEntry("Zentaro", 1.0, "USD"), CatalogEntry("ZENTARO", 17.0, "MXN")]
    )
    assert both.reference_price("zentaro", "MXN") == 17.0


def test_version_1_dict_of_a_registered_model_still_loads_and_computes_the_same(featurizer) -> None:
    # exactly what ipguard wrote before catalogs could span currencies
    version_1 = {
        "format": "ipguard.tabular_featurizer",
        "version": 1,
        "feature_names": list(FEATURE_NAMES),
        "threshold": 0.8,
        "catalog": [
            {"brand": "Zentaro", "reference_price": 100.0, "currency": "USD"},
            {"brand": "Louis Vuittan", "reference_price": 1000.0, "currency": "EUR"},
            {"brand": "Nopricer", "reference_price": None, "currency": None},
        ],
    }
    restored = TabularFeaturizer.from_dict(version_1)
    assert restored == featurizer
    frame = pd.DataFrame(
        {
            "title": ["Zentaro x", "bag", "Zentaro", "Nopricer"],
            "brand": ["Zentaro", "Louis Vuittan", "Zentaro", "Nopricer"],
            "price": [5, 900, 1700, 5],
            "currency": ["USD", "EUR", "MXN", "USD"],
        }
    )
    np.testing.assert_array_equal(restored.transform(frame), featurizer.transform(frame))
    assert featurizer.to_dict()["version"] == 2
    with pytest.raises(ValueError, match="version 1 or 2"):
        TabularFeaturizer.from_dict(version_1 | {"version": 3})


def test_multi_currency_catalog_survives_the_json_round_trip(tmp_path: Path) -> None:
    featurizer = catalog_featurizer(six_currency_catalog(tmp_path / "brands.csv"))
    restored = TabularFeaturizer.from_dict(json.loads(json.dumps(featurizer.to_dict())))
    assert restored == featurizer
    assert restored.reference_price("Zentaro", "IDR") == 2_500_000.0


def test_semicolon_catalog_from_a_european_spreadsheet_reads_like_the_comma_one(
    tmp_path: Path,
) -> None:
    comma = six_currency_catalog(tmp_path / "comma.csv")
    semicolon = tmp_path / "semicolon.csv"
    semicolon.write_bytes(comma.read_text().replace(",", ";").encode("utf-8-sig"))
    assert catalog_featurizer(semicolon) == catalog_featurizer(comma)


def test_demo_multi_currency_catalog_gives_every_demo_listing_a_price_ratio(demo_small) -> None:
    featurizer = catalog_featurizer(demo_small.catalog_path)
    frame = pd.read_csv(demo_small.manifest_path)
    out = featurizer.transform(frame)
    assert frame["currency"].nunique() >= 5
    assert (out[:, COL["price_ratio_missing"]] == 0.0).all()
    assert (out[:, COL["currency_mismatch"]] == 0.0).all()
    # genuine listings sit near their own market's reference, whatever the currency
    genuine = frame["label"].eq("genuine").to_numpy()
    ratios = np.exp(out[genuine, COL["price_log_ratio"]])
    assert ratios.min() > 0.45 and ratios.max() < 1.3
