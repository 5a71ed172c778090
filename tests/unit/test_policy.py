"""The reject/review/approve policy: thresholds on hand-built data, ties, lanes, serialisation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipguard.evaluation.policy import (
    DECISIONS,
    Policy,
    check_scores_labels,
    fit_policy,
    fit_policy_from_settings,
    precision_lower_bound,
)


def _groups(*groups: tuple[float, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Build (scores, labels) from (score, n_infringing, n_genuine) groups, shuffled."""
    scores, labels = [], []
    for score, pos, neg in groups:
        scores += [score] * (pos + neg)
        labels += [1] * pos + [0] * neg
    order = np.random.default_rng(0).permutation(len(scores))
    return np.array(scores)[order], np.array(labels)[order]


# Precision of "score >= t": 0.95 -> 1/2, 0.9 -> 99/100, 0.8 -> 100/102 (0.9804),
# 0.7 -> 100/104, 0.5 -> 105/129, 0.2 -> 110/334. So 0.98 is first met at 0.9 going down but
# the LOWEST threshold meeting it is 0.8. Recall with 110 infringing: 0.8 -> 100/110 (0.909),
# 0.5 -> 105/110 (0.9545), 0.2 -> 1. So the highest threshold with recall >= 0.95 is 0.5.
KNOWN = _groups((0.95, 1, 1), (0.9, 98, 0), (0.8, 1, 1), (0.7, 0, 2), (0.5, 5, 20), (0.2, 5, 200))


def test_fit_policy_finds_the_hand_computed_thresholds():
    scores, labels = KNOWN
    policy = fit_policy(scores, labels, target_precision=0.98, target_recall=0.95)
    assert policy.reject_threshold == 0.8
    assert policy.approve_threshold == 0.5
    # 100 of 102 right meets 0.98 as an estimate, but not as evidence: the policy says so
    assert policy.reject_support == 102
    assert policy.precision_lower_bound == pytest.approx(0.93956, abs=1e-4)
    (note,) = policy.notes
    assert "102 listings (100 infringing)" in note and "lower bound is 0.940" in note


def test_reject_threshold_is_the_lowest_one_meeting_precision_even_when_precision_dips():
    scores, labels = KNOWN
    # At 0.95 precision is 0.5, so a search that stops at the first failure from the top
    # would find nothing; one that stops at the first success would return 0.9.
    policy = fit_policy(scores, labels, target_precision=0.98, target_recall=0.95)
    rejected = labels[scores >= policy.reject_threshold]
    assert rejected.mean() >= 0.98
    assert labels[scores >= 0.7].mean() < 0.98


def test_fitted_lanes_meet_both_targets_on_the_fitting_data():
    scores, labels = KNOWN
    policy = fit_policy(scores, labels, target_precision=0.98, target_recall=0.95)
    decisions = policy.decide(scores)
    assert labels[decisions == "reject"].mean() >= 0.98
    approved_infringing = labels[decisions == "approve"].sum() / labels.sum()
    assert approved_infringing <= 0.05


def test_tied_scores_are_never_split_between_lanes():
    # 50 infringing at 0.9; at 0.7 ten infringing tie with two genuine: 60/62 < 0.98, so the
    # threshold cannot drop to 0.7 even though a cut *inside* the tie would reach 60/60.
    scores, labels = _groups((0.9, 50, 0), (0.7, 10, 2), (0.5, 0, 5))
    policy = fit_policy(scores, labels, target_precision=0.98, target_recall=0.95)
    assert policy.reject_threshold == 0.9
    assert set(policy.decide(scores[scores == 0.7])) == {"review"}


def test_a_tie_with_one_genuine_listing_is_rejected_as_a_whole_when_precision_allows():
    scores, labels = _groups((0.9, 50, 0), (0.7, 10, 1), (0.5, 0, 5))
    policy = fit_policy(scores, labels, target_precision=0.98, target_recall=0.95)
    assert policy.reject_threshold == 0.7  # 60/61 = 0.9836
    assert set(policy.decide(scores[scores == 0.7])) == {"reject"}


def test_unreachable_precision_rejects_nothing_and_says_so():
    scores, labels = _groups((0.9, 3, 1), (0.6, 5, 5), (0.1, 1, 10))
    policy = fit_policy(scores, labels, target_precision=0.98, target_recall=0.9)
    assert policy.reject_threshold > scores.max()
    assert "reject" not in set(policy.decide(scores))
    assert any("unreachable" in note for note in policy.notes)
    assert policy.approve_threshold <= policy.reject_threshold


