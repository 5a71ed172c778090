"""``ipguard-serve``: one command serves a registered model over REST on loopback, answers the
model contract, and stops on Ctrl-C leaving no process behind.

The model is a TF-IDF ``ipguard-text`` trained and registered by the real CLI on the shared
small demo set (seconds, no Lightning) in its project's own sqlite store; the fused model's
path through ``ipguard-serve`` is the first-hour test's (test_first_hour.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import psutil
import pytest
from tiny_registry import post_rows, subprocess_env, train_cli

from ipguard.serving.local_server import free_port, wait_until_ready
from ipguard.serving.scorer import OUTPUT_COLUMNS

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SERVE = Path(sys.executable).parent / "ipguard-serve"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, demo_small) -> Path:
    """A project root whose store holds ``ipguard-text`` v1 @challenger, as training left it."""
    home = tmp_path_factory.mktemp("project")
    summary = train_cli(
        home, "debug=fast", "model=text_tfidf", f"data.manifest={demo_small.manifest_path}"
    )
    assert (summary["name"], summary["alias"]) == ("ipguard-text", "challenger")
    return home


def serve(project: Path, *settings: str, log: Path) -> subprocess.Popen[bytes]:
    """``ipguard-serve`` as a user starts it: in the project root, no MLflow variables set, and
    the venv's scripts not on PATH (the command puts them there itself)."""
    env = subprocess_env(project)
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != venv_bin)
    with log.open("wb") as sink:
        return subprocess.Popen(
            [str(SERVE), *settings], cwd=project, env=env, stdout=sink, stderr=subprocess.STDOUT
        )


def test_serve_answers_rest_and_stops_on_ctrl_c(project: Path, demo_small, tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "serve.log"
    process = serve(project, "model_uri=models:/ipguard-text@challenger", f"port={port}", log=log)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(url, process, log, startup_s=180)
        started = [process.pid, *(p.pid for p in psutil.Process(process.pid).children(True))]
        assert len(started) >= 2  # ipguard-serve, mlflow and uvicorn's processes
        rows = pd.read_csv(demo_small.manifest_path, dtype=str).head(3)
        rows = rows[["listing_id", "title", "brand", "market"]]
        predictions = post_rows(url, rows)
        assert [p["listing_id"] for p in predictions] == rows["listing_id"].tolist()
        assert set(OUTPUT_COLUMNS) <= set(predictions[0])
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
    output = log.read_text(errors="replace")
    assert f"at {url}" in output and f"curl -s {url}/invocations" in output  # the banner
    assert "Traceback" not in output, output[-3000:]
    assert not [pid for pid in started if psutil.pid_exists(pid)], "server processes left"


def test_serve_names_a_missing_champion_and_how_to_get_one(project: Path, tmp_path: Path) -> None:
    missing = "models:/ipguard-text@champion"  # training registers @challenger only
    process = serve(project, f"model_uri={missing}", log=tmp_path / "serve.log")
    assert process.wait(timeout=60) == 1
    output = (tmp_path / "serve.log").read_text()
    assert missing in output and str(project / "mlflow.db") in output
    assert "ipguard-promote" in output and "models:/ipguard-text@challenger" in output


def test_serve_refuses_unknown_settings(project: Path, tmp_path: Path) -> None:
    process = serve(project, "model=fusion", log=tmp_path / "serve.log")
    assert process.wait(timeout=60) == 2
    assert "'model=fusion'" in (tmp_path / "serve.log").read_text()
