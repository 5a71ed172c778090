"""``train(cfg)``: one run from manifest to registered model, as a plain function.

The CLI (``ipguard-train``) and notebooks both call this; it returns its results instead of
printing them, so tests can assert on them. Steps: data (validate, split) -> model -> Lightning
fit/test -> calibrate and fit the reject/review/approve policy on validation -> evaluate on
test -> export and register in MLflow with alias ``challenger``.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import mlflow
import numpy as np
import pandas as pd
import torch
from hydra.utils import get_class, instantiate
from mlflow.data.sources import LocalArtifactDatasetSource
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from ipguard.data.columns import label_array
from ipguard.data.transforms import Preprocessing, describe_recipe, render_augmentation_grid
from ipguard.evaluation.calibration import fit_calibrator
from ipguard.evaluation.metrics import auroc, average_precision, headline_metrics
from ipguard.evaluation.policy import fit_policy_from_settings
from ipguard.evaluation.slices import sliced_metrics
from ipguard.jobs.quiet_logs import quiet_logs
from ipguard.jobs.reference_profile import write_reference_profile
from ipguard.jobs.run import announce, config_hash, git_commit, job_tracking, resolve_output_dir
from ipguard.jobs.training_manifest import MANIFEST_RECORD, manifest_record
from ipguard.registry.package import write_model_dir
from ipguard.registry.registration import log_and_register, request_example
from ipguard.serving.kinds import model_kind
from ipguard.text.language import detect_languages

log = logging.getLogger(__name__)

IMBALANCE = ("auto", "none", "class_weights", "sampler", "focal")
#: ``imbalance=auto`` balances classes with the weighted sampler only below this minority
#: share. At a marketplace's 1-in-20 the sampler was measured best; at the demo's 37% it cost
#: resnet18 0.06 test AUROC against no handling (docs/training.md#class-imbalance).
AUTO_SAMPLER_BELOW = 0.2


def resolve_imbalance(kind: str, positive_fraction: float) -> str:
    """``auto`` -> ``sampler`` when the rarer class is under :data:`AUTO_SAMPLER_BELOW` of
    the training rows, else ``none``; any other option is returned as it is."""
    if kind not in IMBALANCE:
        raise ValueError(f"imbalance must be one of {IMBALANCE}, got {kind!r}")
    if kind != "auto":
        return kind
    minority = min(positive_fraction, 1 - positive_fraction)
    return "sampler" if minority < AUTO_SAMPLER_BELOW else "none"


@dataclass
class TrainResult:
    """What a run produced; ``summary_line`` is the one line scripts parse."""

    metrics: dict[str, float]
    output_dir: Path
    tracking_uri: str
    run_id: str | None = None
    best_checkpoint: Path | None = None
    model_dir: Path | None = None
    registered: Any = None  # ipguard.registry.registration.RegisteredVersion
    extra: dict[str, Any] = field(default_factory=dict)

    def summary_line(self) -> str:
        auroc = self.metrics.get("test/auroc", float("nan"))
        if self.registered is None:
            head = "ipguard: trained (not registered)"
        else:
            r = self.registered
            head = f"ipguard: registered {r.name} v{r.version} @{r.alias}"
        return f"{head} test_auroc={auroc:.4f} tracking_uri={self.tracking_uri}"


def _imbalance_overrides(kind: str, positive_fraction: float) -> dict[str, Any]:
    if kind not in IMBALANCE:
        raise ValueError(f"imbalance must be one of {IMBALANCE}, got {kind!r}")
    if kind == "class_weights":
        p = min(max(positive_fraction, 1e-6), 1 - 1e-6)
        return {"pos_weight": (1 - p) / p}
    if kind == "focal":
        return {"loss": "focal"}
    return {}


class EpochSeeding(L.Callback):
    """Seeds every training epoch from ``(seed, epoch)`` alone.

    Lightning checkpoints carry no random-number-generator state, so a run resumed from
    ``last.ckpt`` would otherwise drop out and augment its remaining epochs differently from an
    uninterrupted run. Reseeding at each epoch start, not only on resume, makes both draw the
    same numbers; the shuffle order is already a function of (seed, epoch) through the
    sampler's ``set_epoch``. Ranks share the global seed (as after ``seed_everything``) but
    augment with their own stream.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch
        global_seed = int(np.random.SeedSequence([self.seed, epoch]).generate_state(1)[0])
        random.seed(global_seed)
        np.random.seed(global_seed)
        torch.manual_seed(global_seed)
        reseed = getattr(trainer.datamodule, "reseed_augmentation", None)
        if reseed is not None:
            sequence = np.random.SeedSequence([self.seed, epoch, trainer.global_rank])
            reseed(int(sequence.generate_state(1)[0]))


