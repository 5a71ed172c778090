"""What an evaluation's report folder holds beyond ``build_report``: the tables of scores,
the listings not scored, the flat metrics, the section saying what was evaluated and with
which caveats, right under the report's header, and, for models that read photos, a figure of
saliency overlays for reviewers.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ipguard.evaluation.calibration import reliability_table
from ipguard.evaluation.policy import check_scores_labels
from ipguard.evaluation.report import EvaluationReport
from ipguard.evaluation.saliency import plot_overlays
from ipguard.jobs.listings import Listings
from ipguard.jobs.scoring import request_frame
from ipguard.jobs.thresholds import OPTIMISTIC_NOTE
from ipguard.models.loading import LoadedModel
from ipguard.serving.explain import (
    EXPLAINED_KINDS,
    NoImageToExplain,
    explain_listing,
    explains_images,
)
from ipguard.serving.scorer import ListingScorer

log = logging.getLogger(__name__)


def model_label(model: LoadedModel) -> str:
    """Short name for titles: ``ipguard-image v3``, or ``ipguard-image (checkpoint)``."""
    name = model.spec.registered_model
    return f"{name} v{model.version}" if model.version else f"{name} ({model.source})"


def flat_metrics(report: EvaluationReport) -> dict[str, float]:
    """Headline figures as one flat dict; bootstrapped ones with ``_ci_low``/``_ci_high``."""
    out: dict[str, float] = {}
    for row in report.metrics.itertuples(index=False):
        out[str(row.metric)] = float(row.value)
        out[f"{row.metric}_ci_low"] = float(row.ci_low)
        out[f"{row.metric}_ci_high"] = float(row.ci_high)
    for name, value in report.headline.items():
        out.setdefault(name, float(value))
    return out


def write_tables(report_dir: Path, evaluated: pd.DataFrame) -> None:
    """``scores.csv`` (the lanes the report counts) and ``reliability.csv``."""
    columns = ["listing_id", "label", "score", "decision", "image_score", "text_score", "flags"]
    evaluated[[c for c in columns if c in evaluated]].to_csv(report_dir / "scores.csv", index=False)
    reliability_table(evaluated["score"].to_numpy(), evaluated["label"].to_numpy()).to_csv(
        report_dir / "reliability.csv", index=False
    )


def write_not_scored(report_dir: Path, not_scored: pd.DataFrame) -> None:
    if len(not_scored):
        keep = [c for c in ("listing_id", "label", "image_path", "flags") if c in not_scored]
        not_scored[keep].to_csv(report_dir / "not_scored.csv", index=False)


def _describe_calibrator(stored: dict[str, Any]) -> str:
    method = str(stored.get("method", "none"))
    if method == "temperature":
        return f"temperature scaling, T = {float(stored['temperature']):.4g}"
    if method == "isotonic":
        return f"isotonic, {len(stored.get('x', []))} breakpoints"
    return method


def insert_details(
    markdown: Path,
    model: LoadedModel,
    listings: Listings,
    policy_source: str,
    rows: dict[str, int],
    languages_detected: int,
) -> None:
    """Put what was evaluated, and every caveat, right under the report's header."""
    spec = model.spec
    calibrator = _describe_calibrator(spec.calibrator)
    if model.source == "checkpoint":
        calibrator += " (checkpoint: raw sigmoid scores, so ECE is the uncalibrated one)"
    path = {
        "registry": "mlflow.pyfunc.load_model(...).predict (the served model)",
        "run": "mlflow.pyfunc.load_model(...).predict (the served model)",
        "folder": "ListingScorer on the exported folder",
        "checkpoint": "checkpoint re-exported to a temporary folder, scored by ListingScorer",
    }[model.source]
    accounting = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in rows.items())
    lines = [
        "## What was evaluated",
        "",
        f"- Model kind `{spec.kind}`, registered name `{spec.registered_model}`, version "
        f"{model.version or 'n/a'}; source: {model.source}",
        f"- Scored by: {path}",
        f"- Calibrator: {calibrator}",
        f"- Policy: {policy_source.replace('_', ' ')}",
        f"- Manifest: `{listings.manifest}`",
        *([f"- {listings.origin}"] if listings.origin else []),  # why, when the user named none
        f"- Data fingerprint: `{listings.fingerprint}`",
        f"- Rows: {accounting}",
    ]
    if listings.split_source:
        lines.append(f"- Split: {listings.split_source}")
    if languages_detected:
        lines.append(
            f"- Language detected for {languages_detected} listing(s) that did not state one"
        )
    warnings = []
    if (
        model.training_fingerprint
        and model.training_fingerprint == listings.fingerprint
        and not listings.split_source
    ):
        warnings.append(
            "This manifest is the model's own training data (same fingerprint), train and "
            "validation rows included: every figure is optimistic. Evaluate with split=test."
        )
        log.warning("%s", warnings[-1])
    if policy_source == "fitted_on_evaluated_data":
        warnings.append("The policy was " + OPTIMISTIC_NOTE + ".")
    if rows.get("not_scored"):
        warnings.append(
            f"{rows['not_scored']} listing(s) could not be scored (see not_scored.csv) and are "
            "not in the figures; the screening service sends them to review."
        )
    if rows.get("rejected"):
        warnings.append(f"{rows['rejected']} invalid row(s) set aside, see rejects.csv.")
    lines += [""] + [f"> **Caveat:** {w}" for w in warnings] if warnings else []
    section = "\n".join(lines)
    text = markdown.read_text(encoding="utf-8")
    anchor = "\n\n## Policy"
    text = (
        text.replace(anchor, f"\n\n{section}{anchor}", 1)
        if anchor in text
        else f"{text.rstrip()}\n\n{section}\n"
    )
    markdown.write_text(text, encoding="utf-8")


