"""``ipguard-serve``: the REST server for the model ``make train`` registered, in one command.

What it saves a newcomer: exporting the tracking URI the jobs use, putting the venv's scripts
on PATH (``mlflow models serve`` starts ``uvicorn`` by name) and spelling out ``mlflow models
serve ... --env-manager local``. The server is MLflow's own, unchanged; it binds 127.0.0.1
only (put a proxy in front to expose it).

Settings are ``key=value`` like the other ipguard commands: ``model_uri=`` (default
``models:/ipguard-listing@champion``), ``port=`` (5001), ``workers=`` (1), ``tracking_uri=``
(default as the jobs resolve it: ``$MLFLOW_TRACKING_URI``, else ``sqlite:///<IPGUARD_HOME or
.>/mlflow.db``).

Ctrl-C or SIGTERM stops the server (MLflow's parent process first, then the ``uvicorn`` it
started) and exits 0. Exit status 1: the model cannot be found or the server stopped on its
own; 2: bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from ipguard.serving.local_server import HOST, serve_command, stop

DEFAULT_MODEL_URI = "models:/ipguard-listing@champion"
DEFAULT_PORT = 5001
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True)
class ServeSettings:
    model_uri: str = DEFAULT_MODEL_URI
    port: int = DEFAULT_PORT
    workers: int = 1
    tracking_uri: str | None = None
    """None: as the jobs resolve it (:func:`ipguard.jobs.run.resolve_tracking_uri`)."""

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ipguard-serve",
        description="Serve a registered ipguard model over REST on 127.0.0.1 with "
        "`mlflow models serve --env-manager local`; Ctrl-C stops it.",
        epilog="settings: model_uri=URI (default models:/ipguard-listing@champion; "
        "models:/NAME@ALIAS, models:/NAME/VERSION, runs:/...), port=N (5001), workers=N (1), "
        "tracking_uri=URI (default $MLFLOW_TRACKING_URI, else sqlite:///<IPGUARD_HOME>/mlflow.db)",
    )
    parser.add_argument("settings", nargs="*", metavar="KEY=VALUE", help="see below")
    return parser


def parse_settings(argv: Sequence[str] | None = None) -> ServeSettings:
    """``key=value`` tokens as :class:`ServeSettings`; a bad one exits 2 naming it."""
    parser = build_parser()
    tokens = parser.parse_args(argv).settings
    known = {"model_uri", "port", "workers", "tracking_uri"}
    values: dict[str, str] = {}
    for token in tokens:
        key, sep, value = token.partition("=")
        if not sep or key not in known or not value:
            parser.error(f"{token!r}: expected KEY=VALUE with KEY one of {sorted(known)}")
        values[key] = value
    numbers: dict[str, int] = {}
    for key, low, high in (("port", 1, 65535), ("workers", 1, 64)):
        if key in values:
            if not values[key].isdigit() or not low <= int(values[key]) <= high:
                parser.error(f"{key}={values[key]!r}: expected a whole number {low}-{high}")
            numbers[key] = int(values[key])
    return ServeSettings(
        model_uri=values.get("model_uri", DEFAULT_MODEL_URI),
        port=numbers.get("port", DEFAULT_PORT),
        workers=numbers.get("workers", 1),
        tracking_uri=values.get("tracking_uri"),
    )


def server_environment(tracking_uri: str) -> dict[str, str]:
    """This environment, with the store's URI and this interpreter's scripts folder on PATH."""
    env = dict(os.environ)
    env["MLFLOW_TRACKING_URI"] = tracking_uri
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def missing_model(model_uri: str, tracking_uri: str) -> str | None:
    """Why ``model_uri`` cannot be served from this store, or None when it can (or when only
    MLflow can tell: run and file URIs are left to it)."""
    if not model_uri.startswith("models:/"):
        return None
    from mlflow.tracking import MlflowClient

    from ipguard.registry.lookup import NotRegisteredError, parse_models_uri, registered_version

    ref = parse_models_uri(model_uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        registered_version(client, model_uri)
    except NotRegisteredError as err:
        hint = (
            f"; `ipguard-promote demo_holdout=true` gives {ref.name} its first @champion, or "
            f"serve the challenger: ipguard-serve model_uri=models:/{ref.name}@challenger"
            if ref is not None and ref.alias == "champion"
            else ""
        )
        return f"{err}{hint}"
    return None


def example_request(url: str) -> str:
    """A curl line that scores one listing, for the banner."""
    body = {
        "dataframe_split": {
            "columns": ["listing_id", "title", "brand"],
            "data": [["L1", "Zentaro leather tote bag, replica", "Zentaro"]],
        }
    }
    return f"curl -s {url}/invocations -H 'Content-Type: application/json' -d '{json.dumps(body)}'"


class _StopRequested(Exception):
    """Raised from the signal handler so the wait for the server returns."""


def _request_stop(signum: int, frame: FrameType | None) -> None:
    raise _StopRequested(signal.Signals(signum).name)


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_settings(argv)
    from ipguard.jobs.run import resolve_tracking_uri  # MLflow loads here, after the arguments

    root = os.environ.get("IPGUARD_HOME", ".")
    tracking_uri = resolve_tracking_uri(settings.tracking_uri, root)
    problem = missing_model(settings.model_uri, tracking_uri)
    if problem:
        print(f"ipguard-serve: {problem}", file=sys.stderr)
        return 1
    previous = {sig: signal.signal(sig, _request_stop) for sig in STOP_SIGNALS}
    process: subprocess.Popen[bytes] | None = None
    try:
        process = subprocess.Popen(
            serve_command(settings.model_uri, settings.port, workers=settings.workers),
            env=server_environment(tracking_uri),
            start_new_session=True,  # the terminal's Ctrl-C reaches this process, which stops it
        )
        print(
            f"ipguard-serve: {settings.model_uri} at {settings.url} (tracking: {tracking_uri})\n"
            f"  GET {settings.url}/ping answers 200 once the model is loaded; then, e.g.:\n"
            f"  {example_request(settings.url)}\n"
            "  Ctrl-C stops it.",
            flush=True,
        )
        code = process.wait()
    except _StopRequested as why:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the shutdown short
        print(f"ipguard-serve: {why}: stopping the server", file=sys.stderr, flush=True)
        if process is not None:
            stop(process)  # by PID: MLflow's parent first, then the uvicorn it started
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print(f"ipguard-serve: the server exited with {code}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