def _instantiate_list(section: DictConfig | None) -> list[Any]:
    """Instantiate each entry with a ``_target_``; entries set to null are switched off."""
    if not section:
        return []
    return [instantiate(c) for c in section.values() if c and "_target_" in c]


def _log_run_facts(client: Any, run_id: str, cfg: DictConfig, dm: Any, output_dir: Path) -> None:
    resolved = OmegaConf.to_container(cfg, resolve=True)
    client.log_dict(run_id, resolved, "config/train.yaml")
    summary = dm.summary()
    client.log_dict(run_id, summary, "data/summary.json")
    client.log_dict(run_id, manifest_record(dm), MANIFEST_RECORD)  # evaluate finds it again
    for key in ("rows_in", "rows_valid", "rows_rejected", "rows_train", "rows_val", "rows_test"):
        client.log_metric(run_id, f"data/{key}", summary[key])
    for name in ("splits.csv", "rejects.csv"):
        if (output_dir / name).exists():
            client.log_artifact(run_id, str(output_dir / name), "data")
    dataset = mlflow.data.from_pandas(
        dm.validation.valid.drop(columns=["_source_file", "_source_row"], errors="ignore"),
        # an explicit local source: a bare path matches two registered source kinds (a warning)
        source=LocalArtifactDatasetSource(str(dm.manifest_path)),
        name=Path(str(dm.manifest_path)).name,
        digest=(dm.fingerprint or "")[:32] or None,
    )
    with mlflow.start_run(run_id=run_id):
        mlflow.log_input(dataset, context="training")
        mlflow.set_tag("data_fingerprint", dm.fingerprint)
    if "image" in dm.modalities:
        pre = Preprocessing(**dm.preprocessing)
        client.log_dict(run_id, describe_recipe(dm.augment, pre), "data/augmentation.json")
        samples = dm.sample_images()
        if samples:
            grid = render_augmentation_grid(
                samples, dm.augment, pre, output_dir / "augmentation_grid.png"
            )
            client.log_artifact(run_id, str(grid), "data")


def _log_test_slices(
    client: Any,
    run_id: str,
    frame: pd.DataFrame,
    scores: np.ndarray,
    policy: Any,
    out: Path,
    dm: Any = None,
) -> pd.DataFrame:
    """Test metrics per brand, category, market, language and infringement type (or the
    columns the data module names in ``slice_columns``, e.g. a video's market and kind)."""
    scored = frame.assign(score=scores)
    text = getattr(dm, "text_column", "title")  # what the language is detected from
    if "language" not in scored or scored["language"].isna().all():
        scored["language"] = detect_languages(scored[text].fillna("").astype(str).tolist())
    columns = getattr(dm, "slice_columns", None)
    slices = sliced_metrics(scored, policy=policy, **({"columns": columns} if columns else {}))
    path = out / "test_slices.csv"
    slices.to_csv(path, index=False)
    client.log_artifact(run_id, str(path), "evaluation")
    return slices


def _loggers(cfg: DictConfig, output_dir: Path, tracking_uri: str, model: Any) -> list[Any]:
    """The Lightning loggers of ``cfg.logger``, one per entry with a ``_target_``.

    An MLflow logger is pointed at the job's own store and tagged with the model class: its run
    is the one the model is then logged and registered from, so it cannot live elsewhere. A
    ``save_dir`` left null is the run folder.
    """
    loggers: list[Any] = []
    for c in (cfg.get("logger") or {}).values():
        if not c or "_target_" not in c:
            continue
        extra: dict[str, Any] = {}
        if "save_dir" in c and c.save_dir is None:
            extra["save_dir"] = str(output_dir)
        if issubclass(get_class(c._target_), L.pytorch.loggers.MLFlowLogger):
            tags = OmegaConf.to_container(c.tags, resolve=True) if c.get("tags") else {}
            extra.update(tracking_uri=tracking_uri, tags={**tags, "model": type(model).__name__})
        loggers.append(instantiate(c, **extra))
    return loggers


def _new_run(cfg: DictConfig, model: Any, experiment_id: str) -> str:
    """An MLflow run for a model no MLflow logger records (estimators, ``logger=none``):
    registration needs one, and the test metrics and data facts are logged to it."""
    run = mlflow.start_run(
        experiment_id=experiment_id,
        run_name=cfg.get("run_name"),
        tags={"model": type(model).__name__, "task": cfg.task_name},
    )
    mlflow.end_run()
    return run.info.run_id


