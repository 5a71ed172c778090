"""Serving side of the video model: sampled frames + transcript -> calibrated score, evidence.

:class:`VideoPredictor` rebuilds the network from the exported folder (spec, safetensors),
samples frames the way the model was trained (``spec.extras["sampling"]``), preprocesses them
with the listing photos' eval transform and the model's own input size and normalisation, and
returns the calibrated score, the policy's decision and which frames drove it.

:meth:`VideoPredictor.score_frames` is the per-window call of the livestream scorer: frames it
decoded itself, no file, one forward pass. The frame tower runs on ONNX Runtime where the
model folder holds its graph (:mod:`ipguard.serving.video_onnx`), else in torch.
:meth:`VideoPredictor.score` is the request path of the pyfunc (``video_path`` /
``video_b64`` / ``transcript``; see :mod:`ipguard.serving.video_contract`). A bad video is never
an error: it is flagged and scored on its transcript; a row with neither frames nor transcript
is not scored (null score, ``review``, flag ``not_scored``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_model

from ipguard.data.columns import FLAG_SEPARATOR
from ipguard.data.transforms import Preprocessing, build_eval_transform
from ipguard.data.video_frames import (
    SampledVideo,
    SamplingConfig,
    sample_frames,
    sample_frames_base64,
)
from ipguard.evaluation.calibration import calibrator_from_dict
from ipguard.evaluation.policy import Policy
from ipguard.logistic import sigmoid
from ipguard.nets.video import VideoConfig, VideoNetwork
from ipguard.serving.spec import WEIGHTS_FILE, ModelSpec
from ipguard.serving.video_contract import VIDEO_OUTPUT_COLUMNS
from ipguard.serving.video_onnx import open_frame_tower

#: strongest frames listed in ``top_frames``
TOP_FRAMES = 3


@dataclass
class VideoScore:
    """One video's (or one livestream window's) score and the frames behind it."""

    score: float
    """Calibrated P(infringing); NaN when there was nothing to score (no frame, no transcript)."""
    logit: float
    """The network's fused logit, before the sigmoid and calibration."""
    frame_weights: np.ndarray
    """(T,) attention of each frame in the pooling (sums to 1; zeros without frames)."""
    frame_scores: np.ndarray
    """(T,) each frame's own instance probability (sigmoid of its instance logit)."""
    evidence_time_s: float | None
    """Timestamp of the frame with the largest weight x frame score; None without frames."""
    frame_score: float | None = None
    """The visual evidence alone (sigmoid of the pooled instance logits); None without frames."""
    transcript_score: float | None = None
    """The transcript head alone; None without a transcript."""

    def top_frames(self, timestamps: np.ndarray, k: int = TOP_FRAMES) -> list[dict[str, float]]:
        """The ``k`` frames with the largest weight x frame score, strongest first."""
        strength = self.frame_weights * self.frame_scores
        order = np.argsort(-strength, kind="stable")[:k]
        return [
            {
                "time_s": round(float(timestamps[i]), 3),
                "weight": round(float(self.frame_weights[i]), 4),
                "frame_score": round(float(self.frame_scores[i]), 4),
            }
            for i in order
        ]


def _transcript(value: object) -> tuple[str | None, str | None]:
    """(text, flag): a usable transcript, or None and why not."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None, "transcript_empty"
    if not isinstance(value, str):
        return None, "transcript_invalid"
    return (value, None) if value.strip() else (None, "transcript_empty")


def _cell(row: pd.Series, column: str) -> object:
    """The row's value, None where absent, NaN or blank text (nothing was sent)."""
    value = row.get(column)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, str) and not value.strip():
        return None
    return value


