"""A tiny model trained and registered by the real CLI, for the serving-side tests.

Each integration module that needs a registered model calls :func:`train_tiny_model` once
from a module-scoped fixture, in its own ``IPGUARD_HOME``: the store is exactly what a user's
``make train`` leaves behind (sqlite registry, artifacts, run folder), only smaller.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient

SUMMARY = re.compile(
    r"^ipguard: registered (?P<name>\S+) v(?P<version>\d+) @(?P<alias>\S+) "
    r"test_auroc=(?P<auroc>[0-9.]+|nan) tracking_uri=(?P<uri>\S+)$",
    re.M,
)


@dataclass(frozen=True)
class TinyStore:
    home: Path
    tracking_uri: str
    name: str
    version: str
    model_dir: Path
    """The exported folder of the run (spec.json, weights, ONNX graph)."""
    manifest: Path
    """The labelled listings it was trained on."""

    def client(self) -> MlflowClient:
        """A client on this store for tracking *and* registry: without an explicit registry URI
        MlflowClient uses the process-wide one, which in-process jobs may have pointed elsewhere.
        """
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)


def subprocess_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a fresh service process: no MLflow settings leak in from the test run,
    pickle deserialisation is off, and the venv's scripts (``uvicorn``) are on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(
        IPGUARD_HOME=str(home),
        MLFLOW_ALLOW_PICKLE_DESERIALIZATION="false",
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        **extra,
    )
    return env


# the tiny_cnn image tower in both: fast, and what `make train` uses
MODEL_OVERRIDES = {
    "image": ["model=image", "model.backbone=tiny_cnn"],  # registers ipguard-image
    "fusion": ["model=fusion", "model.image_backbone=tiny_cnn"],  # registers ipguard-listing
}


def train_cli(
    home: Path, *overrides: str, cwd: Path | None = None, **extra_env: str
) -> dict[str, str]:
    """``python -m ipguard.cli <overrides>`` in a fresh process (in ``cwd``: a user's current
    folder); the summary line's fields (name, version, alias, auroc, uri), after checking it ran
    and printed one."""
    proc = _run([sys.executable, "-m", "ipguard.cli", *overrides], home, cwd, extra_env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    match = SUMMARY.search(proc.stdout)
    assert match, f"no summary line in output:\n{proc.stdout[-2000:]}"
    return match.groupdict()


def run_cli(
    home: Path, entry: str, *overrides: str, cwd: Path | None = None, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    """The console script ``ipguard-<entry>`` (``promote``, ``train``...) in a fresh process,
    whatever its exit status: for tests of how a command fails."""
    cmd = [sys.executable, "-c", f"from ipguard.cli import {entry}_main; {entry}_main()"]
    return _run([*cmd, *overrides], home, cwd, extra_env)


def _run(
    cmd: list[str], home: Path, cwd: Path | None, extra_env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    env = subprocess_env(home, **extra_env)
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def train_tiny_model(home: Path, manifest: Path, model: str = "image") -> TinyStore:
    """``python -m ipguard.cli debug=fast <model overrides>`` on ``manifest``."""
    summary = train_cli(
        home, "debug=fast", *MODEL_OVERRIDES[model], f"data.manifest={manifest}", "seed=3"
    )
    (model_dir,) = (home / "runs" / "train").glob("*/model")
    return TinyStore(home, summary["uri"], summary["name"], summary["version"], model_dir, manifest)


def request_rows(manifest: Path, n: int) -> pd.DataFrame:
    """``n`` listings of ``manifest`` as a REST client sends them: base64 images, no label."""
    rows = pd.read_csv(manifest).head(n).reset_index(drop=True)
    return rows[["listing_id", "title", "brand", "market"]].assign(
        image_b64=[
            base64.b64encode((manifest.parent / p).read_bytes()).decode()
            for p in rows["image_path"]
        ]
    )


@contextmanager
def serving(store: TinyStore, alias: str, log_dir: Path) -> Iterator[str]:
    """``mlflow models serve`` of the store's model at ``alias``, on 127.0.0.1; yields its URL."""
    from ipguard.serving.local_server import serve_locally

    with serve_locally(
        f"models:/{store.name}@{alias}",
        tracking_uri=store.tracking_uri,
        log_path=log_dir / "serve.log",
        env=subprocess_env(store.home),
        startup_s=180,
    ) as running:
        yield running.url


def post_rows(url: str, rows: pd.DataFrame, *, timeout_s: float = 60) -> list[dict]:
    """The predictions for ``rows`` sent as a ``dataframe_split`` request (NaN as null)."""
    rows = rows.astype(object).where(rows.notna(), None)
    body = json.dumps({"dataframe_split": rows.to_dict(orient="split", index=False)}).encode()
    request = urllib.request.Request(
        f"{url}/invocations", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as answer:
        assert answer.status == 200
        return json.loads(answer.read())["predictions"]
