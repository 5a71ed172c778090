"""Training windows of the video model (data.train_windows): each window lies inside its clip,
holds exactly the clip's frames in its time range, is labelled as the clip's spans say, and
turning the option on changes the training set only (whole-clip evaluation is the same)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ipguard.data.video_datamodule import VideoDataModule
from ipguard.data.video_embeddings import FrameFeatures, VideoFeatureDataset
from ipguard.data.video_frames import SamplingConfig, VideoFrameDataset
from ipguard.data.video_windows import WindowConfig, WindowDataset, draw_windows
from ipguard.demo.videos import DemoVideos, generate_demo_videos
from ipguard.models.video_classifier import VideoClassifier

SIZE = 32
SAMPLING = {"rate": 2.0, "scene_threshold": None, "max_frames": 24, "max_side": 48}


def _inside(times: np.ndarray, spans: list[tuple[float, float]]) -> bool:
    return any(s <= t < e for t in times for s, e in spans)


@pytest.mark.parametrize("seed", range(5))
def test_windows_lie_inside_the_clip_and_are_labelled_by_its_spans(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    duration = float(rng.uniform(12.0, 20.0))
    times = np.sort(rng.uniform(0.0, duration, size=int(rng.integers(6, 24)))).astype(np.float32)
    seen = float(times[len(times) // 2])  # a span holding at least this frame
    spans = [(seen - float(rng.uniform(0.0, 1.0)), seen + float(rng.uniform(0.01, 1.0)))]
    config = WindowConfig(min_s=2.0, max_s=8.0, per_clip=40)
    windows = draw_windows(3, times, duration, spans, 1, config, np.random.default_rng(seed))
    assert len(windows) == 40
    labels = set()
    for w in windows:
        assert w.clip == 3
        assert 0.0 <= w.start_s < w.end_s <= duration + 1e-6
        assert w.end_s - w.start_s <= config.max_s + 1e-6
        held = times[w.lo : w.hi]
        assert len(held) > 0
        # exactly the clip's frames in [start, end): none left out, none from outside
        assert np.array_equal(held, times[(times >= w.start_s) & (times < w.end_s)])
        assert w.label == int(_inside(held, spans))
        assert w.keeps_transcript is False  # untimed words are not placed in a window
        labels.add(w.label)
    assert labels == {0, 1}  # a 12-20 s clip with a short span gives windows of both kinds


def test_without_spans_a_window_keeps_the_clip_label_and_words() -> None:
    times = np.arange(0.0, 10.0, 0.5, dtype=np.float32)
    config = WindowConfig(per_clip=10)
    for label in (0, 1):
        windows = draw_windows(0, times, 10.0, None, label, config, np.random.default_rng(1))
        assert {(w.label, w.keeps_transcript) for w in windows} == {(label, True)}
    # spans given as [] (nothing visible): every window genuine
    empty = draw_windows(0, times, 10.0, [], 1, config, np.random.default_rng(1))
    assert {w.label for w in empty} == {0}
    # a clip without a frame gives no window (it still trains whole)
    none = draw_windows(0, np.zeros(0, np.float32), 10.0, None, 1, config, np.random.default_rng(1))
    assert none == []


def test_a_window_item_holds_only_its_frames_first_and_its_label() -> None:
    frame = pd.DataFrame(
        {"video_id": ["a", "b"], "video_path": ["a.mp4", "b.mp4"],
         "transcript": ["replica 1:1", "original"], "label": ["infringing", "genuine"]}
    )  # fmt: skip
    source = VideoFrameDataset(frame, ".", config=SamplingConfig(max_frames=12))
    times = [np.arange(12, dtype=np.float32), np.arange(0, 6, 0.5, dtype=np.float32)]
    feats = [np.random.default_rng(i).normal(size=(12, 5)).astype(np.float32) for i in range(2)]
    features = FrameFeatures(
        np.concatenate(feats), np.concatenate(times), np.array([0, 12, 24]), [(), ()]
    )
    clips = VideoFeatureDataset(source, features)
    data = WindowDataset(clips, [[(4.0, 6.0)], None], [12.0, 6.0], WindowConfig(per_clip=6), 0)
    assert len(data) == 2 + len(data.windows) and data.n_clips == 2
    for i, w in enumerate(data.windows):
        item = data[2 + i]
        n = w.hi - w.lo
        assert item["frame_mask"].tolist() == [True] * n + [False] * (12 - n)
        expected = torch.from_numpy(feats[w.clip][w.lo : w.hi])
        torch.testing.assert_close(item["frame_features"][:n], expected)
        assert torch.all(item["frame_features"][n:] == 0)
        assert item["label"] == w.label == data.labels[2 + i]
        clip_a = w.clip == 0
        assert item["label"] == (int(_inside(times[0][w.lo : w.hi], [(4.0, 6.0)])) if clip_a else 0)
        assert item["transcript"] == ("" if clip_a else "original")
    assert data[0]["label"] == 1 and data[0]["frame_mask"].all()  # whole clips first


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> DemoVideos:
    """18 short demo clips of 4-8 s at 48 px, 4 frames a second."""
    return generate_demo_videos(
        tmp_path_factory.mktemp("clips"), n=18, seed=3, size=48, seconds=(4.0, 8.0), fps=4,
        livestreams=0,
    )  # fmt: skip


def test_windows_change_training_only_whole_clip_evaluation_is_unchanged(
    clips: DemoVideos, tmp_path: Path
) -> None:
    model = VideoClassifier("tiny_cnn", image_size=SIZE, freeze_backbone=True)

    def module(windows: dict | None) -> VideoDataModule:
        dm = VideoDataModule(
            str(clips.manifest_path),
            sampling=SAMPLING,
            image_size=SIZE,
            split={"strategy": "random", "val_fraction": 0.25, "test_fraction": 0.25},
            embedding_cache=str(tmp_path / "cache"),
            train_windows=windows,
        )
        dm.setup("fit")
        dm.configure_inputs(
            modalities=model.modalities,
            preprocessing=model.preprocessing,
            image_embedder=model.image_embedder(),
        )
        return dm

    off, on = module(None), module({"min_s": 2.0, "max_s": 4.0, "per_clip": 3})
    assert isinstance(off.dataset("train"), VideoFeatureDataset)
    windows = on.dataset("train")
    assert isinstance(windows, WindowDataset)
    n_train = len(off.frames["train"])
    assert len(windows) == n_train + len(windows.windows) and len(windows.windows) > n_train
    spans = on.frames["train"]["infringement_spans"]
    for w in windows.windows:
        times = windows.clips.features.of(w.clip)[1][w.lo : w.hi]
        given = spans[w.clip]
        expected = int(_inside(times, given)) if isinstance(given, list) else windows.labels[w.clip]
        assert w.label == expected
    batch = next(iter(on.train_dataloader()))
    assert batch["frame_features"].shape[1:] == (SAMPLING["max_frames"], model.net.spec.feature_dim)
    torch.manual_seed(0)
    with torch.no_grad():
        for split in ("val", "test"):
            a, b = model.predict_scores(off.loader(split)), model.predict_scores(on.loader(split))
            np.testing.assert_array_equal(a, b)
    assert on.summary()["train_windows"]["per_clip"] == 3 and off.summary()["train_windows"] is None
    # windows of an evaluation split, alone, for a window-level AUROC; the same draw both times
    config = WindowConfig(min_s=2.0, max_s=4.0, per_clip=2, keep_clips=False)
    loader = off.window_loader("test", config)
    drawn = loader.dataset
    assert drawn.n_clips == 0 and len(drawn) == len(drawn.windows) > 0
    assert [w.clip for w in drawn.windows] == [
        w.clip for w in on.window_loader("test", config).dataset.windows
    ]
    with torch.no_grad():
        assert model.predict_scores(loader).shape == (len(drawn),)
