"""ListingScorer: an exported ipguard model, scoring listings in-process.

This is the whole serving path. The MLflow pyfunc (``screener.py``) is a thin shell around it,
and notebooks or batch jobs can use it directly on a model folder. It imports torch and the
preprocessing of its model kind, never Lightning or Hydra.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ipguard.data.columns import FLAG_SEPARATOR
from ipguard.evaluation.calibration import calibrator_from_dict
from ipguard.evaluation.policy import Policy
from ipguard.serving.evidence import evidence_column
from ipguard.serving.inputs import collect_inputs
from ipguard.serving.onnx import fastest_runtime
from ipguard.serving.predictors import build_predictor
from ipguard.serving.spec import ModelSpec

#: one output row per input row, in request order, with these columns and types
OUTPUT_TYPES = {
    "listing_id": "string",
    "score": "double",
    "decision": "string",
    "image_score": "double",
    "text_score": "double",
    "flags": "string",
    "model_version": "string",
    "evidence": "string",  # JSON: what drove the score, for reviewers (serving/evidence.py)
}
OUTPUT_COLUMNS = tuple(OUTPUT_TYPES)
RUNTIMES = ("torch", "onnx")
#: the runtime that picks ONNX Runtime where the model folder holds its parity-checked graph
#: and onnxruntime is installed, else PyTorch (:func:`~ipguard.serving.onnx.fastest_runtime`)
AUTO = "auto"


class ListingScorer:
    """Scores a request frame under the model contract (docs/serving.md, "The output contract")."""

    def __init__(self, spec: ModelSpec, folder: str | Path, *, runtime: str = "torch") -> None:
        if runtime not in (*RUNTIMES, AUTO):
            raise ValueError(f"runtime must be one of {(*RUNTIMES, AUTO)}, got {runtime!r}")
        self.spec = spec
        self.folder = Path(folder)
        #: the runtime it runs on ("auto" resolved)
        self.runtime = fastest_runtime(self.folder) if runtime == AUTO else runtime
        runtime = self.runtime
        self.calibrator = calibrator_from_dict(spec.calibrator)
        self.policy = Policy.from_dict(spec.policy)
        self.predictor = build_predictor(spec, self.folder, runtime=runtime)

    @classmethod
    def load(cls, folder: str | Path, *, runtime: str = "torch") -> ListingScorer:
        return cls(ModelSpec.load(folder), folder, runtime=runtime)

    def score(self, frame: pd.DataFrame, *, nulls: bool = False) -> pd.DataFrame:
        """The contract's output frame, one row per request row in request order.

        ``nulls=True`` writes missing scores as ``None`` rather than NaN (see
        :func:`with_nulls`), built directly instead of converting a finished frame.
        """
        inputs = collect_inputs(frame, want_images=self.predictor.needs_images)
        raw, image_score, text_score = self.predictor.predict(inputs)
        score = np.full(len(inputs), np.nan)
        ok = ~np.isnan(raw)
        if ok.any():
            score[ok] = self.calibrator(raw[ok])
        flags = inputs.flags
        for i in np.flatnonzero(~ok):
            flags[i].append("not_scored")
        evidence = evidence_column(
            inputs,
            image_score,
            text_score,
            featurizer=getattr(self.predictor, "featurizer", None),
            references=getattr(self.predictor, "last_evidence", None),
            facts=getattr(self.predictor, "last_facts", None),
        )
        columns = {
            "listing_id": inputs.listing_ids,
            "score": score,
            "decision": self.policy.decide(score),
            "image_score": image_score,
            "text_score": text_score,
            "flags": [FLAG_SEPARATOR.join(f) for f in flags],
            "model_version": [str(self.spec.model_version or "")] * len(inputs),
            "evidence": evidence,
        }
        if nulls:
            return _object_frame(columns)
        return pd.DataFrame(columns, columns=list(OUTPUT_COLUMNS))


def _object_frame(columns: dict[str, object]) -> pd.DataFrame:
    """The output as one block of Python objects, missing scores ``None`` (see
    :func:`with_nulls`).

    The pyfunc's answer is only ever read as values (MLflow writes it as JSON records), and the
    score columns hold ``None`` and so are object columns anyway. One 2-D object block is built
    without pandas inferring a string dtype per column, which cost more than the network's
    forward pass for one listing (0.8 against 0.1 ms here); the values are the same.
    """
    n = len(columns["listing_id"])  # type: ignore[arg-type]
    block = np.empty((n, len(OUTPUT_COLUMNS)), dtype=object)
    for j, name in enumerate(OUTPUT_COLUMNS):
        if OUTPUT_TYPES[name] == "double":
            values = np.asarray(columns[name], dtype=np.float64)
            block[:, j] = values
            block[np.isnan(values), j] = None
        else:
            block[:, j] = columns[name]
    return pd.DataFrame(block, columns=list(OUTPUT_COLUMNS), dtype=object, copy=False)


def with_nulls(out: pd.DataFrame) -> pd.DataFrame:
    """The scorer's output with missing scores as ``None`` instead of NaN, for the pyfunc.

    MLflow's REST server writes a float NaN as the bare token ``NaN``, which is not JSON:
    strict parsers (JavaScript's ``JSON.parse``, Go's ``encoding/json``, Jackson by default)
    reject the whole response, and an image model's ``text_score`` is missing on every row. As
    ``None`` it is written ``null``, as the contract says; in Python the columns hold floats
    and ``None`` (``.astype(float)`` gives NaN back).
    """
    return _object_frame({name: out[name].to_numpy() for name in OUTPUT_COLUMNS})
