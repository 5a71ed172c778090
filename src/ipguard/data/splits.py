"""Train/val/test splits that do not leak, and the files that make them reproducible.

A test AUROC means something only if the test listings are new to the model. Two kinds of
leak make it look better than it is: a seller whose writing style and photos appear on both
sides, and the same product photo reused across listings (often re-encoded or resized). So the
default split keeps each *leakage group* -- sellers joined with near-duplicate images -- whole,
while holding the infringing share roughly equal across splits. A time split answers a
different question (how the model does on next month's listings): it cuts by ``listed_at``
alone, so sellers who keep listing all year appear on both sides, as returning sellers do in
production; :func:`leakage_report` counts them and the test listings they wrote. A plain random
split exists only to show how much the leaks inflate a score.

A split is saved as a ``listing_id,split`` CSV so a later run (or another team) can reuse it
exactly, and :func:`leakage_report` checks any split for the leaks above.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ipguard.data.columns import POSITIVE_LABEL
from ipguard.data.io import image_files
from ipguard.data.near_duplicates import (
    HASH_BITS,
    HASH_KINDS,
    PhotoClusters,
    connected_groups,
    image_hashes,
    near_duplicate_clusters,
)

__all__ = [
    "SPLITS",
    "LeakageReport",
    "SplitConfig",
    "SplitReport",
    "SplitResult",
    "assign_splits",
    "leakage_report",
    "load_splits",
    "save_splits",
    "split_manifest",
]

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
_STRATEGIES = ("group", "time", "random")
_TIME_GROUPS = ("allow", "latest")
_EXAMPLES_SHOWN = 5


@dataclass(frozen=True)
class SplitConfig:
    """How to split a manifest; validated on creation so a bad Hydra value fails early."""

    strategy: Literal["group", "time", "random"] = "group"
    """group: no seller or near-duplicate image in two splits. time: latest listings are the
    test set (see ``time_groups``). random: stratified by label but leaky, for comparison only."""
    val_fraction: float = 0.15
    """Share of rows wanted in val; met approximately because groups are kept whole."""
    test_fraction: float = 0.15
    """Share of rows wanted in test (for time: the latest share of listings)."""
    seed: int = 0
    """Same seed and data give the same split; ignored by the time strategy."""
    group_column: str | None = "seller_id"
    """Rows sharing a value here stay together; rows with no value are their own group.
    None groups by near-duplicate images only."""
    near_duplicates: bool = True
    """Also keep together rows whose images are near-duplicates (group strategy, and time
    strategy with ``time_groups="latest"``)."""
    photo_hash: Literal["signature", "phash"] = "signature"
    """How photos are hashed when the split reads them: ``signature`` describes the product
    itself and tells similar studio shots of different items apart; ``phash`` is the classic
    64-bit pHash, which on such shots confuses 1 pair of different items in 285 and misses
    a quarter of cropped copies.
    Ignored when hashes are passed in (their kind is used)."""
    max_hash_distance: int | None = None
    """Photos this close or closer are duplicates; None uses the hash kind's default (4 bits of
    a pHash; 200 for signatures, summed over their 768 cell bytes)."""
    max_group_share: float = 0.2
    """Guard against chaining: a leakage group holding more than this share of the rows is
    not a real copy ring but look-alike photos linking sellers. The near-duplicate links
    inside it are dropped (its sellers stay whole) and the split goes on, with the figures
    logged and in the split report. 1.0 turns the guard off."""
    time_column: str = "listed_at"
    """Timestamp column the time strategy orders by."""
    time_groups: Literal["allow", "latest"] = "allow"
    """Time strategy only. allow: cut by time alone; a seller or photo active on both sides of
    a cut is in both splits, as returning sellers are in production (leakage_report counts
    them). latest: move each seller/duplicate-image group that straddles a cut to its latest
    split; leak-free, but with sellers active all year it leaves train nearly empty."""

    def __post_init__(self) -> None:
        if self.strategy not in _STRATEGIES:
            raise ValueError(
                f"SplitConfig.strategy: expected one of {_STRATEGIES}, found {self.strategy!r}"
            )
        for key in ("val_fraction", "test_fraction"):
            value = getattr(self, key)
            if not 0 < value < 1:
                raise ValueError(f"SplitConfig.{key}: expected a fraction in (0, 1), found {value}")
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError(
                "SplitConfig.val_fraction + SplitConfig.test_fraction: expected less than 1 so "
                f"train keeps some rows, found {self.val_fraction} + {self.test_fraction} = "
                f"{self.val_fraction + self.test_fraction}"
            )
        if self.photo_hash not in HASH_KINDS:
            raise ValueError(
                f"SplitConfig.photo_hash: expected one of {HASH_KINDS}, found {self.photo_hash!r}"
            )
        if self.max_hash_distance is not None and (
            isinstance(self.max_hash_distance, bool)
            or not isinstance(self.max_hash_distance, int)
            or self.max_hash_distance < 0
            or (self.photo_hash == "phash" and self.max_hash_distance > HASH_BITS)
        ):
            raise ValueError(
                "SplitConfig.max_hash_distance: expected None or an int >= 0 (at most 64, the "
                f"bits of a pHash, with photo_hash='phash'), found {self.max_hash_distance!r}"
            )
        if not 0 < self.max_group_share <= 1:
            raise ValueError(
                "SplitConfig.max_group_share: expected a share in (0, 1] (1 turns the guard "
                f"off), found {self.max_group_share}"
            )
        if self.group_column is not None and not self.group_column:
            raise ValueError("SplitConfig.group_column: expected a column name or None, found ''")
        if not self.time_column:
            raise ValueError("SplitConfig.time_column: expected a column name, found ''")
        if self.time_groups not in _TIME_GROUPS:
            raise ValueError(
                f"SplitConfig.time_groups: expected one of {_TIME_GROUPS}, "
                f"found {self.time_groups!r}"
            )

    @property
    def fractions(self) -> tuple[float, float, float]:
        """Wanted shares of train, val and test, in the order of :data:`SPLITS`."""
        return (1 - self.val_fraction - self.test_fraction, self.val_fraction, self.test_fraction)


@dataclass(frozen=True)
class SplitReport:
    """What a split was made of: the figures to read before trusting its test score."""

    strategy: str
    rows: int
    split_sizes: dict[str, int]
    """Rows per split."""
    groups: int | None = None
    """Leakage groups (sellers joined with near-duplicate photos); None when the strategy
    does not group (random, or time with ``time_groups="allow"``)."""
    largest_group_rows: int | None = None
    largest_group_share: float | None = None
    photo_hash: str | None = None
    """Kind of photo hash used (``signature`` or ``phash``); None when images were not used."""
    max_hash_distance: int | None = None
    rows_hashed: int = 0
    """Rows whose photo has a hash; the others are grouped by seller only."""
    near_duplicate_links: int = 0
    """Rows joined to another row's photo cluster and kept joined (one link each)."""
    near_duplicate_links_dropped: int = 0
    """Links dropped by the ``max_group_share`` guard."""
    oversized_groups: int = 0
    """Groups above ``max_group_share`` before the guard broke them up."""
    largest_group_share_before_guard: float | None = None
    guard_kept_distance: int | None = None
    """When the guard acted: photo links inside those groups were kept up to this distance
    (-1: none kept); None when it did not act."""

    def as_dict(self) -> dict[str, object]:
        """Plain values, for ``data/summary.json`` and other logs."""
        return dict(self.__dict__)

    def describe(self) -> str:
        """The figures in one line, as logged at split time."""
        parts = [
            f"{self.strategy} split of {self.rows} rows: "
            + ", ".join(f"{s}={n}" for s, n in self.split_sizes.items())
        ]
        if self.groups is not None:
            parts.append(
                f"{self.groups} leakage groups, the largest {self.largest_group_rows} rows "
                f"({self.largest_group_share:.1%})"
            )
        if self.photo_hash is not None:
            parts.append(
                f"{self.near_duplicate_links} near-duplicate photo links ({self.photo_hash}, "
                f"distance <= {self.max_hash_distance}, {self.rows_hashed} of {self.rows} rows "
                f"hashed), {self.near_duplicate_links_dropped} dropped"
            )
        if self.oversized_groups:
            parts.append(
                f"{self.oversized_groups} groups above max_group_share broken up (the largest "
                f"held {self.largest_group_share_before_guard:.1%} of rows; links inside kept "
                f"up to distance {self.guard_kept_distance})"
            )
        return "; ".join(parts)


