"""Text classifiers of ipguard as LightningModules: hashed n-grams and MiniLM.

Both read ``batch["text"]`` (``ipguard.text.normalization.model_text`` of title and description,
the same string the served model builds) and take only plain arguments, so
``load_from_checkpoint(path)`` rebuilds them without Hydra.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors.torch import save_model
from torch import nn

from ipguard.models.module import ListingClassifier
from ipguard.models.text_checks import check_text_training_data
from ipguard.nets.text import HashedTextNetwork, MiniLMNetwork
from ipguard.serving.spec import WEIGHTS_FILE

#: the text every text model reads, recorded in the spec so serving builds the same
TEXT_PREPROCESSING = {"text": "model_text(title, description)"}
#: sub-folder of an exported MiniLM model holding the encoder's config and tokenizer
ENCODER_DIR = "encoder"
_ENCODER_PREFIX = "net.encoder."


class _TextClassifier(ListingClassifier):
    """What both neural text models share: their input and the data check."""

    modalities: ClassVar[frozenset[str]] = frozenset({"text"})

    def attach_data(self, dm: Any) -> None:
        """Called by ``train()`` before fitting: refuse degenerate training data early."""
        check_text_training_data(dm.frames["train"], source=getattr(dm, "manifest_path", None))


class FastTextClassifier(_TextClassifier):
    """fastText-style bag of hashed word and character n-grams; trains in seconds on a CPU."""

    def __init__(
        self,
        n_buckets: int = 2**18,
        dim: int = 64,
        dropout: float = 0.1,
        *,
        lr: float = 1e-2,
        head_lr: float | None = None,
        weight_decay: float = 0.0,
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
        self.net = HashedTextNetwork(n_buckets=n_buckets, dim=dim, dropout=dropout)

    @property
    def network(self) -> nn.Module:
        return self.net

    def logits(self, batch: dict[str, Any]) -> torch.Tensor:
        return self.net(batch["text"])

    def export_spec(self) -> dict[str, Any]:
        return {
            "kind": "text_fasttext",
            "network": {
                "n_buckets": self.hparams.n_buckets,
                "dim": self.hparams.dim,
                "dropout": self.hparams.dropout,
            },
            "preprocessing": dict(TEXT_PREPROCESSING),
        }


class MiniLMClassifier(_TextClassifier):
    """MiniLM sentence embeddings + a linear head; the encoder is frozen unless ``fine_tune``.

    Frozen, the encoder is a fixed function of the text, so each distinct text is encoded once
    and its embedding cached: after the first epoch only the head trains, in a blink. A frozen
    encoder is also left out of checkpoints (it is reloaded from ``encoder_path`` or the
    packaged model), which keeps them kilobytes instead of ~90 MB; exports always carry it.
    """

    def __init__(
        self,
        encoder_path: str | None = None,
        *,
        fine_tune: bool = False,
        max_length: int = 128,
        dropout: float = 0.1,
        cache_embeddings: bool = True,
        lr: float = 1e-2,
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
        self.net = MiniLMNetwork(
            encoder_path, fine_tune=fine_tune, max_length=max_length, dropout=dropout
        )
        self._cache: dict[str, torch.Tensor] = {}

    @property
    def network(self) -> nn.Module:
        return self.net

    @property
    def _caching(self) -> bool:
        return self.hparams.cache_embeddings and not self.hparams.fine_tune

    def _cached_embeddings(self, texts: list[str]) -> torch.Tensor:
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            with torch.no_grad():
                fresh = self.net.embed(missing).cpu()
            self._cache.update(zip(missing, fresh, strict=True))
        return torch.stack([self._cache[t] for t in texts]).to(self.device)

    def logits(self, batch: dict[str, Any]) -> torch.Tensor:
        texts = list(batch["text"])
        if self._caching:
            return self.net.classify(self._cached_embeddings(texts))
        return self.net(texts)

    def backbone_parameters(self) -> list[nn.Parameter]:
        # a frozen encoder must not be listed: the base class unfreezes backbone parameters
        return list(self.net.encoder.parameters()) if self.hparams.fine_tune else []

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)  # records the class
        if not self.hparams.fine_tune:
            state = checkpoint["state_dict"]
            for key in [k for k in state if k.startswith(_ENCODER_PREFIX)]:
                del state[key]

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Lightning calls this before load_state_dict: put back the frozen encoder's weights
        # (loaded from its source by __init__) so strict loading still checks everything else.
        if not self.hparams.fine_tune:
            encoder = self.net.encoder.state_dict()
            state = checkpoint["state_dict"]
            for key, value in encoder.items():
                state.setdefault(_ENCODER_PREFIX + key, value)

    def export_spec(self) -> dict[str, Any]:
        return {
            "kind": "text_minilm",
            "network": {
                "encoder_dir": ENCODER_DIR,
                "max_length": self.hparams.max_length,
                "dropout": self.hparams.dropout,
                "embed_dim": self.net.embed_dim,
            },
            "preprocessing": dict(TEXT_PREPROCESSING),
        }

    def save_artifacts(self, folder: Path) -> None:
        """Whole network (encoder included) as safetensors, plus the encoder's config and
        tokenizer, so serving needs neither the training machine's paths nor the package."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_model(self.net.eval(), str(folder / WEIGHTS_FILE))
        self.net.save_encoder_files(folder / ENCODER_DIR)
