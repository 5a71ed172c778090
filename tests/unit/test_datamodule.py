"""ListingDataModule: validated rows, leakage-safe splits written to disk, batches per modality."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from hydra.utils import instantiate

from ipguard.config import compose
from ipguard.data.datamodule import ListingDataModule


def _module(manifest: Path, out: Path, **kwargs) -> ListingDataModule:
    kwargs.setdefault("image_size", 32)
    kwargs.setdefault("batch_size", 8)
    dm = ListingDataModule(str(manifest), output_dir=str(out), **kwargs)
    dm.setup("fit")
    return dm


def test_splits_cover_every_valid_row_once_and_are_saved(demo_small, tmp_path: Path) -> None:
    dm = _module(demo_small.manifest_path, tmp_path)
    ids = pd.concat([f["listing_id"] for f in dm.frames.values()])
    assert ids.is_unique and len(ids) == dm.validation.rows_valid == 240
    saved = pd.read_csv(tmp_path / "splits.csv")
    assert set(saved["split"]) == {"train", "val", "test"}
    assert len(saved) == 240


def test_sellers_do_not_cross_splits_by_default(demo_small, tmp_path: Path) -> None:
    dm = _module(demo_small.manifest_path, tmp_path)
    sellers = {name: set(f["seller_id"]) for name, f in dm.frames.items()}
    assert not sellers["train"] & sellers["test"]
    assert not sellers["train"] & sellers["val"]


def test_saved_split_file_reproduces_the_split(demo_small, tmp_path: Path) -> None:
    first = _module(demo_small.manifest_path, tmp_path / "a", split={"seed": 1})
    again = _module(
        demo_small.manifest_path,
        tmp_path / "b",
        split={"seed": 99},
        split_file=str(tmp_path / "a" / "splits.csv"),
    )
    for name in ("train", "val", "test"):
        assert (
            first.frames[name]["listing_id"].tolist() == again.frames[name]["listing_id"].tolist()
        )


def test_image_batch_has_every_key_and_shape(demo_small, tmp_path: Path) -> None:
    dm = _module(demo_small.manifest_path, tmp_path)
    dm.configure_inputs(modalities=("image", "text"))
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (8, 3, 32, 32)
    assert batch["image_present"].all()
    assert len(batch["text"]) == 8 and all(isinstance(t, str) and t for t in batch["text"])
    assert set(batch["label"].tolist()) <= {0, 1}


def test_text_only_models_skip_image_decoding(
    demo_small, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ipguard.data.datasets as datasets

    def _fail(*args, **kwargs):
        raise AssertionError("decoded an image for a text-only model")

    monkeypatch.setattr(datasets, "decode_image", _fail)
    dm = _module(demo_small.manifest_path, tmp_path)
    dm.configure_inputs(modalities=("text",))
    batch = next(iter(dm.loader("val")))
    assert not batch["image_present"].any()


def test_unreadable_image_keeps_the_listing_and_is_counted(demo_small, tmp_path: Path) -> None:
    frame = pd.read_csv(demo_small.manifest_path)
    broken = demo_small.root / "images" / "broken.jpg"
    broken.write_bytes(b"not a jpeg at all")
    frame.loc[0, "image_path"] = "images/broken.jpg"
    manifest = demo_small.root / "with_broken.csv"
    frame.to_csv(manifest, index=False)
    dm = _module(manifest, tmp_path)
    dm.configure_inputs(modalities=("image",))
    split = next(n for n, f in dm.frames.items() if "images/broken.jpg" in set(f["image_path"]))
    rows = dm.frames[split]["image_path"].tolist()
    item = dm.dataset(split)[rows.index("images/broken.jpg")]
    assert item["image_unusable"] and not item["image_present"]
    assert torch.count_nonzero(item["image"]) == 0


def test_weighted_sampler_balances_classes(demo_small, tmp_path: Path) -> None:
    dm = _module(demo_small.manifest_path, tmp_path, sampler="weighted", batch_size=64)
    dm.configure_inputs(modalities=("text",))
    torch.manual_seed(0)
    labels = torch.cat([b["label"] for b in dm.train_dataloader()])
    assert 0.35 < labels.float().mean().item() < 0.65


def test_unknown_options_are_rejected_with_the_config_key() -> None:
    with pytest.raises(ValueError, match=r"data\.on_error"):
        ListingDataModule(on_error="ignore")
    with pytest.raises(ValueError, match=r"data\.sampler"):
        ListingDataModule(sampler="oversample")


def test_quarantine_writes_rejects_and_counts_every_row(demo_small, tmp_path: Path) -> None:
    frame = pd.read_csv(demo_small.manifest_path)
    frame.loc[3, "price"] = -5
    frame.loc[4, "label"] = "fake"
    manifest = demo_small.root / "with_bad_rows.csv"
    frame.to_csv(manifest, index=False)
    dm = _module(manifest, tmp_path, on_error="quarantine")
    v = dm.validation
    assert (v.rows_in, v.rows_valid, v.rows_rejected) == (240, 238, 2)
    rejects = pd.read_csv(tmp_path / "rejects.csv")
    assert len(rejects) == 2
    assert rejects["reject_reason"].str.contains("price").any()


def _with_bad_images(demo_small, name: str) -> Path:
    """The demo manifest with rows 0 and 1 pointing at an HTML page and an empty file."""
    frame = pd.read_csv(demo_small.manifest_path)
    (demo_small.root / "images" / "page.jpg").write_bytes(b"<html>404</html>")
    (demo_small.root / "images" / "zero.jpg").write_bytes(b"")
    frame.loc[0, "image_path"] = "images/page.jpg"
    frame.loc[1, "image_path"] = "images/zero.jpg"
    manifest = demo_small.root / name
    frame.to_csv(manifest, index=False)
    return manifest


def test_summary_counts_unusable_images_at_the_start_of_training(
    demo_small, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    manifest = _with_bad_images(demo_small, "bad_images.csv")
    with caplog.at_level("INFO", logger="ipguard.data.datamodule"):
        dm = _module(manifest, tmp_path)
    summary = dm.summary()
    assert summary["images_check"] == "header" and summary["images_checked"] == 240
    assert summary["images_unusable"] == 2
    assert summary["images_unusable_by_reason"] == {"image_unreadable": 2}
    assert summary["rows_valid"] == 240  # kept: trained without their image
    assert "images: 240 header-checked (data.decode_images=header), 2 unusable" in caplog.text


def test_unusable_images_reject_sets_those_rows_aside_in_quarantine(
    demo_small, tmp_path: Path
) -> None:
    manifest = _with_bad_images(demo_small, "bad_images_reject.csv")
    dm = _module(manifest, tmp_path, on_error="quarantine", unusable_images="reject")
    v = dm.validation
    assert (v.rows_in, v.rows_valid, v.rows_rejected) == (240, 238, 2)
    rejects = pd.read_csv(tmp_path / "rejects.csv")
    assert rejects["reject_reason"].str.contains("image_unreadable").all()


def test_images_are_not_opened_up_front_when_decode_images_is_none(
    demo_small, tmp_path: Path
) -> None:
    dm = _module(demo_small.manifest_path, tmp_path, decode_images="none")
    assert dm.summary()["images_unusable"] is None


def test_team_label_values_train_without_rewriting_the_manifest(demo_small, tmp_path: Path) -> None:
    frame = pd.read_csv(demo_small.manifest_path)
    frame["label"] = frame["label"].map({"genuine": "ok", "infringing": "FAKE"})
    manifest = demo_small.root / "team_labels.csv"
    frame.to_csv(manifest, index=False, sep=";")
    dm = _module(manifest, tmp_path, label_values={"genuine": ["ok"], "infringing": ["fake"]})
    labels = pd.concat([f["label"] for f in dm.frames.values()])
    assert set(labels) == {"genuine", "infringing"} and len(labels) == 240
    assert 0.2 < dm.positive_fraction() < 0.6


def test_image_options_are_checked_with_their_config_key() -> None:
    with pytest.raises(ValueError, match=r"data\.decode_images"):
        ListingDataModule(decode_images="everything")
    with pytest.raises(ValueError, match=r"data\.unusable_images"):
        ListingDataModule(unusable_images="drop")


def test_demo_data_trains_with_the_catalog_that_prices_every_currency(tmp_path: Path) -> None:
    demo = f"${{ipguard.demo_manifest:{tmp_path / 'demo'},30}}"
    dm = instantiate(compose("train", [f"data.manifest='{demo}'"]).data)
    dm.prepare_data()
    assert dm.brands_path == str(tmp_path / "demo" / "brands_by_currency.csv")
