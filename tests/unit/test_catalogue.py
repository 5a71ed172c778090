"""The catalogue generator writes the manifest contract and a six-currency brand catalog, is
deterministic for a seed, and has the traits of a real catalogue: studio photos, several
photos per item, other sellers' re-uploads, and a label with photo, text and price evidence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ipguard.data.columns import MANIFEST_COLUMNS
from ipguard.data.schema import load_manifest
from ipguard.demo.catalogue import BRANDS, CURRENCIES, TRUTH_COLUMNS, Catalogue, main
from ipguard.demo.catalogue import make_catalogue as make


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Catalogue:
    return make(tmp_path_factory.mktemp("catalogue"), n_listings=400, n_sellers=40, seed=3,
                image_size=64)  # fmt: skip


@pytest.fixture(scope="module")
def rows(catalogue: Catalogue) -> pd.DataFrame:
    """Manifest joined with the ground truth, everything as text."""
    manifest = pd.read_csv(catalogue.manifest_path, dtype=str, keep_default_na=False)
    truth = pd.read_csv(catalogue.truth_path, dtype=str, keep_default_na=False)
    return manifest.merge(truth, on="listing_id", validate="one_to_one")


def test_manifest_has_the_contract_columns_and_passes_validation(catalogue: Catalogue) -> None:
    manifest = pd.read_csv(catalogue.manifest_path, dtype=str, keep_default_na=False)
    assert list(manifest.columns) == list(MANIFEST_COLUMNS)
    result = load_manifest(catalogue.manifest_path, require_label=True, check_images=True)
    assert (result.rows_in, result.rows_valid, result.rows_rejected) == (400, 400, 0)
    assert manifest["listing_id"].is_unique
    assert manifest["seller_id"].nunique() == 40


def test_brand_catalog_has_one_price_per_brand_and_currency(catalogue: Catalogue) -> None:
    brands = pd.read_csv(catalogue.brands_path, dtype={"reference_price": str})
    assert list(brands.columns) == ["brand", "reference_price", "currency"]
    assert set(brands["currency"]) == {"USD", "MXN", "BRL", "EUR", "JPY", "IDR"} == set(CURRENCIES)
    assert len(brands) == 6 * len(BRANDS)
    assert not brands.duplicated(["brand", "currency"]).any()
    price = brands.pivot(index="brand", columns="currency", values="reference_price").astype(float)
    # local price levels: yen and rupiah have no minor units; each is far from a plain FX copy
    assert (
        brands.loc[brands["currency"].isin(["JPY", "IDR"]), "reference_price"].str.isdigit().all()
    )
    assert ((price["JPY"] / price["USD"]).between(140, 170)).all()
    assert ((price["BRL"] / price["USD"]) > CURRENCIES["BRL"].per_usd).all()  # import duties


def test_listings_span_six_currencies_at_their_markets_price_levels(rows: pd.DataFrame) -> None:
    assert set(rows["currency"]) == set(CURRENCIES)
    usd = rows["price"].astype(float) / rows["currency"].map(lambda c: CURRENCIES[c].per_usd)
    genuine = rows["label"] == "genuine"
    assert 30 < usd[genuine].median() < 1500  # plausible prices once converted back


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    first = make(tmp_path / "a", n_listings=40, n_sellers=6, seed=5, image_size=48)
    again = make(tmp_path / "b", n_listings=40, n_sellers=6, seed=5, image_size=48)
    other = make(tmp_path / "c", n_listings=40, n_sellers=6, seed=6, image_size=48)
    for name in ("listings.csv", "truth.csv", "brands.csv"):
        assert (first.root / name).read_bytes() == (again.root / name).read_bytes(), name
    images = sorted(p.name for p in first.images_dir.iterdir())
    assert images == sorted(p.name for p in again.images_dir.iterdir())
    assert all(
        (first.images_dir / n).read_bytes() == (again.images_dir / n).read_bytes() for n in images
    )
    assert (first.root / "listings.csv").read_bytes() != (other.root / "listings.csv").read_bytes()


def test_rendering_in_worker_processes_gives_the_same_bytes(tmp_path: Path) -> None:
    serial = make(tmp_path / "a", n_listings=30, n_sellers=5, seed=2, image_size=48)
    pooled = make(tmp_path / "b", n_listings=30, n_sellers=5, seed=2, image_size=48, workers=2)
    for path in serial.images_dir.iterdir():
        assert path.read_bytes() == (pooled.images_dir / path.name).read_bytes()


def test_photos_are_studio_shots_of_one_centred_product(catalogue: Catalogue) -> None:
    for path in sorted(catalogue.images_dir.glob("p*.jpg"))[:40]:
        pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
        border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
        backdrop = np.median(border, axis=0)
        plain = np.abs(border - backdrop).max(axis=1) < 16  # watch straps may leave the frame
        assert backdrop.min() > 220 and plain.mean() > 0.8, path.name  # a light, plain sweep
        dark = np.abs(pixels - backdrop).max(axis=2) > 40
        ys, xs = np.nonzero(dark)
        assert abs(xs.mean() / pixels.shape[1] - 0.5) < 0.12, path.name  # product near centre
        assert abs(ys.mean() / pixels.shape[0] - 0.5) < 0.15, path.name


def test_items_have_several_photos_and_sellers_relist_them(rows: pd.DataFrame) -> None:
    own = rows[rows["reupload"] == ""]
    photos_per_item = own.groupby("item_id")["photo_id"].nunique()
    assert (photos_per_item >= 2).sum() >= 30
    assert own.groupby("item_id")["seller_id"].nunique().max() == 1  # an item is one seller's
    assert own["photo_id"].duplicated().any()  # one photo on several listings of its item


def test_reuploads_are_other_sellers_copies_of_genuine_photos(
    rows: pd.DataFrame, catalogue: Catalogue
) -> None:
    copies = rows[rows["reupload"] != ""]
    assert 0.01 < len(copies) / len(rows) < 0.05
    originals = rows[rows["reupload"] == ""].drop_duplicates("photo_id").set_index("photo_id")
    for _, copy in copies.iterrows():
        source = originals.loc[copy["photo_id"]]
        assert source["seller_id"] != copy["seller_id"]
        assert source["label"] == "genuine"
        same_bytes = (catalogue.root / copy["image_path"]).read_bytes() == (
            catalogue.root / source["image_path"]
        ).read_bytes()
        assert same_bytes == (copy["reupload"] == "exact")
        if copy["reupload"] == "copy":  # cropped, resized and re-encoded, aspect kept
            with Image.open(catalogue.root / copy["image_path"]) as image:
                assert abs(image.width / image.height - 1) < 0.08


def test_label_has_photo_text_and_price_evidence_without_giving_itself_away(
    rows: pd.DataFrame,
) -> None:
    infringing = rows["label"] == "infringing"
    assert 0.15 < infringing.mean() < 0.35
    assert (rows.loc[~infringing, "mark_defect"] == "").all()
    own_fakes = infringing & (rows["reupload"] == "")
    defect_share = (rows.loc[own_fakes, "mark_defect"] != "").mean()
    assert 0.6 < defect_share < 0.95  # most fakes show a wrong mark, not all
    wording = rows["text_cue"] == "counterfeit_wording"
    assert 0.2 < wording[infringing].mean() < 0.6 and not wording[~infringing].any()
    ratio = rows["price_ratio"].astype(float)
    assert ratio[infringing].median() < 0.7 * ratio[~infringing].median()
    assert (ratio[infringing] > 0.75).mean() > 0.1  # some fakes are priced like the real thing
    assert set(rows.loc[infringing, "infringement_type"]) <= {"counterfeit", "copyright"}


def test_truth_file_has_its_columns(catalogue: Catalogue) -> None:
    truth = pd.read_csv(catalogue.truth_path, dtype=str, keep_default_na=False)
    assert list(truth.columns) == list(TRUTH_COLUMNS)
    assert len(truth) == catalogue.n_listings


def test_semicolon_separated_manifest_reads_back_with_that_separator(tmp_path: Path) -> None:
    catalogue = make(tmp_path, n_listings=20, n_sellers=4, seed=1, image_size=48, sep=";")
    header = catalogue.manifest_path.read_text(encoding="utf-8").splitlines()[0]
    assert header == ";".join(MANIFEST_COLUMNS)
    manifest = pd.read_csv(catalogue.manifest_path, sep=";", dtype=str, keep_default_na=False)
    assert len(manifest) == 20 and (manifest["price"].str.count(r"\.") <= 1).all()


def test_command_line_writes_a_catalogue_and_prints_its_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cat"
    assert main([str(out), "--listings", "25", "--sellers", "5", "--image-size", "48"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["sellers"] == 5 and sum(printed["label"].values()) == 25
    stamp = json.loads((out / "catalogue.json").read_text())
    assert stamp["n_listings"] == 25 and stamp["seed"] == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_listings": 0}, "n_listings: expected an integer >= 1, found 0"),
        ({"n_listings": 10, "n_sellers": 11}, r"n_sellers: .*\[1, n_listings=10\].*11"),
        ({"seed": -1}, "seed: expected an integer >= 0"),
        ({"image_size": 16}, r"image_size: expected an integer in \[32, 512\], found 16"),
        ({"sep": "."}, "sep: expected one character other than"),
        ({"sep": ";;"}, "sep: expected one character"),
        ({"workers": -2}, "workers: expected an integer >= 0"),
    ],
)
def test_bad_parameters_are_rejected_naming_them(
    tmp_path: Path, kwargs: dict, message: str
) -> None:
    kwargs = {"n_listings": 10, "n_sellers": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        make(tmp_path, **kwargs)
