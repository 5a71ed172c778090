"""Decoding and frame sampling of videos: what is kept, when, and what a broken file gives."""

from __future__ import annotations

import base64
import io
import threading
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

from ipguard.data.video_frames import (
    SamplingConfig,
    VideoFrameDataset,
    collate_videos,
    iter_windows,
    sample_frames,
    sample_frames_base64,
)

RED = (200, 30, 30)
BLUE = (30, 30, 200)


def _frame(index: int, colour: tuple[int, int, int], width: int, height: int) -> np.ndarray:
    """A flat colour with a white bar that moves a little every frame (a panning camera)."""
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = colour
    bar = (index * 2) % width
    image[:, bar : bar + 3] = 255
    return image


def encode_clip(
    path: Path | io.BytesIO,
    *,
    seconds: float = 3.0,
    fps: int = 10,
    width: int = 48,
    height: int = 32,
    colour_at: Callable[[float], tuple[int, int, int]] = lambda t: RED,
    container_format: str | None = None,
    options: dict[str, str] | None = None,
    codec: str = "libx264",
    image_at: Callable[[int], np.ndarray] | None = None,
) -> None:
    """Write a tiny H.264 (or ``codec``) clip whose colour at second t is ``colour_at(t)``,
    or whose frame ``i`` is ``image_at(i)``."""
    with av.open(path, "w", format=container_format, options=options or {}) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(round(seconds * fps)):
            image = (
                image_at(index)
                if image_at
                else _frame(index, colour_at(index / fps), width, height)
            )
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _cut_at(seconds: float) -> Callable[[float], tuple[int, int, int]]:
    return lambda t: RED if t < seconds else BLUE


class ChunkedPipe(io.RawIOBase):
    """A non-seekable reader that hands out at most ``chunk`` bytes per read, like a pipe."""

    def __init__(self, data: bytes, chunk: int = 1500) -> None:
        self.data, self.chunk, self.position = data, chunk, 0
        self.reads = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        size = min(len(buffer), self.chunk, len(self.data) - self.position)
        buffer[:size] = self.data[self.position : self.position + size]
        self.position += size
        self.reads += 1
        return size


@pytest.fixture
def red_clip(tmp_path: Path) -> Path:
    path = tmp_path / "red.mp4"
    encode_clip(path, seconds=3.0, fps=10)
    return path


def test_uniform_sampling_keeps_one_frame_per_period_at_the_right_times(red_clip: Path) -> None:
    config = SamplingConfig(rate=2.0, scene_threshold=None)
    sampled = sample_frames(red_clip, config)
    assert sampled.flags == ()
    assert sampled.reasons == ["uniform"] * 6
    assert sampled.timestamps == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.5], abs=1e-6)
    assert sampled.fps == pytest.approx(10.0)
    assert sampled.duration_s == pytest.approx(3.0, abs=0.11)
    assert sampled.frames_decoded == 30
    assert all(f.shape == (32, 48, 3) and f.dtype == np.uint8 for f in sampled.frames)


def test_kept_frames_carry_the_videos_pixels(red_clip: Path) -> None:
    sampled = sample_frames(red_clip, SamplingConfig(rate=1.0, scene_threshold=None))
    mean = sampled.frames[0][:, 10:40].reshape(-1, 3).mean(axis=0)
    assert np.abs(mean - np.array(RED)).max() < 12


def test_a_colour_cut_is_kept_as_a_scene_change_at_the_cut(tmp_path: Path) -> None:
    path = tmp_path / "cut.mp4"
    encode_clip(path, seconds=3.0, fps=10, colour_at=_cut_at(1.3))
    sampled = sample_frames(path, SamplingConfig(rate=1.0, scene_threshold=0.3))
    scenes = [t for t, r in zip(sampled.timestamps, sampled.reasons, strict=True) if r == "scene"]
    assert scenes == pytest.approx([1.3], abs=1e-6)
    assert sampled.timestamps == sorted(sampled.timestamps)
    scene_frame = sampled.frames[sampled.reasons.index("scene")]
    assert scene_frame[..., 2].mean() > scene_frame[..., 0].mean()  # the blue shot


