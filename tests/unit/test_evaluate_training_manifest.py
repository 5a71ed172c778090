"""evaluate(cfg) without a manifest evaluates on the one the model was trained on.

The TF-IDF text model of ``team_text_model`` (tests/conftest.py) is trained on a team's own
manifest: a semicolon CSV with its own label values, outside the demo folder. Evaluating its
registered challenger with ``split=test`` and no ``manifest`` must find that file, read it
with the team's label values, keep the run's test rows and say so in the report.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from ipguard.config import compose
from ipguard.jobs.evaluate import EvaluationResult, evaluate

#: team_text_model trains once (~20 s) for the module's tests
pytestmark = pytest.mark.slow


@pytest.fixture()
def trained(team_text_model: dict[str, Any]) -> dict[str, Any]:
    return team_text_model


def _evaluate(trained: dict[str, Any], out: Path, *overrides: str) -> EvaluationResult:
    cfg = compose(
        "evaluate",
        [
            f"paths.root_dir={trained['root']}",
            f"out_dir={out}",
            "model_uri=models:/ipguard-text@challenger",
            "n_boot=10",
            *overrides,
        ],
    )
    return evaluate(cfg)


def test_split_test_without_a_manifest_uses_the_training_manifest_and_says_so(
    trained: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("INFO", logger="ipguard.jobs.evaluate"):
        result = _evaluate(trained, tmp_path, "split=test")
    manifest = trained["manifest"].resolve()
    assert result.manifest == manifest
    splits = pd.read_csv(trained["result"].output_dir / "splits.csv")
    assert result.rows["evaluated"] == int((splits["split"] == "test").sum())
    assert result.rows["outside_split"] == int((splits["split"] != "test").sum())
    said = "evaluating on the manifest the model was trained on: "
    report = result.report.markdown_path.read_text(encoding="utf-8")
    assert f"{said}{manifest}" in report
    assert any(f"{said}{manifest}" in r.getMessage() for r in caplog.records)
    # the team's labels were read as training read them: both classes present in the scores
    scores = pd.read_csv(result.report.markdown_path.parent / "scores.csv")
    assert set(scores["label"]) == {"genuine", "infringing"}


def test_an_explicit_manifest_wins_over_the_training_manifest(
    trained: dict[str, Any], demo_small: Any, tmp_path: Path
) -> None:
    result = _evaluate(trained, tmp_path, f"manifest={demo_small.manifest_path}")
    assert result.manifest == demo_small.manifest_path.resolve()
    report = result.report.markdown_path.read_text(encoding="utf-8")
    assert "the manifest the model was trained on" not in report


def test_a_changed_training_manifest_is_an_error_with_path_and_both_fingerprints(
    trained: dict[str, Any], tmp_path: Path
) -> None:
    original = trained["manifest"]
    backup = tmp_path / "backup.csv"
    shutil.copy(original, backup)
    try:
        rows = pd.read_csv(original, sep=";", dtype=str)
        rows.loc[0, "title"] = rows.loc[0, "title"] + " edited"
        rows.to_csv(original, index=False, sep=";")
        with pytest.raises(ValueError, match="changed since the model was trained") as err:
            _evaluate(trained, tmp_path / "changed", "split=test")
        message = str(err.value)
        assert str(original.resolve()) in message
        run = MlflowClient(trained["result"].tracking_uri).get_run(trained["result"].run_id)
        recorded = run.data.tags["data_fingerprint"]
        now = set(re.findall(r"\b[0-9a-f]{64}\b", message)) - {recorded}
        assert f"then {recorded}" in message and len(now) == 1

        original.unlink()
        with pytest.raises(FileNotFoundError, match="no longer exists") as gone:
            _evaluate(trained, tmp_path / "gone", "split=test")
        assert str(original.resolve()) in str(gone.value)
    finally:
        shutil.copy(backup, original)


def test_a_run_logged_before_the_record_is_read_from_its_config_and_tag(tmp_path: Path) -> None:
    """Runs trained before data/manifest.json existed still name their manifest."""
    import mlflow

    from ipguard.jobs.training_manifest import find_training_manifest

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    listings = tmp_path / "listings.csv"
    listings.write_text("listing_id,title,label\n", encoding="utf-8")
    config = {"data": {"manifest": str(listings), "label_values": {"genuine": ["ok"]}}}
    with mlflow.start_run() as run:
        mlflow.log_dict(config, "config/train.yaml")
        mlflow.set_tag("data_fingerprint", "f" * 64)
    found = find_training_manifest(run.info.run_id, tmp_path / "scratch")
    assert found is not None
    assert found.path == listings.resolve() and found.fingerprint == "f" * 64
    assert found.options == {"label_values": {"genuine": ["ok"]}}
    with mlflow.start_run() as bare:
        pass
    assert find_training_manifest(bare.info.run_id, tmp_path / "scratch") is None
