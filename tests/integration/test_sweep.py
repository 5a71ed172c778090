"""``ipguard-train -m hparams_search=optuna``: the Hydra Optuna sweeper runs real trials of
``train`` and records the best parameters, maximising ``val/auroc_best``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("sweep-home")
    sweep_dir = home / "sweep"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["IPGUARD_HOME"] = str(home)
    cmd = [
        sys.executable,
        "-m",
        "ipguard.cli",
        "-m",
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=2",
        "debug=fast",
        # a sweep override on the command line replaces that key's search space
        "model.backbone=choice(tiny_cnn)",
        "data.augment=choice(light,evasion)",
        f"hydra.sweep.dir={sweep_dir}",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {"home": home, "dir": sweep_dir, "stdout": proc.stdout}


def test_both_trials_ran_train_in_their_own_folder(sweep: dict[str, Any]) -> None:
    for trial in ("0", "1"):
        folder = sweep["dir"] / trial
        overrides = yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text())
        assert any(o.startswith("model.lr=") for o in overrides), overrides
        assert "model.backbone=tiny_cnn" in overrides
        assert (folder / "splits.csv").is_file()  # train() wrote its run folder there
    # one summary line printed by the CLI per trial (the logged copies carry a timestamp)
    assert len(re.findall(r"^ipguard: trained \(not registered\)", sweep["stdout"], re.M)) == 2


def test_optimization_results_name_the_best_params_and_value(sweep: dict[str, Any]) -> None:
    from mlflow.tracking import MlflowClient

    results = yaml.safe_load((sweep["dir"] / "optimization_results.yaml").read_text())
    assert results["name"] == "optuna"
    assert set(results["best_params"]) == {"model.lr", "model.backbone", "data.augment"}
    assert 0.0002 <= results["best_params"]["model.lr"] <= 0.01
    assert results["best_params"]["data.augment"] in {"light", "evasion"}

    client = MlflowClient(f"sqlite:///{Path(sweep['home']) / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ipguard")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 2
    best = max(run.data.metrics["val/auroc_best"] for run in runs)
    assert results["best_value"] == pytest.approx(best)
