"""load_model on a Lightning checkpoint: the class comes from the checkpoint itself.

Checkpoints record their LightningModule's import path when saved, so a checkpoint is rebuilt
without a Hydra config and without guessing the class from its hyper-parameters; one saved
without it (an older ipguard) is refused with the file's name and the argument that names
the class.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch

from ipguard.models.image_classifier import ImageClassifier
from ipguard.models.loading import PLACEHOLDER_POLICY, checkpoint_class, load_model
from ipguard.models.module import CHECKPOINT_CLASS_KEY

IMAGE_CLASS = "ipguard.models.image_classifier.ImageClassifier"


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    model = ImageClassifier("tiny_cnn", image_size=32, lr=0.01)
    trainer = L.Trainer(
        max_epochs=0, logger=False, enable_checkpointing=False, enable_progress_bar=False
    )
    trainer.strategy.connect(model)
    path = tmp_path / "tiny.ckpt"
    trainer.save_checkpoint(path)
    return path


def test_a_saved_checkpoint_names_its_class(checkpoint: Path) -> None:
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    assert saved[CHECKPOINT_CLASS_KEY] == IMAGE_CLASS
    assert checkpoint_class(checkpoint) is ImageClassifier


def test_loading_a_checkpoint_rebuilds_the_recorded_class_as_a_model_folder(
    checkpoint: Path, tmp_path: Path
) -> None:
    loaded = load_model(checkpoint, tmp_path / "scratch")
    assert loaded.source == "checkpoint"
    assert isinstance(loaded.module, ImageClassifier)
    assert loaded.policy is None  # a checkpoint has none
    assert loaded.spec.registered_model == "ipguard-image"
    assert loaded.spec.calibrator == {"method": "none"}
    assert loaded.spec.policy == PLACEHOLDER_POLICY
    assert (loaded.folder / "spec.json").is_file()
    assert loaded.uri == str(checkpoint.resolve())


def test_a_checkpoint_without_its_class_names_the_file_and_the_argument(
    checkpoint: Path, tmp_path: Path
) -> None:
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    del saved[CHECKPOINT_CLASS_KEY]
    old = tmp_path / "old.ckpt"
    torch.save(saved, old)
    with pytest.raises(ValueError, match=r"old\.ckpt: .*model_class="):
        load_model(old, tmp_path / "scratch")
    # the argument names it instead
    loaded = load_model(old, tmp_path / "scratch", model_class=IMAGE_CLASS)
    assert isinstance(loaded.module, ImageClassifier)


def test_a_source_that_is_no_model_says_what_was_expected(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nothing there"):
        load_model(tmp_path / "missing.ckpt", tmp_path / "scratch")
