"""The video network's MIL pooling, the video data module on demo clips, and the predictor's
per-window call: padded frames never count, bad videos are flagged and still scored."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ipguard.data.video_datamodule import VideoDataModule
from ipguard.data.video_frames import SamplingConfig
from ipguard.demo.videos import DemoVideos, generate_demo_videos
from ipguard.models.video_classifier import VideoClassifier
from ipguard.nets.video import VideoConfig, VideoNetwork, evidence_index
from ipguard.registry.package import write_model_dir
from ipguard.serving.predictors.video import VideoPredictor
from ipguard.serving.video_contract import VIDEO_OUTPUT_COLUMNS

SIZE = 32
SAMPLING = {"rate": 1.0, "scene_threshold": 0.3, "max_frames": 6, "max_side": 48}


def _network(**overrides: object) -> VideoNetwork:
    torch.manual_seed(0)
    config = VideoConfig(image_backbone="tiny_cnn", image_size=SIZE, **overrides)  # type: ignore[arg-type]
    return VideoNetwork(config, pretrained=False).eval()


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> DemoVideos:
    """A small demo set: 48 short clips of 3-5 s at 48 px, 4 frames a second."""
    return generate_demo_videos(
        tmp_path_factory.mktemp("clips"), n=48, seed=0, size=48, seconds=(3.0, 5.0), fps=4,
        livestreams=0,
    )  # fmt: skip


# --- the network ------------------------------------------------------------------------------
@pytest.mark.parametrize("pooling", ["attention", "max", "mean"])
def test_padded_frames_get_no_weight_and_do_not_change_the_score(pooling: str) -> None:
    net = _network(pooling=pooling)
    frames = torch.randn(2, 6, 3, SIZE, SIZE)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    with torch.no_grad():
        out = net(frames, mask, ["replica 1:1 same factory", ""])
        noisy = frames.clone()
        noisy[0, 3:] = 50 * torch.randn(3, 3, SIZE, SIZE)  # garbage in the padded slots
        again = net(noisy, mask, ["replica 1:1 same factory", ""])
    assert torch.all(out["attention"][0, 3:] == 0)
    torch.testing.assert_close(out["attention"].sum(dim=1), torch.ones(2))
    torch.testing.assert_close(out["logit"], again["logit"])


def test_the_same_frames_score_the_same_whatever_the_padding() -> None:
    net = _network()
    frames = torch.randn(1, 3, 3, SIZE, SIZE)
    with torch.no_grad():
        short = net(frames, torch.ones(1, 3, dtype=torch.bool), ["aaa genuine"])
        padded = torch.zeros(1, 9, 3, SIZE, SIZE)
        padded[0, :3] = frames[0]
        mask = torch.zeros(1, 9, dtype=torch.bool)
        mask[0, :3] = True
        long = net(padded, mask, ["aaa genuine"])
    torch.testing.assert_close(short["logit"], long["logit"])
    torch.testing.assert_close(short["attention"][0], long["attention"][0, :3])


def test_a_video_without_frames_scores_on_its_transcript_and_has_no_evidence() -> None:
    net = _network()
    mask = torch.zeros(2, 4, dtype=torch.bool)
    with torch.no_grad():
        out = net(torch.zeros(2, 4, 3, SIZE, SIZE), mask, ["replica AAA 1:1", "original"])
    assert torch.isfinite(out["logit"]).all()
    assert out["logit"][0] != out["logit"][1]  # the transcript alone moves the score
    assert torch.all(out["attention"] == 0)
    assert evidence_index(out["attention"], out["instance_logits"], mask).tolist() == [-1, -1]


def test_cached_features_give_the_logits_of_the_frames() -> None:
    net = _network()
    frames = torch.randn(2, 4, 3, SIZE, SIZE)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    with torch.no_grad():
        direct = net(frames, mask, ["a", "b"])
        features = net.embed_frames(frames, mask)
        cached = net(None, mask, ["a", "b"], frame_features=features)
    torch.testing.assert_close(direct["logit"], cached["logit"])


def test_a_model_with_neither_input_is_refused() -> None:
    with pytest.raises(ValueError, match=r"use_frames and model\.use_transcript"):
        VideoConfig(use_frames=False, use_transcript=False)
    with pytest.raises(ValueError, match="pooling"):
        VideoConfig(pooling="median")


# --- the data module --------------------------------------------------------------------------
def _manifest_with_a_truncated_clip(clips: DemoVideos, folder: Path) -> Path:
    """The first 12 demo rows plus a copy of the first clip cut at 80% of its bytes."""
    shutil.copytree(clips.clips_dir, folder / "clips")
    rows = pd.read_csv(clips.manifest_path).head(12)
    data = (folder / "clips" / "V00001.mp4").read_bytes()
    (folder / "clips" / "cut.mp4").write_bytes(data[: int(len(data) * 0.8)])
    cut = rows.iloc[[0]].assign(video_id="CUT", video_path="clips/cut.mp4")
    path = folder / "videos.csv"
    pd.concat([rows, cut]).to_csv(path, index=False)
    return path


def test_a_truncated_video_is_flagged_and_kept_not_a_crash(
    clips: DemoVideos, tmp_path: Path
) -> None:
    manifest = _manifest_with_a_truncated_clip(clips, tmp_path)
    dm = VideoDataModule(
        str(manifest),
        sampling=SAMPLING,
        image_size=SIZE,
        split={"strategy": "random", "val_fraction": 0.3, "test_fraction": 0.3},
        output_dir=str(tmp_path / "run"),
    )
    dm.setup("fit")
    summary = dm.summary()
    assert summary["rows_in"] == 13 and summary["rows_rejected"] == 0
    assert summary["videos_unusable_by_reason"] == {"video_truncated": 1}
    split = next(s for s, f in dm.frames.items() if "CUT" in set(f["video_id"]))
    items = {}
    for batch in dm.loader(split):
        for video_id, flags, mask in zip(
            batch["video_id"], batch["flags"], batch["frame_mask"], strict=True
        ):
            items[video_id] = (flags, int(mask.sum()))
    flags, kept = items["CUT"]
    assert flags == ("video_truncated",)
    assert 0 < kept < 6  # the frames before the cut
    assert all(f == () for v, (f, _) in items.items() if v != "CUT")
    assert (tmp_path / "run" / "splits.csv").is_file()


def test_the_split_keeps_each_seller_in_one_split(clips: DemoVideos, tmp_path: Path) -> None:
    dm = VideoDataModule(str(clips.manifest_path), sampling=SAMPLING, image_size=SIZE)
    dm.setup("fit")
    sellers = {name: set(f["seller_id"]) for name, f in dm.frames.items()}
    assert not sellers["train"] & sellers["val"]
    assert not sellers["train"] & sellers["test"]
    assert not sellers["val"] & sellers["test"]
    assert sum(len(f) for f in dm.frames.values()) == 48


def test_frozen_frame_features_are_computed_once_and_read_back(
    clips: DemoVideos, tmp_path: Path
) -> None:
    model = VideoClassifier("tiny_cnn", image_size=SIZE, freeze_backbone=True)

    def loaded() -> tuple[VideoDataModule, dict]:
        dm = VideoDataModule(
            str(clips.manifest_path),
            sampling=SAMPLING,
            image_size=SIZE,
            embedding_cache=str(tmp_path / "cache"),
        )
        dm.setup("fit")
        dm.configure_inputs(
            modalities=model.modalities,
            preprocessing=model.preprocessing,
            image_embedder=model.image_embedder(),
        )
        return dm, next(iter(dm.loader("val")))

    dm, batch = loaded()
    assert batch["frame_features"].shape[1:] == (6, model.net.spec.feature_dim)
    assert "frames" not in batch
    cached = sorted((tmp_path / "cache").glob("frames-*.npz"))
    assert len(cached) == 1  # the val split's: a split is embedded when first asked for
    _, again = loaded()
    torch.testing.assert_close(batch["frame_features"], again["frame_features"])
    assert sorted((tmp_path / "cache").glob("frames-*.npz")) == cached
    with torch.no_grad():
        scores = model.predict_scores(dm.loader("val"))
    assert scores.shape == (len(dm.frames["val"]),) and np.isfinite(scores).all()


# --- the predictor ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def predictor(tmp_path_factory: pytest.TempPathFactory) -> VideoPredictor:
    torch.manual_seed(0)
    model = VideoClassifier("tiny_cnn", image_size=SIZE)
    folder, _ = write_model_dir(
        model,
        tmp_path_factory.mktemp("model"),
        calibrator={"method": "temperature", "temperature": 1.5},
        policy={"reject_threshold": 0.9, "approve_threshold": 0.1},
        extras={"sampling": asdict(SamplingConfig(**SAMPLING))},
    )
    return VideoPredictor.load(folder)


def test_score_frames_reports_the_weights_and_the_evidence_frame(
    predictor: VideoPredictor,
) -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (5, 40, 48, 3), dtype=np.uint8)
    times = np.array([0.0, 1.0, 2.0, 3.0, 3.4])
    result = predictor.score_frames(frames, times, "replica AAA")
    assert 0.0 < result.score < 1.0
    assert result.frame_weights.shape == (5,) and result.frame_scores.shape == (5,)
    assert result.frame_weights.sum() == pytest.approx(1.0)
    strongest = int(np.argmax(result.frame_weights * result.frame_scores))
    assert result.evidence_time_s == times[strongest]
    assert predictor.sampling == SamplingConfig(**SAMPLING)
    assert predictor.policy.reject_threshold == 0.9
    # a window without frames: the transcript alone, no evidence; nothing at all: not scored
    empty = np.zeros((0, 40, 48, 3), dtype=np.uint8)
    spoken = predictor.score_frames(empty, np.zeros(0), "replica AAA")
    assert np.isfinite(spoken.score) and spoken.evidence_time_s is None
    assert np.isnan(predictor.score_frames(empty, np.zeros(0)).score)
    with pytest.raises(ValueError, match="timestamps"):
        predictor.score_frames(frames, times[:3])


def test_score_flags_bad_videos_and_scores_them_on_the_transcript(
    predictor: VideoPredictor, clips: DemoVideos, tmp_path: Path
) -> None:
    good = clips.clips_dir / "V00001.mp4"
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(good.read_bytes()[: int(good.stat().st_size * 0.8)])
    request = pd.DataFrame(
        {
            "video_id": ["good", "cut", "missing", "nothing"],
            "video_path": [str(good), str(cut), str(tmp_path / "nope.mp4"), None],
            "transcript": ["original", "1:1 replica", "AAA replica", 12],
            "video_b64": ["", None, " ", ""],  # blank: nothing sent, the path is read
        }
    )
    out = predictor.score(request)
    assert list(out.columns) == list(VIDEO_OUTPUT_COLUMNS)
    assert out["video_id"].tolist() == ["good", "cut", "missing", "nothing"]
    flags = out["flags"].tolist()
    assert flags[0] == "" and flags[1] == "video_truncated"
    assert flags[2] == "video_missing"
    assert flags[3] == "video_missing,transcript_invalid,not_scored"
    assert np.isfinite(out["score"][:3]).all() and np.isnan(out["score"][3])
    assert out["decision"][3] == "review"
    assert np.isnan(out["evidence_time_s"][2]) and np.isfinite(out["evidence_time_s"][:2]).all()
    top = json.loads(out["top_frames"][0])
    assert 1 <= len(top) <= 3 and {"time_s", "weight", "frame_score"} <= set(top[0])
