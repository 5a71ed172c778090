"""``evaluate(cfg)``: the evaluation report of any model on any labelled manifest.

A trust-and-safety team judges a model by what the screening service will do with it:
precision and recall at the reject threshold, the traffic each lane receives, the same per
brand, market, language and infringement type, all with confidence intervals. This function
produces that report (``ipguard.evaluation.report.build_report``) and records it as an MLflow
run, for a model given as

* a registry or run URI (``models:/name@alias``, ``models:/name/3``, ``runs:/<id>/model``):
  scored through ``mlflow.pyfunc`` exactly as a screening service loads it;
* an exported model folder (``spec.json`` + weights): scored by ``ListingScorer``, the code the
  pyfunc wraps;
* a Lightning checkpoint: re-exported to a temporary folder with an identity calibrator and
  scored the same way. A checkpoint has no policy, so one comes from the config's thresholds or
  is fitted on the evaluated listings, and the report says such lane figures are optimistic.

Scores are never re-implemented here: whatever serves the model scores the listings
(:func:`ipguard.models.loading.load_model`). The steps live in their own modules: the listings
(:mod:`.listings`), scoring (:mod:`.scoring`), the thresholds (:mod:`.thresholds`), the report
folder (:mod:`.evaluation_report`) and the MLflow run (:mod:`.evaluation_log`).
"""

from __future__ import annotations

import copy
import logging
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig

from ipguard.evaluation.report import EvaluationReport, build_report
from ipguard.jobs.evaluation_log import REPORT_FOLDER, Evaluated, log_evaluation
from ipguard.jobs.evaluation_report import (
    flat_metrics,
    insert_details,
    model_label,
    saliency_scorer,
    write_not_scored,
    write_saliency,
    write_tables,
)
from ipguard.jobs.listings import brand_catalog, load_listings
from ipguard.jobs.run import announce, job_tracking, resolve_output_dir
from ipguard.jobs.scoring import fill_languages, score_listings, split_not_scored
from ipguard.jobs.thresholds import choose_policy, configured_policy
from ipguard.jobs.training_manifest import (
    TrainingManifest,
    fill_reading_defaults,
    find_training_manifest,
    use_demo_manifest,
    use_training_manifest,
)
from ipguard.models.loading import LoadedModel, load_model

log = logging.getLogger(__name__)

_RUN_URIS = ("models:/", "runs:/")  # models logged by a run, which may name its manifest


@dataclass
class EvaluationResult:
    """What one evaluation produced; ``summary_line`` is the line scripts parse."""

    report: EvaluationReport
    metrics: dict[str, float]
    """Headline figures with ``<name>_ci_low`` / ``<name>_ci_high`` bounds where bootstrapped."""
    run_id: str
    out_dir: Path
    model_uri: str
    """The model as resolved (``models:/name/<version>`` for an alias)."""
    manifest: Path
    tracking_uri: str
    model_version: str | None = None
    policy_source: str = "model"
    rows: dict[str, int] = field(default_factory=dict)

    def summary_line(self) -> str:
        parts = [f"ipguard: evaluated {self.model_uri} on {self.manifest.name}"]
        for name, short in (
            ("auroc", "auroc"),
            ("average_precision", "ap"),
            ("recall_at_reject", "recall_at_reject"),
        ):
            value = self.metrics.get(name, math.nan)
            low = self.metrics.get(f"{name}_ci_low", math.nan)
            high = self.metrics.get(f"{name}_ci_high", math.nan)
            parts.append(f"{short}={value:.4f} [{low:.4f}, {high:.4f}]")
        parts.append(f"report={self.report.markdown_path}")
        return " ".join(parts)


