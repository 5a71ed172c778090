"""The typed signature of the exported model: the model contract in MLflow's terms."""

from __future__ import annotations

from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

# every input but listing_id is optional: a service sends what it has
STRING_INPUTS = (
    "title",
    "description",
    "brand",
    "category",
    "market",
    "language",
    "currency",
    "seller_id",
    "image_path",
    "image_b64",
    "listed_at",
)


def model_signature() -> ModelSignature:
    inputs = Schema(
        [
            ColSpec("string", "listing_id"),
            *(ColSpec("string", name, required=False) for name in STRING_INPUTS),
            ColSpec("double", "price", required=False),
        ]
    )
    outputs = Schema(
        [
            ColSpec("string", "listing_id"),
            ColSpec("double", "score"),
            ColSpec("string", "decision"),
            ColSpec("double", "image_score"),
            ColSpec("double", "text_score"),
            ColSpec("string", "flags"),
            ColSpec("string", "model_version"),
        ]
    )
    return ModelSignature(inputs=inputs, outputs=outputs)
