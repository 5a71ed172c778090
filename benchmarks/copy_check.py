"""Stolen photos: does the copy check tell a copy of an official photo from a reshoot? (issue 12)

Two sets, because they fail differently:

- ``demo``: the demo's brands, each colourway's official photo against copies of it and
  against sellers' own shots of the same product in the demo's photo styles (backdrops,
  noise, tilt).
- ``studio``: a generated studio catalogue (``ipguard.demo.catalogue``): every product of a
  category shot alike on a light backdrop, several shots per item, and a catalog of each
  brand's genuine brand-store photos. Genuine listings of other items, counterfeits, the
  catalogue's own re-uploads of a catalog photo and scraped copies are verified against the
  claimed brand's catalog photos. Here a studio shot of another item shares the outline, the
  backdrop and the framing of the catalog photo: what the check must not call a copy.

Copies are cut as scrapers do (0-10% crop split at random between the edges, 50-100% size,
JPEG quality 40-90, a banner half the time). For each threshold: share of copies caught and
of genuine shots (and counterfeits) called copies, and whether a copy's best-scoring
reference is exactly its photo.

Run::

    python benchmarks/copy_check.py --work-dir /tmp/ipg-copy-check [--listings 3000]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ipguard.brands.copies import CopyVerifier, copy_signature
from ipguard.demo.catalogue import make_catalogue
from ipguard.demo.listings import BRANDS, _shot
from ipguard.demo.photos import ImageSpec, PhotoStyle, render_image
from ipguard.demo.references import official_photo, stolen_copy

THRESHOLDS = (0.6, 0.65, 0.7, 0.75, 0.8, 0.85)
Case = tuple[str, Image.Image, str]  # (claimed brand, photo, the reference it copies or "")


def scraped(photo: Image.Image, rng: np.random.Generator) -> Image.Image:
    return stolen_copy(
        photo,
        rng,
        crop=float(rng.uniform(0.0, 0.1)),
        scale=float(rng.uniform(0.5, 1.0)),
        quality=int(rng.integers(40, 91)),
        banner="SALE" if rng.random() < 0.5 else None,
    )


def demo_set(copies_each: int, shots_each: int, seed: int) -> tuple[dict[str, Image.Image], dict]:
    rng = np.random.default_rng(seed)
    references: dict[str, Image.Image] = {}
    cases: dict[str, list[Case]] = {"copies": [], "genuine": []}
    for brand in BRANDS:
        for colourway in brand.colourways:
            key = f"{brand.name}/{colourway}"
            references[key] = official_photo(brand, colourway, size=256)
            for _ in range(copies_each):
                cases["copies"].append((brand.name, scraped(references[key], rng), key))
            for _ in range(shots_each):
                style = PhotoStyle(
                    background=("solid", "gradient", "stripes", "studio")[int(rng.integers(4))],
                    bg_colour=tuple(int(c) for c in rng.integers(140, 256, size=3)),
                    noise=float(rng.uniform(0.0, 6.0)),
                    jpeg_quality=int(rng.integers(65, 96)),
                    tilt=float(rng.uniform(0.0, 10.0)),
                )
                spec = ImageSpec((_shot(brand, colourway),), style, "", "")
                cases["genuine"].append((brand.name, render_image(spec, 256, rng), ""))
    return references, cases


def studio_set(work: Path, listings: int, sample: int, seed: int) -> tuple[dict, dict]:
    root = work / f"studio-{listings}-{seed}"
    if not (root / "truth.csv").exists():
        make_catalogue(root, n_listings=listings, n_sellers=max(30, listings // 10), seed=seed)
    frame = pd.read_csv(
        root / "listings.csv", dtype=str, keep_default_na=False, sep=None, engine="python"
    )
    frame = frame.merge(pd.read_csv(root / "truth.csv", dtype=str, keep_default_na=False))
    frame = frame[frame.image_path != ""]
    original = frame[frame.reupload == ""]
    official = original[(original.seller_kind == "brand_store") & (original.label == "genuine")]
    official = official.drop_duplicates("photo_id").groupby("brand").head(3)
    references = {
        f"{r.brand}/{r.photo_id}": Image.open(root / r.image_path).convert("RGB")
        for r in official.itertuples()
    }
    others = original[~original.photo_id.isin(set(official.photo_id))].drop_duplicates("photo_id")
    rng = np.random.default_rng(seed)

    def pick(rows: pd.DataFrame) -> list[Case]:
        rows = rows.sample(n=min(sample, len(rows)), random_state=seed)
        return [
            (r.brand, Image.open(root / r.image_path).convert("RGB"), "") for r in rows.itertuples()
        ]

    copies = [
        (key.split("/")[0], scraped(image, rng), key)
        for key, image in references.items()
        for _ in range(2)
    ]
    reuploads = frame[(frame.reupload != "") & frame.photo_id.isin(set(official.photo_id))]
    copies += [
        (r.brand, Image.open(root / r.image_path).convert("RGB"), f"{r.brand}/{r.photo_id}")
        for r in reuploads.itertuples()
    ]
    cases = {
        "copies": copies,
        "genuine": pick(others[others.label == "genuine"]),
        "counterfeit": pick(others[others.label == "infringing"]),
    }
    return references, cases


def best_match(score: Callable[[Image.Image, str], float], keys: Iterable[str], photo: Image.Image):
    return max((score(photo, key), key) for key in keys)


def report(name: str, references: dict[str, Image.Image], cases: dict[str, list[Case]]) -> None:
    verifier = CopyVerifier({key: copy_signature(image) for key, image in references.items()})
    by_brand: dict[str, list[str]] = {}
    for key in references:
        by_brand.setdefault(key.split("/")[0], []).append(key)
    started, pairs = time.perf_counter(), 0
    scores: dict[str, np.ndarray] = {}
    exact = 0
    for kind, rows in cases.items():
        found = []
        for brand, photo, source in rows:
            score, key = best_match(verifier.score, by_brand[brand], photo)
            pairs += len(by_brand[brand])
            found.append(score)
            exact += int(bool(source) and key == source)
        scores[kind] = np.asarray(found)
    per_pair = 1000 * (time.perf_counter() - started) / max(pairs, 1)
    sizes = ", ".join(f"{len(rows)} {kind}" for kind, rows in cases.items())
    print(f"\n## {name}: {len(references)} references; {sizes}; {per_pair:.2f} ms a pair")
    kinds = list(cases)
    print("| threshold | " + " | ".join(f"{k} called copies" for k in kinds) + " |")
    print("| ---: |" + " ---: |" * len(kinds))
    for threshold in THRESHOLDS:
        shares = " | ".join(f"{100 * np.mean(scores[k] >= threshold):.1f}%" for k in kinds)
        print(f"| {threshold:.2f} | {shares} |")
    print(f"copies matched to exactly their photo: {exact} of {len(cases['copies'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/ipg-copy-check"))
    parser.add_argument("--listings", type=int, default=3000, help="studio catalogue size")
    parser.add_argument("--sample", type=int, default=400, help="genuine/counterfeit photos")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    report("demo brands", *demo_set(copies_each=3, shots_each=4, seed=args.seed))
    report("studio catalogue", *studio_set(args.work_dir, args.listings, args.sample, args.seed))


if __name__ == "__main__":
    main()
