"""``promote(cfg)``: the job that moves ``champion``, and the only thing that ever does.

Screening services load ``models:/<name>@champion``; a new model reaches them only after it
proved, on a frozen evaluation set, that it is no worse than the model it replaces. Both
versions are scored through the served pyfunc (``mlflow.pyfunc.load_model``), exactly as a
service would run them, on the same listings; the gate
(:func:`ipguard.registry.promotion.gate`) compares their average precision and their recall at
their own reject thresholds (the share of infringing listings removed automatically). The
decision, its reason and both sets of metrics are written as tags on the challenger version,
promoted or not, so the registry says why each version is or is not serving.

The evaluation set is a labelled manifest (``manifest=PATH``), frozen by the team: its
fingerprint is recorded with the decision. ``demo_holdout=true`` uses a demo set generated with a
seed that no training default uses, for trying the gate on the demo data.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from ipguard.evaluation.metrics import headline_metrics
from ipguard.evaluation.policy import Policy
from ipguard.jobs.listings import Listings, load_listings
from ipguard.jobs.run import announce, job_tracking
from ipguard.jobs.scoring import score_listings
from ipguard.models.loading import load_model
from ipguard.registry.promotion import COMPARED, SHORT, GateRule, gate

PROMOTED = "promoted"
REFUSED = "refused"
UNCHANGED = "unchanged"


@dataclass
class PromotionResult:
    """The gate's decision; ``summary_line`` is the one line scripts parse."""

    name: str
    decision: str
    """``promoted``, ``refused`` or ``unchanged`` (the challenger already is the champion)."""
    reason: str
    challenger_version: str
    champion_version: str | None
    """The champion before the decision (None: there was none)."""
    challenger_metrics: dict[str, float] = field(default_factory=dict)
    champion_metrics: dict[str, float] = field(default_factory=dict)
    manifest: Path | None = None
    fingerprint: str = ""
    rows: dict[str, int] = field(default_factory=dict)
    tracking_uri: str = ""

    @property
    def promoted(self) -> bool:
        return self.decision == PROMOTED

    def summary_line(self) -> str:
        ap = self.challenger_metrics.get("average_precision", math.nan)
        champion_ap = self.champion_metrics.get("average_precision", math.nan)
        return (
            f"ipguard: {self.decision} {self.name} v{self.challenger_version} "
            f"(champion was {'v' + self.champion_version if self.champion_version else 'none'}) "
            f"challenger_ap={ap:.4f} champion_ap={champion_ap:.4f} reason={self.reason!r} "
            f"tracking_uri={self.tracking_uri}"
        )


def promote(cfg: DictConfig) -> PromotionResult:
    """Evaluate challenger and champion on the frozen set; move ``champion`` if the gate passes."""
    rule = GateRule(**OmegaConf.to_container(cfg.rule, resolve=True))  # type: ignore[arg-type]
    tracking_uri = job_tracking(cfg).uri
    client = MlflowClient(tracking_uri)
    name = str(cfg.name)
    challenger = _version_of(client, name, str(cfg.challenger_alias))
    if challenger is None:
        raise ValueError(
            f"models:/{name}@{cfg.challenger_alias} does not exist in {tracking_uri}; register "
            "a model first (ipguard-train or ipguard-export set that alias)"
        )
    champion = _version_of(client, name, str(cfg.champion_alias))
    result = PromotionResult(name, UNCHANGED, "", challenger, champion, tracking_uri=tracking_uri)
    if champion == challenger:
        result.reason = f"v{challenger} already is @{cfg.champion_alias}"
        announce(result)
        return result

    with tempfile.TemporaryDirectory(prefix="ipguard-promote-") as scratch:
        listings = _evaluation_set(cfg, Path(scratch))
        outputs = {"challenger": _score(name, challenger, listings, Path(scratch), cfg)}
        if champion is not None:
            outputs["champion"] = _score(name, champion, listings, Path(scratch), cfg)
    metrics, rows = _compare(outputs, listings.frame["label"].to_numpy())
    promote_it, reason = gate(metrics["challenger"], metrics.get("champion"), rule)
    result.decision = PROMOTED if promote_it else REFUSED
    result.reason = reason
    result.challenger_metrics = metrics["challenger"]
    result.champion_metrics = metrics.get("champion", {})
    rows["rejected"] = int(listings.rows.get("rejected", 0))  # invalid rows (quarantine)
    result.manifest, result.fingerprint, result.rows = listings.manifest, listings.fingerprint, rows
    if promote_it:
        client.set_registered_model_alias(name, str(cfg.champion_alias), challenger)
    _tag(client, result, rule)
    announce(result)
    return result


