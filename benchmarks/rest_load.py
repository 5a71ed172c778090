"""REST under load: ``mlflow models serve`` of the fused model, several clients at once, bounded.

For one and for two uvicorn workers, and for requests of one listing and of 64, this sends a
fixed number of requests from ``--clients`` concurrent clients (threads, one keep-alive
connection each) to the server on 127.0.0.1 and reports what a screening service sizes its
fleet by: requests/s and listings/s, p50 and p99 latency, errors (the goal is none) and the
server's resident memory (all its processes) once warm, before the first case, and after
each case. Each case stops by itself at ``--requests`` or ``--budget-s``; the traffic never
leaves loopback (:mod:`ipguard.serving.load_test` refuses any other host).

The model is the small fused model of ``experiment=fusion`` (tiny_cnn tower at 64 px, text,
tabular features; ``make train`` registers the same architecture with EfficientNet-Lite0 at
128 px), trained here for a couple of batches with ``ipguard.jobs.train.train`` (its
weights do not change its cost), or any registered model by ``--model-uri`` /
``--tracking-uri``. Requests carry base64 JPEGs of 64 px demo listings, as over REST.

    flock /tmp/ipguard-cpu.lock python benchmarks/rest_load.py [--requests 200]

Everything runs in a temporary folder that is removed at the end (``--work-dir`` to keep it).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from ipguard.serving.load_test import Payload, process_rss_bytes, run_load
from ipguard.serving.local_server import serve_locally

IMAGE_SIZE = 64
MIB = 2**20


def train_fused(work: Path) -> tuple[str, str, Path]:
    """The small fused model (tiny_cnn at 64 px), trained briefly; (model URI, tracking URI,
    manifest)."""
    from ipguard.config import compose
    from ipguard.demo.listings import generate_demo_data
    from ipguard.jobs.train import train

    demo = generate_demo_data(work / "demo", n=240, seed=7, image_size=IMAGE_SIZE)
    cfg = compose(
        "train",
        [
            "debug=fast",
            "model=fusion",
            "model.image_backbone=tiny_cnn",
            f"data.manifest={demo.manifest_path}",
            f"data.image_size={IMAGE_SIZE}",
            f"paths.root_dir={work}",
            f"paths.output_dir={work / 'run'}",
            "seed=3",
        ],
    )
    result = train(cfg)
    if result.registered is None:
        raise RuntimeError(f"training registered no model: {result.summary_line()}")
    return result.registered.version_uri, result.tracking_uri, demo.manifest_path


def request_listings(work: Path, n: int) -> pd.DataFrame:
    """``n`` demo listings as a REST client sends them: base64 JPEGs, title, brand, price."""
    from ipguard.demo.listings import generate_demo_data

    demo = generate_demo_data(work / "requests", n=n, seed=11, image_size=IMAGE_SIZE)
    rows = pd.read_csv(demo.manifest_path)
    root = demo.manifest_path.parent
    images = [base64.b64encode((root / p).read_bytes()).decode() for p in rows["image_path"]]
    columns = ["listing_id", "title", "brand", "market", "price", "currency"]
    return rows[columns].assign(image_b64=images)


def payloads(rows: pd.DataFrame, size: int, count: int) -> list[Payload]:
    """``count`` distinct requests of ``size`` listings (windows over ``rows``, wrapping)."""
    out = []
    for k in range(count):
        index = [(k * size + i) % len(rows) for i in range(size)]
        window = rows.iloc[index].reset_index(drop=True)
        window["listing_id"] = [f"{lid}-r{k}" for lid in window["listing_id"]]
        out.append(Payload.from_rows(window))
    return out


def service_env() -> dict[str, str]:
    """The server's environment: no MLflow settings from this shell, no unpickling."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "false"
    return env


