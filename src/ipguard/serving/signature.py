"""The signature of the exported model: the model contract in MLflow's terms.

Every input column is declared ``Any``, not ``string``/``double``. MLflow enforces a
signature *before* ``predict`` runs and rejects the whole request when one column does not fit
its type: a single price "abc", integer prices against ``double``, or a one-row request whose
title is the number 123 would each fail every listing in the batch (MLflow 3.17 raises
"Failed to enforce schema"). The contract says a bad row is scored with what is usable and
flagged, so the types (:data:`ipguard.serving.inputs.INPUT_COLUMNS`) are enforced per row in
:func:`ipguard.serving.inputs.collect_inputs` instead. The signature still names every column
and makes ``listing_id`` required: a request without it is refused with HTTP 400, because
without ids the service could not tell which decision belongs to which listing.
"""

from __future__ import annotations

from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema
from mlflow.types.schema import AnyType

from ipguard.serving.inputs import INPUT_COLUMNS, REQUIRED_INPUTS
from ipguard.serving.scorer import OUTPUT_TYPES


def model_signature() -> ModelSignature:
    inputs = Schema(
        [ColSpec(AnyType(), name, required=name in REQUIRED_INPUTS) for name in INPUT_COLUMNS]
    )
    outputs = Schema([ColSpec(kind, name) for name, kind in OUTPUT_TYPES.items()])
    return ModelSignature(inputs=inputs, outputs=outputs)
