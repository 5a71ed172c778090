"""``ipguard-video`` over REST: a real ``mlflow models serve --env-manager local`` process of a
video model trained and registered by the CLI scores a video by path and a base64 clip with a
transcript, and answers a truncated clip with a flag and a score, not a 500."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tiny_registry import TinyStore, post_rows, serving, train_cli

from ipguard.serving.predictors.video import VideoPredictor
from ipguard.serving.video_contract import VIDEO_OUTPUT_COLUMNS

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> TinyStore:
    """A tiny video model (tiny_cnn frames) on debug=fast's 62 demo clips, via the real CLI."""
    home = tmp_path_factory.mktemp("home")
    summary = train_cli(
        home, "experiment=video", "debug=fast", "model.image_backbone=tiny_cnn", "seed=3"
    )
    assert summary["name"] == "ipguard-video" and summary["alias"] == "challenger"
    (model_dir,) = (home / "runs" / "video").glob("*/model")  # task_name=video
    manifest = home / "data" / "demo-videos-small" / "videos.csv"
    return TinyStore(home, summary["uri"], summary["name"], summary["version"], model_dir, manifest)


@pytest.fixture(scope="module")
def server(store: TinyStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving(store, "challenger", tmp_path_factory.mktemp("server")) as url:
        yield url


def _clip(store: TinyStore, video_id: str) -> Path:
    return store.manifest.parent / "clips" / f"{video_id}.mp4"


def test_a_path_and_a_base64_clip_with_a_transcript_are_scored_as_in_process(
    server: str, store: TinyStore
) -> None:
    clip = _clip(store, "V00003")
    rows = pd.DataFrame(
        {
            "video_id": ["by-path", "by-b64"],
            "video_path": [str(clip), None],
            "video_b64": [None, base64.b64encode(clip.read_bytes()).decode()],
            "transcript": [None, "réplica AAA, misma fábrica que el original"],
        }
    )
    predictions = post_rows(server, rows)

    assert [p["video_id"] for p in predictions] == ["by-path", "by-b64"]
    assert list(predictions[0]) == list(VIDEO_OUTPUT_COLUMNS)
    for p in predictions:
        assert 0.0 <= p["score"] <= 1.0
        assert p["decision"] in ("reject", "review", "approve")
        assert p["evidence_time_s"] is not None
        top = json.loads(p["top_frames"])
        assert top and top[0]["time_s"] == pytest.approx(p["evidence_time_s"], abs=1e-3)
        assert p["model_version"] == store.version
    assert predictions[0]["flags"] == "transcript_empty"
    assert predictions[0]["transcript_score"] is None  # null, not NaN, in the JSON
    assert predictions[1]["flags"] == "" and predictions[1]["transcript_score"] is not None
    local = VideoPredictor.load(store.model_dir).score(rows)
    np.testing.assert_allclose([p["score"] for p in predictions], local["score"], atol=1e-6)


def test_a_truncated_clip_returns_a_flag_and_a_score_not_an_error(
    server: str, store: TinyStore, tmp_path: Path
) -> None:
    data = _clip(store, "V00004").read_bytes()
    cut = base64.b64encode(data[: int(len(data) * 0.6)]).decode()
    rows = pd.DataFrame(
        {
            "video_id": ["cut", "garbage", "empty"],
            "video_b64": [cut, base64.b64encode(b"not a video at all").decode(), ""],
            "transcript": ["1:1 replica", "1:1 replica", None],
        }
    )
    predictions = post_rows(server, rows)

    cut_row, garbage, empty = predictions
    assert cut_row["flags"] == "video_truncated"
    assert cut_row["score"] is not None and cut_row["evidence_time_s"] is not None
    assert garbage["flags"] == "video_unreadable"  # scored on its transcript alone
    assert garbage["score"] is not None and garbage["evidence_time_s"] is None
    assert empty["flags"] == "video_missing,transcript_empty,not_scored"
    assert empty["score"] is None and empty["decision"] == "review"
