"""Where runs and models are recorded: an embedded sqlite store unless told otherwise.

A fresh clone needs no server: tracking and registry live in ``<root>/mlflow.db`` and
artifacts in ``<root>/mlartifacts``. A team sets ``MLFLOW_TRACKING_URI`` to a real server.
Experiments are created with an explicit artifact location so artifacts never land in the
``./mlruns`` of whatever directory happened to be current.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient


def resolve_tracking_uri(tracking_uri: str | None, root: str | Path) -> str:
    """``MLFLOW_TRACKING_URI`` wins, then the config, then ``sqlite:///<root>/mlflow.db``."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    if tracking_uri:
        return tracking_uri
    return f"sqlite:///{(Path(root).resolve() / 'mlflow.db').as_posix()}"


_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


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


def _set_uris_without_touching_env(uri: str) -> None:
    with uri_environment_kept():
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)


def configure_tracking(
    tracking_uri: str | None, root: str | Path, experiment: str
) -> tuple[str, str]:
    """Point MLflow at the store (tracking and registry) and return (uri, experiment_id)."""
    uri = resolve_tracking_uri(tracking_uri, root)
    _set_uris_without_touching_env(uri)
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        return uri, found.experiment_id
    artifacts = None
    if uri.startswith("sqlite:") or uri.startswith("file:") or "://" not in uri:
        artifacts = (Path(root).resolve() / "mlartifacts" / experiment).as_uri()
    return uri, client.create_experiment(experiment, artifact_location=artifacts)
