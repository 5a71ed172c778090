"""A bounded load test of a REST model server on loopback: many clients, fixed work, then stop.

What a screening service needs to know before it puts ``mlflow models serve`` behind traffic:
how many requests and listings a second one server answers with several clients waiting, how
long the slow calls take (p99, not only p50), whether any call fails, and whether its memory
grows. :func:`run_load` sends a fixed number of requests from ``clients`` threads (one
keep-alive connection each) and stops by itself at that count or at a wall-clock budget,
whichever comes first. It only ever talks to ``127.0.0.1``: a load test pointed at a shared
service by mistake is an outage, so any other host is refused before a byte is sent.

A response counts as answered only if it is HTTP 200 *and* its predictions echo the request's
listing ids in order; anything else is an error, kept with its reason. ``benchmarks/rest_load.py``
and ``tests/integration/test_rest_load.py`` share this module.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

LOOPBACK = "127.0.0.1"
MAX_KEPT_ERRORS = 20


@dataclass(frozen=True)
class Payload:
    """One request body and the listing ids its answer must echo, in order."""

    body: bytes
    listing_ids: tuple[str, ...]

    @classmethod
    def from_rows(cls, rows: pd.DataFrame) -> Payload:
        """``rows`` as MLflow's ``dataframe_split`` JSON (missing values as ``null``)."""
        if "listing_id" not in rows.columns:
            raise ValueError(f"Payload rows need a listing_id column; found {list(rows.columns)}")
        clean = rows.astype(object).where(rows.notna(), None)
        split = clean.to_dict(orient="split", index=False)
        body = json.dumps({"dataframe_split": split}).encode()
        return cls(body, tuple(str(v) for v in rows["listing_id"]))


@dataclass
class LoadResult:
    """What one run measured; latencies of answered requests only."""

    clients: int
    listings_per_request: int
    sent: int = 0
    answered: int = 0
    wall_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    errors: int = 0
    error_reasons: list[str] = field(default_factory=list)
    """The first :data:`MAX_KEPT_ERRORS` reasons, e.g. ``'HTTP 500: ...'``."""
    stopped_by: str = "count"
    """``count`` (all requests sent) or ``budget`` (the wall-clock budget ran out first)."""
    answers: list[tuple[int, bytes]] = field(default_factory=list)
    """(payload index, body) of each answered request, with ``keep_answers`` only."""

    @property
    def requests_per_s(self) -> float:
        return self.answered / self.wall_s if self.wall_s > 0 else float("nan")

    @property
    def listings_per_s(self) -> float:
        return self.requests_per_s * self.listings_per_request

    def percentile_ms(self, q: float) -> float:
        if not self.latencies_s:
            return float("nan")
        return float(np.percentile(np.asarray(self.latencies_s) * 1000.0, q))

    def summary(self) -> dict[str, float | int | str]:
        return {
            "clients": self.clients,
            "listings_per_request": self.listings_per_request,
            "sent": self.sent,
            "answered": self.answered,
            "errors": self.errors,
            "wall_s": round(self.wall_s, 3),
            "requests_per_s": round(self.requests_per_s, 2),
            "listings_per_s": round(self.listings_per_s, 1),
            "p50_ms": round(self.percentile_ms(50), 1),
            "p99_ms": round(self.percentile_ms(99), 1),
            "stopped_by": self.stopped_by,
        }