def evaluate(cfg: DictConfig, model: LoadedModel | None = None) -> EvaluationResult:
    """Score ``cfg.manifest`` with ``cfg.model_uri``, write the report, log it to MLflow.

    ``manifest: null`` evaluates on the manifest the model was trained on, read as training
    read it (see :mod:`.training_manifest`), or on the demo listings for a model without a
    training run that names one. ``model``: an already loaded model (a notebook's, see
    :func:`ipguard.api.load_model`) instead of ``cfg.model_uri``. ``cfg`` itself is left as
    it was given.
    """
    cfg = copy.deepcopy(cfg)
    if model is not None:
        cfg.model_uri = model.uri
    named = bool(cfg.get("manifest"))
    has_run = model.training_run_id if model else str(cfg.model_uri or "").startswith(_RUN_URIS)
    if not named and not has_run:
        use_demo_manifest(cfg)  # folders and checkpoints name no training run
    configured = configured_policy(cfg.policy)
    tracking = job_tracking(cfg)
    out_dir = Path(cfg.out_dir).resolve() if cfg.get("out_dir") else resolve_output_dir(cfg)
    report_dir = out_dir / REPORT_FOLDER
    report_dir.mkdir(parents=True, exist_ok=True)

    # downloaded models and re-exported checkpoints live only as long as the scoring
    with tempfile.TemporaryDirectory(prefix="ipguard-eval-") as scratch:
        if model is None:
            model = load_model(
                str(cfg.model_uri or ""),
                scratch,
                model_class=cfg.get("model_class"),
                brands=brand_catalog(cfg),
            )
        training = None if named else _training_manifest(cfg, model, Path(scratch))
        fill_reading_defaults(cfg)
        listings = load_listings(cfg, report_dir, model, Path(scratch), training=training)
        if training is not None:
            listings.origin = training.describe()
        scored = score_listings(model.scorer, listings.frame, listings.root, cfg.batch_size)
        explainer = saliency_scorer(model)  # while a downloaded model's folder still exists
    evaluated, not_scored = split_not_scored(listings.frame, scored)
    write_not_scored(report_dir, not_scored)
    if evaluated.empty:
        raise ValueError(
            f"{listings.manifest}: no listing could be scored by {model.uri} "
            f"({len(not_scored)} not scored; see the flags in {report_dir / 'not_scored.csv'})"
        )
    detected = fill_languages(evaluated)
    policy, policy_source = choose_policy(cfg.policy, configured, model.policy, evaluated)
    # scores.csv shows the lanes the report counts, also when the policy is not the model's
    evaluated["decision"] = policy.decide(evaluated["score"].to_numpy())

    report = build_report(
        evaluated,
        policy,
        report_dir,
        title=f"ipguard evaluation: {model_label(model)} on {listings.manifest.name}",
        model_uri=model.uri,
        n_boot=int(cfg.n_boot),
        seed=int(cfg.seed),
    )
    rows = {**listings.rows, "not_scored": len(not_scored), "evaluated": len(evaluated)}
    write_tables(report_dir, evaluated)
    insert_details(report.markdown_path, model, listings, policy_source, rows, detected)
    write_saliency(report, explainer, evaluated, listings.root)
    metrics = flat_metrics(report)
    result = EvaluationResult(
        report=report,
        metrics=metrics,
        run_id="",
        out_dir=out_dir,
        model_uri=model.uri,
        manifest=listings.manifest,
        tracking_uri=tracking.uri,
        model_version=model.version,
        policy_source=policy_source,
        rows=rows,
    )
    found = Evaluated(metrics, rows, policy_source, report_dir)
    result.run_id = log_evaluation(cfg, tracking, model, listings, found)
    announce(result)
    return result


def _training_manifest(
    cfg: DictConfig, model: LoadedModel, scratch: Path
) -> TrainingManifest | None:
    """Point ``cfg`` at the model's training manifest, or at the demo listings without one."""
    found = (
        find_training_manifest(model.training_run_id, scratch) if model.training_run_id else None
    )
    if found is None:
        log.info("%s names no training manifest: evaluating on the demo listings", model.uri)
        use_demo_manifest(cfg)
        return None
    use_training_manifest(cfg, found)
    log.info(found.describe())
    return found