def _pan(
    cut_frame: int | None = None, *, columns: int = 40, speed: int = 6
) -> Callable[[int], np.ndarray]:
    """A fast pan (``speed`` px a frame) over a coarse red texture (a large, steady change every
    frame); from ``cut_frame`` on, a blue texture (a cut). The texture lasts
    ``(8 * columns - 64) / speed`` frames."""
    rng = np.random.default_rng(3)
    red = rng.integers(0, 100, (8, columns, 3), dtype=np.uint8)
    red[..., 0] += 155
    blue = red[..., ::-1].copy()
    scenes = [texture.repeat(8, 0).repeat(8, 1) for texture in (red, blue)]

    def image_at(index: int) -> np.ndarray:
        texture = scenes[1 if cut_frame is not None and index >= cut_frame else 0]
        return np.ascontiguousarray(texture[:, index * speed : index * speed + 64])

    return image_at


def test_a_fast_pan_is_not_a_scene_change_but_a_cut_during_it_is(tmp_path: Path) -> None:
    config = SamplingConfig(rate=1.0, scene_threshold=0.07)
    for name, cut in (("pan.mp4", None), ("pan_cut.mp4", 23)):
        encode_clip(tmp_path / name, seconds=4.0, fps=10, width=64, height=64, image_at=_pan(cut))
    assert "scene" not in sample_frames(tmp_path / "pan.mp4", config).reasons
    with_cut = sample_frames(tmp_path / "pan_cut.mp4", config)
    scenes = [t for t, r in zip(with_cut.timestamps, with_cut.reasons, strict=True) if r == "scene"]
    assert scenes == pytest.approx([2.3])


def _times(sampled: object, reason: str) -> list[float]:
    return [t for t, r in zip(sampled.timestamps, sampled.reasons, strict=True) if r == reason]  # type: ignore[attr-defined]


