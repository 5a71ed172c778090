"""``export(cfg)``: package a trained model as the screening pyfunc and register it.

``ipguard-train`` already exports what it trains; this job covers everything else a team
ships: a Lightning checkpoint (``ckpt=PATH``, e.g. a run resumed or trained elsewhere), or an
exported model folder (``model_dir=PATH``) re-registered with a refitted calibrator, an ONNX
graph, or under a new default runtime. The model that comes out is the same self-contained
pyfunc ``train`` registers, tagged with its provenance and pointed at by ``challenger``; only
``ipguard-promote`` can make it ``champion``.

A checkpoint carries no calibrator and no policy: they are fitted on a labelled manifest's rows
(``manifest=``, usually the training run's validation split: ``split=val
split_file=<run>/splits.csv``), or taken from a previous model folder (``calibration_from=``).
Fitting scores the rows through :class:`ipguard.serving.scorer.ListingScorer`, the code the pyfunc
runs, so the calibrator sees exactly the raw scores the served model will produce.
"""

from __future__ import annotations

import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from ipguard.data.columns import label_array
from ipguard.evaluation.calibration import fit_calibrator
from ipguard.evaluation.metrics import headline_metrics
from ipguard.evaluation.policy import fit_policy_from_settings
from ipguard.jobs.listings import load_listings
from ipguard.jobs.reference_profile import drop_reference_profile, write_reference_profile
from ipguard.jobs.run import announce, config_hash, git_commit, job_tracking, resolve_output_dir
from ipguard.jobs.scoring import score_listings
from ipguard.models.brand_references import replace_catalog
from ipguard.models.loading import IDENTITY_CALIBRATOR, PLACEHOLDER_POLICY, checkpoint_to_folder
from ipguard.monitoring.profile import load_profile
from ipguard.registry.registration import log_and_register, request_example
from ipguard.serving.kinds import model_kind
from ipguard.serving.onnx import ONNX_DATA_FILE, ONNX_FILE, PARITY_FILE
from ipguard.serving.predictors import build_predictor
from ipguard.serving.scorer import ListingScorer
from ipguard.serving.spec import SPEC_FILE, ModelSpec

UNKNOWN = "unknown"


@dataclass
class ExportResult:
    """What an export produced; ``summary_line`` is the one line scripts parse."""

    registered: Any  # ipguard.registry.registration.RegisteredVersion
    model_dir: Path
    tracking_uri: str
    run_id: str
    runtime: str
    calibration: str
    """Where the calibrator and policy came from: the source, a manifest, or a model folder."""
    onnx_parity: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    def summary_line(self) -> str:
        r = self.registered
        parity = "n/a" if self.onnx_parity is None else f"{self.onnx_parity:.2e}"
        return (
            f"ipguard: exported {r.name} v{r.version} @{r.alias} runtime={self.runtime} "
            f"onnx_parity={parity} tracking_uri={self.tracking_uri}"
        )


@dataclass
class _Source:
    """The model being exported, written as a folder under the job's output folder."""

    folder: Path
    spec: ModelSpec
    network: Any  # the torch network for ONNX export; None where the kind has none
    described: str
    has_calibration: bool


def export(cfg: DictConfig) -> ExportResult:
    """Package, calibrate, ONNX-export, tag and register one model. See module docstring."""
    tracking = job_tracking(cfg)
    tracking_uri, experiment_id = tracking.uri, tracking.experiment_id
    out_dir = resolve_output_dir(cfg)
    source = _load_source(cfg, out_dir / "model")
    calibration, metrics, example = _calibrate(cfg, source, out_dir)
    _check_profile(cfg, source)
    parity = None
    kind = model_kind(source.spec.kind)
    if cfg.onnx and kind.exporter is not None:
        parity = kind.export_graphs(_network(source), source.spec, source.folder)
    source.spec.save(source.folder)

    resolved = OmegaConf.to_container(cfg, resolve=True)
    tags = {
        "git_commit": git_commit(),
        "data_fingerprint": _data_fingerprint(cfg, source.spec),
        "config_hash": config_hash(resolved),  # type: ignore[arg-type]
        "exported_from": source.described,
        "calibration": calibration,
    }
    client = MlflowClient(tracking_uri)
    run = client.create_run(
        experiment_id,
        run_name=cfg.get("run_name") or f"export {source.spec.registered_model}",
        tags={"task": "export", "exported_from": source.described},
    )
    with mlflow.start_run(run_id=run.info.run_id):
        client.log_dict(run.info.run_id, resolved, "config/export.yaml")
        for key, value in metrics.items():
            if np.isfinite(value):
                client.log_metric(run.info.run_id, f"calibration/{key}", value)
        registered = log_and_register(
            source.folder,
            source.spec,
            input_example=example,
            tags=tags,
            alias=cfg.registry.alias,
            client=client,
            runtime=str(cfg.runtime),
        )
    result = ExportResult(
        registered=registered,
        model_dir=source.folder,
        tracking_uri=tracking_uri,
        run_id=run.info.run_id,
        runtime=str(cfg.runtime),
        calibration=calibration,
        onnx_parity=parity,
        metrics=metrics,
    )
    announce(result)
    return result


