"""The evaluation folder: report.md, CSVs and five valid PNGs that the Markdown links to."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ipguard.evaluation.policy import fit_policy
from ipguard.evaluation.report import EvaluationReport, build_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PLOTS = {"roc", "pr", "reliability", "score_histogram", "lanes"}


def _frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < 0.3
    return pd.DataFrame(
        {
            "score": np.clip(rng.normal(0.35 + 0.3 * labels, 0.15), 0, 1),
            "label": np.where(labels, "infringing", "genuine"),
            "brand": rng.choice(["Acme", "Bo|real", None], n),
            "market": rng.choice(["US", "DE"], n),
            "infringement_type": np.where(
                labels, rng.choice(["counterfeit", "copyright"], n), None
            ),
        }
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> EvaluationReport:
    frame = _frame()
    policy = fit_policy(frame["score"], frame["label"], target_precision=0.95)
    out = tmp_path_factory.mktemp("report")
    return build_report(
        frame, policy, out, title="unit test", model_uri="models:/ipguard-listing/7", n_boot=20
    )


def test_every_plot_is_a_valid_non_empty_png(report: EvaluationReport):
    assert set(report.plots) == PLOTS
    for path in report.plots.values():
        assert path.is_file()
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.width > 100 and image.height > 100
            # A blank canvas has one colour; a drawn plot has many.
            assert len(image.convert("RGB").getcolors(maxcolors=1_000_000) or []) > 10


def test_markdown_links_each_plot_relative_to_the_report(report: EvaluationReport):
    text = report.markdown_path.read_text(encoding="utf-8")
    for path in report.plots.values():
        assert f"]({path.name})" in text
        assert path.parent == report.markdown_path.parent


def test_markdown_shows_policy_model_headline_lanes_and_slices(report: EvaluationReport):
    text = report.markdown_path.read_text(encoding="utf-8")
    assert "models:/ipguard-listing/7" in text
    assert f"{report.headline['auroc']:.3f}" in text
    for heading in ("## Policy", "## Headline", "## Lanes", "## Slices", "### brand", "### market"):
        assert heading in text
    assert "Bo\\|real" in text  # a pipe in user data must not break the table
    assert "&lt;missing&gt;" in text  # and the missing slice must not vanish as an HTML tag
    assert "`category`" in text  # absent slice columns are named


def test_csv_files_hold_the_returned_tables(report: EvaluationReport):
    folder = report.markdown_path.parent
    metrics = pd.read_csv(folder / "metrics.csv")
    slices = pd.read_csv(folder / "slices.csv", keep_default_na=False, na_values=[""])
    assert list(metrics["metric"]) == list(report.metrics["metric"])
    assert np.allclose(metrics["value"], report.metrics["value"], equal_nan=True)
    assert len(slices) == len(report.slices)
    assert "<missing>" in set(slices["value"])


def test_report_leaves_no_pyplot_figures_open(report: EvaluationReport):
    import matplotlib.pyplot as plt

    assert plt.get_fignums() == []


def test_build_report_names_missing_columns(tmp_path: Path):
    frame = _frame().drop(columns="label")
    policy = fit_policy(_frame()["score"], _frame()["label"])
    with pytest.raises(ValueError, match="'label'"):
        build_report(frame, policy, tmp_path)
