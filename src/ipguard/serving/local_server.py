"""``mlflow models serve`` on loopback, started and stopped from Python.

The REST server a screening service runs is MLflow's own (``mlflow models serve``, or the
container ``mlflow models build-docker`` makes); ipguard adds nothing to it. This module only
lets ipguard's tests, its latency benchmark and a developer's notebook run that very server
against a registered model and always leave no process behind: it waits for ``/ping`` for a
bounded time, and stops the ``mlflow`` parent first, then the uvicorn process it started.
It binds 127.0.0.1 only, by design.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"


class ServerError(RuntimeError):
    """The server exited or did not answer ``/ping`` in time; the message carries its log."""


@dataclass(frozen=True)
class LocalServer:
    url: str
    """``http://127.0.0.1:<port>``; POST ``/invocations``, GET ``/ping``."""
    pid: int
    log_path: Path


def free_port() -> int:
    """A port free on loopback right now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def serve_command(model_uri: str, port: int, *, workers: int = 1) -> list[str]:
    """The exact command line, as documented in docs/serving.md."""
    return [
        sys.executable, "-m", "mlflow", "models", "serve",
        "-m", model_uri, "--env-manager", "local",
        "-h", HOST, "-p", str(port), "--workers", str(workers),
    ]  # fmt: skip


@contextlib.contextmanager
def serve_locally(
    model_uri: str,
    *,
    tracking_uri: str,
    log_path: str | Path,
    workers: int = 1,
    startup_s: float = 180.0,
    env: Mapping[str, str] | None = None,
) -> Iterator[LocalServer]:
    """Serve ``model_uri`` (e.g. ``models:/ipguard-image@champion``) until the block ends.

    ``env`` replaces the inherited environment (the tracking URI and this interpreter's
    scripts folder, where ``uvicorn`` lives, are added to it). Raises :class:`ServerError` if the
    server exits or has not answered ``/ping`` within ``startup_s``.
    """
    port = free_port()
    environment = dict(os.environ if env is None else env)
    environment["MLFLOW_TRACKING_URI"] = tracking_uri
    scripts = str(Path(sys.executable).parent)
    environment["PATH"] = os.pathsep.join([scripts, environment.get("PATH", "")])
    log = Path(log_path)
    with log.open("wb") as sink:
        process = subprocess.Popen(
            serve_command(model_uri, port, workers=workers),
            env=environment,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://{HOST}:{port}"
        wait_until_ready(url, process, log, startup_s)
        yield LocalServer(url, process.pid, log)
    finally:
        stop(process)


def wait_until_ready(
    url: str,
    process: subprocess.Popen[bytes],
    log: Path,
    startup_s: float,
    *,
    path: str = "/ping",
) -> None:
    """Return once ``url + path`` answers 200; :class:`ServerError` with the log's tail if the
    process exits first or ``startup_s`` passes (``/health`` for ``mlflow server``)."""
    deadline = time.monotonic() + startup_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerError(
                f"the server at {url} exited with {process.returncode}:\n{_tail(log)}"
            )
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}{path}", timeout=2) as ok:
            if ok.status == 200:
                return
        time.sleep(0.5)
    raise ServerError(f"{url}{path} did not answer within {startup_s:.0f} s:\n{_tail(log)}")


def stop(process: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    """Stop the server by its PID: the parent first, then its children, killing stragglers."""
    import psutil

    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout_s)
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.terminate()
    _, alive = psutil.wait_procs(children, timeout=timeout_s)
    for child in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()


def _tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)"
