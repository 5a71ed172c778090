"""ImageClassifier: the image model of ipguard as a LightningModule."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from torch import nn

from ipguard.models.module import ListingClassifier
from ipguard.nets.image import ImageNetwork


class ImageClassifier(ListingClassifier):
    """An image backbone (EfficientNet-Lite, torchvision, ``tiny_cnn``) scoring the primary image.

    ``freeze_backbone=True`` trains the head alone on features the data module computes once
    per image (see :mod:`ipguard.nets.embedder`); ``freeze_backbone_epochs`` with a lower
    ``lr`` than ``head_lr`` fine-tunes the whole network after a frozen warm-up instead.
    Takes only plain arguments, so ``ImageClassifier.load_from_checkpoint(path)`` rebuilds it
    without Hydra or the training config.
    """

    modalities: ClassVar[frozenset[str]] = frozenset({"image"})

    def __init__(
        self,
        backbone: str = "tiny_cnn",
        *,
        pretrained: bool | None = None,
        weights_path: str | None = None,
        image_size: int = 128,
        dropout: float = 0.0,
        lr: float | None = None,
        head_lr: float | None = None,
        weight_decay: float = 1e-4,
        loss: str = "bce",
        focal_gamma: float = 2.0,
        pos_weight: float | None = None,
        scheduler: str = "onecycle",
        freeze_backbone_epochs: int = 0,
        freeze_backbone: bool | None = None,
        head_hidden: int = 0,
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
        self.save_hyperparameters()
        self.net = ImageNetwork(
            backbone,
            pretrained=pretrained,
            weights_path=Path(weights_path) if weights_path else None,
            image_size=image_size,
            dropout=dropout,
            head_hidden=head_hidden,
        )
        self.resolve_freezing(freeze_backbone, pretrained=self.net.spec.pretrained)

    @property
    def network(self) -> nn.Module:
        return self.net

    @property
    def preprocessing(self) -> dict[str, Any]:
        spec = self.net.spec
        return {"image_size": self.hparams.image_size, "mean": spec.mean, "std": spec.std}

    def logits(self, batch: dict[str, Any]):
        if "image_embedding" in batch:  # frozen backbone: features computed once, upstream
            return self.net.classify(batch["image_embedding"])
        return self.net(batch["image"])

    def backbone_module(self) -> nn.Module:
        return self.net.backbone

    def export_spec(self) -> dict[str, Any]:
        return {
            "kind": "image",
            "network": {
                "backbone": self.hparams.backbone,
                "image_size": self.hparams.image_size,
                "dropout": self.hparams.dropout,
                "head_hidden": self.hparams.head_hidden,
            },
            "preprocessing": self.preprocessing,
        }
