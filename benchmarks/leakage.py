"""How much a leaky split overstates test AUROC on the demo data.

Run (inside the CPU lock on a shared machine)::

    flock /tmp/ipguard-cpu.lock python benchmarks/leakage.py [--n 2000] [--seeds 0 1 2]
        [--image-size 96] [--epochs 6] [--work-dir DIR] [--skip-image]

The same data, the same model and the same seeds, only the split changes:

- ``random``: stratified by label; a seller's listings and copies of one photo land on both
  sides, so the model is tested partly on what it has memorised.
- ``group``: the default, leakage-safe split (sellers joined with near-duplicate images).
- ``group-sellers``: sellers kept whole, near-duplicate images not looked for.
- ``time``: the latest 15% of listings as test, by ``listed_at`` alone (returning sellers
  included, as in production).

Two models: the TF-IDF + logistic-regression text baseline
(:class:`ipguard.models.baselines.TfidfTextModel`, seconds per fit, all four splits) and the
image model ``tiny_cnn`` trained through :func:`ipguard.jobs.train.train` with
``register=false`` (a few epochs, ``--image-strategies``). For each split the table gives the
test size, the split's leaks (:func:`ipguard.data.splits.leakage_report`) and the test AUROC
per seed with its mean and spread; the gap is the random split's mean minus the others'.
A seed changes the split and the model's initialisation together. Everything, the MLflow
store included, is written under ``--work-dir``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

STRATEGIES = ("random", "group", "group-sellers", "time")

# The Hydra overrides that select each split in ipguard-train.
_SPLIT_OVERRIDES = {
    "random": ["data.split.strategy=random"],
    "group": ["data.split.strategy=group"],
    "group-sellers": ["data.split.strategy=group", "+data.split.near_duplicates=false"],
    "time": ["data.split.strategy=time"],
}


@dataclass
class Outcome:
    """Test AUROC per seed for one model on one split strategy, and what that split leaks."""

    model: str
    strategy: str
    aurocs: list[float] = field(default_factory=list)
    test_rows: list[int] = field(default_factory=list)
    sellers_crossing: list[int] = field(default_factory=list)
    duplicates_crossing: list[int] = field(default_factory=list)
    test_from_train_sellers: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def mean(self) -> float:
        return float(np.mean(self.aurocs))


def split_config(strategy: str, seed: int):
    """The :class:`SplitConfig` the Hydra overrides above produce, for the direct path."""
    from ipguard.data.splits import SplitConfig

    if strategy == "group-sellers":
        return SplitConfig(strategy="group", near_duplicates=False, seed=seed)
    return SplitConfig(strategy=strategy, seed=seed)


def _record_leaks(outcome: Outcome, frame: pd.DataFrame, splits: pd.Series, hashes: list) -> None:
    from ipguard.data.splits import leakage_report

    report = leakage_report(frame, splits, hashes=hashes)
    outcome.test_rows.append(report.split_sizes["test"])
    outcome.sellers_crossing.append(report.sellers_crossing)
    outcome.duplicates_crossing.append(report.duplicate_groups_crossing)
    outcome.test_from_train_sellers.append(
        report.test_rows_from_train_sellers / max(report.split_sizes["test"], 1)
    )


def tfidf_outcomes(
    frame: pd.DataFrame, hashes: list, strategies: list[str], seeds: list[int]
) -> list[Outcome]:
    """Fit the TF-IDF baseline on train and score test, per strategy and seed."""
    from ipguard.data.columns import label_array
    from ipguard.data.splits import assign_splits
    from ipguard.evaluation.metrics import auroc
    from ipguard.models.baselines import TfidfTextModel

    labels = label_array(frame["label"])
    outcomes = []
    for strategy in strategies:
        outcome = Outcome("TF-IDF + LR (text)", strategy)
        start = time.perf_counter()
        for seed in seeds:
            splits = assign_splits(frame, split_config(strategy, seed), hashes=hashes)
            train, test = (splits == "train").to_numpy(), (splits == "test").to_numpy()
            model = TfidfTextModel(seed=seed).fit(
                frame["title"][train].tolist(), frame["description"][train].tolist(), labels[train]
            )
            scores = model.predict_proba(
                frame["title"][test].tolist(), frame["description"][test].tolist()
            )
            outcome.aurocs.append(auroc(scores, labels[test]))
            _record_leaks(outcome, frame, splits, hashes)
        outcome.seconds = time.perf_counter() - start
        outcomes.append(outcome)
        print(f"  tfidf {strategy:<14} {outcome.aurocs}", file=sys.stderr)
    return outcomes


def image_outcomes(
    frame: pd.DataFrame, hashes: list, args: argparse.Namespace, strategies: list[str]
) -> list[Outcome]:
    """Train ``tiny_cnn`` through ``train(cfg)`` (not registered), per strategy and seed."""
    from ipguard.config import compose
    from ipguard.data.splits import load_splits
    from ipguard.jobs.train import train

    outcomes = []
    for strategy in strategies:
        outcome = Outcome(f"tiny_cnn {args.image_size}px, {args.epochs} epochs (image)", strategy)
        start = time.perf_counter()
        for seed in args.seeds:
            run_dir = args.work_dir / "runs" / f"{strategy}-seed{seed}"
            cfg = compose(
                "train",
                [
                    f"paths.root_dir={args.work_dir}",
                    f"paths.output_dir={run_dir}",
                    f"mlflow.tracking_uri=sqlite:///{args.work_dir / 'mlflow.db'}",
                    f"data.manifest='${{ipguard.demo_manifest:${{paths.data_dir}}/demo,{args.n}}}'",
                    f"data.image_size={args.image_size}",
                    "model=image",
                    "model.backbone=tiny_cnn",
                    f"trainer.max_epochs={args.epochs}",
                    "trainer.enable_progress_bar=false",
                    "trainer.enable_model_summary=false",
                    f"seed={seed}",
                    "register=false",
                    *_SPLIT_OVERRIDES[strategy],
                ],
            )
            result = train(cfg)
            outcome.aurocs.append(float(result.metrics["test/auroc"]))
            _record_leaks(outcome, frame, load_splits(run_dir / "splits.csv", frame), hashes)
        outcome.seconds = time.perf_counter() - start
        outcomes.append(outcome)
        print(f"  image {strategy:<14} {outcome.aurocs}", file=sys.stderr)
    return outcomes


def _table(outcomes: list[Outcome], seeds: list[int]) -> str:
    lines = [
        "| model | split | test rows | sellers crossing | duplicate-photo groups crossing "
        "| test rows from train sellers | test AUROC per seed | mean ± sd | random - this |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | --- | ---: |",
    ]
    random_mean = {o.model: o.mean for o in outcomes if o.strategy == "random"}
    for o in outcomes:
        gap = random_mean.get(o.model, float("nan")) - o.mean
        per_seed = ", ".join(f"{a:.3f}" for a in o.aurocs)
        lines.append(
            f"| {o.model} | {o.strategy} | {np.mean(o.test_rows):.0f} "
            f"| {np.mean(o.sellers_crossing):.0f} | {np.mean(o.duplicates_crossing):.0f} "
            f"| {np.mean(o.test_from_train_sellers):.0%} | {per_seed} "
            f"| {o.mean:.3f} ± {np.std(o.aurocs):.3f} "
            f"| {'-' if o.strategy == 'random' else f'{gap:+.3f}'} |"
        )
    return "\n".join(lines) + f"\n\nseeds {seeds}; sd is over seeds (population sd)."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="demo listings")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--strategies", default=",".join(STRATEGIES), help="for TF-IDF")
    parser.add_argument("--image-strategies", default="random,group,group-sellers")
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--skip-image", action="store_true")
    parser.add_argument("--work-dir", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    args.work_dir = (args.work_dir or Path(tempfile.mkdtemp(prefix="ipguard-leakage-"))).resolve()

    from ipguard.data.near_duplicates import image_hashes
    from ipguard.data.schema import load_manifest
    from ipguard.demo.listings import ensure_demo_data

    # The folder and seed the data config uses, so both models see the same listings.
    demo = ensure_demo_data(args.work_dir / "data" / "demo", n=args.n, seed=0)
    frame = load_manifest(demo.manifest_path).valid
    hashes = image_hashes([demo.root / p for p in frame["image_path"]], workers=os.cpu_count())

    outcomes = tfidf_outcomes(frame, hashes, args.strategies.split(","), args.seeds)
    if not args.skip_image:
        outcomes += image_outcomes(frame, hashes, args, args.image_strategies.split(","))
    print(_table(outcomes, args.seeds))
    for o in outcomes:
        print(f"{o.model} / {o.strategy}: {o.seconds:.0f} s for {len(o.aurocs)} seeds")


if __name__ == "__main__":
    main()
