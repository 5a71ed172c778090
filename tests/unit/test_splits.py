"""Splits keep sellers and copied photos on one side, stay balanced, and reload exactly."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ipguard.data.near_duplicates import image_hashes
from ipguard.data.splits import (
    SPLITS,
    SplitConfig,
    assign_splits,
    leakage_report,
    load_splits,
    save_splits,
    split_manifest,
)


@dataclass
class Marketplace:
    df: pd.DataFrame
    root: Path
    copied: list[tuple[int, int]]
    """(row of an original photo, row of another seller's resized, re-encoded copy of it)."""
    hashes: list[str | None]
    """pHash per row, computed once so most tests skip re-reading the images."""


def _product_photo(rng: np.random.Generator) -> Image.Image:
    """A smooth random picture: like a photo, its pHash barely moves when re-encoded."""
    cells = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    return Image.fromarray(cells).resize((128, 128), Image.Resampling.BICUBIC)


@pytest.fixture(scope="module")
def marketplace(tmp_path_factory: pytest.TempPathFactory) -> Marketplace:
    """40 sellers with 2-6 listings each (a third of them counterfeiters), a few listings with
    no seller, and 12 listings that reuse another seller's photo, resized and re-encoded."""
    root = tmp_path_factory.mktemp("manifest")
    (root / "images").mkdir()
    rng = np.random.default_rng(7)
    rows: list[dict[str, object]] = []
    for seller in range(40):
        label = "infringing" if seller % 3 == 0 else "genuine"
        for _ in range(int(rng.integers(2, 7))):
            rows.append({"seller_id": f"s{seller:02d}", "label": label})
    for _ in range(8):
        rows.append({"seller_id": None, "label": str(rng.choice(["genuine", "infringing"]))})

    copied: list[tuple[int, int]] = []
    copy_rows = rng.choice(len(rows), size=12, replace=False)
    for i, row in enumerate(rows):
        row["listing_id"] = f"L{i:04d}"
        row["listed_at"] = (
            pd.Timestamp("2024-01-01") + pd.Timedelta(minutes=int(rng.integers(0, 500_000)))
        ).isoformat()
        if i in copy_rows:
            continue
        row["image_path"] = f"images/{i}.png"
        _product_photo(rng).save(root / row["image_path"])
    for i in copy_rows:
        seller = rows[i]["seller_id"]
        original = next(
            j
            for j in rng.permutation(len(rows))
            if j not in copy_rows and rows[j]["seller_id"] != seller
        )
        photo = Image.open(root / rows[original]["image_path"])
        rows[i]["image_path"] = f"images/{i}.jpg"
        photo.resize((112, 112), Image.Resampling.BILINEAR).save(
            root / rows[i]["image_path"], quality=85
        )
        copied.append((int(original), int(i)))
    df = pd.DataFrame(rows)[["listing_id", "seller_id", "image_path", "listed_at", "label"]]
    hashes = image_hashes([root / p for p in df["image_path"]])
    return Marketplace(df=df, root=root, copied=copied, hashes=hashes)


# --- group split ----------------------------------------------------------------------------


def test_group_split_keeps_every_seller_in_one_split(marketplace: Marketplace) -> None:
    splits = assign_splits(marketplace.df, hashes=marketplace.hashes)
    per_seller = splits.groupby(marketplace.df["seller_id"]).nunique()
    assert (per_seller == 1).all()
    assert set(splits) == set(SPLITS)


def test_group_split_keeps_a_resized_reencoded_photo_with_its_original(
    marketplace: Marketplace,
) -> None:
    splits = assign_splits(marketplace.df, root=marketplace.root)
    for original, copy in marketplace.copied:
        assert splits.iloc[original] == splits.iloc[copy], (original, copy)
    report = leakage_report(marketplace.df, splits, root=marketplace.root)
    assert report.sellers_crossing == 0
    assert report.duplicate_groups_crossing == 0
    assert not report.leaks


def test_random_split_leaks_sellers_and_copied_photos_on_the_same_data(
    marketplace: Marketplace,
) -> None:
    splits = assign_splits(marketplace.df, SplitConfig(strategy="random"))
    report = leakage_report(marketplace.df, splits, hashes=marketplace.hashes)
    assert report.sellers_crossing > 0
    assert report.duplicate_groups_crossing > 0
    assert report.leaks


def test_group_split_without_near_duplicates_lets_copied_photos_cross(
    marketplace: Marketplace,
) -> None:
    # Shows the image grouping is what keeps the copies together above, not luck.
    crossing = [
        leakage_report(
            marketplace.df,
            assign_splits(marketplace.df, SplitConfig(near_duplicates=False, seed=seed)),
            hashes=marketplace.hashes,
        ).duplicate_groups_crossing
        for seed in range(3)
    ]
    assert max(crossing) > 0


def test_group_split_keeps_infringing_share_and_sizes_close_to_targets(
    marketplace: Marketplace,
) -> None:
    # Sellers are all-infringing or all-genuine, so a split that ignored labels would drift
    # far from the overall share for some seed.
    n = len(marketplace.df)
    overall = (marketplace.df["label"] == "infringing").mean()
    for seed in range(5):
        config = SplitConfig(val_fraction=0.2, test_fraction=0.2, seed=seed)
        splits = assign_splits(marketplace.df, config, hashes=marketplace.hashes)
        report = leakage_report(marketplace.df, splits, hashes=marketplace.hashes)
        wanted = dict(zip(SPLITS, config.fractions, strict=True))
        for split in SPLITS:
            assert abs(report.infringing_share[split] - overall) < 0.05, (seed, report)
            assert abs(report.split_sizes[split] / n - wanted[split]) < 0.05, (seed, report)
        assert sum(report.split_sizes.values()) == n


def test_group_split_is_deterministic_for_a_seed_and_changes_with_it(
    marketplace: Marketplace,
) -> None:
    hashes = marketplace.hashes
    first = assign_splits(marketplace.df, SplitConfig(seed=11), hashes=hashes)
    again = assign_splits(marketplace.df, SplitConfig(seed=11), hashes=hashes)
    others = [assign_splits(marketplace.df, SplitConfig(seed=s), hashes=hashes) for s in (12, 13)]
    assert first.equals(again)
    assert any(not first.equals(other) for other in others)


def test_given_hashes_give_the_same_split_as_hashing_from_root(marketplace: Marketplace) -> None:
    from_root = assign_splits(marketplace.df, root=marketplace.root)
    from_hashes = assign_splits(marketplace.df, hashes=marketplace.hashes)
    assert from_root.equals(from_hashes)


def test_split_is_indexed_like_the_manifest(marketplace: Marketplace) -> None:
    df = marketplace.df.set_index(marketplace.df.index * 10 + 5)
    splits = assign_splits(df, SplitConfig(near_duplicates=False))
    assert splits.index.equals(df.index)
    assert splits.name == "split"


def test_rows_without_a_seller_are_not_lumped_into_one_group() -> None:
    df = pd.DataFrame(
        {
            "listing_id": [f"L{i}" for i in range(40)],
            "seller_id": [None] * 40,
            "label": ["genuine", "infringing"] * 20,
        }
    )
    splits = assign_splits(df, SplitConfig(near_duplicates=False))
    assert splits.nunique() == 3


def test_unreadable_and_missing_images_are_split_by_seller_and_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "broken.png").write_bytes(b"not an image")
    df = pd.DataFrame(
        {
            "listing_id": [f"L{i}" for i in range(12)],
            "seller_id": [f"s{i // 2}" for i in range(12)],
            "image_path": ["broken.png", "gone.png", None] + [""] * 9,
            "label": ["genuine", "infringing"] * 6,
        }
    )
    with caplog.at_level(logging.WARNING):
        splits = assign_splits(df, root=tmp_path)
    assert (splits.groupby(df["seller_id"]).nunique() == 1).all()
    assert "2 of 2 images are missing or could not be decoded" in caplog.text


