"""Write a trained model as a self-contained folder: weights + spec (see ``spec.py``).

The registered model a folder goes to follows from its kind (``ipguard.serving.kinds``), so a
trained module only says what it is (``export_spec``), never where it is registered.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from safetensors.torch import save_model

from ipguard.serving.kinds import model_kind
from ipguard.serving.spec import WEIGHTS_FILE, ModelSpec


def write_model_dir(
    module: Any,
    out_dir: str | Path,
    *,
    calibrator: dict[str, Any],
    policy: dict[str, Any],
    metrics: dict[str, float] | None = None,
    extras: dict[str, Any] | None = None,
) -> tuple[Path, ModelSpec]:
    """Save the model's weights (``module.network`` as safetensors, or whatever
    ``module.save_artifacts`` writes) and its :class:`ModelSpec` beside them."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    spec_parts = module.export_spec()
    if hasattr(module, "save_artifacts"):  # models outside torch write their own files
        module.save_artifacts(folder)
    else:
        save_model(module.network.eval(), str(folder / WEIGHTS_FILE))
    spec = ModelSpec(
        kind=spec_parts["kind"],
        network=spec_parts["network"],
        preprocessing=spec_parts.get("preprocessing", {}),
        calibrator=calibrator,
        policy=policy,
        registered_model=model_kind(spec_parts["kind"]).registered_model,
        extras={**spec_parts.get("extras", {}), **(extras or {})},
        metrics=dict(metrics or {}),
    )
    spec.save(folder)
    return folder, spec
