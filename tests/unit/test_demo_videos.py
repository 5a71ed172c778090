"""The demo clips: deterministic, decodable, truthful spans, a manifest that loads clean."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import av
import pytest
from omegaconf import OmegaConf

import ipguard.config  # noqa: F401 - registers the resolvers
from ipguard.data.videos import load_video_manifest
from ipguard.demo.videos import INFRINGING_SHARE, ensure_demo_videos, generate_demo_videos

TINY = {"size": 64, "seconds": (2.0, 3.0), "fps": 4, "livestreams": 2, "livestream_seconds": 8.0}
N = 10


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return generate_demo_videos(tmp_path_factory.mktemp("videos"), n=N, seed=3, **TINY)


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _truth(demo) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    with demo.truth_path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_same_seed_gives_the_same_bytes(demo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    again = generate_demo_videos(tmp_path / "again", n=N, seed=3, **TINY)
    assert _digests(again.root) == _digests(demo.root)
    other = generate_demo_videos(tmp_path / "other", n=N, seed=4, **TINY)
    clips = {k: v for k, v in _digests(other.root).items() if k.startswith("clips/")}
    assert all(_digests(demo.root)[k] != v for k, v in clips.items())


def test_the_manifest_loads_clean_and_every_clip_decodes(demo) -> None:  # type: ignore[no-untyped-def]
    result = load_video_manifest(demo.manifest_path)
    assert result.rows_rejected == 0 and result.videos_unusable_total == 0
    assert result.rows_valid == N + TINY["livestreams"]
    truth = {row["video_id"]: row for row in _truth(demo)}
    for row in result.valid.itertuples():
        with av.open(str(result.video_file(row.video_path))) as container:
            frames = [f for f in container.decode(video=0)]
        assert len(frames) == int(truth[row.video_id]["frames"]) == row.frame_count
        assert (frames[0].width, frames[0].height) == (TINY["size"], TINY["size"])
        assert row.duration_s == pytest.approx(len(frames) / TINY["fps"])


def test_spans_are_the_generators_and_inside_the_clip(demo) -> None:  # type: ignore[no-untyped-def]
    valid = load_video_manifest(demo.manifest_path).valid.set_index("video_id")
    for row in _truth(demo):
        spans = valid.loc[row["video_id"], "infringement_spans"]
        if row["span_start_s"]:
            assert row["label"] == "infringing" and row["visual_cue"]
            assert spans == [(float(row["span_start_s"]), float(row["span_end_s"]))]
            assert 0 <= spans[0][0] < spans[0][1] <= valid.loc[row["video_id"], "duration_s"]
        else:
            assert spans is None
            assert row["label"] == "genuine" or row["pattern"] == "transcript_only"


def test_labels_kinds_and_languages_are_mixed(demo) -> None:  # type: ignore[no-untyped-def]
    valid = load_video_manifest(demo.manifest_path).valid
    shorts = valid[valid["kind"] == "short_video"]
    assert (shorts["label"] == "infringing").sum() == round(N * INFRINGING_SHARE)
    lives = valid[valid["kind"] == "livestream"]
    assert sorted(lives["label"]) == ["genuine", "infringing"]
    transcript_only = [r for r in _truth(demo) if r["pattern"] == "transcript_only"]
    texts = valid.set_index("video_id")["transcript"]
    assert all(isinstance(texts[r["video_id"]], str) for r in transcript_only)


def test_a_livestream_shows_its_counterfeit_from_a_known_time(demo) -> None:  # type: ignore[no-untyped-def]
    infringing = [
        r for r in _truth(demo) if r["kind"] == "livestream" and r["label"] == "infringing"
    ]
    assert len(infringing) == 1
    row = infringing[0]
    assert float(row["span_start_s"]) > 0  # never from the first frame: time to decision
    assert float(row["duration_s"]) == TINY["livestream_seconds"]


def test_ensure_generates_once_and_again_when_a_clip_is_lost(tmp_path: Path) -> None:
    small = {**TINY, "livestreams": 0}
    first = ensure_demo_videos(tmp_path, n=2, seed=0, **small)
    stamp = (first.root / "videos.json").stat().st_mtime_ns
    assert ensure_demo_videos(tmp_path, n=2, seed=0, **small).root == first.root
    assert (first.root / "videos.json").stat().st_mtime_ns == stamp
    (first.clips_dir / "V00002.mp4").unlink()
    ensure_demo_videos(tmp_path, n=2, seed=0, **small)
    assert (first.clips_dir / "V00002.mp4").is_file()


def test_bad_parameters_say_which(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="parameter size: expected an even integer"):
        generate_demo_videos(tmp_path, n=1, size=63)
    with pytest.raises(ValueError, match="parameter seconds"):
        generate_demo_videos(tmp_path, n=1, seconds=(5.0, 2.0))
    with pytest.raises(TypeError, match="unknown keyword arguments"):
        ensure_demo_videos(tmp_path, n=1, colour=True)


def test_the_config_resolver_is_registered() -> None:
    assert OmegaConf.has_resolver("ipguard.demo_video_manifest")
    config = OmegaConf.create({"manifest": "${ipguard.demo_video_manifest:/nowhere,4,0,false}"})
    assert config.manifest is None