def test_an_image_shared_by_many_rows_is_hashed_once(
    marketplace: Marketplace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ipguard.data.splits as splits_module

    hashed: list[Path] = []

    def counting_hashes(paths: list[Path], **kwargs: object) -> list[str | None]:
        hashed.extend(paths)
        return image_hashes(paths, **kwargs)

    monkeypatch.setattr(splits_module, "image_hashes", counting_hashes)
    df = marketplace.df.copy()
    df.loc[:9, "image_path"] = df.loc[0, "image_path"]  # one catalogue photo on ten listings
    splits = assign_splits(df, root=marketplace.root)
    assert sorted(hashed) == sorted({marketplace.root / p for p in df["image_path"]})
    assert splits[:10].nunique() == 1


def test_group_split_warns_when_one_huge_group_pushes_sizes_off_target(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sellers = ["big"] * 80 + [f"s{i}" for i in range(20)]
    df = pd.DataFrame(
        {
            "listing_id": [f"L{i}" for i in range(100)],
            "seller_id": sellers,
            "label": ["genuine", "infringing"] * 50,
        }
    )
    with caplog.at_level(logging.WARNING):
        splits = assign_splits(df, SplitConfig(near_duplicates=False))
    assert (splits[:80] == splits[0]).all()
    assert "largest group has 80 of 100 rows" in caplog.text


def test_group_split_close_to_target_does_not_warn(
    marketplace: Marketplace, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        assign_splits(marketplace.df, hashes=marketplace.hashes)
    assert "far from the wanted share" not in caplog.text


def test_manifest_without_sellers_or_images_still_splits_and_says_what_it_could_not_group(
    caplog: pytest.LogCaptureFixture,
) -> None:
    df = pd.DataFrame(
        {"listing_id": [f"L{i}" for i in range(30)], "label": ["genuine", "infringing"] * 15}
    )
    with caplog.at_level(logging.WARNING):
        splits = assign_splits(df)
    assert splits.nunique() == 3
    assert "'seller_id' (SplitConfig.group_column) is absent" in caplog.text
    assert "no image_path column" in caplog.text


def test_group_split_needs_hashes_or_root_when_near_duplicates_are_on(
    marketplace: Marketplace,
) -> None:
    with pytest.raises(ValueError, match=r"root=.*near_duplicates=False"):
        assign_splits(marketplace.df)


def test_hashes_of_the_wrong_length_are_rejected(marketplace: Marketplace) -> None:
    with pytest.raises(ValueError, match=rf"one hash per manifest row \({len(marketplace.df)}\)"):
        assign_splits(marketplace.df, hashes=[None, None])


def test_too_few_sellers_for_three_splits_is_a_clear_error() -> None:
    df = pd.DataFrame(
        {
            "listing_id": ["a", "b", "c", "d"],
            "seller_id": ["s1", "s1", "s2", "s2"],
            "label": ["genuine", "infringing"] * 2,
        }
    )
    with pytest.raises(ValueError, match=r"at least 3 leakage groups.*found 2"):
        assign_splits(df, SplitConfig(near_duplicates=False))


def test_empty_manifest_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no rows"):
        assign_splits(pd.DataFrame({"listing_id": []}), SplitConfig(near_duplicates=False))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"val_fraction": 0.0}, r"SplitConfig.val_fraction: expected a fraction in \(0, 1\)"),
        ({"test_fraction": 1.2}, r"SplitConfig.test_fraction: .*found 1.2"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "less than 1 so train keeps some rows"),
        ({"strategy": "stratified"}, "SplitConfig.strategy: .*'stratified'"),
        ({"max_hash_distance": -1}, "SplitConfig.max_hash_distance"),
        ({"group_column": ""}, "SplitConfig.group_column: expected a column name or None"),
        ({"time_column": ""}, "SplitConfig.time_column"),
        ({"time_groups": "earliest"}, r"SplitConfig.time_groups: .*'earliest'"),
    ],
)
def test_split_config_rejects_bad_values_naming_the_key(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SplitConfig(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"photo_hash": "md5"}, r"SplitConfig.photo_hash: .*'md5'"),
        ({"max_hash_distance": 65, "photo_hash": "phash"}, "at most 64"),
        ({"max_hash_distance": True}, "SplitConfig.max_hash_distance: expected None or an int"),
        ({"max_group_share": 0.0}, r"SplitConfig.max_group_share: expected a share in \(0, 1\]"),
        ({"max_group_share": 1.5}, "SplitConfig.max_group_share: .*found 1.5"),
    ],
)
def test_split_config_rejects_bad_photo_and_guard_settings(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SplitConfig(**kwargs)


def test_signature_distance_may_exceed_64_but_a_phash_distance_may_not() -> None:
    assert SplitConfig(max_hash_distance=300).max_hash_distance == 300
    assert SplitConfig(photo_hash="phash", max_hash_distance=64).max_hash_distance == 64


def test_too_few_groups_error_names_the_config_key_that_turns_photo_grouping_off() -> None:
    df = pd.DataFrame({"listing_id": list("abcd"), "seller_id": ["s1"] * 4})
    with pytest.raises(ValueError, match=r"data\.split\.near_duplicates=false"):
        assign_splits(df, SplitConfig(near_duplicates=False))


# --- the guard against one giant group --------------------------------------------------------


def _photo(k: int) -> str:
    """A distinct, well-spread 64-bit pHash per photo number."""
    return f"{(k + 1) * 0x9E3779B97F4A7C15 % 2**64:016x}"


def _chained_sellers(n_sellers: int = 60, per_seller: int = 5) -> tuple[pd.DataFrame, list[str]]:
    """Each seller shows its own photo and the next seller's: photos chain every seller into
    one component, as look-alike studio shots do through sellers."""
    rows, hashes = [], []
    for seller in range(n_sellers):
        for k in range(per_seller):
            rows.append(
                {
                    "listing_id": f"L{seller:03d}-{k}",
                    "seller_id": f"s{seller:03d}",
                    "label": "infringing" if seller % 4 == 0 else "genuine",
                }
            )
            hashes.append(_photo(seller + k % 2))
    return pd.DataFrame(rows), hashes


def test_a_giant_group_of_chained_photos_is_broken_up_and_the_split_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    df, hashes = _chained_sellers()
    with caplog.at_level(logging.WARNING):
        result = split_manifest(df, hashes=hashes)
    report = result.report
    assert report.largest_group_share_before_guard == 1.0
    assert report.oversized_groups == 1
    assert report.near_duplicate_links_dropped > 0 and report.near_duplicate_links == 0
    assert report.guard_kept_distance == -1  # identical photos chain them: no link can stay
    assert report.groups == 60 and report.largest_group_rows == 5  # the sellers, whole
    assert (result.splits.groupby(df["seller_id"]).nunique() == 1).all()
    assert set(result.splits) == set(SPLITS)
    assert "held more than SplitConfig.max_group_share=0.2" in caplog.text
    assert "data.split.near_duplicates=false" in caplog.text


def test_the_guard_drops_the_weakest_links_and_keeps_exact_copies_together(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Seller s shows its own photo and a look-alike of seller s+1's (3 bits off): weak links
    # chain all 60 sellers. Seller 10 also shows an exact copy of seller 40's photo.
    rows, hashes = [], []
    for seller in range(60):
        for k in range(5):
            rows.append({"listing_id": f"L{seller}-{k}", "seller_id": f"s{seller}",
                         "label": "infringing" if seller % 4 == 0 else "genuine"})  # fmt: skip
            own = int(_photo(seller), 16)
            look_alike = int(_photo(seller + 1), 16) ^ 0b111
            photo = own if k < 3 else look_alike
            if seller == 10 and k == 4:
                photo = int(_photo(40), 16)
            hashes.append(f"{photo:016x}")
    df = pd.DataFrame(rows)
    with caplog.at_level(logging.WARNING):
        result = split_manifest(df, hashes=hashes)
    report = result.report
    assert report.largest_group_share_before_guard == 1.0
    assert report.guard_kept_distance == 0 and report.near_duplicate_links_dropped > 0
    assert report.largest_group_rows == 10  # sellers 10 and 40, joined by the exact copy
    splits = result.splits.groupby(df["seller_id"]).agg(["nunique", "first"])
    assert (splits["nunique"] == 1).all()
    assert splits.loc["s10", "first"] == splits.loc["s40", "first"]
    assert "photo links up to distance 0 kept" in caplog.text


def test_the_guard_leaves_photo_links_outside_the_giant_group_alone() -> None:
    df, hashes = _chained_sellers()
    extra = pd.DataFrame(
        {
            "listing_id": ["X1", "X2", "Y1", "Y2"],
            "seller_id": ["x", "x", "y", "y"],
            "label": ["genuine", "infringing", "genuine", "genuine"],
        }
    )
    df = pd.concat([df, extra], ignore_index=True)
    hashes = [*hashes, _photo(1000), _photo(1001), _photo(1000), _photo(1002)]
    result = split_manifest(df, hashes=hashes)
    assert result.report.near_duplicate_links == 1  # Y1 still shows X1's photo
    assert result.splits.iloc[-4] == result.splits.iloc[-2]


def test_a_max_group_share_of_one_turns_the_guard_off() -> None:
    df, hashes = _chained_sellers()
    with pytest.raises(ValueError, match=r"at least 3 leakage groups.*found 1 in 300 rows"):
        assign_splits(df, SplitConfig(max_group_share=1.0), hashes=hashes)


def test_one_seller_above_the_share_keeps_its_listings_together(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # No photo links to drop: the guard changes nothing and the split still succeeds.
    df = pd.DataFrame(
        {
            "listing_id": [f"L{i}" for i in range(100)],
            "seller_id": ["big"] * 40 + [f"s{i}" for i in range(60)],
            "label": ["genuine", "infringing"] * 50,
        }
    )
    report = split_manifest(df, hashes=[None] * 100).report
    assert report.largest_group_rows == 40 and report.near_duplicate_links_dropped == 0


# --- the split report ------------------------------------------------------------------------


def test_split_report_states_groups_photo_links_and_rows_per_split(
    marketplace: Marketplace,
) -> None:
    result = split_manifest(marketplace.df, hashes=marketplace.hashes)
    report = result.report
    assert report.split_sizes == {s: int((result.splits == s).sum()) for s in SPLITS}
    assert sum(report.split_sizes.values()) == report.rows == len(marketplace.df)
    groups = marketplace.df["seller_id"].nunique() + int(marketplace.df["seller_id"].isna().sum())
    assert report.groups < groups  # copied photos joined some sellers
    assert report.largest_group_share == report.largest_group_rows / report.rows
    assert report.photo_hash == "phash" and report.max_hash_distance == 4
    assert report.rows_hashed == len(marketplace.df)
    assert report.near_duplicate_links == len(marketplace.copied)
    assert report.near_duplicate_links_dropped == 0 and report.oversized_groups == 0


def test_split_report_is_logged_at_info_and_serialisable(
    marketplace: Marketplace, caplog: pytest.LogCaptureFixture
) -> None:
    import json

    with caplog.at_level(logging.INFO, logger="ipguard.data.splits"):
        report = split_manifest(marketplace.df, hashes=marketplace.hashes).report
    assert report.describe() in caplog.text
    assert "leakage groups, the largest" in caplog.text
    assert "12 near-duplicate photo links (phash, distance <= 4" in caplog.text
    assert json.loads(json.dumps(report.as_dict()))["groups"] == report.groups


def test_split_report_of_a_split_that_does_not_group_has_no_group_figures(
    marketplace: Marketplace,
) -> None:
    report = split_manifest(marketplace.df, SplitConfig(strategy="random")).report
    assert report.groups is None and report.photo_hash is None
    assert sum(report.split_sizes.values()) == len(marketplace.df)


def test_photos_read_from_root_are_hashed_with_the_configured_kind(
    marketplace: Marketplace,
) -> None:
    default = split_manifest(marketplace.df, root=marketplace.root).report
    classic = split_manifest(marketplace.df, SplitConfig(photo_hash="phash"), root=marketplace.root)
    assert default.photo_hash == "signature" and default.max_hash_distance == 200
    assert classic.report.photo_hash == "phash"
    assert default.near_duplicate_links == classic.report.near_duplicate_links == 12


def test_reuploads_of_a_studio_photo_by_other_sellers_land_in_its_split(tmp_path: Path) -> None:
    from ipguard.demo.catalogue import make_catalogue

    catalogue = make_catalogue(tmp_path, n_listings=200, n_sellers=30, seed=4)
    df = pd.read_csv(catalogue.manifest_path, dtype=str, keep_default_na=False)
    originals = df.drop_duplicates("image_path").head(3)
    copies = []
    for k, row in enumerate(originals.itertuples()):
        with Image.open(tmp_path / row.image_path) as opened:
            photo = opened.convert("RGB")
        w, h = photo.size
        edits = {
            "q70": (photo, 70),
            "small": (photo.resize((w * 8 // 10, h * 8 // 10)), 85),
            "crop": (photo.crop((3 * w // 100, 2 * h // 100, w, h - 3 * h // 100)), 90),
            "all": (photo.crop((0, 2 * h // 100, w - w // 50, h)).resize((w * 9 // 10,) * 2), 75),
        }
        for name, (image, quality) in edits.items():
            path = f"images/copy-{k}-{name}.jpg"
            image.save(tmp_path / path, quality=quality)
            seller = f"copier-{k}-{name}"
            copies.append(
                {
                    **row._asdict(),
                    "listing_id": f"R{k}{name}",
                    "seller_id": seller,
                    "image_path": path,
                }
            )
    df = pd.concat([df, pd.DataFrame(copies).drop(columns="Index")], ignore_index=True)
    splits = assign_splits(df, root=tmp_path)
    for k, row in enumerate(originals.itertuples()):
        copied = df["listing_id"].str.startswith(f"R{k}")
        assert splits[copied].nunique() == 1 and splits[copied].iloc[0] == splits[row.Index]


# --- random split ---------------------------------------------------------------------------


def test_random_split_is_stratified_by_label() -> None:
    df = pd.DataFrame(
        {
            "listing_id": [f"L{i}" for i in range(400)],
            "label": ["infringing"] * 100 + ["genuine"] * 300,
        }
    )
    splits = assign_splits(df, SplitConfig(strategy="random", seed=5))
    report = leakage_report(df, splits)
    assert report.split_sizes == {"train": 280, "val": 60, "test": 60}
    assert all(abs(share - 0.25) < 0.01 for share in report.infringing_share.values())


# --- time split -----------------------------------------------------------------------------


def _timeline(n: int) -> pd.DataFrame:
    """One listing per day in shuffled row order, each by a different seller."""
    days = np.random.default_rng(0).permutation(n)
    return pd.DataFrame(
        {
            "listing_id": [f"L{i}" for i in range(n)],
            "seller_id": [f"s{i}" for i in range(n)],
            "listed_at": [(pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(d))) for d in days],
            "label": ["genuine", "infringing"] * (n // 2),
        }
    )


def test_time_split_puts_the_latest_listings_in_test_and_the_ones_before_in_val() -> None:
    df = _timeline(100)
    splits = assign_splits(df, SplitConfig(strategy="time", near_duplicates=False))
    times = pd.to_datetime(df["listed_at"])
    assert splits.value_counts().to_dict() == {"train": 70, "val": 15, "test": 15}
    assert times[splits == "train"].max() < times[splits == "val"].min()
    assert times[splits == "val"].max() < times[splits == "test"].min()


def _year_round_sellers(n: int, n_sellers: int) -> pd.DataFrame:
    """``_timeline`` rows spread over a few sellers who each list all year, as real ones do."""
    df = _timeline(n)
    df["seller_id"] = [f"s{i % n_sellers}" for i in range(n)]
    df["image_path"] = [f"images/{i}.jpg" for i in range(n)]  # never read by a time split
    return df


def test_time_split_cuts_by_time_alone_even_when_every_seller_lists_all_year(
    caplog: pytest.LogCaptureFixture,
) -> None:
    df = _year_round_sellers(100, n_sellers=5)
    with caplog.at_level(logging.INFO, logger="ipguard.data.splits"):
        splits = assign_splits(df, SplitConfig(strategy="time"))
    times = pd.to_datetime(df["listed_at"])
    assert splits.value_counts().to_dict() == {"train": 70, "val": 15, "test": 15}
    assert times[splits == "train"].max() < times[splits == "val"].min()
    assert times[splits == "val"].max() < times[splits == "test"].min()
    assert "5 of 5 sellers have listings in more than one split" in caplog.text
    assert "15 of 15 test listings come from sellers also in train" in caplog.text


def test_leakage_report_states_the_returning_sellers_of_a_time_split() -> None:
    df = _year_round_sellers(100, n_sellers=5)
    df.loc[df["listed_at"].idxmax(), "seller_id"] = "newcomer"
    splits = assign_splits(df, SplitConfig(strategy="time"))
    report = leakage_report(df, splits, hashes=[None] * len(df))
    assert report.leaks
    assert report.sellers_crossing == 5
    assert report.test_rows_from_train_sellers == 14
    assert "14 of 15 test listings (93.3%) come from sellers also in train" in report.describe()


def test_time_split_with_latest_groups_moves_straddling_sellers_and_copied_photos_later(
    caplog: pytest.LogCaptureFixture,
) -> None:
    df = _timeline(100)
    order = df["listed_at"].sort_values().index
    earliest, latest, in_train, in_val = order[0], order[-1], order[10], order[80]
    df.loc[[earliest, latest], "seller_id"] = "spans-everything"
    hashes: list[str | None] = [None] * len(df)
    hashes[in_train] = hashes[in_val] = "00ff00ff00ff00ff"

    with caplog.at_level(logging.WARNING):
        splits = assign_splits(
            df, SplitConfig(strategy="time", time_groups="latest"), hashes=hashes
        )

    assert splits[earliest] == "test" and splits[latest] == "test"
    assert splits[in_train] == "val" and splits[in_val] == "val"
    assert "moved 2 rows in 2 seller/duplicate-image groups" in caplog.text
    assert not leakage_report(df, splits, hashes=hashes).leaks


def test_time_split_with_latest_groups_and_no_seller_column_still_groups_images() -> None:
    df = _timeline(100)
    order = df["listed_at"].sort_values().index
    df.loc[[order[0], order[-1]], "seller_id"] = "spans-everything"
    hashes: list[str | None] = [None] * len(df)
    hashes[order[10]] = hashes[order[80]] = "00ff00ff00ff00ff"

    config = SplitConfig(strategy="time", time_groups="latest", group_column=None)
    splits = assign_splits(df, config, hashes=hashes)

    assert splits[order[0]] == "train" and splits[order[-1]] == "test"
    assert splits[order[10]] == splits[order[80]] == "val"
    assert leakage_report(df, splits, hashes=hashes).sellers_crossing == 1


def test_time_split_accepts_iso_strings_with_mixed_time_zones() -> None:
    df = _timeline(20)
    df["listed_at"] = [t.isoformat() for t in df["listed_at"]]
    df.loc[0, "listed_at"] = "2030-01-01T00:00:00+05:00"
    splits = assign_splits(df, SplitConfig(strategy="time", near_duplicates=False))
    assert splits[0] == "test"


def test_time_split_without_the_time_column_names_it() -> None:
    df = _timeline(20).drop(columns="listed_at")
    with pytest.raises(ValueError, match=r"'listed_at' .*SplitConfig.time_column.* absent"):
        assign_splits(df, SplitConfig(strategy="time", near_duplicates=False))


def test_time_split_with_an_unparsable_timestamp_names_column_and_row() -> None:
    df = _timeline(20)
    df["listed_at"] = df["listed_at"].astype(str)
    df.loc[7, "listed_at"] = "last tuesday"
    with pytest.raises(
        ValueError, match=r"'listed_at'.*1 missing or unparsable.*row 7: 'last tuesday'"
    ):
        assign_splits(df, SplitConfig(strategy="time", near_duplicates=False))


def test_time_split_rejects_numbers_as_timestamps() -> None:
    df = _timeline(20)
    df["listed_at"] = np.arange(20)
    with pytest.raises(ValueError, match=r"'listed_at'.*found numbers"):
        assign_splits(df, SplitConfig(strategy="time", near_duplicates=False))


def test_time_split_with_latest_groups_that_would_leave_a_split_empty_is_an_error() -> None:
    df = _timeline(20)
    df["seller_id"] = "one-seller"
    config = SplitConfig(strategy="time", time_groups="latest", near_duplicates=False)
    with pytest.raises(ValueError, match="train, val got no rows"):
        assign_splits(df, config)


def test_time_split_with_latest_groups_warns_that_year_round_sellers_empty_train(
    caplog: pytest.LogCaptureFixture,
) -> None:
    df = _year_round_sellers(200, n_sellers=40)
    config = SplitConfig(strategy="time", time_groups="latest", near_duplicates=False)
    with caplog.at_level(logging.WARNING):
        splits = assign_splits(df, config)
    assert (splits == "train").sum() < 0.25 * len(df)  # wanted: 70%
    assert "time_groups='allow' keeps the time order" in caplog.text


# --- saving and loading ---------------------------------------------------------------------


def test_saved_split_reloads_onto_a_reordered_manifest(
    marketplace: Marketplace, tmp_path: Path
) -> None:
    df = marketplace.df
    splits = assign_splits(df, SplitConfig(near_duplicates=False))
    path = save_splits(tmp_path / "nested" / "splits.csv", df["listing_id"], splits)
    assert path.read_text().splitlines()[0] == "listing_id,split"

    shuffled = df.sample(frac=1.0, random_state=1)
    reloaded = load_splits(path, shuffled)
    assert reloaded.index.equals(shuffled.index)
    assert reloaded.equals(splits.reindex(shuffled.index))


def test_saved_split_reloads_onto_a_subset_and_numeric_ids(tmp_path: Path) -> None:
    df = pd.DataFrame({"listing_id": [101, 102, 103, 104]})
    splits = pd.Series(["train", "val", "test", "train"])
    path = save_splits(tmp_path / "splits.csv", df["listing_id"], splits)
    reloaded = load_splits(path, df.iloc[[3, 1]])
    assert reloaded.tolist() == ["train", "val"]


def test_loading_onto_unknown_listings_names_them_and_counts_both_sides(tmp_path: Path) -> None:
    saved = pd.DataFrame({"listing_id": ["a", "b", "c"]})
    path = save_splits(
        tmp_path / "splits.csv", saved["listing_id"], pd.Series(["train", "val", "test"])
    )
    df = pd.DataFrame({"listing_id": ["a", "x", "y"]})
    with pytest.raises(ValueError) as error:
        load_splits(path, df)
    message = str(error.value)
    assert "2 listing ids" in message and "'x'" in message and "'y'" in message
    assert "2 of the 3 saved ids are absent" in message


def test_loading_a_file_with_an_unknown_split_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "splits.csv"
    path.write_text("listing_id,split\na,train\nb,holdout\n")
    with pytest.raises(ValueError, match=r"line 3, column split: .*'holdout'"):
        load_splits(path, pd.DataFrame({"listing_id": ["a", "b"]}))


def test_saving_rejects_repeated_ids_and_unknown_splits(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unique.*'a'"):
        save_splits(tmp_path / "s.csv", pd.Series(["a", "a"]), pd.Series(["train", "val"]))
    with pytest.raises(ValueError, match="'dev' for listing_id 'b'"):
        save_splits(tmp_path / "s.csv", pd.Series(["a", "b"]), pd.Series(["train", "dev"]))


# --- leakage report -------------------------------------------------------------------------


def test_leakage_report_counts_crossings_sizes_and_shares() -> None:
    df = pd.DataFrame(
        {
            "listing_id": list("abcdef"),
            "seller_id": ["s1", "s1", "s2", "s2", "s3", None],
            "label": ["infringing", "genuine", "genuine", "genuine", "infringing", "genuine"],
        }
    )
    splits = pd.Series(["train", "test", "val", "val", "test", "train"])
    hashes = ["ffff0000ffff0000", None, "ffff0000ffff0001", None, "ffff0000ffff0000", None]

    report = leakage_report(df, splits, hashes=hashes)

    assert report.sellers_crossing == 1  # s1
    assert report.duplicate_groups_crossing == 1  # rows a, c and e share a photo
    assert report.split_sizes == {"train": 2, "val": 2, "test": 2}
    assert report.infringing_share == {"train": 0.5, "val": 0.0, "test": 0.5}
    assert report.test_rows_from_train_sellers == 1  # row b: s1 is also in train
    assert "1 sellers have listings in more than one split" in report.describe()


def test_leakage_report_without_hashes_or_root_warns_that_images_were_not_checked(
    marketplace: Marketplace, caplog: pytest.LogCaptureFixture
) -> None:
    splits = assign_splits(marketplace.df, SplitConfig(strategy="random"))
    with caplog.at_level(logging.WARNING):
        report = leakage_report(marketplace.df, splits)
    assert report.duplicate_groups_crossing == 0
    assert not report.images_checked
    assert "not checked" in caplog.text
    assert "near-duplicate images were not checked" in report.describe()


def test_leakage_report_rejects_splits_that_do_not_cover_the_manifest() -> None:
    df = pd.DataFrame({"listing_id": ["a", "b", "c"]})
    with pytest.raises(ValueError, match="found 'dev' at row 1"):
        leakage_report(df, pd.Series(["train", "dev", "test"]))
    with pytest.raises(ValueError, match="found no split at row 2"):
        leakage_report(df, pd.Series(["train", "val"], index=[0, 1]))
