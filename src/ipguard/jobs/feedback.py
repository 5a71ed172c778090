"""``ipguard-feedback``: reviewers' and appeals' outcomes joined with scored traffic into labels.

Reads a feedback file (:mod:`ipguard.data.feedback`) and the scored traffic it is about (the
output folder of ``ipguard-score`` with the request columns kept, or any file of a service's
output plus its requests), resolves every decision by the rules of
:mod:`ipguard.data.feedback_join`, and writes, next to the labelled manifest ``output``:

* ``<stem>.quarantine.csv``: every outcome row that did not become a label, with its reason
  (invalid rows as written, then the decisions the join set aside); written even when empty;
* ``<stem>.decisions.csv``: every valid decision with its fate;
* ``<stem>.overturn.csv``: appeal-overturn rates per lane, market and model version;
* ``<stem>.report.json``: the counts, which add up
  (``rows_in = rows_rejected + used + superseded + in_training + quarantined``).

The manifest is checked as ``ipguard-train`` will read it before the job reports success, so
``data.feedback=<output>`` never fails on a row this job wrote.

A manifest's image paths may not leave its folder, and a window of traffic photos may be
cleaned up long before the labels stop being trained on; so with ``images="link"`` (default)
the photos of the decided listings that lie outside the manifest's folder are hard-linked (or
copied, across file systems) into ``<stem>.images/`` beside it, and the manifest stands on its
own. ``images="refer"`` copies nothing and refuses photos outside the folder.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from ipguard.data import io
from ipguard.data.columns import REJECT_REASON
from ipguard.data.feedback import load_feedback
from ipguard.data.feedback_join import FATES, FeedbackJoin, join_feedback, rebase_image_paths
from ipguard.data.schema import load_manifest
from ipguard.jobs.score_output import STATE_FILE

__all__ = ["FeedbackResult", "feedback", "join_feedback_files", "traffic_images_root"]

IMAGE_MODES = ("link", "refer")

log = logging.getLogger(__name__)


@dataclass
class FeedbackResult:
    """What one run wrote and counted; ``summary_line`` is the line scripts parse."""

    output: Path
    quarantine: Path
    decisions: Path
    overturn: Path
    report: Path
    counts: dict[str, int] = field(default_factory=dict)
    overturn_rates: pd.DataFrame = field(default_factory=pd.DataFrame)

    def overall_overturn_rate(self) -> float:
        lanes = self.overturn_rates[self.overturn_rates["group"] == "lane"]
        appeals = int(lanes["appeals"].sum())
        return float(lanes["overturned"].sum()) / appeals if appeals else float("nan")

    def summary_line(self) -> str:
        c = self.counts
        return (
            f"ipguard: feedback rows_in={c['rows_in']} rows_rejected={c['rows_rejected']} "
            f"used={c['used']} superseded={c['superseded']} in_training={c['in_training']} "
            f"quarantined={c['quarantined']} labelled={c['listings_labelled']} "
            f"(review={c['labelled_review']} appeal={c['labelled_appeal']}) "
            f"appeals={c['appeals']} overturn_rate={self.overall_overturn_rate():.4f} "
            f"output={self.output}"
        )


def traffic_images_root(traffic: str | Path) -> Path:
    """The folder the scored traffic's ``image_path`` values resolve against: the input that
    ``ipguard-score`` recorded in its output folder (or in each of the score folders a folder
    holds, which must agree), else the traffic's own folder."""
    path = Path(traffic)
    states = sorted(path.glob(f"**/{STATE_FILE}")) if path.is_dir() else []
    roots = set()
    for state in states:
        recorded = json.loads(state.read_text(encoding="utf-8")).get("input")
        if recorded:
            roots.add(io.manifest_root(recorded))
    if len(roots) > 1:
        raise ValueError(
            f"traffic={traffic}: its score folders were scored from inputs in different "
            f"folders ({', '.join(sorted(map(str, roots)))}); set images_root= to the one "
            "their image_path values resolve against"
        )
    return roots.pop() if roots else io.manifest_root(traffic)


def _placed_images(paths: pd.Series, source_root: Path, output: Path) -> pd.Series:
    """Each photo's path relative to the manifest's folder; photos outside it linked (or
    copied) into ``<stem>.images/``. A photo that does not exist keeps a path that says where
    it was looked for, and the manifest check quarantines its listing with that reason."""
    root, source_root = output.parent, Path(os.path.abspath(source_root))
    store = _sibling(output, "images")
    placed = pd.Series(None, index=paths.index, dtype=object)
    for index, value in paths.items():
        if pd.isna(value) or not str(value).strip():
            continue
        full = Path(os.path.normpath(source_root / str(value)))
        if full.is_relative_to(root):
            placed[index] = full.relative_to(root).as_posix()
            continue
        inside = full.relative_to(source_root) if full.is_relative_to(source_root) else None
        target = store / (inside if inside is not None else Path(full.name))
        if full.is_file() and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(full, target)
            except OSError:  # another file system, or links not allowed
                shutil.copy2(full, target)
        placed[index] = target.relative_to(root).as_posix()
    return placed


def _sibling(output: Path, what: str) -> Path:
    return output.with_name(f"{output.stem}.{what}")


