"""``trainer=ddp_cpu``: Lightning's own DDP strategy, two CPU processes over gloo, launched by
the real CLI in a subprocess.

Proves that both ranks train (each rank's own log, and a step count only half the data per
rank gives), that the validation split is sharded without duplicating or dropping a row, and
that the ``val/auroc`` a DDP run logs is the AUROC of the *whole* validation split.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
import torch
from tiny_registry import subprocess_env

from ipguard.config import compose
from ipguard.data.columns import label_array
from ipguard.data.datamodule import ListingDataModule
from ipguard.evaluation.metrics import auroc

BATCH_SIZE = 16  # debug=fast


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("ddp-home")
    output_dir = home / "run"
    cmd = [
        sys.executable,
        "-m",
        "ipguard.cli",  # the launcher re-runs this module per rank: needs the __main__ guard
        "trainer=ddp_cpu",
        "debug=fast",
        "model=image",
        "model.backbone=tiny_cnn",
        "trainer.limit_train_batches=1.0",
        "trainer.limit_val_batches=1.0",
        "trainer.limit_test_batches=1.0",
        "seed=5",
        f"paths.output_dir={output_dir}",
    ]
    proc = subprocess.run(
        cmd, env=subprocess_env(home), capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    hydra_dirs = sorted((home / "runs" / "train").iterdir())
    assert len(hydra_dirs) == 1, hydra_dirs
    return {"home": home, "out": output_dir, "hydra_dir": hydra_dirs[0], "stdout": proc.stdout}


@pytest.mark.slow
@pytest.mark.integration
def test_each_rank_logs_its_own_membership_of_a_world_of_two(ddp_run: dict[str, Any]) -> None:
    rank_logs = {
        0: (ddp_run["hydra_dir"] / "cli.log").read_text(),
        # Lightning names the re-launched process' Hydra job train_ddp_process_<local rank>
        1: (ddp_run["hydra_dir"] / "train_ddp_process_1.log").read_text(),
    }
    for rank, text in rank_logs.items():
        assert f"GLOBAL_RANK: {rank}, MEMBER: {rank + 1}/2" in text
        assert "group split of 240 rows" in text  # each rank built the data itself
    # rank 0 alone calibrates, evaluates and registers (the CLI prints the summary unprefixed)
    registered = re.findall(
        r"^ipguard: registered ipguard-image v\d+ @challenger", ddp_run["stdout"], re.M
    )
    assert len(registered) == 1


@pytest.mark.slow
@pytest.mark.integration
def test_both_ranks_trained_each_on_half_the_training_rows(ddp_run: dict[str, Any]) -> None:
    splits = pd.read_csv(ddp_run["out"] / "splits.csv")
    n_train = int((splits["split"] == "train").sum())
    state = torch.load(
        ddp_run["out"] / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False
    )
    # DDP steps in lock-step (gradients are all-reduced), so rank 0 can only have taken these
    # steps together with rank 1; one process alone would need ceil(n_train / batch) steps
    per_rank = math.ceil(n_train / 2)
    assert state["global_step"] == math.ceil(per_rank / BATCH_SIZE)
    assert state["global_step"] != math.ceil(n_train / BATCH_SIZE)


@pytest.mark.slow
@pytest.mark.integration
def test_logged_val_auroc_is_the_auroc_of_the_whole_validation_split(
    ddp_run: dict[str, Any],
) -> None:
    from mlflow.tracking import MlflowClient

    from ipguard.models.image_classifier import ImageClassifier

    home, out = ddp_run["home"], ddp_run["out"]
    (best,) = (out / "checkpoints").glob("epoch*.ckpt")
    state = torch.load(best, map_location="cpu", weights_only=False)
    (checkpoint_state,) = [v for k, v in state["callbacks"].items() if "ModelCheckpoint" in k]
    logged_best = float(checkpoint_state["best_model_score"])

    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("ipguard").experiment_id])
    (logged,) = client.get_metric_history(run.info.run_id, "val/auroc")

    cfg = compose(
        "train", ["debug=fast", "model=image", "model.backbone=tiny_cnn", f"paths.root_dir={home}"]
    )
    from hydra.utils import instantiate

    dm = instantiate(cfg.data, split_file=str(out / "splits.csv"))
    dm.setup("fit")
    model = ImageClassifier.load_from_checkpoint(best, map_location="cpu")
    dm.configure_inputs(modalities=model.modalities, preprocessing=model.preprocessing)
    scores = model.predict_scores(dm.loader("val"))
    labels = label_array(dm.frames["val"]["label"])
    assert len(scores) == len(dm.frames["val"])
    whole_split = auroc(scores, labels)
    assert logged.value == pytest.approx(whole_split, abs=1e-6)
    assert logged_best == pytest.approx(whole_split, abs=1e-6)


def _sharded(dm: ListingDataModule, split: str, world_size: int) -> list[list[int]]:
    shards = []
    for rank in range(world_size):
        dm.trainer = SimpleNamespace(world_size=world_size, global_rank=rank)
        loader = getattr(dm, f"{split}_dataloader")()
        shards.append(list(loader.sampler))
    dm.trainer = None
    return shards


@pytest.fixture(scope="module")
def demo_dm(demo_small: Any) -> ListingDataModule:
    dm = ListingDataModule(str(demo_small.manifest_path), image_size=32, check_images=False)
    dm.setup("fit")
    return dm


@pytest.mark.parametrize("world_size", [2, 3])
@pytest.mark.parametrize("split", ["val", "test"])
def test_eval_splits_are_sharded_over_ranks_without_repeating_or_dropping_a_row(
    demo_dm: ListingDataModule, split: str, world_size: int
) -> None:
    shards = _sharded(demo_dm, split, world_size)
    every = [i for shard in shards for i in shard]
    assert sorted(every) == list(range(len(demo_dm.frames[split])))  # each row exactly once


def test_train_split_is_sharded_over_ranks_by_the_data_seed(demo_dm: ListingDataModule) -> None:
    shards = _sharded(demo_dm, "train", 2)
    n_train = len(demo_dm.frames["train"])
    assert [len(s) for s in shards] == [math.ceil(n_train / 2)] * 2
    assert set(shards[0]) | set(shards[1]) == set(range(n_train))


def test_after_a_ddp_fit_the_prediction_loader_still_reads_every_row(
    demo_dm: ListingDataModule,
) -> None:
    demo_dm.trainer = SimpleNamespace(world_size=2, global_rank=0)
    try:
        rows = sum(len(batch["label"]) for batch in demo_dm.loader("val"))
    finally:
        demo_dm.trainer = None
    assert rows == len(demo_dm.frames["val"])
