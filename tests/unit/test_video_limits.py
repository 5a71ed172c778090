"""Limits of a video REST request: too many videos, a too-big clip, a too-long video or too many
frames are refused before decoding, naming the row and the variable; bad videos are not."""

from __future__ import annotations

import base64
from pathlib import Path

import pandas as pd
import pytest
from test_video_frames import encode_clip

from ipguard.data.video_frames import video_length
from ipguard.serving.request_limits import RequestTooLarge
from ipguard.serving.video_limits import (
    ENV_VIDEO_BYTES,
    ENV_VIDEO_FRAMES,
    ENV_VIDEO_ROWS,
    ENV_VIDEO_SECONDS,
    VideoLimits,
    check_video_request,
)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("limits")
    out = {"short": folder / "short.mp4", "long": folder / "long.mp4"}
    encode_clip(out["short"], seconds=2.0, fps=10)
    encode_clip(out["long"], seconds=12.0, fps=5)
    return out


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def test_a_video_declares_its_length_without_being_decoded(clips: dict[str, Path]) -> None:
    length = video_length(clips["long"])
    assert length is not None and length.seconds == pytest.approx(12.0, abs=0.21)
    assert length.frames == 60
    assert video_length(clips["long"].read_bytes()) == length
    assert video_length(b"not a video") is None


def test_too_many_videos_are_refused_naming_the_count_and_the_variable() -> None:
    frame = pd.DataFrame({"video_id": [f"v{i}" for i in range(5)], "video_b64": [""] * 5})
    with pytest.raises(RequestTooLarge, match=f"5 videos, over the limit of 4.*{ENV_VIDEO_ROWS}"):
        check_video_request(frame, VideoLimits(max_rows=4))
    check_video_request(frame, VideoLimits(max_rows=0))  # 0: no bound


def test_a_too_big_clip_is_refused_by_its_length_before_any_decoding(
    clips: dict[str, Path],
) -> None:
    small = _b64(clips["short"])
    frame = pd.DataFrame({"video_id": ["ok", "big"], "video_b64": [small, "A" * 40_000]})
    with pytest.raises(RequestTooLarge, match=rf"row 1 \(video_id 'big'\).*{ENV_VIDEO_BYTES}"):
        check_video_request(frame, VideoLimits(max_clip_bytes=20_000))
    check_video_request(frame.head(1), VideoLimits(max_clip_bytes=20_000))


def test_a_too_long_video_is_refused_by_path_and_as_a_clip(clips: dict[str, Path]) -> None:
    by_path = pd.DataFrame({"video_id": ["s", "l"], "video_path": [str(p) for p in clips.values()]})
    with pytest.raises(RequestTooLarge, match=rf"row 1 .* 12\.\d s long.*{ENV_VIDEO_SECONDS}"):
        check_video_request(by_path, VideoLimits(max_seconds=10))
    as_clip = pd.DataFrame({"video_b64": [_b64(clips["long"])], "video_path": [None]})
    with pytest.raises(RequestTooLarge, match=f"has 60 frames.*{ENV_VIDEO_FRAMES}"):
        check_video_request(as_clip, VideoLimits(max_frames=50))
    check_video_request(by_path, VideoLimits(max_seconds=13, max_frames=60))


def test_unreadable_or_missing_videos_are_left_to_the_predictor_to_flag(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "video_b64": ["not base64!", base64.b64encode(b"garbage").decode(), None],
            "video_path": [None, None, str(tmp_path / "missing.mp4")],
        }
    )
    check_video_request(frame, VideoLimits(max_seconds=1, max_frames=1))


def test_all_text_together_has_the_listing_pyfuncs_bound() -> None:
    frame = pd.DataFrame({"video_id": ["a", "b"], "transcript": ["x" * 600, "y" * 600]})
    with pytest.raises(RequestTooLarge, match="IPGUARD_MAX_REQUEST_BYTES"):
        check_video_request(frame, VideoLimits(max_request_bytes=1000))


def test_limits_come_from_the_environment_and_bad_values_are_named() -> None:
    limits = VideoLimits.from_env(
        {ENV_VIDEO_ROWS: "3", ENV_VIDEO_SECONDS: "90", "IPGUARD_MAX_REQUEST_BYTES": "1_000"}
    )
    assert (limits.max_rows, limits.max_seconds, limits.max_request_bytes) == (3, 90, 1000)
    assert limits.max_clip_bytes == VideoLimits().max_clip_bytes
    for value in ("lots", "-1"):
        with pytest.raises(ValueError, match=ENV_VIDEO_FRAMES):
            VideoLimits.from_env({ENV_VIDEO_FRAMES: value})


def test_a_bad_listing_limit_does_not_stop_the_video_server() -> None:
    # IPGUARD_MAX_ROWS / IPGUARD_MAX_IMAGE_BYTES are the listing server's, not read here
    limits = VideoLimits.from_env({"IPGUARD_MAX_ROWS": "lots", "IPGUARD_MAX_IMAGE_BYTES": "-1"})
    assert limits == VideoLimits()


def test_over_rest_a_request_over_the_limits_is_mlflows_invalid_parameter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mlflow.exceptions import MlflowException

    from ipguard.serving.request_limits import SERVING_MARKER, checked_request

    frame = pd.DataFrame({"video_id": ["a", "b", "c"]})

    def check(f: pd.DataFrame) -> None:
        check_video_request(f, VideoLimits(max_rows=2))

    assert checked_request(frame.to_dict("list"), check).equals(frame)  # in-process: no limit
    monkeypatch.setenv(SERVING_MARKER, "true")
    with pytest.raises(MlflowException, match=ENV_VIDEO_ROWS) as caught:
        checked_request(frame, check)
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"
    assert checked_request(frame.head(2), check).equals(frame.head(2))
