"""Reviewers' and appeals' decisions joined with the scored traffic into a labelled manifest.

A decision is only a training label once it is attached to the listing the model saw (its
request columns, as ``ipguard-score`` or a service wrote them next to the model's output) and
once every other decision about the same listing has been weighed. The rules, in order:

1. **Joinable.** A decision about a listing the scored traffic does not hold cannot become a
   label (there is no title, photo or price to train on): quarantined, with its reason. So is
   a decision about a listing of the frozen evaluation set (``holdout``): training on it would
   leak into the set the promotion gate judges by.
2. **An appeal beats a review.** An upheld or overturned appeal is a second, closer look at
   the same listing; where a listing has one, its reviews are superseded.
3. **The latest decision of that kind wins** (by ``decided_at``). Two decisions of the kind at
   the same latest instant that disagree are a conflict nobody resolved: every decision about
   that listing is quarantined and the listing gets no label. Agreeing duplicates count once.
4. **The training data wins over feedback.** A listing already in the base training manifest
   keeps its curated row and label (its frozen split must not change); its decisions are
   counted (``in_training``) and, where their label differs, counted again as disagreements,
   for the team to look at, not silently relabelled.

Every valid decision ends with one fate: ``used`` (the winner, one per labelled listing),
``superseded``, ``in_training`` or ``quarantined``, so ``decisions = used + superseded +
in_training + quarantined``. Quarantined rows keep their values and a ``reject_reason``.

The join also measures the model: the **appeal-overturn rate** (overturned appeals / resolved
appeals) per lane (the decision the model gave), market and model version.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ipguard.data.columns import REJECT_REASON, REQUEST_COLUMNS, SOURCE_FILE, SOURCE_ROW
from ipguard.data.errors import ManifestError, Problem, file_problem
from ipguard.data.feedback import KIND, LABEL
from ipguard.data.schema import validate_manifest

__all__ = [
    "FATES",
    "LABEL_SOURCES",
    "TRAFFIC_COLUMNS",
    "FeedbackJoin",
    "join_feedback",
    "overturn_rates",
    "rebase_image_paths",
]

LABEL_SOURCE = "label_source"
LABEL_SOURCES: tuple[str, ...] = ("review", "appeal", "training")
"""Where a manifest row's label came from; ``training``: the base training manifest."""
FATES: tuple[str, ...] = ("used", "superseded", "in_training", "quarantined")
FATE = "fate"
TRAFFIC_COLUMNS: tuple[str, ...] = ("listing_id", "decision", "model_version")
"""What the scored traffic must hold besides the request columns (at least ``title``)."""
OVERTURN_GROUPS: tuple[str, ...] = ("lane", "market", "model_version")
# what the joined manifest carries from the model's output, beside the contract's columns
MODEL_COLUMNS = {"decision": "model_decision", "score": "model_score"}


@dataclass
class FeedbackJoin:
    """The labelled manifest, every decision's fate, the quarantine and the overturn rates."""

    manifest: pd.DataFrame
    """One row per newly labelled listing: its request columns from the traffic, ``label``,
    ``label_source``, ``labelled_at``, ``model_version``, ``model_decision``, ``model_score``."""
    decisions: pd.DataFrame
    """Every valid decision with its ``fate`` (and ``reject_reason`` where quarantined)."""
    quarantine: pd.DataFrame
    """The quarantined decisions, with ``reject_reason``."""
    overturn: pd.DataFrame
    """``group``, ``value``, ``appeals``, ``overturned``, ``overturn_rate``."""
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        fates = sum(self.counts.get(f, 0) for f in FATES)
        if fates != len(self.decisions):
            raise ValueError(f"decision accounting broken: {fates} fates for {len(self.decisions)}")


def _where(row: pd.Series) -> str:
    return f"{row[SOURCE_FILE]} row {row[SOURCE_ROW]}"


def _latest_traffic(traffic: pd.DataFrame, source: str) -> tuple[pd.DataFrame, int]:
    """One row per scored listing: a listing scored twice (a rescan) keeps its last score."""
    missing = [c for c in (*TRAFFIC_COLUMNS, "title") if c not in traffic]
    if missing:
        raise ManifestError(
            file_problem(
                source,
                f"missing columns {missing}; expected the scored traffic as ipguard-score or a "
                "service writes it: the model's output (listing_id, score, decision, "
                "model_version) and the request columns (title, market, image_path ...; "
                "ipguard-score keep=[title,market,...])",
            )
        )
    ids = traffic["listing_id"].astype("str")
    keep = ~ids.duplicated(keep="last") & traffic["listing_id"].notna()
    latest = traffic.loc[keep].assign(listing_id=ids[keep]).reset_index(drop=True)
    return latest, int((~keep).sum())


