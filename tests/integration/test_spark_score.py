"""Scoring on Spark equals the local batch job row for row: PySpark in local mode (2 cores)
reads a Parquet manifest with bad rows, scores it with the registered model through
``mapInPandas`` and through MLflow's ``spark_udf``, and both give ``ipguard-score``'s scores
(to 1e-6), decisions and flags. Executors import the serving path only.

One SparkSession for the module: starting the JVM costs 10-20 s.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from tiny_registry import subprocess_env

from ipguard.data.catalog import catalog_featurizer
from ipguard.jobs.run import uri_environment_kept
from ipguard.models.fusion_classifier import FusionClassifier
from ipguard.registry.package import write_model_dir
from ipguard.registry.registration import log_and_register
from ipguard.serving.scorer import OUTPUT_COLUMNS, ListingScorer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

pyspark = pytest.importorskip("pyspark", reason="pip install 'ipguard[spark]'")
CHAMPION = "models:/ipguard-listing@champion"


def _java_or_skip() -> None:
    if shutil.which("java") or os.environ.get("JAVA_HOME"):
        return
    message = "Spark needs Java 17+ (apt-get install openjdk-17-jre-headless)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def store(demo_small, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A sqlite registry holding a tiny fused model as ipguard-listing v1 @champion."""
    home = tmp_path_factory.mktemp("home")
    listings = pd.read_csv(demo_small.manifest_path, dtype=str)
    listings["image_path"] = [str(demo_small.root / p) for p in listings["image_path"]]
    torch.manual_seed(5)
    folder, spec = write_model_dir(
        FusionClassifier("tiny_cnn", image_size=32, text_dim=8, n_buckets=512, hidden=8),
        home / "model",
        calibrator={"method": "none"},
        policy={"reject_threshold": 1.0, "approve_threshold": 0.0},
        extras={"tabular": catalog_featurizer(str(demo_small.brands_path)).to_dict()},
    )
    scores = ListingScorer.load(folder).score(listings)["score"]
    spec.policy = {
        "reject_threshold": float(scores.quantile(0.7)),
        "approve_threshold": float(scores.quantile(0.3)),
    }
    uri = f"sqlite:///{home / 'mlflow.db'}"
    with uri_environment_kept():
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        experiment = mlflow.create_experiment("spark", artifact_location=(home / "art").as_uri())
        with mlflow.start_run(experiment_id=experiment):
            tags = {"git_commit": "test", "data_fingerprint": "demo", "config_hash": "tiny"}
            log_and_register(folder, spec, input_example=None, tags=tags, alias="champion")
    return uri


@pytest.fixture(scope="module")
def manifest(demo_small, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 240 demo listings as Parquet, text columns as text, with one of each bad row."""
    folder = tmp_path_factory.mktemp("catalogue")
    (folder / "images").symlink_to(demo_small.images_dir, target_is_directory=True)
    (folder / "broken.jpg").write_bytes(b"<html>404</html>")
    rows = pd.read_csv(demo_small.manifest_path, dtype=str)
    rows.loc[0, "image_path"] = "broken.jpg"
    rows.loc[1, "title"] = ""
    rows.loc[2, "price"] = "abc"
    rows.loc[3, "listing_id"] = None
    rows.loc[4, ["title", "description"]] = None
    rows["seq"] = np.arange(len(rows), dtype=np.int64)
    path = folder / "catalogue.parquet"
    rows.to_parquet(path, index=False)
    return path


@pytest.fixture(scope="module")
def batch_output(store: str, manifest: Path, tmp_path_factory: pytest.TempPathFactory):
    """``ipguard-score`` itself (the console script, in a fresh process) by registry URI."""
    home = tmp_path_factory.mktemp("score-home")
    out = home / "scores"
    script = Path(sys.executable).parent / "ipguard-score"
    command = [str(script), f"model_uri={CHAMPION}", f"input={manifest}", f"output={out}"]
    proc = subprocess.run(
        [*command, "chunk_size=100", "progress=false", "keep=[seq]"],
        env=subprocess_env(home, MLFLOW_TRACKING_URI=store),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "ipguard: scored rows_in=240 rows_out=240" in proc.stdout
    assert "model=models:/ipguard-listing/1" in proc.stdout
    return pd.read_parquet(out).sort_values("seq").reset_index(drop=True)


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory):
    _java_or_skip()
    from pyspark.sql import SparkSession

    patch = pytest.MonkeyPatch()
    patch.setenv("PYSPARK_PYTHON", sys.executable)  # the executors' Python: ipguard's
    session = (
        SparkSession.builder.master("local[2]")
        .appName("ipguard-spark-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.local.dir", str(tmp_path_factory.mktemp("spark")))
        .config("spark.executorEnv.OMP_NUM_THREADS", "1")
        .getOrCreate()
    )
    yield session
    session.stop()
    patch.undo()


@pytest.mark.parametrize("method", ["map_in_pandas", "spark_udf"])
def test_spark_scores_equal_the_batch_job_row_for_row(
    method: str, spark, store: str, manifest: Path, batch_output: pd.DataFrame, monkeypatch
) -> None:
    from ipguard.jobs.spark_score import score_spark

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    df = spark.read.parquet(str(manifest)).repartition(3)  # rows spread over the two cores
    scored = score_spark(df, CHAMPION, method=method, image_root=manifest.parent, keep=["seq"])
    assert scored.columns == [*OUTPUT_COLUMNS, "seq"]
    found = scored.toPandas().sort_values("seq").reset_index(drop=True)

    assert len(found) == len(batch_output) == 240
    assert found["seq"].tolist() == batch_output["seq"].tolist()
    for column in ("listing_id", "decision", "flags", "model_version", "evidence"):
        assert found[column].tolist() == batch_output[column].tolist(), column
    for column in ("score", "image_score", "text_score"):
        np.testing.assert_allclose(found[column], batch_output[column], atol=1e-6, equal_nan=True)
    assert found["flags"][:5].tolist() == [
        "image_unreadable",
        "title_missing",
        "price_invalid",
        "listing_id_missing",
        "text_empty",
    ]
    assert set(found["decision"]) == {"reject", "review", "approve"}
    assert found["model_version"].eq("1").all()


EXECUTOR = textwrap.dedent(
    """
    import importlib.abc, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("lightning", "pytorch_lightning", "hydra"):
                raise ImportError(f"{name} is blocked: an executor must not need it")
            return None

    sys.meta_path.insert(0, Block())
    import pandas as pd
    from ipguard.jobs import spark_score  # what unpickling the partition function imports
    from ipguard.serving.batch import score_partitions

    frame = pd.read_parquet(sys.argv[2]).head(4)
    (out,) = score_partitions([frame], sys.argv[1], image_root=sys.argv[3], keep=["seq"])
    print(len(out), out["score"].notna().sum())
    """
)


def test_an_executor_scores_without_lightning_or_hydra(
    demo_small, manifest: Path, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    folder, _ = write_model_dir(
        FusionClassifier("tiny_cnn", image_size=32, text_dim=8, n_buckets=512, hidden=8),
        tmp_path / "model",
        calibrator={"method": "none"},
        policy={"reject_threshold": 0.9, "approve_threshold": 0.1},
        extras={"tabular": catalog_featurizer(str(demo_small.brands_path)).to_dict()},
    )
    proc = subprocess.run(
        [sys.executable, "-c", EXECUTOR, str(folder), str(manifest), str(manifest.parent)],
        env=subprocess_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[-2:] == ["4", "4"]
