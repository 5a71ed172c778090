"""Image networks: EfficientNet-Lite or any torchvision classifier by name, its head swapped.

This module imports only torch and torchvision, never Lightning, because the served model
rebuilds the network from its name and a safetensors file. Pretrained weights come from
installed packages (EfficientNet-Lite, see :mod:`ipguard.nets.efficientnet_lite`), the local
torch hub cache or a file; nothing here downloads, so an offline run fails fast with a message
naming what is missing instead of hanging on a socket.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision
from safetensors.torch import load_file
from torch import nn

from ipguard.nets.efficientnet_lite import (
    LITE_BACKBONES,
    LITE_MEAN,
    LITE_STD,
    EfficientNetLiteFeatures,
)

TINY_BACKBONES = ("tiny_cnn",)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class PretrainedWeightsMissing(FileNotFoundError):
    """Raised instead of downloading: the run is offline or the cache is empty."""


@dataclass(frozen=True)
class BackboneSpec:
    """What a backbone expects from its input; travels with the model into serving."""

    name: str
    feature_dim: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    fixed_size: int | None = None  # e.g. ViT with pretrained weights only takes its own size
    pretrained: bool = False  # the weights came from a pretrained source, not random init


def resolve_pretrained(name: str, pretrained: bool | None) -> bool:
    """``None`` means: pretrained when the backbone's weights are installed as a package
    (EfficientNet-Lite), random init otherwise, so no setting ever reaches for the network."""
    if pretrained is None:
        return name in LITE_BACKBONES
    return bool(pretrained)


def list_backbones() -> list[str]:
    """Every name :func:`create_backbone` accepts."""
    return [
        *TINY_BACKBONES,
        *LITE_BACKBONES,
        *torchvision.models.list_models(module=torchvision.models),
    ]


class TinyCNN(nn.Module):
    """A few conv layers: enough to learn the demo logos in seconds, for tests and smoke runs."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for out in (width, width * 2, width * 4):
            layers += [
                nn.Conv2d(channels, out, 3, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            channels = out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.body = nn.Sequential(*layers)
        self.out_features = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def pretrained_weights_file(name: str, hub_dir: str | Path | None = None) -> Path:
    """Path where torchvision's default weights for ``name`` live in the hub cache.

    Raises :class:`PretrainedWeightsMissing` naming the file and the folder to put it in.
    """
    try:
        weights = torchvision.models.get_model_weights(name).DEFAULT
    except (ValueError, KeyError) as err:
        raise ValueError(f"backbone {name!r} has no torchvision pretrained weights") from err
    folder = Path(hub_dir) if hub_dir else Path(torch.hub.get_dir())
    path = folder / "checkpoints" / Path(weights.url).name
    if not path.is_file():
        raise PretrainedWeightsMissing(
            f"model.pretrained=true needs {path.name} for backbone {name!r}, not found in "
            f"{path.parent}. ipguard never downloads at run time: fetch {weights.url} on a "
            f"machine with internet and copy it to {path}, or pass model.weights_path=FILE, or "
            "set model.pretrained=false."
        )
    return path


def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise PretrainedWeightsMissing(f"model.weights_path={path} does not exist")
    if path.suffix == ".safetensors":
        return load_file(str(path))
    return torch.load(path, map_location="cpu", weights_only=True)


def _strip_classifier(model: nn.Module) -> int:
    """Replace the last Linear layer (torchvision's classifier) with Identity; return its width."""
    last_name, last = None, None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last_name, last = name, module
    if last is None or last_name is None:
        raise ValueError(f"{type(model).__name__} has no Linear classifier to replace")
    parent = model.get_submodule(last_name.rsplit(".", 1)[0]) if "." in last_name else model
    setattr(parent, last_name.rsplit(".", 1)[-1], nn.Identity())
    return last.in_features


def create_backbone(
    name: str,
    *,
    pretrained: bool | None = False,
    weights_path: str | Path | None = None,
    image_size: int = 128,
    hub_dir: str | Path | None = None,
) -> tuple[nn.Module, BackboneSpec]:
    """Build a feature extractor by name, with its expected preprocessing.

    Weights come from (in order) ``weights_path``, the installed package (EfficientNet-Lite)
    or the hub cache when ``pretrained`` (``None``: see :func:`resolve_pretrained`), or random
    init. The classifier head is removed so the caller can put any head on the features.
    """
    pretrained = resolve_pretrained(name, pretrained)
    if name in TINY_BACKBONES:
        if pretrained or weights_path:
            raise ValueError(f"{name!r} is a test backbone and has no pretrained weights")
        net = TinyCNN()
        return net, BackboneSpec(name, net.out_features, IMAGENET_MEAN, IMAGENET_STD)
    if name in LITE_BACKBONES:
        if weights_path:
            raise ValueError(
                f"{name!r} takes its ImageNet weights from its installed package; "
                "model.weights_path is for torchvision backbones"
            )
        lite = EfficientNetLiteFeatures(name, image_size=image_size, pretrained=pretrained)
        return lite, BackboneSpec(name, lite.out_features, LITE_MEAN, LITE_STD, None, pretrained)
    if name not in torchvision.models.list_models(module=torchvision.models):
        raise ValueError(
            f"unknown backbone {name!r}; choose tiny_cnn, efficientnet_lite0/1/2 (ImageNet "
            "weights installed as packages) or a torchvision classifier such as resnet18, "
            "mobilenet_v3_small, efficientnet_b0, convnext_tiny, vit_b_16 "
            "(ipguard.nets.image.list_backbones() lists all)"
        )
    kwargs: dict[str, object] = {}
    fixed_size = None
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    if name.startswith("inception"):
        kwargs["aux_logits"] = False
        kwargs["init_weights"] = False
    if pretrained:
        weights = torchvision.models.get_model_weights(name).DEFAULT
        preset = weights.transforms()
        mean, std = tuple(preset.mean), tuple(preset.std)  # type: ignore[assignment]
        if name.startswith(("vit_", "swin", "maxvit")):
            fixed_size = int(preset.crop_size[0])
    elif name.startswith("vit_"):
        kwargs["image_size"] = image_size  # random-init ViT can take any size divisible by patch
    net = torchvision.models.get_model(name, weights=None, **kwargs)
    source = Path(weights_path) if weights_path else None
    if source is None and pretrained:
        source = pretrained_weights_file(name, hub_dir)
    if source is not None:
        state = _load_state_dict(source)
        missing, unexpected = net.load_state_dict(state, strict=False)
        if missing:
            raise ValueError(
                f"weights file {source} does not fit backbone {name!r}: "
                f"{len(missing)} missing keys, e.g. {missing[:3]}"
            )
        del unexpected  # a checkpoint may carry extra heads; the backbone itself is complete
    if fixed_size is not None and fixed_size != image_size:
        raise ValueError(
            f"pretrained {name!r} only takes {fixed_size}px input; set data.image_size={fixed_size}"
        )
    feature_dim = _strip_classifier(net)
    loaded = source is not None
    return net, BackboneSpec(name, feature_dim, mean, std, fixed_size, loaded)


class ImageNetwork(nn.Module):
    """Backbone + dropout + one logit for P(infringing).

    Plain torch so export, ONNX and serving need neither Lightning nor Hydra.
    """

    def __init__(
        self,
        backbone: str = "tiny_cnn",
        *,
        pretrained: bool | None = False,
        weights_path: str | Path | None = None,
        image_size: int = 128,
        dropout: float = 0.0,
        hub_dir: str | Path | None = None,
        head_hidden: int = 0,
    ) -> None:
        super().__init__()
        if head_hidden < 0:
            raise ValueError(f"model.head_hidden: expected >= 0, found {head_hidden}")
        self.backbone, self.spec = create_backbone(
            backbone,
            pretrained=pretrained,
            weights_path=weights_path,
            image_size=image_size,
            hub_dir=hub_dir,
        )
        self.dropout = nn.Dropout(dropout)
        # 0: a linear probe; N: one hidden layer, for frozen features that are not linear in
        # what the head must see (measured on the demo data in docs/training.md)
        self.head: nn.Module = (
            nn.Linear(self.spec.feature_dim, 1)
            if head_hidden == 0
            else nn.Sequential(
                nn.Linear(self.spec.feature_dim, head_hidden),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.Linear(head_hidden, 1),
            )
        )

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        features = self.backbone(images)
        if not isinstance(features, torch.Tensor):  # e.g. InceptionOutputs in train mode
            features = features[0]
        return features

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """One logit per row from backbone features (computed here or cached upstream)."""
        return self.head(self.dropout(features)).squeeze(-1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classify(self.embed(images))
