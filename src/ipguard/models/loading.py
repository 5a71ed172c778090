"""``load_model(source, ...)``: any model ipguard can score with, from wherever it lives.

A model reaches the jobs (evaluate, export, promote) and the late-fusion stacker in one of four
forms, and each is turned into the same thing, an exported model folder plus what scores it:

* a registry or run URI (``models:/name@alias``, ``models:/name/3``, ``runs:/<id>/model``):
  downloaded, and scored through ``mlflow.pyfunc`` exactly as a screening service loads it
  (or by :class:`~ipguard.serving.scorer.ListingScorer` on the folder inside, when asked);
* an exported model folder (``spec.json`` + weights), or a logged MLflow model folder holding
  one: scored by ``ListingScorer``, the code the pyfunc wraps;
* a Lightning checkpoint (``.ckpt``): rebuilt with the class it records, written as a folder
  with an identity calibrator and a placeholder policy (a checkpoint has neither), and scored
  like a folder.

It lives in ``models/`` because rebuilding a checkpoint needs the Lightning modules; the jobs
sit above it and the stacker beside it, so neither reaches into the other.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import torch
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.tracking import MlflowClient

from ipguard.data.catalog import catalog_featurizer
from ipguard.evaluation.policy import Policy
from ipguard.models.module import CHECKPOINT_CLASS_KEY
from ipguard.registry.lookup import parse_models_uri, registered_version
from ipguard.registry.package import write_model_dir
from ipguard.serving.scorer import ListingScorer
from ipguard.serving.spec import SPEC_FILE, ModelSpec, folder_in_logged_model

Scorer = Callable[[pd.DataFrame], pd.DataFrame]

#: what a checkpoint folder is written with until a real calibrator and policy replace them
IDENTITY_CALIBRATOR: dict[str, Any] = {"method": "none"}
#: scores nothing into reject or approve
PLACEHOLDER_POLICY: dict[str, Any] = {"reject_threshold": 1.0, "approve_threshold": 0.0}

_CLASS_HINT = "e.g. model_class=ipguard.models.image_classifier.ImageClassifier"


@dataclass
class LoadedModel:
    """A model ready to score request frames, and what is known about where it came from."""

    uri: str
    """As resolved: ``models:/name/<version>`` for an alias, the absolute path for files."""
    source: str
    """``registry``, ``run``, ``folder`` or ``checkpoint``."""
    folder: Path
    """The exported model folder (``spec.json``); under ``scratch`` unless given as one."""
    spec: ModelSpec
    scorer: Scorer
    policy: Policy | None
    """The stored policy; None for a checkpoint, which has none."""
    listing_scorer: ListingScorer | None = None
    """The in-process scorer behind :attr:`scorer`; None where the served pyfunc scores."""
    version: str | None = None
    training_run_id: str | None = None
    training_fingerprint: str | None = None
    module: Any = None
    """The rebuilt LightningModule, for a checkpoint (its network exports to ONNX)."""


def load_model(
    source: str | Path,
    scratch: str | Path,
    *,
    model_class: str | None = None,
    brands: str | Path | None = None,
    through_pyfunc: bool = True,
) -> LoadedModel:
    """Whatever ``source`` names, as a scorer plus its spec; downloads and rebuilt checkpoints
    are written under ``scratch``.

    ``model_class`` names a checkpoint's LightningModule where the checkpoint does not record
    it; ``brands`` is the brand catalog a checkpoint of a model with tabular inputs serves
    with. ``through_pyfunc=False`` scores a URI's model with ``ListingScorer`` on the folder
    inside instead of the served pyfunc (same scores, no MLflow model wrapper).
    """
    target = str(source or "")
    if not target:
        raise ValueError(
            "expected a models:/ or runs:/ URI, a model folder or a .ckpt, found nothing"
        )
    scratch = Path(scratch)
    if target.startswith(("models:/", "runs:/")):
        return _from_uri(target, scratch, through_pyfunc=through_pyfunc)
    path = Path(target).expanduser()
    if path.is_dir():
        return _from_folder(path)
    if path.suffix == ".ckpt" and path.is_file():
        return _from_checkpoint(path, scratch, model_class=model_class, brands=brands)
    raise FileNotFoundError(
        f"{target}: expected a models:/ or runs:/ URI, a folder with {SPEC_FILE} or an "
        f"existing .ckpt file; found {'a file of another kind' if path.exists() else 'nothing'}"
        " there"
    )


# --- URIs -----------------------------------------------------------------------------------


def _from_uri(uri: str, scratch: Path, *, through_pyfunc: bool) -> LoadedModel:
    """The logged model, downloaded once; its spec read from the ``model_dir`` artifact."""
    client = MlflowClient()
    name, version, version_tags = _registry_version(client, uri)
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(scratch)))
    except (MlflowException, OSError) as err:
        raise FileNotFoundError(
            f"{uri}: could not download this model from the MLflow registry at "
            f"{mlflow.get_tracking_uri()}; train and register it first, or pass an exported "
            f"model folder ({type(err).__name__}: {err})"
        ) from err
    meta = Model.load(str(local))
    folder = folder_in_logged_model(local)
    if folder is None:
        artifacts = meta.flavors.get("python_function", {}).get("artifacts") or {}
        raise ValueError(
            f"{uri}: expected an ipguard pyfunc with a 'model_dir' artifact holding "
            f"{SPEC_FILE}, found artifacts {sorted(artifacts)}"
        )
    spec = ModelSpec.load(folder)
    listing_scorer = None
    if through_pyfunc:
        scorer: Scorer = mlflow.pyfunc.load_model(str(local)).predict
    else:
        listing_scorer = ListingScorer.load(folder)
        scorer = listing_scorer.score
    run_id = meta.run_id
    fingerprint = version_tags.get("data_fingerprint")
    if fingerprint is None and run_id:
        fingerprint = client.get_run(run_id).data.tags.get("data_fingerprint")
    version = version or spec.model_version
    return LoadedModel(
        uri=f"models:/{name}/{version}" if name and version else uri,
        source="registry" if uri.startswith("models:/") else "run",
        folder=folder,
        spec=spec,
        scorer=scorer,
        policy=Policy.from_dict(spec.policy),
        listing_scorer=listing_scorer,
        version=version,
        training_run_id=run_id,
        training_fingerprint=fingerprint,
    )


def _registry_version(client: Any, uri: str) -> tuple[str | None, str | None, dict[str, str]]:
    """``(name, version, version tags)`` for ``models:/name@alias`` or ``models:/name/N``."""
    if parse_models_uri(uri) is None:
        return None, None, {}
    mv = registered_version(client, uri)  # NotRegisteredError (a ValueError) names the store
    return mv.name, str(mv.version), dict(mv.tags or {})


# --- folders --------------------------------------------------------------------------------


def _from_folder(path: Path) -> LoadedModel:
    """An exported folder, or a logged (downloaded) MLflow model that holds one."""
    folder = path if (path / SPEC_FILE).is_file() else folder_in_logged_model(path)
    if folder is None:
        raise FileNotFoundError(
            f"{path}: expected an exported ipguard model folder with {SPEC_FILE} (or a logged "
            "ipguard MLflow model whose MLmodel names its 'model_dir' artifact), found "
            f"{sorted(p.name for p in path.iterdir())[:10]}"
        )
    scorer = ListingScorer.load(folder)
    return _in_process(
        path, "folder", scorer, policy=scorer.policy, version=scorer.spec.model_version
    )


def _in_process(path: Path, source: str, scorer: ListingScorer, **known: Any) -> LoadedModel:
    """A model scored in this process by ``scorer``, loaded from the local ``path``."""
    return LoadedModel(
        uri=str(path.resolve()),
        source=source,
        folder=scorer.folder,
        spec=scorer.spec,
        scorer=scorer.score,
        listing_scorer=scorer,
        **{"policy": None, **known},
    )


# --- checkpoints ----------------------------------------------------------------------------


def _from_checkpoint(
    path: Path, scratch: Path, *, model_class: str | None, brands: str | Path | None
) -> LoadedModel:
    module, folder, _ = checkpoint_to_folder(
        path, scratch / "checkpoint_model", model_class=model_class, brands=brands
    )
    return _in_process(path, "checkpoint", ListingScorer.load(folder), module=module)


def checkpoint_to_folder(
    path: Path,
    folder: Path,
    *,
    model_class: str | None = None,
    brands: str | Path | None = None,
) -> tuple[Any, Path, ModelSpec]:
    """Rebuild the checkpoint's LightningModule and write it as a model folder, with an
    identity calibrator and :data:`PLACEHOLDER_POLICY`; returns (module, folder, spec)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    module = module_from_checkpoint(path, model_class)
    if getattr(module, "hparams", {}).get("references") and hasattr(module, "attach_catalog"):
        module.attach_catalog(brands)  # the references are data, not weights: embed them again
    written, spec = write_model_dir(
        module,
        folder,
        calibrator=dict(IDENTITY_CALIBRATOR),
        policy=dict(PLACEHOLDER_POLICY),
        extras=_tabular_extras(module, path, brands),
    )
    return module, written, spec