def _version_of(client: Any, name: str, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def _evaluation_set(cfg: DictConfig, scratch: Path) -> Listings:
    """The frozen labelled listings: ``manifest``, or the demo hold-out when asked for."""
    if not cfg.get("manifest") and not cfg.get("demo_holdout"):
        raise ValueError(
            "ipguard-promote: expected manifest=<frozen labelled evaluation listings>, or "
            "demo_holdout=true to use the demo hold-out set; found neither"
        )
    # with demo_holdout=true the config's manifest is the demo hold-out (configs/promote.yaml)
    return load_listings(cfg, scratch, None, scratch)


def _score(
    name: str, version: str, listings: Listings, scratch: Path, cfg: DictConfig
) -> tuple[Any, Policy | None]:
    """One version's output on every listing, through the served pyfunc.

    Loaded by version number, not alias, so the version judged is the version promoted even if
    someone moves an alias meanwhile.
    """
    model = load_model(f"models:/{name}/{version}", scratch / f"v{version}")
    scored = score_listings(model.scorer, listings.frame, listings.root, int(cfg.batch_size))
    return scored, model.policy


def _compare(
    outputs: dict[str, Any], labels: np.ndarray
) -> tuple[dict[str, dict[str, float]], dict[str, int]]:
    """Each model's metrics on the listings every model could score, and the row counts.

    A listing one model could not score (unreadable image...) goes to review in production;
    ranking metrics cannot include it, and comparing on different rows would be unfair, so
    both are judged on the rows both scored, and the unscored counts are recorded beside.
    """
    scores = {role: out["score"].to_numpy(dtype=np.float64) for role, (out, _) in outputs.items()}
    both = np.logical_and.reduce([np.isfinite(s) for s in scores.values()])
    rows = {"evaluated": int(both.sum()), "total": len(labels)}
    rows.update({f"unscored_{role}": int((~np.isfinite(s)).sum()) for role, s in scores.items()})
    if not both.any():
        raise ValueError("no evaluation listing was scored by every model; see their flags")
    metrics = {}
    for role, (_, policy) in outputs.items():
        headline = headline_metrics(scores[role][both], labels[both], policy)
        metrics[role] = {k: float(headline[k]) for k in COMPARED}
    return metrics, rows


def _tag(client: Any, result: PromotionResult, rule: GateRule) -> None:
    """The decision, its reason and both models' figures, on the challenger version."""
    tags = {
        "promotion_decision": result.decision,
        "promotion_reason": result.reason,
        "promotion_champion_version": result.champion_version or "none",
        "promotion_rule": rule.describe(),
        "promotion_manifest": str(result.manifest),
        "promotion_data_fingerprint": result.fingerprint,
        "promotion_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **{f"promotion_rows_{k}": str(v) for k, v in result.rows.items()},
    }
    for role, metrics in (
        ("challenger", result.challenger_metrics),
        ("champion", result.champion_metrics),
    ):
        for key, value in metrics.items():
            tags[f"{role}_{SHORT.get(key, key)}"] = f"{value:.4f}"
    for key, value in tags.items():
        client.set_model_version_tag(result.name, result.challenger_version, key, value)