def test_skipping_non_reference_frames_keeps_the_cuts_and_the_grid(tmp_path: Path) -> None:
    """A 30 fps H.264 clip with B-frames, a fast pan and a cut: decoding only the frames others
    refer to finds the same cut and the same uniform grid, each a frame or two later at most,
    takes no pan for a cut, and does not read the skipped tail as a truncated file."""
    fps, step = 30, 1 / 30
    for name, cut in (("pan30.mp4", None), ("pan30_cut.mp4", 70)):
        encode_clip(
            tmp_path / name,
            seconds=4.0,
            fps=fps,
            width=64,
            height=64,
            image_at=_pan(cut, columns=56, speed=3),
            options={"movflags": "+faststart"},  # index first: a cut-off copy still opens
        )
    every = SamplingConfig(rate=1.0, scene_threshold=0.1, skip_frames="none")
    skipping = SamplingConfig(rate=1.0, scene_threshold=0.1, skip_frames="nonref")
    full, skipped = (sample_frames(tmp_path / "pan30_cut.mp4", c) for c in (every, skipping))
    assert full.frames_decoded == 120
    assert skipped.frames_decoded < 0.75 * full.frames_decoded  # B-frames were not decoded
    assert full.flags == skipped.flags == ()
    assert _times(full, "scene") == pytest.approx([70 * step], abs=1e-6)
    (cut_seen,) = _times(skipped, "scene")
    assert 70 * step - 1e-6 <= cut_seen <= 72 * step + 1e-6
    grid, seen = _times(full, "uniform"), _times(skipped, "uniform")
    assert len(seen) == len(grid) == 4
    assert all(a - 1e-6 <= b <= a + 2 * step + 1e-6 for a, b in zip(grid, seen, strict=True))
    for config in (every, skipping):
        assert "scene" not in sample_frames(tmp_path / "pan30.mp4", config).reasons
    auto = sample_frames(tmp_path / "pan30_cut.mp4", SamplingConfig(scene_threshold=0.1))
    assert auto.frames_decoded == skipped.frames_decoded  # auto skips at 30 fps
    data = (tmp_path / "pan30_cut.mp4").read_bytes()
    assert sample_frames(data[: len(data) // 2], skipping).flags == ("video_truncated",)


def test_over_the_cap_scene_changes_stay_and_uniform_frames_thin_evenly(tmp_path: Path) -> None:
    path = tmp_path / "long.mp4"
    encode_clip(path, seconds=4.0, fps=10, colour_at=_cut_at(2.25))
    sampled = sample_frames(path, SamplingConfig(rate=10.0, scene_threshold=0.3, max_frames=6))
    assert 3 <= len(sampled.frames) <= 6
    assert "scene" in sampled.reasons
    uniform = [
        t for t, r in zip(sampled.timestamps, sampled.reasons, strict=True) if r == "uniform"
    ]
    gaps = np.diff(uniform)
    assert uniform[0] == 0.0
    assert np.allclose(gaps, gaps[0], atol=1e-6)  # still a regular grid, just coarser


def test_a_long_clip_keeps_at_most_max_frames_shrunk_to_max_side(tmp_path: Path) -> None:
    path = tmp_path / "wide.mp4"
    encode_clip(path, seconds=4.0, fps=8, width=160, height=96)
    config = SamplingConfig(rate=8.0, scene_threshold=None, max_frames=5, max_side=40)
    sampled = sample_frames(path, config)
    assert sampled.frames_decoded == 32
    assert 3 <= len(sampled.frames) <= 5
    assert all(f.shape == (24, 40, 3) for f in sampled.frames)


def test_display_rotation_is_applied(tmp_path: Path) -> None:
    path = tmp_path / "phone.mp4"
    with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p"
        stream.set_display_rotation(90)
        for index in range(5):
            image = _frame(index, RED, 48, 32)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    sampled = sample_frames(path, SamplingConfig(scene_threshold=None))
    assert sampled.frames[0].shape == (48, 32, 3)


@pytest.mark.parametrize(
    ("name", "container_format", "options"),
    [
        ("moov_last.mp4", None, None),
        ("faststart.mp4", None, {"movflags": "faststart"}),
        ("clip.mkv", "matroska", None),
        ("clip.ts", "mpegts", None),
    ],
)
def test_a_file_cut_off_at_40_percent_gives_some_frames_or_a_flag_never_an_error(
    tmp_path: Path, name: str, container_format: str | None, options: dict[str, str] | None
) -> None:
    full = tmp_path / name
    encode_clip(
        full,
        seconds=4.0,
        fps=10,
        width=64,
        height=64,
        container_format=container_format,
        options=options,
    )
    data = full.read_bytes()
    cut = tmp_path / f"cut_{name}"
    cut.write_bytes(data[: int(len(data) * 0.4)])
    sampled = sample_frames(cut, SamplingConfig(rate=2.0, scene_threshold=None))
    if sampled.frames:
        assert sampled.frames_decoded < 40
        if name != "clip.ts":  # MPEG-TS declares no duration: a cut file looks like a short one
            assert sampled.flags == ("video_truncated",)
            assert "declared" in sampled.detail
    else:
        assert sampled.flags == ("video_unreadable",)
    assert str(cut) in sampled.detail


def test_garbage_bytes_a_missing_file_and_an_empty_path_are_flagged(tmp_path: Path) -> None:
    garbage = np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    (tmp_path / "garbage.mp4").write_bytes(garbage)
    assert sample_frames(tmp_path / "garbage.mp4").flags == ("video_unreadable",)
    assert sample_frames(garbage).flags == ("video_unreadable",)
    assert sample_frames(b"").flags == ("video_unreadable",)
    missing = sample_frames(tmp_path / "nope.mp4")
    assert missing.flags == ("video_missing",) and not missing.frames
    assert "nope.mp4" in missing.detail
    assert sample_frames("").flags == ("video_missing",)
    assert sample_frames(tmp_path).flags == ("video_unreadable",)


def test_an_audio_only_recording_is_flagged_as_having_no_video_stream(tmp_path: Path) -> None:
    path = tmp_path / "voice.mkv"
    with av.open(path, "w", format="matroska") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), dtype=np.int16), format="s16")
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    sampled = sample_frames(path)
    assert sampled.flags == ("video_no_stream",) and not sampled.frames


def test_a_playlist_is_not_followed_to_other_files(tmp_path: Path) -> None:
    encode_clip(tmp_path / "secret.ts", container_format="mpegts")
    playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nsecret.ts\n#EXT-X-ENDLIST\n"
    (tmp_path / "list.m3u8").write_text(playlist)
    sampled = sample_frames(tmp_path / "list.m3u8")
    assert sampled.flags == ("video_unreadable",) and not sampled.frames