def _resolve(decisions: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Rules 2 and 3: each decision's fate (``used`` / ``superseded`` / conflict) and reason."""
    rank = decisions[KIND].eq("appeal").astype(int)
    top = rank.groupby(decisions["listing_id"]).transform("max")
    of_kind = rank.eq(top)
    stamp = decisions["decided_at"].where(of_kind)
    latest = stamp.groupby(decisions["listing_id"]).transform("max")
    candidate = of_kind & decisions["decided_at"].eq(latest)
    labels = decisions[LABEL].where(candidate)
    conflicted = labels.groupby(decisions["listing_id"]).transform("nunique").gt(1)
    first = candidate & ~decisions.loc[candidate, "listing_id"].duplicated().reindex(
        decisions.index, fill_value=True
    )
    fate = pd.Series(np.where(first, "used", "superseded"), index=decisions.index, dtype=object)
    reason = pd.Series(None, index=decisions.index, dtype=object)
    for listing, group in decisions[conflicted].groupby("listing_id", sort=False):
        clash = group[candidate[group.index]]
        said = ", ".join(f"{_where(r)}: {r[LABEL]}" for _, r in clash.iterrows())
        text = (
            f"conflicting {clash[KIND].iloc[0]} decisions about listing {listing!r} at "
            f"{clash['decided_at'].iloc[0].isoformat()} ({said}); the listing is not labelled"
        )
        fate[group.index] = "quarantined"
        reason[group.index] = text
    return fate, reason, candidate


def overturn_rates(resolved: pd.DataFrame) -> pd.DataFrame:
    """Overturned / resolved appeals per lane, market and model version.

    ``resolved`` has one row per listing whose winning decision is an appeal, with
    ``appeal_outcome`` and the traffic's ``lane``, ``market`` and ``model_version``; a listing
    whose market is not known counts under ``unknown``.
    """
    parts = []
    overturned = resolved["appeal_outcome"].eq("overturned")
    for group in OVERTURN_GROUPS:
        values = (
            resolved[group].astype(object).where(resolved[group].notna(), "unknown")
            if group in resolved
            else pd.Series("unknown", index=resolved.index, dtype=object)
        )
        table = overturned.groupby(values.astype(str)).agg(["size", "sum"])
        for value, row in table.sort_index().iterrows():
            parts.append(
                {
                    "group": group,
                    "value": value,
                    "appeals": int(row["size"]),
                    "overturned": int(row["sum"]),
                    "overturn_rate": float(row["sum"]) / float(row["size"]),
                }
            )
    columns = ["group", "value", "appeals", "overturned", "overturn_rate"]
    return pd.DataFrame(parts, columns=columns)


def rebase_image_paths(
    paths: pd.Series, source_root: str | Path, target_root: str | Path, *, where: str
) -> pd.Series:
    """``image_path`` values relative to ``source_root`` rewritten relative to ``target_root``.

    A manifest's image paths may not leave its folder, so the labelled manifest must be written
    inside the folder the traffic's photos are in; a photo outside it is an error naming the
    row, never a listing that silently loses its photo.
    """
    source, target = Path(os.path.abspath(source_root)), Path(os.path.abspath(target_root))
    blank = paths.isna() | paths.astype(str).str.strip().eq("")
    out = paths.astype(object).where(~blank, None)
    problems = []
    for index, value in paths[~blank].items():
        full = Path(os.path.normpath(source / str(value)))
        try:
            out[index] = full.relative_to(target).as_posix()
        except ValueError:
            problems.append(
                Problem(
                    where, int(index) + 1, "image_path", str(value),
                    f"image {str(full)!r} lies outside {str(target)!r}, the labelled manifest's "
                    "folder; write the manifest inside the folder that holds the traffic's "
                    "photos (manifest image paths may not leave their folder)",
                )
            )  # fmt: skip
    if problems:
        raise ManifestError(problems)
    return out


def join_feedback(
    decisions: pd.DataFrame,
    traffic: pd.DataFrame,
    *,
    root: str | Path,
    traffic_source: str = "traffic",
    base: pd.DataFrame | None = None,
    holdout: Collection[str] = (),
) -> FeedbackJoin:
    """Rules 1-4 of the module docstring on valid decisions (:attr:`Feedback.valid`).

    ``traffic`` is the scored traffic with its request columns, its ``image_path`` values
    already relative to ``root`` (:func:`rebase_image_paths`), the folder the labelled
    manifest is written to; ``base`` the base training manifest's valid rows (``listing_id``,
    ``label``); ``holdout`` the frozen evaluation set's listing ids. Each joined row is checked
    against the manifest contract (a scored listing may hold values a manifest may not, such
    as a market code the service flagged); one that fails is quarantined with its reason.
    """
    decisions = decisions.reset_index(drop=True).copy()
    scored, rescored = _latest_traffic(traffic, traffic_source)
    known = decisions["listing_id"].isin(set(scored["listing_id"]))
    held = decisions["listing_id"].isin(set(map(str, holdout)))
    fate = pd.Series("quarantined", index=decisions.index, dtype=object)
    reason = pd.Series(None, index=decisions.index, dtype=object)
    reason[~known] = [
        f"listing_id {x!r} is not in the scored traffic ({traffic_source}); a label needs the "
        "listing the model saw"
        for x in decisions.loc[~known, "listing_id"]
    ]
    reason[known & held] = (
        "listing is in the frozen evaluation set (holdout); a label from feedback would leak "
        "into the set the promotion gate judges by"
    )
    joinable = known & ~held
    if joinable.any():
        sub = decisions[joinable]
        sub_fate, sub_reason, _ = _resolve(sub)
        fate[sub.index], reason[sub.index] = sub_fate, sub_reason

    winner = fate.eq("used")
    disagree = 0
    if base is not None and len(base):
        base_label = pd.Series(base["label"].to_numpy(), index=base["listing_id"].astype(str))
        base_label = base_label[~base_label.index.duplicated()]
        in_base = decisions["listing_id"].isin(base_label.index) & fate.isin(["used", "superseded"])
        won = decisions[winner & in_base]
        disagree = int((won[LABEL].to_numpy() != base_label[won["listing_id"]].to_numpy()).sum())
        fate[in_base] = "in_training"

    manifest, invalid = _labelled_rows(decisions[fate.eq("used")], scored, root, traffic_source)
    invalid_rows = 0
    for index, text in invalid.items():
        same = decisions["listing_id"].eq(decisions.at[index, "listing_id"])
        fate[same], reason[same] = "quarantined", text
        invalid_rows += int(same.sum())

    counted = decisions[winner & fate.ne("quarantined") & decisions[KIND].eq("appeal")]
    lanes = scored.set_index("listing_id").reindex(counted["listing_id"])
    resolved = pd.DataFrame(
        {
            "appeal_outcome": counted["appeal_outcome"].to_numpy(),
            **{
                group: lanes[column].to_numpy() if column in lanes else None
                for group, column in (
                    ("lane", "decision"),
                    ("market", "market"),
                    ("model_version", "model_version"),
                )
            },
        }
    )
    decisions[FATE] = fate
    decisions[REJECT_REASON] = reason
    counts = {f: int(fate.eq(f).sum()) for f in FATES}
    counts.update(
        decisions=len(decisions),
        listings_labelled=len(manifest),
        labelled_review=int(manifest[LABEL_SOURCE].eq("review").sum()) if len(manifest) else 0,
        labelled_appeal=int(manifest[LABEL_SOURCE].eq("appeal").sum()) if len(manifest) else 0,
        listings_in_training=int(decisions.loc[fate.eq("in_training"), "listing_id"].nunique()),
        in_training_disagree=disagree,
        unknown_listing=int((~known).sum()),
        in_holdout=int((known & held).sum()),
        conflicting=int(reason.fillna("").str.startswith("conflicting").sum()),
        invalid_listing=invalid_rows,
        traffic_rows=len(traffic),
        traffic_rescored=rescored,
    )
    quarantine = decisions[fate.eq("quarantined")].drop(columns=[FATE]).reset_index(drop=True)
    return FeedbackJoin(manifest, decisions, quarantine, overturn_rates(resolved), counts)


def _labelled_rows(
    winners: pd.DataFrame, scored: pd.DataFrame, root: str | Path, source: str
) -> tuple[pd.DataFrame, Mapping[int, str]]:
    """Winning decisions joined with their listing's request columns, checked as a manifest.

    Returns the valid rows and, for each winner whose joined row breaks the contract, the
    reason keyed by the winner's index.
    """
    request = [c for c in REQUEST_COLUMNS if c in scored]
    model = {k: v for k, v in MODEL_COLUMNS.items() if k in scored}
    listing = scored[[*request, "model_version", *model]].rename(columns=model)
    listing = listing.set_index("listing_id")
    rows = listing.reindex(winners["listing_id"]).reset_index()
    rows["label"] = winners[LABEL].to_numpy()
    rows[LABEL_SOURCE] = winners[KIND].to_numpy()
    rows["labelled_at"] = winners["decided_at"].to_numpy()
    if rows.empty:
        return rows, {}
    checked = validate_manifest(
        rows.assign(**{SOURCE_FILE: source, SOURCE_ROW: np.arange(1, len(rows) + 1)}),
        root=root,
        on_error="quarantine",
        source=source,
    )
    bad: dict[int, str] = {}
    if checked.rows_rejected:
        by_id = dict(zip(winners["listing_id"], winners.index, strict=True))
        for _, row in checked.rejects.iterrows():
            bad[by_id[row["listing_id"]]] = (
                f"the scored listing {row['listing_id']!r} is not a valid manifest row: "
                f"{row[REJECT_REASON]}"
            )
    kept = rows[~rows["listing_id"].isin([winners.at[i, "listing_id"] for i in bad])]
    return kept.reset_index(drop=True), bad