def _capacity_case() -> tuple[np.ndarray, np.ndarray]:
    scores = np.round(np.arange(100) / 100, 2)
    labels = np.zeros(100, dtype=int)
    labels[90:] = 1  # scores 0.90 .. 0.99 all infringing; 0.89 genuine
    labels[[50, 70]] = 1
    return scores, labels


def test_review_capacity_fills_the_review_lane_up_to_capacity():
    scores, labels = _capacity_case()
    policy = fit_policy(
        scores, labels, target_precision=1.0, target_recall=None, review_capacity=0.15
    )
    assert policy.reject_threshold == 0.9
    # Review lane [0.75, 0.90) holds exactly 15 of 100 listings; one step lower would be 16.
    assert policy.approve_threshold == 0.75
    decisions = policy.decide(scores)
    assert (decisions == "review").mean() == pytest.approx(0.15)


@pytest.mark.parametrize(("capacity", "expected_approve"), [(0.0, 0.9), (1.0, 0.0)])
def test_review_capacity_extremes_give_empty_or_full_review_lane(capacity, expected_approve):
    scores, labels = _capacity_case()
    policy = fit_policy(
        scores, labels, target_precision=1.0, target_recall=None, review_capacity=capacity
    )
    assert policy.approve_threshold == expected_approve


def test_fit_policy_requires_exactly_one_of_recall_and_capacity():
    scores, labels = KNOWN
    with pytest.raises(ValueError, match="exactly one"):
        fit_policy(scores, labels, target_recall=0.9, review_capacity=0.1)
    with pytest.raises(ValueError, match="exactly one"):
        fit_policy(scores, labels, target_recall=None)


def test_approve_threshold_is_clamped_to_reject_when_rejection_alone_meets_recall():
    scores, labels = _groups((0.9, 20, 0), (0.4, 0, 30))
    policy = fit_policy(scores, labels, target_precision=0.98, target_recall=0.95)
    assert policy.reject_threshold == 0.9
    assert policy.approve_threshold == 0.9
    assert "review" not in set(policy.decide(scores))


def test_fit_policy_accepts_manifest_string_labels():
    scores, labels = KNOWN
    names = np.where(labels == 1, "infringing", "genuine")
    assert fit_policy(scores, names) == fit_policy(scores, labels)


def test_fit_policy_names_the_row_of_a_nan_score():
    scores, labels = KNOWN
    scores = scores.copy()
    scores[7] = np.nan
    with pytest.raises(ValueError, match="row 7"):
        fit_policy(scores, labels)


def test_fit_policy_rejects_data_without_infringing_listings():
    with pytest.raises(ValueError, match="infringing"):
        fit_policy(np.array([0.1, 0.5]), np.array([0, 0]))


def test_decide_maps_scores_to_lanes_with_ge_semantics_and_nan_to_review():
    policy = Policy(reject_threshold=0.8, approve_threshold=0.3)
    decisions = policy.decide(np.array([0.9, 0.8, 0.5, 0.3, 0.29, np.nan]))
    assert decisions.dtype == object
    assert list(decisions) == ["reject", "reject", "review", "review", "approve", "review"]
    assert set(decisions) <= set(DECISIONS)


def test_policy_round_trips_through_json():
    scores, labels = _groups((0.9, 3, 1), (0.6, 5, 5), (0.1, 1, 10))
    policy = fit_policy(scores, labels, target_precision=0.98, target_recall=0.9)
    restored = Policy.from_dict(json.loads(json.dumps(policy.to_dict(), allow_nan=False)))
    assert restored == policy
    assert restored.notes  # the unreachable-precision warning survives


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reject_threshold": 0.3, "approve_threshold": 0.5}, "approve_threshold <= reject"),
        ({"reject_threshold": float("nan"), "approve_threshold": 0.1}, "reject_threshold"),
        ({"reject_threshold": 0.9, "approve_threshold": 0.1, "target_precision": 1.5}, "(0, 1]"),
        (
            {
                "reject_threshold": 0.9,
                "approve_threshold": 0.1,
                "target_recall": 0.9,
                "review_capacity": 0.1,
            },
            "at most one",
        ),
    ],
)
def test_policy_validation_names_the_offending_field(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("]", r"\]")):
        Policy(**kwargs)


def test_policy_from_dict_rejects_unknown_and_missing_keys():
    with pytest.raises(ValueError, match="threshhold"):
        Policy.from_dict({"reject_threshold": 0.9, "approve_threshold": 0.1, "threshhold": 1})
    with pytest.raises(ValueError, match="approve_threshold"):
        Policy.from_dict({"reject_threshold": 0.9})


