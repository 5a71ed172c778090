"""Pretrained image embeddings of a photo and of its tiles, for comparing it with references.

A brand's logo is a small part of a listing photo: on a sneaker it covers a few percent of the
frame, so the whole photo's embedding says little about it. The embedder therefore looks at
the photo whole and at five tiles (the four quadrants and the centre). For EfficientNet-Lite the
tiles are regions of the one feature map the whole photo gives (one forward pass); other
backbones see each tile cropped and upscaled to the input size (six passes). Every view is
L2-normalised: inner products are cosine similarities, which is what the reference index
searches.

The network is a frozen ImageNet backbone (EfficientNet-Lite0 by default, installed as a
package, never downloaded); the exported model carries its weights as safetensors, so a
screening service computes exactly the features training saw.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from ipguard.brands.stored import read_stored_json
from ipguard.nets.embedder import weights_digest
from ipguard.nets.image import create_backbone

__all__ = ["VIEW_NAMES", "ReferenceEmbedder"]

#: The views of one photo, in the order :meth:`ReferenceEmbedder.views` returns them.
VIEW_NAMES: tuple[str, ...] = (
    "whole",
    "top_left",
    "top_right",
    "bottom_left",
    "bottom_right",
    "centre",
)
WEIGHTS_FILE = "embedder.safetensors"
CONFIG_FILE = "embedder.json"
_FORMAT = "ipguard.reference_embedder"
_VERSION = 1


def _tiles(images: torch.Tensor) -> list[torch.Tensor]:
    """The five half-size tiles of a batch (B,3,S,S), each resized back to S."""
    size = images.shape[-1]
    half, quarter = size // 2, size // 4
    crops = [
        images[..., :half, :half],
        images[..., :half, half:],
        images[..., half:, :half],
        images[..., half:, half:],
        images[..., quarter : quarter + half, quarter : quarter + half],
    ]
    return [
        F.interpolate(c, size=(size, size), mode="bilinear", align_corners=False) for c in crops
    ]


class ReferenceEmbedder:
    """``images (B,3,S,S)`` (the eval transform's output) -> unit vectors per view."""

    def __init__(
        self,
        backbone: str = "efficientnet_lite0",
        *,
        image_size: int = 128,
        pretrained: bool | None = None,
        weights_file: str | Path | None = None,
    ) -> None:
        """``pretrained=None``: ImageNet weights where a package ships them (Lite0/1/2);
        ``weights_file``: the safetensors an exported model carries (replaces any other)."""
        module, spec = create_backbone(
            backbone, pretrained=False if weights_file else pretrained, image_size=image_size
        )
        if weights_file is not None:
            module.load_state_dict(load_file(str(weights_file)), strict=True)
        self.backbone: nn.Module = module.eval()
        for parameter in self.backbone.parameters():
            parameter.requires_grad_(False)
        # EfficientNet-Lite exposes its feature map: the tiles come from it in one pass
        net = getattr(self.backbone, "net", None)
        self._feature_map = getattr(net, "extract_features", None)
        self.name = backbone
        self.image_size = int(image_size)
        self.dim = int(spec.feature_dim)
        self.preprocessing: dict[str, Any] = {
            "image_size": self.image_size,
            "mean": list(spec.mean),
            "std": list(spec.std),
        }
        description = {
            "format": _FORMAT,
            "version": _VERSION,
            "backbone": backbone,
            "weights": weights_digest(self.backbone),
            "preprocessing": self.preprocessing,
            "views": list(VIEW_NAMES),
            "tiles": "feature-map regions" if self._feature_map is not None else "upscaled crops",
        }
        #: changes with anything that changes the vectors; keys the listing-embedding cache
        self.key = hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:32]

    @property
    def n_views(self) -> int:
        return len(VIEW_NAMES)

    @torch.inference_mode()
    def views(self, images: torch.Tensor) -> np.ndarray:
        """Float32 ``(B, n_views, dim)``, each row of unit length."""
        if images.ndim != 4 or images.shape[0] == 0:
            return np.zeros(
                (images.shape[0] if images.ndim else 0, self.n_views, self.dim), np.float32
            )
        if self._feature_map is not None:
            return self._region_views(images)
        batch = torch.cat([images, *_tiles(images)], dim=0)
        features = self.backbone(batch)
        features = F.normalize(features.float(), dim=1)
        b = images.shape[0]
        return features.reshape(self.n_views, b, self.dim).transpose(0, 1).contiguous().numpy()

    def _region_views(self, images: torch.Tensor) -> np.ndarray:
        """One forward pass: the whole photo and the five regions pooled from its feature map.

        Six forward passes (the photo and five upscaled tiles) cost six times one; pooling the
        regions of one feature map costs nothing extra (docs/brand_protection.md). The whole
        view is exactly what :meth:`whole` gives, so listing and reference vectors compare as
        before.
        """
        assert self._feature_map is not None
        grid = self._feature_map(images).float()  # (B, C, h, w)
        h, w = grid.shape[-2:]
        hh, hw = (h + 1) // 2, (w + 1) // 2
        regions = [
            grid,
            grid[..., :hh, :hw],
            grid[..., :hh, w - hw :],
            grid[..., h - hh :, :hw],
            grid[..., h - hh :, w - hw :],
            grid[..., h // 4 : h // 4 + hh, w // 4 : w // 4 + hw],
        ]
        pooled = torch.stack([r.mean(dim=(-2, -1)) for r in regions], dim=1)  # (B, V, C)
        return F.normalize(pooled, dim=2).contiguous().numpy()

    @torch.inference_mode()
    def whole(self, images: torch.Tensor) -> np.ndarray:
        """Float32 ``(B, dim)``: the whole-photo view only (reference images need no tiles)."""
        return F.normalize(self.backbone(images).float(), dim=1).numpy()

    def __call__(self, images: torch.Tensor) -> np.ndarray:
        """``(B, n_views * dim)``: the flat form the on-disk embedding cache stores."""
        return self.views(images).reshape(images.shape[0], -1)

    # --- the exported model's copy ----------------------------------------------------------
    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.contiguous() for k, v in self.backbone.state_dict().items()}
        save_file(state, str(folder / WEIGHTS_FILE))
        config = {"format": _FORMAT, "version": _VERSION, "backbone": self.name,
                  "image_size": self.image_size, "key": self.key}  # fmt: skip
        (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: str | Path) -> ReferenceEmbedder:
        folder = Path(folder)
        config = read_stored_json(
            folder / CONFIG_FILE,
            format=_FORMAT,
            version=_VERSION,
            what="the reference embedder's config",
        )
        embedder = cls(
            config["backbone"],
            image_size=int(config["image_size"]),
            weights_file=folder / WEIGHTS_FILE,
        )
        if embedder.key != config.get("key"):
            raise ValueError(
                f"{folder}: the reference embedder's weights do not match its config "
                "(the key differs); re-export the model"
            )
        return embedder
