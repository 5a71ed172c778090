"""The synthetic demo dataset: determinism, the manifest contract, and the generative story."""

from __future__ import annotations

import csv
import json
import unicodedata
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ipguard.commands.demo_data import main
from ipguard.demo import listings as synthetic
from ipguard.demo.listings import BRANDS, DemoDataset, ensure_demo_data, generate_demo_data
from ipguard.demo.texts import OBFUSCATIONS, obfuscate_brand

# The market -> currency rule from the data contract, written out independently of the code.
EXPECTED_CURRENCY = {
    "US": "USD",
    "GB": "GBP",
    "MX": "MXN",
    "BR": "BRL",
    "DE": "EUR",
    "FR": "EUR",
    "ES": "EUR",
    "JP": "JPY",
    "RU": "RUB",
}
CONTRACT_COLUMNS = [
    "listing_id",
    "title",
    "description",
    "brand",
    "category",
    "market",
    "language",
    "price",
    "currency",
    "seller_id",
    "image_path",
    "listed_at",
    "label",
    "infringement_type",
]
SMALL = {"n": 48, "seed": 3, "image_size": 64}


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def file_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "demo.json"
    }


@pytest.fixture(scope="module")
def moderate(tmp_path_factory: pytest.TempPathFactory) -> DemoDataset:
    return generate_demo_data(tmp_path_factory.mktemp("moderate"), n=300, seed=11, image_size=64)


@pytest.fixture(scope="module")
def moderate_rows(moderate: DemoDataset) -> list[dict[str, str]]:
    return read_rows(moderate.manifest_path)


@pytest.fixture(scope="module")
def moderate_cues(moderate: DemoDataset) -> dict[str, dict[str, str]]:
    return {row["listing_id"]: row for row in read_rows(moderate.root / "cues.csv")}


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    first = generate_demo_data(tmp_path / "a", **SMALL)
    second = generate_demo_data(tmp_path / "b", **SMALL)
    a, b = file_bytes(first.root), file_bytes(second.root)
    assert len([k for k in a if k.startswith("images")]) == SMALL["n"]
    assert a == b


def test_different_seed_changes_manifest_and_images(tmp_path: Path) -> None:
    first = generate_demo_data(tmp_path / "a", **SMALL)
    other = generate_demo_data(tmp_path / "b", **{**SMALL, "seed": 4})
    assert first.manifest_path.read_bytes() != other.manifest_path.read_bytes()
    image = "images/L000001.jpg"
    assert (first.root / image).read_bytes() != (other.root / image).read_bytes()


def test_manifest_does_not_depend_on_image_size(tmp_path: Path) -> None:
    small = generate_demo_data(tmp_path / "a", **{**SMALL, "image_size": 40})
    large = generate_demo_data(tmp_path / "b", **{**SMALL, "image_size": 96})
    assert small.manifest_path.read_bytes() == large.manifest_path.read_bytes()


def test_returned_paths_point_at_written_files(tmp_path: Path) -> None:
    dataset = generate_demo_data(tmp_path, **SMALL)
    assert dataset.manifest_path == tmp_path / "listings.csv"
    assert dataset.brands_path == tmp_path / "brands.csv"
    assert dataset.images_dir == tmp_path / "images"
    assert dataset.n_listings == SMALL["n"] == len(read_rows(dataset.manifest_path))


def test_manifest_has_every_contract_column_with_valid_values(
    moderate: DemoDataset, moderate_rows: list[dict[str, str]]
) -> None:
    with moderate.manifest_path.open(encoding="utf-8") as handle:
        assert handle.readline().strip().split(",") == CONTRACT_COLUMNS
    ids = [row["listing_id"] for row in moderate_rows]
    assert len(set(ids)) == len(ids) == 300
    brand_names = {b.name for b in BRANDS}
    types = {"counterfeit", "logo_misuse", "copyright", "other"}
    for row in moderate_rows:
        where = row["listing_id"]
        assert row["title"].strip(), where
        assert row["brand"] in brand_names, where
        assert EXPECTED_CURRENCY[row["market"]] == row["currency"], where
        assert len(row["language"]) == 2 and row["language"].islower(), where
        assert float(row["price"]) > 0, where
        assert row["seller_id"], where
        stamp = datetime.strptime(row["listed_at"], "%Y-%m-%dT%H:%M:%SZ")
        assert datetime(2024, 1, 1) <= stamp < datetime(2025, 1, 1), where
        assert row["label"] in {"genuine", "infringing"}, where
        if row["label"] == "genuine":
            assert row["infringement_type"] == "", where
        else:
            assert row["infringement_type"] in types, where


