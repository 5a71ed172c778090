"""Serving side of the TF-IDF baseline: the fitted scikit-learn pipeline from its skops file.

A module of its own so that only this kind imports scikit-learn and skops. The pipeline
normalises inside itself, so it gets the raw title and description, as in training.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ipguard.models.baselines import TfidfTextModel
from ipguard.serving.inputs import ScoringInputs
from ipguard.serving.spec import ModelSpec


class TfidfPredictor:
    needs_images = False

    def __init__(self, spec: ModelSpec, folder: Path, *, runtime: str = "torch") -> None:
        self.model = TfidfTextModel.load(Path(folder) / spec.network["file"])

    def predict(self, inputs: ScoringInputs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        text = np.full(len(inputs), np.nan)
        rows = inputs.text_rows()
        if rows:
            text[rows] = self.model.predict_proba(
                [inputs.titles[i] for i in rows], [inputs.descriptions[i] for i in rows]
            )
        return text, np.full(len(inputs), np.nan), text
