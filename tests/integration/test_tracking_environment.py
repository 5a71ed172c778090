"""A training run must not pin later runs of the same process to its store.

MLflow's ``set_tracking_uri`` exports ``MLFLOW_TRACKING_URI`` when the URI changes; since
that variable wins over the config, a notebook that trains twice into two project folders
would silently log the second run into the first store.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from ipguard.config import compose
from ipguard.jobs.run import configure_tracking, resolve_tracking_uri, uri_environment_kept
from ipguard.jobs.train import train

pytestmark = pytest.mark.integration


def test_lightning_training_leaves_no_tracking_uri_in_the_environment(
    demo_small: Any, tmp_path: Path
) -> None:
    assert "MLFLOW_TRACKING_URI" not in os.environ
    cfg = compose(
        "train",
        [
            "debug=fast",
            "model=image",
            "model.backbone=tiny_cnn",
            f"data.manifest={demo_small.manifest_path}",
            f"paths.root_dir={tmp_path / 'first'}",
            "register=false",
        ],
    )
    result = train(cfg)
    assert str(tmp_path / "first") in result.tracking_uri
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert "MLFLOW_REGISTRY_URI" not in os.environ
    # the next project in the same process gets its own store
    second = resolve_tracking_uri(None, tmp_path / "second")
    assert str(tmp_path / "second") in second


def test_a_uri_set_by_the_user_survives_configure_tracking(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    team = f"sqlite:///{(tmp_path / 'team.db').as_posix()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", team)
    uri, _ = configure_tracking(None, tmp_path / "project", "exp")
    assert uri == team
    with uri_environment_kept():
        os.environ["MLFLOW_TRACKING_URI"] = "sqlite:///elsewhere.db"
    assert os.environ["MLFLOW_TRACKING_URI"] == team
