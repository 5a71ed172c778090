"""The Lightning side shared by every ipguard classifier: loss, metrics, optimiser, predict.

Subclasses build their own network from plain arguments (so ``load_from_checkpoint`` needs no
Hydra) and implement :meth:`ListingClassifier.logits`. A batch is a dict (see
``ipguard.data.datasets``): ``image``, ``image_present``, ``text``, ``tabular``, ``label``,
``index``; each model reads the keys of its own modalities.
"""

from __future__ import annotations

from typing import Any, ClassVar

import lightning as L
import numpy as np
import torch
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import BinaryAUROC, BinaryAveragePrecision, BinaryF1Score

from ipguard.models.losses import binary_loss
from ipguard.nets.embedder import ImageEmbedder, weights_digest

#: the checkpoint key under which a module records its import path
CHECKPOINT_CLASS_KEY = "ipguard_class"


#: The peak learning rates behind ``lr=None``. A head over frozen features takes the larger
#: step; a network trained whole (random init, or fine-tuning) does not: at 2e-3, resnet18 from
#: random weights on a 3,000-listing studio catalogue reached test AUROC 0.45-0.48 against
#: 0.59-0.62 at 1e-3 (two seeds, benchmarks/recipe_gap.py, docs/training.md).
FROZEN_HEAD_LR = 2e-3
TRAINED_LR = 1e-3


def _metrics(prefix: str) -> MetricCollection:
    return MetricCollection(
        {"auroc": BinaryAUROC(), "ap": BinaryAveragePrecision(), "f1": BinaryF1Score()},
        prefix=prefix,
    )