def test_bytes_and_base64_give_the_same_frames_as_the_file(red_clip: Path) -> None:
    config = SamplingConfig(rate=1.0, scene_threshold=None)
    from_file = sample_frames(red_clip, config)
    data = red_clip.read_bytes()
    from_bytes = sample_frames(data, config)
    text = base64.b64encode(data).decode()
    from_b64 = sample_frames_base64("data:video/mp4;base64," + text, config)
    from_urlsafe = sample_frames_base64(base64.urlsafe_b64encode(data).decode().rstrip("="), config)
    for other in (from_bytes, from_b64, from_urlsafe):
        assert other.timestamps == from_file.timestamps
        assert all(
            np.array_equal(a, b) for a, b in zip(other.frames, from_file.frames, strict=True)
        )
    assert sample_frames_base64("").flags == ("video_missing",)
    assert sample_frames_base64("not base64 at all!").flags == ("video_unreadable",)


def test_sampling_config_rejects_bad_values_naming_the_field() -> None:
    for kwargs, field in [
        ({"rate": 0}, "rate"),
        ({"scene_threshold": 1.5}, "scene_threshold"),
        ({"max_frames": 0}, "max_frames"),
        ({"max_frames": 2.5}, "max_frames"),
        ({"min_gap_s": -1}, "min_gap_s"),
        ({"max_side": 4}, "max_side"),
        ({"rate": float("nan")}, "rate"),
        ({"skip_frames": "NONKEY"}, "skip_frames"),
    ]:
        with pytest.raises(ValueError, match=f"SamplingConfig.{field}"):
            SamplingConfig(**kwargs)  # type: ignore[arg-type]