@dataclass(frozen=True)
class SplitResult:
    """A split and its report."""

    splits: pd.Series
    """"train" / "val" / "test" per row, indexed like the manifest."""
    report: SplitReport


def assign_splits(
    df: pd.DataFrame,
    config: SplitConfig = SplitConfig(),
    *,
    root: str | Path | None = None,
    hashes: Sequence[str | None] | None = None,
) -> pd.Series:
    """Return "train" / "val" / "test" per row, indexed like ``df``.

    ``root`` is the manifest folder that ``image_path`` is relative to; it is needed only when
    near-duplicates are on and ``hashes`` (one photo hash or None per row, e.g. from
    :func:`ipguard.data.near_duplicates.image_hashes` run once with many workers) is not given.
    :func:`split_manifest` also returns the split's report.
    """
    return split_manifest(df, config, root=root, hashes=hashes).splits


def split_manifest(
    df: pd.DataFrame,
    config: SplitConfig = SplitConfig(),
    *,
    root: str | Path | None = None,
    hashes: Sequence[str | None] | None = None,
) -> SplitResult:
    """:func:`assign_splits`, plus a :class:`SplitReport` (also logged at INFO)."""
    if len(df) == 0:
        raise ValueError("assign_splits: the manifest has no rows to split")
    grouping: _Grouping | None = None
    if config.strategy == "random":
        codes = _random_split(_strata(df), config)
    elif config.strategy == "group":
        grouping = _leakage_groups(df, config, root=root, hashes=hashes)
        codes = _stratified_group_split(grouping.groups, _strata(df), config)
    else:
        times = _parse_times(df, config.time_column)  # before hashing: fail fast
        codes = _time_split(times, config)
        if config.time_groups == "latest":
            grouping = _leakage_groups(df, config, root=root, hashes=hashes)
            codes = _move_groups_to_latest_split(codes, grouping.groups)
        else:
            _log_returning_sellers(df, codes, config)
    _require_every_split(codes, config.strategy, len(df))
    if grouping is not None:
        _warn_if_far_from_fractions(codes, grouping.groups, config)
    splits = pd.Series(np.asarray(SPLITS, dtype=object)[codes], index=df.index, name="split")
    report = _report(config, codes, grouping)
    logger.info("%s", report.describe())
    return SplitResult(splits=splits, report=report)