def test_image_paths_are_relative_and_decode_as_square_jpegs(
    moderate: DemoDataset, moderate_rows: list[dict[str, str]]
) -> None:
    for row in moderate_rows:
        relative = Path(row["image_path"])
        assert not relative.is_absolute() and ".." not in relative.parts
        assert relative == Path("images") / f"{row['listing_id']}.jpg"
        with Image.open(moderate.root / relative) as image:
            assert image.format == "JPEG"
            assert image.size == (64, 64)
            image.load()


def test_brand_catalog_lists_each_brand_with_a_reference_logo(moderate: DemoDataset) -> None:
    rows = read_rows(moderate.brands_path)
    assert list(rows[0]) == ["brand", "reference_price", "currency", "category", "reference_image"]
    assert len(rows) == len(BRANDS) >= 6
    assert len({row["category"] for row in rows}) >= 6
    for row in rows:
        assert float(row["reference_price"]) > 0
        assert row["reference_image"] == f"brands/{row['brand']}.png"
        with Image.open(moderate.root / row["reference_image"]) as logo:
            logo.load()


def test_listed_at_spreads_over_most_of_a_year(moderate_rows: list[dict[str, str]]) -> None:
    months = {row["listed_at"][:7] for row in moderate_rows}
    assert len(months) >= 9
    stamps = [row["listed_at"] for row in moderate_rows]
    assert stamps == sorted(stamps), "listing ids should follow time"


def test_moderate_n_covers_six_brands_and_six_languages_including_non_latin(
    moderate_rows: list[dict[str, str]],
) -> None:
    assert len({row["brand"] for row in moderate_rows}) >= 6
    languages = Counter(row["language"] for row in moderate_rows)
    assert {"en", "es", "pt", "de", "fr"} <= set(languages)
    assert {"ja", "ru"} & set(languages)
    for row in moderate_rows:
        if row["language"] in ("ja", "ru"):
            script = "CJK" if row["language"] == "ja" else "CYRILLIC"
            names = [unicodedata.name(ch, "") for ch in row["title"] + row["description"]]
            katakana = any(("KATAKANA" in n or "HIRAGANA" in n) for n in names)
            assert katakana or any(script in n for n in names), row["listing_id"]


def test_infringing_share_is_close_to_the_configured_ratio(
    moderate_rows: list[dict[str, str]],
) -> None:
    share = sum(row["label"] == "infringing" for row in moderate_rows) / len(moderate_rows)
    assert abs(share - synthetic.INFRINGING_SHARE) < 0.02
    assert 0.3 <= share <= 0.45


def test_every_infringing_listing_shows_a_cue_and_patterns_keep_modalities_apart(
    moderate_rows: list[dict[str, str]], moderate_cues: dict[str, dict[str, str]]
) -> None:
    patterns = Counter()
    for row in moderate_rows:
        cue = moderate_cues[row["listing_id"]]
        if row["label"] == "genuine":
            assert cue["pattern"] == "genuine" and not cue["image_cue"] and not cue["text_cue"]
            continue
        patterns[cue["pattern"]] += 1
        has_image, has_text = bool(cue["image_cue"]), bool(cue["text_cue"])
        has_price = cue["price_cue"] == "1"
        assert has_image or has_text or has_price, row["listing_id"]
        if cue["pattern"] == "image_only":
            assert has_image and not has_text and not has_price
            clean = row["brand"].lower() in row["title"].lower()
            assert clean, "image-only listings keep a clean brand name"
        if cue["pattern"] == "text_price_only":
            assert not has_image and (has_text or has_price)
    total = sum(patterns.values())
    for pattern in ("image_only", "text_price_only", "multi"):
        assert 0.2 <= patterns[pattern] / total <= 0.47, patterns


def test_price_cue_means_a_suspiciously_low_price_against_the_reference(
    moderate: DemoDataset,
    moderate_rows: list[dict[str, str]],
    moderate_cues: dict[str, dict[str, str]],
) -> None:
    reference = {r["brand"]: float(r["reference_price"]) for r in read_rows(moderate.brands_path)}
    for row in moderate_rows:
        usd = float(row["price"]) / synthetic.FX_PER_USD[row["currency"]]
        ratio = usd / reference[row["brand"]]
        if moderate_cues[row["listing_id"]]["price_cue"] == "1":
            assert 0.09 <= ratio <= 0.36, row["listing_id"]
        elif row["label"] == "genuine":
            assert 0.49 <= ratio <= 1.21, row["listing_id"]


