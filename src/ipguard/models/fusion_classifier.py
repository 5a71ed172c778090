"""FusionClassifier: the fused listing model (image + text + tabular) as a LightningModule."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors.torch import save_model
from torch import nn

from ipguard.brands.references import BrandReferences, references_extras
from ipguard.data.reference_features import REFERENCE_FEATURE_DIM
from ipguard.models.brand_references import (
    ReferenceSettings,
    build_references,
    feed_datamodule,
)
from ipguard.models.losses import binary_loss
from ipguard.models.module import ListingClassifier
from ipguard.nets.fusion import FusionConfig, FusionNetwork, text_presence
from ipguard.serving.spec import WEIGHTS_FILE

log = logging.getLogger(__name__)
#: the network's defaults, which the module's arguments of the same names share
_NETWORK = FusionConfig()


class FusionClassifier(ListingClassifier):
    """One model over the listing's image, text and price/brand features.

    The loss is the fused logit's plus ``aux_weight`` times the image and text heads' own
    losses (each only on rows that have that modality), see :mod:`ipguard.nets.fusion`.
    Takes only plain arguments, so ``FusionClassifier.load_from_checkpoint(path)`` rebuilds it
    without Hydra or the training config.
    """

    modalities: ClassVar[frozenset[str]] = frozenset({"image", "text", "tabular"})

    def __init__(
        self,
        image_backbone: str = _NETWORK.image_backbone,
        *,
        pretrained: bool | None = None,
        weights_path: str | None = None,
        image_size: int = _NETWORK.image_size,
        text_dim: int = _NETWORK.text_dim,
        n_buckets: int = _NETWORK.n_buckets,
        tabular_dim: int = _NETWORK.tabular_dim,
        hidden: int = _NETWORK.hidden,
        dropout: float = _NETWORK.dropout,
        modality_dropout: float = _NETWORK.modality_dropout,
        aux_weight: float = 0.5,
        lr: float = 2e-3,
        head_lr: float | None = 3e-3,
        weight_decay: float = 1e-4,
        loss: str = "bce",
        focal_gamma: float = 2.0,
        pos_weight: float | None = None,
        scheduler: str = "onecycle",
        freeze_backbone_epochs: int = 0,
        freeze_backbone: bool | None = None,
        references: bool = False,
        reference_backbone: str = ReferenceSettings.backbone,
        reference_image_size: int = ReferenceSettings.image_size,
        stolen_threshold: float = ReferenceSettings.stolen_threshold,
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
        self.save_hyperparameters()
        reference_dim = REFERENCE_FEATURE_DIM if references else 0
        self.net = FusionNetwork(
            # the exported spec carries it to serving
            FusionConfig.from_mapping({**self.hparams, "reference_dim": reference_dim}),
            pretrained=pretrained,
            weights_path=Path(weights_path) if weights_path else None,
        )
        self.resolve_freezing(freeze_backbone, pretrained=self.net.image.spec.pretrained)
        self._outputs: dict[str, torch.Tensor] | None = None
        #: the catalog's embedded references (model.references=true), built by attach_data
        self.references: BrandReferences | None = None

    @property
    def network(self) -> nn.Module:
        return self.net

    @property
    def preprocessing(self) -> dict[str, Any]:
        spec = self.net.image.spec
        return {"image_size": self.hparams.image_size, "mean": spec.mean, "std": spec.std}

    def attach_data(self, dm: Any) -> None:
        """Called by ``train()`` before fitting: the data's tabular width must be the model's;
        with ``references``, the catalog's references are built and fed to the data."""
        if self.hparams.references:
            self.attach_catalog(getattr(dm, "brands_path", None))
            feed_datamodule(self.references, dm)  # type: ignore[arg-type]
        if getattr(dm, "brands_path", None) is None:
            log.warning(
                "no brand catalog (data.brands=null): the fused model's price and brand "
                "features are flags only; pass data.brands=PATH to a brands.csv"
            )
        width = dm.tabular_features(dm.frames["train"].head(1)).shape[1]
        expected = self.net.config.tabular_dim + self.net.config.reference_dim
        if width != expected:
            raise ValueError(
                f"model.tabular_dim={self.hparams.tabular_dim} (+{self.net.config.reference_dim} "
                f"reference features), but the data gives {width} columns; set "
                f"model.tabular_dim={width - self.net.config.reference_dim}"
            )

    def attach_catalog(self, catalog_path: str | Path | None) -> None:
        """Embed the reference catalog at ``catalog_path`` (training, or exporting a
        checkpoint): the references the exported model compares listings with."""
        settings = ReferenceSettings(
            self.hparams.reference_backbone,
            self.hparams.reference_image_size,
            self.hparams.stolen_threshold,
        )
        self.references = build_references(catalog_path, settings)

    def logits(self, batch: dict[str, Any]) -> torch.Tensor:
        self._outputs = self.net(
            batch["image"],
            batch["image_present"],
            batch["text"],
            batch["tabular"],
            image_features=batch.get("image_embedding"),
        )
        return self._outputs["logit"]

    def _aux_loss(self, batch: dict[str, Any]) -> torch.Tensor:
        """The image and text heads' losses, each on the rows that have that modality."""
        assert self._outputs is not None
        labels = batch["label"].float()
        present = {
            "image_logit": batch["image_present"].bool().reshape(-1),
            "text_logit": text_presence(batch["text"], labels.device).bool(),
        }
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
        loss = super().training_step(batch, batch_idx)  # fused loss, metrics and logging
        if self.hparams.aux_weight == 0:
            return loss
        aux = self._aux_loss(batch)
        self.log("train/aux_loss", aux, on_epoch=True, batch_size=len(batch["text"]))
        return loss + self.hparams.aux_weight * aux

    def backbone_module(self) -> nn.Module:
        return self.net.image.backbone

    def export_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "kind": "fusion",
            "network": self.net.config.to_dict(),
            # images only: the text tower always reads model_text(title, description)
            "preprocessing": self.preprocessing,
        }
        if self.hparams.references:
            if self.references is None:
                raise RuntimeError(
                    "this fused model reads brand-reference features: attach_catalog(PATH) "
                    "before exporting it"
                )
            spec["extras"] = {"references": references_extras(self.references)}
        return spec

    def save_artifacts(self, folder: Path) -> None:
        """The network's weights, and with ``references`` the embedded catalog beside them."""
        save_model(self.net.eval(), str(Path(folder) / WEIGHTS_FILE))
        if self.references is not None and self.hparams.references:
            self.references.save(folder)