# --- saliency overlays ------------------------------------------------------------------------

SALIENCY_PLOT = "saliency.png"
#: the highest-scoring infringing listings and the highest-scoring genuine ones explained
SALIENCY_INFRINGING, SALIENCY_GENUINE = 6, 2
#: integrated-gradients steps: a few forward + backward passes per listing bound the cost
SALIENCY_STEPS = 16


def saliency_scorer(model: LoadedModel) -> ListingScorer | None:
    """The in-process scorer the saliency figure explains; None for a model without photos.

    Call it while the model's folder exists: a downloaded model's folder lives only as long as
    the evaluation's scratch space, and a model scored through the pyfunc has no in-process
    scorer yet.
    """
    if model.spec.kind not in EXPLAINED_KINDS:
        return None
    scorer = model.listing_scorer or ListingScorer.load(model.folder)
    return scorer if explains_images(scorer) else None


def write_saliency(
    report: EvaluationReport, scorer: ListingScorer | None, evaluated: pd.DataFrame, root: Path
) -> Path | None:
    """``saliency.png``: where the photo drove the score, for the highest-scoring infringing
    listings and the highest-scoring genuine ones (the false positives a reviewer meets
    first), linked from ``report.md`` under the plots. Listings without a usable photo are
    passed over and named in the report with their reason."""
    if scorer is None or evaluated.empty:
        return None
    scores, labels = check_scores_labels(
        evaluated["score"].to_numpy(), evaluated["label"].to_numpy(), where="saliency"
    )
    order = np.argsort(-scores, kind="stable")
    panels, passed_over, explained = [], [], ""
    for label, quota in ((1, SALIENCY_INFRINGING), (0, SALIENCY_GENUINE)):
        candidates = [int(i) for i in order if labels[i] == label]
        request = request_frame(evaluated.iloc[candidates], root)
        shown = 0
        # bounded: a few misses are named in the report, a folder without photos is not read
        for k, i in enumerate(candidates[: 3 * quota]):
            if shown == quota:
                break
            try:
                found = explain_listing(
                    scorer, request.iloc[k], steps=SALIENCY_STEPS, baseline="blur"
                )
            except NoImageToExplain as err:
                passed_over.append(str(err))
                continue
            shown += 1
            explained = found.explained
            kind = "infringing" if label else "genuine"
            decision = evaluated["decision"].iloc[i] if "decision" in evaluated else ""
            caption = f"{found.listing_id}\n{kind}, score {scores[i]:.3f} {decision}".rstrip()
            panels.append((found.overlay, caption))
    path = plot_overlays(panels, Path(report.markdown_path).parent / SALIENCY_PLOT)
    report.plots["saliency"] = path
    _insert_saliency_section(report.markdown_path, explained, passed_over)
    return path


def _insert_saliency_section(markdown: Path, explained: str, passed_over: list[str]) -> None:
    lines = [
        "## Saliency",
        "",
        f"Where the photo drove the score: integrated gradients of {explained or 'the logit'} "
        f"from a blurred copy of the photo ({SALIENCY_STEPS} steps); the brighter, the more "
        f"that region moved the score. The {SALIENCY_INFRINGING} highest-scoring infringing "
        f"listings, then the {SALIENCY_GENUINE} highest-scoring genuine ones (false positives "
        "when they are in the reject lane). Any other listing, from a notebook: "
        "`ipguard.explain_listing(ipguard.ListingScorer.load(folder), row)`.",
        "",
        f"![Saliency]({SALIENCY_PLOT})",
    ]
    if passed_over:
        lines += ["", "Passed over, no usable photo:", ""] + [f"- {p}" for p in passed_over]
    section = "\n".join(lines)
    text = markdown.read_text(encoding="utf-8")
    anchor = "\n\n## Slices"
    text = (
        text.replace(anchor, f"\n\n{section}{anchor}", 1)
        if anchor in text
        else f"{text.rstrip()}\n\n{section}\n"
    )
    markdown.write_text(text, encoding="utf-8")
