"""ImageClassifier: the image model of ipguard as a LightningModule."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from torch import nn

from ipguard.models.image import ImageNetwork
from ipguard.models.module import ListingClassifier


class ImageClassifier(ListingClassifier):
    """A torchvision backbone (or ``tiny_cnn``) scoring the listing's primary image.

    Takes only plain arguments, so ``ImageClassifier.load_from_checkpoint(path)`` rebuilds it
    without Hydra or the training config.
    """

    modalities: ClassVar[frozenset[str]] = frozenset({"image"})
    registered_name: ClassVar[str] = "ipguard-image"

    def __init__(
        self,
        backbone: str = "tiny_cnn",
        *,
        pretrained: bool = False,
        weights_path: str | None = None,
        image_size: int = 128,
        dropout: float = 0.0,
        lr: float = 1e-3,
        head_lr: float | None = None,
        weight_decay: float = 1e-4,
        loss: str = "bce",
        focal_gamma: float = 2.0,
        pos_weight: float | None = None,
        scheduler: str = "onecycle",
        freeze_backbone_epochs: int = 0,
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
        )
        self.save_hyperparameters()
        self.net = ImageNetwork(
            backbone,
            pretrained=pretrained,
            weights_path=Path(weights_path) if weights_path else None,
            image_size=image_size,
            dropout=dropout,
        )

    @property
    def network(self) -> nn.Module:
        return self.net

    @property
    def preprocessing(self) -> dict[str, Any]:
        spec = self.net.spec
        return {"image_size": self.hparams.image_size, "mean": spec.mean, "std": spec.std}

    def logits(self, batch: dict[str, Any]):
        return self.net(batch["image"])

    def backbone_parameters(self) -> list[nn.Parameter]:
        return list(self.net.backbone.parameters())

    def export_spec(self) -> dict[str, Any]:
        return {
            "kind": "image",
            "network": {
                "backbone": self.hparams.backbone,
                "image_size": self.hparams.image_size,
                "dropout": self.hparams.dropout,
            },
            "preprocessing": self.preprocessing,
        }
