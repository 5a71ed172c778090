"""Reading the JSON files a model folder's references are described by, with clear errors.

The reference embedder and the references each write a small JSON file with a ``format`` and
``version``; a folder written by another ipguard (or not by ipguard at all) must fail with a
message naming the file and what was found, not with a KeyError deep in a service's start-up.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["read_stored_json"]


def read_stored_json(path: Path, *, format: str, version: int, what: str) -> dict[str, Any]:
    """The JSON object in ``path``, checked to be ``format`` at ``version``."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: expected {what} ({err})") from err
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected {what} as a JSON object")
    if config.get("format") != format or config.get("version") != version:
        raise ValueError(
            f"{path}: expected format {format!r} version {version}, found "
            f"{config.get('format')!r} version {config.get('version')!r}"
        )
    return config
