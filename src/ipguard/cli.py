"""Hydra entry points: thin wrappers that compose a config and call a plain function.

Each ``*_main`` is a console script (see pyproject.toml). All logic lives in the jobs
(``ipguard.jobs.train.train``, ``ipguard.jobs.evaluate.evaluate``...), so notebooks and tests
call those directly with ``ipguard.config.compose(...)``. Each entry point imports its own job
only when it runs, so one command never loads another's stack (Lightning for training...).
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
    from ipguard.jobs.train import train  # its job only: Lightning and MLflow load here

    result = train(cfg)
    print(result.summary_line(), flush=True)
    objective = cfg.get("optimized_metric")
    return result.metrics.get(objective) if objective else None


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="evaluate")
def evaluate_main(cfg: DictConfig) -> None:
    """``ipguard-evaluate``: report on any manifest for any registered version or checkpoint."""
    from ipguard.jobs.evaluate import evaluate  # its job only: MLflow loads here

    print(evaluate(cfg).summary_line(), flush=True)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="export")
def export_main(cfg: DictConfig) -> None:
    """``ipguard-export``: package a trained model as a pyfunc and register it."""
    from ipguard.jobs.export import export  # its job only: MLflow and torch load here

    print(export(cfg).summary_line(), flush=True)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="promote")
def promote_main(cfg: DictConfig) -> None:
    """``ipguard-promote``: move ``champion`` to the challenger only if the gate passes."""
    from ipguard.jobs.promote import promote  # its job only: MLflow loads here

    print(promote(cfg).summary_line(), flush=True)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="score")
def score_main(cfg: DictConfig) -> None:
    """``ipguard-score``: score a whole manifest with one model into Parquet parts."""
    from ipguard.jobs.batch_score import score  # its job only: the scorer and MLflow load here

    print(score(cfg).summary_line(), flush=True)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="feedback")
def feedback_main(cfg: DictConfig) -> None:
    """``ipguard-feedback``: reviewers' and appeals' outcomes joined with scored traffic into a
    labelled manifest for retraining, with a quarantine and the appeal-overturn rates."""
    from ipguard.jobs.feedback import feedback  # its job only: no Lightning, no MLflow

    print(feedback(cfg).summary_line(), flush=True)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="monitor")
def monitor_main(cfg: DictConfig) -> None:
    """``ipguard-monitor``: traffic against the model's reference; exit 3 on drift, 1 on bad
    input (a message naming the file and column), 0 when nothing crossed a threshold."""
    from ipguard.jobs.monitor import MonitorInputError, monitor  # its job only

    try:
        result = monitor(cfg)
    except MonitorInputError as err:
        raise SystemExit(f"ipguard-monitor: {err}") from None
    print(result.summary_line(), flush=True)
    for alert in result.alerts:
        print(f"ipguard: alert {alert.describe()}", flush=True)
    raise SystemExit(result.exit_code)


if __name__ == "__main__":  # DDP re-launches this module in each rank
    train_main()
