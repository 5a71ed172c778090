"""Serving latency of the default image model: in-process vs REST, PyTorch vs ONNX Runtime.

What a screening service waits for, measured the way it calls the model: one listing and a
batch of 64, each sent as base64 images (the REST shape), through

* ``mlflow.pyfunc.load_model(...).predict`` in the caller's process, and
* ``mlflow models serve`` over HTTP on 127.0.0.1 (one worker),

for the model registered with ``runtime=torch`` and with ``runtime=onnx``. The model is the
design's reference model (resnet18 at 128 px; ``--backbone tiny_cnn --image-size 64`` for
the small tower of ``experiment=fusion``); its weights are random, which does not change its cost.
The network alone (one tensor in, logits out) is timed too, for the ONNX-vs-eager bar. Calls
that are compared are taken in turns (in-process, REST, in-process, ...), so background load
on a shared machine weighs on both alike; the load average is recorded with the results.

Quality bars checked (DESIGN.md): ONNX Runtime faster than eager PyTorch on CPU with outputs
within 1e-4; ``mlflow models serve`` p50 within 1.2x of in-process predict for one listing.

    flock /tmp/ipguard-cpu.lock python benchmarks/serving_latency.py [--repeats 40]

Everything runs in a temporary folder (sqlite store, demo listings) that is removed at the end;
each timing loop is bounded by ``--repeats`` and by ``--budget-s`` seconds.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

BACKBONE, IMAGE_SIZE, BATCH = "resnet18", 128, 64
RUNTIMES = ("torch", "onnx")


def percentiles(samples_s: list[float]) -> dict[str, float]:
    ms = np.asarray(samples_s) * 1000.0
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "n": len(ms),
    }


def time_interleaved(
    calls: dict[str, Callable[[], Any]], *, repeats: int, warmup: int, budget_s: float
) -> dict[str, dict[str, float]]:
    """Latency of each call, taken in turns (a, b, a, b, ...) so that whatever else the machine
    is doing weighs on all of them alike: ``warmup`` untimed rounds, then up to ``repeats``
    timed ones, stopping early once ``budget_s`` seconds are spent (5 rounds at least)."""
    for _ in range(warmup):
        for call in calls.values():
            call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    started = time.perf_counter()
    for done in range(1, repeats + 1):
        for name, call in calls.items():
            t0 = time.perf_counter()
            call()
            samples[name].append(time.perf_counter() - t0)
        if done >= 5 and time.perf_counter() - started > budget_s:
            break
    return {name: percentiles(values) for name, values in samples.items()}


def register_models(work: Path, tracking_uri: str) -> tuple[Path, float]:
    """The default image model, exported with its ONNX graph and registered twice: alias
    ``bench-torch`` (runtime torch) and ``bench-onnx`` (runtime onnx)."""
    import mlflow
    import torch
    from mlflow.tracking import MlflowClient

    from ipguard.models.image_classifier import ImageClassifier
    from ipguard.registry.package import write_model_dir
    from ipguard.registry.registration import log_and_register
    from ipguard.serving.onnx import add_onnx

    torch.manual_seed(0)
    module = ImageClassifier(BACKBONE, image_size=IMAGE_SIZE)
    folder, spec = write_model_dir(
        module,
        work / "model",
        calibrator={"method": "temperature", "temperature": 1.0},
        policy={"reject_threshold": 0.9, "approve_threshold": 0.1},
    )
    parity = add_onnx(module.network, spec, folder)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    experiment = client.create_experiment("bench", artifact_location=(work / "art").as_uri())
    tags = {"git_commit": "benchmark", "data_fingerprint": "random-init", "config_hash": "bench"}
    for runtime in RUNTIMES:
        with mlflow.start_run(experiment_id=experiment):
            log_and_register(
                folder, spec, input_example=None, tags=tags, alias=None, client=client,
                runtime=runtime,
            )  # fmt: skip
        latest = max(int(v.version) for v in client.search_model_versions("name='ipguard-image'"))
        client.set_registered_model_alias("ipguard-image", f"bench-{runtime}", str(latest))
    return folder, float(parity or float("nan"))


def listings(work: Path) -> pd.DataFrame:
    """64 demo listings as a REST client sends them (base64 JPEGs of 128 px)."""
    from ipguard.demo.listings import generate_demo_data

    demo = generate_demo_data(work / "demo", n=BATCH, seed=11, image_size=IMAGE_SIZE)
    rows = pd.read_csv(demo.manifest_path)
    root = demo.manifest_path.parent
    return rows[["listing_id", "title", "brand", "market", "price", "currency"]].assign(
        image_b64=[base64.b64encode((root / p).read_bytes()).decode() for p in rows["image_path"]]
    )


def network_timings(folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Eager PyTorch vs ONNX Runtime on the bare network, and their max difference."""
    import torch
    from safetensors.torch import load_model

    from ipguard.nets.image import ImageNetwork
    from ipguard.serving.onnx import open_session

    network = ImageNetwork(BACKBONE, image_size=IMAGE_SIZE).eval()
    load_model(network, str(folder / "weights.safetensors"))
    session = open_session(folder)
    out: dict[str, Any] = {}
    for n in (1, BATCH):
        x = torch.randn(n, 3, IMAGE_SIZE, IMAGE_SIZE)
        with torch.inference_mode():
            eager = network(x).numpy()
        ort = session.run(None, {"images": x.numpy()})[0]
        out[f"max_abs_diff_batch{n}"] = float(np.max(np.abs(eager - ort)))

        def run_torch(x: torch.Tensor = x) -> None:
            with torch.inference_mode():
                network(x)

        def run_onnx(x: torch.Tensor = x) -> None:
            session.run(None, {"images": x.numpy()})

        timed = time_interleaved(
            {"torch": run_torch, "onnx": run_onnx},
            repeats=_repeats(n, args),
            warmup=3,
            budget_s=args.budget_s,
        )
        out.update({f"{name}_batch{n}": stats for name, stats in timed.items()})
    return out


