"""What a notebook does most after training, without Hydra: load a model, evaluate it.

``ipguard.load_model(uri)`` gives the scorer a screening service runs (the served pyfunc for a
registry or run URI, :class:`~ipguard.serving.scorer.ListingScorer` for a folder or a
checkpoint) with ``predict(frame)``; ``ipguard.evaluate(model, manifest)`` writes the same
report as ``ipguard-evaluate`` and returns its result (metrics, plot paths, the MLflow run).
Both find the project's MLflow store as the commands do (``IPGUARD_HOME``, else the current
folder, unless ``MLFLOW_TRACKING_URI`` says otherwise), because both compose the commands' own
config (``ipguard.config.compose("evaluate", ...)``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ipguard.config import compose
from ipguard.data.io import image_files
from ipguard.evaluation.policy import Policy
from ipguard.jobs.evaluate import EvaluationResult
from ipguard.jobs.evaluate import evaluate as evaluate_job
from ipguard.jobs.run import resolve_output_dir, resolve_tracking_uri, set_store_uris
from ipguard.models.loading import LoadedModel
from ipguard.models.loading import load_model as load_any_model
from ipguard.serving.spec import ModelSpec

__all__ = ["ScoringModel", "evaluate", "load_model"]

#: the file a DataFrame given to :func:`evaluate` is written to, inside the output folder
FRAME_MANIFEST = "input/listings.csv"


@dataclass
class ScoringModel:
    """A loaded model: ``predict(frame)`` scores listings under the model contract."""

    loaded: LoadedModel
    _files: Any = field(default=None, repr=False)
    """The downloaded or rebuilt model folder, kept for as long as this object lives."""

    @property
    def uri(self) -> str:
        """As resolved: ``models:/name/<version>`` for an alias."""
        return self.loaded.uri

    @property
    def version(self) -> str | None:
        return self.loaded.version

    @property
    def spec(self) -> ModelSpec:
        """Kind, registered name, calibrator and policy the model was exported with."""
        return self.loaded.spec

    @property
    def policy(self) -> Policy | None:
        """The stored reject / review / approve thresholds (None for a checkpoint)."""
        return self.loaded.policy

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """One output row per listing (``score``, ``decision``, per-modality scores, flags)."""
        return pd.DataFrame(self.loaded.scorer(frame))

    score = predict


def load_model(
    uri: str | Path,
    *,
    model_class: str | None = None,
    brands: str | Path | None = None,
    overrides: Sequence[str] = (),
) -> ScoringModel:
    """The model at ``uri`` (``models:/ipguard-listing@champion``, ``runs:/<id>/model``, an
    exported folder or a ``.ckpt``), ready to score.

    ``model_class`` and ``brands`` are for checkpoints (the LightningModule where it is not
    recorded, the brand catalog of a model with tabular inputs); ``overrides`` are
    ``ipguard-evaluate`` overrides that locate the store (``paths.root_dir=...``,
    ``mlflow.tracking_uri=...``).
    """
    cfg = compose("evaluate", list(overrides))
    files = tempfile.TemporaryDirectory(prefix="ipguard-model-")
    set_store_uris(resolve_tracking_uri(cfg.mlflow.tracking_uri, cfg.paths.root_dir))
    loaded = load_any_model(str(uri), files.name, model_class=model_class, brands=brands)
    return ScoringModel(loaded, files)


def evaluate(
    model: str | Path | ScoringModel,
    manifest: str | Path | pd.DataFrame | None = None,
    *,
    split: str | None = None,
    images_root: str | Path | None = None,
    out_dir: str | Path | None = None,
    overrides: Sequence[str] = (),
) -> EvaluationResult:
    """The evaluation report of ``model`` on labelled listings, as ``ipguard-evaluate`` writes it.

    ``manifest``: a manifest file, a DataFrame of labelled listings (relative ``image_path``s
    resolve against ``images_root``, default the current folder), or None for the manifest
    the model was trained on. ``split`` (``test``...) keeps the rows of the training run's
    split. Any other ``ipguard-evaluate`` key goes in ``overrides`` (``"n_boot=50"``). The
    result has ``metrics``, ``report.markdown_path``, ``report.plots`` and the MLflow
    ``run_id``.
    """
    cfg = compose("evaluate", list(overrides))
    # set, not written as overrides: paths with "=", spaces or quotes need no escaping
    if out_dir is not None or isinstance(manifest, pd.DataFrame):
        cfg.out_dir = str(Path(out_dir).resolve() if out_dir else resolve_output_dir(cfg))
    if split is not None:
        cfg.split = split
    if not isinstance(model, ScoringModel):
        cfg.model_uri = str(model)
    if isinstance(manifest, pd.DataFrame):
        manifest = _write_frame(manifest, Path(cfg.out_dir) / FRAME_MANIFEST, images_root)
    if manifest is not None:
        cfg.manifest = str(Path(manifest).expanduser().resolve())
    return evaluate_job(cfg, model.loaded if isinstance(model, ScoringModel) else None)


def _write_frame(frame: pd.DataFrame, path: Path, images_root: str | Path | None) -> Path:
    """A DataFrame as a manifest file, its relative image paths made absolute."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = frame.copy()
    if "image_path" in rows:
        root = Path(images_root or ".").resolve()
        rows["image_path"] = [
            None if file is None else str(file.resolve())
            for file in image_files(rows["image_path"], root)
        ]
    rows.to_csv(path, index=False)
    return path