def save_splits(path: str | Path, listing_ids: pd.Series, splits: pd.Series) -> Path:
    """Write a ``listing_id,split`` CSV so a run can be reproduced on exactly this split."""
    if len(listing_ids) != len(splits):
        raise ValueError(
            f"save_splits: expected one split per listing id, found {len(listing_ids)} ids "
            f"and {len(splits)} splits"
        )
    if (
        isinstance(listing_ids, pd.Series)
        and isinstance(splits, pd.Series)
        and not listing_ids.index.equals(splits.index)
    ):
        raise ValueError(
            "save_splits: listing_ids and splits must share one index (rows of the same "
            "manifest); found different indexes, so rows would be paired wrongly"
        )
    ids = pd.Series(np.asarray(listing_ids, dtype=object))
    values = pd.Series(np.asarray(splits, dtype=object))
    if ids.isna().any():
        position = int(np.flatnonzero(ids.isna().to_numpy())[0])
        raise ValueError(f"save_splits: listing_id at position {position} is missing")
    ids = ids.astype(str)
    duplicated = ids[ids.duplicated()].unique()
    if len(duplicated):
        raise ValueError(
            f"save_splits: listing_id must be unique, found {len(duplicated)} repeated, "
            f"e.g. {list(duplicated[:_EXAMPLES_SHOWN])}"
        )
    unknown = ~values.isin(SPLITS)
    if unknown.any():
        position = int(np.flatnonzero(unknown.to_numpy())[0])
        raise ValueError(
            f"save_splits: expected splits in {SPLITS}, found {values.iloc[position]!r} for "
            f"listing_id {ids.iloc[position]!r} ({int(unknown.sum())} such rows)"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"listing_id": ids, "split": values}).to_csv(path, index=False)
    return path


def load_splits(path: str | Path, df: pd.DataFrame) -> pd.Series:
    """Re-apply a saved split to ``df`` by ``listing_id``, indexed like ``df``.

    Every listing in ``df`` must be in the file: a listing with no saved split would otherwise
    have to be guessed into one, which is how leaks creep back in. Saved ids that ``df`` lacks
    are fine (a filtered manifest) and are logged.
    """
    path = Path(path)
    saved = pd.read_csv(path, dtype=str, keep_default_na=False)
    if list(saved.columns[:2]) != ["listing_id", "split"]:
        raise ValueError(
            f"{path}: expected columns listing_id,split, found {','.join(map(str, saved.columns))}"
        )
    unknown = ~saved["split"].isin(SPLITS)
    if unknown.any():
        row = int(np.flatnonzero(unknown.to_numpy())[0])
        raise ValueError(
            f"{path}: line {row + 2}, column split: expected one of {SPLITS}, "
            f"found {saved['split'].iloc[row]!r}"
        )
    repeated = saved["listing_id"][saved["listing_id"].duplicated()].unique()
    if len(repeated):
        raise ValueError(
            f"{path}: column listing_id: expected unique ids, found {len(repeated)} repeated, "
            f"e.g. {list(repeated[:_EXAMPLES_SHOWN])}"
        )
    if "listing_id" not in df.columns:
        raise ValueError("load_splits: the manifest has no listing_id column to match splits by")

    ids = df["listing_id"].astype(str)
    lookup = pd.Series(saved["split"].to_numpy(), index=saved["listing_id"].to_numpy())
    absent_from_file = ~ids.isin(lookup.index)
    n_absent_from_df = int((~lookup.index.isin(ids)).sum())
    if absent_from_file.any():
        missing = ids[absent_from_file].tolist()
        raise ValueError(
            f"{path}: {len(missing)} listing ids of the manifest have no saved split, e.g. "
            f"{missing[:_EXAMPLES_SHOWN]}; {n_absent_from_df} of the {len(lookup)} saved ids "
            "are absent from the manifest. The split was made for different data: make a new one."
        )
    if n_absent_from_df:
        logger.info(
            "%s: %d of %d saved ids are not in this manifest (ignored)",
            path,
            n_absent_from_df,
            len(lookup),
        )
    return pd.Series(ids.map(lookup).to_numpy(dtype=object), index=df.index, name="split")


