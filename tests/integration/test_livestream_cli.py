"""``ipguard-livestream`` end to end: a video model trained and registered by the real CLI, then
a demo livestream screened by the command from a file, from stdin and by registry URI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_registry import SUMMARY, subprocess_env

from ipguard.demo.videos import ensure_demo_videos
from ipguard.serving.livestream import LivestreamEvent
from ipguard.serving.stream_policy import StreamPolicy

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EVENT_KEYS = set(LivestreamEvent.__dataclass_fields__)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A tiny video model (tiny_cnn frames, 1 epoch on the small demo clips), registered."""
    home = tmp_path_factory.mktemp("home")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ipguard.cli",
            "experiment=video",
            "debug=fast",
            "model.image_backbone=tiny_cnn",
            "seed=3",
        ],
        env=subprocess_env(home),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    match = SUMMARY.search(proc.stdout)
    assert match and match["name"] == "ipguard-video", proc.stdout[-2000:]
    (model_dir,) = (home / "runs").glob("*/*/model")  # runs/<task_name>/<time>/model
    return {**match.groupdict(), "home": str(home), "model_dir": str(model_dir)}


@pytest.fixture(scope="module")
def livestream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 20-second demo livestream (one of two in a small demo set)."""
    demo = ensure_demo_videos(
        tmp_path_factory.mktemp("streams"), n=1, seed=5, livestreams=2, livestream_seconds=20.0
    )
    return demo.clips_dir / "V00002.mp4"


def _run(
    trained: dict[str, str], *args: str, stdin: bytes | None = None, **env: str
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "ipguard.commands.livestream", *args],
        env=subprocess_env(Path(trained["home"]), **env),
        input=stdin,
        capture_output=True,
        timeout=300,
    )


def _events(stdout: bytes) -> list[dict[str, object]]:
    lines = stdout.decode().splitlines()
    assert lines, "no event written"
    return [json.loads(line) for line in lines]


def test_a_livestream_file_gives_one_json_line_per_window_and_a_final_one(
    trained: dict[str, str], livestream: Path, tmp_path: Path
) -> None:
    never = StreamPolicy(halt_threshold=2.0, review_threshold=2.0, k=3, n=3)  # scores are <= 1
    never.save(tmp_path / "never.json")
    proc = _run(
        trained, trained["model_dir"], str(livestream), "--policy", str(tmp_path / "never.json"),
        "--window-s", "4", "--stream-id", "shop-42",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    events = _events(proc.stdout)
    assert all(set(e) == EVENT_KEYS for e in events)
    windows = [e for e in events if e["event"] == "window"]
    assert [e["window_index"] for e in windows] == list(range(len(windows))) and len(windows) == 5
    assert all(e["stream_id"] == "shop-42" and 0 <= e["score"] <= 1 for e in windows)
    assert all(e["decision"] == "continue" for e in windows)
    assert all(e["evidence_time_s"] is not None for e in windows)
    end = events[-1]
    assert end["event"] == "end" and end["final"] and end["stream_time_s"] == pytest.approx(20.0)
    assert "never.json" in proc.stderr.decode()


def test_the_command_stops_reading_at_a_halt_from_stdin(
    trained: dict[str, str], livestream: Path, tmp_path: Path
) -> None:
    eager = StreamPolicy(halt_threshold=0.0, review_threshold=0.0, k=1, n=1)  # halts at once
    eager.save(tmp_path / "eager.json")
    proc = _run(
        trained, trained["model_dir"], "-", "--format", "mp4", "--policy",
        str(tmp_path / "eager.json"), "--window-s", "2",
        stdin=livestream.read_bytes(),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    (halt,) = _events(proc.stdout)
    assert halt["decision"] == "halt" and halt["final"] and halt["stream_id"] == "stdin"
    assert halt["window_index"] == 0 and halt["halted_at_s"] == pytest.approx(2.0)


def test_a_registry_uri_and_the_models_own_policy(
    trained: dict[str, str], livestream: Path
) -> None:
    proc = _run(
        trained, "models:/ipguard-video@challenger", str(livestream), "--window-s", "5",
        MLFLOW_TRACKING_URI=trained["uri"],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert "policy from the model's listing policy" in proc.stderr.decode()
    events = _events(proc.stdout)
    assert events[-1]["final"]
    assert all(e["decision"] in ("halt", "review", "continue") for e in events)
    halts = [i for i, e in enumerate(events) if e["decision"] == "halt"]
    assert not halts or halts[0] == len(events) - 1, "nothing is read after a halt"


def test_a_model_that_is_not_there_is_named(trained: dict[str, str], livestream: Path) -> None:
    proc = _run(trained, "/no/such/model", str(livestream))
    assert proc.returncode == 1 and proc.stdout == b""
    assert "/no/such/model: expected a model folder with spec.json" in proc.stderr.decode()
