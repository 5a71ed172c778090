"""Monitoring a registered model on demo traffic scored by ``ipguard-score``'s job.

The tiny TF-IDF text model of the tiny store (trained by the real CLI) carries a reference
profile of its validation rows; re-exported with a larger labelled demo draw it carries that
draw's profile. Traffic is a fresh demo draw (another seed) scored by the batch scorer with the
request columns kept: unshifted it must pass, and with a new counterfeit wording in most titles
it must be caught, by text length and by the score distribution the model gives it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from tiny_registry import train_cli

from ipguard.config import compose
from ipguard.demo.listings import generate_demo_data
from ipguard.jobs.batch_score import score_manifest
from ipguard.jobs.export import export
from ipguard.jobs.monitor import ALERT_EXIT_CODE, monitor
from ipguard.monitoring import PROFILE_FILE, load_profile

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KEEP = ["title", "description", "brand", "category", "market", "language", "price", "currency"]
WORDING = " 1:1 mirror replica AAA grade, factory direct, ask for more photos"


def _scored(model_uri: str, manifest: Path, out: Path) -> Path:
    score_manifest(model_uri, manifest, out, keep=KEEP, progress=False)
    return out


def test_a_registered_model_is_monitored_against_its_stored_profile(
    tmp_path: Path, demo_small
) -> None:
    home = tmp_path / "home"
    trained = train_cli(
        home, "debug=fast", "model=text_tfidf", f"data.manifest={demo_small.manifest_path}",
        "seed=3",
    )  # fmt: skip
    uri = trained["uri"]
    (model_dir,) = (home / "runs" / "train").glob("*/model")
    stored = load_profile(model_dir)
    assert stored is not None and stored.source == "validation split"
    assert (model_dir / PROFILE_FILE).stat().st_size < 64_000
    assert sum(stored.lanes.values()) == stored.rows > 0

    # a larger labelled draw as the reference: ipguard-export fits on it and profiles it
    reference = generate_demo_data(tmp_path / "reference", n=1500, seed=31, image_size=32)
    exported = export(compose("export", [
        f"model_dir={model_dir}", f"manifest={reference.manifest_path}",
        f"mlflow.tracking_uri={uri}", f"paths.root_dir={home}", "check_images=false",
    ]))  # fmt: skip
    profile = load_profile(exported.model_dir)
    assert profile is not None and profile.rows == 1500
    version_uri = exported.registered.version_uri

    traffic = generate_demo_data(tmp_path / "traffic", n=1500, seed=32, image_size=32)
    worded = pd.read_csv(traffic.manifest_path)
    worded.loc[worded.index % 5 != 0, "title"] += WORDING
    worded.to_csv(traffic.root / "worded.csv", index=False)
    with_uri = [f"mlflow.tracking_uri={uri}", f"paths.root_dir={home}"]
    results = {}
    for name, manifest in {
        "fresh": traffic.manifest_path,
        "worded": traffic.root / "worded.csv",
    }.items():
        scored = _scored(version_uri, manifest, tmp_path / f"scored-{name}")
        results[name] = monitor(compose("monitor", [
            f"model_uri={version_uri}", f"traffic={scored}", f"output={tmp_path / name}",
            *with_uri,
        ]))  # fmt: skip

    fresh, worded_result = results["fresh"], results["worded"]
    assert fresh.exit_code == 0, [a.describe() for a in fresh.alerts]
    assert worded_result.exit_code == ALERT_EXIT_CODE
    found = {(a.check, a.feature, a.where) for a in worded_result.alerts}
    assert ("feature_psi", "text_length", "overall") in found
    assert ("score_psi", "score", "overall") in found
    assert ("feature_psi", "unknown_words", "overall") in found
    summary = json.loads((worded_result.report_dir / "summary.json").read_text())
    assert summary["model"]["version"] == exported.registered.version
    assert summary["reference"]["rows"] == 1500
    run = worded_result.model
    assert run.name == "ipguard-text" and run.run_id == exported.run_id
