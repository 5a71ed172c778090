"""ipguard-evaluate as a user runs it: train in one process, evaluate the registered challenger
in another through the Hydra entry point, and read the result from its summary line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from tiny_registry import subprocess_env

TRAIN_SUMMARY = re.compile(r"^ipguard: registered ipguard-image v(?P<version>\d+) ", re.M)
EVAL_SUMMARY = re.compile(
    r"^ipguard: evaluated (?P<model>\S+) on (?P<manifest>\S+) "
    r"auroc=(?P<auroc>[0-9.]+) \[(?P<low>[0-9.]+), (?P<high>[0-9.]+)\] "
    r"ap=(?P<ap>[0-9.]+) \[[0-9.]+, [0-9.]+\] "
    r"recall_at_reject=(?P<recall>[0-9.]+) \[[0-9.]+, [0-9.]+\] report=(?P<report>\S+)$",
    re.M,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _run(cmd: list[str], home: Path) -> str:
    proc = subprocess.run(
        cmd, env=subprocess_env(home), capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_evaluate_cli_reports_on_the_registered_challenger(tmp_path: Path, demo_small) -> None:
    home = tmp_path / "home"
    trained = _run(
        [
            sys.executable,
            "-m",
            "ipguard.cli",
            "debug=fast",
            "model=image",
            "model.backbone=tiny_cnn",
        ],
        home,
    )
    version = TRAIN_SUMMARY.search(trained)
    assert version, trained[-2000:]

    out = _run(
        [
            sys.executable,
            "-c",
            "from ipguard.cli import evaluate_main; evaluate_main()",
            "model_uri=models:/ipguard-image@challenger",
            f"manifest={demo_small.manifest_path}",
            "n_boot=50",
        ],
        home,
    )
    match = EVAL_SUMMARY.search(out)
    assert match, out[-2000:]
    assert match["model"] == f"models:/ipguard-image/{version['version']}"
    assert match["manifest"] == "listings.csv"
    assert float(match["low"]) <= float(match["auroc"]) <= float(match["high"])

    report = Path(match["report"])
    # Hydra's run folder under the project root holds the report
    assert report.is_relative_to(home / "runs" / "evaluate")
    assert report.read_text(encoding="utf-8").startswith("# ipguard evaluation: ipguard-image v")
    scores = pd.read_csv(report.parent / "scores.csv")
    assert len(scores) == 240 and scores["score"].between(0, 1).all()

    client = MlflowClient(f"sqlite:///{(home / 'mlflow.db').as_posix()}")
    experiment = client.get_experiment_by_name("ipguard-evaluation")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.metrics["eval/auroc"] == pytest.approx(float(match["auroc"]), abs=5e-5)
    assert run.data.tags["manifest"] == str(demo_small.manifest_path.resolve())
