"""VideoNetwork: sampled frames and the transcript fused into one video logit (plain torch).

A video is infringing if *some* of its frames are: a counterfeit bag held up for ten seconds
of a two-minute clip is enough. So the frames are a bag of instances (multiple-instance
learning), and the video's visual evidence is pooled over time by **gated attention**
(Ilse, Tomczak and Welling, 2018): each frame's projection ``h_t`` gets a weight
``a_t = softmax_t(w^T (tanh(V h_t) * sigmoid(U h_t)))`` over the frames that exist (padded
slots are masked out before the softmax, so they get exactly zero weight and cannot move the
score). Each frame also gets its own instance logit ``s_t`` from a head on ``h_t``; the visual
logit is ``sum_t a_t s_t``, so the instance head is trained through the video's label and the
frame with the largest ``a_t * sigmoid(s_t)`` is the evidence a reviewer is sent to.

The transcript goes through the hashed n-gram text tower the fused listing model uses
(:class:`~ipguard.nets.text.HashedTextNetwork`). The head sees the pooled frame projection,
the transcript projection and a presence flag for each, as the fused listing network does: a
video without usable frames (flagged: missing, unreadable) is an exact zero visual input with
its flag 0 and scores on its transcript; a silent video scores on its frames.

``pooling="max"`` (the frame-max baseline: the largest instance logit, no attention) and
``pooling="mean"`` exist to measure what attention adds; ``use_frames`` / ``use_transcript``
switch a modality off for the single-modality baselines.

Plain torch only (no Lightning): serving rebuilds this from the spec and a safetensors file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ipguard.nets.image import create_backbone
from ipguard.nets.text import HashedTextNetwork
from ipguard.text.normalization import model_text

POOLINGS = ("attention", "max", "mean")
#: logits of padded slots before the softmax / max: exp() of it is exactly 0 in float32
_MASKED = -1e4


def _projection(in_features: int, hidden: int) -> nn.Sequential:
    # LayerNorm first: backbone features and mean-pooled embeddings live on different scales
    return nn.Sequential(nn.LayerNorm(in_features), nn.Linear(in_features, hidden), nn.ReLU())


@dataclass(frozen=True)
class VideoConfig:
    """The video network's shape: the exported spec's ``network``, and the Lightning module's
    hyperparameters of the same names."""

    image_backbone: str = "efficientnet_lite0"
    image_size: int = 96
    hidden: int = 64
    attention_dim: int = 32
    text_dim: int = 64
    n_buckets: int = 2**16
    dropout: float = 0.1
    #: P(a training video loses its frames or its transcript), as a flagged video would arrive
    modality_dropout: float = 0.2
    pooling: str = "attention"
    use_frames: bool = True
    use_transcript: bool = True

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ValueError(f"model.pooling: expected one of {POOLINGS}, found {self.pooling!r}")
        if not (self.use_frames or self.use_transcript):
            raise ValueError(
                "model.use_frames and model.use_transcript are both false: the video model "
                "would read nothing; switch one on"
            )
        if not 0.0 <= self.modality_dropout <= 1.0:
            raise ValueError(
                "model.modality_dropout: expected a probability in [0, 1], "
                f"found {self.modality_dropout}"
            )
        for name in ("hidden", "attention_dim", "text_dim", "n_buckets"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"model.{name}: expected an int >= 1, found {value!r}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> VideoConfig:
        """The config's fields out of a larger mapping (a module's hyperparameters, a spec);
        fields added since a spec was written take their defaults."""
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def transcript_presence(texts: Sequence[str], device: torch.device | None = None) -> torch.Tensor:
    """1.0 for videos with a transcript, 0.0 for silent ones (float, shape (B,))."""
    return torch.tensor([1.0 if t and t.strip() else 0.0 for t in texts], device=device)


class GatedAttention(nn.Module):
    """Gated attention weights over a padded bag of instances (Ilse et al. 2018)."""

    def __init__(self, dim: int, attention_dim: int) -> None:
        super().__init__()
        self.value = nn.Linear(dim, attention_dim)
        self.gate = nn.Linear(dim, attention_dim)
        self.score = nn.Linear(attention_dim, 1)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``h`` (B,T,dim), ``mask`` (B,T) bool -> weights (B,T), summing to 1 over each row's
        real frames; exactly 0 on padded slots, and all 0 for a row with no frame at all."""
        raw = self.score(torch.tanh(self.value(h)) * torch.sigmoid(self.gate(h))).squeeze(-1)
        raw = raw.masked_fill(~mask, _MASKED)
        weights = torch.softmax(raw, dim=1) * mask.to(raw.dtype)
        return weights / weights.sum(dim=1, keepdim=True).clamp(min=1e-12)


