"""One predictor per model kind: rebuilds the network from the spec and scores inputs.

A predictor turns :class:`ipguard.serving.inputs.ScoringInputs` into three arrays per row:
the uncalibrated score, the image score and the text score (NaN where not available). Which
predictor serves a kind is a row of :data:`ipguard.serving.kinds.KINDS`, imported on demand, so
serving imports only what its kind needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from ipguard.serving.inputs import ScoringInputs
from ipguard.serving.kinds import model_kind
from ipguard.serving.spec import ModelSpec


class Predictor(Protocol):
    #: whether inputs need decoded images (text-only kinds skip decoding)
    needs_images: bool

    def predict(self, inputs: ScoringInputs) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


def build_predictor(spec: ModelSpec, folder: Path, *, runtime: str = "torch") -> Predictor:
    kind = model_kind(spec.kind)
    if runtime == "onnx" and not kind.onnx:
        raise ValueError(
            f"runtime={runtime!r}: model kind {spec.kind!r} serves on 'torch' only "
            "(ONNX export covers the image, hashed n-gram and MiniLM text, and fused models)"
        )
    return kind.predictor_class()(spec, folder, runtime=runtime)
