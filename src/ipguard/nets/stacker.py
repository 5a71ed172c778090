"""The late-fusion stacker's maths in NumPy: its input names, logit/sigmoid and P(infringing).

Shared by training (:mod:`ipguard.models.late_fusion`) and serving, which has no scikit-learn.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ipguard.data.tabular import FEATURE_NAMES as TABULAR_FEATURE_NAMES

#: inputs of the stacker, in order
STACK_FEATURE_NAMES: tuple[str, ...] = (
    "image_logit",
    "image_missing",
    "text_logit",
    "text_missing",
    *TABULAR_FEATURE_NAMES,
)
_EPS = 1e-6


def logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, _EPS, 1 - _EPS)
    return np.log(q / (1 - q))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def predict_stacker(features: np.ndarray, coef: Sequence[float], intercept: float) -> np.ndarray:
    """The logistic regression's P(infringing), in NumPy (serving has no scikit-learn model)."""
    coef = np.asarray(coef, dtype=np.float64)
    if features.shape[1] != len(coef):
        raise ValueError(
            f"late fusion: expected {len(coef)} stacking features, found {features.shape[1]}"
        )
    return sigmoid(features @ coef + float(intercept))
