"""A frozen image backbone as a plain function, with a key that says when its output changes.

A pretrained tower pays on a CPU when its backbone stays frozen: every image then has one
feature vector for the whole run, so it is computed once, and the head trains on those vectors
in seconds instead of pushing every photo through the backbone every epoch. The data module
caches the vectors under :attr:`ImageEmbedder.key`, which changes with anything that changes
them: the backbone's weights, the input size and the normalisation.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["EMBEDDING_FORMAT_VERSION", "ImageEmbedder", "weights_digest"]

#: bumped when the way features are computed changes, so older cache entries are not reused
EMBEDDING_FORMAT_VERSION = 1


def weights_digest(module: nn.Module) -> str:
    """SHA-256 of every tensor in ``module``'s state; hashing a pretrained backbone reads all
    its weights, so callers that ask more than once keep the answer (see ``ImageEmbedder``)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class ImageEmbedder:
    """``images (B,3,H,W) -> features (B,D)`` through a frozen backbone in eval mode."""

    def __init__(
        self,
        backbone: nn.Module,
        preprocessing: dict[str, Any],
        *,
        digest: str | None = None,
    ) -> None:
        """``digest`` is :func:`weights_digest` of ``backbone`` when the caller already has it
        (a frozen backbone's weights do not change between the embedders of one run)."""
        self.backbone = backbone
        self.preprocessing = dict(preprocessing)
        description = {
            "format": EMBEDDING_FORMAT_VERSION,
            "backbone": type(backbone).__name__,
            "weights": digest or weights_digest(backbone),
            "preprocessing": {
                k: list(v) if isinstance(v, tuple) else v for k, v in self.preprocessing.items()
            },
        }
        self.key = hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:32]

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> np.ndarray:
        was_training = self.backbone.training
        self.backbone.eval()
        try:
            features = self.backbone(images)
        finally:
            self.backbone.train(was_training)
        return features.float().cpu().numpy()
