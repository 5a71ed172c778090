"""``ipguard-<command> --help``: the command's groups with their options, its most used keys
with defaults and meaning, two examples; rendered without generating the demo data."""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from ipguard.command_help import EXAMPLES, KEYS
from ipguard.commands import livestream, serve
from ipguard.config import CONFIG_DIR, compose, config_names

COMMANDS = sorted(KEYS)
#: five --help processes (~20 s together)
pytestmark = pytest.mark.slow


def _groups(command: str) -> list[str]:
    """The groups of the command's defaults list (``- model: fusion``)."""
    defaults = yaml.safe_load((CONFIG_DIR / f"{command}.yaml").read_text())["defaults"]
    return [next(iter(d)) for d in defaults if isinstance(d, dict)]


@pytest.fixture(scope="module")
def helps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, Path]]:
    """Each command's --help output from its console entry point, run in its own process and
    project root (all at once: they only import and compose)."""
    running = {}
    for command in COMMANDS:
        home = tmp_path_factory.mktemp(f"help-{command}")
        code = f"from ipguard.cli import {command}_main; {command}_main()"
        running[command] = (
            subprocess.Popen(
                [sys.executable, "-c", code, "--help"],
                env={**_env(), "IPGUARD_HOME": str(home)},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            ),
            home,
        )
    out = {}
    for command, (proc, home) in running.items():
        text, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, text[-2000:]
        out[command] = (text, home)
    return out


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}


@pytest.mark.parametrize("command", COMMANDS)
def test_help_lists_groups_with_their_options_and_the_chosen_one(helps, command: str) -> None:
    text, _ = helps[command]
    assert text.startswith(f"ipguard-{command}: ")
    assert "== Config groups (group=option) ==" in text
    for group in _groups(command):
        line = next(ln for ln in text.splitlines() if ln.strip().startswith(f"{group}="))
        assert "|".join(config_names(group)) in line, line
        assert "(now: " in line
    if command == "train":
        assert "model=fusion|image|late_fusion|" in text and "data=demo|demo_video|manifest" in text


@pytest.mark.parametrize("command", COMMANDS)
def test_help_lists_the_most_used_keys_with_defaults_and_two_examples(helps, command: str) -> None:
    text, home = helps[command]
    lines = text.splitlines()
    for key, meaning in KEYS[command]:
        (i,) = [n for n, ln in enumerate(lines) if ln.startswith(f"  {key}=")]
        assert lines[i + 1].strip() == meaning
    assert 10 <= len(KEYS[command]) <= 20
    examples = text.split("== Examples ==")[1]
    assert len(EXAMPLES[command]) == 2
    for example in EXAMPLES[command]:
        assert example in examples
    # defaults are shown from the composed config, interpolations unresolved: no demo data
    assert not (home / "data").exists()


def test_train_help_shows_the_configured_defaults(helps) -> None:
    text, _ = helps["train"]
    cfg = compose("train")
    assert f"  seed={cfg.seed}\n" in text
    assert f"  data.batch_size={cfg.data.batch_size}\n" in text
    assert f"  trainer.max_epochs={cfg.trainer.max_epochs}\n" in text
    assert "  data.manifest=<the demo listings, generated on first use>\n" in text


@pytest.mark.parametrize("command", COMMANDS)
def test_every_listed_key_exists_and_every_example_composes(command: str) -> None:
    cfg = compose(command)
    for key, _ in KEYS[command]:
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(cfg, parent) if parent else cfg
        # keys(): `in` would resolve the demo's interpolations
        assert leaf in node.keys(), f"{command}: {key} is not in its config"  # noqa: SIM118
    for example in EXAMPLES[command]:
        args = shlex.split(example)
        assert args[0] == f"ipguard-{command}"
        overrides = [a.replace("DATE", "2026-01-01") for a in args[1:]]
        compose(command, overrides)


def _option_names(parser: argparse.ArgumentParser) -> list[str]:
    return [name for action in parser._actions for name in action.option_strings]


@pytest.mark.parametrize("command", ["livestream", "serve"])
def test_the_argparse_commands_help_lists_each_option(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """ipguard-livestream and ipguard-serve are not Hydra apps (a stream, a server): their
    --help is argparse's, with every flag, and for serve every KEY=VALUE setting."""
    module = {"livestream": livestream, "serve": serve}[command]
    with pytest.raises(SystemExit) as exited:
        module.main(["--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert text.startswith(f"usage: ipguard-{command} ")
    for name in _option_names(module.build_parser()):
        assert name in text
    if command == "serve":
        for field in dataclasses.fields(serve.ServeSettings):
            assert f"{field.name}=" in text, field.name
    else:
        assert "MODEL" in text and "SOURCE" in text