def test_reused_photos_copy_an_earlier_genuine_listing_of_another_seller(
    tmp_path: Path,
) -> None:
    dataset = generate_demo_data(tmp_path, n=400, seed=5, image_size=48)
    rows = {row["listing_id"]: row for row in read_rows(dataset.manifest_path)}
    reused = [c for c in read_rows(tmp_path / "cues.csv") if c["reused_from"]]
    assert reused, "expected some infringing listings to reuse a genuine photo"
    identical = 0
    for cue in reused:
        copy, source = rows[cue["listing_id"]], rows[cue["reused_from"]]
        assert copy["label"] == "infringing" and source["label"] == "genuine"
        assert source["listed_at"] <= copy["listed_at"]
        assert source["seller_id"] != copy["seller_id"] and source["brand"] == copy["brand"]
        copy_bytes = (tmp_path / copy["image_path"]).read_bytes()
        source_bytes = (tmp_path / source["image_path"]).read_bytes()
        identical += copy_bytes == source_bytes
        with (
            Image.open(tmp_path / copy["image_path"]) as a,
            Image.open(tmp_path / source["image_path"]) as b,
        ):
            diff = np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float)).mean()
        assert diff < 25, f"{cue['listing_id']} should stay a near-duplicate of its source"
    assert 0 < identical < len(reused) or len(reused) < 4


def test_sellers_post_repeatedly_and_keep_a_habit(moderate_rows: list[dict[str, str]]) -> None:
    by_seller: dict[str, list[str]] = {}
    for row in moderate_rows:
        by_seller.setdefault(row["seller_id"], []).append(row["label"])
    assert 20 <= len(by_seller) <= 150
    assert max(len(labels) for labels in by_seller.values()) >= 5
    repeat = [labels for labels in by_seller.values() if len(labels) >= 3]
    consistent = [ls for ls in repeat if max(Counter(ls).values()) / len(ls) >= 0.8]
    assert len(consistent) / len(repeat) >= 0.7


def test_label_noise_flips_exactly_the_requested_share_and_nothing_else(tmp_path: Path) -> None:
    clean = generate_demo_data(tmp_path / "clean", n=80, seed=2, image_size=48)
    noisy = generate_demo_data(tmp_path / "noisy", n=80, seed=2, image_size=48, label_noise=0.1)
    a, b = read_rows(clean.manifest_path), read_rows(noisy.manifest_path)
    flipped = [x for x, y in zip(a, b, strict=True) if x["label"] != y["label"]]
    assert len(flipped) == 8
    for x, y in zip(a, b, strict=True):
        assert {k: v for k, v in x.items() if k not in ("label", "infringement_type")} == {
            k: v for k, v in y.items() if k not in ("label", "infringement_type")
        }
        assert (y["infringement_type"] == "") == (y["label"] == "genuine")
    images = sorted(p.name for p in clean.images_dir.iterdir())
    assert all(
        (clean.images_dir / name).read_bytes() == (noisy.images_dir / name).read_bytes()
        for name in images
    )
    again = generate_demo_data(tmp_path / "again", n=80, seed=2, image_size=48, label_noise=0.1)
    assert again.manifest_path.read_bytes() == noisy.manifest_path.read_bytes()


def test_ensure_reuses_a_dataset_whose_stamp_matches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = ensure_demo_data(tmp_path, n=30, seed=1, image_size=48)
    stamp = json.loads((tmp_path / "demo.json").read_text(encoding="utf-8"))
    assert (stamp["n"], stamp["seed"], stamp["image_size"], stamp["label_noise"]) == (30, 1, 48, 0)
    assert "version" in stamp

    def fail(*args: object, **kwargs: object) -> DemoDataset:
        raise AssertionError("ensure_demo_data regenerated a complete, matching dataset")

    monkeypatch.setattr(synthetic, "generate_demo_data", fail)
    second = ensure_demo_data(tmp_path, n=30, seed=1, image_size=48)
    assert second == first


@pytest.mark.parametrize(
    "change", [{"n": 31}, {"seed": 2}, {"image_size": 40}, {"label_noise": 0.1}]
)
def test_ensure_regenerates_when_a_parameter_differs(tmp_path: Path, change: dict) -> None:
    params = {"n": 30, "seed": 1, "image_size": 48}
    ensure_demo_data(tmp_path, **params)
    before = (tmp_path / "listings.csv").read_bytes()
    dataset = ensure_demo_data(tmp_path, **{**params, **change})
    stamp = json.loads((tmp_path / "demo.json").read_text(encoding="utf-8"))
    for key, value in change.items():
        assert stamp[key] == value
    expected = generate_demo_data(tmp_path / "fresh", **{**params, **change})
    assert dataset.manifest_path.read_bytes() == expected.manifest_path.read_bytes()
    assert len(list(dataset.images_dir.glob("*.jpg"))) == dataset.n_listings
    if "seed" in change or "n" in change or "label_noise" in change:
        assert dataset.manifest_path.read_bytes() != before


