"""One MLflow run per evaluation: the figures with their CI bounds, the row counts, the
config, the report folder, and tags that say which model, data and policy were evaluated."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from ipguard.jobs.listings import Listings
from ipguard.jobs.run import Tracking
from ipguard.models.loading import LoadedModel

REPORT_FOLDER = "report"
"""Sub-folder of the output folder that holds the report and is logged as one artifact."""


@dataclass(frozen=True)
class Evaluated:
    """What the evaluation found, as the run records it."""

    metrics: dict[str, float]
    rows: dict[str, int]
    policy_source: str
    report_dir: Path


def log_evaluation(
    cfg: DictConfig,
    tracking: Tracking,
    model: LoadedModel,
    listings: Listings,
    evaluated: Evaluated,
) -> str:
    """One run per evaluation: figures with their CI bounds, the report folder, provenance."""
    client = MlflowClient(tracking.uri)
    tags = {
        "task": "evaluate",
        "model_uri": str(cfg.model_uri),
        "model_uri_resolved": model.uri,
        "model_version": model.version or "",
        "model_kind": model.spec.kind,
        "model_source": model.source,
        "manifest": str(listings.manifest),
        "data_fingerprint": listings.fingerprint,
        "policy_source": evaluated.policy_source,
        "split": listings.split_source or "all",
    }
    if model.training_run_id:
        tags["training_run_id"] = model.training_run_id
    name = cfg.get("run_name") or f"{model.uri} on {listings.manifest.name}"
    run = client.create_run(tracking.experiment_id, run_name=name, tags=tags)
    run_id = run.info.run_id
    try:
        stamp = int(run.info.start_time)
        metrics = [
            Metric(f"eval/{k}", float(v), stamp, 0)
            for k, v in evaluated.metrics.items()
            if math.isfinite(v)
        ]
        metrics += [Metric(f"data/rows_{k}", float(v), stamp, 0) for k, v in evaluated.rows.items()]
        params = [
            Param(k, str(v))
            for k, v in {
                "n_boot": cfg.n_boot,
                "seed": cfg.seed,
                "batch_size": cfg.batch_size,
                "on_error": cfg.on_error,
                "split": cfg.get("split"),
            }.items()
        ]
        client.log_batch(run_id, metrics=metrics, params=params)
        client.log_dict(run_id, OmegaConf.to_container(cfg, resolve=True), "config/evaluate.yaml")
        client.log_artifacts(run_id, str(evaluated.report_dir), REPORT_FOLDER)
    except Exception:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    return run_id
