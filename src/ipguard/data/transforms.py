"""Augmentation recipes for listing images, and the preprocessing a model is trained with.

A recipe is a named albumentations pipeline, chosen in config (``recipe: evasion``), rather
than a list of transforms spelled out in YAML: the recipes encode what the domain needs
(``evasion`` imitates what counterfeiters do to a brand mark to slip past screening), and a
name is easy to log, compare and sweep. Every recipe, and the eval transform, ends with the
same letterbox to ``image_size``, normalisation and tensor conversion, taken from one
:class:`Preprocessing` that is stored with the model so serving cannot drift from training.

Inputs are HxWx3 uint8 arrays (see :func:`ipguard.data.images.to_rgb_array`); outputs are
``{"image": torch.FloatTensor[3, S, S]}``.

DataLoader workers fork a copy of the pipeline's random state; give each worker its own
stream in ``worker_init_fn`` with ``transform.set_random_seed(torch.initial_seed() % 2**32)``.
"""

from __future__ import annotations

import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import albumentations as A
import cv2
import numpy as np
from albumentations.core.transforms_interface import BaseTransformInitSchema
from albumentations.pytorch import ToTensorV2
from PIL import Image
from pydantic import model_validator

RECIPES = ("none", "light", "standard", "evasion")
"""Names accepted by :func:`build_train_transform`, from no augmentation to adversarial."""

# Random crops are taken from the image letterboxed to this multiple of image_size: large
# photos are shrunk once, cheaply, yet a crop still has up to 2x the final detail.
_CROP_SOURCE_SCALE = 2


