"""The brand reference catalog: its three forms on disk, its errors, set-aside images, its
fingerprint, its dict form and copy, and today's brands CSV still reading as before."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ipguard.commands.validate import main as validate_main
from ipguard.data.brand_catalog import BrandCatalog, ReferenceImage, copy_catalog
from ipguard.data.catalog import catalog_featurizer, read_catalog
from ipguard.data.errors import ManifestError
from ipguard.data.reference_catalog import read_brand_catalog
from ipguard.data.tabular import CatalogEntry

# brand -> (prices {currency: price}, photo stems, logo stems, sellers, aliases)
Spec = tuple[dict[str, float], tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]
SPEC: dict[str, Spec] = {
    "Aurvane": ({"USD": 280.0, "EUR": 260.0}, ("black", "white"), ("mark",), ("S2",),
                ("Aurvanne",)),
    "Louis Vuitton": ({"USD": 1500.0}, ("tote",), ("mark", "mono"), ("S1", "S9"),
                      ("Louis Vuiton", "LV")),
    "Zentaro": ({}, ("red",), (), (), ()),
}  # fmt: skip


def _png(path: Path, seed: int) -> None:
    """A small image with its own pixels, so every reference file has its own bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    Image.fromarray(pixels, "RGB").save(path, format="PNG")


