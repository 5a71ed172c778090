"""evaluate(cfg): one tiny trained model, evaluated as a registry URI, a folder and a checkpoint.

The model is trained once per module (debug=fast, tiny_cnn) into its own project root, so the
registry, the evaluation runs and the sqlite store all live under a temporary folder.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from PIL import Image

from ipguard.config import compose
from ipguard.data.errors import ManifestError
from ipguard.data.fingerprint import dataset_fingerprint
from ipguard.data.schema import load_manifest
from ipguard.jobs.evaluate import EvaluationResult, evaluate
from ipguard.jobs.thresholds import OPTIMISTIC_NOTE
from ipguard.models.loading import checkpoint_class

PLOTS = ("roc.png", "pr.png", "reliability.png", "score_histogram.png", "lanes.png")
TABLES = ("metrics.csv", "slices.csv", "scores.csv", "reliability.csv")
SUMMARY = re.compile(
    r"^ipguard: evaluated (?P<model>\S+) on (?P<manifest>\S+) "
    r"auroc=(?P<auroc>[0-9.]+|nan) \[[0-9.na]+, [0-9.na]+\] "
    r"ap=[0-9.na]+ \[[0-9.na]+, [0-9.na]+\] "
    r"recall_at_reject=[0-9.na]+ \[[0-9.na]+, [0-9.na]+\] report=(?P<report>\S+)$"
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A registered ipguard-image v1 (tiny_cnn, two batches of training) and its files."""
    from ipguard.jobs.train import train

    root = tmp_path_factory.mktemp("project")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.setenv("IPGUARD_HOME", str(root))
        cfg = compose(
            "train",
            ["debug=fast", "model=image", "model.backbone=tiny_cnn", f"paths.root_dir={root}"],
        )
        result = train(cfg)
    assert result.registered is not None and result.best_checkpoint is not None
    return {"root": root, "result": result}


