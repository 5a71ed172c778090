"""What an evaluation's report folder holds beyond ``build_report``: the tables of scores,
the listings not scored, the flat metrics, and the section saying what was evaluated and with
which caveats, right under the report's header.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from ipguard.evaluation.calibration import reliability_table
from ipguard.evaluation.report import EvaluationReport
from ipguard.jobs.listings import Listings
from ipguard.jobs.thresholds import OPTIMISTIC_NOTE
from ipguard.models.loading import LoadedModel

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
