"""The notebook API: ``from ipguard import evaluate, load_model, normalize`` and friends.

The model is ``team_text_model`` (tests/conftest.py): a TF-IDF ``ipguard-text`` registered in
its own store, trained on a team's ';'-separated manifest with its own label values.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import skops.io

import ipguard

#: team_text_model trains once (~20 s) for the module's tests
pytestmark = pytest.mark.slow


def _store(team_text_model: dict[str, Any]) -> list[str]:
    return [f"paths.root_dir={team_text_model['root']}"]


def test_text_normalize_is_the_function_and_the_old_module_path_still_imports() -> None:
    from ipguard.text.normalize import model_text  # the module's name before 0.6

    from ipguard.text import normalize

    assert inspect.isfunction(normalize) and normalize is ipguard.normalize
    assert normalize("G.u.c.c.i") == "gucci"
    assert callable(model_text)
    module = importlib.import_module("ipguard.text.normalization")
    assert model_text is module.model_text
    assert inspect.isfunction(importlib.import_module("ipguard.text").normalize)


def test_every_public_name_resolves_and_is_listed() -> None:
    for name in ipguard.__all__:
        assert getattr(ipguard, name) is not None, name
    assert {"evaluate", "load_model", "ScoringModel", "EvaluationResult"} <= set(ipguard.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = ipguard.nope


def test_load_model_scores_a_frame_like_the_served_model(
    team_text_model: dict[str, Any],
) -> None:
    model = ipguard.load_model("models:/ipguard-text@challenger", overrides=_store(team_text_model))
    assert model.uri == "models:/ipguard-text/1" and model.version == "1"
    rows = pd.read_csv(team_text_model["manifest"], sep=";", dtype=str).head(7)
    out = model.predict(rows.drop(columns="label"))
    assert out["listing_id"].tolist() == rows["listing_id"].tolist()
    assert out["score"].between(0, 1).all()
    assert set(out["decision"]) <= {"reject", "review", "approve"}
    # the stored thresholds decide the lanes
    assert (out["decision"] == model.policy.decide(out["score"].to_numpy())).all()


def test_evaluate_a_loaded_model_on_a_dataframe_returns_metrics_and_plots(
    team_text_model: dict[str, Any], tmp_path: Path
) -> None:
    model = ipguard.load_model("models:/ipguard-text@challenger", overrides=_store(team_text_model))
    rows = pd.read_csv(team_text_model["manifest"], sep=";", dtype=str).head(120)
    rows["label"] = rows["label"].map({"OK": "genuine", "fake": "infringing"})
    result = ipguard.evaluate(
        model, rows, out_dir=tmp_path / "eval", overrides=[*_store(team_text_model), "n_boot=5"]
    )
    assert isinstance(result, ipguard.EvaluationResult)
    assert result.rows["evaluated"] == 120
    assert 0.0 <= result.metrics["auroc"] <= 1.0
    assert result.report.markdown_path.is_file()
    assert result.report.plots and all(Path(p).is_file() for p in result.report.plots.values())
    assert result.model_uri == "models:/ipguard-text/1"


def test_evaluate_by_uri_without_a_manifest_uses_the_training_split(
    team_text_model: dict[str, Any], tmp_path: Path
) -> None:
    result = ipguard.evaluate(
        "models:/ipguard-text@challenger",
        split="test",
        out_dir=tmp_path,
        overrides=[*_store(team_text_model), "n_boot=5"],
    )
    assert result.manifest == team_text_model["manifest"].resolve()
    splits = pd.read_csv(team_text_model["result"].output_dir / "splits.csv")
    assert result.rows["evaluated"] == int((splits["split"] == "test").sum())


def test_a_saved_tfidf_model_trusts_only_the_names_it_always_did(
    team_text_model: dict[str, Any],
) -> None:
    """Models saved before the normalisation module was renamed name no module of it."""
    from ipguard.models.baselines import TRUSTED_TYPES

    (saved,) = Path(team_text_model["result"].model_dir).rglob("*.skops")
    untrusted = set(skops.io.get_untrusted_types(file=saved))
    assert untrusted <= set(TRUSTED_TYPES)
    assert not any("ipguard.text" in name for name in untrusted)
