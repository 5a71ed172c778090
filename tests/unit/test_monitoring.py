"""Reference profiles and drift checks on generated traffic: shifts caught, fresh draws quiet.

The traffic here is drawn independently per row from one fixed marketplace (markets with their
language and currency, categories with their price levels, titles of varying length, scores
that depend on a counterfeit cue), so two seeds differ by chance alone; each injected shift
changes one thing and must be caught by the check made for it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ipguard.monitoring import PROFILE_FILE, Profile, Thresholds, build_profile, compare, psi
from ipguard.monitoring.profile import load_profile

POLICY = {"reject_threshold": 0.8, "approve_threshold": 0.3}
MARKETS = {"US": ("en", "USD", 0.35), "DE": ("de", "EUR", 0.25), "JP": ("ja", "JPY", 0.2),
           "BR": ("pt", "BRL", 0.2)}  # fmt: skip
CATEGORIES = {"watches": 300.0, "sneakers": 120.0, "perfume": 80.0}
RATES = {"USD": 1.0, "EUR": 0.9, "JPY": 150.0, "BRL": 5.0}
WORDS = ["original", "new", "leather", "classic", "sale", "box", "gift", "edition", "black"]


def draw_traffic(n: int, seed: int) -> pd.DataFrame:
    """``n`` scored listings as ipguard-score writes them with the request columns kept."""
    rng = np.random.default_rng(seed)
    markets = rng.choice(list(MARKETS), n, p=[m[2] for m in MARKETS.values()])
    categories = rng.choice(list(CATEGORIES), n)
    fake = rng.random(n) < 0.3
    currencies = [MARKETS[m][1] for m in markets]
    base = np.asarray(
        [CATEGORIES[c] * RATES[cur] for c, cur in zip(categories, currencies, strict=True)]
    )
    prices = base * rng.lognormal(0, 0.2, n) * np.where(fake, 0.4, 1.0)
    titles = [" ".join(rng.choice(WORDS, rng.integers(3, 9))) for _ in range(n)]
    scores = np.clip(np.where(fake, rng.beta(5, 2, n), rng.beta(2, 5, n)), 0, 1)
    decisions = np.where(scores >= 0.8, "reject", np.where(scores < 0.3, "approve", "review"))
    flags = np.where(rng.random(n) < 0.05, "image_missing", "")
    return pd.DataFrame({
        "listing_id": [f"L{seed}-{i}" for i in range(n)], "score": scores,
        "decision": decisions, "flags": flags, "model_version": "1", "title": titles,
        "description": "", "brand": "Acme", "category": categories, "market": markets,
        "language": [MARKETS[m][0] for m in markets], "price": prices, "currency": currencies,
    })  # fmt: skip


@pytest.fixture(scope="module")
def profile() -> Profile:
    return build_profile(draw_traffic(3000, seed=1), policy=POLICY, source="validation split")


def _alerts(profile: Profile, traffic: pd.DataFrame, **thresholds: float) -> list[str]:
    checks = compare(profile, traffic, Thresholds(**thresholds))
    return [f"{c.check}:{c.feature}@{c.where}" for c in checks if c.drifted]


def test_profile_is_small_versioned_json_that_reads_back(tmp_path: Path, profile: Profile) -> None:
    path = profile.save(tmp_path)
    assert path.name == PROFILE_FILE
    assert path.stat().st_size < 64_000  # kilobytes for 3,000 rows: samples are bounded
    data = json.loads(path.read_text())
    assert data["schema_version"] == 1
    assert len(data["numeric"]["score"]["sample"]) == 500
    again = load_profile(tmp_path)
    assert again == profile
    assert sum(again.lanes.values()) == 3000 == again.rows
    assert set(again.slices) == {"market", "language", "category"}
    assert again.categorical["market"]["US"] == again.slices["market"]["US"].rows


def test_a_model_without_a_profile_reads_as_none(tmp_path: Path) -> None:
    assert load_profile(tmp_path) is None


def test_a_profile_of_another_schema_version_is_refused(tmp_path: Path, profile: Profile) -> None:
    data = profile.to_dict() | {"schema_version": 99}
    (tmp_path / PROFILE_FILE).write_text(json.dumps(data))
    with pytest.raises(ValueError, match="schema_version 99"):
        load_profile(tmp_path)


def test_a_fresh_draw_of_the_same_traffic_raises_no_alert(profile: Profile) -> None:
    for seed in (2, 3, 4):
        assert _alerts(profile, draw_traffic(3000, seed)) == []


def test_a_new_market_is_a_finding(profile: Profile) -> None:
    traffic = draw_traffic(3000, seed=2)
    traffic.loc[traffic.index % 10 == 0, ["market", "currency"]] = ["KR", "KRW"]
    alerts = _alerts(profile, traffic)
    assert "new_value:market@overall" in alerts
    assert "new_value:currency@overall" in alerts


def test_a_few_rows_of_a_new_value_do_not_alarm(profile: Profile) -> None:
    traffic = draw_traffic(3000, seed=2)
    traffic.loc[:2, "category"] = "drones"  # 3 rows, under new_value_rows
    assert _alerts(profile, traffic) == []


def test_a_price_level_change_moves_the_price_ratio(profile: Profile) -> None:
    traffic = draw_traffic(3000, seed=2)
    traffic["price"] *= 0.6
    alerts = _alerts(profile, traffic)
    assert "feature_psi:price_ratio@overall" in alerts
    assert "feature_psi:price_ratio@market=US" in alerts  # and in each big enough slice
    assert not [a for a in alerts if "text_length" in a or a.startswith("score_psi")]


def test_a_new_counterfeit_wording_moves_text_length_scores_and_lanes(profile: Profile) -> None:
    traffic = draw_traffic(3000, seed=2)
    worded = traffic.index % 2 == 0
    traffic.loc[worded, "title"] += " 1:1 mirror replica AAA grade, factory direct"
    traffic.loc[worded, "score"] = np.clip(traffic.loc[worded, "score"] + 0.3, 0, 1)
    s = traffic["score"]
    traffic["decision"] = np.where(s >= 0.8, "reject", np.where(s < 0.3, "approve", "review"))
    alerts = _alerts(profile, traffic)
    assert {"feature_psi:text_length@overall", "score_psi:score@overall"} <= set(alerts)
    assert "lane_rate:reject@overall" in alerts
    assert "feature_psi:price_ratio@overall" not in alerts


def test_slices_under_min_rows_are_reported_but_never_alarm(profile: Profile) -> None:
    traffic = draw_traffic(3000, seed=2)
    br = traffic["market"] == "BR"
    traffic.loc[br, "price"] *= 0.3  # a big shift, but only in a slice we make too small
    checks = compare(profile, traffic, Thresholds(min_rows=10_000))
    skipped = [c for c in checks if c.check == "slice"]
    assert {c.where for c in skipped} >= {"market=BR", "market=US", "category=watches"}
    assert not any(c.drifted for c in skipped)
    assert not [c for c in checks if c.slice_column and c.check != "slice"]


def test_missing_values_are_a_bin_of_their_own(profile: Profile) -> None:
    traffic = draw_traffic(3000, seed=2)
    traffic.loc[traffic.index % 3 == 0, "price"] = np.nan
    assert "feature_psi:price_ratio@overall" in _alerts(profile, traffic)


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift() -> None:
    assert psi([100, 200, 300], [10, 20, 30]) == pytest.approx(0.0, abs=1e-3)
    assert psi([100, 100], [50, 150]) < psi([100, 100], [20, 180])


def test_thresholds_refuse_a_negative_value() -> None:
    with pytest.raises(ValueError, match=r"thresholds\.score_psi"):
        Thresholds(score_psi=-1)


def test_profile_without_model_outputs_is_refused() -> None:
    with pytest.raises(ValueError, match=r"missing column\(s\) \['decision'\]"):
        build_profile(draw_traffic(10, 1).drop(columns="decision"), policy=POLICY, source="x")


def test_fewer_listings_with_a_photo_is_a_flag_share_finding(profile: Profile) -> None:
    traffic = draw_traffic(3000, seed=2)
    traffic.loc[traffic.index % 4 == 0, "flags"] = "image_missing"  # 5% -> about 29%
    alerts = _alerts(profile, traffic)
    assert "flag_share:image_missing@overall" in alerts
    assert "flag_share:any@overall" in alerts


def test_new_words_of_the_same_length_move_unknown_words_not_text_length(
    profile: Profile,
) -> None:
    traffic = draw_traffic(3000, seed=2)
    swap = {"original": "replicaa", "leather": "mirrors", "classic": "copyAAA"}  # same lengths
    traffic["title"] = [" ".join(swap.get(w, w) for w in t.split()) for t in traffic["title"]]
    alerts = _alerts(profile, traffic)
    assert "feature_psi:unknown_words@overall" in alerts
    assert "feature_psi:text_length@overall" not in alerts
    assert set(profile.vocabulary) == set(WORDS)


def test_a_window_derived_once_gives_every_consumer_the_same_values(profile: Profile) -> None:
    from ipguard.monitoring.drift import compared_columns
    from ipguard.monitoring.evidently_report import traffic_frame
    from ipguard.monitoring.window import TrafficWindow

    traffic = draw_traffic(900, seed=21)
    traffic["price"] = traffic["price"] * 0.5  # a price level change: findings to compare
    numeric, categorical = compared_columns(profile, [*profile.features, "flags"])
    window = TrafficWindow.of(traffic.iloc[::-1], profile, numeric, categorical)  # any index
    assert len(window) == len(traffic)
    from_frame = [c.to_dict() for c in compare(profile, traffic.iloc[::-1], Thresholds())]
    assert [c.to_dict() for c in compare(profile, window, Thresholds())] == from_frame
    assert any(c["drifted"] for c in from_frame)  # a comparison of findings, not of nothing
    columns = [*numeric, *categorical, "decision"]
    pd.testing.assert_frame_equal(
        window.values_frame(columns), traffic_frame(traffic.iloc[::-1], profile, columns)
    )
    with pytest.raises(KeyError, match="was not derived"):
        window.values_frame(["seller_id"])