def module_from_checkpoint(path: Path, model_class: str | None = None) -> Any:
    """The LightningModule saved in ``path``, on CPU, its class read from the checkpoint."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    module_class = checkpoint_class(path, model_class, checkpoint=checkpoint)
    hparams = dict(checkpoint.get("hyper_parameters") or {})
    # The checkpoint's weights replace any pretrained ones, so never look for those offline.
    overrides = {k: v for k, v in (("pretrained", False), ("weights_path", None)) if k in hparams}
    return module_class.load_from_checkpoint(path, map_location="cpu", **overrides)


def checkpoint_class(
    path: Path, model_class: str | None = None, *, checkpoint: dict[str, Any] | None = None
) -> type:
    """The LightningModule class to rebuild ``path`` with: ``model_class`` if given, else the
    import path the module recorded when it was saved (``CHECKPOINT_CLASS_KEY``)."""
    if model_class:
        return _import_class(str(model_class), path)
    if checkpoint is None:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    recorded = checkpoint.get(CHECKPOINT_CLASS_KEY)
    if not recorded:
        raise ValueError(
            f"{path}: the checkpoint does not record its model class (saved by an older "
            "ipguard, or not by an ipguard module); name it with the model_class argument "
            f"({_CLASS_HINT})"
        )
    return _import_class(str(recorded), path)


def _import_class(dotted: str, path: Path) -> type:
    module_name, _, name = dotted.rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError) as err:
        raise ValueError(
            f"{path}: model class {dotted!r} cannot be imported ({err}); set model_class= to "
            f"the LightningModule that saved it ({_CLASS_HINT})"
        ) from err
    if not hasattr(found, "load_from_checkpoint"):
        raise ValueError(f"{path}: model class {dotted!r} is not a LightningModule")
    return found


def _tabular_extras(module: Any, path: Path, brands: str | Path | None) -> dict[str, Any]:
    """Models with tabular inputs serve with the brand catalog's featurizer."""
    if "tabular" not in getattr(module, "modalities", ()):
        return {}
    if brands is None:
        raise ValueError(
            f"{path}: this model reads tabular features (price against the brand's reference "
            "price), which need the brand catalog; set brands=<path to brands.csv>"
        )
    return {"tabular": catalog_featurizer(str(brands)).to_dict()}
