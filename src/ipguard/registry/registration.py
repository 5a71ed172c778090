"""Log an exported model folder as a pyfunc, register it, tag it, point an alias at it.

Every version answers "what exactly is this?" from its tags alone: the git commit of the code
that built it, the fingerprint of the data it learned from, the hash of its resolved config
(all three required, see :data:`PROVENANCE_TAGS`), its headline metrics (from the spec), its
kind, the ipguard version and the runtime it serves on by default. The provenance also goes
into the spec, so a model folder that is re-exported (``ipguard-export``) keeps it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import warnings
from dataclasses import dataclass
from importlib.metadata import version as distribution_version
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from ipguard.serving.kinds import model_kind
from ipguard.serving.scorer import AUTO, RUNTIMES
from ipguard.serving.signature import model_signature
from ipguard.serving.spec import MODEL_DIR_ARTIFACT, ONNX_FILE, ModelSpec
from ipguard.serving.video_contract import (
    VIDEO_SCREENER_FILE,
    video_request_example,
    video_signature,
)

SCREENER_FILE = Path(__file__).parents[1] / "serving" / "screener.py"
PROVENANCE_TAGS = ("git_commit", "data_fingerprint", "config_hash")


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


def pip_requirements(kind: str | None = None) -> list[str]:
    """Exact pins of what the pyfunc imports, so a service's fresh environment matches ours.

    A kind's own extra distributions (``ModelKind.serving_distributions``, e.g. MiniLM's
    transformers and tokenizers) are pinned only for that kind.
    """
    pinned = ["torch", "torchvision", "numpy", "pandas", "pillow", "safetensors"]
    pinned += ["albumentations", "scikit-learn", "onnxruntime", "mlflow"]
    pinned += ["efficientnet-lite-pytorch"]  # the default image tower's architecture
    pinned += list(model_kind(kind).serving_distributions if kind else ())
    reqs = [f"ipguard=={distribution_version('ipguard')}"]
    for dist in pinned:
        try:
            reqs.append(f"{dist}=={distribution_version(dist)}")
        except Exception:  # pragma: no cover - a missing optional runtime
            reqs.append(dist)
    return reqs


def request_example(frame: pd.DataFrame, root: Path, n: int = 2) -> pd.DataFrame:
    """A couple of real listings as a service would send them over REST (base64 images): the
    input example logged with every version. A video manifest's rows give videos instead
    (:func:`ipguard.serving.video_contract.video_request_example`)."""
    if "video_path" in frame:
        return video_request_example(frame, root, n)
    rows = frame.head(n)
    cols = [c for c in ("listing_id", "title", "description", "brand", "market") if c in rows]
    example = rows[cols].astype(str).reset_index(drop=True)
    if "image_path" in rows:
        example["image_b64"] = [
            base64.b64encode((root / p).read_bytes()).decode() if isinstance(p, str) else ""
            for p in rows["image_path"]
        ]
    return example


def pyfunc_arguments(
    model_dir: str | Path, *, kind: str | None = None, runtime: str = AUTO
) -> dict[str, Any]:
    """How an exported folder becomes an ipguard pyfunc (the screener, logged from code), for
    ``mlflow.pyfunc.log_model`` here and ``mlflow.pyfunc.save_model`` wherever a model is
    needed without a registry."""
    video = kind == "video"  # its own pyfunc and contract (serving/video_contract.py)
    return {
        "python_model": str(VIDEO_SCREENER_FILE if video else SCREENER_FILE),
        "artifacts": {MODEL_DIR_ARTIFACT: str(model_dir)},
        "signature": video_signature() if video else model_signature(),
        "pip_requirements": pip_requirements(kind),
        # a video service may pin its frame tower: model_config={"frame_tower": "torch"}
        "model_config": {"runtime": runtime, **({"frame_tower": "auto"} if video else {})},
    }


def version_tags(spec: ModelSpec, tags: dict[str, Any], *, runtime: str) -> dict[str, str]:
    """The full tag set of a new version: the caller's provenance plus what the spec says.

    Raises if a provenance tag is missing or empty: a version nobody can trace back to its code,
    data and config must not reach a screening service.
    """
    missing = [k for k in PROVENANCE_TAGS if not str(tags.get(k) or "").strip()]
    if missing:
        raise ValueError(
            f"{spec.registered_model}: every registered version must be tagged with "
            f"{list(PROVENANCE_TAGS)}; missing or empty: {missing}"
        )
    out = {k: f"{v:.4f}" for k, v in spec.metrics.items() if isinstance(v, (int, float))}
    out.update(
        model_kind=spec.kind,
        ipguard_version=distribution_version("ipguard"),
        runtime=runtime,
        format_version=str(spec.format_version),
    )
    catalog = brand_catalog_fingerprint(spec)
    if catalog:
        out["brand_catalog_fingerprint"] = catalog
    onnx = spec.extras.get("onnx")
    if onnx:
        out["onnx_parity_max_abs_diff"] = f"{float(onnx['parity_max_abs_diff']):.3g}"
    out.update({k: str(v) for k, v in tags.items()})
    return out


def brand_catalog_fingerprint(spec: ModelSpec) -> str | None:
    """Which brand catalog the model compares listings with: the reference catalog's
    fingerprint (images included), else a hash of the prices and names it reads; None for
    models that read no catalog."""
    references = spec.extras.get("references")
    if references:
        return str(references["catalog_fingerprint"])
    tabular = spec.extras.get("tabular")
    if tabular:
        canonical = json.dumps(tabular.get("catalog", []), sort_keys=True).encode("utf-8")
        return hashlib.sha256(canonical).hexdigest()
    return None


def log_and_register(
    model_dir: str | Path,
    spec: ModelSpec,
    *,
    input_example: pd.DataFrame | None,
    tags: dict[str, Any],
    alias: str | None = "challenger",
    client: MlflowClient | None = None,
    runtime: str = AUTO,
) -> RegisteredVersion:
    """Log ``model_dir`` from code in the active run; register it as its spec says.

    ``runtime`` is the one the pyfunc uses unless a service asks for another at load time
    (``mlflow.pyfunc.load_model(uri, model_config={"runtime": "torch"})``). ``"auto"`` (the
    default) serves on ONNX Runtime where the folder holds its parity-checked graph and the
    service has onnxruntime, else on PyTorch: 3-8x faster for the default fused model, scores
    within 1e-5. ``"onnx"`` needs the folder to hold an ONNX export
    (see ``ipguard.serving.onnx.add_onnx``).
    """
    if runtime not in (*RUNTIMES, AUTO):
        raise ValueError(f"runtime: expected one of {(*RUNTIMES, AUTO)}, found {runtime!r}")
    if runtime == "onnx" and not (Path(model_dir) / ONNX_FILE).is_file():
        raise ValueError(
            f"runtime='onnx' needs {Path(model_dir) / ONNX_FILE}; export the model with onnx=true"
        )
    client = client or MlflowClient()
    name = spec.registered_model
    all_tags = version_tags(spec, tags, runtime=runtime)
    spec.extras["provenance"] = {k: all_tags[k] for k in PROVENANCE_TAGS}
    spec.model_version = next_version(client, name)
    spec.save(model_dir)
    info = mlflow.pyfunc.log_model(
        name="model",
        input_example=input_example,
        **pyfunc_arguments(model_dir, kind=spec.kind, runtime=runtime),
    )
    run_id = mlflow.active_run().info.run_id if mlflow.active_run() else None
    mv = client.create_model_version(
        name,
        source=info.model_uri,
        run_id=run_id,
        tags=all_tags,
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
