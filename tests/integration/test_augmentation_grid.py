"""Every image training run records how it augmented: the exact albumentations pipeline as
JSON and a PNG grid of augmented training images, both as MLflow artifacts of the run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from ipguard.config import compose
from ipguard.jobs.train import train

pytestmark = pytest.mark.integration

IMAGE_SIZE = 32  # debug=fast


@pytest.fixture(scope="module")
def evasion_run(demo_small: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    home = tmp_path_factory.mktemp("grid-home")
    mp = pytest.MonkeyPatch()
    mp.setenv("IPGUARD_HOME", str(home))
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    try:
        cfg = compose(
            "train",
            [
                "debug=fast",
                "model=image",
                "model.backbone=tiny_cnn",
                "data.augment=evasion",
                f"data.manifest={demo_small.manifest_path}",
                "register=false",
            ],
        )
        result = train(cfg)
    finally:
        mp.undo()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(result.tracking_uri)
    folder = Path(client.download_artifacts(result.run_id, "data", str(home / "artifacts")))
    return result, folder


def test_run_logs_the_evasion_recipe_as_json(evasion_run: tuple[Any, Path]) -> None:
    _, folder = evasion_run
    recipe = json.loads((folder / "augmentation.json").read_text())
    assert recipe["recipe"] == "evasion"
    assert recipe["preprocessing"]["image_size"] == IMAGE_SIZE
    steps = json.dumps(recipe["pipeline"])
    for name in ("SelfCollage", "RandomResizedCrop", "ImageCompression", "CoarseDropout"):
        assert name in steps, name


def test_run_logs_a_png_grid_of_augmented_training_images(evasion_run: tuple[Any, Path]) -> None:
    _, folder = evasion_run
    with Image.open(folder / "augmentation_grid.png") as grid:
        assert grid.format == "PNG"
        width, height = grid.size
        pixels = np.asarray(grid.convert("RGB"))
    # one row per sample image: the input, then six augmented versions of it
    assert width == 7 * IMAGE_SIZE
    assert height % IMAGE_SIZE == 0 and height >= IMAGE_SIZE
    first_row = pixels[:IMAGE_SIZE]
    tiles = [first_row[:, i * IMAGE_SIZE : (i + 1) * IMAGE_SIZE] for i in range(7)]
    assert any(not np.array_equal(tiles[0], tile) for tile in tiles[1:])  # it did augment
