"""The video manifest: typed rows, errors by file/row/column, quarantine, and flagged files."""

from __future__ import annotations

import codecs
import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest

from ipguard.data.errors import ManifestError
from ipguard.data.video_columns import PROBE_COLUMNS
from ipguard.data.video_probe import probe_video
from ipguard.data.videos import (
    format_spans,
    load_video_manifest,
    parse_listing_ids,
    parse_spans,
)

FPS = 4
FRAMES = 12  # 3 s


def _write_clip(path: Path, *, faststart: bool = True, frames: int = FRAMES) -> Path:
    """A tiny H.264 clip whose content changes every frame (so no two frames are equal)."""
    options = {"movflags": "+faststart"} if faststart else {}
    rng = np.random.default_rng(len(path.name))
    with av.open(str(path), "w", format="mp4", options=options) as container:
        stream = container.add_stream("libx264", rate=FPS, options={"threads": "1"})
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            pixels = rng.integers(0, 255, size=(32, 32, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def _write_audio_only(path: Path) -> Path:
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=8000)
        for i in range(4):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), dtype=np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = 8000, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def _truncate(source: Path, target: Path, share: float = 0.4) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * share)])
    return target


@pytest.fixture
def clips(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "clips"
    folder.mkdir()
    good = _write_clip(folder / "good.mp4")
    index_last = _write_clip(folder / "index_last.mp4", faststart=False)
    return {
        "good": good,
        "other": _write_clip(folder / "other.mp4"),
        "truncated": _truncate(good, folder / "truncated.mp4"),
        "truncated_index_last": _truncate(index_last, folder / "truncated_index_last.mp4"),
        "unreadable": _write_bytes(folder / "unreadable.mp4", b"<html>404 not found</html>"),
        "audio": _write_audio_only(folder / "audio.mp4"),
    }


def _write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _csv(path: Path, header: str, *rows: str) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


HEADER = "video_id,video_path,transcript,listing_ids,label,infringement_spans,kind,market"


def test_a_valid_manifest_comes_back_typed(tmp_path: Path, clips: dict[str, Path]) -> None:
    manifest = _csv(
        tmp_path / "videos.csv",
        HEADER,
        'v1,clips/good.mp4,"réplica 1:1, igual al original",L1;L2,infringing,2-3;0.5-1.25,'
        "short_video,MX",
        "v2,clips/other.mp4,,,genuine,,livestream,US",
    )
    result = load_video_manifest(manifest)
    assert result.summary() == "rows_in=2 rows_valid=2 rows_rejected=0"
    valid = result.valid.set_index("video_id")
    assert valid.loc["v1", "infringement_spans"] == [(0.5, 1.25), (2.0, 3.0)]
    assert valid.loc["v1", "listing_ids"] == ["L1", "L2"]
    assert valid.loc["v2", "infringement_spans"] is None
    assert valid.loc["v1", "transcript"].startswith("réplica")
    assert valid["video_flag"].isna().all()
    assert valid.loc["v1", "frame_count"] == FRAMES
    assert valid.loc["v1", "duration_s"] == pytest.approx(FRAMES / FPS)
    assert valid.loc["v1", "fps"] == pytest.approx(FPS)
    assert int(valid.loc["v1", "width"]) == 32
    assert result.video_file(valid.loc["v1", "video_path"]) == clips["good"]
    assert result.videos_checked == 2


def test_every_bad_row_is_named_by_file_row_and_column(
    tmp_path: Path, clips: dict[str, Path]
) -> None:
    manifest = _csv(
        tmp_path / "videos.csv",
        HEADER,
        "v1,clips/good.mp4,,,infringing,1-2,short_video,US",
        "v1,clips/other.mp4,,,infringing,,short_video,US",  # duplicate id
        "v3,,,,genuine,,short_video,US",  # no path
        "v4,clips/good.mp4,,,infringing,2.5-1,short_video,US",  # end before start
        "v5,../outside.mp4,,,genuine,,short_video,US",  # escapes the folder
        "v6,clips/good.mp4,,,fake,,short_video,US",  # unknown label
        "v7,clips/good.mp4,,,infringing,-1-2,short_video,US",  # negative start
        "v8,clips/good.mp4,,,infringing,1-9,short_video,US",  # past the 3 s of the clip
        "v9,clips/good.mp4,,,genuine,1-2,Short_Video,US",  # spans on genuine, bad kind
        "v10,clips/good.mp4,,L1;;L2,genuine,,short_video,UK",  # empty id, bad market
    )
    with pytest.raises(ManifestError) as caught:
        load_video_manifest(manifest)
    found = {(p.row, p.column) for p in caught.value.problems}
    assert found == {
        (2, "video_id"),
        (3, "video_path"),
        (4, "infringement_spans"),
        (5, "video_path"),
        (6, "label"),
        (7, "infringement_spans"),
        (8, "infringement_spans"),
        (9, "infringement_spans"),
        (9, "kind"),
        (10, "listing_ids"),
        (10, "market"),
    }
    by_place = {(p.row, p.column): p for p in caught.value.problems}
    assert all(p.file == "videos.csv" for p in caught.value.problems)
    assert by_place[(2, "video_id")].line == 3
    assert "first seen at row 1" in by_place[(2, "video_id")].reason
    assert "escapes the manifest folder" in by_place[(5, "video_path")].reason
    assert "ends after the video's 3 s" in by_place[(8, "infringement_spans")].reason
    assert "given for a genuine video" in by_place[(9, "infringement_spans")].reason
    assert "did you mean 'short_video'" in by_place[(9, "kind")].reason
    assert "did you mean 'GB'" in by_place[(10, "market")].reason
    assert "videos.csv row 6 (line 7), column 'label'" in str(caught.value)


def test_a_teams_own_label_values_are_mapped(tmp_path: Path, clips: dict[str, Path]) -> None:
    manifest = _csv(
        tmp_path / "videos.csv",
        "video_id,video_path,label",
        "v1,clips/good.mp4,FAKE",
        "v2,clips/other.mp4,ok",
    )
    result = load_video_manifest(manifest, label_values={"infringing": ["fake"], "genuine": ["ok"]})
    assert result.valid["label"].tolist() == ["infringing", "genuine"]
    with pytest.raises(ManifestError, match="or a value of label_values"):
        load_video_manifest(manifest, label_values={"infringing": ["fake"]})


def test_quarantine_keeps_every_row_accounted_for(tmp_path: Path, clips: dict[str, Path]) -> None:
    manifest = _csv(
        tmp_path / "videos.csv",
        HEADER,
        "v1,clips/good.mp4,,,infringing,1-2,short_video,US",
        "v1,clips/other.mp4,,,genuine,,short_video,US",
        "v3,/abs/path.mp4,,,genuine,,short_video,US",
        "v4,clips/other.mp4,,,genuine,,short_video,US",
    )
    rejects = tmp_path / "out" / "rejects.csv"
    result = load_video_manifest(manifest, on_error="quarantine", rejects_path=rejects)
    assert result.rows_in == result.rows_valid + result.rows_rejected == 4
    assert result.valid["video_id"].tolist() == ["v1", "v4"]
    written = pd.read_csv(rejects, dtype=str)
    assert written["_source_row"].tolist() == ["2", "3"]
    assert "duplicate video_id" in written["reject_reason"].iloc[0]
    assert "is absolute" in written["reject_reason"].iloc[1]
    assert [p.row for p in result.problems] == [2, 3]


def test_missing_required_column_is_raised_in_any_mode(tmp_path: Path) -> None:
    manifest = _csv(tmp_path / "videos.csv", "video_id,path,label", "v1,a.mp4,genuine")
    with pytest.raises(ManifestError, match="missing required column 'video_path'"):
        load_video_manifest(manifest, on_error="quarantine")


UNUSABLE = {
    "truncated": "video_truncated",
    "truncated_index_last": "video_truncated",
    "unreadable": "video_unreadable",
    "audio": "video_no_stream",
    "missing": "video_missing",
}


@pytest.mark.parametrize(("name", "flag"), sorted(UNUSABLE.items()))
def test_probe_flags_unusable_files_without_raising(
    clips: dict[str, Path], tmp_path: Path, name: str, flag: str
) -> None:
    path = clips.get(name, tmp_path / "clips" / "missing.mp4")
    probe = probe_video(path)
    assert (probe.ok, probe.flag) == (False, flag)
    assert str(path) in probe.detail


def test_probe_reads_what_a_whole_clip_declares(clips: dict[str, Path]) -> None:
    probe = probe_video(clips["good"])
    assert probe.ok, probe.detail
    assert (probe.frames, probe.width, probe.height, probe.codec) == (FRAMES, 32, 32, "h264")
    assert probe.duration_s == pytest.approx(FRAMES / FPS)


def _unusable_manifest(tmp_path: Path) -> Path:
    names = ["good", *UNUSABLE]
    rows = [f"v{i},clips/{n}.mp4,hola,,genuine,,short_video,US" for i, n in enumerate(names)]
    return _csv(tmp_path / "videos.csv", HEADER, *rows)


def test_unusable_videos_are_kept_and_flagged_by_default(
    tmp_path: Path, clips: dict[str, Path]
) -> None:
    result = load_video_manifest(_unusable_manifest(tmp_path))
    assert result.rows_valid == 1 + len(UNUSABLE)
    flags = result.valid.set_index("video_path")["video_flag"]
    assert flags.isna()["clips/good.mp4"]
    assert {f"clips/{n}.mp4": flags[f"clips/{n}.mp4"] for n in UNUSABLE} == {
        f"clips/{n}.mp4": f for n, f in UNUSABLE.items()
    }
    assert result.videos_unusable_total == len(UNUSABLE)
    assert all("kept, screened without its video" in w.reason for w in result.warnings)
    assert result.summary().endswith(f"videos_unusable={len(UNUSABLE)}")


def test_unusable_videos_are_set_aside_when_asked(tmp_path: Path, clips: dict[str, Path]) -> None:
    manifest = _unusable_manifest(tmp_path)
    result = load_video_manifest(manifest, on_error="quarantine", unusable_videos="reject")
    assert result.valid["video_path"].tolist() == ["clips/good.mp4"]
    assert result.rows_rejected == len(UNUSABLE)
    assert result.rejected["reject_reason"].str.contains("unusable_videos=reject").all()
    with pytest.raises(ManifestError, match="video_truncated"):
        load_video_manifest(manifest, unusable_videos="reject")


def test_without_check_videos_no_file_is_opened(tmp_path: Path) -> None:
    manifest = _csv(
        tmp_path / "videos.csv", HEADER, "v1,clips/nowhere.mp4,,,infringing,1-200,short_video,US"
    )
    result = load_video_manifest(manifest, check_videos=False)
    assert result.rows_valid == 1 and result.videos_checked == 0
    assert result.valid[list(PROBE_COLUMNS)].isna().all(axis=None)


def test_other_formats_and_dialects_read_the_same(tmp_path: Path, clips: dict[str, Path]) -> None:
    records = [
        {"video_id": "v1", "video_path": "clips/good.mp4", "label": "infringing",
         "infringement_spans": [[0.5, 1.0]], "listing_ids": ["L7", 8]},
        {"video_id": "v2", "video_path": "clips/other.mp4", "label": "genuine"},
    ]  # fmt: skip
    jsonl = tmp_path / "videos.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    parquet = tmp_path / "videos.parquet"
    typed = pd.DataFrame(records)
    typed.at[0, "listing_ids"] = ["L7", "8"]  # Parquet lists hold one type
    typed.to_parquet(parquet)
    semicolon = tmp_path / "excel.csv"  # as Excel writes it where ',' is the decimal mark
    text = (
        "video_id;video_path;label;infringement_spans;listing_ids\n"
        'v1;clips/good.mp4;infringing;"[[0.5, 1]]";"L7;8"\n'
        "v2;clips/other.mp4;genuine;;\n"
    )
    semicolon.write_bytes(codecs.BOM_UTF8 + text.encode("utf-8"))
    for path in (jsonl, parquet, semicolon):
        valid = load_video_manifest(path).valid
        assert valid["infringement_spans"].iloc[0] == [(0.5, 1.0)], path.name
        assert valid["listing_ids"].iloc[0] == ["L7", "8"], path.name


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3.5-8.0;12-14.2", [(3.5, 8.0), (12.0, 14.2)]),
        ("12-14 ; 1 - 2", [(1.0, 2.0), (12.0, 14.0)]),
        ("[[3.5, 8]]", [(3.5, 8.0)]),
        ("[]", []),
        ([[0, 1.5]], [(0.0, 1.5)]),
    ],
)
def test_spans_parse_from_text_and_json(text: object, expected: list) -> None:
    assert parse_spans(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("3-2", "ends at or before its start"),
        ("-1-2", "starts before 0 s"),
        ("abc", "is not START-END"),
        ("1-2;;3-4", "empty span"),
        ("[[1, 2, 3]]", "is not a [start, end] pair"),
        ("[[1, 'x']]", "not valid JSON"),
        ('[[1, "x"]]', "is not a number of seconds"),
        ("[[1, 2]", "not valid JSON"),
    ],
)
def test_bad_spans_say_why(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        parse_spans(text)


def test_spans_written_read_back_the_same() -> None:
    spans = [(0.125, 3.5), (12.0, 14.25)]
    assert format_spans(spans) == "0.125-3.5;12-14.25"
    assert parse_spans(format_spans(spans)) == spans


def test_listing_ids_parse_from_text_and_json() -> None:
    assert parse_listing_ids(" L1 ; L2 ") == ["L1", "L2"]
    assert parse_listing_ids('["L1", 2]') == ["L1", "2"]
    with pytest.raises(ValueError, match="empty listing id"):
        parse_listing_ids("L1;;L2")


def test_the_probe_does_not_follow_a_playlist_to_other_files(tmp_path: Path) -> None:
    """An uploaded .m3u8 would make FFmpeg read the local files it names."""
    from ipguard.data.video_probe import probe_video

    secret = tmp_path / "secret.ts"
    with av.open(str(secret), "w", format="mpegts") as out:
        stream = out.add_stream("mpeg4", rate=8)
        stream.width = stream.height = 32
        for _ in range(8):
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nsecret.ts\n#EXT-X-ENDLIST\n"
    (tmp_path / "list.m3u8").write_text(playlist)
    probe = probe_video(tmp_path / "list.m3u8")
    assert not probe.ok and probe.flag == "video_unreadable"
