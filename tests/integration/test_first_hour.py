"""The first hour of a newcomer: the README's quickstart commands, in order, on a fresh clone.

The commands are read from the README itself (between its ``first-hour`` markers), so the
README cannot drift from what is tested. Two things are added, and only these: the fast debug
overrides to ``make train`` (``ARGS="debug=fast model.image_backbone=tiny_cnn"``: seconds, not
minutes) and a free port to ``make serve`` and the request (``PORT=``, in place of 5001). The
clone shares this checkout's virtual environment (a symlink; ``make`` is told its setup stamp
is up to date so nothing is reinstalled) and runs its own sources (``PYTHONPATH``).

Each step's observable result is checked: a registered version with its alias, a report with
metrics, an answer with the model contract's columns, the training log without repeated lines
or the known noise, and after Ctrl-C no process left.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from log_lines import count
from tiny_registry import SUMMARY, subprocess_env

from ipguard.serving.local_server import free_port, wait_until_ready
from ipguard.serving.scorer import OUTPUT_COLUMNS

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
FAST = 'ARGS="debug=fast model.image_backbone=tiny_cnn"'
STEP_TIMEOUT_S = 300
# what each run printed before issue 16
KNOWN_NOISE = (
    "isinstance(treespec, LeafSpec)",
    "Add type hints to the `predict` method",
    "dataset source can be interpreted in multiple ways",
)


def readme_commands(readme: Path) -> list[str]:
    """The shell commands of the bash blocks between the README's first-hour markers, one per
    entry (``\\`` continuations joined), without comments."""
    text = readme.read_text(encoding="utf-8")
    section = re.search(r"<!-- first-hour:begin.*?-->(.*?)<!-- first-hour:end -->", text, re.S)
    assert section, f"{readme}: no <!-- first-hour:begin --> ... <!-- first-hour:end --> section"
    script = "\n".join(re.findall(r"```bash\n(.*?)```", section.group(1), re.S))
    commands = []
    for line in script.replace("\\\n", " ").splitlines():
        tokens = shlex.split(line, comments=True)
        if tokens:
            commands.append(shlex.join(tokens))
    return commands


def test_readme_commands_are_the_first_hour() -> None:
    commands = readme_commands(REPO / "README.md")
    assert [c.split()[0] for c in commands] == [
        "make",
        ".venv/bin/ipguard-evaluate",
        ".venv/bin/ipguard-promote",
        "make",
        "curl",
    ], commands


@pytest.fixture()
def clone(tmp_path: Path) -> Path:
    """HEAD of this checkout, cloned; its ``.venv`` is this interpreter's."""
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout: nothing to clone")
    missing = [tool for tool in ("git", "make", "curl") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"the README's commands need {missing} on PATH")
    target = tmp_path / "ipguard"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(target)], check=True)
    (target / ".venv").symlink_to(Path(sys.prefix))  # the venv this test runs in
    return target


def _make(command: str) -> str:
    """``make`` without re-running setup (pip) in the shared virtual environment: its stamp,
    older than the fresh clone's pyproject.toml, is declared up to date (``-o``)."""
    return command.replace("make ", "make -o .venv/.ipguard-setup ", 1)


def _run(command: str, clone: Path, env: dict[str, str]) -> str:
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", "-c", command],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT_S,
    )
    output = proc.stdout + proc.stderr
    print(f"first hour: {command.split()[0]} ... took {time.monotonic() - started:.1f} s")
    assert proc.returncode == 0, f"{command!r} failed with {proc.returncode}:\n{output[-4000:]}"
    return output


def test_first_hour_on_a_fresh_clone(clone: Path, tmp_path: Path) -> None:
    train, evaluate, promote, serve, request = readme_commands(clone / "README.md")
    env = subprocess_env(clone, PYTHONPATH=str(clone / "src"))
    venv_bin = str(Path(sys.executable).parent)  # the commands must not need it on PATH
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != venv_bin)
    env.pop("MAKEFLAGS", None)
    client_store = f"sqlite:///{(clone / 'mlflow.db').as_posix()}"

    output = _run(f"{_make(train)} {FAST}", clone, env)
    trained = SUMMARY.search(output)
    assert trained and trained["name"] == "ipguard-listing" and trained["alias"] == "challenger"
    assert trained["uri"] == client_store
    counts = count(output)
    assert {t: n for t, n in counts.repeats.items() if not t.startswith("ipguard: ")} == {}
    assert {noise: output.count(noise) for noise in KNOWN_NOISE} == dict.fromkeys(KNOWN_NOISE, 0)

    output = _run(evaluate, clone, env)
    assert "ipguard: evaluated models:/ipguard-listing/1" in output, output[-3000:]
    (report,) = (clone / "runs" / "evaluate").glob("*/**/report.md")
    assert "AUROC" in report.read_text() or "auroc" in report.read_text()
    assert len(list(report.parent.glob("*.png"))) >= 5

    _run(promote, clone, env)
    from mlflow.tracking import MlflowClient

    store = MlflowClient(tracking_uri=client_store, registry_uri=client_store)
    assert str(store.get_model_version_by_alias("ipguard-listing", "champion").version) == "1"

    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            ["bash", "-c", f"exec {_make(serve)} PORT={port}"],
            cwd=clone,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal's foreground job
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(url, server, log, startup_s=180)
        started = [server.pid, *(p.pid for p in psutil.Process(server.pid).children(True))]
        answer = json.loads(_run(request.replace(":5001/", f":{port}/"), clone, env))
        (prediction,) = answer["predictions"]
        assert prediction["listing_id"] == "L1" and set(OUTPUT_COLUMNS) <= set(prediction)
        assert prediction["decision"] in {"reject", "review", "approve"}
        os.killpg(server.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole group
        server.wait(timeout=60)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
    served = log.read_text(errors="replace")
    assert "Traceback" not in served, served[-3000:]
    assert "stopping the server" in served
    assert not [pid for pid in started if psutil.pid_exists(pid)], "server processes left"
