"""The logistic function and its inverse, in NumPy: scores <-> logits.

One definition for the calibrator, the late-fusion stacker and the screening service, so a
score means the same wherever it is computed. No torch, no scikit-learn: serving imports it.
"""

from __future__ import annotations

import numpy as np

LOGIT_EPS = 1e-6
"""How close to 0 or 1 a score may come before :func:`logit` clips it (keeps logits finite)."""


def logit(p: np.ndarray, eps: float = LOGIT_EPS) -> np.ndarray:
    """``log(p / (1 - p))``, with ``p`` clipped to ``[eps, 1 - eps]``."""
    q = np.clip(p, eps, 1 - eps)
    return np.log(q) - np.log1p(-q)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-z))``, computed so that a large ``|z|`` neither overflows nor warns."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))