def join_feedback_files(
    feedback: str | Path,
    traffic: str | Path,
    output: str | Path,
    *,
    base: str | Path | None = None,
    base_label_values: Mapping[str, Any] | None = None,
    holdout: str | Path | None = None,
    images_root: str | Path | None = None,
    label_values: Mapping[str, str | Iterable[str]] | None = None,
    on_error: str = "quarantine",
    encoding: str | None = None,
    images: str = "link",
) -> FeedbackResult:
    """The whole job on paths; see the module docstring. ``base`` is the training manifest
    whose listings are not duplicated, ``holdout`` the frozen evaluation manifest whose
    listings never become labels, ``images_root`` where the traffic's photos are
    (:func:`traffic_images_root` when ``None``); ``images`` ``link`` or ``refer`` (see the
    module docstring)."""
    if images not in IMAGE_MODES:
        raise ValueError(f"images: expected one of {IMAGE_MODES}, found {images!r}")
    output = Path(output).resolve()
    quarantine_path = _sibling(output, "quarantine.csv")
    outcomes = load_feedback(
        feedback,
        on_error=on_error,
        label_values=label_values,
        encoding=encoding,  # type: ignore[arg-type]
    )
    scored = io.read_manifest(traffic, encoding=encoding)
    root = io.manifest_root(output)
    if "image_path" in scored:
        source_root = Path(images_root) if images_root else traffic_images_root(traffic)
        if images == "refer":
            scored["image_path"] = rebase_image_paths(
                scored["image_path"], source_root, root, where=str(traffic)
            )
        else:
            decided = scored["listing_id"].isin(set(outcomes.valid["listing_id"]))
            scored["image_path"] = _placed_images(
                scored["image_path"].where(decided), source_root, output
            )
    base_rows = None
    if base:
        base_rows = load_manifest(
            base, on_error="quarantine", check_images=False, label_values=base_label_values
        ).valid[["listing_id", "label"]]
    held = set(io.read_manifest(holdout)["listing_id"].dropna().astype(str)) if holdout else set()
    joined = join_feedback(
        outcomes.valid, scored, root=root, traffic_source=str(traffic), base=base_rows,
        holdout=held,
    )  # fmt: skip
    io.write_manifest(joined.manifest, output)
    load_manifest(output, on_error="raise")  # what ipguard-train will read, checked here
    quarantined = joined.quarantine.copy()
    for column in ("decided_at", "appealed_at"):  # as the rejected rows write them: ISO 8601
        stamps = quarantined[column]
        quarantined[column] = stamps.map(lambda t: None if pd.isna(t) else t.isoformat())
    set_aside = pd.concat([outcomes.rejects, quarantined], ignore_index=True)
    set_aside = set_aside[[c for c in set_aside.columns if c != REJECT_REASON] + [REJECT_REASON]]
    io.write_table(set_aside, quarantine_path, default_format="csv")
    decisions = io.write_table(joined.decisions, _sibling(output, "decisions.csv"))
    overturn = io.write_table(joined.overturn, _sibling(output, "overturn.csv"))
    counts = _counts(outcomes.rows_in, outcomes.rows_rejected, joined)
    report = _sibling(output, "report.json")
    report.write_text(
        json.dumps(
            {"counts": counts, "overturn": joined.overturn.to_dict(orient="records")}, indent=2
        ),
        encoding="utf-8",
    )
    return FeedbackResult(
        output, quarantine_path, decisions, overturn, report, counts, joined.overturn
    )


def _counts(rows_in: int, rows_rejected: int, joined: FeedbackJoin) -> dict[str, int]:
    counts = {"rows_in": rows_in, "rows_rejected": rows_rejected, **joined.counts}
    lanes = joined.overturn[joined.overturn["group"] == "lane"]
    counts["appeals"] = int(lanes["appeals"].sum())
    counts["overturned"] = int(lanes["overturned"].sum())
    accounted = rows_rejected + sum(joined.counts[f] for f in FATES)
    if accounted != rows_in:  # never expected: the join accounts for every decision
        raise RuntimeError(f"feedback accounting broken: {accounted} rows of {rows_in} placed")
    return counts


def feedback(cfg: DictConfig) -> FeedbackResult:
    """``ipguard-feedback`` from a composed ``feedback`` config (``configs/feedback.yaml``)."""
    for key in ("feedback", "traffic", "output"):
        if OmegaConf.is_missing(cfg, key) or not cfg.get(key):
            raise ValueError(f"{key}: expected a path, e.g. ipguard-feedback {key}=PATH")
    values = cfg.get("label_values")
    base_values = cfg.get("base_label_values")
    result = join_feedback_files(
        cfg.feedback,
        cfg.traffic,
        cfg.output,
        base=cfg.get("base"),
        base_label_values=OmegaConf.to_container(base_values) if base_values else None,  # type: ignore[arg-type]
        holdout=cfg.get("holdout"),
        images_root=cfg.get("images_root"),
        label_values=OmegaConf.to_container(values) if values else None,  # type: ignore[arg-type]
        on_error=str(cfg.on_error),
        encoding=cfg.get("encoding"),
        images=str(cfg.get("images") or "link"),
    )
    log.info(result.summary_line())
    return result
