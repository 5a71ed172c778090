"""How long near-duplicate grouping and a leakage-safe split take at marketplace scale.

Two modes:

``python benchmarks/bench_near_duplicates.py [--n 200000] [--max-distance 4]``
    Random 64-bit pHashes, a share of them (``--copy-share``) replaced by copies of others with
    up to ``max_distance`` bits flipped, so the grouping has real duplicates to join and the
    result can be checked: every copy must share its original's group. The split half times
    :func:`assign_splits` on a manifest of the same size with those hashes given.

``python benchmarks/bench_near_duplicates.py --studio 3000`` (or ``--studio 200000
--image-size 64 --workers 2``)
    A catalogue of look-alike studio photos from :mod:`ipguard.demo.catalogue` (one seller per
    10 listings), hashed from its image files as the split does. Prints the photo-signature
    clusters (pairs the band index compared, per row; pairs within the distance; cluster
    sizes), the default split's report, how many copied photos cross splits, the ideal groups
    from the generator's truth, and, for comparison, transitive pHash grouping.

Timings are printed, not asserted: they depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ipguard.data.near_duplicates import (
    connected_groups,
    image_hashes,
    near_duplicate_clusters,
    near_duplicate_groups,
)
from ipguard.data.splits import SplitConfig, assign_splits, leakage_report, split_manifest


def _hashes_with_copies(
    n: int, copy_share: float, max_distance: int, rng: np.random.Generator
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Random hashes where some rows copy an earlier row with a few bits flipped."""
    values = rng.integers(0, 2**64, size=n, dtype=np.uint64)
    # Ascending, so an original that is itself a copy already has its final value.
    copies = np.sort(rng.choice(np.arange(1, n), size=int(n * copy_share), replace=False))
    originals = (rng.random(len(copies)) * copies).astype(np.int64)  # an earlier row
    for copy, original in zip(copies.tolist(), originals.tolist(), strict=True):
        flips = rng.choice(64, size=int(rng.integers(0, max_distance + 1)), replace=False)
        values[copy] = values[original] ^ np.uint64(sum(1 << int(b) for b in flips))
    return [f"{v:016x}" for v in values.tolist()], copies, originals


