"""A team's tracking server, for real: ``mlflow server`` with MLflow's basic-auth app, on loopback.

Every other test uses the embedded sqlite store; teams set ``MLFLOW_TRACKING_URI`` to a server.
Here one server (sqlite backend, artifacts proxied through it, basic auth on) serves the whole
module, and ipguard's jobs run against it:

- a client without credentials is refused on its first request, before any run exists, with a
  one-line message, and the server holds nothing new;
- the admin's ``ipguard-train`` logs its run, checkpoint and model through the server: the
  files land in the server's artifact destination, none on the client;
- an account with READ on the registered model can read it but cannot move ``champion``:
  ``ipguard-promote`` is refused on its first write, before it scores anything, and so is
  setting the alias directly;
- the admin's ``ipguard-promote`` moves it, and a service loads ``models:/<name>@champion``
  through the server and scores a listing.

The server is stopped by its PID, and no process of it is left.
"""

from __future__ import annotations

import contextlib
import math
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import psutil
import pytest
from mlflow.exceptions import MlflowException
from mlflow.server import get_app_client
from mlflow.tracking import MlflowClient
from tiny_registry import MODEL_OVERRIDES, run_cli, train_cli
from tracking_server import Account, TrackingServer, tracking_server

from ipguard.config import compose
from ipguard.jobs.promote import promote
from ipguard.jobs.run import TrackingRefused
from ipguard.jobs.train import train

pytestmark = [pytest.mark.integration, pytest.mark.slow]

READER = "reader"
CREDENTIALS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrackingServer]:
    with tracking_server(tmp_path_factory.mktemp("tracking"), auth=True) as running:
        processes = [psutil.Process(running.pid), *psutil.Process(running.pid).children(True)]
        yield running
    left = [p.pid for p in processes if _alive(p)]
    assert not left, f"mlflow server processes left running: {left}"


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture(scope="module")
def admin(server: TrackingServer) -> Account:
    assert server.admin is not None
    return server.admin


