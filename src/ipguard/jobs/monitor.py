"""``monitor(cfg)``: a window of scored traffic against its model's reference profile.

A scheduler runs ``ipguard-monitor model_uri=models:/ipguard-listing@champion traffic=PATH``
over yesterday's scored listings (``ipguard-score``'s output kept with the request columns, or
a service's log of requests and answers) and pages when it exits 3. The job:

1. resolves the model (registry URI, run URI or exported folder) and reads the profile stored
   in its folder (:mod:`ipguard.monitoring.profile`); a model exported before profiles has
   none, and is compared with ``reference=PATH`` (a window of traffic from when it was
   trusted) or refused with a message that says so;
2. reads the traffic (CSV, Parquet or JSON lines; a file, folder or glob of parts) and checks
   it has every column the chosen checks need, naming the file and the column otherwise;
3. runs ipguard's checks (:func:`ipguard.monitoring.drift.compare`: score PSI, lane rates,
   input drift overall and per market, language and category, unseen values) and Evidently's
   data-drift preset beside them (:mod:`ipguard.monitoring.evidently_report`);
4. writes the report folder: ``summary.json`` (each check's statistic, threshold, drifted flag
   and slice), ``checks.parquet`` (the same checks as one table), ``evidently.html`` and the
   PNG plots; logs it to MLflow as a run tagged with the model's name, version and run id;
5. returns ``exit_code`` 3 when any check drifted, else 0 (the CLI exits with it).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.metadata import version as distribution_version
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from ipguard.data.columns import SOURCE_FILE, SOURCE_ROW
from ipguard.data.io import read_manifest
from ipguard.jobs.run import announce, job_tracking, resolve_output_dir
from ipguard.monitoring.drift import Check, Thresholds, compare, compared_columns
from ipguard.monitoring.evidently_report import evidently_drift
from ipguard.monitoring.features import CATEGORICAL
from ipguard.monitoring.plots import plot_report
from ipguard.monitoring.profile import PROFILE_FILE, Profile, build_profile, load_profile
from ipguard.monitoring.window import TrafficWindow
from ipguard.registry.lookup import NotRegisteredError, registered_version
from ipguard.serving.spec import SPEC_FILE, ModelSpec, folder_in_logged_model

__all__ = ["ALERT_EXIT_CODE", "MonitorInputError", "MonitorResult", "monitor"]

log = logging.getLogger(__name__)

ALERT_EXIT_CODE = 3
SUMMARY_FILE = "summary.json"
CHECKS_FILE = "checks.parquet"
SUMMARY_VERSION = 1
#: columns each input feature is read from in the traffic
FEATURE_COLUMNS: dict[str, tuple[str, ...]] = {
    "text_length": ("title",),
    "unknown_words": ("title",),
    "price_ratio": ("price", "currency"),
    "flags": ("flags",),
    **{c: (c,) for c in CATEGORICAL},
}


class MonitorInputError(ValueError):
    """The model, the profile or the traffic cannot be monitored as given (exit code 1)."""


@dataclass
class ModelRef:
    """The monitored model: its exported folder and where it sits in the registry."""

    uri: str
    folder: Path
    spec: ModelSpec
    name: str | None = None
    version: str | None = None
    run_id: str | None = None


@dataclass
class MonitorResult:
    """What one monitoring run found; ``summary_line`` is the line scripts parse."""

    report_dir: Path
    model: ModelRef
    rows: int
    reference: str
    checks: list[Check]
    alerts: list[Check]
    exit_code: int
    tracking_uri: str
    run_id: str | None = None
    notes: list[str] = field(default_factory=list)

    def summary_line(self) -> str:
        name = self.model.name or self.model.spec.registered_model
        return (
            f"ipguard: monitored {name} v{self.model.version or 'unregistered'} "
            f"rows={self.rows} checks={len(self.checks)} alerts={len(self.alerts)} "
            f"exit_code={self.exit_code} report={self.report_dir} tracking_uri={self.tracking_uri}"
        )


def monitor(cfg: DictConfig) -> MonitorResult:
    """Compare ``cfg.traffic`` with the model's reference; see the module docstring."""
    thresholds = Thresholds(**OmegaConf.to_container(cfg.thresholds, resolve=True))  # type: ignore[arg-type]
    tracking = job_tracking(cfg)
    client = MlflowClient(tracking.uri, registry_uri=tracking.uri)
    report_dir = (
        Path(str(cfg.output)).expanduser() if cfg.get("output") else resolve_output_dir(cfg)
    )
    report_dir.mkdir(parents=True, exist_ok=True)
    model = resolve_model(str(cfg.model_uri), report_dir / ".model", client)
    profile, reference = _reference(cfg, model)
    traffic_path = str(cfg.traffic)
    traffic = _read(traffic_path, "traffic", cfg.get("encoding"))
    features = _features(cfg, profile)
    _require_columns(traffic, traffic_path, features)
    numeric, categorical = compared_columns(profile, features)
    # every text normalised and every price matched once, for the checks, Evidently and plots
    window = TrafficWindow.of(traffic, profile, numeric, categorical)
    checks = compare(profile, window, thresholds, features=features)
    notes = _version_notes(traffic, model)
    if cfg.get("evidently", True):
        checks.append(
            _evidently_check(profile, window, numeric + categorical, report_dir, thresholds)
        )
    alerts = [c for c in checks if c.drifted]
    result = MonitorResult(
        report_dir=report_dir,
        model=model,
        rows=len(traffic),
        reference=reference,
        checks=checks,
        alerts=alerts,
        exit_code=ALERT_EXIT_CODE if alerts else 0,
        tracking_uri=tracking.uri,
        notes=notes,
    )
    plot_report(profile, window, checks, report_dir, numeric=numeric, categorical=categorical)
    shutil.rmtree(report_dir / ".model", ignore_errors=True)
    _write_summary(result, cfg, profile, thresholds, traffic_path)
    result.run_id = _log_run(result, client, tracking.experiment_id, traffic_path)
    announce(result)
    return result