@dataclass(frozen=True)
class LeakageReport:
    """What leaks across a split, and whether the splits are comparable."""

    sellers_crossing: int
    """Sellers with listings in more than one split."""
    duplicate_groups_crossing: int
    """Near-duplicate image groups with members in more than one split."""
    split_sizes: dict[str, int]
    """Rows per split."""
    infringing_share: dict[str, float]
    """Share of labelled rows that are infringing, per split (NaN where none are labelled)."""
    test_rows_from_train_sellers: int = 0
    """Test listings whose seller also has listings in train: how much of the test score is
    earned on sellers the model has already seen (by design in a time split, a leak otherwise)."""
    images_checked: bool = True
    """False when neither hashes nor root were given, so duplicate images were not looked for."""

    @property
    def leaks(self) -> bool:
        """True when any seller or duplicate image group spans splits."""
        return self.sellers_crossing > 0 or self.duplicate_groups_crossing > 0

    def describe(self) -> str:
        """One plain sentence per finding, for logs and reports."""
        n_test = self.split_sizes.get("test", 0)
        share = self.test_rows_from_train_sellers / n_test if n_test else 0.0
        lines = [
            "sizes " + ", ".join(f"{s}={n}" for s, n in self.split_sizes.items()),
            f"{self.sellers_crossing} sellers have listings in more than one split; "
            f"{self.test_rows_from_train_sellers} of {n_test} test listings ({share:.1%}) "
            "come from sellers also in train",
        ]
        if self.images_checked:
            lines.append(
                f"{self.duplicate_groups_crossing} near-duplicate image groups span splits"
            )
        else:
            lines.append("near-duplicate images were not checked (no hashes or root given)")
        return "; ".join(lines)


def leakage_report(
    df: pd.DataFrame,
    splits: pd.Series,
    *,
    hashes: Sequence[str | None] | None = None,
    root: str | Path | None = None,
    max_hash_distance: int | None = None,
    photo_hash: str = "signature",
) -> LeakageReport:
    """Count sellers and near-duplicate photo clusters that span splits.

    Image duplicates are checked when ``hashes`` or ``root`` (the folder ``image_path`` is
    relative to) is given; without either, ``duplicate_groups_crossing`` is 0 and a warning
    says that images were not checked. Photos are clustered as the group split clusters them
    (bounded clusters of ``photo_hash`` hashes, or of the kind of the ``hashes`` given).
    """
    splits = _aligned_splits(df, splits)

    sellers_crossing = 0
    test_rows_from_train_sellers = 0
    if "seller_id" in df.columns:
        by_seller = pd.DataFrame({"seller": df["seller_id"], "split": splits}).dropna()
        sellers_crossing = int((by_seller.groupby("seller")["split"].nunique() > 1).sum())
        train_sellers = by_seller.loc[by_seller["split"] == "train", "seller"].unique()
        in_test = by_seller[by_seller["split"] == "test"]
        test_rows_from_train_sellers = int(in_test["seller"].isin(train_sellers).sum())

    duplicate_groups_crossing = 0
    images_checked = True
    if hashes is None and root is None and "image_path" in df.columns:
        images_checked = False
        logger.warning(
            "leakage_report: neither hashes nor root given, so near-duplicate images were not "
            "checked (duplicate_groups_crossing=0 means 'not checked')"
        )
    else:
        row_hashes = _manifest_hashes(
            df, root=root, hashes=hashes, caller="leakage_report", kind=photo_hash
        )
        groups = near_duplicate_clusters(row_hashes, max_distance=max_hash_distance).labels
        per_group = pd.DataFrame({"group": groups, "split": splits.to_numpy()})
        duplicate_groups_crossing = int((per_group.groupby("group")["split"].nunique() > 1).sum())

    split_sizes = {s: int((splits == s).sum()) for s in SPLITS}
    infringing_share: dict[str, float] = {}
    for s in SPLITS:
        labels = df.loc[splits == s, "label"].dropna() if "label" in df.columns else []
        share = float((labels == POSITIVE_LABEL).mean()) if len(labels) else float("nan")
        infringing_share[s] = share
    return LeakageReport(
        sellers_crossing=sellers_crossing,
        duplicate_groups_crossing=duplicate_groups_crossing,
        split_sizes=split_sizes,
        infringing_share=infringing_share,
        test_rows_from_train_sellers=test_rows_from_train_sellers,
        images_checked=images_checked,
    )


