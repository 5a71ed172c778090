"""Training on the base manifest plus a labelled feedback manifest, without moving the base.

Retraining must be comparable with the model it may replace, so the base manifest is split
exactly as it would be alone (same rows, same seed, same validation and test listings), and
the feedback rows (``ipguard-feedback``'s output) are added around it:

* a feedback listing already in the base keeps the base's row (the curated label and its
  split); the feedback row is counted (``feedback_in_base``) and logged, not trained on twice;
* a feedback listing whose seller (the split's ``group_column``) has listings in the base goes
  to that seller's split, so the group split stays leakage-safe;
* every other feedback listing goes to ``train``: the base's validation split (where the
  policy is fitted) and test split (the reported figures) stay the base's.

Each row keeps ``label_source``: ``training`` for base rows, ``review`` / ``appeal`` for
feedback rows. Feedback image paths are made absolute against their own manifest's folder, so
both manifests' photos load from one frame.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ipguard.data.feedback_join import LABEL_SOURCE
from ipguard.data.io import image_file

__all__ = ["FeedbackMerge", "merge_feedback"]

log = logging.getLogger(__name__)
TRAINING_SOURCE = "training"


@dataclass
class FeedbackMerge:
    """The base and feedback rows as one frame, each row's split, and what was counted."""

    frame: pd.DataFrame
    splits: pd.Series
    counts: dict[str, int] = field(default_factory=dict)


def merge_feedback(
    base: pd.DataFrame,
    base_splits: pd.Series,
    feedback: pd.DataFrame,
    feedback_root: str | Path,
    *,
    group_column: str | None = "seller_id",
) -> FeedbackMerge:
    """``base`` (valid rows) with its ``base_splits``, plus the valid ``feedback`` rows; see
    the module docstring for the rules."""
    base = base.copy()
    if LABEL_SOURCE not in base:
        base[LABEL_SOURCE] = TRAINING_SOURCE
    base[LABEL_SOURCE] = base[LABEL_SOURCE].fillna(TRAINING_SOURCE)
    feedback = feedback.copy()
    if LABEL_SOURCE not in feedback:
        feedback[LABEL_SOURCE] = "feedback"
    in_base = feedback["listing_id"].isin(set(base["listing_id"]))
    if in_base.any():
        log.warning(
            "data.feedback: %d listings are in the base manifest too, e.g. %s; the base rows "
            "are kept, the feedback rows not trained on twice",
            int(in_base.sum()),
            list(feedback.loc[in_base, "listing_id"].head(5)),
        )
    feedback = feedback[~in_base].reset_index(drop=True)
    paths = feedback.get("image_path")
    if paths is not None:
        feedback["image_path"] = [
            None if pd.isna(p) else str(image_file(feedback_root, str(p))) for p in paths
        ]
    splits = pd.Series("train", index=feedback.index, dtype=object)
    by_group = 0
    if group_column and group_column in base and group_column in feedback:
        seller_split = pd.Series(base_splits.to_numpy(), index=base[group_column].to_numpy())
        seller_split = seller_split[seller_split.index.notna()]
        seller_split = seller_split[~seller_split.index.duplicated()]
        known = feedback[group_column].isin(seller_split.index)
        splits[known] = seller_split[feedback.loc[known, group_column]].to_numpy()
        by_group = int(known.sum())
    frame = pd.concat([base, feedback], ignore_index=True)
    all_splits = pd.Series(
        np.concatenate([base_splits.to_numpy(dtype=object), splits.to_numpy(dtype=object)]),
        index=frame.index,
        name="split",
    )
    counts = {
        "feedback_rows": int(len(feedback) + in_base.sum()),
        "feedback_in_base": int(in_base.sum()),
        "feedback_added": len(feedback),
        "feedback_by_seller_split": by_group,
        **{f"feedback_{s}": int((splits == s).sum()) for s in ("train", "val", "test")},
        **{
            f"label_source_{k}": int(v)
            for k, v in frame[LABEL_SOURCE].value_counts().sort_index().items()
        },
    }
    return FeedbackMerge(frame, all_splits, counts)