def _fit_lightning(
    cfg: DictConfig, model: Any, dm: Any, output_dir: Path, tracking_uri: str, experiment_id: str
) -> tuple[Any, TrainResult, bool]:
    """Lightning fit + test; returns the best model (on CPU), the result, and rank-zero-ness."""
    callbacks = [*_instantiate_list(cfg.get("callbacks")), EpochSeeding(cfg.seed)]
    for cb in callbacks:
        if isinstance(cb, L.pytorch.callbacks.ModelCheckpoint) and cb.dirpath is None:
            cb.dirpath = str(output_dir / "checkpoints")
    loggers = _loggers(cfg, output_dir, tracking_uri, model)
    if not loggers:  # LearningRateMonitor refuses a trainer without a logger to write to
        callbacks = [
            c for c in callbacks if not isinstance(c, L.pytorch.callbacks.LearningRateMonitor)
        ]
    trainer: L.Trainer = instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, default_root_dir=str(output_dir)
    )
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path == "last":
        last = output_dir / "checkpoints" / "last.ckpt"
        ckpt_path = str(last) if last.exists() else None
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt_path)
    checkpoint = trainer.checkpoint_callback
    best = Path(checkpoint.best_model_path) if checkpoint and checkpoint.best_model_path else None
    trainer.test(model, datamodule=dm, ckpt_path="best" if best else None, verbose=False)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    if checkpoint is not None and checkpoint.best_model_score is not None:
        metrics["val/auroc_best"] = float(checkpoint.best_model_score)
    mlflow_loggers = [lg for lg in loggers if isinstance(lg, L.pytorch.loggers.MLFlowLogger)]
    run_id = mlflow_loggers[0].run_id if mlflow_loggers else None  # None on ranks other than 0
    if not mlflow_loggers and trainer.global_rank == 0:
        run_id = _new_run(cfg, model, experiment_id)
    result = TrainResult(metrics, output_dir, tracking_uri, run_id, best)
    if best is not None and trainer.global_rank == 0:
        trained, model = model, type(model).load_from_checkpoint(best, map_location="cpu")
        if getattr(trained, "references", None) is not None:  # embedded catalog: not in the ckpt
            model.references = trained.references
    return model, result, trainer.global_rank == 0


def _fit_estimator(
    cfg: DictConfig, model: Any, dm: Any, output_dir: Path, tracking_uri: str, experiment_id: str
) -> tuple[Any, TrainResult]:
    """Models outside Lightning (e.g. TF-IDF + logistic regression) train on the frames."""
    run_id = _new_run(cfg, model, experiment_id)
    model.fit_frames(dm.frames["train"], dm.root)
    metrics: dict[str, float] = {}
    for split in ("val", "test"):
        scores = model.predict_frame(dm.frames[split], dm.root)
        labels = label_array(dm.frames[split]["label"])
        metrics[f"{split}/auroc"] = auroc(scores, labels)
        metrics[f"{split}/ap"] = average_precision(scores, labels)
    metrics["val/auroc_best"] = metrics["val/auroc"]
    return model, TrainResult(metrics, output_dir, tracking_uri, run_id)


def _image_embedder(model: Any) -> Any:
    """A frozen backbone's embedder (features computed once per image), or None."""
    make = getattr(model, "image_embedder", None)
    return make() if callable(make) else None


def _split_scores(model: Any, dm: Any, split: str) -> np.ndarray:
    """Uncalibrated scores of one split, in frame order, whatever kind of model."""
    if isinstance(model, L.LightningModule):
        return model.predict_scores(dm.loader(split))
    return model.predict_frame(dm.frames[split], dm.root)