def test_iter_windows_reads_a_chunked_pipe_in_order(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    encode_clip(buffer, seconds=4.0, fps=10, colour_at=_cut_at(2.3), container_format="mpegts")
    pipe = ChunkedPipe(buffer.getvalue())
    config = SamplingConfig(rate=2.0, scene_threshold=0.3)
    windows = list(iter_windows(pipe, 1.0, config, container_format="mpegts"))
    assert [w.index for w in windows] == [0, 1, 2, 3]
    assert [w.start_s for w in windows] == [0.0, 1.0, 2.0, 3.0]
    times = [t for w in windows for t in w.timestamps]
    assert times == sorted(times) and len(times) == len(set(times))
    for window in windows:
        assert all(window.start_s <= t < window.end_s for t in window.timestamps)
        assert window.flags == ()
    assert [len(w.timestamps) for w in windows] == [2, 2, 3, 2]
    assert windows[2].reasons.count("scene") == 1
    assert windows[2].timestamps[windows[2].reasons.index("scene")] == pytest.approx(2.3)
    assert pipe.reads > 10


def test_iter_windows_yields_a_window_before_the_stream_has_ended() -> None:
    buffer = io.BytesIO()
    encode_clip(buffer, seconds=6.0, fps=10, width=64, height=64, container_format="mpegts")
    data = buffer.getvalue()
    import os

    read_end, write_end = os.pipe()
    half = len(data) // 2

    def feed() -> None:
        with os.fdopen(write_end, "wb") as writer:
            writer.write(data[:half])
            writer.flush()
            time.sleep(1.0)
            writer.write(data[half:])

    feeder = threading.Thread(target=feed)
    started = time.monotonic()
    feeder.start()
    with os.fdopen(read_end, "rb") as reader:
        windows = iter_windows(
            reader, 1.0, SamplingConfig(scene_threshold=None), container_format="mpegts"
        )
        first = next(windows)
        first_at = time.monotonic() - started
        rest = list(windows)
    feeder.join()
    assert first.index == 0 and first.timestamps == [0.0]
    assert first_at < 0.9  # before the second half of the stream was written
    assert [w.index for w in rest] == [1, 2, 3, 4, 5]


def test_iter_windows_on_an_unreadable_stream_yields_one_flagged_window() -> None:
    windows = list(iter_windows(ChunkedPipe(b"\x00" * 3000), 1.0))
    assert len(windows) == 1
    assert windows[0].flags == ("video_unreadable",) and not windows[0].frames


def _manifest(tmp_path: Path) -> pd.DataFrame:
    encode_clip(tmp_path / "a.mp4", seconds=2.0, fps=8)
    encode_clip(tmp_path / "b.mp4", seconds=3.0, fps=8, colour_at=_cut_at(1.5))
    (tmp_path / "broken.mp4").write_bytes(b"this is not a video")
    return pd.DataFrame(
        {
            "video_id": ["a", "b", "broken", "gone"],
            "video_path": ["a.mp4", "b.mp4", "broken.mp4", "gone.mp4"],
            "transcript": ["hello", None, "1:1 same factory", ""],
            "label": ["genuine", "infringing", "infringing", "genuine"],
        }
    )


def test_dataset_pads_frames_masks_them_and_flags_bad_videos(tmp_path: Path) -> None:
    config = SamplingConfig(rate=1.0, scene_threshold=0.3, max_frames=4, max_side=64)
    dataset = VideoFrameDataset(_manifest(tmp_path), tmp_path, config=config, image_size=32)
    good = dataset[1]
    assert good["frames"].shape == (4, 3, 32, 32)
    assert good["frame_mask"].tolist() == [True, True, True, True]
    assert good["timestamps"][:4].tolist() == pytest.approx([0.0, 1.0, 1.5, 2.0])
    assert good["label"] == 1 and good["transcript"] == "" and good["flags"] == ()
    short = dataset[0]
    assert short["frame_mask"].tolist() == [True, True, False, False]
    assert torch.all(short["frames"][2:] == 0)
    for idx, flag in ((2, "video_unreadable"), (3, "video_missing")):
        item = dataset[idx]
        assert item["flags"] == (flag,)
        assert not item["frame_mask"].any() and torch.all(item["frames"] == 0)


def test_dataset_frames_are_preprocessed_like_listing_photos(tmp_path: Path) -> None:
    from ipguard.data.transforms import Preprocessing, build_eval_transform

    config = SamplingConfig(rate=1.0, scene_threshold=None, max_frames=2)
    dataset = VideoFrameDataset(_manifest(tmp_path), tmp_path, config=config, image_size=32)
    sampled = sample_frames(tmp_path / "a.mp4", config)
    expected = build_eval_transform(Preprocessing(image_size=32))(image=sampled.frames[0])["image"]
    assert torch.allclose(dataset[0]["frames"][0], expected)


def test_dataset_rejects_a_bad_label_naming_row_and_column(tmp_path: Path) -> None:
    frame = _manifest(tmp_path)
    frame.loc[2, "label"] = "fake"
    with pytest.raises(ValueError, match=r"row 2, column 'label'.*'fake'"):
        VideoFrameDataset(frame, tmp_path)


def test_unlabelled_rows_get_label_minus_one(tmp_path: Path) -> None:
    frame = _manifest(tmp_path).drop(columns=["label", "transcript"])
    dataset = VideoFrameDataset(frame, tmp_path, config=SamplingConfig(max_frames=2), image_size=16)
    assert dataset[0]["label"] == -1 and dataset[0]["transcript"] == ""


@pytest.mark.parametrize("workers", [0, 2])
def test_dataloader_batches_videos_decoded_in_workers(tmp_path: Path, workers: int) -> None:
    config = SamplingConfig(rate=1.0, scene_threshold=0.3, max_frames=4, decode_threads=1)
    dataset = VideoFrameDataset(_manifest(tmp_path), tmp_path, config=config, image_size=16)
    loader = DataLoader(dataset, batch_size=2, num_workers=workers, collate_fn=collate_videos)
    batches = list(loader)
    assert [b["frames"].shape for b in batches] == [(2, 4, 3, 16, 16)] * 2
    assert [vid for b in batches for vid in b["video_id"]] == ["a", "b", "broken", "gone"]
    assert torch.cat([b["label"] for b in batches]).tolist() == [0, 1, 1, 0]
    assert torch.cat([b["frame_mask"].sum(1) for b in batches]).tolist() == [2, 4, 0, 0]
    assert [f for b in batches for f in b["flags"]] == [
        (),
        (),
        ("video_unreadable",),
        ("video_missing",),
    ]
    assert batches[0]["transcript"] == ["hello", ""]
