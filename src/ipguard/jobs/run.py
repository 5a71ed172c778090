"""The plumbing every job shares: its output folder, its tracking store, its provenance tags,
and the one summary line it ends with.

Tracking defaults to an embedded sqlite store, so a fresh clone needs no server: tracking and
registry live in ``<root>/mlflow.db`` and artifacts in ``<root>/mlartifacts``; a team sets
``MLFLOW_TRACKING_URI`` to a real server. Experiments are created with an explicit artifact
location so artifacts never land in the ``./mlruns`` of whatever directory happened to be
current.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import mlflow
from hydra.core.hydra_config import HydraConfig
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

log = logging.getLogger(__name__)

_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
_REFUSALS = {401: "not authenticated", 403: "permission denied"}


# --- output folder --------------------------------------------------------------------------


def resolve_output_dir(cfg: DictConfig) -> Path:
    """Hydra's run folder under the CLI (shared by DDP ranks), a timestamped one otherwise."""
    if cfg.paths.get("output_dir"):
        return Path(cfg.paths.output_dir).resolve()
    try:
        return Path(HydraConfig.get().runtime.output_dir).resolve()
    except ValueError:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
        return (Path(cfg.paths.root_dir) / "runs" / stamp).resolve()


# --- tracking -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tracking:
    """Where a job records its run: the store's URI and the experiment's id."""

    uri: str
    experiment_id: str


def resolve_tracking_uri(tracking_uri: str | None, root: str | Path) -> str:
    """``MLFLOW_TRACKING_URI`` wins, then the config, then ``sqlite:///<root>/mlflow.db``."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    if tracking_uri:
        return tracking_uri
    return f"sqlite:///{(Path(root).resolve() / 'mlflow.db').as_posix()}"


@contextmanager
def uri_environment_kept() -> Iterator[None]:
    """Undo MLflow's export of the store URIs as environment variables on the way out.

    ``mlflow.set_tracking_uri`` also sets ``MLFLOW_TRACKING_URI`` whenever the URI changes;
    left in place it would pin every later run of the process (a notebook, a test session) to
    this run's store, because the variable wins in :func:`resolve_tracking_uri`.
    """
    before = {name: os.environ.get(name) for name in _URI_VARIABLES}
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def set_store_uris(uri: str) -> None:
    """Point MLflow's tracking and registry at ``uri``, leaving the environment as it was."""
    with uri_environment_kept():
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)


def configure_tracking(
    tracking_uri: str | None, root: str | Path, experiment: str
) -> tuple[str, str]:
    """Point MLflow at the store (tracking and registry) and return (uri, experiment_id)."""
    uri = resolve_tracking_uri(tracking_uri, root)
    set_store_uris(uri)
    client = MlflowClient(uri)
    with refusals_explained(uri, f"read experiment {experiment!r}"):
        found = client.get_experiment_by_name(experiment)
    if found is not None:
        return uri, found.experiment_id
    artifacts = None
    if uri.startswith("sqlite:") or uri.startswith("file:") or "://" not in uri:
        artifacts = (Path(root).resolve() / "mlartifacts" / experiment).as_uri()
    with refusals_explained(uri, f"create experiment {experiment!r}"):
        return uri, client.create_experiment(experiment, artifact_location=artifacts)


class TrackingRefused(PermissionError):
    """A tracking server said no: not signed in (401) or not allowed (403).

    MLflow reports both as a REST error deep in a traceback; this names the server, what the job
    was doing and what to set, so a job fails on its first request with the fix in one line.
    """


def refusal(error: MlflowException, uri: str, action: str) -> TrackingRefused | None:
    """The readable form of a 401/403 from ``uri`` while doing ``action``; None for other errors."""
    status = error.get_http_status_code()
    if status not in _REFUSALS:
        return None
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    who = f" as user {user!r}" if user else ""
    if status == 403:
        fix = "ask the server's admin for a permission that allows it (EDIT or MANAGE on it)"
    elif user:
        fix = "check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
    else:
        fix = (
            "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) "
            "to an account on that server"
        )
    return TrackingRefused(
        f"the tracking server {uri} refused to {action} ({status} {_REFUSALS[status]}{who}): {fix}"
    )


@contextmanager
def refusals_explained(uri: str, action: str) -> Iterator[None]:
    """Re-raise MLflow's 401/403 inside the block as :class:`TrackingRefused`; others unchanged."""
    try:
        yield
    except MlflowException as error:
        refused = refusal(error, uri, action)
        if refused is None:
            raise
        raise refused from None


def job_tracking(cfg: DictConfig) -> Tracking:
    """The store and experiment a job's config names (``mlflow.*`` under ``paths.root_dir``)."""
    root = Path(cfg.paths.root_dir).resolve()
    uri, experiment_id = configure_tracking(cfg.mlflow.tracking_uri, root, cfg.mlflow.experiment)
    return Tracking(uri, experiment_id)


# --- provenance -----------------------------------------------------------------------------


def git_commit(cwd: str | Path | None = None) -> str:
    """HEAD of the checkout ipguard runs from (``+dirty`` when it has local changes)."""
    where = Path(cwd) if cwd else Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha}+dirty" if dirty else sha


def config_hash(config: dict[str, Any]) -> str:
    """Stable short hash of a resolved config (key order does not matter)."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


# --- the summary line -----------------------------------------------------------------------


class JobResult(Protocol):
    """What every job returns: an object with the one line scripts parse."""

    def summary_line(self) -> str: ...


def announce(result: JobResult) -> None:
    """Log the job's summary line (the CLI prints the same line to stdout)."""
    log.info(result.summary_line())
