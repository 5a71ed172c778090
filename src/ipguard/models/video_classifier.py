"""VideoClassifier: the video model of ipguard (frames + transcript) as a LightningModule."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ipguard.data.video_frames import SamplingConfig
from ipguard.models.losses import binary_loss
from ipguard.models.module import ListingClassifier
from ipguard.nets.embedder import ImageEmbedder
from ipguard.nets.video import VideoConfig, VideoNetwork, transcript_presence

#: the network's defaults, which the module's arguments of the same names share
_NETWORK = VideoConfig()


class VideoClassifier(ListingClassifier):
    """Gated-attention MIL over a video's sampled frames plus its transcript (see
    :mod:`ipguard.nets.video`).

    The loss is the fused logit's plus ``aux_weight`` times the visual logit's (rows with
    frames) and the transcript head's (rows with a transcript), as the fused listing model
    trains its towers. The pretrained frame tower is frozen by default (``freeze_backbone``
    null and pretrained weights), so each frame's features are computed once per run and
    cached. ``sampling`` is the data's frame sampling (``data.sampling``), recorded with the
    model so serving samples as training did. Takes only plain arguments, so
    ``load_from_checkpoint(path)`` needs no Hydra.
    """

    def __init__(
        self,
        image_backbone: str = _NETWORK.image_backbone,
        *,
        pretrained: bool | None = None,
        weights_path: str | None = None,
        image_size: int = _NETWORK.image_size,
        hidden: int = _NETWORK.hidden,
        attention_dim: int = _NETWORK.attention_dim,
        text_dim: int = _NETWORK.text_dim,
        n_buckets: int = _NETWORK.n_buckets,
        dropout: float = _NETWORK.dropout,
        modality_dropout: float = _NETWORK.modality_dropout,
        pooling: str = _NETWORK.pooling,
        use_frames: bool = _NETWORK.use_frames,
        use_transcript: bool = _NETWORK.use_transcript,
        aux_weight: float = 0.5,
        lr: float | None = None,
        head_lr: float | None = 3e-3,
        weight_decay: float = 1e-4,
        loss: str = "bce",
        focal_gamma: float = 2.0,
        pos_weight: float | None = None,
        scheduler: str = "onecycle",
        freeze_backbone_epochs: int = 0,
        freeze_backbone: bool | None = None,
        sampling: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            lr=lr,
            head_lr=head_lr,
            weight_decay=weight_decay,
            loss=loss,
            focal_gamma=focal_gamma,
            pos_weight=pos_weight,
            scheduler=scheduler,
            freeze_backbone_epochs=freeze_backbone_epochs,
            freeze_backbone=freeze_backbone,
        )
        if aux_weight < 0:
            raise ValueError(f"model.aux_weight: expected >= 0, found {aux_weight}")
        #: how videos are sampled into frames (``data.sampling``): it travels with the model
        self.sampling = SamplingConfig(**dict(sampling or {}))
        self.save_hyperparameters()
        # plain values in the checkpoint (a DictConfig from Hydra would not load weights-only)
        self.hparams["sampling"] = asdict(self.sampling)
        self.net = VideoNetwork(
            VideoConfig.from_mapping(self.hparams),
            pretrained=pretrained,
            weights_path=Path(weights_path) if weights_path else None,
        )
        self.resolve_freezing(freeze_backbone, pretrained=self.net.spec.pretrained)
        #: what the data module decodes: no frames for a transcript-only model
        self.modalities = frozenset(  # type: ignore[misc]
            (["frames"] if use_frames else []) + (["transcript"] if use_transcript else [])
        )
        self._outputs: dict[str, torch.Tensor] | None = None

    @property
    def network(self) -> nn.Module:
        return self.net

    @property
    def preprocessing(self) -> dict[str, Any]:
        spec = self.net.spec
        return {"image_size": self.hparams.image_size, "mean": spec.mean, "std": spec.std}

    def image_embedder(self) -> ImageEmbedder | None:
        """The frozen frame tower as a function, unless the model reads no frames."""
        return super().image_embedder() if self.hparams.use_frames else None

    def logits(self, batch: dict[str, Any]) -> torch.Tensor:
        self._outputs = self.net(
            batch.get("frames"),
            batch["frame_mask"],
            batch["transcript"],
            frame_features=batch.get("frame_features"),
        )
        return self._outputs["logit"]

    def _aux_loss(self, batch: dict[str, Any]) -> torch.Tensor:
        """The visual and transcript heads' losses, each on the rows that have that input."""
        assert self._outputs is not None
        labels = batch["label"].float()
        present = {
            "frame_logit": batch["frame_mask"].bool().any(dim=1),
            "text_logit": transcript_presence(batch["transcript"], labels.device).bool(),
        }
        if not self.hparams.use_frames:
            present.pop("frame_logit")
        if not self.hparams.use_transcript:
            present.pop("text_logit")
        total = labels.new_zeros(())
        for key, rows in present.items():
            if rows.any():
                total = total + binary_loss(
                    self._outputs[key][rows],
                    labels[rows],
                    kind=self.hparams.loss,
                    pos_weight=self.hparams.pos_weight,
                    focal_gamma=self.hparams.focal_gamma,
                )
        return total

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = super().training_step(batch, batch_idx)
        if self.hparams.aux_weight == 0:
            return loss
        aux = self._aux_loss(batch)
        self.log("train/aux_loss", aux, on_epoch=True, batch_size=len(batch["transcript"]))
        return loss + self.hparams.aux_weight * aux

    def backbone_module(self) -> nn.Module:
        return self.net.backbone

    def export_spec(self) -> dict[str, Any]:
        return {
            "kind": "video",
            "network": self.net.config.to_dict(),
            "preprocessing": self.preprocessing,
            "extras": {"sampling": asdict(self.sampling)},
        }
