"""The video model's frame tower on ONNX Runtime: exported beside the weights with a parity
check, used by the predictor and the pyfunc when present, torch otherwise, and the same score."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from test_video_frames import encode_clip

from ipguard.data.video_frames import SamplingConfig
from ipguard.models.video_classifier import VideoClassifier
from ipguard.registry.package import write_model_dir
from ipguard.registry.registration import pyfunc_arguments
from ipguard.serving.onnx import PARITY_TOLERANCE
from ipguard.serving.predictors.video import VideoPredictor
from ipguard.serving.spec import ONNX_FILE, PARITY_FILE, ModelSpec
from ipguard.serving.video_onnx import (
    ENV_THREADS,
    FRAME_TOWER_DIR,
    add_frame_tower_onnx,
    session_threads,
)

SIZE = 32
SAMPLING = {"rate": 2.0, "scene_threshold": 0.3, "max_frames": 8, "max_side": 48}


def _write(folder: Path) -> tuple[VideoClassifier, Path]:
    torch.manual_seed(0)
    model = VideoClassifier("tiny_cnn", image_size=SIZE)
    written, _ = write_model_dir(
        model,
        folder,
        calibrator={"method": "temperature", "temperature": 1.5},
        policy={"reject_threshold": 0.9, "approve_threshold": 0.1},
        extras={"sampling": asdict(SamplingConfig(**SAMPLING))},
    )
    return model, written


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny video model folder with its frame tower exported (as training writes it)."""
    model, folder = _write(tmp_path_factory.mktemp("video-onnx"))
    spec = ModelSpec.load(folder)
    add_frame_tower_onnx(spec, folder, model.network)
    spec.save(folder)
    return folder


def test_export_writes_a_parity_checked_graph_and_notes_it_in_the_spec(exported: Path) -> None:
    tower = exported / FRAME_TOWER_DIR
    assert (tower / ONNX_FILE).is_file()
    record = json.loads((tower / PARITY_FILE).read_text())
    assert record["max_abs_diff"] < PARITY_TOLERANCE
    assert record["batch_shape"] == [5, 3, SIZE, SIZE]  # another batch than the example's
    noted = ModelSpec.load(exported).extras["onnx"]
    assert noted["graph"] == FRAME_TOWER_DIR and noted["parity_max_abs_diff"] < PARITY_TOLERANCE


def test_export_rebuilds_the_network_from_the_folder_without_one(tmp_path: Path) -> None:
    _, folder = _write(tmp_path / "model")
    spec = ModelSpec.load(folder)
    diff = add_frame_tower_onnx(spec, folder)  # as ipguard-export does from a model folder
    assert diff < PARITY_TOLERANCE and (folder / FRAME_TOWER_DIR / ONNX_FILE).is_file()
    with pytest.raises(ValueError, match="video models"):
        add_frame_tower_onnx(ModelSpec(**{**asdict(spec), "kind": "image"}), folder)


@pytest.mark.parametrize("frames", [1, 3, 8])
def test_onnx_and_torch_frame_towers_give_the_same_scores(exported: Path, frames: int) -> None:
    onnx, eager = VideoPredictor.load(exported), VideoPredictor.load(exported, frame_tower="torch")
    assert (onnx.frame_tower, eager.frame_tower) == ("onnx", "torch")
    rng = np.random.default_rng(frames)
    images = rng.integers(0, 256, (frames, 40, 48, 3), dtype=np.uint8)
    times = np.arange(frames) * 0.5
    a = onnx.score_frames(images, times, "replica AAA")
    b = eager.score_frames(images, times, "replica AAA")
    assert a.score == pytest.approx(b.score, abs=1e-5)
    np.testing.assert_allclose(a.frame_weights, b.frame_weights, atol=1e-5)
    np.testing.assert_allclose(a.frame_scores, b.frame_scores, atol=1e-5)
    assert a.evidence_time_s == b.evidence_time_s
    # no frames: the transcript alone, the same on both (the graph is not run)
    empty = np.zeros((0, 40, 48, 3), dtype=np.uint8)
    spoken = onnx.score_frames(empty, np.zeros(0), "replica")
    assert spoken.score == eager.score_frames(empty, np.zeros(0), "replica").score


def test_the_pyfunc_scores_the_same_on_onnx_and_on_torch(exported: Path, tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    encode_clip(
        clip, seconds=3.0, fps=10, colour_at=lambda t: (200, 30, 30) if t < 1.5 else (30, 30, 200)
    )
    saved = tmp_path / "pyfunc"
    mlflow.pyfunc.save_model(str(saved), **pyfunc_arguments(exported, kind="video"))
    request = pd.DataFrame(
        {"video_id": ["a", "b"], "video_path": [str(clip), None], "transcript": ["1:1 AAA", "x"]}
    )
    outputs = {}
    for tower in ("onnx", "torch"):
        model = mlflow.pyfunc.load_model(str(saved), model_config={"frame_tower": tower})
        assert model.unwrap_python_model().predictor.frame_tower == tower
        outputs[tower] = model.predict(request)
    assert (
        mlflow.pyfunc.load_model(str(saved)).unwrap_python_model().predictor.frame_tower == "onnx"
    )
    scores = {tower: out["score"].to_numpy(dtype=float) for tower, out in outputs.items()}
    assert np.isfinite(scores["onnx"]).all()
    np.testing.assert_allclose(scores["onnx"], scores["torch"], atol=1e-5)
    assert outputs["onnx"]["evidence_time_s"][0] is not None
    assert outputs["onnx"]["evidence_time_s"][0] == outputs["torch"]["evidence_time_s"][0]
    assert outputs["onnx"]["decision"].tolist() == outputs["torch"]["decision"].tolist()


def test_without_a_graph_or_onnxruntime_the_predictor_falls_back_to_torch(
    exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, plain = _write(tmp_path / "plain")
    assert VideoPredictor.load(plain).frame_tower == "torch"  # exported before: no graph
    with pytest.raises(FileNotFoundError, match="frame_tower='onnx' needs"):
        VideoPredictor.load(plain, frame_tower="onnx")
    with pytest.raises(ValueError, match="frame_tower"):
        VideoPredictor.load(exported, frame_tower="tensorrt")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    with pytest.warns(UserWarning, match="onnxruntime is not installed"):
        assert VideoPredictor.load(exported).frame_tower == "torch"
    with pytest.raises(ImportError, match="needs onnxruntime"):
        VideoPredictor.load(exported, frame_tower="onnx")


def test_session_threads_follow_the_environment_or_the_usable_cores() -> None:
    assert session_threads({ENV_THREADS: "3"}) == 3
    assert session_threads({}) >= 1
    for bad in ("0", "two", "-1"):
        with pytest.raises(ValueError, match=ENV_THREADS):
            session_threads({ENV_THREADS: bad})
