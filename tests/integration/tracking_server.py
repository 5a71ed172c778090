"""A team's tracking server, for the tests: a real ``mlflow server`` on 127.0.0.1.

What teams run (``mlflow server``: a sqlite backend, artifacts proxied through the server so
clients never need the artifact store's credentials), started from a test and always stopped by
its PID, parent first, then the uvicorn worker it forked. Optionally with MLflow's basic-auth
app, configured by an ini written into the test's own folder with a throwaway admin password
made up at run time.

MLflow's background job runner (huey consumers, for server-side jobs that ipguard never uses)
is switched off: it adds seven processes, a temporary folder in /dev/shm, and about 20 s to
every shutdown.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tiny_registry import subprocess_env

from ipguard.serving.local_server import HOST, free_port, stop, wait_until_ready

ADMIN = "admin"


@dataclass(frozen=True)
class Account:
    username: str
    password: str

    def env(self) -> dict[str, str]:
        """How a client names this account to MLflow."""
        return {
            "MLFLOW_TRACKING_USERNAME": self.username,
            "MLFLOW_TRACKING_PASSWORD": self.password,
        }


@dataclass(frozen=True)
class TrackingServer:
    url: str
    """``http://127.0.0.1:<port>``: what a team puts in ``MLFLOW_TRACKING_URI``."""
    pid: int
    backend: Path
    """The server's sqlite store (runs, experiments, registry)."""
    artifacts: Path
    """``--artifacts-destination``: where every artifact a client logs must end up."""
    log_path: Path
    admin: Account | None
    """The basic-auth admin (None: the server has no auth)."""


def server_command(folder: Path, port: int, *, auth: bool) -> list[str]:
    """``mlflow server`` as a team starts it, one worker, artifacts served by the server."""
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--host", HOST, "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{(folder / 'mlflow.db').as_posix()}",
        "--serve-artifacts", "--artifacts-destination", str(folder / "artifacts"),
    ]  # fmt: skip
    return [*command, "--app-name", "basic-auth"] if auth else command


def write_auth_config(folder: Path, admin: Account) -> Path:
    """The basic-auth ini: its user database in ``folder``, READ as the default permission."""
    path = folder / "basic_auth.ini"
    path.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{(folder / 'auth.db').as_posix()}\n"
        f"admin_username = {admin.username}\n"
        f"admin_password = {admin.password}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    return path


@contextlib.contextmanager
def tracking_server(
    folder: Path, *, auth: bool = False, startup_s: float = 240
) -> Iterator[TrackingServer]:
    """Run ``mlflow server`` on a free loopback port until the block ends; waits for /health."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "artifacts").mkdir(exist_ok=True)
    env = subprocess_env(folder, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    admin = None
    if auth:
        admin = Account(ADMIN, secrets.token_urlsafe(16))
        env["MLFLOW_AUTH_CONFIG_PATH"] = str(write_auth_config(folder, admin))
        env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = secrets.token_hex(16)
    port = free_port()
    log_path = folder / "server.log"
    with log_path.open("wb") as sink:
        process = subprocess.Popen(
            server_command(folder, port, auth=auth),
            cwd=folder,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://{HOST}:{port}"
        wait_until_ready(url, process, log_path, startup_s, path="/health")
        yield TrackingServer(
            url, process.pid, folder / "mlflow.db", folder / "artifacts", log_path, admin
        )
    finally:
        stop(process)
