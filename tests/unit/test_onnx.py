"""ONNX export of the image network: ONNX Runtime reproduces PyTorch within 1e-4 for any batch
size, the graph and its weights file travel in the model folder, and the served model picks
ONNX Runtime by option and scores exactly like PyTorch."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch

from ipguard.models.image_classifier import ImageClassifier
from ipguard.nets.image import ImageNetwork
from ipguard.registry.package import write_model_dir
from ipguard.registry.registration import pyfunc_arguments
from ipguard.serving.onnx import (
    ONNX_DATA_FILE,
    ONNX_FILE,
    PARITY_FILE,
    OnnxParityError,
    add_onnx,
    check_parity,
    export_onnx,
    open_session,
)
from ipguard.serving.scorer import ListingScorer
from ipguard.serving.spec import ModelSpec

SIZES = {"tiny_cnn": 32, "resnet18": 64}


@pytest.fixture(scope="module", params=sorted(SIZES))
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    torch.manual_seed(0)
    size = SIZES[request.param]
    network = ImageNetwork(request.param, image_size=size).eval()
    folder = tmp_path_factory.mktemp(request.param)
    export_onnx(network, folder, torch.randn(2, 3, size, size))
    return network, folder, size


@pytest.mark.parametrize("batch", [1, 5])
def test_onnx_runtime_matches_torch_for_any_batch_size(exported, batch: int) -> None:
    network, folder, size = exported
    diff = check_parity(network, folder, torch.randn(batch, 3, size, size))
    assert diff < 1e-4
    record = json.loads((folder / PARITY_FILE).read_text())
    assert record["max_abs_diff"] == diff and record["batch_shape"] == [batch, 3, size, size]


def test_graph_has_one_image_input_and_its_weights_beside_it(exported) -> None:
    _, folder, size = exported
    assert (folder / ONNX_FILE).is_file() and (folder / ONNX_DATA_FILE).is_file()
    session = open_session(folder)
    (images,) = session.get_inputs()
    assert images.name == "images" and images.shape[1:] == [3, size, size]
    assert isinstance(images.shape[0], str)  # the batch axis is symbolic
    assert len(session.run(None, {"images": np.zeros((3, 3, size, size), np.float32)})[0]) == 3


def test_parity_check_refuses_a_graph_of_other_weights(exported) -> None:
    _, folder, size = exported
    torch.manual_seed(1)
    other = ImageNetwork("tiny_cnn" if size == 32 else "resnet18", image_size=size)
    with pytest.raises(OnnxParityError, match="differ from PyTorch"):
        check_parity(other, folder, torch.randn(2, 3, size, size))


def test_open_session_without_graph_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="onnx=true"):
        open_session(tmp_path)


def test_export_refuses_a_batch_of_one_as_example(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 2 images"):
        export_onnx(ImageNetwork("tiny_cnn", image_size=32), tmp_path, torch.zeros(1, 3, 32, 32))


def test_add_onnx_skips_models_without_an_image_graph(tmp_path: Path) -> None:
    spec = ModelSpec("text_tfidf", {}, {}, {"method": "none"}, {}, "ipguard-text")
    assert add_onnx(torch.nn.Identity(), spec, tmp_path) is None
    assert "onnx" not in spec.extras and not (tmp_path / ONNX_FILE).exists()


# --- the served model on ONNX Runtime -------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    module = ImageClassifier("tiny_cnn", image_size=32)
    folder, spec = write_model_dir(
        module,
        tmp_path_factory.mktemp("model"),
        calibrator={"method": "temperature", "temperature": 1.5},
        policy={"reject_threshold": 0.9, "approve_threshold": 0.1},
    )
    assert add_onnx(module.network, spec, folder) < 1e-4
    spec.save(folder)
    return folder


@pytest.fixture(scope="module")
def request_frame(demo_small) -> pd.DataFrame:
    rows = pd.read_csv(demo_small.manifest_path).head(7)
    root = demo_small.manifest_path.parent
    frame = rows.drop(columns=["label", "image_path"]).assign(
        image_b64=[base64.b64encode((root / p).read_bytes()).decode() for p in rows["image_path"]]
    )
    frame.loc[6, "image_b64"] = "bm90IGFuIGltYWdl"  # unreadable: flagged the same on both
    return frame


def test_scorer_on_onnx_runtime_gives_the_torch_scores(
    model_dir: Path, request_frame: pd.DataFrame
) -> None:
    torch_out = ListingScorer.load(model_dir, runtime="torch").score(request_frame)
    onnx_out = ListingScorer.load(model_dir, runtime="onnx").score(request_frame)
    assert np.nanmax(np.abs(torch_out["score"] - onnx_out["score"])) < 1e-4
    assert onnx_out["flags"].tolist() == torch_out["flags"].tolist()
    assert onnx_out["decision"].tolist() == torch_out["decision"].tolist()
    assert ModelSpec.load(model_dir).extras["onnx"]["parity_max_abs_diff"] < 1e-4


def test_pyfunc_picks_onnx_runtime_by_model_config_at_load_time(
    model_dir: Path, request_frame: pd.DataFrame, tmp_path: Path
) -> None:
    path = tmp_path / "pyfunc"
    mlflow.pyfunc.save_model(
        path,
        **pyfunc_arguments(model_dir, runtime="torch"),
    )
    logged = mlflow.pyfunc.load_model(str(path))
    chosen = mlflow.pyfunc.load_model(str(path), model_config={"runtime": "onnx"})
    assert logged.unwrap_python_model().scorer.runtime == "torch"
    assert chosen.unwrap_python_model().scorer.runtime == "onnx"
    a, b = logged.predict(request_frame), chosen.predict(request_frame)
    assert np.nanmax(np.abs(a["score"].astype(float) - b["score"].astype(float))) < 1e-4
    assert a["score"][6] is None and b["score"][6] is None  # unscored: null, never NaN


def test_a_model_packaged_by_default_serves_on_its_graph_and_on_torch_without_one(
    model_dir: Path, request_frame: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from ipguard.serving.spec import ONNX_FILE

    path = tmp_path / "pyfunc"
    arguments = pyfunc_arguments(model_dir)  # what registration writes unless told otherwise
    assert arguments["model_config"]["runtime"] == "auto"
    mlflow.pyfunc.save_model(path, **arguments)
    served = mlflow.pyfunc.load_model(str(path)).unwrap_python_model().scorer
    assert served.runtime == "onnx" and served.predictor.tower.session is not None
    pinned = mlflow.pyfunc.load_model(str(path), model_config={"runtime": "torch"})
    assert pinned.unwrap_python_model().scorer.runtime == "torch"

    bare = Path(shutil.copytree(model_dir, tmp_path / "bare"))
    (bare / ONNX_FILE).unlink()  # exported with onnx=false
    assert ListingScorer.load(bare, runtime="auto").runtime == "torch"
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # a slim image: no onnxruntime
    assert ListingScorer.load(model_dir, runtime="auto").runtime == "torch"
    with pytest.raises(ValueError, match="runtime must be one of"):
        ListingScorer.load(model_dir, runtime="fastest")
