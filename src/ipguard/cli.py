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


if __name__ == "__main__":  # DDP re-launches this module in each rank
    train_main()
