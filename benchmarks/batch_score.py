"""Throughput of ``ipguard-score`` and of Spark local mode on generated catalogues.

Measured in one run, each stage in a fresh process (its peak RSS is the process's own):

* the batch job on text-only rows (no images) with the text model (``ipguard-text``, the
  hashed n-gram network) and with the fused listing model (``ipguard-listing``, the default
  architecture: EfficientNet-Lite0 at 128 px + text + price features), listings/s;
* the fused model on rows with images (the demo photos, decoded for every row);
* peak RSS of the batch job against its chunk size;
* Spark local mode with 2 cores (``local[2]``), ``mapInPandas`` and ``spark_udf``, against the
  plain batch job on the same input, listings/s and the ratios.

Rows are generated cheaply: the demo listings repeated with new ids, perturbed prices and an
extra title word, written as Parquet parts. The models' weights are random: scoring costs the
same with trained ones. Everything lives in ``--work-dir`` (removed unless ``--keep``).

    flock /tmp/ipguard-cpu.lock python benchmarks/batch_score.py \\
        [--text-rows 1000000] [--image-rows 2000] [--spark-rows 20000] [--json out.json]
        [--skip rss spark]   # only the batch job's listings/s
        [--runtime onnx]     # the batch job on ONNX Runtime (the models exported with graphs)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
PART_ROWS = 100_000
WORDS = ("new", "sale", "2024", "gift", "fast", "ship", "rare", "box", "deal", "top")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- data and models --------------------------------------------------------------------------


def generate_rows(demo: pd.DataFrame, n: int, out: Path, *, images: bool, seed: int) -> Path:
    """``n`` listings from the demo's, as Parquet parts of :data:`PART_ROWS` rows in ``out``."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    columns = ["title", "description", "brand", "category", "market", "language", "currency"]
    columns += ["seller_id"] + (["image_path"] if images else [])
    for k, start in enumerate(range(0, n, PART_ROWS)):
        size = min(PART_ROWS, n - start)
        pick = rng.integers(0, len(demo), size)
        part = demo.iloc[pick][columns].reset_index(drop=True)
        part.insert(0, "listing_id", [f"G{start + i:09d}" for i in range(size)])
        word = np.asarray(WORDS, dtype=object)[rng.integers(0, len(WORDS), size)]
        part["title"] = part["title"].astype(object) + " " + word
        price = demo["price"].astype(float).to_numpy()[pick] * rng.uniform(0.8, 1.25, size)
        part["price"] = np.round(price, 2)
        part.to_parquet(out / f"part-{k:05d}.parquet", index=False)
    return out


def build_models(work: Path, brands: Path, *, onnx: bool) -> dict[str, Path]:
    """The text and fused models as exported folders (with their ONNX graphs when ``onnx``)
    and as saved pyfuncs (for spark_udf)."""
    import mlflow
    import torch

    from ipguard.data.catalog import catalog_featurizer
    from ipguard.models.fusion_classifier import FusionClassifier
    from ipguard.models.text_classifier import FastTextClassifier
    from ipguard.registry.package import write_model_dir
    from ipguard.registry.registration import pyfunc_arguments
    from ipguard.serving.onnx import add_onnx

    torch.manual_seed(0)
    policy = {"reject_threshold": 0.6, "approve_threshold": 0.4}
    made = {}
    for name, module, extras in (
        ("text", FastTextClassifier(), {}),
        (
            "fused",
            FusionClassifier("efficientnet_lite0", image_size=128),
            {"tabular": catalog_featurizer(str(brands)).to_dict()},
        ),
    ):
        folder, spec = write_model_dir(
            module, work / f"{name}-model", calibrator={"method": "none"}, policy=policy,
            extras=extras,
        )  # fmt: skip
        if onnx:
            add_onnx(module.network.eval(), spec, folder)
            spec.save(folder)
        made[name] = folder
        pyfunc = work / f"{name}-pyfunc"
        mlflow.pyfunc.save_model(str(pyfunc), **pyfunc_arguments(folder))
        made[f"{name}-pyfunc"] = pyfunc
    return made


# --- stages (each in its own process) -----------------------------------------------------------


def stage_batch(args: argparse.Namespace) -> dict[str, Any]:
    from ipguard.jobs.batch_score import score_manifest

    result = score_manifest(
        args.model, args.input, args.out, chunk_size=args.chunk_size, progress=False,
        overwrite=True, runtime=args.runtime,
    )  # fmt: skip
    return {
        "rows": result.rows_out,
        "seconds": result.seconds,
        "listings_per_s": result.listings_per_second,
        "peak_rss_mb": peak_rss_mb(),
        # the process's own CPU time (imports and model load included): on a shared machine
        # the wall time also counts waiting for a core
        "cpu_seconds": cpu_seconds(),
    }


def stage_spark(args: argparse.Namespace) -> dict[str, Any]:
    from pyspark.sql import SparkSession

    from ipguard.jobs.spark_score import score_spark

    os.environ["PYSPARK_PYTHON"] = sys.executable
    started = time.perf_counter()
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.executorEnv.OMP_NUM_THREADS", "1")  # one task slot, one core
        .getOrCreate()
    )
    startup = time.perf_counter() - started
    df = spark.read.parquet(str(args.input)).repartition(8)  # work for both cores
    rows = df.count()
    started = time.perf_counter()
    score_spark(df, str(args.model), method=args.method).write.mode("overwrite").parquet(
        str(args.out)
    )
    seconds = time.perf_counter() - started
    written = spark.read.parquet(str(args.out)).count()
    spark.stop()
    return {
        "rows": written,
        "rows_in": rows,
        "seconds": seconds,
        "startup_s": startup,
        "listings_per_s": written / seconds,
    }


