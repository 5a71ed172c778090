"""The reject/review/approve policy: thresholds on hand-built data, ties, lanes, serialisation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipguard.evaluation.policy import DECISIONS, Policy, check_scores_labels, fit_policy


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
    assert policy.notes == ()


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
