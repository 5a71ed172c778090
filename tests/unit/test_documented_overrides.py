"""Every override the README and docs/ show composes with the packaged configs, without ``+``.

Hydra refuses ``key=value`` for a key the config lacks (the user must guess ``+key=value``),
so a documented option that is not in the configs is a trap. Each ``ipguard-<command> ...``
line of the docs (continuation lines joined, comments dropped) is composed with that command's
config; each override written alone in inline code (```data.brands=PATH```) must exist in
some command's config. A doc that mentions a key the configs do not have fails here.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ipguard.config import CONFIG_DIR, compose, config_names

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
#: the Hydra commands, each composing configs/<name>.yaml
COMMANDS = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
COMMAND_LINE = re.compile(rf"ipguard-({'|'.join(COMMANDS)})\b(.*)")
OVERRIDE = re.compile(r"^(?P<plus>\+{0,2})(?P<key>[A-Za-z_][\w.]*)=(?P<value>.*)$")
INLINE = re.compile(r"`([^`\n]+)`")
#: a team's own config folder: its groups are not the packaged ones
OWN_CONFIGS = ("--config-dir", "hydra.searchpath")
#: sweep values (ipguard-train -m ...) are expanded by the sweeper, not composed
PLACEHOLDER = re.compile(r"<[^<>]*>")
SWEEP = re.compile(r"^(choice|range|interval|glob|tag)\(|,")


def _command_lines(text: str) -> Iterator[tuple[int, str, str]]:
    """(line number, command, arguments) for each ``ipguard-<command>`` invocation."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        start, found = i, COMMAND_LINE.search(lines[i])
        if found:
            body = found.group(2)
            while body.rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                body = body.rstrip()[:-1] + " " + lines[i]
            yield start + 1, found.group(1), body.split("`")[0].split(" # ")[0].split("#")[0]
        i += 1


def _overrides(arguments: str) -> tuple[str, ...]:
    try:
        tokens = shlex.split(arguments)
    except ValueError:  # an unbalanced quote in prose around the command
        tokens = arguments.split()
    # <date>, <run>: placeholders the reader fills in, not Hydra grammar
    return tuple(PLACEHOLDER.sub("X", t) for t in tokens if OVERRIDE.match(t))


def _documented() -> list[tuple[str, str, tuple[str, ...]]]:
    """(where, command, overrides) per distinct documented invocation."""
    found, seen = [], set()
    for doc in DOCS:
        for line, command, arguments in _command_lines(doc.read_text(encoding="utf-8")):
            if any(flag in arguments for flag in OWN_CONFIGS):
                continue
            overrides = _overrides(arguments)
            if overrides and (command, overrides) not in seen:
                seen.add((command, overrides))
                found.append((f"{doc.name}:{line}", command, overrides))
    return found


def _inline_overrides() -> list[tuple[str, str]]:
    """Inline code made only of overrides, e.g. ```data.manifest=PATH data.brands=PATH```."""
    found = []
    for doc in DOCS:
        for n, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            if COMMAND_LINE.search(line):
                continue
            for span in INLINE.findall(line):
                tokens = span.split()
                if tokens and all(_is_config_override(t) for t in tokens):
                    found.extend((f"{doc.name}:{n}", t) for t in tokens)
    return sorted(set(found))


def _is_config_override(token: str) -> bool:
    """``group=option`` or ``group.key=value``: what only a config can mean (``OMP_...=1``,
    ``weights_only=True`` or ``rows_in=17`` in prose are environment, Python or counts)."""
    match = OVERRIDE.match(token)
    if match is None or not match["value"] or match["value"].startswith("="):
        return False
    return (CONFIG_DIR / match["key"].split(".")[0]).is_dir()


pytestmark = pytest.mark.slow  # about a hundred compositions (~0.3 s each)
DOCUMENTED = _documented()
INLINE_OVERRIDES = _inline_overrides()


@pytest.fixture(scope="module", autouse=True)
def _no_demo_generation() -> Iterator[None]:
    """Composing can resolve the demo's interpolations (an experiment writing over
    ``data.brands`` resolves ``data.manifest``), which generates 2000 demo listings: these
    tests only read keys, so the demo generators hand back a path and generate nothing."""
    import ipguard.demo.listings
    import ipguard.demo.videos

    def path(*_: object) -> str:
        return "demo-not-generated/listings.csv"

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ipguard.demo.listings, "demo_manifest", path)
        mp.setattr(ipguard.demo.videos, "demo_video_manifest", path)
        yield


def test_the_docs_show_overrides_of_every_command() -> None:
    """The parser finds what the docs show (guards against a parser that finds nothing)."""
    commands = {command for _, command, _ in DOCUMENTED}
    assert {"train", "evaluate", "export", "promote", "score"} <= commands
    assert len(DOCUMENTED) > 30 and len(INLINE_OVERRIDES) > 5


@pytest.mark.parametrize(("where", "command", "overrides"), DOCUMENTED, ids=lambda v: str(v))
def test_documented_command_line_composes_without_plus(
    where: str, command: str, overrides: tuple[str, ...]
) -> None:
    plus = [o for o in overrides if o.startswith("+")]
    assert not plus, f"{where}: ipguard-{command} needs {plus}; add the key to the config"
    composable = [o for o in overrides if not SWEEP.search(o.split("=", 1)[1])]
    try:
        compose(command, composable)
    except (HydraException, OmegaConfBaseException) as err:
        pytest.fail(f"{where}: ipguard-{command} {' '.join(overrides)}: {err}")


def _key_paths(tree: object, prefix: str = "") -> Iterator[str]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            path = f"{prefix}{key}"
            yield path
            yield from _key_paths(value, f"{path}.")


@cache
def _every_key() -> frozenset[str]:
    """The keys of every command's config, and of train's under each option of each group
    (``model.backbone`` exists under ``model=image`` only)."""
    configs = [compose(command) for command in COMMANDS]
    for group in sorted(p.name for p in CONFIG_DIR.iterdir() if p.is_dir()):
        if group not in ("paths", "hparams_search"):  # one option / a sweep, as documented
            configs += [compose("train", [f"{group}={o}"]) for o in config_names(group)]
    keys: set[str] = set()
    for cfg in configs:
        keys.update(_key_paths(OmegaConf.to_container(cfg, resolve=False)))
    return frozenset(keys)


def _known_somewhere(key: str, value: str) -> bool:
    """A group choice that exists, or a key of some command's config."""
    if (CONFIG_DIR / key).is_dir():
        return value in config_names(key) or value == "null"
    return key in _every_key()


@pytest.mark.parametrize(("where", "override"), INLINE_OVERRIDES, ids=lambda v: str(v))
def test_override_named_in_prose_exists_in_a_config(where: str, override: str) -> None:
    match = OVERRIDE.match(override)
    assert match is not None
    assert not match["plus"], f"{where}: `{override}` needs `+`; add the key to a config"
    assert _known_somewhere(match["key"], match["value"]), (
        f"{where}: `{override}`: no packaged config has the key {match['key']!r} "
        f"(or the group option {match['value']!r})"
    )