def _write(path: Path, header: tuple[str, ...], rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _images(root: Path) -> list[tuple[str, str, str]]:
    """Writes every image of SPEC under ROOT/<Brand>/{photos,logos}/; (brand, kind, path)."""
    out, seed = [], 0
    for brand, (_, photos, logos, _, _) in SPEC.items():
        for kind, stems in (("photo", photos), ("logo", logos)):
            for stem in stems:
                rel = f"{brand}/{kind}s/{stem}.png"
                _png(root / rel, seed)
                seed += 1
                out.append((brand, kind, rel))
    return out


def folder_catalog(root: Path) -> Path:
    """Form 2: brands.csv, references.csv, sellers.csv, aliases.csv."""
    images = _images(root)
    prices = [[b, c, str(p)] for b, (ps, *_) in SPEC.items() for c, p in ps.items()]
    _write(root / "brands.csv", ("brand", "currency", "reference_price"), prices)
    _write(root / "references.csv", ("brand", "kind", "image_path"), [list(i) for i in images])
    sellers = [[b, s] for b, (_, _, _, ss, _) in SPEC.items() for s in ss]
    _write(root / "sellers.csv", ("brand", "seller_id"), sellers)
    aliases = [[b, a] for b, (*_, al) in SPEC.items() for a in al]
    _write(root / "aliases.csv", ("brand", "alias"), aliases)
    return root


def brand_folders(root: Path) -> Path:
    """Form 3: a folder per brand."""
    _images(root)
    for brand, (prices, _, _, sellers, aliases) in SPEC.items():
        folder = root / brand
        folder.mkdir(parents=True, exist_ok=True)
        if prices:
            rows = [[c, str(p)] for c, p in prices.items()]
            _write(folder / "prices.csv", ("currency", "reference_price"), rows)
        if sellers:
            (folder / "sellers.txt").write_text("# authorised\n" + "\n".join(sellers) + "\n")
        if aliases:
            (folder / "aliases.txt").write_text("\n".join(aliases) + "\n\n")
    return root


def test_the_two_folder_forms_read_to_the_same_catalog(tmp_path: Path) -> None:
    a = read_brand_catalog(folder_catalog(tmp_path / "a"))
    b = read_brand_catalog(brand_folders(tmp_path / "b"))
    assert a.to_dict() == b.to_dict()
    assert a.fingerprint == b.fingerprint
    assert a.brands == ("Aurvane", "Louis Vuitton", "Zentaro")
    assert a.summary() == {
        "brands": 3, "photos": 4, "logos": 3, "sellers": 3, "aliases": 3, "images_unusable": 0
    }  # fmt: skip
    assert {r.reference_id for r in a.images_of("louis vuitton")} == {
        "Louis Vuitton/photo/tote", "Louis Vuitton/logo/mark", "Louis Vuitton/logo/mono"
    }  # fmt: skip
    assert a.sellers_of("LOUISVUITTON") == frozenset({"S1", "S9"})
    assert a.sellers_of("Zentaro") == frozenset()
    assert a.aliases_of("louis  vuitton") == ("LV", "Louis Vuiton")
    ref = a.images_of("Aurvane", "photo")[0]
    assert a.image_file(ref).is_file() and a.image_file(ref).is_relative_to(a.root)


def test_a_prices_csv_reads_as_a_catalog_without_images(tmp_path: Path) -> None:
    rows = [["Zentaro", "160", "USD"], ["Zentaro", "2700", "MXN"], ["Kestrune", "", ""]]
    path = _write(tmp_path / "b.csv", ("brand", "reference_price", "currency"), rows)
    catalog = read_brand_catalog(path)
    assert catalog.root is None and catalog.images == ()
    assert catalog.prices == (
        CatalogEntry("Zentaro", 160.0, "USD"),
        CatalogEntry("Zentaro", 2700.0, "MXN"),
        CatalogEntry("Kestrune", None, None),
    )
    assert read_catalog(path) == list(catalog.prices)


def test_read_catalog_reads_the_demo_csvs_as_before(demo_small) -> None:
    for path in (demo_small.brands_path, demo_small.catalog_path):
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert read_catalog(path) == [
            CatalogEntry(r["brand"], float(r["reference_price"]), r["currency"]) for r in rows
        ]


def test_read_catalog_of_a_folder_gives_its_prices_and_its_unpriced_brands(tmp_path: Path) -> None:
    root = folder_catalog(tmp_path / "c")
    entries = read_catalog(root)
    assert entries[-1] == CatalogEntry("Zentaro", None, None)
    assert CatalogEntry("Louis Vuitton", 1500.0, "USD") in entries
    featurizer = catalog_featurizer(root)
    assert featurizer.reference_price("louis vuitton", "usd") == 1500.0
    assert featurizer.reference_price("Aurvane", "EUR") == 260.0


def _problems(path: Path) -> list[str]:
    with pytest.raises(ManifestError) as info:
        read_brand_catalog(path)
    return [str(p) for p in info.value.problems]


def test_every_error_names_its_file_row_and_column(tmp_path: Path) -> None:
    root = folder_catalog(tmp_path / "c")
    refs = root / "references.csv"
    with refs.open("a", encoding="utf-8") as handle:
        handle.write("Aurvane,banner,Aurvane/photos/black.png\n")  # row 8: unknown kind
        handle.write("Aurvane,photo,../outside.png\n")  # row 9: escapes the catalog
        handle.write("Aurvane,photo,Aurvane/photos/black.png\n")  # row 10: repeated id
    with (root / "brands.csv").open("a", encoding="utf-8") as handle:
        handle.write("aurvane,USD,300\n")  # row 4: the same brand and currency, spelt lower case
    with (root / "sellers.csv").open("a", encoding="utf-8") as handle:
        handle.write("Quivelle,S7\n")  # row 4: a brand the catalog does not know
    with (root / "aliases.csv").open("a", encoding="utf-8") as handle:
        handle.write("Aurvane,Zentaro\n")  # row 4: another brand's name
    found = _problems(root)
    expect = [
        (f"{root / 'brands.csv'} row 4, column 'brand'", "same currency 'USD'"),
        (f"{refs} row 8, column 'kind'", "unknown kind 'banner'; expected one of photo, logo"),
        (f"{refs} row 9, column 'image_path'", "escapes the catalog folder"),
        (f"{refs} row 10, column 'image_path'", "duplicate reference_id 'Aurvane/photo/black'"),
        (f"{root / 'sellers.csv'} row 4, column 'brand'", "brand 'Quivelle', which the catalog"),
        (f"{root / 'aliases.csv'} row 4, column 'alias'", "is the name of brand 'Zentaro'"),
    ]
    for where, why in expect:
        assert any(p.startswith(where) and why in p for p in found), (where, why, found)
    assert len(found) == len(expect)


def test_a_repeated_currency_in_a_brand_folder_names_its_row(tmp_path: Path) -> None:
    root = brand_folders(tmp_path / "b")
    prices = root / "Aurvane" / "prices.csv"
    prices.write_text("currency,reference_price\nUSD,280\nUSD,290\n")
    (root / "Aurvane" / "sellers.txt").write_text("S2\n")
    found = _problems(root)
    assert len(found) == 1 and found[0].startswith(f"{prices} row 2, column 'currency'")


def test_an_empty_catalog_and_a_missing_one_are_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert "empty catalog" in _problems(tmp_path / "empty")[0]
    with pytest.raises(FileNotFoundError, match="absent"):
        read_brand_catalog(tmp_path / "absent")


def test_unusable_images_are_set_aside_with_their_reasons(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = brand_folders(tmp_path / "b")
    (root / "Aurvane" / "photos" / "black.png").write_bytes(b"<html>not found</html>")
    (root / "Aurvane" / "photos" / "notes.txt").write_text("shot in 2024")
    png = (root / "Zentaro" / "photos" / "red.png").read_bytes()
    (root / "Zentaro" / "photos" / "red.png").write_bytes(png[: len(png) // 2])  # truncated
    with caplog.at_level(logging.WARNING):
        catalog = read_brand_catalog(root)
    reasons = {p.value: p.reason for p in catalog.problems}
    assert set(reasons) == {
        "Aurvane/photos/black.png", "Aurvane/photos/notes.txt", "Zentaro/photos/red.png"
    }  # fmt: skip
    assert "image_unreadable" in reasons["Aurvane/photos/black.png"]
    assert "suffix '.txt'" in reasons["Aurvane/photos/notes.txt"]
    assert "image_unreadable" in reasons["Zentaro/photos/red.png"]
    assert {r.path for r in catalog.images}.isdisjoint(reasons)
    assert catalog.summary()["photos"] == 2 and catalog.summary()["images_unusable"] == 3
    assert "3 reference image(s) set aside" in caplog.text
    # without decoding, only the file that is not an image is set aside
    assert len(read_brand_catalog(root, check_images=False).problems) == 1


def test_a_missing_image_of_references_csv_is_set_aside_with_its_row(tmp_path: Path) -> None:
    root = folder_catalog(tmp_path / "c")
    (root / "Aurvane" / "logos" / "mark.png").unlink()
    catalog = read_brand_catalog(root, check_images=False)
    (problem,) = catalog.problems
    assert str(problem).startswith(f"{root / 'references.csv'} row 3, column 'image_path'")
    assert "image_missing" in problem.reason


def test_fingerprint_follows_every_image_byte_and_not_the_location(tmp_path: Path) -> None:
    root = folder_catalog(tmp_path / "c")
    before = read_brand_catalog(root)
    copy = copy_catalog(before, tmp_path / "copy")
    assert copy.root == tmp_path / "copy" and copy.fingerprint == before.fingerprint
    assert read_brand_catalog(tmp_path / "copy").to_dict() == copy.to_dict()
    image = root / "Louis Vuitton" / "logos" / "mono.png"
    data = bytearray(image.read_bytes())
    data[-20] ^= 1  # one bit of one file (inside the last chunk's CRC'd data or CRC)
    image.write_bytes(bytes(data))
    assert read_brand_catalog(root, check_images=False).fingerprint != before.fingerprint
    with (tmp_path / "copy" / "sellers.csv").open("a") as handle:
        handle.write("Zentaro,S5\n")
    assert read_brand_catalog(tmp_path / "copy").fingerprint != before.fingerprint


def test_copy_refuses_a_folder_that_holds_files(tmp_path: Path) -> None:
    catalog = read_brand_catalog(folder_catalog(tmp_path / "c"))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "old.csv").write_text("x")
    with pytest.raises(FileExistsError, match="not an empty folder"):
        copy_catalog(catalog, tmp_path / "busy")


def test_dict_round_trip_keeps_the_catalog_and_its_fingerprint(tmp_path: Path) -> None:
    root = brand_folders(tmp_path / "b")
    (root / "Aurvane" / "logos" / "mark.png").write_bytes(b"")
    catalog = read_brand_catalog(root)
    d = json.loads(json.dumps(catalog.to_dict()))
    again = BrandCatalog.from_dict(d, root=root)
    assert again == catalog and again.fingerprint == catalog.fingerprint
    assert again.problems == catalog.problems and len(again.problems) == 1
    detached = BrandCatalog.from_dict(d, root=None)  # a served model: no image files at hand
    assert detached.fingerprint == catalog.fingerprint
    assert detached.sellers_of("Louis Vuitton") == frozenset({"S1", "S9"})
    with pytest.raises(ValueError, match="no root folder"):
        detached.image_file(detached.images[0])
    d["images"][0]["path"] = "../x.png"
    with pytest.raises(ValueError, match="not inside the catalog"):
        BrandCatalog.from_dict(d, root=root)


def test_a_catalog_without_images_hashes_its_tables() -> None:
    one = BrandCatalog(None, (CatalogEntry("Zentaro", 160.0, "USD"),), (), (), ())
    other = BrandCatalog(None, (CatalogEntry("Zentaro", 161.0, "USD"),), (), (), ())
    assert len(one.fingerprint) == 64 and one.fingerprint != other.fingerprint
    with_image = BrandCatalog(None, (), (ReferenceImage("Z/logo/a", "Z", "logo", "a.png"),), (), ())
    with pytest.raises(ValueError, match="no root folder"):
        _ = with_image.fingerprint


def test_validate_cli_checks_a_catalog(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = folder_catalog(tmp_path / "c")
    (root / "Zentaro" / "photos" / "red.png").write_bytes(b"GIF89a")
    assert validate_main(["--brands", str(root)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "brands=3 photos=3 logos=3 sellers=3 aliases=3 images_unusable=1"
    assert "warning: " in err and "Zentaro/photo/red" in err
    with (root / "sellers.csv").open("a") as handle:
        handle.write("Nobody,S1\n")
    assert validate_main(["--brands", str(root)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "sellers.csv row 4, column 'brand'" in err and "rejected" in err
