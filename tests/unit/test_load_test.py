"""The load generator: loopback only, bounded by count and by time, every answer checked.

Served here by a tiny in-test HTTP server on 127.0.0.1 that echoes the request's listing ids
(and, on demand, answers wrongly or slowly), so no model is needed.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest

from ipguard.serving.load_test import (
    Payload,
    check_answer,
    loopback_address,
    process_rss_bytes,
    run_load,
)


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as uvicorn
    mode = "echo"

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        ids = [row[0] for row in body["dataframe_split"]["data"]]
        if self.mode == "reverse":
            ids = ids[::-1]
        if self.mode == "slow":
            time.sleep(0.2)
        status = 500 if self.mode == "fail" else 200
        answer = json.dumps({"predictions": [{"listing_id": i} for i in ids]}).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echo() -> Iterator[tuple[str, type[_Echo]]]:
    handler = type("Echo", (_Echo,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def _payloads(n: int, size: int) -> list[Payload]:
    return [
        Payload.from_rows(pd.DataFrame({"listing_id": [f"L{k}-{i}" for i in range(size)]}))
        for k in range(n)
    ]


@pytest.mark.parametrize(
    "url", ["http://localhost:5000", "http://10.0.0.5:80", "https://127.0.0.1:5000", "127.0.0.1"]
)
def test_only_loopback_by_address_is_a_target(url: str) -> None:
    with pytest.raises(ValueError, match=r"only target http://127\.0\.0\.1"):
        loopback_address(url)
    with pytest.raises(ValueError, match="only target"):
        run_load(url, _payloads(1, 1), clients=1, requests=1, budget_s=1)


def test_every_request_is_sent_once_and_checked(echo: tuple[str, type[_Echo]]) -> None:
    url, _ = echo
    result = run_load(url, _payloads(3, 4), clients=3, requests=30, budget_s=30)
    assert (result.sent, result.answered, result.errors) == (30, 30, 0)
    assert result.stopped_by == "count" and len(result.latencies_s) == 30
    assert result.listings_per_s == pytest.approx(4 * result.requests_per_s)


def test_wrong_answers_and_server_errors_count_as_errors(echo: tuple[str, type[_Echo]]) -> None:
    url, handler = echo
    handler.mode = "reverse"
    result = run_load(url, _payloads(1, 3), clients=2, requests=6, budget_s=30)
    assert (result.answered, result.errors) == (0, 6)
    assert "do not match" in result.error_reasons[0]
    handler.mode = "fail"
    result = run_load(url, _payloads(1, 1), clients=2, requests=4, budget_s=30)
    assert result.errors == 4 and result.error_reasons[0].startswith("HTTP 500")


def test_the_wall_clock_budget_stops_a_run_early(echo: tuple[str, type[_Echo]]) -> None:
    url, handler = echo
    handler.mode = "slow"  # 0.2 s a request: 1000 would take 100 s with two clients
    started = time.perf_counter()
    result = run_load(url, _payloads(1, 1), clients=2, requests=1000, budget_s=0.5)
    assert time.perf_counter() - started < 5
    assert result.stopped_by == "budget" and 0 < result.sent < 1000
    assert result.answered == result.sent and result.errors == 0


def test_check_answer_reads_non_prediction_bodies_as_errors() -> None:
    payload = _payloads(1, 1)[0]
    assert "not a predictions body" in check_answer(200, b"<html>", payload)
    assert check_answer(200, b'{"predictions": [{"listing_id": "L0-0"}]}', payload) is None


def test_payload_sizes_must_agree_and_rows_need_ids() -> None:
    with pytest.raises(ValueError, match="one size"):
        run_load("http://127.0.0.1:1", [*_payloads(1, 1), *_payloads(1, 2)], clients=1,
                 requests=1, budget_s=1)  # fmt: skip
    with pytest.raises(ValueError, match="listing_id"):
        Payload.from_rows(pd.DataFrame({"title": ["bag"]}))


def test_rss_of_this_process_is_measured() -> None:
    assert process_rss_bytes(os.getpid()) > 10 * 2**20
