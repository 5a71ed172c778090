"""The model spec: the JSON that makes an exported ipguard model self-contained.

Everything a screening service needs besides the weights travels here: which network to
rebuild, the preprocessing it was trained with, the calibrator, the reject/review/approve
policy, the label map and the registry identity. Serving reads this file and nothing else.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ipguard.data.columns import LABELS
from ipguard.serving.kinds import model_kind

SPEC_FILE = "spec.json"
WEIGHTS_FILE = "weights.safetensors"
#: an ONNX export beside the weights: the graph, its weights and the parity check's record
ONNX_FILE = "model.onnx"
ONNX_DATA_FILE = "model.onnx.data"
PARITY_FILE = "onnx_parity.json"
FORMAT_VERSION = 1
LABEL_MAP = {str(index): label for index, label in enumerate(LABELS)}


@dataclass
class ModelSpec:
    kind: str  # a row of ipguard.serving.kinds.KINDS
    network: dict[str, Any]
    preprocessing: dict[str, Any]
    calibrator: dict[str, Any]
    policy: dict[str, Any]
    registered_model: str
    model_version: str | None = None
    label_map: dict[str, str] = field(default_factory=lambda: dict(LABEL_MAP))
    extras: dict[str, Any] = field(default_factory=dict)  # e.g. tabular featurizer, brand matcher
    metrics: dict[str, float] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        model_kind(self.kind)  # a kind this ipguard cannot serve is refused when it is written

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / SPEC_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True, default=str))
        return path

    @classmethod
    def load(cls, folder: str | Path) -> ModelSpec:
        path = Path(folder) / SPEC_FILE
        data = json.loads(path.read_text())
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{path}: model spec format {data.get('format_version')} is not supported by "
                f"this ipguard (expects {FORMAT_VERSION}); upgrade ipguard to load it"
            )
        try:
            return cls(**data)
        except ValueError as err:  # a kind from a newer ipguard
            raise ValueError(f"{path}: {err}; upgrade ipguard to load it") from None


#: the pyfunc artifact key under which ipguard logs its exported model folder
MODEL_DIR_ARTIFACT = "model_dir"


def folder_in_logged_model(mlflow_model: str | Path) -> Path | None:
    """The exported ipguard folder inside a logged (downloaded) MLflow model, or None.

    MLflow stores a pyfunc artifact under a path of its choosing (the source folder's base
    name, e.g. ``artifacts/model``), so the path is read from the ``MLmodel`` file rather than
    guessed from the artifact key.
    """
    root = Path(mlflow_model)
    if not (root / "MLmodel").is_file():
        return None
    from mlflow.models import Model  # here, not at the top: reading a spec needs no MLflow

    flavor = Model.load(str(root)).flavors.get("python_function", {})
    entry = (flavor.get("artifacts") or {}).get(MODEL_DIR_ARTIFACT) or {}
    if not entry.get("path"):
        return None
    folder = root / str(entry["path"])
    return folder if (folder / SPEC_FILE).is_file() else None
