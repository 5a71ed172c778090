"""The labelled listings a job scores: validated, set-aside rows counted, one split kept.

Evaluate, export (fitting a calibrator) and promote all read their listings the same way:
``manifest`` (the demo listings unless a config says otherwise), ``on_error``, ``check_images``,
``label_values``, ``encoding``, ``split`` and ``split_file`` from their config.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig

from ipguard.data.fingerprint import dataset_fingerprint
from ipguard.data.io import manifest_root
from ipguard.data.schema import load_manifest
from ipguard.data.splits import SPLITS, load_splits
from ipguard.jobs.training_manifest import TrainingManifest, check_fingerprint
from ipguard.models.loading import LoadedModel


@dataclass
class Listings:
    """The validated rows to evaluate, where they came from, and how many were set aside."""

    frame: pd.DataFrame
    manifest: Path
    root: Path
    fingerprint: str
    rows: dict[str, int]
    split_source: str | None = None
    origin: str | None = None
    """Why this manifest, when the user did not name it (the model's training manifest)."""


def load_listings(
    cfg: DictConfig,
    report_dir: Path,
    model: LoadedModel | None,
    scratch: Path,
    *,
    training: TrainingManifest | None = None,
) -> Listings:
    """Validate the manifest (rejects written in quarantine mode) and keep the chosen split.

    Reads ``manifest``, ``on_error``, ``check_images``, ``split``
    and ``split_file`` from ``cfg``; ``model`` is only needed to find its training run's
    splits.csv when ``split`` is set without ``split_file``. ``training``: the manifest is the
    model's training manifest, whose content must still be what was trained on (checked
    before the split, which a changed file would no longer match).
    """
    # the configs' default manifest is the demo's, generated as it is read (ipguard.config)
    if not cfg.get("manifest"):
        raise ValueError("manifest: expected the path of a labelled listing manifest, found none")
    manifest = Path(str(cfg.manifest)).expanduser()
    if not manifest.exists():
        raise FileNotFoundError(f"manifest={cfg.manifest}: no such file or folder")
    quarantine = cfg.on_error == "quarantine"
    validation = load_manifest(
        manifest,
        on_error=cfg.on_error,
        require_label=True,
        check_images=bool(cfg.check_images),
        rejects_path=report_dir / "rejects.csv" if quarantine else None,
        label_values=cfg.get("label_values"),  # a DictConfig is a Mapping, as training passes it
        decode_images=cfg.get("decode_images") or "none",
        unusable_images=cfg.get("unusable_images") or "keep",
        encoding=cfg.get("encoding"),
    )
    root = manifest_root(manifest)
    frame = validation.valid.reset_index(drop=True)
    fingerprint = dataset_fingerprint(frame, root)
    if training is not None:
        check_fingerprint(training, fingerprint)
    rows = {
        "in": validation.rows_in,
        "valid": validation.rows_valid,
        "rejected": validation.rows_rejected,
    }
    if frame.empty:
        raise ValueError(
            f"{manifest}: no valid listing to evaluate ({validation.summary()}"
            + (f"; see {report_dir / 'rejects.csv'})" if quarantine else ")")
        )
    listings = Listings(frame, manifest.resolve(), root, fingerprint, rows)
    if cfg.get("split"):
        split_file, described = _split_file(cfg, model, scratch)
        listings = _keep_split(listings, str(cfg.split), split_file, described)
    return listings


def brand_catalog(cfg: DictConfig) -> Path | None:
    """The brand catalog a checkpoint with tabular inputs is scored with: ``cfg.brands`` (the
    demo's own for the demo listings, see configs/evaluate.yaml); None when there is none."""
    return Path(str(cfg.brands)) if cfg.get("brands") else None


def _split_file(cfg: DictConfig, model: LoadedModel | None, scratch: Path) -> tuple[Path, str]:
    """``cfg.split_file``, or the ``data/splits.csv`` logged with the model's training run;
    with a description of it for the report."""
    if cfg.get("split_file"):
        path = Path(str(cfg.split_file)).expanduser()
        return path, str(path.resolve())
    if model is None or model.training_run_id is None:
        raise ValueError(
            f"split={cfg.split}: model_uri={cfg.get('model_uri')} has no training run to take "
            "splits.csv from; set split_file=<path to the training run's splits.csv>"
        )
    try:
        local = mlflow.artifacts.download_artifacts(
            run_id=model.training_run_id,
            artifact_path="data/splits.csv",
            dst_path=str(scratch / "splits"),
        )
    except (MlflowException, OSError) as err:
        raise ValueError(
            f"split={cfg.split}: the training run {model.training_run_id} of {model.uri} has no "
            f"data/splits.csv artifact ({err}); set split_file=<path>"
        ) from err
    return Path(local), f"data/splits.csv of training run {model.training_run_id}"


def _keep_split(listings: Listings, split: str, split_file: Path, described: str) -> Listings:
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS} or null, found {split!r}")
    assigned = load_splits(split_file, listings.frame)
    keep = (assigned == split).to_numpy()
    listings.frame = listings.frame[keep].reset_index(drop=True)
    listings.rows["outside_split"] = int((~keep).sum())
    listings.split_source = f"{split} rows of {described}"
    if listings.frame.empty:
        raise ValueError(f"{split_file}: no listing of the manifest is in split {split!r}")
    return listings