# --- the model and its reference ------------------------------------------------------------


def resolve_model(uri: str, scratch: Path, client: MlflowClient) -> ModelRef:
    """The exported folder behind ``uri`` (``models:/``, ``runs:/`` or a folder), downloaded
    under ``scratch`` when it lives in the store, with its registry name, version and run."""
    if not uri.startswith(("models:/", "runs:/")):
        folder = Path(uri).expanduser()
        if not (folder / SPEC_FILE).is_file():
            folder = folder_in_logged_model(folder) or folder
        if not (folder / SPEC_FILE).is_file():
            raise MonitorInputError(
                f"model_uri={uri}: expected models:/<name>@<alias>, models:/<name>/<version>, "
                f"runs:/<run>/model or an exported model folder with {SPEC_FILE}"
            )
        spec = ModelSpec.load(folder)
        return ModelRef(str(folder.resolve()), folder, spec, None, spec.model_version)
    name = version = run_id = None
    if uri.startswith("models:/"):
        name, version, run_id = _registered(uri, client)
    try:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=uri, dst_path=str(scratch), tracking_uri=client.tracking_uri
        )
    except (MlflowException, OSError) as err:
        raise MonitorInputError(f"model_uri={uri}: could not download it ({err})") from err
    folder = folder_in_logged_model(local)
    if folder is None:
        raise MonitorInputError(f"model_uri={uri}: not an ipguard model (no {SPEC_FILE} inside)")
    spec = ModelSpec.load(folder)
    return ModelRef(uri, folder, spec, name, version or spec.model_version, run_id)


def _registered(uri: str, client: MlflowClient) -> tuple[str, str, str | None]:
    try:
        mv = registered_version(client, uri)
    except NotRegisteredError as err:
        raise MonitorInputError(f"model_uri={err}") from err
    return mv.name, str(mv.version), mv.run_id


def _reference(cfg: DictConfig, model: ModelRef) -> tuple[Profile, str]:
    """The stored profile, or one built from ``reference=PATH`` (which wins when given)."""
    if cfg.get("reference"):
        path = str(cfg.reference)
        frame = _read(path, "reference", cfg.get("encoding"))
        for column in ("score", "decision"):
            if column not in frame:
                raise MonitorInputError(
                    f"reference={path}: expected the model's output column {column!r} "
                    f"(scored traffic, as ipguard-score writes it); found {_columns(frame)}"
                )
        source = f"reference window {path}"
        return build_profile(frame, policy=model.spec.policy, source=source), source
    profile = load_profile(model.folder)
    if profile is None:
        raise MonitorInputError(
            f"model_uri={cfg.model_uri}: this model (version {model.version or 'unregistered'}) "
            f"has no reference profile ({PROFILE_FILE}): it was exported before ipguard stored "
            "one. Pass reference=<a window of traffic this model scored while it was trusted>, "
            "or re-export it (ipguard-export model_dir=... manifest=<its validation rows>)"
        )
    return profile, f"profile of {model.uri} ({profile.source}, {profile.rows} rows)"


# --- the traffic ----------------------------------------------------------------------------


def _read(path: str, what: str, encoding: str | None) -> pd.DataFrame:
    try:
        frame = read_manifest(path, encoding=encoding)
    except (OSError, ValueError) as err:
        raise MonitorInputError(f"{what}={path}: {err}") from err
    if frame.empty:
        raise MonitorInputError(f"{what}={path}: no rows")
    return frame


def _columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in (SOURCE_FILE, SOURCE_ROW)]


