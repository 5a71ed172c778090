"""Per-slice metrics: counts, missing values, skipped columns, infringement types."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ipguard.evaluation.policy import Policy
from ipguard.evaluation.slices import MISSING, SLICE_COLUMNS, sliced_metrics

POLICY = Policy(reject_threshold=0.7, approve_threshold=0.4)


def _frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.3).astype(int)
    types = np.where(labels == 1, rng.choice(["counterfeit", "logo_misuse", None], n), None)
    return pd.DataFrame(
        {
            "score": np.clip(rng.normal(0.35 + 0.3 * labels, 0.15), 0, 1),
            "label": labels,
            "brand": rng.choice(["Acme", "Borealis", "Cobalt", None], n),
            "market": rng.choice(["US", "MX", "BR"], n),
            "infringement_type": types,
        }
    )


def test_slice_counts_add_up_to_the_whole_frame_for_each_column():
    frame = _frame()
    result = sliced_metrics(frame, policy=POLICY)
    for column in ("brand", "market"):
        rows = result[result["column"] == column]
        assert rows["n"].sum() == len(frame)
        assert rows["positives"].sum() == frame["label"].sum()


def test_missing_values_form_their_own_slice():
    frame = _frame()
    result = sliced_metrics(frame, columns=["brand"])
    missing = result[result["value"] == MISSING]
    assert len(missing) == 1
    assert missing["n"].item() == frame["brand"].isna().sum()


def test_absent_columns_are_skipped_and_listed():
    result = sliced_metrics(_frame(), policy=POLICY)
    assert result.attrs["skipped"] == ["category", "language"]
    assert set(result["column"]) == {"brand", "market", "infringement_type"}
    assert tuple(SLICE_COLUMNS) == (
        "brand",
        "category",
        "market",
        "language",
        "infringement_type",
    )


def test_infringement_type_slices_hold_that_types_positives_plus_all_genuine_listings():
    frame = _frame()
    negatives = int((frame["label"] == 0).sum())
    result = sliced_metrics(frame, columns=["infringement_type"], policy=POLICY)
    positives = frame[frame["label"] == 1]
    for row in result.itertuples():
        of_type = positives["infringement_type"].fillna(MISSING) == row.value
        assert row.positives == of_type.sum()
        assert row.n == of_type.sum() + negatives
        assert not np.isnan(row.auroc)  # both classes present in every type slice
    assert result["positives"].sum() == len(positives)


def test_string_labels_give_the_same_slices_as_integer_labels():
    frame = _frame()
    named = frame.assign(label=np.where(frame["label"] == 1, "infringing", "genuine"))
    pd.testing.assert_frame_equal(
        sliced_metrics(frame, policy=POLICY), sliced_metrics(named, policy=POLICY)
    )


def test_slice_metrics_equal_metrics_computed_on_the_slice_alone():
    frame = _frame()
    result = sliced_metrics(frame, policy=POLICY, columns=["market"])
    us = frame[frame["market"] == "US"]
    row = result[result["value"] == "US"].iloc[0]
    rejected = us["score"] >= POLICY.reject_threshold
    assert row["share_reject"] == pytest.approx(rejected.mean())
    assert row["recall_at_reject"] == pytest.approx(
        (rejected & (us["label"] == 1)).sum() / us["label"].sum()
    )


def test_slices_smaller_than_min_count_are_recorded_not_silently_dropped():
    frame = _frame().assign(category=["rare"] * 3 + ["common"] * 297)
    result = sliced_metrics(frame, columns=["category"], min_count=10)
    assert list(result["value"]) == ["common"]
    assert result.attrs["below_min_count"] == [("category", "rare", 3)]


def test_without_a_policy_the_lane_columns_are_nan():
    result = sliced_metrics(_frame(), columns=["market"])
    assert result["share_reject"].isna().all()
    assert result["auroc"].notna().all()


def test_a_single_class_slice_gives_nan_auroc_not_an_error():
    frame = _frame().assign(market="US")
    frame.loc[frame["label"] == 1, "market"] = "MX"
    result = sliced_metrics(frame, columns=["market"]).set_index("value")
    assert np.isnan(result.loc["US", "auroc"])
    assert np.isnan(result.loc["MX", "auroc"])


def test_missing_score_column_is_reported_with_the_columns_found():
    with pytest.raises(ValueError, match=r"'score'.*label"):
        sliced_metrics(pd.DataFrame({"label": [0, 1], "brand": ["a", "b"]}))
