"""BrandMatcher finds catalog brands, measures how hard they were disguised, and serialises."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ipguard.text.features import FEATURE_DIM, FEATURE_NAMES, BrandMatcher

CATALOG = ["Gucci", "Louis Vuitton", "Nike", "Rolex", "Hermès", "Chanel"]


@pytest.fixture(scope="module")
def matcher() -> BrandMatcher:
    return BrandMatcher(CATALOG)


def test_verbatim_brand_is_found_with_no_disguise(matcher: BrandMatcher) -> None:
    mention = matcher.match("GUCCI Marmont shoulder bag, leather")
    assert mention.brand == "Gucci"
    assert mention.score == 1.0
    assert mention.exact_raw and not mention.exact_normalised
    assert mention.disguise == 0.0


@pytest.mark.parametrize(
    "title",
    ["Guссi Marmont bag", "G.u.c.c.i Marmont bag", "Ｇｕｃｃｉ Marmont bag", "Gu\u200bcci Marmont"],
)
def test_disguised_brand_is_found_with_positive_disguise(matcher: BrandMatcher, title: str) -> None:
    mention = matcher.match(title)
    assert mention.brand == "Gucci"
    assert not mention.exact_raw
    assert mention.exact_normalised
    assert 0.0 < mention.disguise < 1.0


def test_digit_at_word_edge_is_matched_fuzzily_not_verbatim(matcher: BrandMatcher) -> None:
    mention = matcher.match("Nik3 air max 90")
    assert mention.brand == "Nike"
    assert not mention.exact_raw and not mention.exact_normalised
    assert mention.disguise > 0.0


def test_near_miss_spelling_scores_below_one_and_is_more_disguised(
    matcher: BrandMatcher,
) -> None:
    exact = matcher.match("Guссi belt")
    fuzzy = matcher.match("Guccl belt")
    assert fuzzy.brand == "Gucci"
    assert fuzzy.score < 1.0
    assert fuzzy.disguise > exact.disguise


def test_multi_word_brand_is_found_with_words_run_together(matcher: BrandMatcher) -> None:
    assert matcher.match("LouisVuitton Neverfull MM").brand == "Louis Vuitton"
    assert matcher.match("louis  vuitton neverfull").exact_raw


def test_accents_are_ignored_when_matching(matcher: BrandMatcher) -> None:
    assert matcher.match("Hermes Birkin 30").brand == "Hermès"


@pytest.mark.parametrize("text", ["Blue cotton t-shirt, size M", "unlike any other", None, ""])
def test_unrelated_text_finds_no_brand(matcher: BrandMatcher, text: str | None) -> None:
    mention = matcher.match(text)
    assert mention.brand is None
    assert not mention.found
    assert mention.disguise == 1.0
    assert mention.score < matcher.threshold


def test_feature_rows_agree_with_match(matcher: BrandMatcher) -> None:
    texts = ["Gucci bag", "Guссi bag", "plain shirt", None]
    features = matcher.features(texts)
    assert features.shape == (4, FEATURE_DIM) and features.dtype == np.float32
    assert matcher.FEATURE_NAMES == FEATURE_NAMES
    for row, text in zip(features, texts, strict=True):
        mention = matcher.match(text)
        expected = [
            mention.score,
            mention.exact_raw,
            mention.exact_normalised,
            mention.disguise,
            mention.found,
        ]
        np.testing.assert_allclose(row, expected, rtol=1e-6)
    assert features[0, FEATURE_NAMES.index("brand_found")] == 1.0
    assert features[2, FEATURE_NAMES.index("brand_found")] == 0.0


def test_to_dict_round_trips_through_json(matcher: BrandMatcher) -> None:
    restored = BrandMatcher.from_dict(json.loads(json.dumps(matcher.to_dict())))
    assert restored == matcher
    texts = ["Guссi bag", "Rolex datejust", "nothing here"]
    np.testing.assert_array_equal(restored.features(texts), matcher.features(texts))


def test_threshold_controls_what_counts_as_found() -> None:
    strict = BrandMatcher(CATALOG, threshold=1.0)
    lenient = BrandMatcher(CATALOG, threshold=0.75)
    assert strict.match("Guccl belt").brand is None
    assert lenient.match("Guccl belt").brand == "Gucci"


def test_empty_catalog_is_rejected() -> None:
    with pytest.raises(ValueError, match="empty catalog"):
        BrandMatcher([])


def test_brands_that_normalise_alike_are_rejected_with_both_positions() -> None:
    with pytest.raises(ValueError, match=r"brands\[1\].*brands\[0\]"):
        BrandMatcher(["Gucci", "GUCCI"])


def test_brand_without_letters_is_rejected_with_its_position() -> None:
    with pytest.raises(ValueError, match=r"brands\[1\]"):
        BrandMatcher(["Gucci", "™"])


@pytest.mark.parametrize("threshold", [0.0, 1.5, -0.1])
def test_threshold_outside_unit_interval_is_rejected(threshold: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        BrandMatcher(CATALOG, threshold=threshold)


def test_from_dict_rejects_a_foreign_dict() -> None:
    with pytest.raises(ValueError, match="format"):
        BrandMatcher.from_dict({"brands": ["Gucci"], "threshold": 0.8})
