"""The dataset fingerprint changes with the data and with nothing else."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ipguard.data.columns import SOURCE_FILE
from ipguard.data.errors import ManifestError
from ipguard.data.fingerprint import dataset_fingerprint
from ipguard.data.io import read_manifest, write_manifest
from ipguard.data.schema import load_manifest


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[pd.DataFrame, Path]:
    (tmp_path / "img").mkdir()
    for i in range(4):
        (tmp_path / "img" / f"{i}.png").write_bytes(bytes([i]) * 64)
    df = pd.DataFrame(
        {
            "listing_id": ["b", "a", "d", "c"],
            "title": ["Sac Acme", "Acme bag", "Zeta watch", "Zeta wtch"],
            "price": ["12.50", "7", "", "0.30"],
            "currency": ["EUR", "USD", "", "USD"],
            "image_path": [f"img/{i}.png" for i in range(4)],
            "listed_at": ["2024-03-01T12:00:00Z"] * 4,
            "label": ["genuine", "genuine", "infringing", "infringing"],
        }
    )
    write_manifest(df, tmp_path / "m.csv")
    return read_manifest(tmp_path / "m.csv"), tmp_path


def test_fingerprint_is_a_sha256_hex_digest(dataset: tuple[pd.DataFrame, Path]) -> None:
    df, root = dataset
    digest = dataset_fingerprint(df, root)
    assert len(digest) == 64 and int(digest, 16) >= 0


def test_row_order_does_not_change_the_fingerprint(dataset: tuple[pd.DataFrame, Path]) -> None:
    df, root = dataset
    shuffled = df.sample(frac=1.0, random_state=3).reset_index(drop=True)
    assert not shuffled["listing_id"].equals(df["listing_id"])
    assert dataset_fingerprint(shuffled, root) == dataset_fingerprint(df, root)


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_file_format_does_not_change_the_fingerprint(
    dataset: tuple[pd.DataFrame, Path], suffix: str
) -> None:
    df, root = dataset
    typed = load_manifest(root / "m.csv").valid
    write_manifest(typed, root / f"copy{suffix}")
    assert dataset_fingerprint(read_manifest(root / f"copy{suffix}"), root) == (
        dataset_fingerprint(df, root)
    )


def test_extra_and_bookkeeping_columns_do_not_count(dataset: tuple[pd.DataFrame, Path]) -> None:
    df, root = dataset
    noisy = df.assign(notes="reviewed", **{SOURCE_FILE: "elsewhere.csv"})
    assert dataset_fingerprint(noisy, root) == dataset_fingerprint(df, root)


def test_one_changed_title_changes_the_fingerprint(dataset: tuple[pd.DataFrame, Path]) -> None:
    df, root = dataset
    edited = df.copy()
    edited.loc[2, "title"] = "Zeta watch!"
    assert dataset_fingerprint(edited, root) != dataset_fingerprint(df, root)


def test_one_changed_image_byte_changes_the_fingerprint(
    dataset: tuple[pd.DataFrame, Path],
) -> None:
    df, root = dataset
    before = dataset_fingerprint(df, root)
    pixels = bytearray((root / "img" / "2.png").read_bytes())
    pixels[10] ^= 1
    (root / "img" / "2.png").write_bytes(bytes(pixels))
    assert dataset_fingerprint(df, root) != before


def test_moving_a_value_between_columns_changes_the_fingerprint(
    dataset: tuple[pd.DataFrame, Path],
) -> None:
    df, root = dataset
    moved = df.copy()
    moved["description"] = moved["title"]
    moved["title"] = ""
    assert dataset_fingerprint(moved, root) != dataset_fingerprint(df, root)


def test_relabelling_a_row_changes_the_fingerprint(dataset: tuple[pd.DataFrame, Path]) -> None:
    df, root = dataset
    flipped = df.copy()
    flipped.loc[0, "label"] = "infringing"
    assert dataset_fingerprint(flipped, root) != dataset_fingerprint(df, root)


def test_missing_image_is_an_error_naming_the_row(dataset: tuple[pd.DataFrame, Path]) -> None:
    df, root = dataset
    (root / "img" / "3.png").unlink()
    with pytest.raises(ManifestError) as caught:
        dataset_fingerprint(df, root)
    [problem] = caught.value.problems
    assert (problem.file, problem.row, problem.column) == ("m.csv", 4, "image_path")


def test_rows_without_image_are_fingerprinted_and_differ_from_rows_with_one(
    dataset: tuple[pd.DataFrame, Path],
) -> None:
    df, root = dataset
    no_image = df.copy()
    no_image.loc[1, "image_path"] = None
    digest = dataset_fingerprint(no_image, root)
    assert digest != dataset_fingerprint(df, root)
    blank = no_image.copy()
    blank.loc[1, "image_path"] = "  "  # blank counts as missing, as in validation
    assert dataset_fingerprint(blank, root) == digest


def test_absent_optional_column_counts_as_all_missing(dataset: tuple[pd.DataFrame, Path]) -> None:
    df, root = dataset
    assert "brand" not in df
    assert dataset_fingerprint(df.assign(brand=None), root) == dataset_fingerprint(df, root)
    assert dataset_fingerprint(df.assign(brand="Acme"), root) != dataset_fingerprint(df, root)
