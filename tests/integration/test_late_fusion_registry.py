"""Late fusion as a team runs it: the image and text models are trained and registered first,
then ``model=late_fusion`` stacks them by their registry aliases (the config's defaults,
``models:/ipguard-image@challenger`` and ``models:/ipguard-text@challenger``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ipguard.config import compose
from ipguard.jobs.train import train
from ipguard.serving.scorer import ListingScorer
from ipguard.serving.spec import ModelSpec, folder_in_logged_model

pytestmark = pytest.mark.integration


def _train(root: Path, manifest: Path, *overrides: str) -> Any:
    base = ["debug=fast", f"data.manifest={manifest}", f"paths.root_dir={root}", "seed=4"]
    return train(compose("train", [*base, *overrides]))


@pytest.fixture(scope="module")
def stacked(demo_small: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("late-fusion-home")
    manifest = demo_small.manifest_path
    image = _train(root, manifest, "model=image", "model.backbone=tiny_cnn")
    text = _train(root, manifest, "model=text_tfidf")
    late = _train(root, manifest, "model=late_fusion")
    with_references = _train(
        root,
        manifest,
        "model=late_fusion",
        "model.references=true",
        "model.reference_image_size=64",
        f"data.brands={demo_small.reference_catalog_path}",
    )
    return {
        "image": image,
        "text": text,
        "late": late,
        "with_references": with_references,
        "manifest": manifest,
    }


def test_late_fusion_stacks_the_registered_models_and_registers_itself(stacked) -> None:
    late = stacked["late"]
    assert late.registered is not None
    assert late.registered.name == "ipguard-listing"
    spec = ModelSpec.load(late.model_dir)
    assert spec.kind == "late_fusion"


def test_late_fusion_carries_copies_of_the_registered_bases(stacked) -> None:
    folder = stacked["late"].model_dir
    for role, base in (("image", stacked["image"]), ("text", stacked["text"])):
        copied = ModelSpec.load(folder / "bases" / role)
        assert copied.registered_model == base.registered.name
        assert copied.model_version == base.registered.version


def test_late_fusion_scores_listings_through_its_export(stacked, demo_small) -> None:
    import pandas as pd

    rows = pd.read_csv(stacked["manifest"]).head(8).drop(columns=["label"])
    rows["image_path"] = [str(demo_small.manifest_path.parent / p) for p in rows["image_path"]]
    out = ListingScorer.load(stacked["late"].model_dir).score(rows)
    assert out["listing_id"].tolist() == rows["listing_id"].tolist()
    assert np.isfinite(out["score"].to_numpy(dtype=float)).all()


def test_logged_model_folder_is_found_from_the_mlmodel_file(tmp_path: Path) -> None:
    (tmp_path / "MLmodel").write_text(
        "flavors:\n  python_function:\n    artifacts:\n      model_dir:\n"
        "        path: artifacts/model\n        uri: /elsewhere/model\n"
        "    loader_module: mlflow.pyfunc.model\n"
    )
    assert folder_in_logged_model(tmp_path) is None  # named, but no spec.json there yet
    (tmp_path / "artifacts" / "model").mkdir(parents=True)
    (tmp_path / "artifacts" / "model" / "spec.json").write_text("{}")
    assert folder_in_logged_model(tmp_path) == tmp_path / "artifacts" / "model"
    assert folder_in_logged_model(tmp_path / "artifacts") is None  # no MLmodel


def test_late_fusion_with_references_stacks_the_reference_features(stacked, demo_small) -> None:
    import json

    import pandas as pd

    from ipguard.data.reference_features import REFERENCE_FEATURE_NAMES

    folder = stacked["with_references"].model_dir
    spec = ModelSpec.load(folder)
    assert spec.network["features"][-len(REFERENCE_FEATURE_NAMES) :] == list(
        REFERENCE_FEATURE_NAMES
    )
    assert spec.extras["references"]["reference_images"] > 0
    rows = pd.read_csv(stacked["manifest"]).head(6).drop(columns=["label"])
    rows["image_path"] = [str(demo_small.manifest_path.parent / p) for p in rows["image_path"]]
    out = ListingScorer.load(folder).score(rows)
    assert np.isfinite(out["score"].to_numpy(dtype=float)).all()
    evidence = [json.loads(e)["references"] for e in out["evidence"]]
    assert all(e is not None and e["brand"] for e in evidence)