class ListingClassifier(L.LightningModule):
    """Base for image, text and fused listing classifiers (positive class: infringing)."""

    #: inputs the model reads; the data module skips decoding images for text-only models
    modalities: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        *,
        lr: float | None = 1e-3,
        head_lr: float | None = None,
        weight_decay: float = 1e-4,
        loss: str = "bce",
        focal_gamma: float = 2.0,
        pos_weight: float | None = None,
        scheduler: str = "onecycle",
        freeze_backbone_epochs: int = 0,
        freeze_backbone: bool | None = False,
    ) -> None:
        super().__init__()
        self._freeze_backbone = bool(freeze_backbone)  # resolved by resolve_freezing
        self._backbone_frozen = self._freeze_backbone
        # the frozen backbone's weights digest, kept for its embedders (see image_embedder)
        self._backbone_digest: str | None = None
        self._backbone_digest_hooked = False
        self.train_metrics = _metrics("train/")
        self.val_metrics = _metrics("val/")
        self.test_metrics = _metrics("test/")

    # --- what subclasses provide -------------------------------------------------------------
    @property
    def network(self) -> nn.Module:
        """The plain-torch network that export saves and serving rebuilds."""
        raise NotImplementedError

    def logits(self, batch: dict[str, Any]) -> torch.Tensor:
        raise NotImplementedError

    def backbone_parameters(self) -> list[nn.Parameter]:
        """Parameters trained at ``lr`` (the rest at ``head_lr``) and frozen at first."""
        module = self.backbone_module()
        return list(module.parameters()) if module is not None else []

    def backbone_module(self) -> nn.Module | None:
        """The pretrained feature extractor, if the model has one (frozen as a whole)."""
        return None

    def resolve_freezing(self, freeze_backbone: bool | None, *, pretrained: bool) -> None:
        """``freeze_backbone=None`` means: frozen all run when the backbone is pretrained and
        no fine-tuning schedule (``freeze_backbone_epochs``) is asked for. On a CPU that is
        what pays: ImageNet features plus a head trained on cached embeddings beat a backbone
        trained on a few thousand photos, in a fraction of the time."""
        if freeze_backbone is None:
            freeze_backbone = pretrained and not self.hparams.get("freeze_backbone_epochs")
        self._freeze_backbone = bool(freeze_backbone)
        self._backbone_frozen = self._freeze_backbone

    @property
    def backbone_frozen_all_run(self) -> bool:
        return self._freeze_backbone

    def image_embedder(self) -> ImageEmbedder | None:
        """With a backbone frozen all run: the backbone as a function, so the data module can
        compute each image's features once (and cache them) instead of every epoch."""
        backbone = self.backbone_module()
        if not self._freeze_backbone or backbone is None:
            return None
        if self._backbone_digest is None:
            # hashing reads every weight: once per backbone, not at each of a run's calls; a
            # frozen backbone changes only by loading weights, which drops the digest
            if not self._backbone_digest_hooked:
                backbone.register_load_state_dict_post_hook(self._forget_backbone_digest)
                self._backbone_digest_hooked = True
            self._backbone_digest = weights_digest(backbone)
        return ImageEmbedder(backbone, self.preprocessing, digest=self._backbone_digest)

    def _forget_backbone_digest(self, module: nn.Module, incompatible_keys: Any) -> None:
        self._backbone_digest = None

    def setup(self, stage: str) -> None:
        """Freeze before Lightning's model summary, so it counts what really trains."""
        if self._freeze_backbone:
            for p in self.backbone_parameters():
                p.requires_grad_(False)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Record the class, so a checkpoint is rebuilt without guessing it from its
        hyper-parameters (``ipguard.models.loading.checkpoint_class`` reads it back)."""
        checkpoint[CHECKPOINT_CLASS_KEY] = f"{type(self).__module__}.{type(self).__qualname__}"

    def export_spec(self) -> dict[str, Any]:
        """JSON description from which serving rebuilds :attr:`network`."""
        raise NotImplementedError

    # --- training loop -----------------------------------------------------------------------
    def _step(self, batch: dict[str, Any], metrics: MetricCollection, stage: str) -> torch.Tensor:
        logits = self.logits(batch)
        labels = batch["label"].float()
        loss = binary_loss(
            logits,
            labels,
            kind=self.hparams.loss,
            pos_weight=self.hparams.pos_weight,
            focal_gamma=self.hparams.focal_gamma,
        )
        batch_size = labels.shape[0]
        metrics.update(torch.sigmoid(logits.detach()), labels.long())
        self.log(f"{stage}/loss", loss, on_epoch=True, batch_size=batch_size, sync_dist=True)
        if "image_unusable" in batch:
            self.log(
                f"{stage}/images_unusable",
                batch["image_unusable"].float().sum(),
                on_step=False,
                on_epoch=True,
                reduce_fx="sum",
                batch_size=batch_size,
                sync_dist=True,
            )
        return loss

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        return self._step(batch, self.train_metrics, "train")

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._step(batch, self.val_metrics, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._step(batch, self.test_metrics, "test")

    def _log_epoch(self, metrics: MetricCollection) -> None:
        # computed from states synced over all ranks, so DDP logs the whole split's value
        self.log_dict(metrics.compute(), sync_dist=False)
        metrics.reset()

    def on_train_epoch_end(self) -> None:
        self._log_epoch(self.train_metrics)

    def on_validation_epoch_end(self) -> None:
        self._log_epoch(self.val_metrics)

    def on_test_epoch_end(self) -> None:
        self._log_epoch(self.test_metrics)

    # --- backbone freezing and optimiser -----------------------------------------------------
    def on_train_epoch_start(self) -> None:
        frozen = self._freeze_backbone or self.current_epoch < self.hparams.freeze_backbone_epochs
        self._backbone_frozen = frozen
        for p in self.backbone_parameters():
            p.requires_grad_(not frozen)
        self.train(self.training)  # re-apply: a frozen backbone's BatchNorm stays in eval

    def train(self, mode: bool = True) -> ListingClassifier:
        """Keep a frozen backbone in eval mode: its BatchNorm statistics are ImageNet's, and
        updating them from a few thousand product photos (or skipping the backbone entirely
        on cached embeddings) would make training and serving disagree."""
        super().train(mode)
        backbone = self.backbone_module()
        if mode and self._backbone_frozen and backbone is not None:
            backbone.eval()
        return self

    def resolved_lr(self) -> float:
        """``lr``, or where it is None (``model.lr: null``) the rate that suits what trains:
        :data:`FROZEN_HEAD_LR` for a head over a frozen backbone's features, else
        :data:`TRAINED_LR` (docs/training.md, "The learning rate")."""
        if self.hparams.lr is not None:
            return float(self.hparams.lr)
        return FROZEN_HEAD_LR if self._freeze_backbone else TRAINED_LR

    def configure_optimizers(self) -> Any:
        backbone = self.backbone_parameters()
        backbone_ids = {id(p) for p in backbone}
        head = [p for p in self.parameters() if id(p) not in backbone_ids]
        if self._freeze_backbone:
            backbone = []  # never trained: keep it out of the optimiser and its state
        lr = self.resolved_lr()
        groups = [{"params": head, "lr": self.hparams.head_lr or lr}]
        if backbone:
            groups.append({"params": backbone, "lr": lr})
        optimizer = torch.optim.AdamW(groups, weight_decay=self.hparams.weight_decay)
        if self.hparams.scheduler == "none":
            return optimizer
        if self.hparams.scheduler != "onecycle":
            raise ValueError(f"unknown scheduler {self.hparams.scheduler!r}; use onecycle or none")
        steps = max(1, int(self.trainer.estimated_stepping_batches))
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=[g["lr"] for g in groups],
            total_steps=steps,
            pct_start=0.1,
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    @torch.inference_mode()
    def predict_scores(self, loader: Any) -> Any:
        """Uncalibrated P(infringing) for every row of an unshuffled loader, in order.

        A plain loop on purpose: it runs in one process after training (no Trainer, no DDP),
        to fit the calibrator and the policy on exactly the validation rows.
        """
        was_training = self.training
        self.eval()
        out = [torch.sigmoid(self.logits(batch)).cpu().numpy() for batch in loader]
        self.train(was_training)
        return np.concatenate(out) if out else np.zeros(0)
