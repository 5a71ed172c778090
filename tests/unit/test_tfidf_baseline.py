"""The TF-IDF baseline separates cue-laden titles, ignores disguises and saves without pickle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from ipguard.models.baselines import TRUSTED_TYPES, TfidfTextModel, build_tfidf_pipeline

PRODUCTS = ["handbag", "wallet", "sneakers", "watch", "belt", "sunglasses", "scarf", "backpack"]
BRANDS = ["Gucci", "Nike", "Rolex", "Prada", "Chanel"]
COUNTERFEIT_CUES = [
    "1:1 replica",
    "AAA quality",
    "mirror quality",
    "dupe",
    "super copy",
    "high copy",
]
GENUINE_CUES = ["authentic", "with receipt", "original box", "official store", "certified", "new"]
SMALL = {"max_features": 5000, "C": 4.0, "seed": 0}


def _listings(n: int, seed: int) -> tuple[list[str], list[str | None], np.ndarray]:
    """Synthetic titles: infringing ones carry a counterfeit cue, genuine ones do not."""
    rng = np.random.default_rng(seed)
    titles, descriptions, labels = [], [], []
    for _ in range(n):
        infringing = int(rng.random() < 0.4)
        cues = COUNTERFEIT_CUES if infringing else GENUINE_CUES
        words = [rng.choice(BRANDS), rng.choice(PRODUCTS), rng.choice(cues)]
        rng.shuffle(words)
        titles.append(" ".join(str(w) for w in words))
        descriptions.append(None if rng.random() < 0.5 else f"{rng.choice(PRODUCTS)} in stock")
        labels.append(infringing)
    return titles, descriptions, np.array(labels)


@pytest.fixture(scope="module")
def fitted() -> TfidfTextModel:
    titles, descriptions, labels = _listings(160, seed=1)
    return TfidfTextModel(**SMALL).fit(titles, descriptions, labels)


def test_fitted_model_separates_held_out_listings(fitted: TfidfTextModel) -> None:
    titles, descriptions, labels = _listings(80, seed=2)
    scores = fitted.predict_proba(titles, descriptions)
    assert scores.dtype == np.float64 and scores.shape == (80,)
    assert np.all((scores >= 0) & (scores <= 1))
    assert roc_auc_score(labels, scores) > 0.95


def test_homoglyph_title_scores_like_its_clean_form(fitted: TfidfTextModel) -> None:
    clean = ["Gucci handbag 1:1 replica", "Rolex watch original box"]
    disguised = ["Guссi handbag 1:1 rерlica", "RΟLΕX wаtch оriginal bох"]
    np.testing.assert_allclose(
        fitted.predict_proba(disguised, None), fitted.predict_proba(clean, None), atol=1e-6
    )


def test_save_and_load_give_identical_probabilities(fitted: TfidfTextModel, tmp_path: Path) -> None:
    path = fitted.save(tmp_path / "text" / "tfidf.skops")
    assert path.suffix == ".skops" and path.is_file()
    titles, descriptions, _ = _listings(20, seed=3)
    restored = TfidfTextModel.load(path)
    np.testing.assert_array_equal(
        restored.predict_proba(titles, descriptions), fitted.predict_proba(titles, descriptions)
    )


def test_saved_file_needs_nothing_beyond_the_trusted_list(
    fitted: TfidfTextModel, tmp_path: Path
) -> None:
    path = fitted.save(tmp_path / "tfidf.skops")
    untrusted = sio.get_untrusted_types(file=path)
    assert set(untrusted) - set(TRUSTED_TYPES) == set()
    assert all(
        name.split(".")[0] in {"sklearn", "numpy", "scipy", "ipguard"} for name in TRUSTED_TYPES
    )


def _foreign_preprocessing(texts: list[str]) -> list[str]:
    return list(texts)


def test_file_with_an_untrusted_function_is_refused(tmp_path: Path) -> None:
    pipeline = Pipeline([("prep", FunctionTransformer(_foreign_preprocessing))])
    path = tmp_path / "foreign.skops"
    sio.dump(pipeline, path)
    with pytest.raises(ValueError, match="_foreign_preprocessing"):
        TfidfTextModel.load(path)


def test_pipeline_normalises_its_input_itself() -> None:
    titles, _, labels = _listings(60, seed=4)
    pipeline = build_tfidf_pipeline(**SMALL).fit(titles, labels)
    assert pipeline.steps[0][0] == "normalize"
    np.testing.assert_allclose(
        pipeline.predict_proba(["Ｇｕｃｃｉ wallet dupe"]),
        pipeline.predict_proba(["gucci wallet dupe"]),
        atol=1e-12,
    )


def test_single_class_labels_are_rejected_saying_so() -> None:
    titles, descriptions, _ = _listings(20, seed=5)
    with pytest.raises(ValueError, match="only class 1"):
        TfidfTextModel(**SMALL).fit(titles, descriptions, np.ones(20, dtype=int))


def test_labels_other_than_zero_and_one_are_rejected_with_their_row() -> None:
    titles, descriptions, labels = _listings(20, seed=5)
    labels[7] = 2
    with pytest.raises(ValueError, match="row 7"):
        TfidfTextModel(**SMALL).fit(titles, descriptions, labels)


def test_mostly_empty_texts_are_rejected_with_their_count() -> None:
    titles, _, labels = _listings(10, seed=6)
    blanked = [None, "", "🔥🔥", "\u200b", "   ", "✨", *titles[6:]]
    with pytest.raises(ValueError, match="6 of 10 empty"):
        TfidfTextModel(**SMALL).fit(blanked, None, labels)


def test_descriptions_must_match_titles_in_length() -> None:
    with pytest.raises(ValueError, match="one per title"):
        TfidfTextModel(**SMALL).fit(["a b", "c d"], ["only one"], np.array([0, 1]))


def test_scoring_before_fitting_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="fit"):
        TfidfTextModel(**SMALL).predict_proba(["gucci"], None)
