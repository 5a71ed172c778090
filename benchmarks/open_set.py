"""A brand added to the catalog only: protected without retraining? (issue 12, open set)

On the demo data one brand is held back: the fused model trains on the other brands' listings
with a reference catalog that does not know the held-back brand. Its listings are then scored
twice by the same weights: as trained (the brand unknown to the catalog) and after the model
folder is pointed at the full catalog (its official photos, logo, prices per currency,
authorised sellers and aliases added) with ``replace_catalog`` -- what ``ipguard-export
model_dir=... brands=FULL`` does. The held-back brand's slice gets AUROC, average precision
and recall at the reject threshold (with the precision there), each way.

Two models are trained: ``references`` (``model.references=true``: photo, logo and stolen-photo
features) and ``prices_only`` (the shipped fused model: the catalog gives only prices and brand
names), so the share of the reference features shows apart from the prices'.

``--catalogue N`` runs it on a generated studio catalogue of N listings instead
(``ipguard.demo.catalogue``: every product of a category shot alike, most counterfeits with a
subtly wrong mark) with the catalog its brands would hand over
(``ipguard.demo.catalogue_references``: three brand-shop photos, the logo, prices in six
currencies, shops and authorised dealers); ``--brand`` then names one of its brands.

Run (one heavy job at a time; about 5 minutes a model on 2 cores)::

    python benchmarks/open_set.py --work-dir /tmp/ipg-open-set [--brand Lumenor] [--seeds 0 1]
    python benchmarks/open_set.py --work-dir /tmp/ipg-open-studio --catalogue 3000 --brand Valtoro
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ipguard.config import compose
from ipguard.data.columns import label_array
from ipguard.data.io import image_file
from ipguard.demo.catalogue import make_catalogue
from ipguard.demo.catalogue_references import write_studio_catalog
from ipguard.demo.listings import ensure_demo_data
from ipguard.demo.open_set import hold_out_brand
from ipguard.evaluation.metrics import auroc, average_precision
from ipguard.jobs.train import train
from ipguard.models.brand_references import replace_catalog
from ipguard.serving.scorer import ListingScorer
from ipguard.serving.spec import ModelSpec

VARIANTS = {"references": ["model.references=true"], "prices_only": []}


def slice_figures(folder: Path, manifest: Path) -> dict[str, float]:
    """The held-back brand's listings scored by the model folder."""
    frame = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    frame["image_path"] = [str(image_file(manifest.parent, p)) for p in frame["image_path"]]
    labels = label_array(frame["label"])
    out = ListingScorer.load(folder).score(frame.drop(columns=["label"]))
    scores = out["score"].to_numpy(dtype=float)
    reject = (out["decision"] == "reject").to_numpy()
    infringing = labels == 1
    return {
        "auroc": auroc(scores, labels),
        "ap": average_precision(scores, labels),
        "recall_at_reject": float((reject & infringing).sum() / max(infringing.sum(), 1)),
        "precision_at_reject": float((reject & infringing).sum() / max(reject.sum(), 1)),
    }


def data_and_catalog(work: Path, catalogue: int) -> tuple[Path, Path]:
    """The listings and reference catalog: the demo's, or a studio catalogue's."""
    if not catalogue:
        demo = ensure_demo_data(work / "data" / "demo")
        return demo.manifest_path, demo.reference_catalog_path
    root = work / "data" / f"studio-{catalogue}"
    if not (root / "catalogue.json").exists():
        make_catalogue(root, n_listings=catalogue, n_sellers=max(30, catalogue // 10))
    return root / "listings.csv", write_studio_catalog(root, root / "brand_catalog")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--brand", default="Lumenor")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--overrides", nargs="*", default=[], help="extra train overrides")
    parser.add_argument("--catalogue", type=int, default=0, help="studio catalogue listings")
    args = parser.parse_args()
    work = args.work_dir.resolve()
    manifest, catalog = data_and_catalog(work, args.catalogue)
    held = hold_out_brand(manifest, catalog, args.brand, work / "open_set")
    print(
        f"held back {held.brand}: {held.n_new} listings; training on {held.n_known} "
        "listings of the other brands",
        flush=True,
    )
    rows = []
    for seed in args.seeds:
        for variant in args.variants:
            started = time.perf_counter()
            overrides = [
                "model=fusion",
                f"data.manifest={held.known_manifest}",
                f"data.brands={held.catalog_without}",
                f"paths.root_dir={work}",
                "trainer.enable_progress_bar=false",
                f"seed={seed}",
                *VARIANTS[variant],
                *args.overrides,
            ]
            result = train(compose("train", overrides))
            folder = result.output_dir / "model"
            before = slice_figures(folder, held.new_manifest)
            added = work / f"reexported_{variant}_{seed}"
            if added.exists():
                shutil.rmtree(added)
            shutil.copytree(folder, added)
            spec = ModelSpec.load(added)
            replace_catalog(added, spec, held.catalog_with)
            spec.save(added)
            after = slice_figures(added, held.new_manifest)
            seconds = time.perf_counter() - started
            for catalog, figures in (("without the brand", before), ("with the brand", after)):
                rows.append(
                    {
                        "model": variant,
                        "seed": seed,
                        "catalog": catalog,
                        "known_brands_test_auroc": result.metrics.get("test/auroc", np.nan),
                        **figures,
                    }
                )
            print(
                f"{variant} seed={seed}: {held.brand} AUROC {before['auroc']:.3f} -> "
                f"{after['auroc']:.3f}, recall@reject {before['recall_at_reject']:.3f} -> "
                f"{after['recall_at_reject']:.3f} ({seconds:.0f} s)",
                flush=True,
            )
    table = pd.DataFrame(rows)
    print(table.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
