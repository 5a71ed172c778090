"""Scoring labelled listings with whatever serves a model, as a screening service would.

Scores are never re-implemented by the jobs: rows are sent as the model contract's request
frame, in batches, and the model's own output is taken back, checked to echo the listings in
order, and split into the scored rows and those it could not score.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ipguard.data.columns import REQUEST_COLUMNS
from ipguard.data.io import image_files
from ipguard.models.loading import Scorer
from ipguard.text.language import detect_languages

log = logging.getLogger(__name__)

# The model contract's request columns sent as text; price and listed_at are typed below.
_REQUEST_TEXT = tuple(c for c in REQUEST_COLUMNS if c not in ("price", "listed_at"))


def request_frame(frame: pd.DataFrame, root: Path) -> pd.DataFrame:
    """Validated rows as a screening service would send them (the model contract's inputs).

    Relative image paths are resolved against the manifest folder, because the model reads
    them from whatever directory it runs in; columns that are entirely missing are left out
    rather than sent as typed nulls.
    """
    out = pd.DataFrame(index=frame.index)
    for column in _REQUEST_TEXT:
        if column in frame and frame[column].notna().any():
            values = frame[column].astype(object)
            out[column] = values.where(frame[column].notna(), None)
    if "image_path" in out:
        out["image_path"] = [
            None if p is None else str(p) for p in image_files(out["image_path"], root)
        ]
    if "listed_at" in frame and frame["listed_at"].notna().any():
        stamps = frame["listed_at"].dt.strftime("%Y-%m-%dT%H:%M:%SZ").astype(object)
        out["listed_at"] = stamps.where(frame["listed_at"].notna(), None)
    if "price" in frame and frame["price"].notna().any():
        out["price"] = frame["price"].astype("float64")
    return out.reset_index(drop=True)


def score_listings(
    scorer: Scorer, frame: pd.DataFrame, root: Path, batch_size: int
) -> pd.DataFrame:
    """The model's output for every row, in order, ``batch_size`` listings per call."""
    if int(batch_size) < 1:
        raise ValueError(f"batch_size: expected an int >= 1, found {batch_size!r}")
    request = request_frame(frame, root)
    parts = []
    for start in range(0, len(request), int(batch_size)):
        batch = request.iloc[start : start + int(batch_size)].reset_index(drop=True)
        out = pd.DataFrame(scorer(batch))
        if len(out) != len(batch):
            raise ValueError(
                f"the model returned {len(out)} rows for a batch of {len(batch)} listings "
                f"(rows {start}-{start + len(batch) - 1}); expected one row per listing"
            )
        parts.append(out)
        log.info("scored %d / %d listings", start + len(batch), len(request))
    return pd.concat(parts, ignore_index=True)


def split_not_scored(
    frame: pd.DataFrame, scored: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows with a score, and those the model could not score (reported, never dropped quietly).

    The service sends an unscored listing to review; the ranking metrics cannot include it, so
    it is counted and listed with its flags in ``not_scored.csv`` instead.
    """
    keep = ["score", "decision", "image_score", "text_score", "flags", "model_version"]
    ids = frame["listing_id"].astype(str).to_numpy()
    if len(scored) != len(frame) or not (scored["listing_id"].astype(str).to_numpy() == ids).all():
        raise ValueError(
            "the model's output does not echo the listing ids in request order; expected "
            f"{len(frame)} rows starting {list(ids[:3])}, found {list(scored['listing_id'][:3])}"
        )
    merged = frame.drop(columns=[c for c in keep if c in frame]).assign(
        **{c: scored[c].to_numpy() for c in keep if c in scored}
    )
    merged["score"] = pd.to_numeric(merged["score"], errors="coerce").astype("float64")
    ok = np.isfinite(merged["score"].to_numpy())
    return merged[ok].reset_index(drop=True), merged[~ok].reset_index(drop=True)


def fill_languages(frame: pd.DataFrame) -> int:
    """Detect the language of listings that do not state one, so the language slice is whole;
    returns how many were detected."""
    if "language" not in frame:
        frame["language"] = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    missing = frame["language"].isna().to_numpy()
    if missing.any():
        titles = frame.loc[missing, "title"].astype(object).where(frame["title"].notna(), None)
        detected = detect_languages(titles.tolist())
        frame["language"] = frame["language"].astype(object)
        frame.loc[missing, "language"] = detected
    return int(missing.sum())
