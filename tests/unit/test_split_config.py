"""Every split option is in the shipped data config, so the command line sets any of them
without a ``+``; the data module reports how it split in the summary a run logs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from omegaconf import OmegaConf

from ipguard.config import compose
from ipguard.data.datamodule import ListingDataModule
from ipguard.data.splits import SplitConfig


def test_data_config_lists_every_split_config_field_with_its_default() -> None:
    split = OmegaConf.to_container(compose("train", ["seed=3"]).data.split, resolve=True)
    fields = {field.name: field.default for field in dataclasses.fields(SplitConfig)}
    assert set(split) == set(fields)
    for name, default in fields.items():
        expected = 3 if name == "seed" else default  # the split seed follows the run's seed
        assert split[name] == expected, name
    assert SplitConfig(**split) == SplitConfig(seed=3)


def test_split_options_are_overridden_without_a_plus() -> None:
    overrides = [
        "data.split.near_duplicates=false",
        "data.split.photo_hash=phash",
        "data.split.max_hash_distance=6",
        "data.split.max_group_share=0.5",
        "data.split.time_groups=latest",
    ]
    split = OmegaConf.to_container(compose("train", overrides).data.split, resolve=True)
    config = SplitConfig(**split)
    assert config.near_duplicates is False and config.photo_hash == "phash"
    assert config.max_hash_distance == 6 and config.max_group_share == 0.5
    assert config.time_groups == "latest"


def test_data_summary_reports_how_the_split_was_made(demo_small, tmp_path: Path) -> None:
    dm = ListingDataModule(str(demo_small.manifest_path), output_dir=str(tmp_path), image_size=32)
    dm.setup("fit")
    summary = json.loads(json.dumps(dm.summary()))  # as training logs it: data/summary.json
    split = summary["split"]
    assert split["strategy"] == "group" and split["rows"] == summary["rows_valid"]
    assert split["split_sizes"] == {k: summary[f"rows_{k}"] for k in ("train", "val", "test")}
    assert split["groups"] >= 3 and 0 < split["largest_group_share"] < 1
    assert split["photo_hash"] == "signature" and split["rows_hashed"] == split["rows"]
    assert split["near_duplicate_links_dropped"] == 0


def test_data_summary_names_the_split_file_a_run_reused(demo_small, tmp_path: Path) -> None:
    first = ListingDataModule(str(demo_small.manifest_path), output_dir=str(tmp_path / "a"))
    first.setup("fit")
    reused = ListingDataModule(
        str(demo_small.manifest_path),
        output_dir=str(tmp_path / "b"),
        split_file=str(tmp_path / "a" / "splits.csv"),
    )
    reused.setup("fit")
    assert reused.summary()["split"] == {"split_file": str(tmp_path / "a" / "splits.csv")}
