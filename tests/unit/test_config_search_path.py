"""A team keeps its own configs in a folder of its project and adds it to Hydra's search path:
its options appear beside the packaged ones and may build on them (docs/configs.md)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ipguard.config import compose

IMAGE = "ipguard.models.image_classifier.ImageClassifier"


@pytest.fixture
def team_conf(tmp_path: Path) -> Path:
    """A team's folder: a model built on the packaged image model and an experiment using it."""
    conf = tmp_path / "conf"
    (conf / "model").mkdir(parents=True)
    (conf / "experiment").mkdir()
    (conf / "model" / "my_model.yaml").write_text(
        textwrap.dedent(
            """\
            defaults:
              - image
            backbone: tiny_cnn
            lr: 0.001
            """
        )
    )
    (conf / "experiment" / "x.yaml").write_text(
        textwrap.dedent(
            """\
            # @package _global_
            defaults:
              - override /model: my_model
            task_name: x
            trainer:
              max_epochs: 2
            """
        )
    )
    return conf


def test_a_team_model_builds_on_the_packaged_one(team_conf: Path) -> None:
    cfg = compose("train", [f"hydra.searchpath=[file://{team_conf}]", "model=my_model"])
    assert cfg.model._target_ == IMAGE
    assert (cfg.model.backbone, cfg.model.lr) == ("tiny_cnn", 0.001)
    assert cfg.model.head_hidden == compose("train", ["model=image"]).model.head_hidden


def test_a_team_experiment_picks_the_team_model(team_conf: Path) -> None:
    cfg = compose("train", [f"hydra.searchpath=[file://{team_conf}]", "experiment=x"])
    assert cfg.model._target_ == IMAGE and cfg.model.backbone == "tiny_cnn"
    assert (cfg.task_name, cfg.trainer.max_epochs) == ("x", 2)


def test_the_packaged_options_stay_available_beside_the_team_ones(team_conf: Path) -> None:
    cfg = compose("train", [f"hydra.searchpath=[file://{team_conf}]", "experiment=fusion"])
    assert cfg.task_name == "fusion"


def test_ipguard_train_reads_a_team_folder_given_as_config_dir(team_conf: Path) -> None:
    script = shutil.which("ipguard-train", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-m", "ipguard.cli"]
    proc = subprocess.run(
        [*command, "--config-dir", str(team_conf), "experiment=x", "--cfg", "job"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "task_name: x" in proc.stdout
    assert "backbone: tiny_cnn" in proc.stdout
