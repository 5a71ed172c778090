"""A real REST server: ``mlflow models serve`` on ``models:/ipguard-listing@champion`` (the fused
image + text + tabular model) answers the model contract over HTTP on loopback, bad rows
included, and refuses a malformed request with a 4xx that says what is wrong."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import pandas as pd
import psutil
import pytest
from tiny_registry import TinyStore, request_rows, subprocess_env, train_tiny_model

from ipguard.serving.local_server import serve_locally

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REQUEST_S = 60


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, demo_small) -> TinyStore:
    trained = train_tiny_model(
        tmp_path_factory.mktemp("home"), demo_small.manifest_path, model="fusion"
    )
    assert trained.name == "ipguard-listing"
    # ipguard-promote's gate is tested in test_promotion; here only the alias matters
    trained.client().set_registered_model_alias(trained.name, "champion", trained.version)
    return trained


@pytest.fixture(scope="module")
def server(store: TinyStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mlflow models serve -m models:/ipguard-listing@champion --env-manager local -h 127.0.0.1
    -p <free port> --workers 1``; stopped (parent, then children) however the tests end."""
    log = tmp_path_factory.mktemp("server") / "serve.log"
    with serve_locally(
        f"models:/{store.name}@champion",
        tracking_uri=store.tracking_uri,
        log_path=log,
        env=subprocess_env(store.home),
        startup_s=180,
    ) as running:
        assert running.url.startswith("http://127.0.0.1:")
        started = [running.pid, *(p.pid for p in psutil.Process(running.pid).children(True))]
        yield running.url
    left = [pid for pid in started if psutil.pid_exists(pid)]
    assert not left, f"server processes still running after stop: {left}"


def _strict(token: str) -> float:
    raise ValueError(f"response is not strict JSON: it contains the bare token {token}")


def _post(url: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{url}/invocations", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_S) as answer:
            return answer.status, json.loads(answer.read(), parse_constant=_strict)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def test_rest_invocation_follows_the_contract(server: str, store: TinyStore) -> None:
    rows = request_rows(store.manifest, 4).assign(price=[12.5, "abc", None, 30.0])
    rows = rows.astype(object).where(rows.notna(), None)
    rows.loc[2, "image_b64"] = "bm90IGFuIGltYWdl"  # "not an image"
    rows.loc[3, "title"] = None
    payload = {"dataframe_split": rows.to_dict(orient="split", index=False)}

    status, body = _post(server, json.dumps(payload).encode())

    assert status == 200, body
    out = pd.DataFrame(body["predictions"])
    assert out["listing_id"].tolist() == rows["listing_id"].tolist()
    assert out["flags"].tolist() == ["", "price_invalid", "image_unreadable", "text_empty"]
    # the fused model scores every row with what is usable: no image, or no text, is not fatal
    assert out["score"].between(0, 1).all()
    assert set(out["decision"]) <= {"reject", "review", "approve"}
    # strict JSON: a modality that was not usable is null (MLflow would write a bare NaN)
    predictions = body["predictions"]
    assert predictions[2]["image_score"] is None and predictions[2]["text_score"] is not None
    assert predictions[3]["text_score"] is None and predictions[3]["image_score"] is not None
    assert all(0 <= predictions[i]["image_score"] <= 1 for i in (0, 1, 3))
    assert (out["model_version"] == store.version).all()


def test_request_without_listing_id_is_refused_with_a_clear_4xx(
    server: str, store: TinyStore
) -> None:
    rows = request_rows(store.manifest, 1).drop(columns=["listing_id"])
    payload = {"dataframe_split": rows.to_dict(orient="split", index=False)}
    status, body = _post(server, json.dumps(payload).encode())
    assert status == 400
    assert "missing inputs ['listing_id']" in body["message"]


def test_body_that_is_not_json_is_refused_with_a_clear_4xx(server: str) -> None:
    status, body = _post(server, b"listing_id=L1&title=bag")
    assert status == 400
    assert "json" in body["message"].lower()