@pytest.fixture(scope="module")
def trained(
    server: TrackingServer,
    admin: Account,
    demo_small: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """The admin's ``ipguard-train`` of the tiny image model, run from the project's folder."""
    home = tmp_path_factory.mktemp("home")
    summary = train_cli(
        home,
        "debug=fast",
        *MODEL_OVERRIDES["image"],
        f"data.manifest={demo_small.manifest_path}",
        "seed=3",
        "onnx=false",  # the ONNX graph adds time and nothing to what travels through the server
        cwd=home,
        MLFLOW_TRACKING_URI=server.url,
        **admin.env(),
    )
    return {**summary, "home": home}


@contextlib.contextmanager
def signed_in(account: Account | None, **env: str) -> Iterator[MlflowClient]:
    """A client on the server as ``account`` (None: anonymous), with ``env`` set meanwhile.

    MLflow reads the credentials from the environment on every request, so the account is the
    one signed in while the block runs; MLflow's process-wide URIs, which in-process jobs point
    at the server, are put back on the way out.
    """
    uris = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    with pytest.MonkeyPatch.context() as patch:
        for key in CREDENTIALS:
            patch.delenv(key, raising=False)
        for key, value in {**(account.env() if account else {}), **env}.items():
            patch.setenv(key, value)
        try:
            uri = env.get("MLFLOW_TRACKING_URI")
            yield MlflowClient(tracking_uri=uri, registry_uri=uri)
        finally:
            mlflow.set_tracking_uri(uris[0])
            mlflow.set_registry_uri(uris[1])


def _everything(server: TrackingServer, admin: Account) -> tuple[list[str], ...]:
    """Every experiment, run and registered model the server holds, as its admin sees them."""
    with signed_in(admin, MLFLOW_TRACKING_URI=server.url) as client:
        experiments = client.search_experiments(view_type=3)  # ViewType.ALL
        runs = client.search_runs([e.experiment_id for e in experiments], run_view_type=3)
        models = client.search_registered_models()
    return (
        sorted(e.name for e in experiments),
        sorted(r.info.run_id for r in runs),
        sorted(m.name for m in models),
    )


def test_a_client_without_credentials_is_refused_and_writes_nothing(
    server: TrackingServer, admin: Account, demo_small: Any, tmp_path: Path
) -> None:
    before = _everything(server, admin)
    cfg = compose(
        "train",
        [
            "debug=fast",
            *MODEL_OVERRIDES["image"],
            f"data.manifest={demo_small.manifest_path}",
            f"paths.root_dir={tmp_path}",
        ],
    )
    with signed_in(None, MLFLOW_TRACKING_URI=server.url), pytest.raises(TrackingRefused) as no:
        train(cfg)
    assert str(no.value) == (
        f"the tracking server {server.url} refused to read experiment 'ipguard' "
        "(401 not authenticated): set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD "
        "(or MLFLOW_TRACKING_TOKEN) to an account on that server"
    )
    assert _everything(server, admin) == before  # no experiment, no half-written run, no model


def test_training_with_credentials_logs_run_and_model_through_the_server(
    server: TrackingServer, admin: Account, trained: dict[str, Any]
) -> None:
    assert trained["uri"] == server.url
    assert (trained["name"], trained["alias"]) == ("ipguard-image", "challenger")
    with signed_in(admin, MLFLOW_TRACKING_URI=server.url) as client:
        version = client.get_model_version_by_alias(trained["name"], "challenger")
        run = client.get_run(version.run_id)
        experiment = client.get_experiment(run.info.experiment_id)
        model_id = version.model_id or version.source.removeprefix("models:/")  # m-<id>
        logged = client.get_logged_model(model_id)
    assert str(version.version) == trained["version"]
    # proxied: the client only ever saw mlflow-artifacts:/ URIs, never a path or a bucket
    assert experiment.artifact_location.startswith("mlflow-artifacts:")
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")
    assert logged.artifact_location.startswith("mlflow-artifacts:")
    run_files = server.artifacts / run.info.experiment_id / run.info.run_id / "artifacts"
    assert list((run_files / "checkpoints").glob("*.ckpt"))
    assert (run_files / "config" / "train.yaml").is_file()
    model_files = server.artifacts / experiment.experiment_id / "models" / model_id / "artifacts"
    assert (model_files / "MLmodel").is_file()
    assert (model_files / "artifacts" / "model" / "weights.safetensors").is_file()
    # ... and nothing of the store on the client's side
    home: Path = trained["home"]
    for local in ("mlruns", "mlartifacts", "mlflow.db"):
        assert not (home / local).exists(), local


def test_a_read_only_user_cannot_move_champion_and_the_admin_can(
    server: TrackingServer, admin: Account, trained: dict[str, Any], demo_small: Any, tmp_path: Path
) -> None:
    name, version = trained["name"], trained["version"]
    reader = Account(READER, secrets.token_urlsafe(16))
    with signed_in(admin, MLFLOW_TRACKING_URI=server.url):
        auth = get_app_client("basic-auth", tracking_uri=server.url)
        auth.create_user(reader.username, reader.password)
        auth.grant_user_permission(reader.username, "registered_model", name, "READ")
        granted = auth.get_user_permission(reader.username, "registered_model", name)
    assert granted.permission == "READ"

    manifest = f"manifest={demo_small.manifest_path}"
    refused = run_cli(
        tmp_path,
        "promote",
        f"name={name}",
        manifest,
        MLFLOW_TRACKING_URI=server.url,
        **reader.env(),
    )
    assert refused.returncode != 0
    # refused on its first write, before scoring anything, in one line (no MLflow traceback)
    assert (
        f"TrackingRefused: the tracking server {server.url} refused to start a promotion of "
        f"{name} v{version} (403 permission denied as user '{READER}')"
    ) in refused.stderr
    assert "MlflowException" not in refused.stderr
    with signed_in(reader, MLFLOW_TRACKING_URI=server.url) as as_reader:
        assert str(as_reader.get_model_version_by_alias(name, "challenger").version) == version
        with pytest.raises(MlflowException) as direct:
            as_reader.set_registered_model_alias(name, "champion", version)
    assert direct.value.get_http_status_code() == 403
    with signed_in(admin, MLFLOW_TRACKING_URI=server.url) as as_admin:
        assert "champion" not in as_admin.get_registered_model(name).aliases
        tags = as_admin.get_model_version(name, version).tags
    assert not {"promotion_started_at", "promotion_decision"} & set(tags)

    # the admin's promotion goes through (in process: the same job the CLI runs)
    cfg = compose("promote", [f"name={name}", manifest, f"paths.root_dir={tmp_path}"])
    with signed_in(admin, MLFLOW_TRACKING_URI=server.url) as as_admin:
        result = promote(cfg)
        champion = as_admin.get_model_version_by_alias(name, "champion")
    assert result.summary_line().startswith(
        f"ipguard: promoted {name} v{version} (champion was none)"
    )
    assert str(champion.version) == version
    assert (
        champion.tags["promotion_decision"] == "promoted" and champion.tags["promotion_started_at"]
    )
    _champion_scores_a_listing(server, admin, name, version, demo_small, tmp_path)


def _champion_scores_a_listing(
    server: TrackingServer,
    admin: Account,
    name: str,
    version: str,
    demo_small: Any,
    tmp_path: Path,
) -> None:
    """What a screening service does: load ``@champion`` through the server, predict one row."""
    with signed_in(
        admin, MLFLOW_TRACKING_URI=server.url, MLFLOW_ALLOW_PICKLE_DESERIALIZATION="false"
    ):
        mlflow.set_tracking_uri(server.url)
        mlflow.set_registry_uri(server.url)
        model = mlflow.pyfunc.load_model(f"models:/{name}@champion", dst_path=str(tmp_path))
    listing = pd.read_csv(demo_small.manifest_path).head(1).drop(columns=["label"])
    listing["image_path"] = [str(demo_small.root / p) for p in listing["image_path"]]
    (row,) = model.predict(listing).to_dict(orient="records")
    assert row["listing_id"] == listing["listing_id"].iloc[0]
    assert row["model_version"] == version
    assert row["decision"] in {"reject", "review", "approve"}
    assert 0.0 <= row["score"] <= 1.0 and not math.isnan(row["score"])