def train(cfg: DictConfig) -> TrainResult:
    """Train, evaluate, and (if ``cfg.register``) register one model. See module docstring."""
    quiet_logs()  # one line per fact: before Lightning logs its first
    L.seed_everything(cfg.seed, workers=True)
    output_dir = resolve_output_dir(cfg)
    output_dir.mkdir(parents=True, exist_ok=True)
    tracking = job_tracking(cfg)
    tracking_uri, experiment_id = tracking.uri, tracking.experiment_id

    dm = instantiate(cfg.data, output_dir=str(output_dir))
    dm.prepare_data()
    dm.setup("fit")
    is_lightning = issubclass(get_class(cfg.model._target_), L.LightningModule)
    if is_lightning:
        imbalance = resolve_imbalance(cfg.imbalance, dm.positive_fraction())
        if imbalance != cfg.imbalance:
            log.info(
                "imbalance=%s: %s (%.1f%% of training listings infringe)",
                cfg.imbalance,
                imbalance,
                100 * dm.positive_fraction(),
            )
        overrides = _imbalance_overrides(imbalance, dm.positive_fraction())
        if imbalance == "sampler":
            dm.sampler = "weighted"
        model = instantiate(cfg.model, **overrides)
    else:
        model = instantiate(cfg.model)
    dm.configure_inputs(
        modalities=model.modalities,
        preprocessing=getattr(model, "preprocessing", None),
        image_embedder=_image_embedder(model),
    )
    if hasattr(model, "attach_data"):
        model.attach_data(dm)  # e.g. the fused model sizes its tabular input from the data
    if is_lightning:
        model, result, rank_zero = _fit_lightning(
            cfg, model, dm, output_dir, tracking_uri, experiment_id
        )
        if not rank_zero:
            return result
    else:
        model, result = _fit_estimator(cfg, model, dm, output_dir, tracking_uri, experiment_id)

    # --- calibration, policy and test evaluation on one process ------------------------------
    dm.configure_inputs(
        modalities=model.modalities, preprocessing=None, image_embedder=_image_embedder(model)
    )
    val_scores = _split_scores(model, dm, "val")
    val_labels = label_array(dm.frames["val"]["label"])
    calibrator = fit_calibrator(val_scores, val_labels, method=cfg.calibration.method)
    policy = fit_policy_from_settings(calibrator(val_scores), val_labels, cfg.policy)
    test_scores = calibrator(_split_scores(model, dm, "test"))
    test_labels = label_array(dm.frames["test"]["label"])
    headline = headline_metrics(test_scores, test_labels, policy)
    result.metrics.update({f"test_calibrated/{k}": float(v) for k, v in headline.items()})
    result.extra["test_scores"] = test_scores
    client = MlflowClient(tracking_uri)
    run_id = result.run_id
    for key, value in result.metrics.items():
        if np.isfinite(value):
            client.log_metric(run_id, key, value)
    _log_run_facts(client, run_id, cfg, dm, output_dir)
    result.extra["test_slices"] = _log_test_slices(
        client, run_id, dm.frames["test"], test_scores, policy, output_dir, dm
    )
    if result.best_checkpoint is not None:
        client.log_artifact(run_id, str(result.best_checkpoint), "checkpoints")
    if cfg.register:
        result.registered, result.model_dir = _register(
            cfg, model, dm, calibrator, policy, result, client, run_id
        )
    announce(result)
    return result


def _register(
    cfg: DictConfig,
    model: Any,
    dm: Any,
    calibrator: Any,
    policy: Any,
    result: TrainResult,
    client: Any,
    run_id: str,
) -> tuple[Any, Path]:
    headline = {
        "test_auroc": result.metrics.get("test/auroc", float("nan")),
        "test_ap": result.metrics.get("test/ap", float("nan")),
        "test_recall_at_reject": result.metrics.get(
            "test_calibrated/recall_at_reject", float("nan")
        ),
    }
    model_dir, spec = write_model_dir(
        model,
        result.output_dir / "model",
        calibrator=calibrator.to_dict(),
        policy=policy.to_dict(),
        metrics=headline,
        extras=dm.export_extras() if hasattr(dm, "export_extras") else None,
    )
    kind = model_kind(spec.kind)
    # parity-checked graph(s), for the kinds that have one (TF-IDF has no network); the spec
    # notes them
    if cfg.get("onnx") and kind.exporter is not None:
        kind.export_graphs(model.network, spec, model_dir)
    # what monitoring compares traffic with: the validation rows through the finished folder
    write_reference_profile(model_dir, dm.frames["val"], dm.root, source="validation split")
    tags = {
        "git_commit": git_commit(),
        "data_fingerprint": dm.fingerprint,
        "config_hash": config_hash(OmegaConf.to_container(cfg, resolve=True)),
    }  # the headline metrics become tags from the spec (registry.version_tags)
    with mlflow.start_run(run_id=run_id):
        registered = log_and_register(
            model_dir,
            spec,
            input_example=request_example(dm.frames["test"], dm.root),
            tags=tags,
            alias=cfg.registry.alias,
            client=client,
        )
    return registered, model_dir