def _repeats(n: int, args: argparse.Namespace) -> int:
    return args.repeats if n == 1 else max(5, args.repeats // 4)


def served_timings(
    frame: pd.DataFrame,
    work: Path,
    tracking_uri: str,
    args: argparse.Namespace,
    uris: dict[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """In-process ``predict`` and a REST call of the same request, in turns, per runtime.

    ``uris``: runtime -> model URI; by default the two versions :func:`register_models` made.
    """
    import mlflow

    from ipguard.serving.local_server import serve_locally

    inprocess: dict[str, Any] = {}
    rest: dict[str, Any] = {}
    uris = uris or {rt: f"models:/ipguard-image@bench-{rt}" for rt in RUNTIMES}
    for runtime, uri in uris.items():
        model = mlflow.pyfunc.load_model(uri)
        with serve_locally(
            uri, tracking_uri=tracking_uri, log_path=work / f"serve-{runtime}.log"
        ) as server:
            for n in (1, BATCH):
                batch = frame.head(n)
                body = json.dumps(
                    {"dataframe_split": batch.to_dict(orient="split", index=False)}
                ).encode()

                def post(body: bytes = body, url: str = server.url) -> None:
                    request = urllib.request.Request(
                        f"{url}/invocations",
                        data=body,
                        headers={"Content-Type": "application/json"},
                    )
                    with urllib.request.urlopen(request, timeout=60) as answer:
                        answer.read()

                timed = time_interleaved(
                    {"inprocess": lambda b=batch, m=model: m.predict(b), "rest": post},
                    repeats=_repeats(n, args),
                    warmup=3,
                    budget_s=args.budget_s,
                )
                inprocess[f"{runtime}_batch{n}"] = timed["inprocess"]
                rest[f"{runtime}_batch{n}"] = timed["rest"]
    return {"inprocess": inprocess, "rest": rest}


def table(results: dict[str, Any]) -> str:
    lines = [
        "| path | runtime | listings | p50 ms | p95 ms | calls |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for path, key in (("network only", "network"), ("in-process predict", "inprocess"),
                      ("REST (mlflow models serve)", "rest")):  # fmt: skip
        for runtime in RUNTIMES:
            for n in (1, BATCH):
                r = results[key][f"{runtime}_batch{n}"]
                lines.append(
                    f"| {path} | {runtime} | {n} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} "
                    f"| {r['n']} |"
                )
    return "\n".join(lines)


def bars(results: dict[str, Any]) -> dict[str, Any]:
    net, inproc, rest = results["network"], results["inprocess"], results["rest"]
    diff = max(net["max_abs_diff_batch1"], net[f"max_abs_diff_batch{BATCH}"])
    faster = {
        n: net[f"onnx_batch{n}"]["p50_ms"] < net[f"torch_batch{n}"]["p50_ms"] for n in (1, BATCH)
    }
    ratio = {
        rt: rest[f"{rt}_batch1"]["p50_ms"] / inproc[f"{rt}_batch1"]["p50_ms"] for rt in RUNTIMES
    }
    return {
        "onnx_max_abs_diff": diff,
        "onnx_faster_than_eager": faster,
        "onnx_bar_met": all(faster.values()) and diff < 1e-4,
        "rest_over_inprocess_p50_batch1": ratio,
        "rest_bar_met": {rt: r <= 1.2 for rt, r in ratio.items()},
    }


def registered_model_timings(args: argparse.Namespace) -> None:
    """In-process vs REST for a model someone registered (any kind, e.g. the fused one)."""
    import mlflow

    if not args.tracking_uri:
        raise SystemExit("--model-uri needs --tracking-uri (e.g. sqlite:///<project>/mlflow.db)")
    mlflow.set_tracking_uri(args.tracking_uri)
    mlflow.set_registry_uri(args.tracking_uri)
    with tempfile.TemporaryDirectory(prefix="ipguard-bench-") as tmp:
        work = Path(tmp)
        timed = served_timings(
            listings(work), work, args.tracking_uri, args, uris={"registered": args.model_uri}
        )
    lines = ["| path | listings | p50 ms | p95 ms | calls |", "| --- | ---: | ---: | ---: | ---: |"]
    for path, key in (("in-process predict", "inprocess"), ("REST", "rest")):
        for n in (1, BATCH):
            r = timed[key][f"registered_batch{n}"]
            lines.append(f"| {path} | {n} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['n']} |")
    ratio = (
        timed["rest"]["registered_batch1"]["p50_ms"]
        / timed["inprocess"]["registered_batch1"]["p50_ms"]
    )
    print(
        f"{args.model_uri}\n" + "\n".join(lines) + f"\nREST / in-process, 1 listing: {ratio:.2f}x"
    )
    if args.out:
        args.out.write_text(json.dumps({"model_uri": args.model_uri, **timed}, indent=2) + "\n")


def main() -> None:
    # one model per invocation: the helpers above read these module settings
    global BACKBONE, IMAGE_SIZE
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--repeats", type=int, default=40, help="timed calls per single-listing case"
    )
    parser.add_argument("--budget-s", type=float, default=60.0, help="time cap per timing loop")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    parser.add_argument("--backbone", default=BACKBONE, help="e.g. tiny_cnn, as make train")
    parser.add_argument("--image-size", type=int, default=IMAGE_SIZE)
    parser.add_argument(
        "--model-uri",
        help="time an already registered model instead (e.g. models:/ipguard-listing@champion, "
        "what make train registers), in-process vs REST on its registered runtime; needs "
        "--tracking-uri",
    )
    parser.add_argument("--tracking-uri", help="the store that holds --model-uri")
    args = parser.parse_args()
    BACKBONE, IMAGE_SIZE = args.backbone, args.image_size
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    os.environ.pop("MLFLOW_TRACKING_URI", None)

    import torch

    if args.model_uri:
        registered_model_timings(args)
        return
    with tempfile.TemporaryDirectory(prefix="ipguard-bench-") as tmp:
        work = Path(tmp)
        tracking_uri = f"sqlite:///{(work / 'mlflow.db').as_posix()}"
        folder, parity = register_models(work, tracking_uri)
        frame = listings(work)
        results: dict[str, Any] = {
            "machine": {
                "cpus": os.cpu_count(),
                "torch_threads": torch.get_num_threads(),
                "platform": platform.platform(),
                "torch": torch.__version__,
                "loadavg_1m_before": os.getloadavg()[0],
            },
            "model": f"{BACKBONE} {IMAGE_SIZE}px, random init",
            "export_parity": parity,
            "network": network_timings(folder, args),
            **served_timings(frame, work, tracking_uri, args),
        }
    results["machine"]["loadavg_1m_after"] = os.getloadavg()[0]
    results["bars"] = bars(results)
    print(table(results))
    print(json.dumps({"machine": results["machine"], "bars": results["bars"]}, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
