"""Reference-index cost at catalog scale: build time, lookup latency and recall (issue 12, item 5).

A screening service looks up every new listing photo among the catalog's reference embeddings.
This times :class:`ipguard.brands.index.ReferenceIndex` -- with the index kind it chooses at each
size (exact below ``exact_below``, HNSW at or above it) -- at 1,000, 100,000 and 1,000,000
references of width 1280 (EfficientNet-Lite0's pooled features):

* build: the constructor (normalising, adding; for HNSW, building the graph);
* lookup: p50 of single-query searches (one listing), and the per-query time of batches of 64;
* recall@10 of the index against an exact scan of the same vectors.

The references are generated, clustered the way a catalog is (several photos per product:
``--per-cluster`` vectors around each random centre, ``--spread`` noise per coordinate), and the
queries are new draws around the same centres (another photo of a catalogued product). Above
``--memmap-mb`` the references are written in chunks to a memory-mapped file in a temporary
folder, so the process holds one copy (the index's own) and not two; the exact ground truth is
computed chunk by chunk from that file.

    python benchmarks/reference_index.py --sizes 1000 100000 [--dim 1280] [--markdown]

Figures depend on the machine and on what else runs on it; the load average is printed with them.
On the shared 2-core machine, HNSW over 1,000,000 x 1280 would take 40 minutes or more to build,
so docs/brand_protection.md reports 1,000,000 at ``--dim 128`` (and a forced exact scan at 1280,
``--exact-below 2000000``) instead; the table there names the command for each row.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from ipguard.brands.index import ReferenceIndex

CHUNK = 16_384
K = 10
BATCH = 64


def centres_for(count: int, dim: int, per_cluster: int, seed: int) -> np.ndarray:
    clusters = max(1, count // per_cluster)
    return np.random.default_rng([seed, 0]).standard_normal((clusters, dim), dtype=np.float32)


def draw(centres: np.ndarray, rows: int, spread: float, rng: np.random.Generator) -> np.ndarray:
    members = rng.integers(0, len(centres), size=rows)
    noise = rng.standard_normal((rows, centres.shape[1]), dtype=np.float32)
    noise *= spread
    noise += centres[members]
    return noise


def references(
    count: int, centres: np.ndarray, spread: float, seed: int, folder: Path | None
) -> np.ndarray:
    """The generated references, in memory or (``folder`` given) in a memory-mapped file."""
    dim = centres.shape[1]
    if folder is None:
        out = np.empty((count, dim), np.float32)
    else:
        out = np.lib.format.open_memmap(
            folder / "references.npy", mode="w+", dtype=np.float32, shape=(count, dim)
        )
    for number, start in enumerate(range(0, count, CHUNK)):
        stop = min(start + CHUNK, count)
        out[start:stop] = draw(
            centres, stop - start, spread, np.random.default_rng([seed, 1, number])
        )
    if folder is not None:
        out.flush()
    return out


def exact_top(refs: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Row numbers of the exact top-k by cosine, scanning ``refs`` a chunk at a time."""
    unit_q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    best_scores = np.full((len(queries), 0), -np.inf, np.float32)
    best_rows = np.zeros((len(queries), 0), np.int64)
    for start in range(0, len(refs), CHUNK * 4):
        block = np.asarray(refs[start : start + CHUNK * 4], dtype=np.float32)
        block = block / np.linalg.norm(block, axis=1, keepdims=True)
        scores = np.concatenate([best_scores, unit_q @ block.T], axis=1)
        numbers = np.arange(start, start + len(block))
        rows = np.concatenate(
            [best_rows, np.broadcast_to(numbers, (len(queries), len(block)))], axis=1
        )
        keep = np.argpartition(-scores, min(k, scores.shape[1]) - 1, axis=1)[:, :k]
        best_scores = np.take_along_axis(scores, keep, axis=1)
        best_rows = np.take_along_axis(rows, keep, axis=1)
    return best_rows


def timed_ms(call) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1000.0


def measure(args: argparse.Namespace, count: int, folder: Path) -> dict[str, object]:
    centres = centres_for(count, args.dim, args.per_cluster, args.seed)
    use_memmap = count * args.dim * 4 > args.memmap_mb * 2**20
    refs = references(count, centres, args.spread, args.seed, folder if use_memmap else None)
    ids = [f"r{i}" for i in range(count)]
    query_rng = np.random.default_rng([args.seed, 2])
    queries = draw(
        centres,
        max(args.singles, args.recall_queries, BATCH * args.batches),
        args.spread,
        query_rng,
    )

    start = time.perf_counter()
    index = ReferenceIndex(refs, ids, exact_below=args.exact_below)
    build_s = time.perf_counter() - start
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20

    index.search(queries[:1], k=K)  # warm-up
    singles = [
        timed_ms(lambda i=i: index.search(queries[i : i + 1], k=K)) for i in range(args.singles)
    ]
    batches = [
        timed_ms(lambda b=b: index.search(queries[b * BATCH : (b + 1) * BATCH], k=K)) / BATCH
        for b in range(args.batches)
    ]
    recall_q = queries[: args.recall_queries]
    _, found = index.search(recall_q, k=K)
    truth = exact_top(refs, recall_q, K)
    hits = sum(
        len({ids[r] for r in want} & set(got)) for want, got in zip(truth, found, strict=True)
    )
    return {
        "references": count,
        "dim": args.dim,
        "index": "exact (flat)" if index.exact else "HNSW",
        "build_s": build_s,
        "single_p50_ms": float(np.percentile(singles, 50)),
        "batch64_per_query_ms": float(np.median(batches)),
        "recall_at_10": hits / truth.size,
        "peak_rss_gb": rss_gb,
        "load_avg": os.getloadavg()[0],
    }


def markdown(rows: list[dict[str, object]]) -> str:
    lines = [
        "| references | dim | index | build | lookup p50, 1 listing | per listing, batch of 64 "
        "| recall@10 | peak RSS | load avg |",
        "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row['references']:,} | {row['dim']} | {row['index']} | {row['build_s']:.1f} s "
            f"| {row['single_p50_ms']:.2f} ms | {row['batch64_per_query_ms']:.3f} ms "
            f"| {row['recall_at_10']:.3f} | {row['peak_rss_gb']:.1f} GB | {row['load_avg']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--per-cluster", type=int, default=20, help="references per product")
    parser.add_argument("--spread", type=float, default=0.5, help="noise per coordinate")
    parser.add_argument(
        "--exact-below",
        type=int,
        default=50_000,
        help="ReferenceIndex's switch to HNSW (its default)",
    )
    parser.add_argument("--singles", type=int, default=200, help="single-query searches timed")
    parser.add_argument("--batches", type=int, default=5, help="batches of 64 timed")
    parser.add_argument("--recall-queries", type=int, default=256)
    parser.add_argument(
        "--memmap-mb",
        type=int,
        default=512,
        help="above this size the references live in a memory-mapped file",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where the memory-mapped references go (default: a temporary folder)",
    )
    args = parser.parse_args()

    print(
        f"# {platform.machine()}, {os.cpu_count()} cores, "
        f"IPGUARD_FAISS_THREADS={os.environ.get('IPGUARD_FAISS_THREADS', 'all')}",
        flush=True,
    )
    rows = []
    for count in args.sizes:
        with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
            row = measure(args, count, Path(tmp))
        rows.append(row)
        print(markdown([row]).splitlines()[-1], flush=True)
    print()
    print(markdown(rows))


if __name__ == "__main__":
    main()
