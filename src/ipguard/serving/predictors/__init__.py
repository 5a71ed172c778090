"""One predictor per model kind: rebuilds the network from the spec and scores inputs.

A predictor turns :class:`ipguard.serving.inputs.ScoringInputs` into three arrays per row:
the uncalibrated score, the image score and the text score (NaN where not available).
New kinds register here by module path, so serving imports only what its kind needs.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Protocol

import numpy as np

from ipguard.serving.inputs import ScoringInputs
from ipguard.serving.spec import ModelSpec

PREDICTORS = {
    "image": "ipguard.serving.predictors.image:ImagePredictor",
    "text_tfidf": "ipguard.serving.predictors.text:TfidfPredictor",
    "text_fasttext": "ipguard.serving.predictors.text:NeuralTextPredictor",
    "text_minilm": "ipguard.serving.predictors.text:NeuralTextPredictor",
    "fusion": "ipguard.serving.predictors.fusion:FusionPredictor",
    "late_fusion": "ipguard.serving.predictors.fusion:LateFusionPredictor",
}


class Predictor(Protocol):
    #: whether inputs need decoded images (text-only kinds skip decoding)
    needs_images: bool

    def predict(self, inputs: ScoringInputs) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


def build_predictor(spec: ModelSpec, folder: Path, *, runtime: str = "torch") -> Predictor:
    target = PREDICTORS.get(spec.kind)
    if target is None:
        raise ValueError(f"{folder}: unknown model kind {spec.kind!r}; known: {sorted(PREDICTORS)}")
    module, _, name = target.partition(":")
    return getattr(import_module(module), name)(spec, folder, runtime=runtime)