def test_ensure_regenerates_when_an_image_is_missing(tmp_path: Path) -> None:
    dataset = ensure_demo_data(tmp_path, n=20, seed=0, image_size=48)
    missing = dataset.images_dir / "L000007.jpg"
    missing.unlink()
    ensure_demo_data(tmp_path, n=20, seed=0, image_size=48)
    assert missing.is_file()


def test_regenerating_smaller_removes_stale_listing_images(tmp_path: Path) -> None:
    generate_demo_data(tmp_path, n=30, seed=0, image_size=48)
    dataset = generate_demo_data(tmp_path, n=20, seed=0, image_size=48)
    assert len(list(dataset.images_dir.glob("*.jpg"))) == 20


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"n": 0}, "n"),
        ({"seed": -1}, "seed"),
        ({"image_size": 8}, "image_size"),
        ({"label_noise": 1.5}, "label_noise"),
    ],
)
def test_invalid_parameters_are_rejected_naming_the_parameter(
    tmp_path: Path, kwargs: dict, key: str
) -> None:
    with pytest.raises(ValueError, match=rf"parameter {key}: expected .* found"):
        generate_demo_data(tmp_path, **{"n": 10, **kwargs})
    assert not (tmp_path / "listings.csv").exists()


def test_ensure_rejects_unknown_keyword_arguments(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="imagesize"):
        ensure_demo_data(tmp_path, n=10, imagesize=64)


@pytest.mark.parametrize("method", OBFUSCATIONS)
def test_obfuscation_changes_the_name_but_keeps_its_letters_recognisable(method: str) -> None:
    rng = np.random.default_rng(0)
    for brand in BRANDS:
        disguised = obfuscate_brand(brand.name, method, rng)
        assert disguised != brand.name
        folded = unicodedata.normalize("NFKC", disguised)
        kept = sum(ch in folded for ch in brand.name.lower() + brand.name)
        assert kept >= 2, (method, disguised)


def test_cli_writes_the_dataset_and_reports_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    code = main([str(out), "--n", "25", "--seed", "4", "--image-size", "40"])
    assert code == 0
    rows = read_rows(out / "listings.csv")
    assert len(rows) == 25
    with Image.open(out / rows[0]["image_path"]) as image:
        assert image.size == (40, 40)
    printed = capsys.readouterr().out
    assert str(out / "listings.csv") in printed
    labels = Counter(row["label"] for row in rows)
    assert f"genuine {labels['genuine']}" in printed
    assert f"infringing {labels['infringing']}" in printed
    for language, count in Counter(row["language"] for row in rows).items():
        assert f"{language} {count}" in printed


def test_cli_reports_an_invalid_argument_and_returns_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([str(tmp_path / "demo"), "--n", "10", "--label-noise", "2"])
    assert code != 0
    assert "label_noise" in capsys.readouterr().err


def test_listing_timestamps_are_utc(moderate_rows: list[dict[str, str]]) -> None:
    stamp = moderate_rows[0]["listed_at"]
    parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert parsed.tzinfo is not None and parsed.utcoffset() == timezone.utc.utcoffset(None)


def test_multi_currency_catalog_prices_every_brand_in_every_market_currency(
    moderate: DemoDataset, moderate_rows: list[dict[str, str]]
) -> None:
    assert moderate.catalog_path == moderate.root / "brands_by_currency.csv"
    rows = read_rows(moderate.catalog_path)
    assert list(rows[0]) == ["brand", "reference_price", "currency", "category", "reference_image"]
    pairs = {(row["brand"], row["currency"]) for row in rows}
    assert len(pairs) == len(rows) == len(BRANDS) * len(set(EXPECTED_CURRENCY.values()))
    assert {row["currency"] for row in moderate_rows} <= {cur for _, cur in pairs}
    usd = {row["brand"]: float(row["reference_price"]) for row in read_rows(moderate.brands_path)}
    for row in rows:
        local = float(row["reference_price"])
        converted = usd[row["brand"]] * synthetic.FX_PER_USD[row["currency"]]
        assert abs(local / converted - 1.0) <= 0.05, row  # a local list price, not a USD one
        if row["currency"] == "JPY":
            assert row["reference_price"].isdigit()  # no minor units
        if row["currency"] == "USD":
            assert local == usd[row["brand"]]
