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

A frozen set ages with the traffic it was drawn from. ``recent=PATH`` adds a **recent labelled
window** (e.g. the last weeks of reviewers' and appeals' outcomes, as ``ipguard-feedback``
wrote them): both versions are then scored on it too, the same rule is applied to it on its
own, and the challenger is promoted only when it passes on both sets. The tags say which set
failed (``promotion_failed_on``) and carry both sets' figures (``recent_challenger_ap`` ...).
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf, open_dict

from ipguard.evaluation.metrics import headline_metrics
from ipguard.jobs.listings import Listings, load_listings
from ipguard.jobs.run import announce, job_tracking, refusals_explained
from ipguard.jobs.scoring import score_listings
from ipguard.models.loading import LoadedModel, load_model
from ipguard.registry.lookup import NotRegisteredError, registered_version
from ipguard.registry.promotion import COMPARED, SHORT, GateRule, gate

PROMOTED = "promoted"
REFUSED = "refused"
UNCHANGED = "unchanged"


@dataclass
class SetVerdict:
    """The rule applied to both versions' figures on one labelled set."""

    passed: bool
    reason: str
    challenger_metrics: dict[str, float]
    champion_metrics: dict[str, float]
    manifest: Path
    fingerprint: str
    rows: dict[str, int]


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
    recent: SetVerdict | None = None
    """The verdict on the recent labelled window (``recent=PATH``); None without one."""
    failed_on: list[str] = field(default_factory=list)
    """``frozen`` and/or ``recent``: the sets on which the challenger failed the rule."""

    @property
    def promoted(self) -> bool:
        return self.decision == PROMOTED

    def summary_line(self) -> str:
        ap = self.challenger_metrics.get("average_precision", math.nan)
        champion_ap = self.champion_metrics.get("average_precision", math.nan)
        recent = ""
        if self.recent is not None:
            recent_ap = self.recent.challenger_metrics.get("average_precision", math.nan)
            recent_champion = self.recent.champion_metrics.get("average_precision", math.nan)
            recent = (
                f"recent_challenger_ap={recent_ap:.4f} recent_champion_ap={recent_champion:.4f} "
            )
        return (
            f"ipguard: {self.decision} {self.name} v{self.challenger_version} "
            f"(champion was {'v' + self.champion_version if self.champion_version else 'none'}) "
            f"challenger_ap={ap:.4f} champion_ap={champion_ap:.4f} {recent}"
            f"reason={self.reason!r} tracking_uri={self.tracking_uri}"
        )


def promote(cfg: DictConfig) -> PromotionResult:
    """Evaluate challenger and champion on the frozen set (and the recent window, when
    ``recent`` is set); move ``champion`` only if the gate passes on each."""
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
    _record_start(client, tracking_uri, name, challenger)

    with tempfile.TemporaryDirectory(prefix="ipguard-promote-") as scratch:
        folder = Path(scratch)
        versions = {"challenger": challenger, "champion": champion}
        models = {
            role: load_model(f"models:/{name}/{v}", folder / f"v{v}")
            for role, v in versions.items()
            if v is not None
        }
        frozen = _judge(models, _evaluation_set(cfg, folder), rule, cfg)
        recent = None
        if cfg.get("recent"):
            recent = _judge(models, _recent_window(cfg, folder), rule, cfg)
    result.failed_on = [
        label for label, v in (("frozen", frozen), ("recent", recent)) if v and not v.passed
    ]
    promote_it = not result.failed_on
    result.decision = PROMOTED if promote_it else REFUSED
    result.reason = _reason(frozen, recent)
    result.challenger_metrics = frozen.challenger_metrics
    result.champion_metrics = frozen.champion_metrics
    result.manifest, result.fingerprint, result.rows = (
        frozen.manifest,
        frozen.fingerprint,
        frozen.rows,
    )
    result.recent = recent
    if promote_it:
        with refusals_explained(
            tracking_uri, f"move @{cfg.champion_alias} of {name} to v{challenger}"
        ):
            client.set_registered_model_alias(name, str(cfg.champion_alias), challenger)
    with refusals_explained(tracking_uri, f"tag {name} v{challenger} with the promotion decision"):
        _tag(client, result, rule)
    announce(result)
    return result