# --- grouping -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Grouping:
    """Leakage groups and how they were formed, for the split report."""

    groups: np.ndarray
    clusters: PhotoClusters | None
    rows_hashed: int
    links: int
    links_dropped: int
    oversized_groups: int
    largest_share_before_guard: float
    guard_cutoff: int | None


def _leakage_groups(
    df: pd.DataFrame,
    config: SplitConfig,
    *,
    root: str | Path | None,
    hashes: Sequence[str | None] | None,
) -> _Grouping:
    """Group id per row: rows sharing a seller or a photo cluster, transitively.

    Photo clusters are bounded (see near_duplicate_clusters), but sellers still chain them:
    seller A's photo resembles seller B's, B's another resembles C's... On look-alike studio
    shots that can sweep a whole catalogue into one group. So any group holding more than
    ``max_group_share`` of the rows loses its photo links (its sellers stay whole) and the
    groups are formed again; everything it cost is logged.
    """
    n = len(df)
    seller_left = seller_right = np.zeros(0, dtype=np.int64)
    column = config.group_column
    if column is not None and column in df.columns:
        sellers, _ = pd.factorize(df[column])  # missing seller -> -1
        seller_left, seller_right = _edges_to_first_member(sellers)
    elif column is not None:
        logger.warning(
            "%s split: column %r (SplitConfig.group_column) is absent, so listings are grouped "
            "by near-duplicate images only",
            config.strategy,
            column,
        )

    clusters: PhotoClusters | None = None
    photo_left = photo_right = photo_gap = np.zeros(0, dtype=np.int64)
    rows_hashed = 0
    if config.near_duplicates:
        row_hashes = _manifest_hashes(
            df, root=root, hashes=hashes, caller=f"{config.strategy} split", kind=config.photo_hash
        )
        rows_hashed = sum(1 for h in row_hashes if h is not None and not pd.isna(h))
        clusters = near_duplicate_clusters(row_hashes, max_distance=config.max_hash_distance)
        photo_left, photo_right = _edges_to_first_member(clusters.labels)
        joined = photo_left != photo_right
        photo_left, photo_right = photo_left[joined], photo_right[joined]
        # The first row of a cluster shows its leader, so a link is as strong as its row's
        # distance to the leader.
        photo_gap = clusters.distance_to_leader[photo_right]

    def components(keep: np.ndarray | None = None) -> np.ndarray:
        left, right = photo_left, photo_right
        if keep is not None:
            left, right = left[keep], right[keep]
        if not (seller_left.size or left.size):
            return np.arange(n)
        return connected_groups(
            n, np.concatenate([seller_left, left]), np.concatenate([seller_right, right])
        )

    groups = components()
    sizes = np.bincount(groups)
    largest_before = float(sizes.max() / n)
    oversized = np.flatnonzero(sizes > config.max_group_share * n)
    dropped, cutoff = 0, None
    if oversized.size and photo_left.size:
        inside = np.isin(groups[photo_right], oversized)
        if inside.any():
            cutoff = _strongest_links_that_fit(components, photo_gap, inside, config, n)
            keep = ~inside | (photo_gap <= cutoff)
            dropped = int((~keep).sum())
            groups = components(keep)
            _log_broken_groups(config, sizes[oversized], n, dropped, cutoff, groups)
    return _Grouping(
        groups=groups,
        clusters=clusters,
        rows_hashed=rows_hashed,
        links=int(photo_left.size) - dropped,
        links_dropped=dropped,
        oversized_groups=int(oversized.size),
        largest_share_before_guard=largest_before,
        guard_cutoff=cutoff,
    )


def _strongest_links_that_fit(
    components, gaps: np.ndarray, inside: np.ndarray, config: SplitConfig, n: int
) -> int:
    """The largest distance up to which the photo links inside oversized groups can be kept
    while no group holds more than a quarter of ``max_group_share`` of the rows (or more than
    the largest group their sellers form without those links); -1 keeps none.

    Copies of one photo are mostly much closer than look-alikes of different items, so
    keeping the strongest links keeps most copies together. Look-alike chains percolate
    abruptly: on a 200,000-listing catalogue keeping links up to distance 155 left one group of
    19% of the rows, up to 140 the largest had 3.9%. Aiming at a quarter of the share stays
    clear of that edge. More links only ever merge groups, so the largest group grows with the
    cutoff and a binary search finds it.
    """
    cutoffs = np.unique(gaps[inside])
    without = int(np.bincount(components(~inside)).max())
    limit = max(config.max_group_share * n / 4, without)

    def fits(k: int) -> bool:  # k = -1 keeps no link inside
        keep = ~inside | (gaps <= (cutoffs[k] if k >= 0 else -1))
        return np.bincount(components(keep)).max() <= limit

    low, high = -1, len(cutoffs) - 1  # fits(low) is assumed; fits(high) is false
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return int(cutoffs[low]) if low >= 0 else -1


