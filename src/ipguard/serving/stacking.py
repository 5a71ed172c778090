"""The late-fusion stacker's input matrix from the base models' scores, for training and serving."""

from __future__ import annotations

from typing import Any

import numpy as np

from ipguard.brands.references import BrandReferences
from ipguard.data.tabular import TabularFeaturizer
from ipguard.logistic import logit
from ipguard.serving.inputs import ScoringInputs


def stacking_features(
    inputs: ScoringInputs,
    bases: dict[str, Any],
    featurizer: TabularFeaturizer,
    references: BrandReferences | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]] | None]:
    """The stacker's input matrix, the image and text base scores (NaN where absent), and
    the reference evidence per row (``None`` without ``references``).

    ``bases`` maps ``"image"`` and ``"text"`` to loaded :class:`ListingScorer` objects; each
    base model's uncalibrated score is used, NaN (no usable image, no text) becoming a 0 logit
    and a missing flag. Shared by training and serving so the two cannot drift.
    """
    image = bases["image"].predictor.predict(inputs)[0]
    text = bases["text"].predictor.predict(inputs)[0]
    image_missing, text_missing = np.isnan(image), np.isnan(text)
    columns = [
        np.where(image_missing, 0.0, logit(np.nan_to_num(image, nan=0.5))),
        image_missing.astype(np.float64),
        np.where(text_missing, 0.0, logit(np.nan_to_num(text, nan=0.5))),
        text_missing.astype(np.float64),
    ]
    blocks = [featurizer.transform(inputs.frame).astype(np.float64)]
    evidence = None
    if references is not None:
        found = references.features(inputs.frame, inputs.images)
        blocks.append(found.matrix.astype(np.float64))
        evidence = found.evidence
    return np.column_stack([*columns, *blocks]), image, text, evidence