def one_server(
    args: argparse.Namespace, model_uri: str, tracking_uri: str, rows: pd.DataFrame, work: Path,
    workers: int,
) -> list[dict[str, Any]]:  # fmt: skip
    cases: list[dict[str, Any]] = []
    log = work / f"serve-{workers}.log"
    with serve_locally(
        model_uri, tracking_uri=tracking_uri, log_path=log, workers=workers, env=service_env()
    ) as server:
        # warm every worker up on both sizes before anything is timed
        warm = run_load(
            server.url, payloads(rows, 1, 4), clients=2 * workers, requests=8 * workers,
            budget_s=60,
        )  # fmt: skip
        run_load(server.url, payloads(rows, 64, 1), clients=workers, requests=2 * workers,
                 budget_s=60)  # fmt: skip
        rss_start = process_rss_bytes(server.pid)  # warm, before any case
        for size in args.sizes:
            requests = args.requests if size == 1 else max(args.clients, args.requests // 8)
            load_before = os.getloadavg()[0]
            result = run_load(
                server.url, payloads(rows, size, 16), clients=args.clients, requests=requests,
                budget_s=args.budget_s,
            )  # fmt: skip
            case = {
                "workers": workers,
                **result.summary(),
                "load_1min_before": round(load_before, 2),
                "load_1min_after": round(os.getloadavg()[0], 2),
                "rss_start_mib": round(rss_start / MIB, 1),
                "rss_after_mib": round(process_rss_bytes(server.pid) / MIB, 1),
                "error_reasons": result.error_reasons,
                "warmup_errors": warm.errors,
            }
            cases.append(case)
            print(json.dumps(case), flush=True)
    return cases


def table(cases: list[dict[str, Any]]) -> str:
    lines = [
        "| workers | listings / request | requests | errors | requests/s | listings/s | "
        "p50 ms | p99 ms | RSS start -> after (MiB) | load avg (1 min) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for c in cases:
        lines.append(
            f"| {c['workers']} | {c['listings_per_request']} | {c['answered']}/{c['sent']} | "
            f"{c['errors']} | {c['requests_per_s']:.1f} | {c['listings_per_s']:.0f} | "
            f"{c['p50_ms']:.1f} | {c['p99_ms']:.1f} | {c['rss_start_mib']:.0f} -> "
            f"{c['rss_after_mib']:.0f} | {c['load_1min_before']:.1f} -> "
            f"{c['load_1min_after']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-uri", help="a registered model (default: train the fused one)")
    parser.add_argument("--tracking-uri", help="the store --model-uri lives in")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument(
        "--requests",
        type=int,
        default=200,
        help="requests per case of 1 listing (64-listing cases: 1/8 of it)",
    )
    parser.add_argument("--budget-s", type=float, default=60.0, help="wall-clock cap per case")
    parser.add_argument("--workers", default="1,2", help="uvicorn worker counts to compare")
    parser.add_argument("--sizes", default="1,64", help="listings per request")
    parser.add_argument("--work-dir", type=Path, help="keep the store and logs here")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()  # fmt: skip
    args.sizes = [int(s) for s in args.sizes.split(",")]
    if bool(args.model_uri) != bool(args.tracking_uri):
        parser.error("--model-uri and --tracking-uri go together")

    with tempfile.TemporaryDirectory(prefix="ipguard-rest-load-") as tmp:
        work = args.work_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        if args.model_uri:
            model_uri, tracking_uri = args.model_uri, args.tracking_uri
        else:
            model_uri, tracking_uri, _ = train_fused(work)
        rows = request_listings(work, 64)
        cases = []
        for workers in (int(w) for w in args.workers.split(",")):
            cases += one_server(args, model_uri, tracking_uri, rows, work, workers)
        report = {
            "model_uri": model_uri,
            "clients": args.clients,
            "cpu_count": os.cpu_count(),
            "machine": platform.platform(),
            "total_s": round(time.perf_counter() - started, 1),
            "cases": cases,
        }
        print(table(cases))
        print(f"clients={args.clients} cpus={os.cpu_count()} total_s={report['total_s']}")
        if args.json_out:
            args.json_out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
