"""The one lookup of a registered version behind models:/ URIs, and the messages the
commands built on it give when the version is not there (a real sqlite registry)."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from ipguard.commands.serve import missing_model
from ipguard.registry.lookup import (
    NotRegisteredError,
    RegistryRef,
    parse_models_uri,
    registered_version,
)


@pytest.mark.parametrize(
    ("uri", "ref"),
    [
        ("models:/ipguard-listing@champion", RegistryRef("ipguard-listing", "champion", None)),
        ("models:/ipguard-text/12", RegistryRef("ipguard-text", None, "12")),
        ("models:/ipguard-text", None),
        ("models:/ipguard-text/latest", None),
        ("runs:/abc/model", None),
    ],
)
def test_models_uris_are_parsed_into_name_and_alias_or_version(
    uri: str, ref: RegistryRef | None
) -> None:
    assert parse_models_uri(uri) == ref


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("ipguard-listing")
    for _ in range(2):
        client.create_model_version("ipguard-listing", source=str(root), run_id=None)
    client.set_registered_model_alias("ipguard-listing", "challenger", "2")
    return uri


def test_a_version_is_found_by_alias_and_by_number(registry: str) -> None:
    client = MlflowClient(tracking_uri=registry, registry_uri=registry)
    assert registered_version(client, "models:/ipguard-listing@challenger").version in ("2", 2)
    assert str(registered_version(client, "models:/ipguard-listing/1").version) == "1"


def test_a_missing_version_names_the_uri_and_the_registry(registry: str) -> None:
    client = MlflowClient(tracking_uri=registry, registry_uri=registry)
    with pytest.raises(NotRegisteredError, match=r"models:/ipguard-listing/7: not in the registry"):
        registered_version(client, "models:/ipguard-listing/7")
    with pytest.raises(NotRegisteredError, match=r"expected models:/<name>@<alias>"):
        registered_version(client, "models:/ipguard-listing")
    assert isinstance(NotRegisteredError("x"), ValueError)  # callers that catch ValueError


def test_serving_a_missing_champion_says_how_to_get_one(registry: str) -> None:
    problem = missing_model("models:/ipguard-listing@champion", registry)
    assert problem is not None
    assert registry in problem and "ipguard-promote demo_holdout=true" in problem
    assert "models:/ipguard-listing@challenger" in problem
    assert missing_model("models:/ipguard-listing@challenger", registry) is None
    other = missing_model("models:/ipguard-listing/9", registry)
    assert other is not None and "ipguard-promote" not in other
