"""The three text models on one demo test split: AUROC and recall at 95 % precision, overall
and per language, with training time.

Run (on a shared machine, inside the CPU lock)::

    flock /tmp/ipguard-cpu.lock python benchmarks/text_models.py --workdir /tmp/ipguard-text

Each model is trained by ``ipguard.train`` exactly as ``ipguard-train model=<name>`` would, on
the default demo data (2000 listings, leakage-safe group split) with one seed, so all three
see the same test split; the script checks that by comparing the ``splits.csv`` each run
saved, and stops if they differ. Metrics are computed on the calibrated test scores the run
returns. Recall at 95 % precision is the best recall any threshold reaches at that precision
on the test split itself (an upper bound of what a fitted policy gets), per language too.
Training time is the wall-clock seconds of the ``train()`` call with ``register=false``: data
split, fit, calibration and test evaluation (the demo data is generated beforehand and not
counted). Everything (demo data, MLflow store, runs) is written under ``--workdir``.
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

PRECISION = 0.95
MODELS = {
    "text_tfidf": "TF-IDF word 1-2 + char 2-5 n-grams, logistic regression",
    "text_fasttext": "hashed word + char n-gram bag (fastText-style), 2^18 x 64",
    "text_minilm": "all-MiniLM-L6-v2 frozen, cached embeddings + layer norm + linear head",
}


@dataclass
class Run:
    model: str
    seconds: float
    scores: np.ndarray  # calibrated, test split order
    split_file: Path


def _train(model: str, overrides: list[str]) -> Run:
    from ipguard import config
    from ipguard.jobs.train import train

    cfg = config.compose("train", [f"model={model}", "register=false", *overrides])
    start = time.perf_counter()
    result = train(cfg)
    seconds = time.perf_counter() - start
    print(f"{model}: val AUROC {result.metrics.get('val/auroc_best', float('nan')):.3f}")
    return Run(model, seconds, result.extra["test_scores"], result.output_dir / "splits.csv")


def _test_frame(manifest: Path, split_file: Path) -> pd.DataFrame:
    """Test listings in the order ``train()`` scored them (the order of ``splits.csv``)."""
    splits = pd.read_csv(split_file)
    ids = splits.loc[splits["split"] == "test", "listing_id"]
    frame = pd.read_csv(manifest).set_index("listing_id").loc[ids].reset_index()
    if "language" not in frame or frame["language"].isna().all():
        from ipguard.text.language import detect_languages

        frame["language"] = detect_languages(frame["title"].tolist())
    return frame


def _metrics(frame: pd.DataFrame, scores: np.ndarray) -> pd.DataFrame:
    """AUROC (via the per-slice metrics) and recall at 95 % precision, overall and per language."""
    from ipguard.data.columns import label_array
    from ipguard.evaluation.metrics import auroc, recall_at_precision
    from ipguard.evaluation.slices import sliced_metrics

    labels = label_array(frame["label"])
    scored = frame.assign(score=scores, label=labels)
    rows = [
        {
            "slice": "all",
            "n": len(frame),
            "positives": int(labels.sum()),
            "auroc": auroc(scores, labels),
            "recall": recall_at_precision(scores, labels, PRECISION)[0],
        }
    ]
    per_language = sliced_metrics(scored, columns=["language"])
    for item in per_language.itertuples(index=False):
        mask = (scored["language"].fillna("<missing>") == item.value).to_numpy()
        rows.append(
            {
                "slice": item.value,
                "n": item.n,
                "positives": item.positives,
                "auroc": item.auroc,
                "recall": recall_at_precision(scores[mask], labels[mask], PRECISION)[0],
            }
        )
    return pd.DataFrame(rows)


def _fmt(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:.3f}"


def _table(runs: list[Run], frame: pd.DataFrame) -> str:
    metrics = {run.model: _metrics(frame, run.scores) for run in runs}
    first = metrics[runs[0].model]
    head = "| slice | n (infringing) | " + " | ".join(
        f"{run.model} AUROC | {run.model} R@P{PRECISION:.0%}" for run in runs
    )
    lines = [head + " |", "|" + " --- |" * (2 + 2 * len(runs))]
    for i, row in first.iterrows():
        cells = [f"{row['slice']}", f"{row['n']} ({row['positives']})"]
        for run in runs:
            m = metrics[run.model].iloc[i]
            cells += [_fmt(m["auroc"]), _fmt(m["recall"])]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append(
        "| training time (s) | | " + " | ".join(f"{run.seconds:.1f} | " for run in runs) + " |"
    )
    models = "\n".join(f"- `{run.model}`: {MODELS.get(run.model, '')}" for run in runs)
    return "\n".join(lines) + "\n\n" + models + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    parser.add_argument(
        "overrides",
        nargs="*",
        help="extra Hydra overrides for every run, e.g. trainer.max_epochs=4",
    )
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ipguard-text-"))
    workdir.mkdir(parents=True, exist_ok=True)
    os.environ["IPGUARD_HOME"] = str(workdir)
    os.environ.pop("MLFLOW_TRACKING_URI", None)

    from ipguard import config

    # reading the default data config's manifest generates the demo data, before the clock
    manifest = Path(config.compose("train", [f"seed={args.seed}"]).data.manifest)
    overrides = [f"seed={args.seed}", *args.overrides]
    runs = []
    for model in args.models:
        runs.append(_train(model, overrides))
        print(f"{model}: trained in {runs[-1].seconds:.1f} s", flush=True)
    splits = [pd.read_csv(run.split_file) for run in runs]
    if any(not s.equals(splits[0]) for s in splits[1:]):
        raise SystemExit("the runs saw different splits; their test metrics are not comparable")
    table = _table(runs, _test_frame(manifest, runs[0].split_file))
    print(table)
    if args.out:
        args.out.write_text(table)


if __name__ == "__main__":
    main()