# --- the source -----------------------------------------------------------------------------


def _load_source(cfg: DictConfig, folder: Path) -> _Source:
    ckpt, model_dir = cfg.get("ckpt"), cfg.get("model_dir")
    if bool(ckpt) == bool(model_dir):
        raise ValueError(
            "ipguard-export: expected exactly one of ckpt=<Lightning checkpoint> or "
            f"model_dir=<exported model folder>, found ckpt={ckpt!r}, model_dir={model_dir!r}"
        )
    if ckpt:
        return _from_checkpoint(Path(str(ckpt)).expanduser(), cfg, folder)
    source = _from_folder(Path(str(model_dir)).expanduser(), folder)
    if cfg.get("brands"):
        # a brand added to the catalog is protected without retraining (brand_protection.md)
        replaced = replace_catalog(source.folder, source.spec, str(cfg.brands))
        source.described += f" with brand catalog {cfg.brands} ({', '.join(replaced)})"
    return source


def _from_checkpoint(path: Path, cfg: DictConfig, folder: Path) -> _Source:
    """Rebuild the LightningModule (class from the checkpoint or ``model_class``) and write it."""
    module, written, spec = checkpoint_to_folder(
        path, folder, model_class=cfg.get("model_class"), brands=cfg.get("brands")
    )
    network = module.network if model_kind(spec.kind).onnx else None
    return _Source(written, spec, network, f"checkpoint {path.resolve()}", False)


def _from_folder(path: Path, folder: Path) -> _Source:
    """Copy an exported folder (never modify the original); a stale ONNX graph is re-made."""
    if not (path / SPEC_FILE).is_file():
        raise FileNotFoundError(
            f"model_dir={path}: expected an exported ipguard model folder with {SPEC_FILE}"
        )
    if folder.exists():
        shutil.rmtree(folder)
    stale = shutil.ignore_patterns(ONNX_FILE, ONNX_DATA_FILE, PARITY_FILE)
    shutil.copytree(path, folder, ignore=stale)
    spec = ModelSpec.load(folder)
    spec.extras.pop("onnx", None)
    spec.model_version = None
    return _Source(folder, spec, None, f"model folder {path.resolve()}", True)


def _network(source: _Source) -> Any:
    """The torch network to export: the module's, or the one serving rebuilds from the folder."""
    if source.network is not None:
        return source.network
    return build_predictor(source.spec, source.folder, runtime="torch").network


# --- calibrator and policy ------------------------------------------------------------------


def _calibrate(
    cfg: DictConfig, source: _Source, out_dir: Path
) -> tuple[str, dict[str, float], Any]:
    """Set the spec's calibrator and policy; return where they came from, the metrics on the
    calibration rows (empty when not fitted here) and an input example (None without rows)."""
    spec = source.spec
    if cfg.get("calibration_from"):
        previous = ModelSpec.load(Path(str(cfg.calibration_from)).expanduser())
        if previous.kind != spec.kind:
            raise ValueError(
                f"calibration_from={cfg.calibration_from}: its model kind {previous.kind!r} is "
                f"not the exported model's {spec.kind!r}; its calibrator would not fit these scores"
            )
        spec.calibrator, spec.policy = dict(previous.calibrator), dict(previous.policy)
        return f"taken from {cfg.calibration_from}", {}, None
    if not cfg.get("manifest"):
        if not source.has_calibration:
            raise ValueError(
                f"{source.described} has no calibrator or policy: set manifest=<labelled "
                "listings> (e.g. the training run's validation split: split=val "
                "split_file=<run>/splits.csv) or calibration_from=<previous model folder>"
            )
        return "kept from the source", {}, None
    return _fit_on_manifest(cfg, source, out_dir)


