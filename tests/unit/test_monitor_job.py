"""``monitor(cfg)`` and ``ipguard-monitor`` end to end on a model folder and generated traffic:
the report folder, the MLflow run, the exit codes, and the errors that name file and column."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from test_monitoring import POLICY, draw_traffic

from ipguard.cli import monitor_main
from ipguard.config import compose
from ipguard.jobs.monitor import ALERT_EXIT_CODE, MonitorInputError, monitor
from ipguard.monitoring import build_profile
from ipguard.serving.spec import ModelSpec


def _model_folder(path: Path, *, with_profile: bool = True) -> Path:
    """An exported folder as monitoring reads it: the spec (policy) and the profile."""
    ModelSpec(
        kind="text_tfidf", network={}, preprocessing={}, calibrator={"method": "none"},
        policy=POLICY, registered_model="ipguard-text", model_version="4",
    ).save(path)  # fmt: skip
    if with_profile:
        reference = draw_traffic(3000, seed=1)
        build_profile(reference, policy=POLICY, source="validation split").save(path)
    return path


def _traffic(path: Path, frame: pd.DataFrame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _model_folder(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One tracking store for the module: creating a sqlite store costs seconds each time."""
    return f"mlflow.tracking_uri=sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"


@pytest.fixture
def cfg(store: str):
    """The composed config of one run; Evidently only where a test asks for it."""

    def make(model: Path, traffic: Path, out: Path, *extra: str):
        args = [f"model_uri={model}", f"traffic={traffic}", f"output={out}", store]
        return compose("monitor", [*args, "evidently=false", *extra])

    return make


@pytest.mark.slow  # the first Evidently import and report: ~10-30 s
def test_unshifted_traffic_exits_0_and_writes_the_report(
    tmp_path: Path, model_dir: Path, cfg
) -> None:
    traffic = _traffic(tmp_path / "day" / "part-000000.parquet", draw_traffic(2000, seed=5))
    result = monitor(cfg(model_dir, traffic.parent, tmp_path / "report", "evidently=true"))
    assert result.exit_code == 0 and result.alerts == []
    names = {p.name for p in result.report_dir.iterdir()}
    assert {"summary.json", "checks.parquet", "evidently.html"} <= names
    assert {"scores.png", "inputs.png", "slices.png"} <= names
    summary = json.loads((result.report_dir / "summary.json").read_text())
    assert summary["exit_code"] == 0 and summary["traffic"]["rows"] == 2000
    assert summary["model"]["version"] == "4"
    kinds = {c["check"] for c in summary["checks"]}
    assert {"score_psi", "lane_rate", "feature_psi", "flag_share", "dataset_drift_share"} <= kinds
    for check in summary["checks"]:
        assert {"statistic", "threshold", "drifted", "slice_column", "slice_value"} <= set(check)
    table = pd.read_parquet(result.report_dir / "checks.parquet")
    assert len(table) == len(summary["checks"])
    assert set(table["where"]) >= {"overall", "market=US", "category=watches"}


def test_the_run_is_logged_to_mlflow_with_the_model_and_report(
    tmp_path: Path, model_dir: Path, cfg
) -> None:
    traffic = draw_traffic(2000, seed=5)
    traffic.loc[traffic.index % 10 == 0, "market"] = "KR"
    result = monitor(cfg(model_dir, _traffic(tmp_path / "t.parquet", traffic), tmp_path / "report"))
    assert result.exit_code == ALERT_EXIT_CODE
    assert any(a.check == "new_value" and a.detail["value"] == "KR" for a in result.alerts)
    run = MlflowClient(result.tracking_uri).get_run(result.run_id)
    assert run.data.tags["task"] == "monitor"
    assert run.data.tags["model_name"] == "ipguard-text"
    assert run.data.tags["model_version"] == "4"
    assert run.data.tags["exit_code"] == "3"
    assert run.data.metrics["monitor/alerts"] == len(result.alerts)
    assert run.data.metrics["monitor/rows"] == 2000
    listed = MlflowClient(result.tracking_uri).list_artifacts(run.info.run_id, "monitor_report")
    logged = {f.path for f in listed}
    assert "monitor_report/summary.json" in logged


def test_a_missing_column_names_the_file_and_the_column(
    tmp_path: Path, model_dir: Path, cfg
) -> None:
    path = _traffic(tmp_path / "t.parquet", draw_traffic(300, 5).drop(columns=["currency"]))
    with pytest.raises(MonitorInputError, match=r"t\.parquet: missing column\(s\) currency"):
        monitor(cfg(model_dir, path, tmp_path / "report"))


def test_a_score_that_is_not_a_number_names_the_row(tmp_path: Path, model_dir: Path, cfg) -> None:
    frame = draw_traffic(50, 5).astype({"score": object})
    frame.loc[7, "score"] = "high"
    frame.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(MonitorInputError, match=r"score is not a number .* row 8: 'high'"):
        monitor(cfg(model_dir, tmp_path / "t.csv", tmp_path / "report"))


def test_a_model_exported_before_profiles_says_so_and_takes_a_reference_window(
    tmp_path: Path, cfg
) -> None:
    old = _model_folder(tmp_path / "old", with_profile=False)
    traffic = _traffic(tmp_path / "t.parquet", draw_traffic(2000, seed=5))
    with pytest.raises(MonitorInputError, match=r"has no reference profile .* reference="):
        monitor(cfg(old, traffic, tmp_path / "r1"))
    window = _traffic(tmp_path / "last_month.parquet", draw_traffic(3000, seed=6))
    result = monitor(cfg(old, traffic, tmp_path / "r2", f"reference={window}"))
    assert result.exit_code == 0
    assert result.reference.startswith("reference window")


def test_the_cli_exits_3_on_drift_1_on_bad_input_0_otherwise(
    tmp_path: Path, model_dir: Path, store: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    shifted = draw_traffic(2000, seed=5)
    shifted["price"] *= 0.5
    cases = {
        0: _traffic(tmp_path / "ok.parquet", draw_traffic(2000, seed=5)),
        ALERT_EXIT_CODE: _traffic(tmp_path / "shifted.parquet", shifted),
        1: tmp_path / "missing.parquet",
    }
    for code, traffic in cases.items():
        args = [f"model_uri={model_dir}", f"traffic={traffic}", "evidently=false", store]
        monkeypatch.setattr(sys, "argv", ["ipguard-monitor", *args])
        with pytest.raises(SystemExit) as stopped:
            monitor_main()
        message = stopped.value.code
        if code == 1:
            assert isinstance(message, str) and "missing.parquet" in message
        else:
            assert message == code
    out = capsys.readouterr().out
    assert "ipguard: alert feature_psi price_ratio [overall]" in out
