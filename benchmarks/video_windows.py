"""Whole-clip and window-level test AUROC of a trained video model, on its own test split.

Run (inside the CPU lock on a shared machine)::

    IPGUARD_HOME=DIR python benchmarks/video_windows.py --run RUN_DIR --manifest VIDEOS.CSV
        [--checkpoint CKPT] [--per-clip 8] [--min-s 2] [--max-s 8]

``RUN_DIR`` is a training run's output folder (``splits.csv``, ``checkpoints/``); the data
module is composed as ``experiment=video`` with that split file, so the test clips are the run's
and their frame features come from the cache under ``IPGUARD_HOME`` (no decoding when the run
cached them). Windows are drawn from each test clip's cached frames and labelled as for training
(:mod:`ipguard.data.video_windows`: by the clip's ``infringement_spans`` where given, else the
clip's label), the same draw for every model (the seed is the data module's). Nothing is
asserted; the figures go to docs/video.md.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from sklearn.metrics import roc_auc_score

from ipguard.data.video_windows import WindowConfig

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


def best_checkpoint(run: Path) -> Path:
    """The run's best checkpoint (``epochNN-aurocX.ckpt``), else ``last.ckpt``."""
    found = sorted((run / "checkpoints").glob("epoch*.ckpt"))
    if found:
        return found[-1]
    last = run / "checkpoints" / "last.ckpt"
    if not last.is_file():
        raise FileNotFoundError(f"{run}/checkpoints: no checkpoint")
    return last


def main() -> None:
    from hydra.utils import instantiate

    from ipguard.config import compose
    from ipguard.models.video_classifier import VideoClassifier

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--per-clip", type=int, default=8)
    parser.add_argument("--min-s", type=float, default=2.0)
    parser.add_argument("--max-s", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    checkpoint = args.checkpoint or best_checkpoint(args.run)
    model = VideoClassifier.load_from_checkpoint(checkpoint, map_location="cpu").eval()
    cfg = compose(
        "train",
        [
            "experiment=video",
            f"data.manifest={args.manifest}",
            f"data.split_file={args.run / 'splits.csv'}",
            f"seed={args.seed}",
        ],
    )
    dm = instantiate(cfg.data)
    dm.setup("test")
    dm.configure_inputs(
        modalities=model.modalities,
        preprocessing=model.preprocessing,
        image_embedder=model.image_embedder(),
    )
    out: dict[str, object] = {"checkpoint": str(checkpoint)}
    config = WindowConfig(min_s=args.min_s, max_s=args.max_s, per_clip=args.per_clip,
                          keep_clips=False)  # fmt: skip
    for split in ("val", "test"):
        clip_scores = model.predict_scores(dm.loader(split))
        clip_labels = dm.dataset(split).labels
        loader = dm.window_loader(split, config)
        window_scores = model.predict_scores(loader)
        window_labels = loader.dataset.labels
        out[split] = {
            "clips": len(clip_labels),
            "clip_auroc": round(float(roc_auc_score(clip_labels, clip_scores)), 4),
            "windows": len(window_labels),
            "infringing_windows": int(window_labels.sum()),
            "window_auroc": round(float(roc_auc_score(window_labels, window_scores)), 4),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
