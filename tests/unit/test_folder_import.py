"""Importing genuine/ + infringing/ image folders: every file is imported or reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipguard.data.errors import ManifestError
from ipguard.data.folder import IGNORED_ATTR, manifest_from_folder
from ipguard.data.schema import load_manifest


def touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"image bytes")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "collection"
    touch(root / "genuine" / "acme_leather-bag.JPG")
    touch(root / "genuine" / "nested" / "zeta.watch.png")
    touch(root / "infringing" / "acme_bag_copy.webp")
    return root


def test_images_become_rows_with_label_title_and_relative_paths(tree: Path) -> None:
    df = manifest_from_folder(tree)
    rows = {r.listing_id: r for r in df.itertuples()}
    assert set(rows) == {
        "genuine/acme_leather-bag.JPG",
        "genuine/nested/zeta.watch.png",
        "infringing/acme_bag_copy.webp",
    }
    bag = rows["genuine/acme_leather-bag.JPG"]
    assert (bag.title, bag.label, bag.image_path) == ("acme leather bag", "genuine", bag.listing_id)
    assert rows["genuine/nested/zeta.watch.png"].title == "zeta watch"
    assert rows["infringing/acme_bag_copy.webp"].label == "infringing"
    assert df.attrs[IGNORED_ATTR] == []


def test_written_manifest_passes_validation(tree: Path) -> None:
    manifest_from_folder(tree, tree / "manifest.csv")
    result = load_manifest(tree / "manifest.csv")
    assert result.rows_valid == 3


def test_manifest_in_a_parent_folder_gets_paths_relative_to_it(tree: Path) -> None:
    out = tree.parent / "manifest.parquet"
    df = manifest_from_folder(tree, out)
    assert all(p.startswith("collection/") for p in df["image_path"])
    assert load_manifest(out).rows_valid == 3


def test_manifest_outside_the_tree_is_refused(tree: Path, tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"image paths would need '\.\.'"):
        manifest_from_folder(tree, tmp_path / "elsewhere" / "m.csv")


def test_non_images_and_stray_folders_are_reported_not_dropped(tree: Path) -> None:
    touch(tree / "genuine" / "notes.txt")
    touch(tree / "Infringing" / "x.jpg")
    touch(tree / "README.md")
    df = manifest_from_folder(tree)
    ignored = df.attrs[IGNORED_ATTR]
    assert len(df) == 3
    assert len(ignored) == 3
    assert any(e.startswith("genuine/notes.txt: not an image file") for e in ignored)
    assert any(e.startswith("Infringing: ") and "case-sensitive" in e for e in ignored)
    assert any(e.startswith("README.md: top-level file") for e in ignored)


def test_own_output_file_is_not_reported_on_reimport(tree: Path) -> None:
    manifest_from_folder(tree, tree / "manifest.csv")
    again = manifest_from_folder(tree, tree / "manifest.csv")
    assert again.attrs[IGNORED_ATTR] == []


@pytest.mark.parametrize("layout", ["empty", "no_images"])
def test_folder_without_label_folders_or_images_is_an_error(tmp_path: Path, layout: str) -> None:
    if layout == "no_images":
        touch(tmp_path / "genuine" / "readme.txt")
        fragment = "no image files"
    else:
        touch(tmp_path / "photos" / "a.jpg")
        fragment = "no label folder"
    with pytest.raises(ManifestError, match=fragment):
        manifest_from_folder(tmp_path)