@dataclass(frozen=True)
class Preprocessing:
    """What a model expects of its input pixels; saved with the model, read back at serving."""

    image_size: int = 128
    """Side of the square the image is letterboxed into, in pixels."""
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    """Per-channel (R, G, B) mean subtracted after scaling pixels to 0..1."""
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    """Per-channel (R, G, B) standard deviation divided by after subtracting the mean."""

    def __post_init__(self) -> None:
        size = self.image_size
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 8:
            raise ValueError(f"Preprocessing.image_size must be an int >= 8; found {size!r}")
        object.__setattr__(self, "image_size", int(size))
        object.__setattr__(self, "mean", _three_floats("mean", self.mean, positive=False))
        object.__setattr__(self, "std", _three_floats("std", self.std, positive=True))

    @property
    def pad_fill(self) -> tuple[float, float, float]:
        """The pixel value that normalises to zero: letterbox bars carry no signal."""
        return tuple(round(255.0 * m, 3) for m in self.mean)  # type: ignore[return-value]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types, for model metadata and MLflow params."""
        return {"image_size": self.image_size, "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Preprocessing:
        """Rebuild from :meth:`to_dict`; every field is required so a stored model never
        silently picks up a default that changed after it was trained."""
        if not isinstance(d, Mapping):
            raise TypeError(f"Preprocessing.from_dict expects a mapping; found {type(d).__name__}")
        expected = [f.name for f in fields(cls)]
        missing = [name for name in expected if name not in d]
        unknown = sorted(str(key) for key in d if key not in expected)
        if missing or unknown:
            raise ValueError(
                f"Preprocessing.from_dict expects exactly the keys {expected}; "
                f"missing {missing}, unknown {unknown}"
            )
        return cls(image_size=d["image_size"], mean=tuple(d["mean"]), std=tuple(d["std"]))


class SelfCollage(A.ImageOnlyTransform):
    """Tile the image with an n x n grid of shrunk, sometimes mirrored copies of itself.

    Counterfeit listings often show a collage (several shots, a mirrored copy, a mark repeated
    small) so that no single view matches the brand's reference photo; this teaches the model
    that a mark repeated small is still the mark. n x n keeps every copy's aspect ratio.
    """

    class InitSchema(BaseTransformInitSchema):
        grid_range: tuple[int, int]
        flip_probability: float

        @model_validator(mode="after")
        def _check(self) -> SelfCollage.InitSchema:
            low, high = self.grid_range
            if not 1 <= low <= high <= 6:
                raise ValueError(
                    f"grid_range must satisfy 1 <= low <= high <= 6; found {low, high}"
                )
            if not 0.0 <= self.flip_probability <= 1.0:
                raise ValueError(
                    f"flip_probability must be in [0, 1]; found {self.flip_probability}"
                )
            return self

    def __init__(
        self,
        grid_range: tuple[int, int] = (2, 3),
        flip_probability: float = 0.5,
        p: float = 0.5,
    ) -> None:
        super().__init__(p=p)
        self.grid_range = grid_range
        self.flip_probability = flip_probability

    def get_params(self) -> dict[str, Any]:
        grid = self.py_random.randint(*self.grid_range)
        flips = [self.py_random.random() < self.flip_probability for _ in range(grid * grid)]
        return {"grid": grid, "flips": flips}

    def apply(self, img: np.ndarray, grid: int, flips: list[bool], **params: Any) -> np.ndarray:
        height, width = img.shape[:2]
        if grid < 2 or height < grid or width < grid:
            return img
        ys = np.linspace(0, height, grid + 1).astype(int)
        xs = np.linspace(0, width, grid + 1).astype(int)
        canvas = np.empty_like(img)
        for row in range(grid):
            for col in range(grid):
                cell_h, cell_w = ys[row + 1] - ys[row], xs[col + 1] - xs[col]
                tile = cv2.resize(img, (int(cell_w), int(cell_h)), interpolation=cv2.INTER_AREA)
                tile = tile.reshape(cell_h, cell_w, *img.shape[2:])
                if flips[row * grid + col]:
                    tile = tile[:, ::-1]
                canvas[ys[row] : ys[row + 1], xs[col] : xs[col + 1]] = tile
        return canvas


def build_train_transform(recipe: str, pre: Preprocessing) -> A.Compose:
    """The training pipeline for ``recipe`` (one of :data:`RECIPES`)."""
    builders = {
        "none": _none_steps,
        "light": _light_steps,
        "standard": _standard_steps,
        "evasion": _evasion_steps,
    }
    if recipe not in builders:
        raise ValueError(f"unknown augmentation recipe {recipe!r}; expected one of {RECIPES}")
    return A.Compose([*builders[recipe](pre), *_finish(pre)], strict=True)


def build_eval_transform(pre: Preprocessing) -> A.Compose:
    """Deterministic letterbox + normalise + tensor, used for validation, test and serving."""
    return A.Compose(_finish(pre), strict=True)


def describe_recipe(recipe: str, pre: Preprocessing) -> dict[str, Any]:
    """A JSON-serialisable record of the exact pipeline, to log with the run."""
    transform = build_train_transform(recipe, pre)
    serialised = A.to_dict(transform)
    description = {
        "recipe": recipe,
        "preprocessing": pre.to_dict(),
        "albumentations_version": A.__version__,
        "pipeline": serialised["transform"],
    }
    return json.loads(json.dumps(description, default=_json_default))


def render_augmentation_grid(
    images: Sequence[np.ndarray],
    recipe: str,
    pre: Preprocessing,
    out_path: str | Path,
    *,
    n_per_image: int = 6,
    seed: int = 0,
) -> Path:
    """Write a PNG grid for eyeballing a recipe: one row per input, the input letterboxed
    to ``image_size`` then ``n_per_image`` augmented samples, denormalised back to pixels.

    The PNG is ``(1 + n_per_image) * image_size`` wide and ``len(images) * image_size`` high;
    the same ``seed`` gives the same grid.
    """
    if n_per_image < 1:
        raise ValueError(f"n_per_image must be >= 1; found {n_per_image}")
    if len(images) == 0:
        raise ValueError("render_augmentation_grid needs at least one image; found none")
    for index, image in enumerate(images):
        _check_rgb_uint8(image, f"images[{index}]")
    transform = build_train_transform(recipe, pre)
    transform.set_random_seed(seed)
    show_input = A.Compose(_letterbox(pre, pre.image_size), strict=True)
    size = pre.image_size
    canvas = np.empty((len(images) * size, (1 + n_per_image) * size, 3), dtype=np.uint8)
    for row, image in enumerate(images):
        top = row * size
        canvas[top : top + size, :size] = show_input(image=image)["image"]
        for sample in range(1, n_per_image + 1):
            tensor = transform(image=image)["image"]
            canvas[top : top + size, sample * size : (sample + 1) * size] = _denormalise(
                tensor.numpy(), pre
            )
    path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(canvas).save(path, format="PNG")
    return path


def _letterbox(pre: Preprocessing, size: int) -> list[A.BasicTransform]:
    """Fit the longest side to ``size`` and pad to a square, keeping the product's shape."""
    return [
        A.LongestMaxSize(max_size=size, area_for_downscale="image"),
        A.PadIfNeeded(
            min_height=size,
            min_width=size,
            position="center",
            border_mode=cv2.BORDER_CONSTANT,
            fill=pre.pad_fill,
        ),
    ]


def _finish(pre: Preprocessing) -> list[A.BasicTransform]:
    return [
        *_letterbox(pre, pre.image_size),
        A.Normalize(mean=pre.mean, std=pre.std, max_pixel_value=255.0),
        ToTensorV2(),
    ]


def _none_steps(pre: Preprocessing) -> list[A.BasicTransform]:
    return []


def _light_steps(pre: Preprocessing) -> list[A.BasicTransform]:
    """Small, label-safe changes: a mirrored or slightly shifted photo of the same item."""
    return [
        *_letterbox(pre, pre.image_size),
        A.HorizontalFlip(p=0.5),
        A.ColorJitter(brightness=0.1, contrast=0.1, saturation=0.1, hue=0.02, p=0.5),
        A.Affine(
            translate_percent=(-0.05, 0.05),
            scale=(0.9, 1.1),
            border_mode=cv2.BORDER_CONSTANT,
            fill=pre.pad_fill,
            p=0.5,
        ),
    ]


def _standard_steps(pre: Preprocessing) -> list[A.BasicTransform]:
    """The usual image-classification diet: crops, flips, colour, a little rotation, blur."""
    size = pre.image_size
    return [
        *_letterbox(pre, _CROP_SOURCE_SCALE * size),
        A.RandomResizedCrop(
            size=(size, size), scale=(0.5, 1.0), ratio=(0.75, 4 / 3), area_for_downscale="image"
        ),
        A.HorizontalFlip(p=0.5),
        A.VerticalFlip(p=0.05),
        A.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.05, p=0.8),
        A.Affine(rotate=(-15, 15), border_mode=cv2.BORDER_CONSTANT, fill=pre.pad_fill, p=0.4),
        A.GaussianBlur(blur_limit=(3, 5), sigma_limit=(0.1, 1.5), p=0.1),
    ]


