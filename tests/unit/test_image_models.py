"""Image networks: backbones by name, offline-safe pretrained weights, Hydra-free reload."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from ipguard.models.image_classifier import ImageClassifier
from ipguard.models.module import FROZEN_HEAD_LR, TRAINED_LR
from ipguard.nets.image import (
    ImageNetwork,
    PretrainedWeightsMissing,
    create_backbone,
    list_backbones,
)


@pytest.mark.parametrize(
    "name",
    [
        "tiny_cnn",
        "resnet18",
        "mobilenet_v3_small",
        "efficientnet_b0",
        pytest.param("convnext_tiny", marks=pytest.mark.slow),
    ],
)
def test_backbone_gives_one_logit_per_image(name: str) -> None:
    net = ImageNetwork(name, image_size=64).eval()
    with torch.inference_mode():
        out = net(torch.rand(3, 3, 64, 64))
    assert out.shape == (3,)
    assert torch.isfinite(out).all()


@pytest.mark.slow
def test_vit_takes_the_configured_image_size_when_random_init() -> None:
    net = ImageNetwork("vit_b_16", image_size=64).eval()
    with torch.inference_mode():
        assert net(torch.rand(1, 3, 64, 64)).shape == (1,)


def test_backbone_list_includes_torchvision_classifiers() -> None:
    names = list_backbones()
    assert {"tiny_cnn", "resnet50", "efficientnet_b0", "convnext_tiny"} <= set(names)


def test_unknown_backbone_names_the_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown backbone 'resnet19'.*list_backbones"):
        create_backbone("resnet19")


def test_pretrained_without_cached_weights_fails_fast_naming_the_file(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(PretrainedWeightsMissing) as err:
        create_backbone("resnet18", pretrained=True, hub_dir=tmp_path)
    assert time.monotonic() - started < 10  # no network wait
    message = str(err.value)
    assert "resnet18-f37072fd.pth" in message
    assert str(tmp_path / "checkpoints") in message


def test_pretrained_weights_are_read_from_the_cache_folder(tmp_path: Path) -> None:
    import torchvision

    reference = torchvision.models.resnet18(weights=None)
    target = tmp_path / "checkpoints" / "resnet18-f37072fd.pth"
    target.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), target)
    net, spec = create_backbone("resnet18", pretrained=True, hub_dir=tmp_path)
    assert torch.equal(net.conv1.weight, reference.conv1.weight)
    assert spec.feature_dim == 512


def test_weights_path_loads_a_local_safetensors_file(tmp_path: Path) -> None:
    import torchvision
    from safetensors.torch import save_file

    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path / "r18.safetensors"
    save_file(reference.state_dict(), str(path))
    net, _ = create_backbone("resnet18", weights_path=path)
    assert torch.equal(net.layer1[0].conv1.weight, reference.layer1[0].conv1.weight)


def test_weights_path_that_does_not_fit_says_so(tmp_path: Path) -> None:
    path = tmp_path / "wrong.pth"
    torch.save({"nothing": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match="does not fit backbone 'resnet18'"):
        create_backbone("resnet18", weights_path=path)


def test_classifier_reloads_from_checkpoint_without_hydra(tmp_path: Path) -> None:
    import lightning as L

    model = ImageClassifier("tiny_cnn", image_size=32, lr=0.01)
    trainer = L.Trainer(
        max_epochs=0, logger=False, enable_checkpointing=False, enable_progress_bar=False
    )
    trainer.strategy.connect(model)
    path = tmp_path / "m.ckpt"
    trainer.save_checkpoint(path)
    loaded = ImageClassifier.load_from_checkpoint(path)
    assert loaded.hparams.backbone == "tiny_cnn"
    batch = {"image": torch.rand(2, 3, 32, 32)}
    model.eval()
    loaded.eval()
    assert torch.allclose(model.logits(batch), loaded.logits(batch))


def test_frozen_backbone_epochs_stop_backbone_gradients() -> None:
    model = ImageClassifier("tiny_cnn", image_size=32, freeze_backbone_epochs=1)

    class _Trainer:
        current_epoch = 0

    model._trainer = _Trainer()  # type: ignore[assignment]
    model.on_train_epoch_start()
    assert not any(p.requires_grad for p in model.backbone_parameters())
    assert all(p.requires_grad for p in model.net.head.parameters())
    _Trainer.current_epoch = 1
    model.on_train_epoch_start()
    assert all(p.requires_grad for p in model.backbone_parameters())


def test_lr_none_takes_the_rate_that_suits_what_trains() -> None:
    scratch = ImageClassifier("tiny_cnn", image_size=32)
    frozen = ImageClassifier("efficientnet_lite0", image_size=32)  # pretrained, frozen all run
    fine_tuned = ImageClassifier("efficientnet_lite0", image_size=32, freeze_backbone_epochs=1)
    assert scratch.resolved_lr() == TRAINED_LR
    assert frozen.backbone_frozen_all_run and frozen.resolved_lr() == FROZEN_HEAD_LR
    assert fine_tuned.resolved_lr() == TRAINED_LR
    assert ImageClassifier("tiny_cnn", image_size=32, lr=0.05).resolved_lr() == 0.05
    assert FROZEN_HEAD_LR > TRAINED_LR
