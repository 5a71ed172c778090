"""A user's catalogue trains end to end on the default settings.

Studio photos that look alike, several photos per item, re-uploaded copies, many sellers, six
currencies in the brand catalog, a semicolon CSV and a team's own label values: the traits that
stopped default runs before (one giant leakage group, "duplicate brand", "9 fields, expected
1", unknown labels). Only the size of the run is shrunk; every modelling default stays.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from ipguard.config import compose
from ipguard.data.catalog import catalog_featurizer
from ipguard.data.tabular import FEATURE_NAMES
from ipguard.demo.catalogue import make_catalogue
from ipguard.jobs.train import train

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_semicolon_catalogue_with_own_labels_trains_and_registers_on_defaults(
    tmp_path: Path,
) -> None:
    catalogue = make_catalogue(
        tmp_path / "catalogue", n_listings=480, n_sellers=48, seed=5, image_size=64, sep=";"
    )
    rows = pd.read_csv(catalogue.manifest_path, sep=";", dtype=str, keep_default_na=False)
    rows["label"] = rows["label"].map({"genuine": "ok", "infringing": "FAKE"})
    rows.to_csv(catalogue.manifest_path, sep=";", index=False)
    assert pd.read_csv(catalogue.brands_path)["currency"].nunique() == 6

    cfg = compose(
        "train",
        [
            "model=fusion",
            f"data.manifest={catalogue.manifest_path}",
            f"data.brands={catalogue.brands_path}",
            "data.label_values={genuine: [ok], infringing: [fake]}",
            f"paths.root_dir={tmp_path / 'home'}",
            "data.image_size=64",  # the run is shrunk, not the defaults: size and epochs only
            "trainer.max_epochs=2",
            "trainer.enable_progress_bar=false",
            "onnx=false",  # the fused ONNX export is tested on its own (test_onnx_text_fusion)
        ],
    )
    result = train(cfg)

    assert result.registered is not None and result.registered.name == "ipguard-listing"
    client = mlflow.tracking.MlflowClient(result.tracking_uri)
    logged = client.download_artifacts(result.run_id, "data/summary.json", str(tmp_path))
    summary = json.loads(Path(logged).read_text())
    assert summary["rows_in"] == summary["rows_valid"] == 480
    split = summary["split"]
    assert split["groups"] >= 20  # sellers, not one chain of look-alike studio photos
    assert split["largest_group_share"] < 0.2
    assert min(split["split_sizes"].values()) > 0
    assert 0.0 <= result.metrics["test/auroc"] <= 1.0
    # the six-currency catalog gives every priced listing of a catalog brand its price ratio
    featurizer = catalog_featurizer(catalogue.brands_path)
    features = featurizer.transform(rows.assign(price=rows["price"].astype(float)))
    ratio_missing = features[:, FEATURE_NAMES.index("price_ratio_missing")]
    assert ratio_missing.mean() == 0.0
    model = mlflow.pyfunc.load_model(result.registered.alias_uri)
    test_rows = rows.head(8).drop(columns=["label"])
    test_rows["image_path"] = [str(catalogue.root / p) for p in test_rows["image_path"]]
    scored = model.predict(test_rows)
    assert scored["listing_id"].tolist() == test_rows["listing_id"].tolist()
    assert scored["decision"].isin(["reject", "review", "approve"]).all()
    assert scored["image_score"].notna().all()
