"""Shared fixtures: every test gets its own project root, tracking store and demo data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_tracking(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test may write to a developer's MLflow store or ./mlruns, nor leak its store.

    Setting each variable before deleting it makes monkeypatch record the original state, so
    a URI that MLflow exports during the test (``mlflow.set_tracking_uri`` does) is removed
    at teardown instead of pinning every later test to this test's store.
    """
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.setenv(name, "unset-by-ipguard-tests")
        monkeypatch.delenv(name)
    monkeypatch.setenv("IPGUARD_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="session")
def demo_small(tmp_path_factory: pytest.TempPathFactory):
    """A small demo dataset shared by the tests that only read it."""
    from ipguard.demo.listings import generate_demo_data

    return generate_demo_data(tmp_path_factory.mktemp("demo"), n=240, seed=7, image_size=48)


@pytest.fixture(scope="session")
def team_text_model(demo_small, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A TF-IDF ``ipguard-text`` v1 (seconds, no Lightning) trained and registered on a team's
    own manifest: the demo listings without photos, ';'-separated, labels ``OK`` / ``fake``,
    outside the demo folder. Keys: root (project, store), manifest, result (TrainResult)."""
    import pandas as pd

    from ipguard.config import compose
    from ipguard.jobs.train import train

    root = tmp_path_factory.mktemp("team-project")
    manifest = tmp_path_factory.mktemp("team-export") / "team_listings.csv"
    rows = pd.read_csv(demo_small.manifest_path, dtype=str).drop(columns="image_path")
    rows["label"] = rows["label"].map({"genuine": "OK", "infringing": "fake"})
    rows.to_csv(manifest, index=False, sep=";")
    overrides = [
        "debug=fast",
        "model=text_tfidf",
        f"data.manifest={manifest}",
        "data.label_values={genuine: [ok], infringing: [fake]}",
        f"paths.root_dir={root}",
    ]
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.setenv("IPGUARD_HOME", str(root))
        result = train(compose("train", overrides))
    assert result.registered is not None
    return {"root": root, "manifest": manifest, "result": result}