def _record_start(client: Any, tracking_uri: str, name: str, version: str) -> None:
    """Tag the challenger ``promotion_started_at`` before any scoring.

    Moving ``champion`` and tagging a version need the same permission on a tracking server
    with auth (EDIT on the registered model), so an account that may only read is refused here,
    in a second, instead of after the whole evaluation; and the registry shows when a
    promotion of this version was last attempted, even one that failed midway.
    """
    with refusals_explained(tracking_uri, f"start a promotion of {name} v{version}"):
        client.set_model_version_tag(
            name,
            version,
            "promotion_started_at",
            datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )


def _version_of(client: Any, name: str, alias: str) -> str | None:
    try:
        return str(registered_version(client, f"models:/{name}@{alias}").version)
    except NotRegisteredError:
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


def _recent_window(cfg: DictConfig, scratch: Path) -> Listings:
    """The recent labelled window, read with the frozen set's options, as a whole."""
    window = cfg.copy()
    with open_dict(window):
        window.manifest, window.split = str(cfg.recent), None
    listings = load_listings(window, scratch / "recent", None, scratch)
    return listings


def _judge(
    models: dict[str, LoadedModel], listings: Listings, rule: GateRule, cfg: DictConfig
) -> SetVerdict:
    """Both versions scored on one set through the served pyfunc, and the rule applied.

    The models are loaded by version number, not alias, so the version judged is the version
    promoted even if someone moves an alias meanwhile.
    """
    outputs = {
        role: (
            score_listings(model.scorer, listings.frame, listings.root, int(cfg.batch_size)),
            model.policy,
        )
        for role, model in models.items()
    }
    metrics, rows = _compare(outputs, listings.frame["label"].to_numpy())
    passed, reason = gate(metrics["challenger"], metrics.get("champion"), rule)
    rows["rejected"] = int(listings.rows.get("rejected", 0))  # invalid rows (quarantine)
    return SetVerdict(
        passed, reason, metrics["challenger"], metrics.get("champion", {}),
        listings.manifest, listings.fingerprint, rows,
    )  # fmt: skip


def _reason(frozen: SetVerdict, recent: SetVerdict | None) -> str:
    """The frozen set's reason as before; with a recent window, each set's, named."""
    if recent is None:
        return frozen.reason
    parts = []
    for label, verdict in (("frozen evaluation set", frozen), ("recent window", recent)):
        state = "passed" if verdict.passed else "failed"
        parts.append(f"{label} {verdict.manifest.name} {state}: {verdict.reason}")
    return "; ".join(parts)


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
        "promotion_failed_on": ",".join(result.failed_on) or "none",
    }
    if result.recent is not None:
        tags["promotion_recent_manifest"] = str(result.recent.manifest)
        tags["promotion_recent_data_fingerprint"] = result.recent.fingerprint
        tags["promotion_recent_reason"] = result.recent.reason
        tags.update({f"promotion_recent_rows_{k}": str(v) for k, v in result.recent.rows.items()})
        for role, metrics in (
            ("challenger", result.recent.challenger_metrics),
            ("champion", result.recent.champion_metrics),
        ):
            for key, value in metrics.items():
                tags[f"recent_{role}_{SHORT.get(key, key)}"] = f"{value:.4f}"
    for role, metrics in (
        ("challenger", result.challenger_metrics),
        ("champion", result.champion_metrics),
    ):
        for key, value in metrics.items():
            tags[f"{role}_{SHORT.get(key, key)}"] = f"{value:.4f}"
    for key, value in tags.items():
        client.set_model_version_tag(result.name, result.challenger_version, key, value)