class VideoPredictor:
    """An exported ``ipguard-video`` folder, scoring videos in-process (no Lightning)."""

    needs_images = False

    def __init__(
        self,
        spec: ModelSpec,
        folder: str | Path,
        *,
        runtime: str = "torch",
        frame_tower: str = "auto",
    ) -> None:
        """``runtime`` is the listing kinds' switch (the whole network: torch only here);
        ``frame_tower`` picks what runs the frame tower (:data:`FRAME_TOWERS`): the folder's
        ONNX graph when it has one (``auto``), the graph or an error (``onnx``), or torch."""
        if spec.kind != "video":
            raise ValueError(f"{folder}: VideoPredictor serves kind 'video', found {spec.kind!r}")
        if runtime != "torch":
            raise ValueError(
                f"runtime={runtime!r}: the video model's network serves on 'torch' only; its "
                "frame tower runs on ONNX Runtime when exported (frame_tower='auto'/'onnx')"
            )
        self.spec = spec
        self.folder = Path(folder)
        self.network = VideoNetwork(VideoConfig.from_mapping(spec.network), pretrained=False)
        load_model(self.network, str(self.folder / WEIGHTS_FILE))
        self.network.eval()
        self.preprocessing = Preprocessing.from_dict(spec.preprocessing)
        self.transform = build_eval_transform(self.preprocessing)
        self.calibrator = calibrator_from_dict(spec.calibrator)
        self._policy = Policy.from_dict(spec.policy)
        sampling = spec.extras.get("sampling")
        if sampling is None:
            raise ValueError(
                f"{folder}: a video model's spec must carry its frame sampling in "
                "extras['sampling']; re-export it with ipguard"
            )
        # which frames: as in training; how many decoder threads: FFmpeg's choice, since a
        # service decodes one video at a time (training's 1 thread was for many workers)
        self._sampling = replace(SamplingConfig(**sampling), decode_threads=0)
        self._onnx_tower = open_frame_tower(self.folder, frame_tower)

    @classmethod
    def load(cls, folder: str | Path, *, frame_tower: str = "auto") -> VideoPredictor:
        """From an exported model folder (``spec.json`` + ``weights.safetensors``, and
        ``frame_tower/model.onnx`` where the frame tower was exported)."""
        return cls(ModelSpec.load(folder), folder, frame_tower=frame_tower)

    @property
    def frame_tower(self) -> str:
        """What scores the frames: ``onnx`` (the exported graph) or ``torch``."""
        return "torch" if self._onnx_tower is None else "onnx"

    @property
    def sampling(self) -> SamplingConfig:
        """How the model's training videos were sampled (decoded on FFmpeg's own thread
        count); sample what it scores the same way."""
        return self._sampling

    @property
    def policy(self) -> Policy:
        return self._policy

    @property
    def model_version(self) -> str:
        return str(self.spec.model_version or "")

    # --- one video -----------------------------------------------------------------------------
    def _pixels(self, frames: np.ndarray | list[np.ndarray]) -> torch.Tensor:
        size = self.preprocessing.image_size
        if len(frames) == 0:
            return torch.zeros(0, 3, size, size)
        return torch.stack(
            [self.transform(image=np.ascontiguousarray(f, dtype=np.uint8))["image"] for f in frames]
        )

    @torch.inference_mode()
    def score_frames(
        self,
        frames: np.ndarray | list[np.ndarray],
        timestamps: np.ndarray | list[float],
        transcript: str | None = None,
    ) -> VideoScore:
        """Score frames already decoded: (T,H,W,3) uint8 RGB and their (T,) timestamps in
        seconds (T may be 0: the transcript alone), with an optional transcript."""
        times = np.asarray(timestamps, dtype=np.float64).reshape(-1)
        if len(frames) != len(times):
            raise ValueError(
                f"score_frames: {len(frames)} frames but {len(times)} timestamps; pass one "
                "timestamp per frame"
            )
        text = transcript if isinstance(transcript, str) and transcript.strip() else ""
        pixels = self._pixels(frames)
        t = len(times)
        # a zero-frame video still needs one (masked) slot: every reduction then has a width
        slots = max(t, 1)
        mask = torch.zeros(1, slots, dtype=torch.bool)
        mask[0, :t] = True
        if self._onnx_tower is not None and t:  # the graph computes the frames' features
            features = torch.zeros(1, slots, self.network.spec.feature_dim)
            features[0, :t] = self._onnx_tower(pixels)
            out = self.network(None, mask, [text], frame_features=features)
        else:
            batch = torch.zeros(1, slots, *pixels.shape[1:])
            batch[0, :t] = pixels
            out = self.network(batch, mask, [text])
        weights = out["attention"][0, :t].double().numpy()
        scores = sigmoid(out["instance_logits"][0, :t].double().numpy())
        logit = float(out["logit"][0])
        has_frames = t > 0 and self.network.config.use_frames
        has_text = bool(text) and self.network.config.use_transcript
        if has_frames or has_text:
            score = float(self.calibrator(np.array([sigmoid(np.array(logit))]))[0])
        else:
            score = float("nan")
        evidence = None
        if has_frames:
            evidence = float(times[int(np.argmax(weights * scores))])
        return VideoScore(
            score=score,
            logit=logit,
            frame_weights=weights,
            frame_scores=scores,
            evidence_time_s=evidence,
            frame_score=float(sigmoid(out["frame_logit"][0].double().numpy()))
            if has_frames
            else None,
            transcript_score=(
                float(sigmoid(out["text_logit"][0].double().numpy())) if has_text else None
            ),
        )

    def sample(self, row: pd.Series) -> tuple[SampledVideo | None, list[str]]:
        """The row's video sampled as in training (``video_b64`` first, else ``video_path``),
        or None and its flag."""
        b64, path = _cell(row, "video_b64"), _cell(row, "video_path")
        if isinstance(b64, str):
            sampled = sample_frames_base64(b64, self._sampling)
        elif isinstance(path, str):
            sampled = sample_frames(path, self._sampling)
        elif b64 is not None or path is not None:
            return None, ["video_invalid"]
        else:
            return None, ["video_missing"]
        return sampled, list(sampled.flags)

    # --- a request -----------------------------------------------------------------------------
    def score(self, frame: pd.DataFrame) -> pd.DataFrame:
        """One output row per request row, in order (the contract in ``video_contract``)."""
        rows: list[dict[str, Any]] = []
        for position, (_, row) in enumerate(frame.reset_index(drop=True).iterrows()):
            sampled, flags = self.sample(row)
            text, text_flag = _transcript(_cell(row, "transcript"))
            if text_flag:
                flags.append(text_flag)
            frames = sampled.frames if sampled is not None else []
            times = np.asarray(sampled.timestamps if sampled is not None else [], dtype=np.float64)
            result = self.score_frames(frames, times, text)
            if np.isnan(result.score):
                flags.append("not_scored")
            video_id = _cell(row, "video_id")
            rows.append(
                {
                    "video_id": str(video_id) if video_id is not None else str(position),
                    "score": result.score,
                    "evidence_time_s": result.evidence_time_s,
                    "top_frames": json.dumps(result.top_frames(times)),
                    "frame_score": result.frame_score,
                    "transcript_score": result.transcript_score,
                    "flags": FLAG_SEPARATOR.join(flags),
                }
            )
        out = pd.DataFrame(
            rows,
            columns=[c for c in VIDEO_OUTPUT_COLUMNS if c not in ("decision", "model_version")],
        )
        for column in ("score", "evidence_time_s", "frame_score", "transcript_score"):
            out[column] = pd.to_numeric(out[column], errors="coerce").astype(float)
        out["decision"] = self._policy.decide(out["score"].to_numpy())
        out["model_version"] = self.model_version
        return out[list(VIDEO_OUTPUT_COLUMNS)]
