"""``score_spark(df, model_uri)``: the batch job on Spark, where a marketplace's catalogue lives.

Two ways, measured against each other in ``benchmarks/batch_score.py`` (docs/scoring.md):

* ``map_in_pandas`` (the default): the driver resolves the model once (registry URI, run URI
  or model folder), ships its exported folder to every executor with ``SparkContext.addFile``,
  and each Python worker scores its partitions with the model's own
  :class:`~ipguard.serving.scorer.ListingScorer` through
  :func:`ipguard.serving.batch.score_partitions`, the code the local batch job runs;
* ``spark_udf``: :func:`mlflow.pyfunc.spark_udf` over the registered pyfunc, as MLflow's docs
  show it; the same scorer behind MLflow's pyfunc wrapper and its signature enforcement.

Both give the contract's output columns, then the ``keep`` columns of ``df`` (an id to join on:
a row without a ``listing_id`` comes back with ``""``). What an executor imports: pyspark,
pandas, pyarrow and :mod:`ipguard.serving` (torch and the model kind's preprocessing), never
Lightning or Hydra: this module imports nothing else at the top, and the driver-only imports
(the model loader) happen inside :func:`score_spark`.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from pyspark import SparkFiles
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ipguard.serving.batch import request_columns, score_partitions
from ipguard.serving.scorer import OUTPUT_TYPES

__all__ = ["METHODS", "output_struct", "score_spark"]

METHODS = ("map_in_pandas", "spark_udf")


def output_struct(keep: Sequence[T.StructField] = ()) -> T.StructType:
    """The Spark schema of scored rows: the contract's columns, then the kept ones."""
    fields = [
        T.StructField(name, T.DoubleType() if kind == "double" else T.StringType(), True)
        for name, kind in OUTPUT_TYPES.items()
    ]
    return T.StructType([*fields, *keep])


def score_spark(
    df: DataFrame,
    model_uri: str,
    *,
    method: str = "map_in_pandas",
    image_root: str | Path | None = None,
    keep: Sequence[str] = (),
    batch_size: int = 256,
    runtime: str = "torch",
) -> DataFrame:
    """``df``'s listings scored by ``model_uri``: one output row per input row.

    ``df`` holds manifest columns (``listing_id`` required; any value type, bad values are
    flagged as in serving). Relative ``image_path`` values resolve against ``image_root``,
    which every executor must be able to read (shared storage on a cluster); without it they
    are read as they are. ``keep`` names columns of ``df`` copied to the output. Lazy, like
    any Spark transformation: nothing is scored until the result is written or collected.
    """
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, found {method!r}")
    if "listing_id" not in df.columns:
        raise ValueError(f"df: missing required column 'listing_id'; found {df.columns}")
    missing = [name for name in keep if name not in df.columns]
    if missing:
        raise ValueError(f"keep: columns {missing} are not in df; found {df.columns}")
    clash = [name for name in keep if name in OUTPUT_TYPES]
    if clash:
        raise ValueError(f"keep: {clash} are output columns already; keep other columns")
    kept = [df.schema[name] for name in keep]
    if method == "spark_udf":
        return _with_spark_udf(df, model_uri, image_root, list(keep), kept, runtime)
    wanted = request_columns(df.columns)
    columns = [*wanted, *[name for name in keep if name not in wanted]]
    name = _ship_model(df.sparkSession, model_uri)
    score = functools.partial(
        _score_partition,
        model_file=name,
        runtime=runtime,
        image_root=None if image_root is None else str(image_root),
        batch_size=int(batch_size),
        keep=tuple(keep),
        threads=int(df.sparkSession.conf.get("spark.task.cpus", "1") or 1),
    )
    return df.select(*columns).mapInPandas(score, output_struct(kept))


def _score_partition(
    batches: Iterator[pd.DataFrame], *, model_file: str, **settings: Any
) -> Iterator[pd.DataFrame]:
    """Runs on the executors: the shipped model folder, found where Spark put it."""
    yield from score_partitions(batches, SparkFiles.get(model_file), **settings)


def _ship_model(spark: SparkSession, model_uri: str) -> str:
    """The model's exported folder, staged under a name that is its content hash and added
    to the Spark context; returns the name executors find it by (``SparkFiles.get``).

    The same model always stages at the same path, so scoring twice in one session adds it
    once (Spark refuses one name for two paths).
    """
    from ipguard.jobs.batch_score import model_fingerprint  # driver only: the model loader
    from ipguard.models.loading import load_model

    with tempfile.TemporaryDirectory(prefix="ipguard-spark-") as scratch:
        model = load_model(model_uri, scratch, through_pyfunc=False)
        digest = model_fingerprint(model.folder)[:16]
        name = f"ipguard-model-{digest}"
        staged = Path(tempfile.gettempdir()) / "ipguard-spark" / digest / name
        if not staged.is_dir():
            temp = staged.with_name(f".{name}.tmp")
            shutil.rmtree(temp, ignore_errors=True)
            shutil.copytree(model.folder, temp)
            temp.rename(staged)
    spark.sparkContext.addFile(str(staged), recursive=True)
    return name


def _with_spark_udf(
    df: DataFrame,
    model_uri: str,
    image_root: str | Path | None,
    keep: list[str],
    kept: list[T.StructField],
    runtime: str,
) -> DataFrame:
    import mlflow

    udf = mlflow.pyfunc.spark_udf(
        df.sparkSession,
        model_uri,
        result_type=output_struct(),
        env_manager="local",
        model_config={"runtime": runtime},
    )
    inputs = [
        _resolved_image_path(image_root).alias(name)
        if name == "image_path" and image_root is not None
        else F.col(name)
        for name in request_columns(df.columns)
    ]
    scored = df.withColumn("_ipguard_scores", udf(F.struct(*inputs)))
    outputs = [F.col(f"_ipguard_scores.{name}").alias(name) for name in OUTPUT_TYPES]
    return scored.select(*outputs, *[F.col(name) for name in keep]).to(output_struct(kept))


def _resolved_image_path(root: str | Path) -> Column:
    """``image_path`` against ``root`` in Spark SQL, as :func:`ipguard.data.io.image_files`
    resolves it: blank is missing, absolute is kept, relative joins the root."""
    path = F.col("image_path").cast("string")
    return (
        F.when(path.isNull() | (F.trim(path) == ""), F.lit(None).cast("string"))
        .when(path.startswith("/"), path)
        .otherwise(F.concat(F.lit(str(Path(root)).rstrip("/") + "/"), path))
    )
