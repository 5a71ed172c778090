"""A registered model version from its ``models:/`` URI: the one lookup every command shares.

Loading a model, serving it, monitoring it and promoting it all start from
``models:/<name>@<alias>`` or ``models:/<name>/<version>``; each used to parse the URI and ask
the registry in its own way, with its own error. They now ask here, and say in their own words
what the user should do when the version is not there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mlflow.exceptions import MlflowException

__all__ = [
    "MODELS_URI",
    "NotRegisteredError",
    "RegistryRef",
    "parse_models_uri",
    "registered_version",
]

#: ``models:/<name>@<alias>`` or ``models:/<name>/<version>``
MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")


class NotRegisteredError(ValueError):
    """The URI names no version in this registry (or is not a ``models:/`` URI of a version)."""


@dataclass(frozen=True)
class RegistryRef:
    """What a ``models:/`` URI names: a registered model and an alias or a version number."""

    name: str
    alias: str | None
    version: str | None


def parse_models_uri(uri: str) -> RegistryRef | None:
    """The name and alias or version of ``uri``; None when it is not a ``models:/`` URI of
    either form."""
    match = MODELS_URI.match(uri)
    if not match:
        return None
    return RegistryRef(match["name"], match["alias"], match["version"])


def registered_version(client: Any, uri: str) -> Any:
    """The registry's ``ModelVersion`` that ``uri`` names.

    Raises :class:`NotRegisteredError` saying which registry was asked and what it answered, or
    that ``uri`` has neither an alias nor a version number.
    """
    ref = parse_models_uri(uri)
    if ref is None:
        raise NotRegisteredError(
            f"{uri}: expected models:/<name>@<alias> or models:/<name>/<version>"
        )
    try:
        if ref.alias is not None:
            return client.get_model_version_by_alias(ref.name, ref.alias)
        return client.get_model_version(ref.name, ref.version)
    except MlflowException as err:
        raise NotRegisteredError(
            f"{uri}: not in the registry at {client.tracking_uri} ({err.message})"
        ) from err