def run_stage(name: str, **options: Any) -> dict[str, Any]:
    """This script's ``--stage name`` in a fresh process; its JSON line back."""
    command = [sys.executable, __file__, "--stage", name]
    for key, value in options.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"stage {name} failed:\n{proc.stderr[-4000:]}")
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"  {name} {options.get('method', '')} {json.dumps(found)}", flush=True)
    return found


# --- the run -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=("batch", "spark"), default=None)
    parser.add_argument("--model")
    parser.add_argument("--input")
    parser.add_argument("--out")
    parser.add_argument("--method", default="map_in_pandas")
    parser.add_argument("--chunk-size", type=int, default=50_000)
    parser.add_argument(
        "--runtime", choices=("torch", "onnx"), default="torch", help="the batch job's runtime"
    )
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--text-rows", type=int, default=1_000_000)
    parser.add_argument("--fused-text-rows", type=int, default=5_000)
    parser.add_argument("--image-rows", type=int, default=2_000)
    parser.add_argument("--spark-rows", type=int, default=20_000)
    parser.add_argument("--rss-rows", type=int, default=200_000)
    parser.add_argument("--json", default=None)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument(
        "--skip", nargs="*", default=(), choices=("rss", "spark"), help="stages not to run"
    )
    args = parser.parse_args()
    if args.stage == "batch":
        print(json.dumps(stage_batch(args)))
        return
    if args.stage == "spark":
        print(json.dumps(stage_spark(args)))
        return

    from ipguard.demo.listings import generate_demo_data

    work = Path(args.work_dir or tempfile.mkdtemp(prefix="ipguard-batch-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    print(f"work dir {work}; cpus {os.cpu_count()}; load average {load[0]:.1f}", flush=True)
    demo = generate_demo_data(work / "demo", n=400, seed=1, image_size=128)
    rows = pd.read_csv(demo.manifest_path, dtype=str)
    rows["image_path"] = [str(demo.root / p) for p in rows["image_path"]]
    models = build_models(work, demo.brands_path, onnx=args.runtime == "onnx")
    data = {
        "text": generate_rows(rows, args.text_rows, work / "text", images=False, seed=2),
        "fused_text": generate_rows(rows, args.fused_text_rows, work / "ft", images=False, seed=3),
        "images": generate_rows(rows, args.image_rows, work / "images", images=True, seed=4),
    }
    if "spark" not in args.skip:
        data["spark"] = generate_rows(rows, args.spark_rows, work / "spark", images=False, seed=5)
    if "rss" not in args.skip:
        data["rss"] = generate_rows(rows, args.rss_rows, work / "rss", images=False, seed=6)
    results: dict[str, Any] = {
        "load_average": load[0],
        "cpus": os.cpu_count(),
        "runtime": args.runtime,
    }

    def batch(model: str, key: str, chunk: int = 50_000) -> dict[str, Any]:
        return run_stage(
            "batch", model=models[model], input=data[key], out=work / f"out-{key}",
            chunk_size=chunk, runtime=args.runtime,
        )  # fmt: skip

    print("batch job:", flush=True)
    results["text_model_text_rows"] = batch("text", "text")
    results["fused_model_text_rows"] = batch("fused", "fused_text", chunk=1_000)
    results["fused_model_image_rows"] = batch("fused", "images", chunk=1_000)
    if "rss" not in args.skip:
        print("peak RSS against chunk size (text model, text-only rows):", flush=True)
        results["rss_by_chunk"] = {
            chunk: batch("text", "rss", chunk) for chunk in (5_000, 50_000, args.rss_rows)
        }
    if "spark" not in args.skip:
        print("Spark local[2] against the batch job (text model, text-only rows):", flush=True)
        results["spark_plain"] = batch("text", "spark", chunk=10_000)
    for method in () if "spark" in args.skip else ("map_in_pandas", "spark_udf"):
        found = run_stage(
            "spark", model=models["text-pyfunc"], input=data["spark"],
            out=work / f"spark-{method}", method=method,
        )  # fmt: skip
        found["ratio_to_batch_job"] = (
            found["listings_per_s"] / results["spark_plain"]["listings_per_s"]
        )
        results[f"spark_{method}"] = found

    results["load_average_after"] = os.getloadavg()[0]
    print(f"\nsummary (load average {load[0]:.1f} -> {results['load_average_after']:.1f})")
    for key in ("text_model_text_rows", "fused_model_text_rows", "fused_model_image_rows"):
        r = results[key]
        print(f"  {key}: {r['rows']} rows, {r['listings_per_s']:.0f} listings/s, "
              f"peak RSS {r['peak_rss_mb']:.0f} MB")  # fmt: skip
    for chunk, r in results.get("rss_by_chunk", {}).items():
        print(f"  chunk_size={chunk}: peak RSS {r['peak_rss_mb']:.0f} MB, "
              f"{r['listings_per_s']:.0f} listings/s")  # fmt: skip
    if "spark_plain" in results:
        print(f"  plain batch job: {results['spark_plain']['listings_per_s']:.0f} listings/s")
    for method in () if "spark" in args.skip else ("map_in_pandas", "spark_udf"):
        r = results[f"spark_{method}"]
        ratio, startup = r["ratio_to_batch_job"], r["startup_s"]
        print(f"  spark {method}: {r['listings_per_s']:.0f} listings/s "
              f"= {ratio:.2f}x the batch job (startup {startup:.1f} s)")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    if not args.keep and not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
