"""``train()`` with ``experiment=video`` on a few demo clips: fits, calibrates, fits the policy,
registers ``ipguard-video`` @challenger, and the registered pyfunc scores a clip in process."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from ipguard.config import compose
from ipguard.demo.videos import generate_demo_videos
from ipguard.jobs.train import train
from ipguard.serving.predictors.video import VideoPredictor
from ipguard.serving.spec import ModelSpec
from ipguard.serving.video_contract import VIDEO_OUTPUT_COLUMNS

pytestmark = pytest.mark.slow


def test_experiment_video_trains_and_registers_ipguard_video(tmp_path: Path) -> None:
    clips = generate_demo_videos(
        tmp_path / "clips", n=48, seed=1, size=48, seconds=(3.0, 5.0), fps=4, livestreams=0
    )
    cfg = compose(
        "train",
        [
            "experiment=video",
            f"paths.root_dir={tmp_path / 'home'}",
            f"data.manifest={clips.manifest_path}",
            "data.image_size=32",
            "data.sampling.max_frames=4",
            "data.sampling.max_side=48",
            "model.image_backbone=tiny_cnn",
            "trainer.max_epochs=1",
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
            "seed=3",
        ],
    )
    result = train(cfg)

    assert result.registered is not None
    assert (result.registered.name, result.registered.alias) == ("ipguard-video", "challenger")
    assert 0.0 <= result.metrics["test/auroc"] <= 1.0
    spec = ModelSpec.load(result.model_dir)
    assert spec.kind == "video" and spec.extras["sampling"]["max_frames"] == 4
    assert spec.policy["approve_threshold"] <= spec.policy["reject_threshold"]
    slices = pd.read_csv(result.output_dir / "test_slices.csv")
    assert {"market", "language", "kind"} & set(slices["column"])

    client = MlflowClient(result.tracking_uri, registry_uri=result.tracking_uri)
    tags = client.get_model_version("ipguard-video", result.registered.version).tags
    assert tags["model_kind"] == "video" and tags["data_fingerprint"]

    # the registered pyfunc, loaded as a service would, matches the predictor in process
    mlflow.set_registry_uri(result.tracking_uri)
    served = mlflow.pyfunc.load_model(result.registered.alias_uri)
    clip = str(clips.clips_dir / "V00002.mp4")
    request = pd.DataFrame({"video_id": ["v"], "video_path": [clip], "transcript": ["1:1 AAA"]})
    out = served.predict(request)
    assert list(out.columns) == list(VIDEO_OUTPUT_COLUMNS)
    local = VideoPredictor.load(result.model_dir).score(request)
    assert out["score"][0] == pytest.approx(local["score"][0], abs=1e-6)
    assert out["model_version"][0] == result.registered.version
    assert json.loads(out["top_frames"][0])
