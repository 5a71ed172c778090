"""MiniLM served on PyTorch and on ONNX Runtime: pyfunc ``predict`` for 1 and 64 listings.

The MiniLM text model (all-MiniLM-L6-v2 + a head) is the costliest text network ipguard
serves; its graph (``ipguard.nets.graphs.MiniLMGraph``: token ids and mask in) is exported with
the parity check like the others. This times the served pyfunc on both runtimes in turns, each
call on demo listings it has not seen (title and description, as the model reads them), with
one intra-op thread for both so a shared two-core machine times the work rather than its load.
The head's weights are random, which does not change the cost.

    flock /tmp/ipguard-cpu.lock python benchmarks/minilm_runtimes.py [--repeats 40]

Everything runs in a temporary folder that is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from serving_fast_path import Turns, time_rounds  # sibling scripts, not a package


def build(work: Path) -> tuple[Path, pd.DataFrame, float]:
    import torch

    from ipguard.demo.listings import generate_demo_data
    from ipguard.models.text_classifier import MiniLMClassifier
    from ipguard.registry.package import write_model_dir
    from ipguard.serving.onnx import add_onnx

    demo = generate_demo_data(work / "demo", n=3000, seed=5)
    torch.manual_seed(0)
    module = MiniLMClassifier(max_length=128, dropout=0.0, scheduler="none")
    folder, spec = write_model_dir(
        module,
        work / "model",
        calibrator={"method": "temperature", "temperature": 1.0},
        policy={"reject_threshold": 0.9, "approve_threshold": 0.1},
    )
    parity = add_onnx(module.network.eval(), spec, folder)
    spec.save(folder)
    frame = pd.read_csv(demo.root / "listings.csv")[["listing_id", "title", "description"]]
    return folder, frame, float(parity or 0.0)


def run(args: argparse.Namespace) -> dict[str, Any]:
    import mlflow
    import torch

    from ipguard.registry.registration import pyfunc_arguments

    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    results: dict[str, Any] = {"loadavg_before": list(os.getloadavg())}
    with tempfile.TemporaryDirectory(prefix="ipguard-minilm-") as tmp:
        work = Path(tmp)
        folder, frame, results["parity_max_abs_diff"] = build(work)
        models = {}
        for runtime in ("torch", "onnx"):
            path = work / f"pyfunc-{runtime}"
            mlflow.pyfunc.save_model(path, **pyfunc_arguments(folder, runtime=runtime))
            models[runtime] = mlflow.pyfunc.load_model(str(path))
            session = models[runtime].unwrap_python_model().scorer.predictor.session
            if session is not None:  # the same single thread as PyTorch's
                from ipguard.serving.onnx import open_session

                models[runtime].unwrap_python_model().scorer.predictor.session = open_session(
                    folder, threads=1
                )
        for n in (1, 64):
            repeats = args.repeats if n == 1 else max(5, args.repeats // 8)
            turns = {
                runtime: Turns(frame, n, k * len(frame) // 2, repeats + 5)
                for k, runtime in enumerate(models)
            }
            results[f"batch{n}"] = time_rounds(
                {
                    runtime: lambda m=model, t=turns[runtime]: m.predict(t())
                    for runtime, model in models.items()
                },
                repeats=repeats,
                budget_s=args.budget_s,
            )
    results["loadavg_after"] = list(os.getloadavg())
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=40, help="rounds for one listing")
    parser.add_argument("--budget-s", type=float, default=90.0, help="time cap per case")
    args = parser.parse_args()
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    results = run(args)
    print(f"parity max |torch - onnx| logit: {results['parity_max_abs_diff']:.2g}")
    print("| listings | torch p50 ms | onnx p50 ms | torch / onnx | calls |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for n in (1, 64):
        r = results[f"batch{n}"]
        t, o = r["torch"]["p50_ms"], r["onnx"]["p50_ms"]
        print(f"| {n} | {t:.1f} | {o:.1f} | {t / o:.2f}x | {r['torch']['n']} |")
    print(f"load average before {results['loadavg_before']}, after {results['loadavg_after']}")


if __name__ == "__main__":
    main()