def _evasion_steps(pre: Preprocessing) -> list[A.BasicTransform]:
    """What sellers do to a brand mark to dodge screening: crop it off-centre, tilt it,
    recolour it, blur and re-compress it, cover part of it, or paste it into a collage."""
    size = pre.image_size
    recolour = A.OneOf(
        [
            A.HueSaturationValue(
                hue_shift_limit=(-90, 90), sat_shift_limit=(-60, 60), val_shift_limit=(-40, 40), p=1
            ),
            A.ChannelShuffle(p=1),
            A.ToGray(p=1),
            A.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.6, hue=0.2, p=1),
        ],
        p=0.7,
    )
    return [
        *_letterbox(pre, _CROP_SOURCE_SCALE * size),
        SelfCollage(grid_range=(2, 3), flip_probability=0.5, p=0.2),
        A.RandomResizedCrop(
            size=(size, size), scale=(0.2, 1.0), ratio=(0.5, 2.0), area_for_downscale="image"
        ),
        A.HorizontalFlip(p=0.5),
        A.Affine(
            rotate=(-45, 45),
            scale=(0.7, 1.2),
            shear=(-10, 10),
            border_mode=cv2.BORDER_CONSTANT,
            fill=pre.pad_fill,
            p=0.6,
        ),
        recolour,
        A.GaussianBlur(blur_limit=(3, 7), sigma_limit=(0.5, 2.5), p=0.3),
        A.ImageCompression(compression_type="jpeg", quality_range=(15, 60), p=0.5),
        A.CoarseDropout(
            num_holes_range=(1, 4),
            hole_height_range=(0.1, 0.3),
            hole_width_range=(0.1, 0.3),
            fill="random_uniform",
            p=0.5,
        ),
    ]


def _denormalise(chw: np.ndarray, pre: Preprocessing) -> np.ndarray:
    mean = np.asarray(pre.mean, dtype=np.float32)[:, None, None]
    std = np.asarray(pre.std, dtype=np.float32)[:, None, None]
    pixels = (chw * std + mean) * 255.0
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8).transpose(1, 2, 0)


def _check_rgb_uint8(image: object, where: str) -> None:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{where}: expected an HxWx3 uint8 numpy array; found {type(image)}")
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"{where}: expected an HxWx3 uint8 array; found shape {image.shape}, "
            f"dtype {image.dtype}"
        )


def _three_floats(name: str, value: object, *, positive: bool) -> tuple[float, float, float]:
    try:
        numbers = tuple(float(v) for v in value)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        numbers = ()
    if len(numbers) != 3 or not all(np.isfinite(numbers)) or (positive and min(numbers) <= 0):
        wanted = "3 positive floats" if positive else "3 finite floats"
        raise ValueError(f"Preprocessing.{name} must be {wanted} (R, G, B); found {value!r}")
    return numbers  # type: ignore[return-value]


def _json_default(value: object) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot describe {type(value).__name__} value {value!r} as JSON")
