"""The fused model end to end: ``ipguard-train model=fusion`` in a subprocess registers
``ipguard-listing``; a *separate* process (no Lightning, no Hydra, pickle disabled) loads it by
alias and scores listings including an undecodable image and an empty title."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tiny_registry import subprocess_env, train_cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("home")
    summary = train_cli(
        home,
        "model=fusion",
        "debug=fast",
        "model.image_backbone=tiny_cnn",
        "model.n_buckets=4096",
        "seed=5",
    )
    return {**summary, "home": str(home)}


def test_fusion_run_registers_the_listing_model_as_challenger(trained: dict[str, str]) -> None:
    assert trained["name"] == "ipguard-listing"
    assert trained["alias"] == "challenger"
    assert 0.0 <= float(trained["auroc"]) <= 1.0


SCORER = textwrap.dedent(
    """
    import base64, json, sys
    from pathlib import Path
    import mlflow, pandas as pd
    uri, manifest = sys.argv[1], Path(sys.argv[2])
    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model("models:/ipguard-listing@challenger")
    rows = pd.read_csv(manifest).tail(6).drop(columns=["label"]).reset_index(drop=True)
    rows["image_b64"] = [base64.b64encode((manifest.parent / p).read_bytes()).decode()
                         for p in rows["image_path"]]
    rows = rows.drop(columns=["image_path"])
    rows.loc[1, "image_b64"] = base64.b64encode(b"these bytes are no image").decode()
    rows.loc[2, "title"] = ""
    rows.loc[2, "description"] = None
    out = model.predict(rows)
    print(json.dumps({"out": out.to_dict(orient="list"), "ids": rows["listing_id"].tolist(),
                      "lightning_loaded": "lightning" in sys.modules,
                      "hydra_loaded": "hydra" in sys.modules,
                      "faiss_loaded": "faiss" in sys.modules}))
    """
)


def test_registered_fusion_model_scores_broken_rows_in_a_new_process(
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
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    out = pd.DataFrame(result["out"])
    assert out["listing_id"].tolist() == result["ids"]  # one row per input, in order
    assert np.isfinite(out["score"].astype(float)).all()
    assert out["score"].between(0, 1).all()
    assert set(out["decision"]) <= {"reject", "review", "approve"}
    assert (out["model_version"] == trained["version"]).all()
    assert "image_unreadable" in out.loc[1, "flags"]
    assert pd.isna(out.loc[1, "image_score"])
    assert "text_empty" in out.loc[2, "flags"]
    assert pd.isna(out.loc[2, "text_score"])
    assert (out.drop(index=[1, 2])["flags"] == "").all()
    assert not result["lightning_loaded"] and not result["hydra_loaded"]
    assert not result["faiss_loaded"]  # a fused model without references needs no index
