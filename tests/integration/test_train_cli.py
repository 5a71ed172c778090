"""The main job end to end: ipguard-train in a subprocess, then the registered model loaded by
alias in a *separate* process (no Lightning, no Hydra state, pickle disabled) scoring held-out
listings sent as file paths and as base64."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from tiny_registry import subprocess_env, train_cli

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("home")
    summary = train_cli(
        home,
        "debug=fast",
        "model=image",
        "model.backbone=tiny_cnn",
        "trainer.max_epochs=2",
        "seed=3",
    )
    return {**summary, "home": str(home)}


def test_train_registers_challenger_in_the_sqlite_store(trained: dict[str, str]) -> None:
    assert trained["name"] == "ipguard-image"
    assert trained["alias"] == "challenger"
    assert trained["uri"].startswith("sqlite:///")
    assert Path(trained["uri"].removeprefix("sqlite:///")).is_file()
    assert 0.0 <= float(trained["auroc"]) <= 1.0


SCORER = textwrap.dedent(
    """
    import base64, json, sys
    from pathlib import Path
    import mlflow, pandas as pd
    uri, manifest = sys.argv[1], Path(sys.argv[2])
    blocked = [m for m in ("lightning", "hydra") if m in sys.modules]
    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model("models:/ipguard-image@challenger")
    rows = pd.read_csv(manifest).tail(6).reset_index(drop=True)
    by_path = rows.drop(columns=["label"]).assign(
        image_path=[str(manifest.parent / p) for p in rows["image_path"]])
    by_b64 = rows.drop(columns=["label", "image_path"]).assign(
        image_b64=[base64.b64encode((manifest.parent / p).read_bytes()).decode()
                   for p in rows["image_path"]])
    out = {"path": model.predict(by_path).to_dict(orient="list"),
           "b64": model.predict(by_b64).to_dict(orient="list"),
           "ids": rows["listing_id"].tolist(),
           "loaded_before": blocked,
           "lightning_loaded": "lightning" in sys.modules,
           "hydra_loaded": "hydra" in sys.modules}
    print(json.dumps(out))
    """
)


def test_registered_model_scores_paths_and_base64_in_a_new_process(
    trained: dict[str, str],
) -> None:
    manifest = Path(trained["home"]) / "data" / "demo-small" / "listings.csv"
    proc = subprocess.run(
        [sys.executable, "-c", SCORER, trained["uri"], str(manifest)],
        env=subprocess_env(Path(trained["home"])),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for how in ("path", "b64"):
        frame = pd.DataFrame(out[how])
        assert list(frame.columns[:3]) == ["listing_id", "score", "decision"]
        assert frame["listing_id"].tolist() == out["ids"]
        assert frame["score"].between(0, 1).all()
        assert set(frame["decision"]) <= {"reject", "review", "approve"}
        assert (frame["model_version"] == trained["version"]).all()
        assert (frame["flags"] == "").all()
    # the same images give the same scores whichever way they travel
    assert out["path"]["score"] == pytest.approx(out["b64"]["score"], abs=1e-6)
    assert not out["lightning_loaded"] and not out["hydra_loaded"]
