"""Train-vs-serve parity for the image and the fused model: the scores training computes for
the test split (the Lightning module on the data module's batches, ``predict_scores`` as
``train()`` uses them) are the scores the exported model gives, loaded as a screening service
loads it (the MLflow pyfunc over the model folder), to 1e-5.

What this catches: any difference between the data module's and the predictor's preprocessing
(resize, mean/std, colour conversion, how a missing image or an empty title is fed), the text
the fused network reads, the tabular features, or the weights written. A served model whose
normalisation is off by 0.01 moves logits by far more than 1e-5; the image test serves its
folder once with such a spec to prove the comparison notices (the fastText model's parity
lives in ``tests/unit/test_text_models.py``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import lightning as L
import mlflow
import numpy as np
import pandas as pd
import torch

from ipguard.data.datamodule import ListingDataModule
from ipguard.models.fusion_classifier import FusionClassifier
from ipguard.models.image_classifier import ImageClassifier
from ipguard.registry.package import write_model_dir
from ipguard.registry.registration import pyfunc_arguments
from ipguard.serving.scorer import ListingScorer
from ipguard.serving.spec import ModelSpec

SIZE = 32
TOLERANCE = 1e-5
IDENTITY = {"method": "none"}  # served score = the raw P(infringing) training computes
POLICY = {"reject_threshold": 0.9, "approve_threshold": 0.1}


def _data(demo_small: Any, model: Any, tmp_path: Path) -> ListingDataModule:
    """The data module as ``train()`` sets it up for this model."""
    dm = ListingDataModule(
        str(demo_small.manifest_path),
        brands=str(demo_small.catalog_path),
        image_size=SIZE,
        batch_size=16,
        output_dir=str(tmp_path / "run"),
    )
    dm.setup("fit")
    dm.configure_inputs(
        modalities=model.modalities,
        preprocessing=model.preprocessing,
        image_embedder=model.image_embedder(),
    )
    if hasattr(model, "attach_data"):
        model.attach_data(dm)
    return dm


def _fit_a_little(model: L.LightningModule, dm: ListingDataModule, tmp_path: Path) -> None:
    """Two training steps: weights (and BatchNorm statistics) that are not the initial ones."""
    L.Trainer(
        accelerator="cpu",
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
    ).fit(model, datamodule=dm)


def _trained_and_served(
    model: L.LightningModule, demo_small: Any, tmp_path: Path
) -> tuple[np.ndarray, pd.DataFrame, Path, pd.DataFrame]:
    """(training's test scores, the pyfunc's output on the test rows, model folder, request)."""
    torch.manual_seed(0)
    dm = _data(demo_small, model, tmp_path)
    _fit_a_little(model, dm, tmp_path)
    # as train() does after fitting: inputs re-configured, then the unshuffled split scored
    dm.configure_inputs(modalities=model.modalities, image_embedder=model.image_embedder())
    trained = model.predict_scores(dm.loader("test"))
    folder, _ = write_model_dir(
        model, tmp_path / "model", calibrator=IDENTITY, policy=POLICY, extras=dm.export_extras()
    )
    test = dm.frames["test"]
    # as a service sends them: no label, image paths it can read (the manifest's are relative)
    request = test.drop(columns=["label"]).assign(
        image_path=[
            str(Path(dm.root) / p) if isinstance(p, str) and p else p for p in test["image_path"]
        ]
    )
    pyfunc = tmp_path / "pyfunc"
    mlflow.pyfunc.save_model(
        str(pyfunc), **pyfunc_arguments(folder, kind=model.export_spec()["kind"])
    )
    served = mlflow.pyfunc.load_model(str(pyfunc)).predict(request)
    return trained, served, folder, request


def _served_scores(served: pd.DataFrame) -> np.ndarray:
    return served["score"].astype(float).to_numpy()


def test_image_model_serves_the_scores_training_computed(demo_small, tmp_path: Path) -> None:
    model = ImageClassifier("tiny_cnn", image_size=SIZE)
    trained, served, folder, request = _trained_and_served(model, demo_small, tmp_path)
    scores = _served_scores(served)
    # a row without a usable image is not scored by the image model (training fed it a blank)
    scored = np.isfinite(scores)
    assert scored.mean() > 0.8
    assert served.loc[~scored, "flags"].str.contains("image_").all()
    assert np.abs(scores[scored] - trained[scored]).max() < TOLERANCE

    # the same folder served with a normalisation off by 0.05 is caught by this comparison
    # (a barely trained tiny network moves its scores by ~1e-3 for it: far above TOLERANCE)
    spec = ModelSpec.load(folder)
    mean = [m + 0.05 for m in spec.preprocessing["mean"]]
    skewed = replace(spec, preprocessing={**spec.preprocessing, "mean": mean})
    off = ListingScorer(skewed, folder).score(request)["score"].to_numpy(dtype=float)
    assert np.abs(off[scored] - trained[scored]).max() > 10 * TOLERANCE


def test_fused_model_serves_the_scores_training_computed(demo_small, tmp_path: Path) -> None:
    model = FusionClassifier("tiny_cnn", image_size=SIZE, text_dim=8, n_buckets=512, hidden=8)
    trained, served, _, _ = _trained_and_served(model, demo_small, tmp_path)
    scores = _served_scores(served)
    # the fused model scores every row: a missing image or title is an input state, not a gap
    assert np.isfinite(scores).all()
    assert np.abs(scores - trained).max() < TOLERANCE