def _log_broken_groups(
    config: SplitConfig,
    sizes: np.ndarray,
    n: int,
    dropped: int,
    cutoff: int,
    groups: np.ndarray,
) -> None:
    largest = int(np.bincount(groups).max())
    kept = (
        f"photo links up to distance {cutoff} kept, the {dropped} weaker ones dropped"
        if cutoff >= 0
        else f"all {dropped} photo links inside dropped"
    )
    logger.warning(
        "%s split: %d leakage group(s) held more than SplitConfig.max_group_share=%s of the "
        "rows (%s of %d), which look-alike photos chaining sellers together do, not copies; "
        "%s, sellers kept whole. The largest group now has %d rows (%.1f%%). To change this: "
        "data.split.max_hash_distance (stricter photo matching), data.split.max_group_share, "
        "or data.split.near_duplicates=false.",
        config.strategy,
        len(sizes),
        config.max_group_share,
        "/".join(str(int(s)) for s in sorted(sizes.tolist(), reverse=True)),
        n,
        kept,
        largest,
        100 * largest / n,
    )


def _report(config: SplitConfig, codes: np.ndarray, grouping: _Grouping | None) -> SplitReport:
    n = len(codes)
    sizes = _sizes(codes)
    if grouping is None:
        return SplitReport(strategy=config.strategy, rows=n, split_sizes=sizes)
    largest = int(np.bincount(grouping.groups).max())
    clusters = grouping.clusters
    return SplitReport(
        strategy=config.strategy,
        rows=n,
        split_sizes=sizes,
        groups=int(grouping.groups.max()) + 1,
        largest_group_rows=largest,
        largest_group_share=largest / n,
        photo_hash=clusters.kind if clusters is not None else None,
        max_hash_distance=clusters.max_distance if clusters is not None and clusters.kind else None,
        rows_hashed=grouping.rows_hashed,
        near_duplicate_links=grouping.links,
        near_duplicate_links_dropped=grouping.links_dropped,
        oversized_groups=grouping.oversized_groups,
        largest_group_share_before_guard=grouping.largest_share_before_guard,
        guard_kept_distance=grouping.guard_cutoff,
    )


