"""Which class-imbalance handling the image model should use by default, measured at a
realistic 1-in-20 infringing rate.

Run (inside the shared CPU lock; about 15-25 minutes on 2 cores with the defaults)::

    flock /tmp/ipguard-cpu.lock python benchmarks/imbalance.py --work-dir /tmp/ipg-imbalance

The demo data is about 37% infringing, far more than a marketplace sees. This generates a
larger demo set, keeps every genuine listing and a random subset of infringing ones so that
``--positive-rate`` of the rows infringe, writes that manifest next to the images, and trains
the image model once per ``imbalance`` option and seed with :func:`ipguard.jobs.train.train`
(the same code path as ``ipguard-train imbalance=...``). All runs share one split (the first
run's ``splits.csv``), so the options are compared on the same test listings; seeds vary the
initialisation, shuffling and augmentation only.

Reported per option (mean and standard deviation over seeds): test AUROC and average
precision of the best checkpoint (by validation AUROC), and the recall reachable at 95%
precision on test, the figure a reject lane lives by. With a few dozen infringing test
listings these move by several points between seeds: read the spread, not only the mean.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ipguard.config import compose
from ipguard.data.columns import label_array
from ipguard.demo.listings import ensure_demo_data
from ipguard.evaluation.metrics import recall_at_precision
from ipguard.jobs.train import IMBALANCE, train


def imbalanced_manifest(manifest: Path, positive_rate: float, seed: int) -> Path:
    """Keep all genuine rows and enough random infringing rows for ``positive_rate``.

    Written into the manifest's own folder because image paths resolve against it.
    """
    frame = pd.read_csv(manifest)
    genuine = frame[frame["label"] == "genuine"]
    infringing = frame[frame["label"] == "infringing"]
    wanted = round(positive_rate / (1 - positive_rate) * len(genuine))
    if wanted > len(infringing):
        raise ValueError(
            f"{manifest} has {len(infringing)} infringing rows; {wanted} are needed for a "
            f"{positive_rate:.0%} rate next to {len(genuine)} genuine ones"
        )
    kept = infringing.sample(n=wanted, random_state=seed)
    out = frame[frame.index.isin(genuine.index.union(kept.index))]  # original order
    path = manifest.with_name(f"listings_{round(positive_rate * 1000)}permille.csv")
    out.to_csv(path, index=False)
    return path


def labels_of_test_split(manifest: Path, splits_csv: Path) -> np.ndarray:
    """Labels of the test split in the order train() scores it (manifest order)."""
    splits = pd.read_csv(splits_csv)
    labels = pd.read_csv(manifest).set_index("listing_id")["label"]
    test_ids = splits.loc[splits["split"] == "test", "listing_id"]
    return label_array(labels.loc[test_ids])


def run_one(
    args: argparse.Namespace,
    manifest: Path,
    brands: Path,
    option: str,
    seed: int,
    split_file: Path | None,
) -> dict[str, float]:
    out = args.work_dir / "runs" / f"{option}-seed{seed}"
    shutil.rmtree(out, ignore_errors=True)  # left by an interrupted run
    overrides = [
        f"data.manifest={manifest}",
        f"data.brands={brands}",
        f"data.image_size={args.image_size}",
        "model=image",
        f"model.backbone={args.backbone}",
        f"trainer.max_epochs={args.epochs}",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        f"imbalance={option}",
        f"seed={seed}",
        "register=false",
        f"paths.root_dir={args.work_dir}",
        f"paths.output_dir={out}",
    ]
    if split_file is not None:
        overrides.append(f"data.split_file={split_file}")
    start = time.perf_counter()
    result = train(compose("train", overrides))
    labels = labels_of_test_split(manifest, out / "splits.csv")
    recall, _ = recall_at_precision(result.extra["test_scores"], labels, 0.95)
    return {
        "option": option,
        "seed": seed,
        "test_auroc": result.metrics["test/auroc"],
        "test_ap": result.metrics["test/ap"],
        "test_recall_at_p95": recall,
        "val_auroc_best": result.metrics.get("val/auroc_best", float("nan")),
        "test_positives": int(labels.sum()),
        "test_rows": len(labels),
        "seconds": time.perf_counter() - start,
        "output_dir": str(out),
    }


def table(rows: pd.DataFrame) -> str:
    """Markdown: one line per option, mean ± std over seeds."""
    lines = [
        "| imbalance | test AUROC | test AP | recall @ 95% precision | val AUROC (best) | s/run |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for option, group in rows.groupby("option", sort=False):
        cells = [
            f"{group[c].mean():.3f} ± {group[c].std(ddof=0):.3f}"
            for c in ("test_auroc", "test_ap", "test_recall_at_p95", "val_auroc_best")
        ]
        lines.append(f"| {option} | {' | '.join(cells)} | {group['seconds'].mean():.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--n", type=int, default=8000, help="demo listings before subsampling")
    parser.add_argument("--positive-rate", type=float, default=0.05)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--backbone", default="tiny_cnn")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--options", nargs="+", default=[o for o in IMBALANCE if o != "auto"], choices=IMBALANCE
    )
    parser.add_argument("--out", type=Path, help="also write the Markdown table here")
    args = parser.parse_args()
    args.work_dir = args.work_dir.resolve()

    demo = ensure_demo_data(args.work_dir / "demo", n=args.n, seed=0, image_size=args.image_size)
    manifest = imbalanced_manifest(demo.manifest_path, args.positive_rate, seed=0)
    frame = pd.read_csv(manifest)
    print(
        f"manifest {manifest}: {len(frame)} listings, "
        f"{(frame['label'] == 'infringing').mean():.1%} infringing"
    )
    # one JSON line per finished run: an interrupted benchmark picks up where it stopped
    log = args.work_dir / "imbalance_results.jsonl"
    done = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    finished = {(row["option"], row["seed"]): row for row in done}
    split_file = Path(done[0]["output_dir"]) / "splits.csv" if done else None
    results: list[dict[str, float]] = []
    for seed in args.seeds:
        for option in args.options:
            row = finished.get((option, seed))
            if row is None:
                row = run_one(args, manifest, demo.brands_path, option, seed, split_file)
                with log.open("a") as out:
                    out.write(json.dumps(row) + "\n")
            split_file = split_file or Path(row["output_dir"]) / "splits.csv"
            results.append(row)
            print(json.dumps(row), flush=True)
    rows = pd.DataFrame(results)
    first = rows.iloc[0]
    header = (
        f"{args.backbone} at {args.image_size} px, {args.epochs} epochs, seeds {args.seeds}; "
        f"{len(frame)} listings at {args.positive_rate:.0%} infringing; test split "
        f"{first['test_rows']} rows with {first['test_positives']} infringing"
    )
    markdown = f"{header}\n\n{table(rows)}\n"
    print(markdown)
    if args.out:
        args.out.write_text(markdown)


if __name__ == "__main__":
    main()
