"""A real ``mlflow models serve`` of the fused model under a short load, then bad requests.

The short version of ``benchmarks/rest_load.py``: four concurrent clients send ten requests
each of one and of eight listings; every one is answered with the request's listing ids in
order and the same scores a lone call gets. Then a request with too many listings, one with a
huge base64 image, one too big in all and a truncated JSON body each get a 400 that names the
problem, and the server still answers a good request afterwards. The server runs with small
``IPGUARD_MAX_*`` limits so that "too big" stays a few hundred KB here.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import numpy as np
import pandas as pd
import psutil
import pytest
from tiny_registry import TinyStore, request_rows, subprocess_env, train_tiny_model

from ipguard.serving.load_test import Payload, post, run_load
from ipguard.serving.local_server import LocalServer, serve_locally

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MAX_ROWS, MAX_IMAGE_BYTES, MAX_REQUEST_BYTES = 64, 100_000, 1_000_000
LIMITS = {
    "IPGUARD_MAX_REQUEST_ROWS": str(MAX_ROWS),
    "IPGUARD_MAX_IMAGE_BYTES": str(MAX_IMAGE_BYTES),
    "IPGUARD_MAX_REQUEST_BYTES": str(MAX_REQUEST_BYTES),
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, demo_small) -> TinyStore:
    return train_tiny_model(tmp_path_factory.mktemp("home"), demo_small.manifest_path, "fusion")


@pytest.fixture(scope="module")
def server(store: TinyStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with serve_locally(
        f"models:/{store.name}/{store.version}",
        tracking_uri=store.tracking_uri,
        log_path=tmp_path_factory.mktemp("server") / "serve.log",
        env=subprocess_env(store.home, **LIMITS),
        startup_s=180,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def rows(store: TinyStore) -> pd.DataFrame:
    return request_rows(store.manifest, 16)


def _payloads(rows: pd.DataFrame, size: int) -> list[Payload]:
    """Four distinct requests of ``size`` listings, each with its own listing ids."""
    out = []
    for k in range(4):
        window = rows.iloc[[(k * size + i) % len(rows) for i in range(size)]].copy()
        window["listing_id"] = [f"{lid}-{k}" for lid in window["listing_id"]]
        out.append(Payload.from_rows(window.reset_index(drop=True)))
    return out


def _scores(body: bytes) -> np.ndarray:
    return np.array([p["score"] for p in json.loads(body)["predictions"]], dtype=float)


@pytest.mark.parametrize("size", [1, 8])
def test_concurrent_clients_all_get_their_own_answers(
    server: LocalServer, rows: pd.DataFrame, size: int
) -> None:
    payloads = _payloads(rows, size)
    alone = [_scores(post(server.url, p.body)[1]) for p in payloads]

    result = run_load(server.url, payloads, clients=4, requests=40, budget_s=50, keep_answers=True)

    assert result.errors == 0, result.error_reasons
    assert (result.sent, result.answered, result.stopped_by) == (40, 40, "count")
    # ids in order were checked per answer; the scores are those of a lone call too
    for index, body in result.answers:
        np.testing.assert_allclose(_scores(body), alone[index], atol=1e-6)
    assert result.percentile_ms(50) <= result.percentile_ms(99)
    assert result.requests_per_s > 0


def _refusal(server: LocalServer, body: bytes) -> str:
    status, answer = post(server.url, body)
    assert 400 <= status < 500, (status, answer[:300])
    return json.loads(answer)["message"]


def test_bad_requests_get_a_clear_4xx_and_the_server_keeps_answering(
    server: LocalServer, rows: pd.DataFrame
) -> None:
    workers = [server.pid, *(p.pid for p in psutil.Process(server.pid).children(True))]

    too_many = pd.concat([rows] * 5, ignore_index=True).head(MAX_ROWS + 1)
    too_many["listing_id"] = [f"M{i}" for i in range(len(too_many))]
    message = _refusal(server, Payload.from_rows(too_many).body)
    assert f"request has {MAX_ROWS + 1} listings, over the limit of {MAX_ROWS}" in message
    assert "IPGUARD_MAX_REQUEST_ROWS" in message

    noise = np.random.default_rng(0).bytes(MAX_IMAGE_BYTES + 3000)
    huge = rows.head(2).assign(image_b64=[rows["image_b64"][0], base64.b64encode(noise).decode()])
    message = _refusal(server, Payload.from_rows(huge).body)
    assert f"row 1 (listing_id {rows['listing_id'][1]!r}): image_b64 is" in message
    assert "IPGUARD_MAX_IMAGE_BYTES" in message

    # every image under its own limit, but all of them together over the request's
    each = base64.b64encode(noise[: MAX_IMAGE_BYTES // 2]).decode()
    heavy = pd.DataFrame({"listing_id": [f"H{i}" for i in range(25)], "image_b64": each})
    message = _refusal(server, Payload.from_rows(heavy).body)
    assert "IPGUARD_MAX_REQUEST_BYTES" in message and "of text in its values" in message

    truncated = Payload.from_rows(rows.head(1)).body[:-3]
    assert "valid JSON" in _refusal(server, truncated)

    good = _payloads(rows, 1)[0]
    status, answer = post(server.url, good.body)
    assert status == 200
    assert [p["listing_id"] for p in json.loads(answer)["predictions"]] == list(good.listing_ids)
    assert all(psutil.pid_exists(pid) for pid in workers), "a server process died"