def _edges_to_first_member(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges joining each labelled row to the first row with its label (-1 = no label)."""
    rows = np.flatnonzero(labels >= 0)
    _, first, inverse = np.unique(labels[rows], return_index=True, return_inverse=True)
    return rows[first][inverse.reshape(-1)], rows


def _manifest_hashes(
    df: pd.DataFrame,
    *,
    root: str | Path | None,
    hashes: Sequence[str | None] | None,
    caller: str,
    kind: str = "signature",
) -> list[str | None]:
    """One photo hash or None per row: the given ones, or of ``kind`` from root / image_path."""
    if hashes is not None:
        if len(hashes) != len(df):
            raise ValueError(
                f"{caller}: expected one hash per manifest row ({len(df)}), "
                f"found {len(hashes)} hashes"
            )
        return list(hashes)
    if "image_path" not in df.columns:
        logger.warning(
            "%s: the manifest has no image_path column, so near-duplicate images cannot be "
            "found; grouping by seller only",
            caller,
        )
        return [None] * len(df)
    if root is None:
        raise ValueError(
            f"{caller}: near-duplicate grouping needs image hashes: pass hashes=, or root= (the "
            "manifest folder image_path is relative to), or set SplitConfig.near_duplicates=False"
        )
    paths = image_files(df["image_path"], root)
    # Each file once: catalogue photos are often shared by many rows, and decoding dominates.
    unique = list(dict.fromkeys(p for p in paths if p is not None))
    workers = min(8, os.cpu_count() or 1)
    by_path = dict(zip(unique, image_hashes(unique, workers=workers, kind=kind), strict=True))
    unreadable = [str(p) for p, h in by_path.items() if h is None]
    if unreadable:
        logger.warning(
            "%s: %d of %d images are missing or could not be decoded (e.g. %s); those rows get "
            "no hash and are grouped by seller only",
            caller,
            len(unreadable),
            len(by_path),
            unreadable[:_EXAMPLES_SHOWN],
        )
    return [None if p is None else by_path[p] for p in paths]


# --- strategies -----------------------------------------------------------------------------


def _strata(df: pd.DataFrame) -> np.ndarray:
    """Stratum code per row: the label (a missing label is a stratum of its own)."""
    if "label" not in df.columns:
        return np.zeros(len(df), dtype=np.int64)
    codes, _ = pd.factorize(df["label"], use_na_sentinel=False)
    return codes.astype(np.int64)


def _stratified_group_split(
    groups: np.ndarray, strata: np.ndarray, config: SplitConfig
) -> np.ndarray:
    """Split code per row, placing whole groups so each split's label mix matches its target.

    Greedy: groups go largest first (ties in random order, which is what the seed changes),
    each to the split where it most reduces the squared gap between achieved and wanted row
    counts per label. Big groups are placed while there is room; the many small ones then
    even out both the sizes and the infringing share.
    """
    n_groups = int(groups.max()) + 1
    if n_groups < len(SPLITS):
        raise ValueError(
            f"group split: need at least {len(SPLITS)} leakage groups (sellers joined with "
            f"near-duplicate images) to fill {', '.join(SPLITS)}, found {n_groups} in "
            f"{len(groups)} rows. Add listings from more sellers, turn photo grouping off "
            "(data.split.near_duplicates=false, SplitConfig.near_duplicates=False), or use "
            "strategy='time'."
        )
    n_strata = int(strata.max()) + 1
    counts = np.zeros((n_groups, n_strata), dtype=np.int64)
    np.add.at(counts, (groups, strata), 1)
    wanted = np.outer(config.fractions, counts.sum(axis=0))

    rng = np.random.default_rng(config.seed)
    shuffled = rng.permutation(n_groups)
    order = shuffled[np.argsort(-counts.sum(axis=1)[shuffled], kind="stable")]

    # Plain Python floats: with 2-3 labels and up to ~1e5 groups, per-call numpy overhead
    # would dominate the loop.
    gap = (-wanted).tolist()  # achieved - wanted, per split and label
    group_counts = counts.tolist()
    split_of_group = np.empty(n_groups, dtype=np.int64)
    for g in order.tolist():
        x = group_counts[g]
        best, best_cost = 0, float("inf")
        for s, gap_s in enumerate(gap):
            cost = sum(xc * (2 * gc + xc) for xc, gc in zip(x, gap_s, strict=True) if xc)
            if cost < best_cost:
                best, best_cost = s, cost
        split_of_group[g] = best
        gap[best] = [gc + xc for gc, xc in zip(gap[best], x, strict=True)]
    return split_of_group[groups]


def _random_split(strata: np.ndarray, config: SplitConfig) -> np.ndarray:
    """Split code per row, shuffled within each label so the label mix matches."""
    rng = np.random.default_rng(config.seed)
    codes = np.zeros(len(strata), dtype=np.int64)
    for stratum in range(int(strata.max()) + 1):
        rows = rng.permutation(np.flatnonzero(strata == stratum))
        n_test = round(len(rows) * config.test_fraction)
        n_val = round(len(rows) * config.val_fraction)
        codes[rows[:n_test]] = 2
        codes[rows[n_test : n_test + n_val]] = 1
    return codes


def _time_split(times: np.ndarray, config: SplitConfig) -> np.ndarray:
    """Split code per row by time alone: the latest listings are test, the ones before val.

    Ties in time keep row order (a stable sort), so the split is deterministic.
    """
    n = len(times)
    n_test = max(1, round(n * config.test_fraction))
    n_val = max(1, round(n * config.val_fraction))
    if n_test + n_val >= n:
        raise ValueError(
            f"time split: {n} rows are too few for val_fraction={config.val_fraction} and "
            f"test_fraction={config.test_fraction} to leave any rows for train"
        )
    order = np.argsort(times, kind="stable")
    codes = np.zeros(n, dtype=np.int64)
    codes[order[n - n_test :]] = 2
    codes[order[n - n_test - n_val : n - n_test]] = 1
    return codes


def _move_groups_to_latest_split(codes: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """``time_groups="latest"``: each group that straddles a cut moves to its latest split.

    Moving it earlier would put future listings into training. Where sellers stay active for
    the whole period this empties train (measured on a 200k-row marketplace: 5k/22k/173k);
    ``group_column=None`` then groups by images only.
    """
    latest = np.zeros(int(groups.max()) + 1, dtype=np.int64)
    np.maximum.at(latest, groups, codes)
    moved = latest[groups] != codes
    if moved.any():
        logger.warning(
            "time split: moved %d rows in %d seller/duplicate-image groups to a later split so "
            "no group straddles splits; sizes by time alone were %s, now %s",
            int(moved.sum()),
            len(np.unique(groups[moved])),
            _sizes(codes),
            _sizes(latest[groups]),
        )
    return latest[groups]


def _log_returning_sellers(df: pd.DataFrame, codes: np.ndarray, config: SplitConfig) -> None:
    """Say how many sellers a time-only split lets cross, so nobody mistakes it for leak-free."""
    column = config.group_column
    if column is None or column not in df.columns:
        return
    sellers, _ = pd.factorize(df[column])  # missing seller -> -1
    known = sellers >= 0
    if not known.any():
        return
    per_seller = np.zeros((int(sellers.max()) + 1, len(SPLITS)), dtype=bool)
    per_seller[sellers[known], codes[known]] = True
    crossing = int((per_seller.sum(axis=1) > 1).sum())
    test = known & (codes == 2)
    returning = int(per_seller[sellers[test], 0].sum())
    logger.info(
        "time split by %s only: %d of %d sellers have listings in more than one split, and "
        "%d of %d test listings come from sellers also in train (returning sellers, as in "
        "production); SplitConfig.time_groups='latest' keeps sellers whole instead",
        config.time_column,
        crossing,
        len(per_seller),
        returning,
        int((codes == 2).sum()),
    )


def _parse_times(df: pd.DataFrame, column: str) -> np.ndarray:
    """Timestamps of ``column`` as int64 nanoseconds (UTC), or an error naming bad rows."""
    if column not in df.columns:
        raise ValueError(
            f"time split: column {column!r} (SplitConfig.time_column) is absent; "
            f"found columns {list(df.columns)}"
        )
    raw = df[column]
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        raise ValueError(
            f"time split: column {column!r}: expected ISO-8601 timestamps or datetimes, "
            f"found numbers (dtype {raw.dtype})"
        )
    if isinstance(raw.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(raw):
        parsed = raw
    else:
        parsed = pd.to_datetime(raw, errors="coerce", utc=True, format="ISO8601")
    bad = parsed.isna().to_numpy()
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"time split: column {column!r}: expected ISO-8601 timestamps, found {int(bad.sum())} "
            f"missing or unparsable values, first at row {df.index[first]!r}: "
            f"{raw.iloc[first]!r}"
        )
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed.to_numpy(dtype="datetime64[ns]").view(np.int64)


# --- checks ---------------------------------------------------------------------------------


def _require_every_split(codes: np.ndarray, strategy: str, n_rows: int) -> None:
    """Fail loudly rather than hand back a split with an empty val or test set."""
    empty = [s for i, s in enumerate(SPLITS) if not (codes == i).any()]
    if empty:
        raise ValueError(
            f"{strategy} split: {', '.join(empty)} got no rows out of {n_rows} "
            f"(sizes {_sizes(codes)}); there are too few rows or groups for these fractions"
        )


def _warn_if_far_from_fractions(codes: np.ndarray, groups: np.ndarray, config: SplitConfig) -> None:
    """Say so when keeping groups whole pushed a split far from its wanted share.

    It happens when one leakage group is huge (a stock photo shared by many sellers chains
    them all together) or, for a time split with ``time_groups="latest"``, when sellers are
    active across the whole period and so all move to test. The split is still leak-free,
    but its sizes are not what was asked.
    """
    n = len(codes)
    achieved = [float((codes == i).mean()) for i in range(len(SPLITS))]
    off = [
        s
        for s, got, wanted in zip(SPLITS, achieved, config.fractions, strict=True)
        if abs(got - wanted) > max(0.02, 0.25 * wanted)
    ]
    if not off:
        return
    largest = int(np.bincount(groups).max())
    if config.strategy == "time":
        hint = (
            "sellers or photos active on both sides of a cut moved to the later split "
            "(SplitConfig.time_groups='latest'); the default time_groups='allow' keeps the "
            "time order, and group_column=None groups by images only"
        )
    else:
        hint = (
            "look for a photo or seller id shared across many listings, or lower "
            "SplitConfig.max_hash_distance"
        )
    logger.warning(
        "%s split: %s far from the wanted share (achieved %s, wanted %s) because leakage "
        "groups are kept whole; the largest group has %d of %d rows (%.0f%%): %s.",
        config.strategy,
        ", ".join(off),
        "/".join(f"{a:.3f}" for a in achieved),
        "/".join(f"{w:.3f}" for w in config.fractions),
        largest,
        n,
        100 * largest / n,
        hint,
    )


def _sizes(codes: np.ndarray) -> dict[str, int]:
    return {s: int((codes == i).sum()) for i, s in enumerate(SPLITS)}


def _aligned_splits(df: pd.DataFrame, splits: pd.Series) -> pd.Series:
    """``splits`` reordered to ``df``'s index, with an error for rows or values that don't fit."""
    if not splits.index.equals(df.index):
        if splits.index.has_duplicates or not splits.index.isin(df.index).all():
            raise ValueError(
                "leakage_report: splits must be indexed like the manifest (one value per row)"
            )
        splits = splits.reindex(df.index)
    missing = splits.isna().to_numpy()
    unknown = ~splits.isin(SPLITS).to_numpy()
    if unknown.any():
        first = int(np.flatnonzero(unknown)[0])
        found = "no split" if missing[first] else repr(splits.iloc[first])
        raise ValueError(
            f"leakage_report: expected a split in {SPLITS} for every row, found {found} at row "
            f"{df.index[first]!r} ({int(unknown.sum())} such rows)"
        )
    return splits
