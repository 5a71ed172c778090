"""Write the reference profile into an exported listing model's folder.

The rows are scored through :class:`ipguard.serving.scorer.ListingScorer` on the finished
folder (calibrator and policy in place), the code the pyfunc runs, so the profile's scores,
lanes and flags are exactly what the served model will emit for those rows, and monitoring
compares like with like. Video models have no listing profile (their traffic is clips).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from ipguard.jobs.scoring import request_frame, score_listings
from ipguard.monitoring.profile import PROFILE_FILE, Profile, build_profile
from ipguard.serving.scorer import ListingScorer
from ipguard.serving.spec import ModelSpec

__all__ = ["drop_reference_profile", "write_reference_profile"]

log = logging.getLogger(__name__)


def write_reference_profile(
    model_dir: Path, frame: pd.DataFrame, root: Path, *, source: str, batch_size: int = 256
) -> Profile | None:
    """Score ``frame`` (validated manifest rows) with the model in ``model_dir`` and store the
    profile there; None (nothing written) for a video model."""
    spec = ModelSpec.load(model_dir)
    if spec.kind == "video":
        return None
    scored = score_listings(ListingScorer.load(model_dir).score, frame, root, batch_size)
    request = request_frame(frame, root)
    outputs = scored.drop(columns=[c for c in scored if c in request and c != "listing_id"])
    rows = pd.concat([request.drop(columns=["listing_id"]), outputs], axis=1)
    profile = build_profile(rows, policy=spec.policy, source=source)
    path = profile.save(model_dir)
    log.info("reference profile of %d rows written to %s", profile.rows, path)
    return profile


def drop_reference_profile(model_dir: Path, why: str) -> bool:
    """Remove a profile that no longer describes the model (its scores changed); True if one
    was there. Monitoring then says the model has none, instead of comparing with a stale one."""
    path = Path(model_dir) / PROFILE_FILE
    if not path.is_file():
        return False
    path.unlink()
    log.warning("%s: reference profile removed (%s)", model_dir, why)
    return True
