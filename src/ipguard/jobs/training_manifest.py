"""The manifest a model was trained on, recorded by its training run and found again later.

``ipguard-evaluate model_uri=models:/ipguard-text@challenger split=test`` means "the test
split of the data this model was trained on". The split is only defined for that manifest, so
evaluate takes it (and how it was read: label values, encoding, error mode, image checks) from
the model's training run instead of the demo listings, unless the user names a manifest. The
training run records it as ``data/manifest.json``; runs logged before that record existed are
read from their ``config/train.yaml`` and ``data_fingerprint`` tag.

A manifest that is gone, or whose content changed since training (another fingerprint), is an
error naming the path and both fingerprints: a changed file has no saved split, and a silent
evaluation on other data would report figures of another dataset under the model's name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import yaml
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig, ListConfig, open_dict

#: the training run's artifact that names its manifest
MANIFEST_RECORD = "data/manifest.json"
#: what a job reads with when neither the user nor a training run says otherwise
READING_DEFAULTS: dict[str, Any] = {
    "on_error": "raise",
    "check_images": True,
    "decode_images": "none",
    "unusable_images": "keep",
    "label_values": None,
    "encoding": None,
}
#: how a manifest is read; a job given no value for one reads it as the training run did
READING_OPTIONS = tuple(READING_DEFAULTS)
#: evaluate's default manifest when the model has no training run that names one
DEMO_MANIFEST = "${ipguard.demo_manifest:${paths.data_dir}/demo}"


@dataclass(frozen=True)
class TrainingManifest:
    """Where a training run's listings were, their fingerprint, and how they were read."""

    path: Path
    fingerprint: str | None
    run_id: str
    options: dict[str, Any] = field(default_factory=dict)
    brands: str | None = None

    def describe(self) -> str:
        """The sentence the log and the report carry."""
        short = (self.fingerprint or "not recorded")[:16]
        return (
            f"evaluating on the manifest the model was trained on: {self.path} "
            f"(fingerprint {short}, training run {self.run_id})"
        )


def manifest_record(dm: Any) -> dict[str, Any]:
    """What the training run logs as :data:`MANIFEST_RECORD`: the absolute path (the
    config may hold one relative to a working directory that later jobs do not share), the
    fingerprint and every reading option of the data module ``dm``."""
    brands = getattr(dm, "brands_path", None)
    record: dict[str, Any] = {
        "path": str(Path(str(dm.manifest_path)).expanduser().resolve()),
        "fingerprint": dm.fingerprint,
        "brands": str(Path(str(brands)).expanduser().resolve()) if brands else None,
    }
    for name in READING_OPTIONS:
        if hasattr(dm, name):
            record[name] = _plain(getattr(dm, name))
    return record


def _plain(value: Any) -> Any:
    """JSON-ready: label values arrive as a dict of OmegaConf lists from the config."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, ListConfig)):
        return [_plain(v) for v in value]
    return value


def find_training_manifest(run_id: str, scratch: Path) -> TrainingManifest | None:
    """The manifest of training run ``run_id``, or None when the run recorded none."""
    record = _artifact(run_id, MANIFEST_RECORD, scratch)
    if record is not None:
        data = json.loads(record.read_text(encoding="utf-8"))
    else:
        data = _from_logged_config(run_id, scratch)
        if data is None:
            return None
    options = {k: data[k] for k in READING_OPTIONS if k in data}
    return TrainingManifest(
        path=Path(str(data["path"])).expanduser().resolve(),
        fingerprint=data.get("fingerprint"),
        run_id=run_id,
        options=options,
        brands=data.get("brands"),
    )


def _from_logged_config(run_id: str, scratch: Path) -> dict[str, Any] | None:
    """An older run's record, rebuilt from its resolved config and fingerprint tag."""
    config = _artifact(run_id, "config/train.yaml", scratch)
    if config is None:
        return None
    data = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("data") or {}
    if not data.get("manifest"):
        return None
    tags = mlflow.tracking.MlflowClient().get_run(run_id).data.tags
    return {
        **{k: data[k] for k in READING_OPTIONS if k in data},
        "path": data["manifest"],
        "fingerprint": tags.get("data_fingerprint"),
        "brands": data.get("brands"),
    }


def _artifact(run_id: str, path: str, scratch: Path) -> Path | None:
    try:
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=path, dst_path=str(scratch / "training_run")
        )
    except (MlflowException, OSError):
        return None
    return Path(local)


def use_training_manifest(cfg: DictConfig, training: TrainingManifest) -> None:
    """Point ``cfg.manifest`` at the training manifest; reading options the user left null
    become the training run's. Raises when the file is gone."""
    if not training.path.exists():
        raise FileNotFoundError(
            f"manifest: the model was trained on {training.path} (training run "
            f"{training.run_id}, fingerprint {training.fingerprint}), which no longer exists; "
            "set manifest=PATH to evaluate on another labelled manifest"
        )
    with open_dict(cfg):
        cfg.manifest = str(training.path)
        for name, value in training.options.items():
            if cfg.get(name) is None:
                cfg[name] = value
        if not cfg.get("brands") and training.brands:
            cfg.brands = training.brands


def fill_reading_defaults(cfg: DictConfig) -> None:
    """Reading options still null after the training run's were taken get their defaults."""
    with open_dict(cfg):
        for name, value in READING_DEFAULTS.items():
            if cfg.get(name) is None:
                cfg[name] = value


def use_demo_manifest(cfg: DictConfig) -> None:
    """No manifest named and none known from training: the demo listings, as before."""
    with open_dict(cfg):
        cfg.manifest = DEMO_MANIFEST  # resolved on first read; ``brands`` follows it


def check_fingerprint(training: TrainingManifest, fingerprint: str) -> None:
    """The listings read now must be those the model was trained on."""
    if training.fingerprint and training.fingerprint != fingerprint:
        raise ValueError(
            f"manifest {training.path}: its content changed since the model was trained on it "
            f"(fingerprint then {training.fingerprint}, now {fingerprint}; training run "
            f"{training.run_id}), so its saved split no longer applies; set manifest=PATH to "
            "evaluate on these or other listings explicitly"
        )