def _features(cfg: DictConfig, profile: Profile) -> list[str]:
    available = [*profile.features, "flags"]
    chosen = list(cfg.features) if cfg.get("features") is not None else available
    unknown = [f for f in chosen if f not in FEATURE_COLUMNS]
    if unknown:
        raise MonitorInputError(
            f"features={chosen}: unknown feature(s) {unknown}; expected some of "
            f"{sorted(FEATURE_COLUMNS)}"
        )
    return [f for f in chosen if f in available]


def _require_columns(traffic: pd.DataFrame, path: str, features: list[str]) -> None:
    needed = {"score": "score", "decision": "decision"}
    for feature in features:
        needed.update({column: feature for column in FEATURE_COLUMNS[feature]})
    missing = [c for c in needed if c not in traffic]
    if missing:
        uses = ", ".join(f"{c} (for {needed[c]})" for c in missing)
        raise MonitorInputError(
            f"traffic={path}: missing column(s) {uses}; found {_columns(traffic)}. Keep the "
            "request columns when scoring (ipguard-score keep=[title,market,...]) or leave the "
            "feature out (features=[...])"
        )
    scores = pd.to_numeric(traffic["score"], errors="coerce")
    bad = traffic["score"].notna() & scores.isna()
    if bad.any():
        row = traffic.loc[bad].iloc[0]
        raise MonitorInputError(
            f"traffic={path}: column score is not a number in {int(bad.sum())} row(s), first "
            f"in file {row.get(SOURCE_FILE)} row {row.get(SOURCE_ROW)}: {row['score']!r}"
        )


def _version_notes(traffic: pd.DataFrame, model: ModelRef) -> list[str]:
    """Say so when the traffic was scored by another version than the one monitored."""
    if "model_version" not in traffic or model.version is None:
        return []
    seen = sorted({str(v) for v in traffic["model_version"].dropna()} - {str(model.version)})
    if not seen:
        return []
    note = f"traffic rows scored by version(s) {seen}, monitored against version {model.version}"
    log.warning(note)
    return [note]


def _evidently_check(
    profile: Profile, traffic: TrafficWindow, columns: list[str], folder: Path, t: Thresholds
) -> Check:
    drift = evidently_drift(
        profile,
        traffic,
        columns,
        folder / "evidently.html",
        drift_share=t.drift_share,
        psi_threshold=t.feature_psi,
    )
    return Check(
        "dataset_drift_share",
        "evidently",
        drift.drift_share,
        t.drift_share,
        bool(drift.drift_share >= t.drift_share),
        profile.rows,
        len(traffic),
        detail={"drifted_columns": drift.drifted_columns, "columns": drift.columns},
    )


# --- the report -----------------------------------------------------------------------------


def _write_summary(
    result: MonitorResult, cfg: DictConfig, profile: Profile, t: Thresholds, traffic: str
) -> None:
    m = result.model
    summary: dict[str, Any] = {
        "summary_version": SUMMARY_VERSION,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "ipguard_version": distribution_version("ipguard"),
        "model": {"uri": m.uri, "name": m.name, "version": m.version, "run_id": m.run_id},
        "traffic": {"path": traffic, "rows": result.rows},
        "reference": {"described": result.reference, "rows": profile.rows},
        "thresholds": OmegaConf.to_container(cfg.thresholds, resolve=True),
        "exit_code": result.exit_code,
        "alerts": [c.describe() for c in result.alerts],
        "notes": result.notes,
        "checks": [c.to_dict() for c in result.checks],
    }
    (result.report_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=1, default=str))
    table = pd.DataFrame(
        [{k: v for k, v in c.to_dict().items() if k != "detail"} for c in result.checks]
    )
    table["detail"] = [json.dumps(c.detail, default=str) for c in result.checks]
    table.to_parquet(result.report_dir / CHECKS_FILE, index=False)


def _log_run(result: MonitorResult, client: MlflowClient, experiment_id: str, traffic: str) -> str:
    m = result.model
    tags = {
        "task": "monitor",
        "model_name": m.name or m.spec.registered_model,
        "model_version": m.version or "unregistered",
        "model_run_id": m.run_id or "",
        "model_uri": m.uri,
        "traffic": traffic,
        "alerts": str(len(result.alerts)),
        "exit_code": str(result.exit_code),
    }
    run = client.create_run(
        experiment_id, run_name=f"monitor {tags['model_name']} v{tags['model_version']}", tags=tags
    )
    run_id = run.info.run_id
    client.log_metric(run_id, "monitor/rows", result.rows)
    client.log_metric(run_id, "monitor/alerts", len(result.alerts))
    for c in result.checks:
        usable = c.statistic is not None and math.isfinite(c.statistic)
        if c.slice_column is None and usable and c.check != "new_value":
            client.log_metric(run_id, f"monitor/{c.check}/{c.feature}", float(c.statistic))
    client.log_artifacts(run_id, str(result.report_dir), "monitor_report")
    client.set_terminated(run_id)
    return run_id
