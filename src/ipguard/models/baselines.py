"""TF-IDF + logistic regression: the text baseline every neural text model has to beat.

It trains in seconds on a CPU, needs no GPU and no pretrained weights, and its word and
character n-gram weights are readable evidence ("replica", "1:1", "aaa"). The pipeline takes
listing texts (``text_of(title, description)``) and normalises them itself through a
module-level function, so the saved ``.skops`` file carries its preprocessing and serving
cannot forget it.

Only the normalised text is vectorised, not the raw text: a score must not move when a
seller swaps letters for look-alikes, and the disguise itself is measured separately by
:class:`ipguard.text.features.BrandMatcher` for the fused model.

Models are saved with skops, never pickle, and loaded against an explicit list of trusted
types (scikit-learn, NumPy, SciPy and this module's preprocessing function); a file that
needs anything else is refused before it is loaded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import skops.io as sio
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer

from ipguard.text.normalization import normalize, text_of

__all__ = [
    "MAX_EMPTY_FRACTION",
    "TRUSTED_TYPES",
    "TfidfTextModel",
    "build_tfidf_pipeline",
    "normalize_texts",
]

#: Training refuses data where more than this fraction of texts is empty after normalisation:
#: such a model would learn "empty means genuine" (or the opposite) rather than the text.
MAX_EMPTY_FRACTION = 0.5

# Words as runs of word characters, keeping "1:1", "42mm", "t-shirt" and "1.5" whole: the
# default pattern drops single characters and splits "1:1" into nothing.
_WORD_PATTERN = r"(?u)\w+(?:[:./\-]\w+)*"


def normalize_texts(texts: Iterable[object]) -> list[str]:
    """Normalise a batch of listing texts; the pipeline's first step.

    Module-level (not a lambda) so skops can store it by name and trust it explicitly.
    """
    return [normalize(text) for text in np.asarray(texts, dtype=object).ravel()]  # type: ignore[arg-type]


#: Everything a saved TF-IDF model may contain. Checked against
#: ``skops.io.get_untrusted_types`` before loading; anything outside it is refused.
TRUSTED_TYPES: tuple[str, ...] = (
    "ipguard.models.baselines.normalize_texts",
    "numpy.float64",
    "numpy.int64",
    "sklearn.feature_extraction.text.TfidfTransformer",
    "sklearn.feature_extraction.text.TfidfVectorizer",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.pipeline.FeatureUnion",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._function_transformer.FunctionTransformer",
)


def build_tfidf_pipeline(*, max_features: int = 200_000, C: float = 4.0, seed: int = 0) -> Pipeline:
    """Normalise -> word (1-2) and char_wb (2-5) TF-IDF -> balanced logistic regression.

    ``max_features`` caps the two vocabularies together (half each). ``class_weight=
    "balanced"`` because infringing listings are usually the minority and the operating
    point is chosen later on calibrated scores, not at 0.5.
    """
    if max_features < 2:
        raise ValueError(f"max_features: expected at least 2, found {max_features}")
    if C <= 0:
        raise ValueError(f"C: expected a positive regularisation strength, found {C}")
    per_vectoriser = max_features // 2
    features = FeatureUnion(
        [
            (
                "word",
                TfidfVectorizer(
                    analyzer="word",
                    ngram_range=(1, 2),
                    token_pattern=_WORD_PATTERN,
                    lowercase=False,  # normalize() has case-folded already
                    sublinear_tf=True,
                    max_features=per_vectoriser,
                    dtype=np.float64,
                ),
            ),
            (
                "char",
                TfidfVectorizer(
                    analyzer="char_wb",
                    ngram_range=(2, 5),
                    lowercase=False,
                    sublinear_tf=True,
                    max_features=per_vectoriser,
                    dtype=np.float64,
                ),
            ),
        ]
    )
    return Pipeline(
        [
            ("normalize", FunctionTransformer(normalize_texts, validate=False)),
            ("features", features),
            (
                "classifier",
                LogisticRegression(C=C, class_weight="balanced", max_iter=2000, random_state=seed),
            ),
        ]
    )


def _listing_texts(
    titles: Sequence[str | None], descriptions: Sequence[str | None] | None
) -> list[str]:
    titles = list(titles)
    if descriptions is None:
        descriptions = [None] * len(titles)
    descriptions = list(descriptions)
    if len(descriptions) != len(titles):
        raise ValueError(
            f"descriptions: expected one per title ({len(titles)}), found {len(descriptions)}"
        )
    return [
        text_of(title, description) for title, description in zip(titles, descriptions, strict=True)
    ]


def _check_labels(labels: np.ndarray, n_texts: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != n_texts:
        raise ValueError(
            f"labels: expected a 1-d array with one label per listing ({n_texts}), "
            f"found shape {labels.shape}"
        )
    invalid = ~np.isin(labels, (0, 1))
    if invalid.any():
        row = int(np.flatnonzero(invalid)[0])
        raise ValueError(
            f"labels: expected 0 (genuine) or 1 (infringing), found {labels[row]!r} at row {row}"
        )
    classes = np.unique(labels)
    if len(classes) < 2:
        raise ValueError(
            f"labels: expected both classes (0 genuine, 1 infringing), found only class "
            f"{int(classes[0])} in all {n_texts} rows"
        )
    return labels.astype(np.int64)


class TfidfTextModel:
    """Fit, score, save and load the TF-IDF baseline on listing titles and descriptions."""

    def __init__(self, *, max_features: int = 200_000, C: float = 4.0, seed: int = 0) -> None:
        self.pipeline: Pipeline = build_tfidf_pipeline(max_features=max_features, C=C, seed=seed)
        self._fitted = False

    def fit(
        self,
        titles: Sequence[str | None],
        descriptions: Sequence[str | None] | None,
        labels: np.ndarray,
    ) -> TfidfTextModel:
        """Train on listings; ``labels`` are 0 (genuine) / 1 (infringing)."""
        texts = _listing_texts(titles, descriptions)
        if not texts:
            raise ValueError("titles: expected at least one listing to train on, found none")
        y = _check_labels(labels, len(texts))
        # Normalise once: the emptiness check and the vectorisers both need the result.
        normalise_step = self.pipeline.steps[0][1].fit(texts)
        normalised = normalise_step.transform(texts)
        empty = sum(1 for text in normalised if not text)
        if empty > MAX_EMPTY_FRACTION * len(texts):
            raise ValueError(
                f"titles/descriptions: expected at most {MAX_EMPTY_FRACTION:.0%} empty texts "
                f"after normalisation, found {empty} of {len(texts)} empty"
            )
        self.pipeline[1:].fit(normalised, y)  # the slice shares (and fits) the same steps
        self._fitted = True
        return self

    def predict_proba(
        self, titles: Sequence[str | None], descriptions: Sequence[str | None] | None
    ) -> np.ndarray:
        """P(infringing) per listing, float64 of shape ``(n,)``."""
        if not self._fitted:
            raise RuntimeError("TfidfTextModel: call fit() or load() before predict_proba()")
        texts = _listing_texts(titles, descriptions)
        if not texts:
            return np.zeros(0, dtype=np.float64)
        classes = list(self.pipeline.classes_)
        probabilities = self.pipeline.predict_proba(texts)
        return probabilities[:, classes.index(1)].astype(np.float64)

    def save(self, path: str | Path) -> Path:
        """Write the fitted pipeline as a ``.skops`` file (no pickle) and return its path."""
        if not self._fitted:
            raise RuntimeError("TfidfTextModel: call fit() before save()")
        path = Path(path)
        if path.suffix != ".skops":
            raise ValueError(f"path: expected a file name ending in .skops, found {str(path)!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        sio.dump(self.pipeline, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> TfidfTextModel:
        """Load a model saved by :meth:`save`, refusing any type outside :data:`TRUSTED_TYPES`."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: expected a .skops file saved by TfidfTextModel")
        untrusted = sorted(set(sio.get_untrusted_types(file=path)) - set(TRUSTED_TYPES))
        if untrusted:
            raise ValueError(
                f"{path}: expected only scikit-learn/NumPy/SciPy types and ipguard's "
                f"preprocessing, found untrusted types {untrusted}; refusing to load"
            )
        pipeline = sio.load(path, trusted=list(TRUSTED_TYPES))
        if not isinstance(pipeline, Pipeline):
            raise ValueError(
                f"{path}: expected a scikit-learn Pipeline, found {type(pipeline).__name__}"
            )
        model = cls.__new__(cls)
        model.pipeline = pipeline
        model._fitted = True
        return model