class VideoNetwork(nn.Module):
    """Frame tower + gated-attention MIL pooling + transcript tower -> one logit.

    ``forward`` returns ``logit`` (B,), ``frame_logit`` (B,) (the visual evidence alone),
    ``text_logit`` (B,), ``instance_logits`` (B,T) and ``attention`` (B,T). A row's
    frame-side outputs are meaningless where it has no frame, its text logit where it has no
    transcript; callers mask them.
    """

    def __init__(
        self,
        config: VideoConfig | None = None,
        *,
        pretrained: bool | None = False,
        weights_path: str | Path | None = None,
    ) -> None:
        super().__init__()
        config = config or VideoConfig()
        self.config = config
        hidden = config.hidden
        self.backbone, self.spec = create_backbone(
            config.image_backbone,
            pretrained=pretrained,
            weights_path=weights_path,
            image_size=config.image_size,
        )
        self.frame_proj = _projection(self.spec.feature_dim, hidden)
        self.attention = GatedAttention(hidden, config.attention_dim)
        self.instance_head = nn.Linear(hidden, 1)
        self.text = HashedTextNetwork(
            n_buckets=config.n_buckets, dim=config.text_dim, dropout=config.dropout
        )
        self.text_proj = _projection(config.text_dim, hidden)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Sequential(
            nn.Linear(2 * hidden + 2, hidden),
            nn.ReLU(),
            nn.Dropout(config.dropout),
            nn.Linear(hidden, 1),
        )

    # --- the frame tower ---------------------------------------------------------------------
    def embed_frames(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Backbone features (B,T,D) of ``frames`` (B,T,3,S,S); only real frames go through
        the backbone (padded slots stay zero), so a short clip costs what it holds."""
        b, t = mask.shape
        out = frames.new_zeros(b, t, self.spec.feature_dim)
        if mask.any():
            features = self.backbone(frames[mask])
            if not isinstance(features, torch.Tensor):  # e.g. InceptionOutputs in train mode
                features = features[0]
            out[mask] = features.to(out.dtype)
        return out

    def pool(
        self, features: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Frame features (B,T,D) -> pooled projection (B,hidden), visual logit (B,),
        instance logits (B,T) and the weights (B,T) each frame had in the pooling."""
        mask = mask.bool()
        h = self.frame_proj(features) * mask[..., None].to(features.dtype)
        instance = self.instance_head(self.dropout(h)).squeeze(-1)
        count = mask.sum(dim=1, keepdim=True).clamp(min=1).to(h.dtype)
        pooling = self.config.pooling
        if pooling == "attention":
            weights = self.attention(h, mask)
        elif pooling == "mean":
            weights = mask.to(h.dtype) / count
        else:  # max: all of the weight on the frame with the largest instance logit
            top = instance.masked_fill(~mask, _MASKED).argmax(dim=1)
            weights = nn.functional.one_hot(top, mask.shape[1]).to(h.dtype) * mask.to(h.dtype)
        pooled = (weights[..., None] * h).sum(dim=1)
        visual = (weights * instance).sum(dim=1)
        return pooled, visual, instance, weights

    # --- the whole network -------------------------------------------------------------------
    def _keep(
        self, frames_on: torch.Tensor, text_on: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Which rows keep their frames and transcript, after modality dropout in training."""
        if not self.config.use_frames:
            frames_on = torch.zeros_like(frames_on)
        if not self.config.use_transcript:
            text_on = torch.zeros_like(text_on)
        p = self.config.modality_dropout
        if (
            not self.training
            or p == 0.0
            or not (self.config.use_frames and self.config.use_transcript)
        ):
            return frames_on, text_on
        draw = torch.rand(frames_on.shape[0], device=frames_on.device)
        drop_frames = (draw < p / 2).to(frames_on.dtype)
        drop_text = ((draw >= p / 2) & (draw < p)).to(text_on.dtype)
        return frames_on * (1 - drop_frames), text_on * (1 - drop_text)

    def forward(
        self,
        frames: torch.Tensor | None,
        frame_mask: torch.Tensor,
        transcripts: Sequence[str],
        frame_features: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """``frames`` (B,T,3,S,S) or, for a frozen backbone, ``frame_features`` (B,T,D)
        computed upstream (then ``frames`` is not read); ``frame_mask`` (B,T) true on real
        frames; ``transcripts`` B strings ('' for none)."""
        mask = frame_mask.bool()
        if frame_features is None:
            if frames is None:
                raise ValueError("VideoNetwork: pass frames or frame_features, found neither")
            frame_features = self.embed_frames(frames, mask)
        features = frame_features.to(self.head[0].weight.dtype)
        pooled, visual, instance, weights = self.pool(features, mask)
        texts = [model_text(t, None) if t else "" for t in transcripts]
        text_features = self.text.embed(texts)
        frames_on = mask.any(dim=1).to(features.dtype)
        text_on = transcript_presence(texts, features.device).to(features.dtype)
        keep_frames, keep_text = self._keep(frames_on, text_on)
        fused = torch.cat(
            [
                pooled * keep_frames[:, None],
                self.text_proj(text_features) * keep_text[:, None],
                keep_frames[:, None],
                keep_text[:, None],
            ],
            dim=1,
        )
        return {
            "logit": self.head(fused).squeeze(-1),
            "frame_logit": visual,
            "text_logit": self.text.head(self.text.dropout(text_features)).squeeze(-1),
            "instance_logits": instance,
            "attention": weights,
        }


def evidence_index(attention: torch.Tensor, instance_logits: torch.Tensor, mask: torch.Tensor):
    """Per row, the frame with the largest attention x instance probability (-1: no frame)."""
    strength = attention * torch.sigmoid(instance_logits)
    strength = strength.masked_fill(~mask.bool(), -1.0)
    index = strength.argmax(dim=1)
    return torch.where(mask.bool().any(dim=1), index, torch.full_like(index, -1))
