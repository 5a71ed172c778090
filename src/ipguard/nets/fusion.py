"""FusionNetwork: image, text and tabular towers fused into one listing logit (plain torch).

No single signal is enough: a counterfeit may carry a clean title and a doctored logo, or a
perfect stolen photo and a price at a fifth of the brand's. The fused network reads all three
and learns how they combine.

Each tower is projected to ``hidden`` units; the head sees the three projections, plus an
``image_present`` and a ``text_present`` flag, and gives one logit. A missing modality is an
exact zero projection with its flag 0, identical in training and serving, so the head can
learn "no image" as a state instead of reading features of a blank picture.

**Modality dropout** (``modality_dropout`` = p, training only): each listing loses its image
with probability p/2 or its text with probability p/2, exactly as a listing without a usable
image or with an empty title would arrive. Without it the head leans on whichever tower is
strongest and scores such listings poorly.

**Auxiliary heads**: the image and the text tower keep their own one-logit heads (those of
:class:`~ipguard.nets.image.ImageNetwork` and :class:`~ipguard.nets.text.HashedTextNetwork`)
on their *undropped* features. Trained with an auxiliary loss, they make each tower learn on its
own, and they give the served model its per-modality ``image_score`` and ``text_score``.

Plain torch only (no Lightning), because serving rebuilds this from the spec and a
safetensors file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ipguard.data.tabular import FEATURE_DIM
from ipguard.nets.image import ImageNetwork
from ipguard.nets.text import HashedTextNetwork


def _projection(in_features: int, hidden: int) -> nn.Sequential:
    # LayerNorm first: backbone features and mean-pooled embeddings live on different scales
    return nn.Sequential(nn.LayerNorm(in_features), nn.Linear(in_features, hidden), nn.ReLU())


def text_presence(texts: Sequence[str], device: torch.device | None = None) -> torch.Tensor:
    """1.0 for listings with any text, 0.0 for empty ones (float, shape (B,))."""
    return torch.tensor([1.0 if t.strip() else 0.0 for t in texts], device=device)


@dataclass(frozen=True)
class FusionConfig:
    """The fused network's shape: what the exported spec's ``network`` holds, and what the
    Lightning module's hyperparameters of the same names build."""

    image_backbone: str = "tiny_cnn"
    image_size: int = 128
    text_dim: int = 64
    n_buckets: int = 2**16
    tabular_dim: int = FEATURE_DIM
    #: brand-reference features appended to the tabular ones (0: the model reads none);
    #: ipguard.data.reference_features.REFERENCE_FEATURE_DIM when trained with references
    reference_dim: int = 0
    hidden: int = 64
    dropout: float = 0.1
    modality_dropout: float = 0.2

    def __post_init__(self) -> None:
        if not 0.0 <= self.modality_dropout <= 1.0:
            raise ValueError(
                "model.modality_dropout: expected a probability in [0, 1], "
                f"found {self.modality_dropout}"
            )
        if self.tabular_dim < 1:
            raise ValueError(f"model.tabular_dim: expected at least 1, found {self.tabular_dim}")
        if self.reference_dim < 0:
            raise ValueError(f"reference_dim: expected >= 0, found {self.reference_dim}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> FusionConfig:
        """The config's fields out of a larger mapping (a module's hyperparameters); fields
        added since a spec was written take their defaults."""
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FusionNetwork(nn.Module):
    """Image + hashed-n-gram text + tabular MLP -> one logit, plus per-modality logits."""

    def __init__(
        self,
        config: FusionConfig | None = None,
        *,
        pretrained: bool | None = False,
        weights_path: str | Path | None = None,
    ) -> None:
        super().__init__()
        config = config or FusionConfig()
        self.config = config
        self.modality_dropout = config.modality_dropout
        hidden = config.hidden
        self.image = ImageNetwork(
            config.image_backbone,
            pretrained=pretrained,
            weights_path=weights_path,
            image_size=config.image_size,
            dropout=config.dropout,
        )
        self.text = HashedTextNetwork(
            n_buckets=config.n_buckets, dim=config.text_dim, dropout=config.dropout
        )
        self.image_proj = _projection(self.image.spec.feature_dim, hidden)
        self.text_proj = _projection(config.text_dim, hidden)
        self.tabular = nn.Sequential(
            nn.Linear(config.tabular_dim + config.reference_dim, hidden), nn.ReLU()
        )
        self.head = nn.Sequential(
            nn.Linear(3 * hidden + 2, hidden),
            nn.ReLU(),
            nn.Dropout(config.dropout),
            nn.Linear(hidden, 1),
        )

    def _keep_masks(
        self, image_present: torch.Tensor, text_present: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Which rows keep their image and text, after modality dropout in training."""
        if not self.training or self.modality_dropout == 0.0:
            return image_present, text_present
        draw = torch.rand(image_present.shape[0], device=image_present.device)
        half = self.modality_dropout / 2
        drop_image = (draw < half).to(image_present.dtype)
        drop_text = ((draw >= half) & (draw < self.modality_dropout)).to(text_present.dtype)
        return image_present * (1 - drop_image), text_present * (1 - drop_text)

    def forward(
        self,
        images: torch.Tensor,
        image_present: torch.Tensor,
        texts: Sequence[str],
        tabular: torch.Tensor,
        image_features: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """``images`` (B,3,H,W), ``image_present`` (B,), ``texts`` B strings, ``tabular``
        (B, tabular_dim + reference_dim): the tabular features, then the reference features.

        ``image_features`` (B,D), when given, are the backbone's output computed upstream (a
        frozen backbone's cached embeddings); ``images`` is then not read.
        Returns ``logit``, ``image_logit`` and ``text_logit``, each (B,). The per-modality
        logits are meaningless where that modality is absent; callers mask them.
        """
        texts = list(texts)
        if image_features is None:
            image_features = self.image.embed(images)
        text_on = text_presence(texts, image_features.device)
        return self.fuse(image_features, image_present, self.text.embed(texts), text_on, tabular)

    def fuse(
        self,
        image_features: torch.Tensor,
        image_present: torch.Tensor,
        text_features: torch.Tensor,
        text_present: torch.Tensor,
        tabular: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """:meth:`forward` after both towers' features: the tensors-only half, which the ONNX
        form (:mod:`ipguard.nets.graphs`) shares, so the graph cannot fuse differently."""
        image_on = image_present.to(image_features.dtype).reshape(-1)
        text_on = text_present.to(image_features.dtype).reshape(-1)
        keep_image, keep_text = self._keep_masks(image_on, text_on)
        fused = torch.cat(
            [
                self.image_proj(image_features) * keep_image[:, None],
                self.text_proj(text_features) * keep_text[:, None],
                self.tabular(tabular.to(image_features.dtype)),
                keep_image[:, None],
                keep_text[:, None],
            ],
            dim=1,
        )
        return {
            "logit": self.head(fused).squeeze(-1),
            "image_logit": self.image.classify(image_features),
            "text_logit": self.text.head(self.text.dropout(text_features)).squeeze(-1),
        }
