"""``ipguard-video`` over REST: a real ``mlflow models serve --env-manager local`` process of a
video model trained and registered by the CLI scores a video by path and a base64 clip with a
transcript, and answers a truncated clip with a flag and a score, not a 500."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
from tiny_registry import TinyStore, post_rows, serving, train_cli

from ipguard.serving.load_test import post
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


#: small request limits for the server (its process inherits them), so "too big" is a few KB
LIMITS = {
    "IPGUARD_MAX_VIDEO_ROWS": "4",
    "IPGUARD_MAX_VIDEO_BYTES": "400000",
    "IPGUARD_MAX_VIDEO_SECONDS": "30",
}


@pytest.fixture(scope="module")
def server(store: TinyStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with pytest.MonkeyPatch.context() as env:
        for name, value in LIMITS.items():
            env.setenv(name, value)
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
    local_predictor = VideoPredictor.load(store.model_dir)
    assert local_predictor.frame_tower == "onnx"  # training exported the frame tower
    local = local_predictor.score(rows)
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


def _refusal(url: str, rows: pd.DataFrame) -> str:
    clean = rows.astype(object).where(rows.notna(), None)
    body = json.dumps({"dataframe_split": clean.to_dict(orient="split", index=False)})
    status, answer = post(url, body.encode())
    assert status == 400, (status, answer[:300])
    return json.loads(answer)["message"]


def test_requests_over_the_video_limits_get_a_400_naming_the_limit(
    server: str, store: TinyStore, tmp_path: Path
) -> None:
    clip = base64.b64encode(_clip(store, "V00003").read_bytes()).decode()
    message = _refusal(server, pd.DataFrame({"video_id": list("abcde"), "video_b64": [clip] * 5}))
    assert "request has 5 videos, over the limit of 4" in message
    assert "IPGUARD_MAX_VIDEO_ROWS" in message

    noise = base64.b64encode(np.random.default_rng(0).bytes(420_000)).decode()
    message = _refusal(
        server, pd.DataFrame({"video_id": ["ok", "huge"], "video_b64": [clip, noise]})
    )
    assert (
        "row 1 (video_id 'huge'): video_b64 is" in message and "IPGUARD_MAX_VIDEO_BYTES" in message
    )

    long = tmp_path / "long.mp4"  # 40 s of a tiny still: a few KB, over the 30 s limit
    with av.open(str(long), "w") as container:
        stream = container.add_stream("libx264", rate=2)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        still = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
        for _ in range(80):
            container.mux(stream.encode(still))
        container.mux(stream.encode())
    message = _refusal(server, pd.DataFrame({"video_id": ["long"], "video_path": [str(long)]}))
    assert "row 0 (video_id 'long'): the video is 40.0 s long" in message
    assert "IPGUARD_MAX_VIDEO_SECONDS" in message

    # and the server goes on scoring what fits
    (after,) = post_rows(server, pd.DataFrame({"video_id": ["after"], "video_b64": [clip]}))
    assert after["score"] is not None and after["flags"] == "transcript_empty"
