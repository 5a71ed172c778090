"""Log an exported model folder as a pyfunc, register it, tag it, point an alias at it."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from ipguard.export.signature import model_signature
from ipguard.export.spec import ModelSpec

SCREENER_FILE = Path(__file__).with_name("screener.py")


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    alias: str | None
    model_uri: str  # the logged model (runs:/ or models:/<id>)

    @property
    def alias_uri(self) -> str:
        return f"models:/{self.name}@{self.alias}" if self.alias else self.version_uri

    @property
    def version_uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def next_version(client: MlflowClient, name: str) -> str:
    """The version number the registry will give the next registration of ``name``.

    The pyfunc must know its own version (the contract's ``model_version`` column) but MLflow
    assigns it only after logging, so we create the registered model first and predict it.
    """
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name)
    versions = client.search_model_versions(f"name='{name}'")
    return str(max((int(v.version) for v in versions), default=0) + 1)


def pip_requirements() -> list[str]:
    from importlib.metadata import version

    pinned = ["torch", "torchvision", "numpy", "pandas", "pillow", "safetensors"]
    pinned += ["albumentations", "scikit-learn", "onnxruntime", "mlflow"]
    reqs = [f"ipguard=={version('ipguard')}"]
    for dist in pinned:
        try:
            reqs.append(f"{dist}=={version(dist)}")
        except Exception:  # pragma: no cover - a missing optional runtime
            reqs.append(dist)
    return reqs


def log_and_register(
    model_dir: str | Path,
    spec: ModelSpec,
    *,
    input_example: pd.DataFrame | None,
    tags: dict[str, Any],
    alias: str | None = "challenger",
    client: MlflowClient | None = None,
) -> RegisteredVersion:
    """Log ``model_dir`` from code in the active run; register it as its spec says."""
    client = client or MlflowClient()
    name = spec.registered_model
    spec.model_version = next_version(client, name)
    spec.save(model_dir)
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=str(SCREENER_FILE),
        artifacts={"model_dir": str(model_dir)},
        signature=model_signature(),
        input_example=input_example,
        pip_requirements=pip_requirements(),
        model_config={"runtime": "torch"},
    )
    run_id = mlflow.active_run().info.run_id if mlflow.active_run() else None
    mv = client.create_model_version(
        name,
        source=info.model_uri,
        run_id=run_id,
        tags={k: str(v) for k, v in tags.items()},
        model_id=getattr(info, "model_id", None),
    )
    if str(mv.version) != spec.model_version:
        warnings.warn(
            f"{name}: registry assigned v{mv.version} but the model was built as "
            f"v{spec.model_version} (a concurrent registration?); its model_version column "
            "will say the latter",
            stacklevel=2,
        )
        client.set_model_version_tag(name, mv.version, "model_version_mismatch", "true")
    if alias:
        client.set_registered_model_alias(name, alias, mv.version)
    return RegisteredVersion(name, str(mv.version), alias, info.model_uri)
