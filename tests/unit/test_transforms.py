"""Recipes produce model-ready tensors from any photo shape; preprocessing survives storage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ipguard.data.transforms import (
    RECIPES,
    Preprocessing,
    SelfCollage,
    build_eval_transform,
    build_train_transform,
    describe_recipe,
    render_augmentation_grid,
)

SIZE = 32
PRE = Preprocessing(image_size=SIZE)
ODD_SHAPES = [(1, 1), (3, 5), (37, 200), (300, 41), (640, 960)]


def _noise(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _quadrants(size: int = 64) -> np.ndarray:
    image = np.empty((size, size, 3), dtype=np.uint8)
    half = size // 2
    image[:half, :half] = (255, 0, 0)
    image[:half, half:] = (0, 255, 0)
    image[half:, :half] = (0, 0, 255)
    image[half:, half:] = (255, 255, 255)
    return image


def _normalised(pixel: tuple[int, int, int], pre: Preprocessing) -> np.ndarray:
    return (np.array(pixel) / 255.0 - np.array(pre.mean)) / np.array(pre.std)


def test_preprocessing_round_trips_through_a_json_dict():
    pre = Preprocessing(image_size=224, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))
    stored = json.loads(json.dumps(pre.to_dict()))
    assert Preprocessing.from_dict(stored) == pre
    assert Preprocessing.from_dict(Preprocessing().to_dict()) == Preprocessing()


def test_preprocessing_from_dict_names_missing_and_unknown_keys():
    with pytest.raises(ValueError, match="std"):
        Preprocessing.from_dict({"image_size": 64, "mean": [0.5] * 3})
    with pytest.raises(ValueError, match="resize_mode"):
        Preprocessing.from_dict({**Preprocessing().to_dict(), "resize_mode": "crop"})


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"image_size": 0}, "image_size"),
        ({"image_size": 64.5}, "image_size"),
        ({"mean": (0.5, 0.5)}, "mean"),
        ({"std": (0.2, 0.0, 0.2)}, "std"),
        ({"std": ("a", "b", "c")}, "std"),
    ],
)
def test_preprocessing_rejects_invalid_values_naming_the_field(kwargs: dict, field: str):
    with pytest.raises(ValueError, match=field):
        Preprocessing(**kwargs)


def test_eval_transform_is_deterministic_and_gives_a_3xSxS_float_tensor():
    transform = build_eval_transform(PRE)
    image = _noise(45, 70)
    first = transform(image=image)["image"]
    second = transform(image=image)["image"]
    assert isinstance(first, torch.Tensor)
    assert first.dtype == torch.float32
    assert tuple(first.shape) == (3, SIZE, SIZE)
    assert torch.equal(first, second)


def test_eval_transform_normalises_with_the_stored_mean_and_std():
    pre = Preprocessing(image_size=16, mean=(0.2, 0.5, 0.8), std=(0.1, 0.2, 0.4))
    white = np.full((16, 16, 3), 255, dtype=np.uint8)
    out = build_eval_transform(pre)(image=white)["image"].numpy()
    expected = _normalised((255, 255, 255), pre)
    np.testing.assert_allclose(out.mean(axis=(1, 2)), expected, atol=1e-4)


def test_eval_transform_letterboxes_keeping_the_aspect_ratio_with_neutral_bars():
    wide_red = np.zeros((20, 40, 3), dtype=np.uint8)
    wide_red[..., 0] = 255
    out = build_eval_transform(PRE)(image=wide_red)["image"].numpy()
    centre = out[:, SIZE // 2, SIZE // 2]
    np.testing.assert_allclose(centre, _normalised((255, 0, 0), PRE), atol=0.05)
    # bars above and below: the padding value normalises to (about) zero
    np.testing.assert_allclose(out[:, 0, :], 0.0, atol=0.02)
    np.testing.assert_allclose(out[:, -1, :], 0.0, atol=0.02)
    np.testing.assert_allclose(out[:, :, 0][:, SIZE // 2], _normalised((255, 0, 0), PRE), atol=0.05)


@pytest.mark.parametrize("recipe", RECIPES)
@pytest.mark.parametrize(("height", "width"), ODD_SHAPES)
def test_every_recipe_returns_3xSxS_float_for_odd_sized_inputs(
    recipe: str, height: int, width: int
):
    transform = build_train_transform(recipe, PRE)
    transform.set_random_seed(height * 1000 + width)
    for _ in range(3):
        out = transform(image=_noise(height, width))["image"]
        assert out.dtype == torch.float32
        assert tuple(out.shape) == (3, SIZE, SIZE)
        assert torch.isfinite(out).all()


def test_unknown_recipe_error_lists_the_recipes():
    with pytest.raises(ValueError, match="unknown augmentation recipe 'heavy'") as error:
        build_train_transform("heavy", PRE)
    for recipe in RECIPES:
        assert recipe in str(error.value)
    with pytest.raises(ValueError, match="evasion"):
        describe_recipe("heavy", PRE)


def test_recipe_none_matches_the_eval_transform():
    image = _noise(50, 30)
    train = build_train_transform("none", PRE)(image=image)["image"]
    evaluation = build_eval_transform(PRE)(image=image)["image"]
    assert torch.equal(train, evaluation)


@pytest.mark.parametrize("recipe", ["light", "standard", "evasion"])
def test_augmenting_recipes_vary_between_calls_and_repeat_under_a_seed(recipe: str):
    image = _noise(60, 80)
    transform = build_train_transform(recipe, PRE)
    transform.set_random_seed(7)
    first_run = [transform(image=image)["image"] for _ in range(6)]
    transform.set_random_seed(7)
    second_run = [transform(image=image)["image"] for _ in range(6)]
    assert all(torch.equal(a, b) for a, b in zip(first_run, second_run, strict=True))
    assert any(not torch.equal(first_run[0], other) for other in first_run[1:])


def test_self_collage_tiles_the_image_with_shrunk_copies():
    collage = SelfCollage(grid_range=(2, 2), flip_probability=0.0, p=1.0)
    out = collage(image=_quadrants(64))["image"]
    assert out.shape == (64, 64, 3)
    for top in (0, 32):
        for left in (0, 32):
            tile = out[top : top + 32, left : left + 32].astype(int)
            assert tuple(tile[4, 4]) == (255, 0, 0)  # each tile starts with the red quadrant
            assert tuple(tile[28, 28]) == (255, 255, 255)


def test_self_collage_mirrors_tiles_when_asked():
    collage = SelfCollage(grid_range=(2, 2), flip_probability=1.0, p=1.0)
    out = collage(image=_quadrants(64))["image"]
    assert tuple(out[4, 4]) == (0, 255, 0)  # mirrored: the green quadrant is now top-left


def test_self_collage_leaves_images_too_small_to_tile_unchanged():
    image = _noise(2, 9)
    out = SelfCollage(grid_range=(3, 3), p=1.0)(image=image)["image"]
    np.testing.assert_array_equal(out, image)


@pytest.mark.parametrize("grid_range", [(0, 2), (3, 2), (2, 9)])
def test_self_collage_rejects_an_invalid_grid_range(grid_range: tuple[int, int]):
    with pytest.raises(ValueError, match="grid_range"):
        SelfCollage(grid_range=grid_range)


@pytest.mark.parametrize("recipe", RECIPES)
def test_describe_recipe_is_json_and_every_recipe_ends_with_resize_normalise_tensor(recipe):
    description = describe_recipe(recipe, PRE)
    assert json.loads(json.dumps(description)) == description
    assert description["recipe"] == recipe
    assert description["preprocessing"] == PRE.to_dict()
    names = [step["__class_fullname__"] for step in description["pipeline"]["transforms"]]
    assert names[-4:] == ["LongestMaxSize", "PadIfNeeded", "Normalize", "ToTensorV2"]
    normalize = description["pipeline"]["transforms"][-2]
    assert normalize["mean"] == pytest.approx(list(PRE.mean))
    assert normalize["std"] == pytest.approx(list(PRE.std))


def test_evasion_recipe_includes_the_counterfeiter_tricks():
    text = json.dumps(describe_recipe("evasion", PRE))
    for trick in [
        "RandomResizedCrop",
        "Affine",
        "HueSaturationValue",
        "ChannelShuffle",
        "ToGray",
        "GaussianBlur",
        "ImageCompression",
        "CoarseDropout",
        "SelfCollage",
    ]:
        assert trick in text, trick


def test_augmentation_grid_png_has_one_row_per_image_and_a_column_per_sample(tmp_path: Path):
    images = [_quadrants(40), _noise(30, 90)]
    out = render_augmentation_grid(
        images, "evasion", PRE, tmp_path / "grids" / "evasion.png", n_per_image=3
    )
    assert out == tmp_path / "grids" / "evasion.png"
    with Image.open(out) as grid:
        assert grid.format == "PNG"
        assert grid.size == ((1 + 3) * SIZE, 2 * SIZE)
        pixels = np.asarray(grid.convert("RGB")).astype(int)
    # the first cell shows the input itself: red top-left quadrant of the quadrant image
    assert tuple(pixels[4, 4]) == (255, 0, 0)


def test_augmentation_grid_is_reproducible_from_its_seed(tmp_path: Path):
    images = [_noise(50, 50)]
    paths = [
        render_augmentation_grid(images, "standard", PRE, tmp_path / f"{name}.png", seed=seed)
        for name, seed in [("a", 1), ("b", 1), ("c", 2)]
    ]
    a, b, c = (np.asarray(Image.open(p)) for p in paths)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_augmentation_grid_rejects_input_that_is_not_hxwx3_uint8(tmp_path: Path):
    with pytest.raises(ValueError, match=r"images\[1\].*float"):
        render_augmentation_grid(
            [_noise(8, 8), np.zeros((8, 8, 3), dtype=np.float32)], "light", PRE, tmp_path / "x.png"
        )
    with pytest.raises(ValueError, match="at least one image"):
        render_augmentation_grid([], "light", PRE, tmp_path / "x.png")
