"""Composing a config (and so ``--help`` and ``--cfg job``) never generates the demo data: the
demo listings, clips and catalogs appear only when a running job reads its data keys. An
experiment that wrote over ``data.brands`` made OmegaConf resolve the interpolation it replaced
while merging, which generated 2000 demo listings for ``experiment=brand_references --help``.
Also: ``ipguard-evaluate data.manifest=PATH`` (the key ipguard-train reads) is ``manifest=``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ipguard.demo.listings as listings
import ipguard.demo.references as references
import ipguard.demo.videos as videos
from ipguard.config import compose, config_names

#: every function through which a config's resolvers write demo data
GENERATORS = (
    (listings, "ensure_demo_data"),
    (listings, "generate_demo_data"),
    (references, "ensure_reference_catalog"),
    (videos, "ensure_demo_videos"),
)


@pytest.fixture
def generators_refuse(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[str]]:
    """The demo generators' calls (each recorded, then refused); IPGUARD_HOME is an empty
    folder that must stay so. Recorded, not only raised: OmegaConf swallows what a resolver
    raises while it merges, which is where the unwanted generation happened."""
    calls: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> None:
        calls.append(f"{args} {kwargs}")
        raise AssertionError(f"composing a config generated demo data: {args} {kwargs}")

    for module, name in GENERATORS:
        monkeypatch.setattr(module, name, refuse)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("IPGUARD_HOME", str(home))
    yield calls
    assert list(home.iterdir()) == []


@pytest.mark.parametrize("extra", [[], ["debug=fast"]], ids=["plain", "debug"])
@pytest.mark.parametrize("experiment", config_names("experiment"))
def test_composing_an_experiment_generates_nothing(
    experiment: str, extra: list[str], generators_refuse: list[str]
) -> None:
    cfg = compose("train", [f"experiment={experiment}", *extra])
    assert cfg.task_name  # composed, unresolved
    assert generators_refuse == []


@pytest.mark.parametrize(
    "command", ["train", "evaluate", "export", "promote", "score", "feedback", "monitor"]
)
def test_composing_a_command_generates_nothing(command: str, generators_refuse: list[str]) -> None:
    compose(command)
    assert generators_refuse == []


def test_brand_references_reads_the_demos_reference_folder_when_the_job_reads_it(
    demo_small: Any,
) -> None:
    """The experiment's flag still gives the demo's reference catalog folder, resolved on
    reading, and a team's manifest no catalog; without the experiment, the demo's CSV."""
    manifest = f"data.manifest={demo_small.manifest_path}"
    cfg = compose("train", ["experiment=brand_references", manifest])
    assert cfg.data.brands == str(demo_small.reference_catalog_path)
    assert Path(cfg.data.brands).is_dir()
    assert compose("train", [manifest]).data.brands == str(demo_small.catalog_path)
    own = compose("train", ["experiment=brand_references", "data.manifest=/elsewhere/own.csv"])
    assert own.data.brands is None


@pytest.mark.slow
def test_train_help_and_cfg_job_of_brand_references_generate_nothing(tmp_path: Path) -> None:
    """The CLI, as a user types it (~10 s: two processes)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["IPGUARD_HOME"] = str(tmp_path)
    code = "from ipguard.cli import train_main; train_main()"
    for flags in (["--help"], ["--cfg", "job"]):
        argv = [sys.executable, "-c", code, "experiment=brand_references", *flags]
        result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        assert "brand_references" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_evaluate_takes_data_manifest_as_its_manifest() -> None:
    assert compose("evaluate").manifest is None  # the model's training manifest
    assert compose("evaluate", ["data.manifest=own.csv"]).manifest == "own.csv"
    both = compose("evaluate", ["data.manifest=own.csv", "manifest=frozen.csv"])
    assert both.manifest == "frozen.csv"  # the evaluate key, when both are given
