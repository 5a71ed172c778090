"""A screening service loads the registered model with Lightning and Hydra *unimportable* and
pickle deserialisation disabled, and still gets the full contract, on PyTorch and ONNX Runtime.

"Not imported" (checked by test_train_cli) could be luck of import order; here any attempt to
import them fails, so a lazy import deep in the serving path would break the test."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from tiny_registry import TinyStore, request_rows, subprocess_env, train_tiny_model

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BLOCKED = ("lightning", "pytorch_lightning", "hydra")

SERVICE = textwrap.dedent(
    """
    import importlib.abc, json, sys

    BLOCKED = {blocked!r}
    attempts = []

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                attempts.append(name)
                raise ImportError(f"{{name}} is blocked: serving must not need it")
            return None

    sys.meta_path.insert(0, Block())

    import mlflow, pandas as pd
    uri, request = sys.argv[1], sys.argv[2]
    mlflow.set_tracking_uri(uri)
    frame = pd.read_json(request, orient="split", dtype=False)
    out = {{}}
    for runtime in ("torch", "onnx"):
        model = mlflow.pyfunc.load_model(
            "models:/ipguard-image@challenger", model_config={{"runtime": runtime}}
        )
        out[runtime] = model.predict(frame).to_dict(orient="list")
    out["attempts"] = attempts
    out["loaded"] = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    print(json.dumps(out))
    """
).format(blocked=BLOCKED)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, demo_small) -> TinyStore:
    return train_tiny_model(tmp_path_factory.mktemp("home"), demo_small.manifest_path)


def test_registered_model_predicts_with_training_stack_blocked(
    store: TinyStore, tmp_path: Path
) -> None:
    request = request_rows(store.manifest, 5)
    request.loc[4, "image_b64"] = "bm90IGFuIGltYWdl"  # "not an image": flagged, not fatal
    path = tmp_path / "request.json"
    request.to_json(path, orient="split", index=False)
    proc = subprocess.run(
        [sys.executable, "-c", SERVICE, store.tracking_uri, str(path)],
        env=subprocess_env(store.home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["loaded"] == [] and out["attempts"] == []
    for runtime in ("torch", "onnx"):
        frame = pd.DataFrame(out[runtime])
        assert frame["listing_id"].tolist() == request["listing_id"].tolist()
        assert frame["score"][:4].between(0, 1).all()
        assert (frame["model_version"] == store.version).all()
        assert frame["flags"][4] == "image_unreadable,not_scored"
        assert frame["decision"][4] == "review"
    assert out["onnx"]["score"][:4] == pytest.approx(out["torch"]["score"][:4], abs=1e-4)