def test_check_scores_labels_names_the_row_of_a_bad_label():
    with pytest.raises(ValueError, match=r"'fake'.*row 2"):
        check_scores_labels([0.1, 0.2, 0.3], ["genuine", "infringing", "fake"])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 20).map(lambda v: v / 20), st.booleans()),
        min_size=1,
        max_size=60,
    ).filter(lambda rows: any(label for _, label in rows)),
    st.sampled_from([0.5, 0.8, 0.95, 1.0]),
    st.sampled_from([0.5, 0.9, 1.0]),
)
def test_fitted_thresholds_are_optimal_among_observed_scores(rows, target_precision, target_recall):
    scores = np.array([s for s, _ in rows])
    labels = np.array([int(lab) for _, lab in rows])
    policy = fit_policy(
        scores, labels, target_precision=target_precision, target_recall=target_recall
    )
    meets = [t for t in np.unique(scores) if labels[scores >= t].mean() >= target_precision]
    if meets:
        assert policy.reject_threshold == min(meets)
    else:
        assert policy.reject_threshold > scores.max()
    recall_ok = [
        t for t in np.unique(scores) if labels[scores >= t].sum() / labels.sum() >= target_recall
    ]
    assert policy.approve_threshold == min(max(recall_ok), policy.reject_threshold)


def test_precision_lower_bound_is_the_exact_clopper_pearson_bound():
    from scipy.stats import binom

    # all right: the bound solves p**n = 1 - confidence
    assert float(precision_lower_bound(35, 35)) == pytest.approx(0.05 ** (1 / 35))
    assert float(precision_lower_bound(35, 35, confidence=0.9)) == pytest.approx(0.1 ** (1 / 35))
    # some wrong: P(X >= k | n, bound) is exactly 1 - confidence
    for k, n in ((100, 102), (240, 242), (7, 20)):
        bound = float(precision_lower_bound(k, n))
        assert 0 < bound < k / n
        assert binom.sf(k - 1, n, bound) == pytest.approx(0.05, abs=1e-9)
    assert float(precision_lower_bound(0, 10)) == 0.0


def test_confidence_moves_the_reject_threshold_up_to_where_precision_is_proven():
    # 0.9 -> 240/242 (0.992, lower bound 0.974); 0.99 -> 200/200 (lower bound 0.985)
    scores, labels = _groups((0.99, 200, 0), (0.9, 40, 2), (0.3, 5, 300))
    estimated = fit_policy(scores, labels, target_precision=0.98, target_recall=0.95)
    proven = fit_policy(scores, labels, target_precision=0.98, target_recall=0.95, confidence=0.95)
    assert estimated.reject_threshold == 0.9
    assert proven.reject_threshold == 0.99
    assert proven.confidence == 0.95
    assert proven.reject_support == 200 and proven.precision_lower_bound >= 0.98
    assert proven.notes == ()


def test_confidence_that_the_data_cannot_give_rejects_nothing_and_says_why():
    scores, labels = _groups((0.9, 35, 0), (0.1, 0, 100))
    assert fit_policy(scores, labels, target_precision=0.98).reject_threshold == 0.9
    policy = fit_policy(scores, labels, target_precision=0.98, confidence=0.95)
    assert (policy.decide(scores) != "reject").all()
    assert policy.reject_support == 0 and policy.precision_lower_bound is None
    assert any("unreachable with 95% confidence" in note for note in policy.notes)


def test_confidence_outside_zero_one_is_refused():
    scores, labels = KNOWN
    with pytest.raises(ValueError, match="confidence in \\(0, 1\\)"):
        fit_policy(scores, labels, confidence=1.0)


def test_policy_stored_before_the_evidence_fields_still_loads():
    old = {"reject_threshold": 0.9, "approve_threshold": 0.2, "target_precision": 0.98}
    policy = Policy.from_dict(old)
    assert policy.confidence is None and policy.reject_support is None


def test_settings_of_a_config_section_reach_the_fit():
    scores, labels = _groups((0.99, 200, 0), (0.9, 40, 2), (0.3, 5, 300))
    section = {"target_precision": 0.98, "target_recall": 0.95, "review_capacity": None}
    assert fit_policy_from_settings(scores, labels, section).reject_threshold == 0.9
    section["confidence"] = 0.95
    assert fit_policy_from_settings(scores, labels, section).reject_threshold == 0.99