def loopback_address(url: str) -> tuple[str, int]:
    """``(host, port)`` of ``url``; refuses any host but 127.0.0.1 (names included)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname != LOOPBACK or parts.port is None:
        raise ValueError(f"load tests only target http://{LOOPBACK}:<port>; refusing {url!r}")
    return LOOPBACK, parts.port


def post(
    url: str,
    body: bytes,
    *,
    timeout_s: float = 60.0,
    connection: http.client.HTTPConnection | None = None,
) -> tuple[int, bytes]:
    """POST ``body`` to ``<url>/invocations`` on loopback; (status, response body)."""
    host, port = loopback_address(url)
    own = connection is None
    conn = connection or http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        conn.request(
            "POST", "/invocations", body=body, headers={"Content-Type": "application/json"}
        )
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        if own:
            conn.close()


def check_answer(status: int, body: bytes, payload: Payload) -> str | None:
    """Why this answer does not serve ``payload`` (None when it does)."""
    if status != 200:
        return f"HTTP {status}: {body[:300].decode(errors='replace')}"
    try:
        predictions = json.loads(body)["predictions"]
        ids = tuple(str(p["listing_id"]) for p in predictions)
    except (ValueError, KeyError, TypeError) as err:
        return f"HTTP 200 but not a predictions body ({type(err).__name__}: {err})"
    if ids != payload.listing_ids:
        return f"HTTP 200 but listing ids {ids[:5]}... do not match the request's"
    return None


def run_load(
    url: str,
    payloads: Sequence[Payload],
    *,
    clients: int,
    requests: int,
    budget_s: float,
    timeout_s: float = 60.0,
    keep_answers: bool = False,
) -> LoadResult:
    """Send ``requests`` requests from ``clients`` threads, cycling through ``payloads``.

    Stops when all are sent or ``budget_s`` has passed (requests in flight then finish, each
    within ``timeout_s``). All payloads must carry the same number of listings. With
    ``keep_answers``, every answered body is kept with its payload's index (to check that
    concurrent calls answer as a lone call does).
    """
    loopback_address(url)
    if not payloads:
        raise ValueError("run_load needs at least one payload")
    sizes = {len(p.listing_ids) for p in payloads}
    if len(sizes) != 1:
        raise ValueError(f"run_load payloads must have one size; found sizes {sorted(sizes)}")
    if clients < 1 or requests < 1 or budget_s <= 0:
        raise ValueError(
            f"run_load needs clients >= 1, requests >= 1, budget_s > 0; found "
            f"clients={clients}, requests={requests}, budget_s={budget_s}"
        )
    result = LoadResult(clients=clients, listings_per_request=sizes.pop())
    lock = threading.Lock()
    started = time.perf_counter()
    deadline = started + budget_s

    def take() -> int | None:
        with lock:
            if result.sent >= requests:
                return None
            if time.perf_counter() >= deadline:
                result.stopped_by = "budget"
                return None
            result.sent += 1
            return result.sent - 1

    def client() -> None:
        host, port = loopback_address(url)
        conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
        try:
            while (index := take()) is not None:
                payload = payloads[index % len(payloads)]
                t0 = time.perf_counter()
                try:
                    status, body = post(url, payload.body, connection=conn)
                    problem = check_answer(status, body, payload)
                except (OSError, http.client.HTTPException) as err:
                    problem = f"{type(err).__name__}: {err}"
                    conn.close()  # a fresh connection for the next request
                elapsed = time.perf_counter() - t0
                with lock:
                    if problem is None:
                        result.answered += 1
                        result.latencies_s.append(elapsed)
                        if keep_answers:
                            result.answers.append((index % len(payloads), body))
                    else:
                        result.errors += 1
                        if len(result.error_reasons) < MAX_KEPT_ERRORS:
                            result.error_reasons.append(problem)
        finally:
            conn.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.wall_s = time.perf_counter() - started
    return result


def process_rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants (uvicorn's workers), in bytes."""
    try:
        import psutil
    except ImportError:
        return _proc_rss(pid)
    try:
        root = psutil.Process(pid)
        family = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        raise ValueError(f"no process {pid} to measure") from None
    total = 0
    for process in family:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def _proc_rss(pid: int) -> int:
    """The same from /proc (Linux) when psutil is not installed."""
    proc = Path("/proc")
    pids = [pid]
    for task in proc.glob(f"{pid}/task/*/children"):
        pids += [int(child) for child in task.read_text().split()]
    total = 0
    seen: set[int] = set()
    while pids:
        current = pids.pop()
        if current in seen:
            continue
        seen.add(current)
        status = proc / str(current) / "status"
        if not status.exists():
            continue
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
        if current != pid:
            for task in proc.glob(f"{current}/task/*/children"):
                pids += [int(child) for child in task.read_text().split()]
    return total
