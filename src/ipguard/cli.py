"""Hydra entry points: thin wrappers that compose a config and call a plain function.

Each ``*_main`` is a console script (see pyproject.toml). All logic lives in ``train``,
``evaluate``... so notebooks and tests call those directly with
``ipguard.config.compose(...)``.
"""

from __future__ import annotations

import os

import hydra
from omegaconf import DictConfig

from ipguard.config import CONFIG_DIR

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def train_main(cfg: DictConfig) -> float | None:
    """``ipguard-train``; returns the optimised metric for Hydra sweepers."""
    from ipguard.training import train

    result = train(cfg)
    print(result.summary_line(), flush=True)
    objective = cfg.get("optimized_metric")
    return result.metrics.get(objective) if objective else None


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="evaluate")
def evaluate_main(cfg: DictConfig) -> None:
    """``ipguard-evaluate``: report on any manifest for any registered version or checkpoint."""
    from ipguard.evaluate import evaluate

    print(evaluate(cfg).summary_line(), flush=True)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="export")
def export_main(cfg: DictConfig) -> None:
    """``ipguard-export``: package a trained model as a pyfunc and register it."""
    from ipguard.export.job import export

    print(export(cfg).summary_line(), flush=True)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="promote")
def promote_main(cfg: DictConfig) -> None:
    """``ipguard-promote``: move ``champion`` to the challenger only if the gate passes."""
    from ipguard.export.promotion import promote

    print(promote(cfg).summary_line(), flush=True)


if __name__ == "__main__":  # DDP re-launches this module in each rank
    train_main()
