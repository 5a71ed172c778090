"""Notebooks are executed top to bottom by a real Jupyter kernel, as a reader would run them."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# what each notebook registers, and the inline pictures (matplotlib) it must draw at least
REGISTERS = {
    "quickstart.ipynb": "ipguard-image",
    "brand_review.ipynb": "ipguard-listing",
    "monitoring.ipynb": "ipguard-text",
}
# quickstart: the evaluation report's five plots and the strip of scored listings
# monitoring: the report's three plots, the score distributions, the overturn rates per market,
# the strip of overturned appeals and the lane rates over time
PICTURES = {"brand_review.ipynb": 4, "quickstart.ipynb": 6, "monitoring.ipynb": 7}
# the tables a notebook must show (pandas HTML headers): monitoring's summary of checks
TABLES = {"monitoring.ipynb": ("check", "feature", "statistic", "threshold", "drifted", "slice")}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_in_a_real_kernel(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IPGUARD_NOTEBOOK_HOME", str(tmp_path))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert f"ipguard: registered {REGISTERS[path.name]} v1 @challenger" in text
    pictures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pictures) >= PICTURES.get(path.name, 0)
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert all(f"<th>{column}</th>" in html for column in TABLES.get(path.name, ())), path.name


def test_notebooks_are_committed_without_outputs() -> None:
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, path.name
