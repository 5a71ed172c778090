"""The promotion gate: the first challenger becomes champion, a worse one is refused and the
champion stays, and every decision is written on the challenger version with both models'
figures. Then the rule itself, on plain numbers."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from safetensors.torch import load_file, save_file
from tiny_registry import TinyStore, subprocess_env, train_tiny_model

from ipguard.config import compose
from ipguard.registry.promotion import GateRule, gate
from ipguard.serving.scorer import ListingScorer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, demo_small) -> TinyStore:
    return train_tiny_model(tmp_path_factory.mktemp("home"), demo_small.manifest_path)


@pytest.fixture(scope="module")
def frozen_manifest(store: TinyStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """80 listings labelled by the first model's own ranking (top half infringing).

    The tiny model is barely trained, so on true labels the gate's outcome would be chance.
    On these labels the first model is perfect (AP = 1), and a model that cannot rank is
    measurably worse, whatever the training run learned.
    """
    listings = pd.read_csv(store.manifest).head(120)
    request = listings.drop(columns=["label"]).assign(
        image_path=[str(store.manifest.parent / p) for p in listings["image_path"]]
    )
    scores = ListingScorer.load(store.model_dir).score(request)["score"].to_numpy()
    # the demo data reuses some photos, which score alike; ties would make AP order-dependent
    distinct = ~pd.Series(scores).duplicated().to_numpy()
    listings, scores = listings[distinct].head(80), scores[distinct][:80]
    assert len(listings) == 80
    folder = tmp_path_factory.mktemp("frozen")
    for rel in listings["image_path"]:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(store.manifest.parent / rel, folder / rel)
    top = scores >= np.median(scores)
    path = folder / "frozen_eval.csv"
    listings.assign(label=np.where(top, "infringing", "genuine")).to_csv(path, index=False)
    return path


@pytest.fixture
def in_process():
    """In-process jobs point MLflow's process-wide URIs at the store; put them back after.

    ``mlflow.set_*_uri`` also exports ``MLFLOW_*_URI`` variables; the autouse fixture in
    conftest.py removes those again when the test ends.
    """
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    yield
    mlflow.set_tracking_uri(previous[0])
    mlflow.set_registry_uri(previous[1])


def _overrides(store: TinyStore, *extra: str) -> list[str]:
    return [f"paths.root_dir={store.home}", f"mlflow.tracking_uri={store.tracking_uri}", *extra]


@pytest.mark.slow
def test_first_promotion_without_champion_promotes_and_tags(
    store: TinyStore, frozen_manifest: Path
) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from ipguard.cli import promote_main; promote_main()",
            f"name={store.name}",
            f"manifest={frozen_manifest}",
        ],
        env=subprocess_env(store.home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"ipguard: promoted {store.name} v{store.version} (champion was none)" in proc.stdout
    client = store.client()
    assert str(client.get_model_version_by_alias(store.name, "champion").version) == store.version
    tags = client.get_model_version(store.name, store.version).tags
    assert tags["promotion_decision"] == "promoted"
    assert tags["promotion_reason"] == "no champion"
    assert float(tags["challenger_ap"]) == pytest.approx(1.0)
    assert tags["promotion_rows_evaluated"] == "80"
    for key in ("git_commit", "data_fingerprint", "config_hash", "test_auroc", "model_kind"):
        assert tags[key], key


@pytest.mark.slow
def test_worse_challenger_is_refused_and_champion_stays(
    store: TinyStore, frozen_manifest: Path, in_process: None, tmp_path: Path
) -> None:
    from ipguard.jobs.export import export
    from ipguard.jobs.promote import promote

    client = store.client()
    if client.get_registered_model(store.name).aliases.get("champion") is None:
        client.set_registered_model_alias(store.name, "champion", store.version)
    # a model that cannot rank: the head ignores the image, every listing gets the same score
    flat = tmp_path / "flat_model"
    shutil.copytree(store.model_dir, flat)
    weights = load_file(flat / "weights.safetensors")
    weights["head.weight"].zero_()
    save_file(weights, flat / "weights.safetensors")
    exported = export(compose("export", _overrides(store, f"model_dir={flat}", "onnx=false")))
    worse = exported.registered.version
    assert worse != store.version
    assert str(client.get_model_version_by_alias(store.name, "challenger").version) == worse

    result = promote(
        compose("promote", _overrides(store, f"name={store.name}", f"manifest={frozen_manifest}"))
    )

    assert result.decision == "refused" and not result.promoted
    assert "challenger ap 0.5000 < champion ap 1.0000" in result.reason
    assert str(client.get_model_version_by_alias(store.name, "champion").version) == store.version
    tags = client.get_model_version(store.name, worse).tags
    assert tags["promotion_decision"] == "refused"
    assert tags["promotion_reason"] == result.reason
    assert float(tags["challenger_ap"]) == pytest.approx(0.5)
    assert float(tags["champion_ap"]) == pytest.approx(1.0)
    assert tags["promotion_champion_version"] == store.version
    # provenance travels with a re-exported folder
    original = client.get_model_version(store.name, store.version).tags
    assert tags["data_fingerprint"] == original["data_fingerprint"]
    assert tags["exported_from"].startswith("model folder")


@pytest.mark.slow
def test_a_challenger_that_fails_on_the_recent_window_is_refused_naming_it(
    store: TinyStore, frozen_manifest: Path, in_process: None, tmp_path: Path
) -> None:
    """Better on the frozen set, worse on the recent window: refused, and the tags say so.

    The champion cannot rank (every listing scores alike: AP 0.5 on any balanced set); the
    challenger is the trained model, perfect on the frozen labels. The recent window holds the
    same listings with the labels turned over, as if the traffic had turned against the
    model, so there the challenger ranks every infringing listing last (AP about 0.3 < 0.5).
    """
    from ipguard.jobs.export import export
    from ipguard.jobs.promote import promote

    client = store.client()
    flat = tmp_path / "flat_model"
    shutil.copytree(store.model_dir, flat)
    weights = load_file(flat / "weights.safetensors")
    weights["head.weight"].zero_()
    save_file(weights, flat / "weights.safetensors")
    champion = export(
        compose("export", _overrides(store, f"model_dir={flat}", "onnx=false"))
    ).registered.version
    client.set_registered_model_alias(store.name, "champion", champion)
    challenger = export(
        compose("export", _overrides(store, f"model_dir={store.model_dir}", "onnx=false"))
    ).registered.version
    frozen = pd.read_csv(frozen_manifest)
    recent = frozen_manifest.with_name("recent_window.csv")
    turned = {"infringing": "genuine", "genuine": "infringing"}
    frozen.assign(label=frozen["label"].map(turned)).to_csv(recent, index=False)
    overrides = [
        f"name={store.name}",
        f"manifest={frozen_manifest}",
        "rule.require_recall_at_reject=false",  # AP alone: the flat model's recall is arbitrary
    ]

    result = promote(compose("promote", _overrides(store, *overrides, f"recent={recent}")))

    assert result.decision == "refused" and result.failed_on == ["recent"]
    assert result.challenger_metrics["average_precision"] == pytest.approx(1.0)
    assert result.recent is not None and not result.recent.passed
    assert result.recent.challenger_metrics["average_precision"] < 0.5 - 0.01
    assert "frozen evaluation set frozen_eval.csv passed" in result.reason
    assert "recent window recent_window.csv failed: challenger ap" in result.reason
    assert str(client.get_model_version_by_alias(store.name, "champion").version) == champion
    tags = client.get_model_version(store.name, challenger).tags
    assert tags["promotion_decision"] == "refused"
    assert tags["promotion_failed_on"] == "recent"
    assert tags["promotion_recent_manifest"] == str(recent.resolve())
    assert float(tags["recent_champion_ap"]) == pytest.approx(0.5)
    assert tags["promotion_recent_rows_evaluated"] == "80"

    # the same challenger without the window: the frozen set alone lets it through
    alone = promote(compose("promote", _overrides(store, *overrides)))
    assert alone.promoted and alone.recent is None and alone.failed_on == []


# --- the rule on plain numbers ----------------------------------------------------------------


def _m(ap: float, recall: float) -> dict[str, float]:
    return {
        "average_precision": ap,
        "auroc": 0.5,
        "recall_at_reject": recall,
        "precision_at_reject": 1.0,
    }


def test_gate_promotes_the_first_challenger() -> None:
    assert gate(_m(0.1, 0.0), None, GateRule()) == (True, "no champion")


def test_gate_allows_an_ap_loss_within_tolerance_only() -> None:
    assert gate(_m(0.895, 0.5), _m(0.90, 0.5), GateRule(tolerance=0.01))[0]
    ok, reason = gate(_m(0.88, 0.5), _m(0.90, 0.5), GateRule(tolerance=0.01))
    assert not ok and "challenger ap 0.8800 < champion ap 0.9000" in reason


def test_gate_refuses_lower_recall_at_reject_unless_switched_off() -> None:
    ok, reason = gate(_m(0.95, 0.40), _m(0.90, 0.50), GateRule())
    assert not ok and "recall at reject 0.4000 < champion 0.5000" in reason
    assert gate(_m(0.95, 0.40), _m(0.90, 0.50), GateRule(require_recall_at_reject=False))[0]


def test_gate_refuses_an_undefined_challenger_metric() -> None:
    ok, reason = gate(_m(math.nan, 0.5), _m(0.9, 0.5), GateRule())
    assert not ok and "undefined" in reason


def test_gate_rule_rejects_unknown_metric() -> None:
    with pytest.raises(ValueError, match=r"rule\.metric"):
        GateRule(metric="accuracy")