def _manifest(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Listings from ~n/10 sellers, a quarter of them infringing, over one year."""
    sellers = rng.integers(0, max(3, n // 10), size=n)
    return pd.DataFrame(
        {
            "listing_id": [f"L{i}" for i in range(n)],
            "seller_id": [f"s{s}" for s in sellers.tolist()],
            "listed_at": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 365 * 24 * 3600, size=n), unit="s"),
            "label": np.where(sellers % 4 == 0, "infringing", "genuine"),
        }
    )


def _timed(label: str, func):
    start = time.perf_counter()
    result = func()
    print(f"{label:<52} {time.perf_counter() - start:8.2f} s", flush=True)
    return result


def _random_hashes(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(args.seed)
    hashes, copies, originals = _hashes_with_copies(args.n, args.copy_share, args.max_distance, rng)
    groups = _timed(
        f"near_duplicate_groups(n={args.n}, d={args.max_distance})",
        lambda: near_duplicate_groups(hashes, max_distance=args.max_distance),
    )
    missed = int((groups[copies] != groups[originals]).sum())
    print(f"  {groups.max() + 1} groups; copies not grouped with their original: {missed}")
    if missed:
        raise SystemExit("grouping missed planted near-duplicates")
    clusters = _timed(
        f"near_duplicate_clusters(n={args.n}, d={args.max_distance})",
        lambda: near_duplicate_clusters(hashes, max_distance=args.max_distance),
    )
    print(
        f"  {clusters.labels.max() + 1} clusters; {clusters.candidate_pairs} pairs compared, "
        f"{clusters.close_pairs} within the distance"
    )

    df = _manifest(args.n, rng)
    configs = {
        "group": SplitConfig(seed=args.seed, max_hash_distance=args.max_distance),
        "time": SplitConfig(strategy="time"),
        "time, group_column=None": SplitConfig(strategy="time", group_column=None),
        "random": SplitConfig(strategy="random", seed=args.seed),
    }
    for name, config in configs.items():
        splits = _timed(
            f"assign_splits({name})",
            lambda config=config: assign_splits(df, config, hashes=hashes),
        )
        report = leakage_report(df, splits, hashes=hashes, max_hash_distance=args.max_distance)
        shares = {k: round(v, 3) for k, v in report.infringing_share.items()}
        print(
            f"  sizes {report.split_sizes}, infringing share {shares}, sellers crossing "
            f"{report.sellers_crossing}, duplicate groups crossing "
            f"{report.duplicate_groups_crossing}"
        )


def _edges(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row joined to the first row with its label."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    return first[inverse.reshape(-1)], np.arange(len(labels))


def _largest_share(n: int, *edge_sets: tuple[np.ndarray, np.ndarray]) -> tuple[int, float]:
    groups = connected_groups(
        n, np.concatenate([e[0] for e in edge_sets]), np.concatenate([e[1] for e in edge_sets])
    )
    sizes = np.bincount(groups)
    return len(sizes), float(sizes.max() / n)


def _studio(args: argparse.Namespace) -> None:
    from ipguard.demo.catalogue import make_catalogue

    n = args.studio
    folder = Path(args.work_dir or tempfile.mkdtemp(prefix="ipguard-bench-studio-"))
    catalogue = _timed(
        f"make_catalogue({n} listings, {args.image_size} px, workers={args.workers})",
        lambda: make_catalogue(
            folder,
            n_listings=n,
            n_sellers=max(3, n // 10),
            seed=args.seed,
            image_size=args.image_size,
            workers=args.workers,
        ),
    )
    df = pd.read_csv(catalogue.manifest_path, dtype=str, keep_default_na=False)
    truth = pd.read_csv(catalogue.truth_path, dtype=str, keep_default_na=False)
    truth = truth.set_index("listing_id").loc[df["listing_id"]].reset_index()
    files = list(dict.fromkeys(df["image_path"]))
    threads = min(8, os.cpu_count() or 1)
    by_file = _timed(
        f"photo signatures of {len(files)} files ({threads} threads)",
        lambda: dict(
            zip(
                files,
                image_hashes([folder / f for f in files], workers=threads, kind="signature"),
                strict=True,
            )
        ),
    )
    signatures = [by_file[p] for p in df["image_path"]]
    clusters = _timed(
        "near_duplicate_clusters(signatures)", lambda: near_duplicate_clusters(signatures)
    )
    sizes = np.bincount(clusters.labels)
    compared = clusters.candidate_pairs
    print(
        f"  distance <= {clusters.max_distance}: {compared} pairs compared ({compared / n:.1f} "
        f"per row, {compared / (n * (n - 1) / 2):.1e} of all pairs), "
        f"{clusters.close_pairs} within the distance; {len(sizes)} clusters, "
        f"the largest {sizes.max()} rows, {int((sizes > 1).sum())} with more than one row"
    )
    result = _timed(
        "split_manifest(default config, hashes given)",
        lambda: split_manifest(df, hashes=signatures),
    )
    print(f"  {result.report.describe()}")
    shown = pd.DataFrame({"photo": truth["photo_id"], "split": result.splits.to_numpy()})
    copied = truth.loc[truth["reupload"] != "", "photo_id"].unique()
    crossing = int((shown.groupby("photo")["split"].nunique().loc[copied] > 1).sum())
    print(f"  copied photos: {len(copied)}, of which in more than one split: {crossing}")
    sellers = _edges(pd.factorize(df["seller_id"])[0])
    ideal = _largest_share(n, sellers, _edges(pd.factorize(truth["photo_id"])[0]))
    print(f"  ideal (generator truth): {ideal[0]} groups, the largest {ideal[1]:.1%} of rows")
    if args.phash:
        phashes = _timed(
            f"pHashes of {len(files)} files ({threads} threads)",
            lambda: dict(
                zip(files, image_hashes([folder / f for f in files], workers=threads), strict=True)
            ),
        )
        row_phashes = [phashes[p] for p in df["image_path"]]
        groups = _timed(
            "near_duplicate_groups(pHashes, d=4), transitive",
            lambda: near_duplicate_groups(row_phashes),
        )
        chained = _largest_share(n, sellers, _edges(groups))
        print(f"  transitive pHash + sellers: {chained[0]} groups, the largest {chained[1]:.1%}")
    print(f"  catalogue kept in {folder}" if args.work_dir else f"  (delete {folder} when done)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="number of hashes / listings")
    parser.add_argument("--max-distance", type=int, default=4, help="Hamming distance")
    parser.add_argument(
        "--copy-share",
        type=float,
        default=0.02,
        help="share of rows that copy another row's photo (each copy joins two random sellers, "
        "so above ~0.1 most sellers chain into one giant leakage group)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--studio", type=int, help="benchmark a studio catalogue of N listings")
    parser.add_argument("--image-size", type=int, default=112, help="studio photo side (px)")
    parser.add_argument("--workers", type=int, default=0, help="processes rendering the photos")
    parser.add_argument("--work-dir", help="where to write the catalogue (default: a temp dir)")
    parser.add_argument("--phash", action="store_true", help="also group by transitive pHash")
    args = parser.parse_args()
    if args.studio:
        _studio(args)
    else:
        _random_hashes(args)


if __name__ == "__main__":
    main()
