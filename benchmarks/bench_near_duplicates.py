"""How long near-duplicate grouping and a leakage-safe split take at marketplace scale.

Run: ``python benchmarks/bench_near_duplicates.py [--n 200000] [--max-distance 4]``

The hashes are random 64-bit values, a share of them (``--copy-share``) replaced by copies of
others with up to ``max_distance`` bits flipped, so the grouping has real duplicates to join
and the result can be checked: every copy must share its original's group. The split half
times :func:`assign_splits` on a manifest of the same size with those hashes given. Timings
are printed, not asserted: they depend on the machine.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from ipguard.data.near_duplicates import near_duplicate_groups
from ipguard.data.splits import SplitConfig, assign_splits, leakage_report


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
    print(f"{label:<44} {time.perf_counter() - start:7.2f} s")
    return result


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
    args = parser.parse_args()
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

    df = _manifest(args.n, rng)
    configs = {
        "group": SplitConfig(seed=args.seed),
        "time": SplitConfig(strategy="time"),
        "time, group_column=None": SplitConfig(strategy="time", group_column=None),
        "random": SplitConfig(strategy="random", seed=args.seed),
    }
    for name, config in configs.items():
        splits = _timed(
            f"assign_splits({name})",
            lambda config=config: assign_splits(df, config, hashes=hashes),
        )
        report = leakage_report(df, splits, hashes=hashes)
        shares = {k: round(v, 3) for k, v in report.infringing_share.items()}
        print(
            f"  sizes {report.split_sizes}, infringing share {shares}, sellers crossing "
            f"{report.sellers_crossing}, duplicate groups crossing "
            f"{report.duplicate_groups_crossing}"
        )


if __name__ == "__main__":
    main()
