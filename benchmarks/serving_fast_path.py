"""The serving path against the network's own speed: pyfunc ``predict`` vs the bare forward pass.

Issue 14's goal for the fused model that ``make train`` registers (``model=fusion`` on the demo
data: an EfficientNet-Lite0 image tower at 128 px, the hashed n-gram text tower, the tabular
features over the demo brand catalog): for one listing, in-process ``mlflow.pyfunc`` ``predict``
within 2x of the network's forward pass on ready tensors, and within 1.3x for 64 listings. The
request is what a REST client sends (listing_id, title, brand, market, price, currency and a
base64 JPEG); the forward pass gets what the serving path hands the network (the decoded,
resized image tensor, the presence flags, the model text and the tabular features), so the
difference is exactly the serving path's own work: request coercion, decoding, features,
evidence, the output frame and MLflow's signature enforcement. ``--backbone tiny_cnn
--image-size 64`` times the small tower of ``experiment=fusion`` instead, whose forward pass is
a tenth as long, so the same serving path weighs ten times more against it (the harder case).

Three calls are timed in turns (forward, ``ListingScorer.score``, pyfunc ``predict``, forward,
...), so background load on a shared machine weighs on all alike; the ratios are of p50s over
the same rounds, and the load average is printed with them. Every ``score`` and ``predict``
call gets listings it has not seen (a pool of distinct demo listings, in turn, with the text
normaliser's cache emptied before each case): the serving path caches per text, and a benchmark
that sent the same request again would time those caches, not the work a new listing costs.
Per-word caches (n-gram ids) stay warm, as in a service that has scored listings before. The
forward pass is timed on one fixed batch (it caches nothing). The weights are random, which
does not change the cost. The model is also exported to ONNX Runtime and the same request is
timed on ``runtime=onnx``, where "forward" is the session's own run on the ready inputs
(``--torch-only`` skips it). ``--profile`` then runs cProfile over one-listing ``predict``
calls on each runtime and prints where the time goes: MLflow's signature enforcement (outside
ipguard's control), request coercion, decoding and hashing, the network, the rest of ipguard's
path.

    flock /tmp/ipguard-cpu.lock python benchmarks/serving_fast_path.py [--repeats 300] [--profile]

Everything runs in a temporary folder that is removed at the end.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import json
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from serving_latency import percentiles  # a sibling script, not a package

GOALS = {1: 2.0, 64: 1.3}  # predict p50 / forward p50, issue 14 item 3
#: distinct demo listings the timed calls take in turn (see the module docstring)
POOL = 6000


def build_model(work: Path, *, onnx: bool, backbone: str, image_size: int) -> Path:
    """The fused model of ``make train``'s shape (or ``backbone`` at ``image_size``), exported
    as a folder (random weights)."""
    import torch

    from ipguard.data.catalog import catalog_featurizer
    from ipguard.demo.listings import generate_demo_data
    from ipguard.models.fusion_classifier import FusionClassifier
    from ipguard.registry.package import write_model_dir

    demo = generate_demo_data(work / "demo", n=POOL, seed=11)
    torch.manual_seed(0)
    module = FusionClassifier(backbone, image_size=image_size, pretrained=False)
    featurizer = catalog_featurizer(demo.root / "brands_by_currency.csv")
    folder, spec = write_model_dir(
        module,
        work / "model",
        calibrator={"method": "temperature", "temperature": 1.0},
        policy={"reject_threshold": 0.9, "approve_threshold": 0.1},
        extras={"tabular": featurizer.to_dict()},
    )
    spec.model_version = "1"
    if onnx:
        from ipguard.serving.onnx import add_onnx

        add_onnx(module.net, spec, folder)
    spec.save(folder)
    return folder


def request(work: Path) -> pd.DataFrame:
    """The pool of demo listings as a REST client sends them."""
    manifest = work / "demo" / "listings.csv"
    rows = pd.read_csv(manifest)
    root = manifest.parent
    return rows[["listing_id", "title", "brand", "market", "price", "currency"]].assign(
        image_b64=[base64.b64encode((root / p).read_bytes()).decode() for p in rows["image_path"]]
    )


class Turns:
    """``count`` consecutive ``n``-row requests from ``frame``, from row ``start`` on (wrapping
    around), sliced before any timing so that the timed call gets a ready request."""

    def __init__(self, frame: pd.DataFrame, n: int, start: int, count: int) -> None:
        starts = [(start + k * n) % (len(frame) - n + 1) for k in range(count)]
        self.batches = [frame.iloc[i : i + n].reset_index(drop=True) for i in starts]
        self.next = 0

    def __call__(self) -> pd.DataFrame:
        batch = self.batches[self.next % len(self.batches)]
        self.next += 1
        return batch


def floor_model(work: Path, signature: Any) -> Any:
    """A pyfunc that does nothing, under the exported model's signature: what ``predict``
    costs before any model code runs (MLflow's signature enforcement and its wrappers)."""
    import mlflow

    class Nothing(mlflow.pyfunc.PythonModel):
        def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
            return model_input.head(0)

    path = work / "pyfunc-floor"
    mlflow.pyfunc.save_model(path, python_model=Nothing(), signature=signature)
    return mlflow.pyfunc.load_model(str(path))


def forward_call(scorer: Any, batch: pd.DataFrame) -> Callable[[], Any]:
    """The network alone, on the tensors the serving path would hand it for ``batch``."""
    from ipguard.serving.inputs import collect_inputs

    predictor = scorer.predictor
    inputs = collect_inputs(batch)
    ready = predictor.network_inputs(inputs, list(range(len(inputs))))
    return lambda: predictor.forward(ready)


def time_rounds(
    calls: dict[str, Callable[[], Any]], *, repeats: int, budget_s: float
) -> dict[str, dict[str, float]]:
    """Each call once per round, in turns; 5 untimed rounds first; stop at ``budget_s``.

    Wall time and this process's CPU time per call: on a loaded machine the wall time also
    counts the time spent waiting for a core, the CPU time only the work done.
    """
    for _ in range(5):
        for call in calls.values():
            call()
    wall: dict[str, list[float]] = {name: [] for name in calls}
    cpu: dict[str, list[float]] = {name: [] for name in calls}
    started = time.perf_counter()
    for done in range(1, repeats + 1):
        for name, call in calls.items():
            c0, t0 = time.process_time(), time.perf_counter()
            call()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
        if done >= 10 and time.perf_counter() - started > budget_s:
            break
    return {
        name: {**percentiles(wall[name]), "cpu_p50_ms": percentiles(cpu[name])["p50_ms"]}
        for name in calls
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    import mlflow
    import torch

    from ipguard.registry.registration import pyfunc_arguments
    from ipguard.serving.onnx import open_session
    from ipguard.serving.scorer import ListingScorer
    from ipguard.text.normalization import _normalized

    normalize_cache_clear = _normalized.cache_clear

    if args.threads:
        torch.set_num_threads(args.threads)
    results: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "loadavg_before": list(os.getloadavg()),
        "backbone": args.backbone,
        "image_size": args.image_size,
    }
    runtimes = ("torch",) if args.torch_only else ("torch", "onnx")
    with tempfile.TemporaryDirectory(prefix="ipguard-fastpath-") as tmp:
        work = Path(tmp)
        folder = build_model(
            work, onnx=not args.torch_only, backbone=args.backbone, image_size=args.image_size
        )
        frame = request(work)
        for runtime in runtimes:
            path = work / f"pyfunc-{runtime}"
            arguments = pyfunc_arguments(folder, runtime=runtime)
            mlflow.pyfunc.save_model(path, **arguments)
            model = mlflow.pyfunc.load_model(str(path))
            floor = floor_model(work / runtime, arguments["signature"])
            scorer = ListingScorer.load(folder, runtime=runtime)
            if runtime == "onnx" and args.threads:  # ONNX Runtime on as many threads as torch
                for predictor in (scorer.predictor, model.unwrap_python_model().scorer.predictor):
                    predictor.session = open_session(folder, threads=args.threads)
            for n in (1, 64):
                normalize_cache_clear()
                # the two callers take disjoint halves of the pool, so neither sees a listing
                # the other has just scored
                repeats = args.repeats if n == 1 else max(10, args.repeats // 8)
                calls = repeats + 5  # time_rounds' untimed rounds first
                score_turns = Turns(frame, n, 0, calls)
                predict_turns = Turns(frame, n, len(frame) // 2, calls)
                floor_turns = Turns(frame, n, 0, calls)
                timed = time_rounds(
                    {
                        "forward": forward_call(scorer, frame.head(n)),
                        "score": lambda t=score_turns, s=scorer: s.score(t(), nulls=True),
                        "predict": lambda t=predict_turns, m=model: m.predict(t()),
                        "mlflow_floor": lambda t=floor_turns, m=floor: m.predict(t()),
                    },
                    repeats=repeats,
                    budget_s=args.budget_s,
                )
                forward = timed["forward"]["p50_ms"]
                results[f"{runtime}_batch{n}"] = {
                    **timed,
                    "predict_over_forward": timed["predict"]["p50_ms"] / forward,
                    "score_over_forward": timed["score"]["p50_ms"] / forward,
                    "predict_over_forward_cpu": timed["predict"]["cpu_p50_ms"]
                    / timed["forward"]["cpu_p50_ms"],
                    "floor_over_forward": timed["mlflow_floor"]["p50_ms"] / forward,
                    "goal": GOALS[n],
                    "met": timed["predict"]["p50_ms"] / forward <= GOALS[n],
                }
            if args.profile:
                normalize_cache_clear()
                results[f"{runtime}_profile"] = profile(
                    model, Turns(frame, 1, 0, args.repeats + 10), calls=args.repeats
                )
    results["loadavg_after"] = list(os.getloadavg())
    return results


#: where one-listing ``predict`` spends its time: (share, the functions whose cumulative time
#: it is); MLflow's enforcement of the signature runs before the model sees the frame
PROFILE_PARTS = {
    "MLflow signature enforcement": ("mlflow/pyfunc/__init__.py", "_validate_prediction_input"),
    "ipguard ListingScorer.score": ("ipguard/serving/scorer.py", "score"),
    "  request coercion + image decode": ("ipguard/serving/inputs.py", "collect_inputs"),
    "  tabular features": ("ipguard/serving/predictors/fusion.py", "tabular_input"),
    "  network inputs (transform, hashing)": (
        "ipguard/serving/predictors/fusion.py",
        "network_inputs",
    ),
    "  network (forward or session run)": ("ipguard/serving/predictors/fusion.py", "forward"),
    "  evidence column": ("ipguard/serving/evidence.py", "evidence_column"),
}


def profile(model: Any, turns: Turns, *, calls: int) -> dict[str, float]:
    """Shares of one-listing ``predict`` time (cProfile, cumulative) per :data:`PROFILE_PARTS`."""
    for _ in range(10):
        model.predict(turns())
    requests = [turns() for _ in range(calls)]
    profiler = cProfile.Profile()
    profiler.enable()
    for frame in requests:
        model.predict(frame)
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    cumulative: dict[str, float] = {}
    total = 0.0
    for (path, _, function), (_, _, _, cum, _) in stats.items():
        if path.endswith("mlflow/pyfunc/__init__.py") and function == "predict":
            total = max(total, cum)
        for part, (suffix, name) in PROFILE_PARTS.items():
            if path.endswith(suffix) and function == name:
                cumulative[part] = cumulative.get(part, 0.0) + cum
    shares = {part: cumulative.get(part, 0.0) / total for part in PROFILE_PARTS}
    return {"profiled_ms_per_call": 1000 * total / calls, **shares}


def table(results: dict[str, Any]) -> str:
    lines = [
        "| runtime | listings | forward p50 ms | score p50 ms | predict p50 ms "
        "| predict / forward | by CPU time | MLflow floor ms | goal | calls |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, r in results.items():
        if not isinstance(r, dict) or "forward" not in r:
            continue
        runtime, n = key.split("_batch")
        lines.append(
            f"| {runtime} | {n} | {r['forward']['p50_ms']:.2f} | {r['score']['p50_ms']:.2f} "
            f"| {r['predict']['p50_ms']:.2f} | {r['predict_over_forward']:.2f}x "
            f"| {r['predict_over_forward_cpu']:.2f}x | {r['mlflow_floor']['p50_ms']:.2f} "
            f"| {r['goal']}x {'met' if r['met'] else 'missed'} | {r['forward']['n']} |"
        )
    for key, r in results.items():
        if key.endswith("_profile"):
            lines.append(
                f"\n{key.removesuffix('_profile')}, 1 listing, cProfile: "
                f"{r['profiled_ms_per_call']:.1f} ms a call under the profiler"
            )
            lines += [f"- {part}: {r[part]:.0%}" for part in PROFILE_PARTS]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=300, help="rounds for one listing")
    parser.add_argument("--budget-s", type=float, default=60.0, help="time cap per case")
    parser.add_argument("--torch-only", action="store_true", help="skip runtime=onnx")
    parser.add_argument("--profile", action="store_true", help="profile one-listing predict")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch's and ONNX Runtime's intra-op threads (0: their defaults); on a small shared "
        "machine more than one turns into threads waiting for each other, which times the load, "
        "not the model",
    )
    parser.add_argument(
        "--backbone", default="efficientnet_lite0", help="image tower (make train's by default)"
    )
    parser.add_argument("--image-size", type=int, default=128, help="its input size in px")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    results = run(args)
    print(f"fused model: {args.backbone} image tower at {args.image_size} px")
    print(table(results))
    print(f"load average before {results['loadavg_before']}, after {results['loadavg_after']}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
