"""Lightning's own console handler goes only where another handler already prints its lines.

The log of a whole short training run (no repeated line, none of the known warnings) is checked
by the first-hour test (tests/integration/test_first_hour.py) on the README's ``make train``.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytest

from ipguard.jobs.quiet_logs import KNOWN_NOISE, drop_duplicate_lightning_handler, quiet_logs


def test_lightning_handler_goes_only_when_the_root_logger_prints(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root, lightning = logging.getLogger(), logging.getLogger("lightning")
    own, kept = logging.StreamHandler(), logging.FileHandler(tmp_path / "run.log", delay=True)
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(lightning, "handlers", [own, kept])
    drop_duplicate_lightning_handler()
    assert lightning.handlers == [own, kept]  # a notebook: Lightning's handler is the only one
    monkeypatch.setattr(root, "handlers", [logging.StreamHandler()])
    drop_duplicate_lightning_handler()
    assert lightning.handlers == [kept]  # under Hydra: the root's handlers print it once


def test_known_noise_is_filtered_by_message_and_category_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)  # restored after
    monkeypatch.setattr(logging.getLogger("lightning"), "handlers", [])
    with warnings.catch_warnings(record=True) as shown:  # the filters go with the block
        warnings.simplefilter("always")
        quiet_logs()
        leaf = "`isinstance(treespec, LeafSpec)` is deprecated"
        warnings.warn(f"{leaf}, use ... instead.", FutureWarning, stacklevel=1)
        warnings.warn(leaf, UserWarning, stacklevel=1)  # the same words, another kind
        warnings.warn("something else is deprecated", FutureWarning, stacklevel=1)
    assert [(type(w.message), str(w.message)) for w in shown] == [
        (UserWarning, "`isinstance(treespec, LeafSpec)` is deprecated"),
        (FutureWarning, "something else is deprecated"),
    ]
    assert all(category in (FutureWarning, UserWarning) for _, category in KNOWN_NOISE)
