"""A tracking server's 401/403 becomes one readable line naming the server, the action and the
fix; any other MLflow error passes through untouched."""

from __future__ import annotations

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    PERMISSION_DENIED,
    RESOURCE_DOES_NOT_EXIST,
    UNAUTHENTICATED,
)

from ipguard.jobs.run import TrackingRefused, refusal, refusals_explained

URI = "http://127.0.0.1:5000"


def test_unauthenticated_without_a_username_says_which_variables_to_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    error = MlflowException("401 != 200", error_code=UNAUTHENTICATED)
    with pytest.raises(TrackingRefused) as caught, refusals_explained(URI, "read experiment 'x'"):
        raise error
    message = str(caught.value)
    assert message.startswith(f"the tracking server {URI} refused to read experiment 'x' (401")
    assert "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD" in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_unauthenticated_with_a_username_names_the_user_and_asks_to_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "dana")
    refused = refusal(MlflowException("no", error_code=UNAUTHENTICATED), URI, "create a run")
    assert refused is not None
    assert "(401 not authenticated as user 'dana'): check MLFLOW_TRACKING_USERNAME" in str(refused)


def test_permission_denied_names_the_user_and_the_permission_to_ask_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "reader")
    refused = refusal(
        MlflowException("no", error_code=PERMISSION_DENIED), URI, "move @champion of m to v2"
    )
    assert refused is not None
    assert "refused to move @champion of m to v2 (403 permission denied as user 'reader')" in str(
        refused
    )
    assert "EDIT or MANAGE" in str(refused)


def test_other_mlflow_errors_pass_through_unchanged() -> None:
    error = MlflowException("no such model", error_code=RESOURCE_DOES_NOT_EXIST)
    assert refusal(error, URI, "read m") is None
    with pytest.raises(MlflowException) as caught, refusals_explained(URI, "read m"):
        raise error
    assert caught.value is error
