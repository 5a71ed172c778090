"""The late-fusion stacker's maths in NumPy: its input names and P(infringing).

Shared by training (:mod:`ipguard.models.late_fusion`) and serving, which has no scikit-learn.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ipguard.data.reference_features import REFERENCE_FEATURE_NAMES
from ipguard.data.tabular import FEATURE_NAMES as TABULAR_FEATURE_NAMES
from ipguard.logistic import sigmoid

#: inputs of the stacker, in order
STACK_FEATURE_NAMES: tuple[str, ...] = (
    "image_logit",
    "image_missing",
    "text_logit",
    "text_missing",
    *TABULAR_FEATURE_NAMES,
)


def stack_feature_names(references: bool) -> tuple[str, ...]:
    """The stacker's inputs; with ``references``, the brand-reference features come last."""
    return STACK_FEATURE_NAMES + (REFERENCE_FEATURE_NAMES if references else ())


def predict_stacker(features: np.ndarray, coef: Sequence[float], intercept: float) -> np.ndarray:
    """The logistic regression's P(infringing), in NumPy (serving has no scikit-learn model)."""
    coef = np.asarray(coef, dtype=np.float64)
    if features.shape[1] != len(coef):
        raise ValueError(
            f"late fusion: expected {len(coef)} stacking features, found {features.shape[1]}"
        )
    return sigmoid(features @ coef + float(intercept))
