"""ipguard: train, evaluate and export models that screen listings for IP infringement.

The small public API for notebooks and services::

    from ipguard import compose, evaluate, load_model, train
    result = train(compose("train", ["model=image", "model.backbone=resnet18"]))
    report = evaluate("models:/ipguard-image@challenger", split="test")  # its own test split
    scores = load_model("models:/ipguard-image@challenger").predict(listings)

Heavy modules load on first use, so ``import ipguard`` stays cheap for serving code.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.8.0"

_EXPORTS = {
    "compose": "ipguard.config",
    "train": "ipguard.jobs.train",
    "TrainResult": "ipguard.jobs.train",
    "evaluate": "ipguard.api",
    "EvaluationResult": "ipguard.jobs.evaluate",
    "load_model": "ipguard.api",
    "ScoringModel": "ipguard.api",
    "generate_demo_data": "ipguard.demo.listings",
    "load_manifest": "ipguard.data.schema",
    "ListingScorer": "ipguard.serving.scorer",
    "explain_listing": "ipguard.serving.explain",
    "Policy": "ipguard.evaluation.policy",
    "normalize": "ipguard.text.normalization",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ipguard' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
