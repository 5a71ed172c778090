"""MiniLM on ONNX Runtime: the exported graph (token ids and mask in, logits out) reproduces
PyTorch within the parity tolerance on free batch and token axes, and the served pyfunc scores
the same on either runtime, blank texts included. Slow: one 90 MB encoder, exported once."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch

from ipguard.models.text_classifier import MiniLMClassifier
from ipguard.registry.package import write_model_dir
from ipguard.registry.registration import pyfunc_arguments
from ipguard.serving.onnx import PARITY_FILE, PARITY_TOLERANCE, add_onnx, open_session
from ipguard.serving.spec import ModelSpec

pytestmark = pytest.mark.slow

TITLES = [
    "Lumenor replica watch 1:1 AAA",
    "genuine Lumenor leather strap, boxed",
    "копия часов люкс",
    "コピー 財布 ブランド",
    "brand new sneakers size 42 with receipt",
    "",  # a listing without text: not scored on either runtime
    "Zentarro dupe bag mirror quality, same factory as the original",
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    module = MiniLMClassifier(max_length=32, dropout=0.0, scheduler="none")
    with torch.no_grad():  # a head whose scores spread, so equal scores are not constants
        module.net.head.weight.normal_(0.0, 2.0)
    folder, spec = write_model_dir(
        module,
        tmp_path_factory.mktemp("minilm") / "model",
        calibrator={"method": "temperature", "temperature": 1.0},
        policy={"reject_threshold": 0.7, "approve_threshold": 0.3},
    )
    spec.model_version = "2"
    assert add_onnx(module.network.eval(), spec, folder) < PARITY_TOLERANCE
    spec.save(folder)
    return folder


def test_graph_has_free_batch_and_token_axes_and_records_its_parity(exported: Path) -> None:
    record = json.loads((exported / PARITY_FILE).read_text())
    assert record["max_abs_diff"] < PARITY_TOLERANCE
    shapes = {tuple(b["input_ids"]) for b in record["batches"]}
    assert len({s[0] for s in shapes}) == 2 and len({s[1] for s in shapes}) == 2
    inputs = open_session(exported).get_inputs()
    assert [i.name for i in inputs] == ["input_ids", "attention_mask"]
    assert all(isinstance(d, str) for i in inputs for d in i.shape)  # both axes symbolic
    assert ModelSpec.load(exported).extras["onnx"]["inputs"] == ["input_ids", "attention_mask"]


def test_pyfunc_on_onnx_runtime_scores_as_on_torch(exported: Path, tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"listing_id": [f"m{i}" for i in range(len(TITLES))], "title": TITLES}
    ).replace({"title": {"": None}})
    out: dict[str, dict[int, pd.DataFrame]] = {}
    for runtime in ("torch", "onnx"):
        path = tmp_path / runtime
        mlflow.pyfunc.save_model(path, **pyfunc_arguments(exported, runtime=runtime))
        model = mlflow.pyfunc.load_model(str(path))
        predictor = model.unwrap_python_model().scorer.predictor
        assert (predictor.session is not None) == (runtime == "onnx")
        out[runtime] = {n: model.predict(frame.head(n)) for n in (1, len(TITLES))}
    for n in (1, len(TITLES)):
        a, b = out["torch"][n], out["onnx"][n]
        x, y = a["score"].astype(float).to_numpy(), b["score"].astype(float).to_numpy()
        np.testing.assert_array_equal(np.isnan(x), np.isnan(y))
        assert np.nanmax(np.abs(x - y)) < 1e-5
        assert a["decision"].tolist() == b["decision"].tolist()
        assert a["flags"].tolist() == b["flags"].tolist()
    scores = out["onnx"][len(TITLES)]["score"].astype(float)
    assert scores.isna().tolist() == [t == "" for t in TITLES]
    assert np.nanstd(scores) > 1e-2


def test_blank_texts_get_the_zero_embedding_logit_on_the_graph(exported: Path) -> None:
    from ipguard.serving.scorer import ListingScorer

    torch_side = ListingScorer.load(exported).predictor
    onnx_side = ListingScorer.load(exported, runtime="onnx").predictor
    texts = ["  ", "Lumenor replica watch", ""]
    np.testing.assert_allclose(
        onnx_side.logits(texts), torch_side.logits(texts), atol=PARITY_TOLERANCE
    )
