"""Exact resume: a run preempted after its first epoch and restarted with ``ckpt_path=last`` in
the same run folder ends with the weights and metrics of a run that was never interrupted.

Lightning checkpoints hold the model, optimiser, scheduler, loop and callback states but no
random-number generator states; ipguard therefore draws every epoch's randomness (shuffle
order, dropout, augmentation) from ``(seed, epoch, rank)`` alone
(``ipguard.jobs.train.EpochSeeding``).
Tolerance: under ``trainer.deterministic=true`` on CPU with ``data.num_workers=0`` the two
runs agree to 1e-6 absolute on every weight and buffer (in practice bit for bit).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from omegaconf import open_dict

from ipguard.config import compose
from ipguard.jobs.train import train

pytestmark = pytest.mark.integration

TOLERANCE = 1e-6


class Preempted(RuntimeError):
    """Stands in for a node being taken away: the process dies between two epochs."""


class PreemptAfterFirstEpoch(L.Callback):
    """Dies as the second epoch starts, i.e. after epoch 0 and its checkpoints are complete."""

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == 1:
            raise Preempted("simulated preemption before epoch 1")


def _config(output_dir: Path, *extra: str) -> Any:
    return compose(
        "train",
        [
            "debug=fast",
            "model=image",
            "model.backbone=tiny_cnn",
            "trainer.max_epochs=2",
            "trainer.limit_train_batches=4",
            "trainer.deterministic=true",
            "data.num_workers=0",
            "data.augment=evasion",  # the most random recipe: its RNG must resume too
            "model.dropout=0.3",
            "seed=11",
            "register=false",
            f"paths.output_dir={output_dir}",
            *extra,
        ],
    )


def _weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("resume")
    mp = pytest.MonkeyPatch()
    mp.setenv("IPGUARD_HOME", str(root / "home"))
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    try:
        straight = train(_config(root / "straight"))

        interrupted = _config(root / "resumed")
        with open_dict(interrupted):
            interrupted.callbacks.preempt = {"_target_": f"{__name__}.PreemptAfterFirstEpoch"}
        with pytest.raises(Preempted):
            train(interrupted)
        after_first_epoch = torch.load(
            root / "resumed" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False
        )
        resumed = train(_config(root / "resumed", "ckpt_path=last"))
    finally:
        mp.undo()
    return {
        "root": root,
        "straight": straight,
        "resumed": resumed,
        "after_first_epoch": after_first_epoch,
    }


def test_preempted_run_left_a_last_checkpoint_after_one_epoch(runs: dict[str, Any]) -> None:
    state = runs["after_first_epoch"]
    assert state["epoch"] == 0
    assert state["global_step"] == 4


def test_resumed_run_continues_from_the_second_epoch(runs: dict[str, Any]) -> None:
    last = torch.load(
        runs["root"] / "resumed" / "checkpoints" / "last.ckpt",
        map_location="cpu",
        weights_only=False,
    )
    assert last["epoch"] == 1
    assert last["global_step"] == 8  # 4 batches per epoch, epoch 0 not replayed


def test_resumed_weights_equal_the_uninterrupted_run(runs: dict[str, Any]) -> None:
    straight = _weights(runs["root"] / "straight" / "checkpoints" / "last.ckpt")
    resumed = _weights(runs["root"] / "resumed" / "checkpoints" / "last.ckpt")
    first_epoch = runs["after_first_epoch"]["state_dict"]
    assert straight.keys() == resumed.keys()
    for name, tensor in straight.items():
        assert torch.allclose(tensor.float(), resumed[name].float(), rtol=0, atol=TOLERANCE), name
    # and the second epoch did change them, so the comparison is not vacuous
    moved = [n for n, t in straight.items() if t.is_floating_point()]
    assert any(not torch.equal(straight[n], first_epoch[n]) for n in moved)


def test_resumed_metrics_equal_the_uninterrupted_run(runs: dict[str, Any]) -> None:
    straight, resumed = runs["straight"].metrics, runs["resumed"].metrics
    assert {"val/auroc_best", "test/auroc", "test/loss", "test_calibrated/auroc"} <= set(straight)
    assert resumed.keys() == straight.keys()
    for key, value in straight.items():
        assert resumed[key] == pytest.approx(value, abs=TOLERANCE, nan_ok=True), key
