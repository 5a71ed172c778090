"""Does fusion pay? Image, text, late fusion and the fused model on one demo test split.

Run (on a shared machine, inside the CPU lock)::

    flock /tmp/ipguard-cpu.lock python benchmarks/compare_models.py --workdir /tmp/ipguard-compare

Every model is trained by ``ipguard.train`` exactly as ``ipguard-train`` would, on the default
demo data (2000 listings, leakage-safe group split) with one seed, so every model sees the same
test split; the script checks that by comparing the ``splits.csv`` each run saved, and stops if
they differ. Each model is then scored on that test split through its *exported* model folder
(:class:`ipguard.serving.scorer.ListingScorer`, the serving path), and the table reports:

* AUROC and average precision of the calibrated score;
* recall and precision at the reject threshold, which each run fitted on its validation split
  for the policy's 98 % precision target (the operating point the reject lane runs at), with
  95 % bootstrap intervals (stratified, 500 resamples) because the test split is small;
* training time: wall-clock seconds of the whole ``train()`` call (data, fit, calibration,
  export, registration). Late fusion's own time excludes its base models, which it reuses.

Late fusion stacks the image and text models trained just before it, fetched from the run's
own MLflow registry by alias (``models:/ipguard-image@challenger``), as a team would.
Everything (demo data, MLflow store, runs) is written under ``--workdir``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass
class Row:
    label: str
    model: str
    seconds: float
    metrics: pd.DataFrame  # metric, value, ci_low, ci_high
    split_file: Path
    notes: str = ""


def _models(args: argparse.Namespace) -> list[tuple[str, str, list[str]]]:
    """(label, description, overrides) per model, in training order (bases before stacking)."""
    image = [
        f"model.backbone={args.image_backbone}",
        f"trainer.max_epochs={args.epochs}",
    ]
    fusion = [
        f"model.image_backbone={args.image_backbone}",
        f"trainer.max_epochs={args.fusion_epochs or args.epochs}",
        f"model.modality_dropout={args.modality_dropout}",
    ]
    return [
        ("image", f"{args.image_backbone} {args.image_size}px", ["model=image", *image]),
        ("text_tfidf", "TF-IDF + logistic regression", ["model=text_tfidf"]),
        ("late_fusion", "stacker over the two above + tabular", ["model=late_fusion"]),
        # after late_fusion: it also registers as ipguard-text, and would become @challenger
        (
            "text_fasttext",
            "hashed word and character n-grams (EmbeddingBag)",
            ["model=text_fasttext", f"trainer.max_epochs={args.epochs}"],
        ),
        (
            "fusion",
            f"{args.image_backbone} {args.image_size}px + hashed n-grams + tabular, "
            f"modality dropout {args.modality_dropout}",
            ["model=fusion", *fusion],
        ),
    ]


def _test_metrics(model_dir: Path, frame: pd.DataFrame, root: Path) -> pd.DataFrame:
    """Score the test split through the exported model and measure it at its own policy."""
    from ipguard.data.columns import label_array
    from ipguard.evaluation.metrics import metrics_with_ci
    from ipguard.serving.scorer import ListingScorer

    scorer = ListingScorer.load(model_dir)
    request = frame.drop(columns=["label"]).assign(
        image_path=[str(root / p) for p in frame["image_path"]]
    )
    scores = scorer.score(request)["score"].to_numpy(dtype=float)
    if not np.isfinite(scores).all():
        raise RuntimeError(f"{model_dir}: the exported model left test listings unscored")
    return metrics_with_ci(scores, label_array(frame["label"]), scorer.policy, n_boot=500)


def _train(label: str, overrides: list[str], args: argparse.Namespace) -> tuple[Row, object]:
    from ipguard import compose, train

    out = Path(args.workdir) / "runs" / label
    common = [
        f"seed={args.seed}",
        f"data.manifest='${{ipguard.demo_manifest:${{paths.data_dir}}/demo,{args.demo_n}}}'",
        f"data.image_size={args.image_size}",
        f"paths.output_dir={out}",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "++onnx=false",  # ONNX export is a serving option, not part of what is compared
        f"++data.split.max_hash_distance={args.max_hash_distance}",
        f"data.augment={args.augment}",
    ]
    cfg = compose("train", [*common, *overrides])
    started = time.perf_counter()
    result = train(cfg)
    seconds = time.perf_counter() - started
    return Row(label, "", seconds, pd.DataFrame(), out / "splits.csv"), result


def _same_split(rows: list[Row]) -> None:
    first = pd.read_csv(rows[0].split_file)
    for row in rows[1:]:
        other = pd.read_csv(row.split_file)
        if not first.equals(other):
            raise RuntimeError(
                f"{row.split_file} differs from {rows[0].split_file}: the models did not see "
                "the same test split, so the comparison would be meaningless"
            )


def _cell(metrics: pd.DataFrame, name: str) -> str:
    row = metrics.set_index("metric").loc[name]
    return f"{row['value']:.3f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}]"


def markdown_table(rows: list[Row]) -> str:
    lines = [
        "| model | what | test AUROC | test AP | recall @ reject | precision @ reject "
        "| train time (s) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        cells = [
            _cell(row.metrics, m)
            for m in ("auroc", "average_precision", "recall_at_reject", "precision_at_reject")
        ]
        lines.append(
            f"| {row.label} | {row.model} | {' | '.join(cells)} | {row.seconds:.0f}{row.notes} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default=None, help="where data, runs and MLflow go")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--demo-n", type=int, default=2000)
    parser.add_argument("--image-backbone", default="tiny_cnn")
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--augment", default="light", help="augmentation recipe of image models")
    parser.add_argument("--fusion-epochs", type=int, default=None, help="default: --epochs")
    parser.add_argument("--modality-dropout", type=float, default=0.2)
    parser.add_argument(
        "--max-hash-distance",
        type=int,
        default=1,
        help="near-duplicate radius of the group split; at the default 4 the demo photos chain "
        "into one group holding 95%% of the listings, leaving 50 test listings",
    )
    parser.add_argument("--only", nargs="*", default=None, help="labels to run (default all)")
    parser.add_argument("--out", default=None, help="also write the Markdown table here")
    args = parser.parse_args(argv)
    args.workdir = args.workdir or tempfile.mkdtemp(prefix="ipguard-compare-")
    os.environ["IPGUARD_HOME"] = str(Path(args.workdir).resolve())
    os.environ.pop("MLFLOW_TRACKING_URI", None)

    rows: list[Row] = []
    for label, description, overrides in _models(args):
        if args.only and label not in args.only:
            continue
        row, result = _train(label, overrides, args)
        row.model = description
        if label == "late_fusion":
            row.notes = " (+ bases)"
        dm_frame, root = _test_frame(args, row.split_file)
        row.metrics = _test_metrics(result.model_dir, dm_frame, root)  # type: ignore[attr-defined]
        rows.append(row)
        print(f"{label}: {row.seconds:.0f} s, {_cell(row.metrics, 'average_precision')} AP")
    _same_split(rows)
    table = markdown_table(rows)
    header = (
        f"demo data n={args.demo_n}, seed {args.seed}, group split (same splits.csv for every "
        f"model); {sum(1 for _ in _test_ids(rows[0].split_file))} test listings\n\n"
    )
    print(header + table)
    if args.out:
        Path(args.out).write_text(header + table + "\n")
    return table


def _test_ids(split_file: Path) -> list[str]:
    splits = pd.read_csv(split_file)
    return splits.loc[splits["split"] == "test", "listing_id"].astype(str).tolist()


def _test_frame(args: argparse.Namespace, split_file: Path) -> tuple[pd.DataFrame, Path]:
    """The test listings of the demo manifest, in manifest order, as the runs split them."""
    root = Path(args.workdir).resolve() / "data" / "demo"
    manifest = pd.read_csv(root / "listings.csv", dtype=str, keep_default_na=False, na_values=[""])
    test = manifest[manifest["listing_id"].isin(set(_test_ids(split_file)))]
    return test.reset_index(drop=True), root


if __name__ == "__main__":
    main()
