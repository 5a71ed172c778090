"""Does ``ipguard-train`` pay a recipe tax against a plain PyTorch loop on the same photos?

A user saw resnet18 from random weights reach test AUROC 0.82 with a 40-line script and 0.72
through ``ipguard-train`` (same size, same epoch budget). This puts both on *one* split of
one manifest and changes one part of ipguard's recipe at a time, so each part's cost shows:

* ``plain``: the 40-line loop -- Adam at a constant lr 1e-3, shuffled batches, BCE, a random
  horizontal flip, the last epoch's weights; decoding and letterboxing are ipguard's eval
  transform, so only the training recipe differs.
* ``ipguard``: ``train(cfg)`` with the given backbone and the shipped defaults otherwise.
* ``no_sampler``: ``imbalance=none`` (the default balances classes with a weighted sampler).
* ``constant_lr``: also ``model.scheduler=none model.lr=0.001`` (the default: one-cycle at 2e-3).
* ``no_augment``: also ``data.augment=none``.
* ``no_early_stop``: the defaults with early stopping out of reach (patience 100).
* ``onecycle_no_augment``: the defaults but ``data.augment=none`` (separates the schedule's part
  from the augmentation's).
* ``lr_1e-3``: the defaults with one-cycle peaking at 1e-3 instead of 2e-3.

Run (one heavy job at a time on a shared machine; resnet18 at 64 px, 10 epochs on the
2,000-listing demo data is about 2-3 minutes a variant on 2 cores)::

    python benchmarks/recipe_gap.py --work-dir /tmp/ipg-recipe --backbone resnet18 \
        --image-size 64 --epochs 10 [--manifest listings.csv --brands brands.csv]

Prints test AUROC per variant and seed; quote the spread, not one run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from ipguard.config import compose
from ipguard.data.columns import label_array
from ipguard.data.datasets import ListingDataset
from ipguard.data.io import manifest_root
from ipguard.data.schema import load_manifest
from ipguard.data.splits import load_splits
from ipguard.data.transforms import Preprocessing, build_eval_transform
from ipguard.evaluation.metrics import auroc
from ipguard.jobs.train import train
from ipguard.nets.image import ImageNetwork

VARIANTS: dict[str, list[str]] = {
    "ipguard": [],
    "no_sampler": ["imbalance=none"],
    "constant_lr": ["imbalance=none", "model.scheduler=none", "model.lr=0.001"],
    "no_augment": [
        "imbalance=none",
        "model.scheduler=none",
        "model.lr=0.001",
        "data.augment=none",
    ],
    "no_early_stop": ["callbacks.early_stopping.patience=100"],
    "onecycle_no_augment": ["data.augment=none"],
    "lr_1e-3": ["model.lr=0.001"],
}


def plain_loop(
    frames: dict[str, pd.DataFrame],
    root: Path,
    *,
    backbone: str,
    image_size: int,
    epochs: int,
    seed: int,
) -> float:
    """The 40-line script a user would write: last-epoch test AUROC."""
    torch.manual_seed(seed)
    pre = Preprocessing(image_size=image_size)
    transform = build_eval_transform(pre)

    def dataset(frame: pd.DataFrame) -> ListingDataset:
        return ListingDataset(
            frame, root, transform=transform, image_size=image_size, load_text=False
        )

    train_loader = DataLoader(dataset(frames["train"]), batch_size=32, shuffle=True)
    net = ImageNetwork(backbone, image_size=image_size)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    for _ in range(epochs):
        net.train()
        for batch in train_loader:
            images = batch["image"]
            flip = torch.rand(len(images)) < 0.5
            images[flip] = images[flip].flip(-1)
            loss = loss_fn(net(images), batch["label"].float())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    net.eval()
    scores = []
    with torch.inference_mode():
        for batch in DataLoader(dataset(frames["test"]), batch_size=64):
            scores.append(torch.sigmoid(net(batch["image"])).numpy())
    return auroc(np.concatenate(scores), label_array(frames["test"]["label"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--manifest", type=Path, help="default: the demo data")
    parser.add_argument("--brands", type=Path)
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--variants", nargs="+", default=["plain", *VARIANTS])
    args = parser.parse_args()
    work = args.work_dir.resolve()
    common = [
        "model=image",
        f"model.backbone={args.backbone}",
        f"data.image_size={args.image_size}",
        f"trainer.max_epochs={args.epochs}",
        f"paths.root_dir={work}",
        "register=false",
        "trainer.enable_progress_bar=false",
    ]
    if args.manifest:
        common.append(f"data.manifest={args.manifest.resolve()}")
    if args.brands:
        common.append(f"data.brands={args.brands.resolve()}")
    split_file: Path | None = None
    rows = []
    for seed in args.seeds:
        for variant in [v for v in args.variants if v != "plain"] + (
            ["plain"] if "plain" in args.variants else []
        ):
            started = time.perf_counter()
            if variant == "plain":
                assert split_file is not None, "run at least one ipguard variant first"
                manifest = args.manifest or next(work.glob("data/demo/listings.csv"))
                valid = load_manifest(manifest, check_images=False).valid.reset_index(drop=True)
                splits = load_splits(split_file, valid)
                frames = {
                    name: valid[splits.to_numpy() == name].reset_index(drop=True)
                    for name in ("train", "test")
                }
                score = plain_loop(
                    frames,
                    manifest_root(manifest),
                    backbone=args.backbone,
                    image_size=args.image_size,
                    epochs=args.epochs,
                    seed=seed,
                )
            else:
                overrides = [*common, *VARIANTS[variant], f"seed={seed}"]
                if split_file is not None:
                    overrides.append(f"data.split_file={split_file}")
                result = train(compose("train", overrides))
                split_file = split_file or result.output_dir / "splits.csv"
                score = result.metrics["test/auroc"]
            seconds = time.perf_counter() - started
            rows.append({"variant": variant, "seed": seed, "test_auroc": score, "s": seconds})
            print(f"{variant:12s} seed={seed} test_auroc={score:.3f} ({seconds:.0f} s)", flush=True)
    table = pd.DataFrame(rows).groupby("variant")["test_auroc"].agg(["mean", "std", "count"])
    print(table.round(3).to_string())


if __name__ == "__main__":
    main()