def _fit_on_manifest(
    cfg: DictConfig, source: _Source, out_dir: Path
) -> tuple[str, dict[str, float], Any]:
    if cfg.get("split") and not cfg.get("split_file"):
        raise ValueError(
            f"split={cfg.split}: set split_file=<the training run's splits.csv> to say which "
            "rows belong to it"
        )
    spec = source.spec
    spec.calibrator, spec.policy = dict(IDENTITY_CALIBRATOR), dict(PLACEHOLDER_POLICY)
    spec.save(source.folder)  # raw scores first: the calibrator is fitted on them
    listings = load_listings(cfg, out_dir, None, out_dir)
    scorer = ListingScorer.load(source.folder)
    scored = score_listings(scorer.score, listings.frame, listings.root, int(cfg.batch_size))
    raw = scored["score"].to_numpy(dtype=np.float64)
    usable = np.isfinite(raw)
    if usable.sum() == 0:
        raise ValueError(f"{listings.manifest}: no listing could be scored; see their flags")
    if not usable.all():
        warnings.warn(
            f"{listings.manifest}: {int((~usable).sum())} listing(s) could not be scored "
            "(flags: " + ", ".join(sorted(set(scored.loc[~usable, "flags"]))) + "); the "
            "calibrator and policy are fitted on the others",
            stacklevel=2,
        )
    labels = label_array(listings.frame["label"])[usable]
    calibrator = fit_calibrator(raw[usable], labels, method=cfg.calibration.method)
    calibrated = calibrator(raw[usable])
    policy = fit_policy_from_settings(calibrated, labels, cfg.policy)
    spec.calibrator, spec.policy = calibrator.to_dict(), policy.to_dict()
    headline = headline_metrics(calibrated, labels, policy)
    metrics = {k: float(headline[k]) for k in ("auroc", "average_precision", "recall_at_reject")}
    # in-sample for the policy, so named for where they were measured, not "test"
    spec.metrics.update({f"calibration_{k}": v for k, v in metrics.items()})
    spec.save(source.folder)  # the profile is scored through the finished folder
    write_reference_profile(
        source.folder, listings.frame, listings.root, source=f"{listings.manifest}"
    )
    described = f"fitted on {int(usable.sum())} rows of {listings.manifest}"
    if cfg.get("split"):
        described += f" (split {cfg.split})"
    return described, metrics, request_example(listings.frame, listings.root)


def _check_profile(cfg: DictConfig, source: _Source) -> None:
    """Keep a copied reference profile only while it still describes the model's scores: a
    calibrator taken from elsewhere or a replaced brand catalog changes them."""
    if cfg.get("manifest") and not cfg.get("calibration_from"):
        return  # written by _fit_on_manifest from the calibration rows
    if cfg.get("calibration_from") or cfg.get("brands"):
        drop_reference_profile(source.folder, "its calibrator, policy or brand catalog changed")
    if load_profile(source.folder) is None and source.spec.kind != "video":
        warnings.warn(
            f"{source.described}: exported without a reference profile, so ipguard-monitor "
            "will need reference=<scored traffic>; pass manifest=<its validation rows> to "
            "store one",
            stacklevel=2,
        )


def _data_fingerprint(cfg: DictConfig, spec: ModelSpec) -> str:
    """The training data's fingerprint: given, or carried in the source folder's spec."""
    given = cfg.get("data_fingerprint")
    if given:
        return str(given)
    carried = (spec.extras.get("provenance") or {}).get("data_fingerprint")
    if carried:
        return str(carried)
    warnings.warn(
        "data_fingerprint: the training data of this model is unknown (a checkpoint does not "
        f"record it); the version is tagged data_fingerprint={UNKNOWN}. Pass "
        "data_fingerprint=<the training run's data_fingerprint tag> to record it",
        stacklevel=2,
    )
    return UNKNOWN