@pytest.fixture(scope="module")
def manifest(demo_small, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """80 demo listings without a language column, images copied next to the manifest."""
    folder = tmp_path_factory.mktemp("manifest")
    rows = pd.read_csv(demo_small.manifest_path, dtype=str).head(80).drop(columns="language")
    (folder / "images").mkdir()
    for rel in rows["image_path"]:
        shutil.copy(demo_small.root / rel, folder / rel)
    path = folder / "listings.csv"
    rows.to_csv(path, index=False)
    return path


def _evaluate(trained: dict[str, Any], tmp_path: Path, *overrides: str) -> EvaluationResult:
    cfg = compose(
        "evaluate",
        [
            f"paths.root_dir={trained['root']}",
            f"out_dir={tmp_path / 'evaluation'}",
            "n_boot=20",
            "batch_size=32",
            *overrides,
        ],
    )
    return evaluate(cfg)


@pytest.fixture(scope="module")
def by_alias(trained: dict[str, Any], manifest: Path, tmp_path_factory) -> EvaluationResult:
    out = tmp_path_factory.mktemp("by-alias")
    return _evaluate(
        trained, out, "model_uri=models:/ipguard-image@challenger", f"manifest={manifest}"
    )


def test_registry_alias_is_resolved_to_its_version_in_the_summary_line(by_alias):
    match = SUMMARY.match(by_alias.summary_line())
    assert match, by_alias.summary_line()
    assert match["model"] == "models:/ipguard-image/1"
    assert match["manifest"] == "listings.csv"
    assert Path(match["report"]) == by_alias.report.markdown_path
    assert 0.0 <= float(match["auroc"]) <= 1.0
    assert by_alias.model_version == "1"
    assert by_alias.policy_source == "model"


def test_report_folder_has_every_plot_and_table_and_the_markdown_links_the_plots(by_alias):
    folder = by_alias.report.markdown_path.parent
    text = by_alias.report.markdown_path.read_text(encoding="utf-8")
    for name in PLOTS:
        with Image.open(folder / name) as image:
            assert image.format == "PNG" and image.width > 100
        assert f"]({name})" in text
    for name in TABLES:
        assert not pd.read_csv(folder / name).empty, name
    for section in ("## What was evaluated", "## Policy", "## Headline", "## Lanes", "## Slices"):
        assert section in text
    for metric in ("auroc", "average_precision", "recall_at_reject", "precision_at_reject", "ece"):
        assert f"| {metric} |" in text
    assert by_alias.rows == {"in": 80, "valid": 80, "rejected": 0, "not_scored": 0, "evaluated": 80}


def test_missing_language_column_is_detected_so_the_language_slice_exists(by_alias):
    slices = pd.read_csv(by_alias.report.markdown_path.parent / "slices.csv")
    languages = slices[slices["column"] == "language"]
    assert languages["n"].sum() == 80
    assert "<missing>" not in set(languages["value"])
    assert "Language detected for 80 listing(s)" in by_alias.report.markdown_path.read_text()


def test_metrics_with_ci_bounds_and_the_report_are_logged_to_the_sqlite_store(
    by_alias, trained, manifest
):
    assert by_alias.tracking_uri == f"sqlite:///{(trained['root'] / 'mlflow.db').as_posix()}"
    client = MlflowClient(by_alias.tracking_uri)
    run = client.get_run(by_alias.run_id)
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == "ipguard-evaluation"
    assert experiment.artifact_location.startswith((trained["root"] / "mlartifacts").as_uri())
    assert run.info.status == "FINISHED"
    metrics = run.data.metrics
    for name in ("auroc", "average_precision", "recall_at_reject"):
        value = by_alias.metrics[name]
        assert metrics[f"eval/{name}"] == pytest.approx(value)
        assert metrics[f"eval/{name}_ci_low"] <= value <= metrics[f"eval/{name}_ci_high"]
    assert metrics["eval/ece"] == pytest.approx(by_alias.report.headline["ece"])
    assert metrics["data/rows_evaluated"] == 80
    root = manifest.parent
    expected_fp = dataset_fingerprint(load_manifest(manifest).valid, root)
    tags = run.data.tags
    assert tags["model_uri"] == "models:/ipguard-image@challenger"
    assert tags["model_version"] == "1"
    assert tags["manifest"] == str(manifest.resolve())
    assert tags["data_fingerprint"] == expected_fp
    logged = {a.path for a in client.list_artifacts(by_alias.run_id, "report")}
    assert {f"report/{name}" for name in (*PLOTS, *TABLES, "report.md")} <= logged


def test_model_folder_scores_exactly_as_the_registered_pyfunc(
    by_alias, trained, manifest, tmp_path
):
    folder = trained["result"].model_dir
    result = _evaluate(trained, tmp_path, f"model_uri={folder}", f"manifest={manifest}")
    ours = pd.read_csv(result.report.markdown_path.parent / "scores.csv")
    served = pd.read_csv(by_alias.report.markdown_path.parent / "scores.csv")
    assert ours["listing_id"].tolist() == served["listing_id"].tolist()
    np.testing.assert_allclose(ours["score"], served["score"], atol=1e-9)
    assert result.metrics["auroc"] == pytest.approx(by_alias.metrics["auroc"])
    assert result.model_uri == str(folder.resolve())


def test_checkpoint_is_scored_uncalibrated_with_a_policy_labelled_optimistic(
    trained, manifest, tmp_path
):
    ckpt = trained["result"].best_checkpoint
    result = _evaluate(trained, tmp_path, f"model_uri={ckpt}", f"manifest={manifest}")
    scores = pd.read_csv(result.report.markdown_path.parent / "scores.csv")
    # identity calibrator: the score is the raw sigmoid of the image logit
    np.testing.assert_allclose(scores["score"], scores["image_score"], atol=1e-12)
    assert result.policy_source == "fitted_on_evaluated_data"
    text = result.report.markdown_path.read_text(encoding="utf-8")
    assert OPTIMISTIC_NOTE in text
    assert "ECE is the uncalibrated one" in text


def test_checkpoint_class_is_recorded_and_a_checkpoint_without_it_asks_for_model_class(
    trained, tmp_path
):
    import torch

    from ipguard.models.image_classifier import ImageClassifier

    ckpt = trained["result"].best_checkpoint
    saved = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert saved["ipguard_class"] == "ipguard.models.image_classifier.ImageClassifier"
    assert checkpoint_class(ckpt) is ImageClassifier
    del saved["ipguard_class"]  # as saved by an older ipguard
    unnamed = tmp_path / "unnamed.ckpt"
    torch.save(saved, unnamed)
    with pytest.raises(ValueError, match="model_class="):
        checkpoint_class(unnamed)


def test_config_thresholds_replace_the_stored_policy_in_report_and_scores(
    trained, manifest, tmp_path
):
    result = _evaluate(
        trained,
        tmp_path,
        f"model_uri={trained['result'].model_dir}",
        f"manifest={manifest}",
        "policy.reject_threshold=0.6",
        "policy.approve_threshold=0.4",
    )
    assert result.policy_source == "config"
    scores = pd.read_csv(result.report.markdown_path.parent / "scores.csv")
    expected = np.where(
        scores["score"] >= 0.6, "reject", np.where(scores["score"] < 0.4, "approve", "review")
    )
    assert scores["decision"].tolist() == expected.tolist()
    assert "| reject if score >= | 0.6000 |" in result.report.markdown_path.read_text()


def test_only_one_config_threshold_is_an_error_naming_both_keys(trained, manifest, tmp_path):
    with pytest.raises(ValueError, match=r"policy\.reject_threshold and policy\.approve_threshold"):
        _evaluate(
            trained,
            tmp_path,
            f"model_uri={trained['result'].model_dir}",
            f"manifest={manifest}",
            "policy.reject_threshold=0.6",
        )


def _with_bad_label(manifest: Path, tmp_path: Path) -> Path:
    rows = pd.read_csv(manifest, dtype=str).head(30)
    rows.loc[2, "label"] = "fake"
    bad = manifest.parent / f"bad-{tmp_path.name}.csv"
    rows.to_csv(bad, index=False)
    return bad


def test_invalid_manifest_fails_with_file_row_and_column(trained, manifest, tmp_path):
    bad = _with_bad_label(manifest, tmp_path)
    with pytest.raises(ManifestError, match=r"row 3 \(line 4\), column 'label': unknown label"):
        _evaluate(trained, tmp_path, f"model_uri={trained['result'].model_dir}", f"manifest={bad}")


def test_quarantine_evaluates_the_valid_rows_and_reports_the_rejected(trained, manifest, tmp_path):
    bad = _with_bad_label(manifest, tmp_path)
    result = _evaluate(
        trained,
        tmp_path,
        f"model_uri={trained['result'].model_dir}",
        f"manifest={bad}",
        "on_error=quarantine",
    )
    assert result.rows["in"] == 30 == result.rows["valid"] + result.rows["rejected"]
    assert result.rows["rejected"] == 1 and result.rows["evaluated"] == 29
    rejects = pd.read_csv(result.report.markdown_path.parent / "rejects.csv")
    assert rejects["listing_id"].tolist() == [pd.read_csv(bad)["listing_id"][2]]
    assert "1 invalid row(s) set aside" in result.report.markdown_path.read_text()


def test_training_manifest_is_flagged_and_split_test_keeps_the_runs_test_rows(trained, tmp_path):
    result = trained["result"]
    training_manifest = trained["root"] / "data" / "demo-small" / "listings.csv"
    uri = "model_uri=models:/ipguard-image/1"
    whole = _evaluate(trained, tmp_path / "all", uri, f"manifest={training_manifest}")
    assert "the model's own training data" in whole.report.markdown_path.read_text()

    test_only = _evaluate(
        trained, tmp_path / "test", uri, f"manifest={training_manifest}", "split=test"
    )
    splits = pd.read_csv(result.output_dir / "splits.csv")
    assert test_only.rows["evaluated"] == int((splits["split"] == "test").sum())
    assert "the model's own training data" not in test_only.report.markdown_path.read_text()
    # the served, calibrated model ranks the test split as training's own test step did
    assert test_only.metrics["auroc"] == pytest.approx(result.metrics["test/auroc"], abs=0.02)


def test_unreadable_image_is_counted_as_not_scored_and_listed_with_its_flag(
    trained, manifest, tmp_path
):
    rows = pd.read_csv(manifest, dtype=str).head(20)
    broken = f"images/broken-{tmp_path.name}.jpg"
    (manifest.parent / broken).write_bytes(b"not a jpeg")
    rows.loc[4, "image_path"] = broken
    path = manifest.parent / f"broken-{tmp_path.name}.csv"
    rows.to_csv(path, index=False)
    result = _evaluate(
        trained, tmp_path, f"model_uri={trained['result'].model_dir}", f"manifest={path}"
    )
    assert result.rows["not_scored"] == 1 and result.rows["evaluated"] == 19
    assert result.report.headline["n"] == 19
    not_scored = pd.read_csv(result.report.markdown_path.parent / "not_scored.csv")
    assert not_scored["listing_id"].tolist() == [rows["listing_id"][4]]
    assert "image_unreadable" in not_scored["flags"][0]
    assert "1 listing(s) could not be scored" in result.report.markdown_path.read_text()


def test_a_team_labelled_semicolon_manifest_evaluates_like_the_original(
    trained: dict[str, Any], manifest: Path, by_alias: EvaluationResult, tmp_path: Path
) -> None:
    rows = pd.read_csv(manifest, dtype=str)
    rows["label"] = rows["label"].map({"genuine": "OK", "infringing": "fake"})
    own = manifest.with_name("team_labels.csv")  # beside the images the paths point at
    rows.to_csv(own, index=False, sep=";")
    result = _evaluate(
        trained,
        tmp_path,
        "model_uri=models:/ipguard-image@challenger",
        f"manifest={own}",
        "label_values={genuine: [ok], infringing: [fake]}",
    )
    assert result.metrics["auroc"] == pytest.approx(by_alias.metrics["auroc"])
