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

Scores are never re-implemented here: whatever serves the model scores the listings.
"""

from __future__ import annotations

import inspect
import logging
import math
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from ipguard.evaluation.policy import Policy
from ipguard.evaluation.report import EvaluationReport
from ipguard.serving.spec import SPEC_FILE, ModelSpec, folder_in_logged_model

log = logging.getLogger(__name__)

REPORT_FOLDER = "report"
"""Sub-folder of the output folder that holds the report and is logged as one artifact."""

OPTIMISTIC_NOTE = (
    "fitted on the evaluated listings themselves (a checkpoint carries no policy): the lane "
    "figures are optimistic; pass policy.reject_threshold and policy.approve_threshold to "
    "evaluate fixed thresholds"
)
CONFIG_POLICY_NOTE = (
    "thresholds set in the evaluation config (policy.reject_threshold, "
    "policy.approve_threshold), not the ones stored with the model"
)

# The request columns of the model contract (see DESIGN.md); the label and the manifest's
# bookkeeping never reach the model.
_REQUEST_TEXT = (
    "listing_id",
    "title",
    "description",
    "brand",
    "category",
    "market",
    "language",
    "currency",
    "seller_id",
    "image_path",
)
_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")

Scorer = Callable[[pd.DataFrame], pd.DataFrame]


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


@dataclass
class LoadedModel:
    """A model ready to score request frames, and what is known about where it came from."""

    uri: str
    """As resolved: ``models:/name/<version>`` for an alias, the path for files."""
    source: str
    """``registry``, ``run``, ``folder`` or ``checkpoint``."""
    scorer: Scorer
    spec: ModelSpec
    policy: Policy | None
    """The stored policy; None for a checkpoint."""
    version: str | None = None
    training_run_id: str | None = None
    training_fingerprint: str | None = None


# --- the whole job --------------------------------------------------------------------------


def evaluate(cfg: DictConfig) -> EvaluationResult:
    """Score ``cfg.manifest`` with ``cfg.model_uri``, write the report, log it to MLflow."""
    from ipguard.tracking import configure_tracking
    from ipguard.training import resolve_output_dir

    configured = configured_policy(cfg.policy)
    root = Path(cfg.paths.root_dir).resolve()
    tracking_uri, experiment_id = configure_tracking(
        cfg.mlflow.tracking_uri, root, cfg.mlflow.experiment
    )
    out_dir = Path(cfg.out_dir).resolve() if cfg.get("out_dir") else resolve_output_dir(cfg)
    report_dir = out_dir / REPORT_FOLDER
    report_dir.mkdir(parents=True, exist_ok=True)

    # downloaded models and re-exported checkpoints live only as long as the scoring
    with tempfile.TemporaryDirectory(prefix="ipguard-eval-") as scratch:
        model = load_model(cfg, Path(scratch))
        listings = load_listings(cfg, report_dir, model, Path(scratch))
        scored = score_listings(model.scorer, listings.frame, listings.root, cfg.batch_size)
    evaluated, not_scored = _split_not_scored(listings.frame, scored)
    _write_not_scored(report_dir, not_scored)
    if evaluated.empty:
        raise ValueError(
            f"{listings.manifest}: no listing could be scored by {model.uri} "
            f"({len(not_scored)} not scored; see the flags in {report_dir / 'not_scored.csv'})"
        )
    detected = _fill_languages(evaluated)
    policy, policy_source = choose_policy(cfg.policy, configured, model.policy, evaluated)
    # scores.csv shows the lanes the report counts, also when the policy is not the model's
    evaluated["decision"] = policy.decide(evaluated["score"].to_numpy())

    from ipguard.evaluation.report import build_report

    report = build_report(
        evaluated,
        policy,
        report_dir,
        title=f"ipguard evaluation: {_model_label(model)} on {listings.manifest.name}",
        model_uri=model.uri,
        n_boot=int(cfg.n_boot),
        seed=int(cfg.seed),
    )
    rows = {**listings.rows, "not_scored": len(not_scored), "evaluated": len(evaluated)}
    _write_tables(report_dir, evaluated)
    _insert_details(report.markdown_path, model, listings, policy_source, rows, detected)
    metrics = flat_metrics(report)
    result = EvaluationResult(
        report=report,
        metrics=metrics,
        run_id="",
        out_dir=out_dir,
        model_uri=model.uri,
        manifest=listings.manifest,
        tracking_uri=tracking_uri,
        model_version=model.version,
        policy_source=policy_source,
        rows=rows,
    )
    result.run_id = _log_run(cfg, tracking_uri, experiment_id, result, model, listings)
    log.info(result.summary_line())
    return result


def _model_label(model: LoadedModel) -> str:
    """Short name for titles: ``ipguard-image v3``, or ``ipguard-image (checkpoint)``."""
    name = model.spec.registered_model
    return f"{name} v{model.version}" if model.version else f"{name} ({model.source})"


# --- models ---------------------------------------------------------------------------------


def load_model(cfg: DictConfig, scratch: Path) -> LoadedModel:
    """Whatever ``cfg.model_uri`` names, as a scorer plus its spec; files go under ``scratch``."""
    target = str(cfg.model_uri or "")
    if not target:
        raise ValueError(
            "model_uri: expected a models:/ or runs:/ URI, a model folder or a .ckpt, found nothing"
        )
    if target.startswith(("models:/", "runs:/")):
        return _from_uri(target, scratch)
    path = Path(target).expanduser()
    if path.is_dir():
        return _from_folder(path)
    if path.suffix == ".ckpt" and path.is_file():
        return _from_checkpoint(path, cfg, scratch)
    raise ValueError(
        f"model_uri={target}: expected a models:/ or runs:/ URI, a folder with {SPEC_FILE} or an "
        f"existing .ckpt file; found {'a file of another kind' if path.exists() else 'nothing'}"
        " there"
    )


def _from_uri(uri: str, scratch: Path) -> LoadedModel:
    """The served pyfunc, downloaded once; its spec read from the ``model_dir`` artifact."""
    import mlflow
    from mlflow.models import Model
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    name, version, version_tags = _registry_version(client, uri)
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(scratch)))
    meta = Model.load(str(local))
    folder = folder_in_logged_model(local)
    if folder is None:
        artifacts = meta.flavors.get("python_function", {}).get("artifacts") or {}
        raise ValueError(
            f"model_uri={uri}: expected an ipguard pyfunc with a 'model_dir' artifact holding "
            f"{SPEC_FILE}, found artifacts {sorted(artifacts)}"
        )
    spec = ModelSpec.load(folder)
    pyfunc = mlflow.pyfunc.load_model(str(local))
    run_id = meta.run_id
    fingerprint = version_tags.get("data_fingerprint")
    if fingerprint is None and run_id:
        fingerprint = client.get_run(run_id).data.tags.get("data_fingerprint")
    version = version or spec.model_version
    return LoadedModel(
        uri=f"models:/{name}/{version}" if name and version else uri,
        source="registry" if uri.startswith("models:/") else "run",
        scorer=pyfunc.predict,
        spec=spec,
        policy=Policy.from_dict(spec.policy),
        version=version,
        training_run_id=run_id,
        training_fingerprint=fingerprint,
    )


def _registry_version(client: Any, uri: str) -> tuple[str | None, str | None, dict[str, str]]:
    """``(name, version, version tags)`` for ``models:/name@alias`` or ``models:/name/N``."""
    from mlflow.exceptions import MlflowException

    match = _MODELS_URI.match(uri)
    if not match:
        return None, None, {}
    name = match["name"]
    try:
        if match["alias"]:
            mv = client.get_model_version_by_alias(name, match["alias"])
        else:
            mv = client.get_model_version(name, match["version"])
    except MlflowException as err:
        raise ValueError(
            f"model_uri={uri}: not in the registry at {client.tracking_uri} ({err.message})"
        ) from err
    return name, str(mv.version), dict(mv.tags or {})


def _from_folder(folder: Path) -> LoadedModel:
    from ipguard.serving.scorer import ListingScorer

    if not (folder / SPEC_FILE).is_file():
        raise ValueError(
            f"model_uri={folder}: expected an exported ipguard model folder with {SPEC_FILE}, "
            f"found {sorted(p.name for p in folder.iterdir())[:10]}"
        )
    scorer = ListingScorer.load(folder)
    return LoadedModel(
        uri=str(folder.resolve()),
        source="folder",
        scorer=scorer.score,
        spec=scorer.spec,
        policy=scorer.policy,
        version=scorer.spec.model_version,
    )


def _from_checkpoint(path: Path, cfg: DictConfig, scratch: Path) -> LoadedModel:
    """Re-export the checkpoint with an identity calibrator, then score it like a folder."""
    import torch

    from ipguard.evaluation.calibration import IdentityCalibrator
    from ipguard.registry.package import write_model_dir
    from ipguard.serving.scorer import ListingScorer

    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    hparams = dict(checkpoint.get("hyper_parameters") or {})
    module_class = checkpoint_class(path, hparams, cfg.get("model_class"))
    # The checkpoint's weights replace any pretrained ones, so never look for those offline.
    overrides = {k: v for k, v in (("pretrained", False), ("weights_path", None)) if k in hparams}
    module = module_class.load_from_checkpoint(path, map_location="cpu", **overrides)
    placeholder = Policy(reject_threshold=1.0, approve_threshold=0.0)  # report picks the real one
    folder, _ = write_model_dir(
        module,
        scratch / "checkpoint_model",
        calibrator=IdentityCalibrator().to_dict(),
        policy=placeholder.to_dict(),
        extras=_checkpoint_extras(module, cfg),
    )
    scorer = ListingScorer.load(folder)
    return LoadedModel(
        uri=str(path.resolve()),
        source="checkpoint",
        scorer=scorer.score,
        spec=scorer.spec,
        policy=None,
    )


def checkpoint_class(path: Path, hparams: dict[str, Any], model_class: str | None) -> type:
    """The LightningModule class to rebuild ``path`` with.

    Lightning checkpoints store the constructor arguments but not the class, so unless
    ``model_class`` names it, the class is the one LightningModule among the model configs
    (``configs/model/*.yaml``) whose constructor accepts these hyper-parameters and needs no
    others; none or several is an error asking for ``model_class``.
    """
    from hydra.utils import get_class

    from ipguard.config import CONFIG_DIR

    if model_class:
        return get_class(str(model_class))
    matches: dict[str, type] = {}
    for file in sorted((CONFIG_DIR / "model").glob("*.yaml")):
        target = OmegaConf.load(file).get("_target_")
        if not target:
            continue
        try:
            candidate = get_class(str(target))
        except ImportError:  # a model whose optional dependencies are not installed
            continue
        if _accepts(candidate, hparams):
            matches[str(target)] = candidate
    if len(matches) == 1:
        return next(iter(matches.values()))
    found = sorted(matches) if matches else "no model config"
    raise ValueError(
        f"{path}: cannot tell the model class from its hyper-parameters "
        f"{sorted(hparams)}: {found} match; set model_class=<module>.<Class>"
    )


def _accepts(candidate: type, hparams: dict[str, Any]) -> bool:
    """Whether ``candidate(**hparams)`` binds: every key known, every required one given."""
    if not hasattr(candidate, "load_from_checkpoint"):
        return False
    params = [
        p
        for name, p in inspect.signature(candidate.__init__).parameters.items()
        if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    names = {p.name for p in params}
    required = {p.name for p in params if p.default is p.empty}
    return bool(hparams) and set(hparams) <= names and required <= set(hparams)


def _checkpoint_extras(module: Any, cfg: DictConfig) -> dict[str, Any]:
    """Serving-time data state a re-exported checkpoint needs (the tabular featurizer)."""
    if "tabular" not in getattr(module, "modalities", ()):
        return {}
    from ipguard.data.tabular import TabularFeaturizer

    brands = cfg.get("brands") or (_demo(cfg).catalog_path if not cfg.get("manifest") else None)
    if brands is None:
        raise ValueError(
            f"model_uri={cfg.model_uri}: this model reads tabular features, which need the brand "
            "catalog; set brands=<path to brands.csv>"
        )
    return {"tabular": TabularFeaturizer.from_catalog(brands).to_dict()}


# --- listings -------------------------------------------------------------------------------


@dataclass
class Listings:
    """The validated rows to evaluate, where they came from, and how many were set aside."""

    frame: pd.DataFrame
    manifest: Path
    root: Path
    fingerprint: str
    rows: dict[str, int]
    split_source: str | None = None


def _demo(cfg: DictConfig) -> Any:
    from ipguard.data.synthetic import ensure_demo_data

    return ensure_demo_data(cfg.demo.dir, n=int(cfg.demo.n), seed=int(cfg.demo.seed))


def load_listings(
    cfg: DictConfig, report_dir: Path, model: LoadedModel | None, scratch: Path
) -> Listings:
    """Validate the manifest (rejects written in quarantine mode) and keep the chosen split.

    Reads ``manifest`` (else the ``demo`` listings), ``on_error``, ``check_images``, ``split``
    and ``split_file`` from ``cfg``; ``model`` is only needed to find its training run's
    splits.csv when ``split`` is set without ``split_file``.
    """
    from ipguard.data.fingerprint import dataset_fingerprint
    from ipguard.data.io import manifest_root
    from ipguard.data.schema import load_manifest

    if cfg.get("manifest"):
        manifest = Path(str(cfg.manifest)).expanduser()
        if not manifest.exists():
            raise FileNotFoundError(f"manifest={cfg.manifest}: no such file or folder")
    else:
        manifest = _demo(cfg).manifest_path
    quarantine = cfg.on_error == "quarantine"
    validation = load_manifest(
        manifest,
        on_error=cfg.on_error,
        require_label=True,
        check_images=bool(cfg.check_images),
        rejects_path=report_dir / "rejects.csv" if quarantine else None,
        label_values=cfg.get("label_values"),  # a DictConfig is a Mapping, as training passes it
        encoding=cfg.get("encoding"),
    )
    root = manifest_root(manifest)
    frame = validation.valid.reset_index(drop=True)
    fingerprint = dataset_fingerprint(frame, root)
    rows = {
        "in": validation.rows_in,
        "valid": validation.rows_valid,
        "rejected": validation.rows_rejected,
    }
    if frame.empty:
        raise ValueError(
            f"{manifest}: no valid listing to evaluate ({validation.summary()}"
            + (f"; see {report_dir / 'rejects.csv'})" if quarantine else ")")
        )
    listings = Listings(frame, manifest.resolve(), root, fingerprint, rows)
    if cfg.get("split"):
        split_file, described = _split_file(cfg, model, scratch)
        listings = _keep_split(listings, str(cfg.split), split_file, described)
    return listings


def _split_file(cfg: DictConfig, model: LoadedModel | None, scratch: Path) -> tuple[Path, str]:
    """``cfg.split_file``, or the ``data/splits.csv`` logged with the model's training run;
    with a description of it for the report."""
    if cfg.get("split_file"):
        path = Path(str(cfg.split_file)).expanduser()
        return path, str(path.resolve())
    if model is None or model.training_run_id is None:
        raise ValueError(
            f"split={cfg.split}: model_uri={cfg.get('model_uri')} has no training run to take "
            "splits.csv from; set split_file=<path to the training run's splits.csv>"
        )
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        local = mlflow.artifacts.download_artifacts(
            run_id=model.training_run_id,
            artifact_path="data/splits.csv",
            dst_path=str(scratch / "splits"),
        )
    except (MlflowException, OSError) as err:
        raise ValueError(
            f"split={cfg.split}: the training run {model.training_run_id} of {model.uri} has no "
            f"data/splits.csv artifact ({err}); set split_file=<path>"
        ) from err
    return Path(local), f"data/splits.csv of training run {model.training_run_id}"


def _keep_split(listings: Listings, split: str, split_file: Path, described: str) -> Listings:
    from ipguard.data.splits import SPLITS, load_splits

    if split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS} or null, found {split!r}")
    assigned = load_splits(split_file, listings.frame)
    keep = (assigned == split).to_numpy()
    listings.frame = listings.frame[keep].reset_index(drop=True)
    listings.rows["outside_split"] = int((~keep).sum())
    listings.split_source = f"{split} rows of {described}"
    if listings.frame.empty:
        raise ValueError(f"{split_file}: no listing of the manifest is in split {split!r}")
    return listings


def request_frame(frame: pd.DataFrame, root: Path) -> pd.DataFrame:
    """Validated rows as a screening service would send them (the model contract's inputs).

    Relative image paths are resolved against the manifest folder, because the model reads
    them from whatever directory it runs in; columns that are entirely missing are left out
    rather than sent as typed nulls.
    """
    out = pd.DataFrame(index=frame.index)
    for column in _REQUEST_TEXT:
        if column in frame and frame[column].notna().any():
            values = frame[column].astype(object)
            out[column] = values.where(frame[column].notna(), None)
    if "image_path" in out:
        out["image_path"] = [
            None if p is None else str(p if Path(p).is_absolute() else root / p)
            for p in out["image_path"]
        ]
    if "listed_at" in frame and frame["listed_at"].notna().any():
        stamps = frame["listed_at"].dt.strftime("%Y-%m-%dT%H:%M:%SZ").astype(object)
        out["listed_at"] = stamps.where(frame["listed_at"].notna(), None)
    if "price" in frame and frame["price"].notna().any():
        out["price"] = frame["price"].astype("float64")
    return out.reset_index(drop=True)


def score_listings(
    scorer: Scorer, frame: pd.DataFrame, root: Path, batch_size: int
) -> pd.DataFrame:
    """The model's output for every row, in order, ``batch_size`` listings per call."""
    if int(batch_size) < 1:
        raise ValueError(f"batch_size: expected an int >= 1, found {batch_size!r}")
    request = request_frame(frame, root)
    parts = []
    for start in range(0, len(request), int(batch_size)):
        batch = request.iloc[start : start + int(batch_size)].reset_index(drop=True)
        out = pd.DataFrame(scorer(batch))
        if len(out) != len(batch):
            raise ValueError(
                f"the model returned {len(out)} rows for a batch of {len(batch)} listings "
                f"(rows {start}-{start + len(batch) - 1}); expected one row per listing"
            )
        parts.append(out)
        log.info("scored %d / %d listings", start + len(batch), len(request))
    return pd.concat(parts, ignore_index=True)


def _split_not_scored(
    frame: pd.DataFrame, scored: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows with a score, and those the model could not score (reported, never dropped quietly).

    The service sends an unscored listing to review; the ranking metrics cannot include it, so
    it is counted and listed with its flags in ``not_scored.csv`` instead.
    """
    keep = ["score", "decision", "image_score", "text_score", "flags", "model_version"]
    ids = frame["listing_id"].astype(str).to_numpy()
    if len(scored) != len(frame) or not (scored["listing_id"].astype(str).to_numpy() == ids).all():
        raise ValueError(
            "the model's output does not echo the listing ids in request order; expected "
            f"{len(frame)} rows starting {list(ids[:3])}, found {list(scored['listing_id'][:3])}"
        )
    merged = frame.drop(columns=[c for c in keep if c in frame]).assign(
        **{c: scored[c].to_numpy() for c in keep if c in scored}
    )
    merged["score"] = pd.to_numeric(merged["score"], errors="coerce").astype("float64")
    ok = np.isfinite(merged["score"].to_numpy())
    return merged[ok].reset_index(drop=True), merged[~ok].reset_index(drop=True)


def _fill_languages(frame: pd.DataFrame) -> int:
    """Detect the language of listings that do not state one, so the language slice is whole;
    returns how many were detected."""
    from ipguard.text.language import detect_languages

    if "language" not in frame:
        frame["language"] = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    missing = frame["language"].isna().to_numpy()
    if missing.any():
        titles = frame.loc[missing, "title"].astype(object).where(frame["title"].notna(), None)
        detected = detect_languages(titles.tolist())
        frame["language"] = frame["language"].astype(object)
        frame.loc[missing, "language"] = detected
    return int(missing.sum())


# --- policy and metrics ---------------------------------------------------------------------


def configured_policy(settings: DictConfig | dict[str, Any]) -> Policy | None:
    """The policy set by ``policy.reject_threshold`` and ``policy.approve_threshold``, if any.

    Checked before anything is loaded or scored, so a half-given override fails at once.
    """
    reject, approve = settings.get("reject_threshold"), settings.get("approve_threshold")
    if (reject is None) != (approve is None):
        raise ValueError(
            "policy.reject_threshold and policy.approve_threshold: expected both or neither, "
            f"found reject_threshold={reject!r}, approve_threshold={approve!r}"
        )
    if reject is None:
        return None
    return Policy(float(reject), float(approve), notes=(CONFIG_POLICY_NOTE,))


def choose_policy(
    settings: DictConfig | dict[str, Any],
    configured: Policy | None,
    stored: Policy | None,
    evaluated: pd.DataFrame,
) -> tuple[Policy, str]:
    """The thresholds the report applies, and where they came from.

    Config thresholds win (to ask "what if we moved the threshold?"), then the model's own
    policy; a checkpoint without either gets one fitted on the evaluated listings to the
    ``settings`` targets, marked as optimistic in its notes so every reader of the report sees it.
    """
    from ipguard.evaluation.policy import fit_policy_from_settings

    if configured is not None:
        return configured, "config"
    if stored is not None:
        return stored, "model"
    fitted = fit_policy_from_settings(
        evaluated["score"].to_numpy(), evaluated["label"].to_numpy(), settings
    )
    return replace(fitted, notes=(*fitted.notes, OPTIMISTIC_NOTE)), "fitted_on_evaluated_data"


def flat_metrics(report: EvaluationReport) -> dict[str, float]:
    """Headline figures as one flat dict; bootstrapped ones with ``_ci_low``/``_ci_high``."""
    out: dict[str, float] = {}
    for row in report.metrics.itertuples(index=False):
        out[str(row.metric)] = float(row.value)
        out[f"{row.metric}_ci_low"] = float(row.ci_low)
        out[f"{row.metric}_ci_high"] = float(row.ci_high)
    for name, value in report.headline.items():
        out.setdefault(name, float(value))
    return out


# --- what the folder holds beyond build_report -----------------------------------------------


def _write_tables(report_dir: Path, evaluated: pd.DataFrame) -> None:
    from ipguard.evaluation.calibration import reliability_table

    columns = ["listing_id", "label", "score", "decision", "image_score", "text_score", "flags"]
    evaluated[[c for c in columns if c in evaluated]].to_csv(report_dir / "scores.csv", index=False)
    reliability_table(evaluated["score"].to_numpy(), evaluated["label"].to_numpy()).to_csv(
        report_dir / "reliability.csv", index=False
    )


def _write_not_scored(report_dir: Path, not_scored: pd.DataFrame) -> None:
    if len(not_scored):
        keep = [c for c in ("listing_id", "label", "image_path", "flags") if c in not_scored]
        not_scored[keep].to_csv(report_dir / "not_scored.csv", index=False)


def _describe_calibrator(stored: dict[str, Any]) -> str:
    method = str(stored.get("method", "none"))
    if method == "temperature":
        return f"temperature scaling, T = {float(stored['temperature']):.4g}"
    if method == "isotonic":
        return f"isotonic, {len(stored.get('x', []))} breakpoints"
    return method


def _insert_details(
    markdown: Path,
    model: LoadedModel,
    listings: Listings,
    policy_source: str,
    rows: dict[str, int],
    languages_detected: int,
) -> None:
    """Put what was evaluated, and every caveat, right under the report's header."""
    spec = model.spec
    calibrator = _describe_calibrator(spec.calibrator)
    if model.source == "checkpoint":
        calibrator += " (checkpoint: raw sigmoid scores, so ECE is the uncalibrated one)"
    path = {
        "registry": "mlflow.pyfunc.load_model(...).predict (the served model)",
        "run": "mlflow.pyfunc.load_model(...).predict (the served model)",
        "folder": "ListingScorer on the exported folder",
        "checkpoint": "checkpoint re-exported to a temporary folder, scored by ListingScorer",
    }[model.source]
    accounting = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in rows.items())
    lines = [
        "## What was evaluated",
        "",
        f"- Model kind `{spec.kind}`, registered name `{spec.registered_model}`, version "
        f"{model.version or 'n/a'}; source: {model.source}",
        f"- Scored by: {path}",
        f"- Calibrator: {calibrator}",
        f"- Policy: {policy_source.replace('_', ' ')}",
        f"- Manifest: `{listings.manifest}`",
        f"- Data fingerprint: `{listings.fingerprint}`",
        f"- Rows: {accounting}",
    ]
    if listings.split_source:
        lines.append(f"- Split: {listings.split_source}")
    if languages_detected:
        lines.append(
            f"- Language detected for {languages_detected} listing(s) that did not state one"
        )
    warnings = []
    if (
        model.training_fingerprint
        and model.training_fingerprint == listings.fingerprint
        and not listings.split_source
    ):
        warnings.append(
            "This manifest is the model's own training data (same fingerprint), train and "
            "validation rows included: every figure is optimistic. Evaluate with split=test."
        )
        log.warning("%s", warnings[-1])
    if policy_source == "fitted_on_evaluated_data":
        warnings.append("The policy was " + OPTIMISTIC_NOTE + ".")
    if rows.get("not_scored"):
        warnings.append(
            f"{rows['not_scored']} listing(s) could not be scored (see not_scored.csv) and are "
            "not in the figures; the screening service sends them to review."
        )
    if rows.get("rejected"):
        warnings.append(f"{rows['rejected']} invalid row(s) set aside, see rejects.csv.")
    lines += [""] + [f"> **Caveat:** {w}" for w in warnings] if warnings else []
    section = "\n".join(lines)
    text = markdown.read_text(encoding="utf-8")
    anchor = "\n\n## Policy"
    text = (
        text.replace(anchor, f"\n\n{section}{anchor}", 1)
        if anchor in text
        else f"{text.rstrip()}\n\n{section}\n"
    )
    markdown.write_text(text, encoding="utf-8")


# --- MLflow ---------------------------------------------------------------------------------


def _log_run(
    cfg: DictConfig,
    tracking_uri: str,
    experiment_id: str,
    result: EvaluationResult,
    model: LoadedModel,
    listings: Listings,
) -> str:
    """One run per evaluation: figures with their CI bounds, the report folder, provenance."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    tags = {
        "task": "evaluate",
        "model_uri": str(cfg.model_uri),
        "model_uri_resolved": model.uri,
        "model_version": model.version or "",
        "model_kind": model.spec.kind,
        "model_source": model.source,
        "manifest": str(listings.manifest),
        "data_fingerprint": listings.fingerprint,
        "policy_source": result.policy_source,
        "split": listings.split_source or "all",
    }
    if model.training_run_id:
        tags["training_run_id"] = model.training_run_id
    name = cfg.get("run_name") or f"{model.uri} on {listings.manifest.name}"
    run = client.create_run(experiment_id, run_name=name, tags=tags)
    run_id = run.info.run_id
    try:
        stamp = int(run.info.start_time)
        metrics = [
            Metric(f"eval/{k}", float(v), stamp, 0)
            for k, v in result.metrics.items()
            if math.isfinite(v)
        ]
        metrics += [Metric(f"data/rows_{k}", float(v), stamp, 0) for k, v in result.rows.items()]
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
        client.log_artifacts(run_id, str(result.report.markdown_path.parent), REPORT_FOLDER)
    except Exception:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    return run_id
