"""Time and peak memory of the data layer on a 200,000-row manifest, against 20,000 rows.

Run (inside the CPU lock on a shared machine; Linux, since memory is read from /proc)::

    flock /tmp/ipguard-cpu.lock python benchmarks/manifest_scale.py [--rows 200000]
        [--small-rows 20000] [--pool 3000] [--batches 30] [--work-dir DIR]

The manifests are made from a pool of real demo listings (``--pool`` rows and their JPEGs,
generated once under ``--work-dir``): each pool row is replicated with a unique id, its own
seller (``S00012-r045`` is replica 45 of seller S00012, so each replica is a marketplace of
its own), a jittered ``listed_at`` and price, and the pool's image file, so the disk holds
only the pool's few thousand photos. A "dirty" copy has 0.5% bad rows of eight kinds.

Every stage runs in a fresh Python process, so one stage's memory cannot hide another's. The
process loads its input first, then measures only the stage: wall time, RSS before it, and
its peak RSS (the kernel's high-water mark, reset just before the stage where Linux allows
it, else sampled every 20 ms). DataLoader workers are forked, so their RSS would count the
parent's shared pages again; their proportional set size (PSS) is sampled and summed instead.

Two stages are measured differently on purpose:

- image hashing runs on the pool's distinct files; its per-image rate times the row count
  estimates what hashing that many distinct photos would take.
- the splits at scale get per-row hashes without decoding: replica r's hash is the pool
  image's pHash XOR a random 64-bit mask for r. XOR with one mask keeps Hamming distances, so
  every near-duplicate pair of the demo data stays one within its replica, while replicas'
  photos are unrelated, as distinct listings' photos are.

Prints a Markdown table. Timings depend on the machine and its load; none is asserted.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

_MB = 1024 * 1024
_BAD_SHARE = 0.005
_BATCH_SIZE = 32
_IMAGE_SIZE = 128
_SAMPLE_SECONDS = 0.02
_HASHES_FILE = "pool_hashes.json"
_RESULT_PREFIX = "RESULT "
_REPLICA = re.compile(r"-r(\d+)$")

# (what is wrong, column, value written); None copies the previous row's listing_id.
_SPOILERS: tuple[tuple[str, str, str | None], ...] = (
    ("blank title", "title", "  "),
    ("unknown label", "label", "fake"),
    ("negative price", "price", "-5"),
    ("market written UK", "market", "UK"),
    ("non-ISO timestamp", "listed_at", "03/04/2024"),
    ("image path escaping the folder", "image_path", "../outside.jpg"),
    ("image file missing", "image_path", "images/not-there.jpg"),
    ("duplicate listing_id", "listing_id", None),
)


# --- memory and time --------------------------------------------------------------------------


def _status_bytes(field: str, pid: int | str = "self") -> int:
    """A ``Vm*`` field of /proc/<pid>/status in bytes (0 if the process is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else 0


def _pss_bytes(pid: int) -> int:
    """Proportional set size: shared pages divided among the processes sharing them."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    match = re.search(r"^Pss:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else 0


def _reset_peak() -> bool:
    """Reset this process's RSS high-water mark (Linux >= 4.0); False where not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@contextmanager
def measured() -> Iterator[dict[str, float]]:
    """Wall time, RSS before, peak RSS, and peak summed PSS of child processes (workers)."""
    result: dict[str, float] = {}
    before = _status_bytes("VmRSS")
    exact = _reset_peak()
    peaks = {"main": before, "workers": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(_SAMPLE_SECONDS):
            peaks["main"] = max(peaks["main"], _status_bytes("VmRSS"))
            children = multiprocessing.active_children()
            peaks["workers"] = max(peaks["workers"], sum(_pss_bytes(c.pid) for c in children))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    try:
        yield result
    finally:
        result["wall_s"] = time.perf_counter() - start
        stop.set()
        sampler.join()
        peak = _status_bytes("VmHWM") if exact else peaks["main"]
        result["rss_before_mb"] = before / _MB
        result["peak_rss_mb"] = max(peak, before) / _MB
        result["workers_pss_mb"] = peaks["workers"] / _MB


# --- building the manifests -----------------------------------------------------------------


def build_manifest(pool: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """``n`` rows replicated from the pool: unique ids, one set of sellers per replica."""
    parts = []
    for r in range(-(-n // len(pool))):
        part = pool.copy()
        suffix = f"-r{r:03d}"
        part["listing_id"] = part["listing_id"] + suffix
        part["seller_id"] = part["seller_id"] + suffix
        jitter = pd.to_timedelta(rng.integers(-7 * 86400, 7 * 86400, size=len(part)), unit="s")
        stamps = pd.to_datetime(part["listed_at"], utc=True, format="ISO8601") + jitter
        part["listed_at"] = stamps.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        price = pd.to_numeric(part["price"]) * rng.uniform(0.9, 1.1, size=len(part))
        part["price"] = price.round(2).astype(str)
        parts.append(part)
    return pd.concat(parts, ignore_index=True).head(n)


def spoil(df: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """A copy with ``_BAD_SHARE`` of the rows broken, cycling through :data:`_SPOILERS`."""
    df = df.copy()
    n_bad = int(len(df) * _BAD_SHARE)
    rows = np.sort(rng.choice(np.arange(1, len(df)), size=n_bad, replace=False))
    for k, (_, column, value) in enumerate(_SPOILERS):
        picked = rows[k :: len(_SPOILERS)]
        if value is None:
            df.loc[picked, column] = df.loc[picked - 1, column].to_numpy()
        else:
            df.loc[picked, column] = value
    return df


def _row_hashes(frame: pd.DataFrame, pool_hashes: dict[str, str | None]) -> list[str | None]:
    """Per-row pHash: the pool image's hash XOR a random mask per replica (see module doc)."""
    replica = frame["listing_id"].str.extract(_REPLICA, expand=False).astype(int).to_numpy()
    masks = np.random.default_rng(0).integers(0, 2**63, size=replica.max() + 1, dtype=np.int64)
    masks[0] = 0
    out: list[str | None] = []
    for path, r in zip(frame["image_path"].tolist(), replica.tolist(), strict=True):
        value = pool_hashes.get(path) if isinstance(path, str) else None
        out.append(None if value is None else f"{int(value, 16) ^ int(masks[r]):016x}")
    return out


# --- stages (each runs in its own process) ---------------------------------------------------


def _valid_frame(manifest: Path) -> pd.DataFrame:
    """The validated rows, cached as Parquet by the validate stage so later stages start fast."""
    return pd.read_parquet(manifest.with_suffix(".valid.parquet"))


def stage_validate(manifest: Path, mode: str, work: Path) -> dict[str, Any]:
    from ipguard.data.schema import load_manifest

    rejects = work / f"{manifest.stem}.rejects.csv"
    with measured() as result:
        validated = load_manifest(
            manifest, on_error=mode, rejects_path=rejects if mode == "quarantine" else None
        )
    result["note"] = (
        f"rows_in={validated.rows_in} valid={validated.rows_valid} "
        f"rejected={validated.rows_rejected}"
    )
    if mode == "raise":
        validated.valid.to_parquet(manifest.with_suffix(".valid.parquet"))
    return result


def stage_fingerprint(manifest: Path, work: Path) -> dict[str, Any]:
    from ipguard.data.fingerprint import dataset_fingerprint

    frame = _valid_frame(manifest)
    with measured() as result:
        digest = dataset_fingerprint(frame, manifest.parent)
    distinct = frame["image_path"].nunique()
    result["note"] = (
        f"sha256 {digest[:12]}...; an image read per row, {distinct} distinct files (OS-cached)"
    )
    return result


def stage_hash_pool(manifest: Path, work: Path) -> dict[str, Any]:
    from ipguard.data.near_duplicates import image_hashes

    paths = sorted(pd.read_csv(manifest, usecols=["image_path"])["image_path"].dropna().unique())
    workers = min(8, os.cpu_count() or 1)  # what assign_splits uses
    with measured() as result:
        hashes = image_hashes([manifest.parent / p for p in paths], workers=workers)
    (work / _HASHES_FILE).write_text(json.dumps(dict(zip(paths, hashes, strict=True))))
    per_image = result["wall_s"] / len(paths)
    result["per_image_ms"] = 1000 * per_image
    result["note"] = (
        f"{len(paths)} distinct files, {workers} threads: {1000 * per_image:.2f} ms/image"
    )
    return result


def stage_split(manifest: Path, work: Path, strategy: str) -> dict[str, Any]:
    from ipguard.data.splits import SplitConfig, assign_splits

    frame = _valid_frame(manifest)
    pool_hashes = json.loads((work / _HASHES_FILE).read_text())
    hashes = _row_hashes(frame, pool_hashes)
    config = {
        "group": SplitConfig(seed=0),
        "time": SplitConfig(strategy="time"),
        "time-latest": SplitConfig(strategy="time", time_groups="latest"),
    }[strategy]
    with measured() as result:
        splits = assign_splits(frame, config, hashes=hashes)
    sizes = splits.value_counts()
    result["note"] = "train/val/test = " + "/".join(
        str(int(sizes.get(s, 0))) for s in ("train", "val", "test")
    )
    return result


def stage_dataset(manifest: Path, work: Path, workers: int, batches: int) -> dict[str, Any]:
    import torch
    from torch.utils.data import DataLoader

    from ipguard.data.datasets import ListingDataset
    from ipguard.data.transforms import Preprocessing, build_train_transform

    frame = _valid_frame(manifest)
    torch.manual_seed(0)
    with measured() as result:
        start = time.perf_counter()
        pre = Preprocessing(image_size=_IMAGE_SIZE)
        dataset = ListingDataset(
            frame,
            manifest.parent,
            transform=build_train_transform("standard", pre),
            image_size=_IMAGE_SIZE,
        )
        build_s = time.perf_counter() - start
        loader = DataLoader(dataset, batch_size=_BATCH_SIZE, shuffle=True, num_workers=workers)
        times = []
        iterator = iter(loader)
        for _ in range(batches):
            start = time.perf_counter()
            next(iterator)
            times.append(time.perf_counter() - start)
        del iterator  # joins the workers inside the measured window
    steady = float(np.median(times[1:])) if len(times) > 1 else float("nan")
    result["note"] = (
        f"dataset built in {build_s:.1f} s (texts normalised); first batch {times[0]:.2f} s, "
        f"then median {1000 * steady:.0f} ms/batch of {_BATCH_SIZE} at {_IMAGE_SIZE}px"
    )
    return result


# --- orchestration ---------------------------------------------------------------------------


def _run_stage(args: argparse.Namespace, stage: str, manifest: Path, **extra: Any) -> dict:
    """Run one stage in a fresh interpreter and return its measurements."""
    command = [
        sys.executable,
        __file__,
        "--stage",
        stage,
        "--manifest",
        str(manifest),
        "--work-dir",
        str(args.work_dir),
        "--batches",
        str(args.batches),
    ]
    for key, value in extra.items():
        command += [f"--{key}", str(value)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith(_RESULT_PREFIX)]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"stage {stage} on {manifest.name} failed:\n{done.stderr[-3000:]}")
    result = json.loads(lines[-1][len(_RESULT_PREFIX) :])
    print(f"  {stage:<22} {manifest.name:<16} {result['wall_s']:8.2f} s", file=sys.stderr)
    return result


def _stage_main(args: argparse.Namespace) -> None:
    manifest = Path(args.manifest)
    work = Path(args.work_dir)
    stages: dict[str, Callable[[], dict[str, Any]]] = {
        "validate-raise": lambda: stage_validate(manifest, "raise", work),
        "validate-quarantine": lambda: stage_validate(manifest, "quarantine", work),
        "fingerprint": lambda: stage_fingerprint(manifest, work),
        "hash-pool": lambda: stage_hash_pool(manifest, work),
        "split": lambda: stage_split(manifest, work, args.strategy),
        "dataset": lambda: stage_dataset(manifest, work, args.workers, args.batches),
    }
    print(_RESULT_PREFIX + json.dumps(stages[args.stage]()))


def _prepare(args: argparse.Namespace) -> tuple[Path, dict[int, tuple[Path, Path]]]:
    """Generate the pool (once) and write a clean and a dirty manifest per size."""
    from ipguard.demo.listings import ensure_demo_data

    pool = ensure_demo_data(args.work_dir / "pool", n=args.pool, seed=0, image_size=_IMAGE_SIZE)
    frame = pd.read_csv(pool.manifest_path, dtype=str, keep_default_na=False)
    manifests: dict[int, tuple[Path, Path]] = {}
    for n in (args.small_rows, args.rows):
        rng = np.random.default_rng(n)
        clean = build_manifest(frame, n, rng)
        paths = (pool.root / f"scale-{n}.csv", pool.root / f"scale-{n}-dirty.csv")
        clean.to_csv(paths[0], index=False)
        spoil(clean, rng).to_csv(paths[1], index=False)
        manifests[n] = paths
    return pool.manifest_path, manifests


def _table(rows: list[tuple[str, int, dict[str, Any]]]) -> str:
    out = [
        "| stage | rows | wall (s) | RSS before (MB) | peak RSS (MB) | peak - before (MB) "
        "| workers PSS (MB) | notes |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, n, r in rows:
        workers = f"{r['workers_pss_mb']:.0f}" if r["workers_pss_mb"] else "-"
        out.append(
            f"| {name} | {n:,} | {r['wall_s']:.2f} | {r['rss_before_mb']:.0f} "
            f"| {r['peak_rss_mb']:.0f} | {r['peak_rss_mb'] - r['rss_before_mb']:.0f} "
            f"| {workers} | {r.get('note', '')} |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--small-rows", type=int, default=20_000)
    parser.add_argument("--pool", type=int, default=3000, help="demo listings (and images)")
    parser.add_argument("--batches", type=int, default=30, help="batches iterated per loader")
    parser.add_argument("--work-dir", type=Path, default=None, help="reused between runs")
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--manifest", help=argparse.SUPPRESS)
    parser.add_argument("--strategy", default="group", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not Path("/proc/self/status").exists():
        raise SystemExit("manifest_scale.py reads memory from /proc; run it on Linux")
    if args.stage:
        _stage_main(args)
        return
    if args.work_dir is None:
        args.work_dir = Path(tempfile.mkdtemp(prefix="ipguard-scale-"))
    args.work_dir.mkdir(parents=True, exist_ok=True)
    print(f"work dir {args.work_dir}", file=sys.stderr)
    pool_manifest, manifests = _prepare(args)

    rows: list[tuple[str, int, dict[str, Any]]] = []
    hashed = _run_stage(args, "hash-pool", pool_manifest)
    rows.append(("pHash of the pool's images", args.pool, hashed))
    for n, (clean, dirty) in manifests.items():
        rows.append(
            ("read + validate, raise (clean)", n, _run_stage(args, "validate-raise", clean))
        )
        rows.append(
            (
                "read + validate, quarantine (0.5% bad)",
                n,
                _run_stage(args, "validate-quarantine", dirty),
            )
        )
        rows.append(("fingerprint (rows + image bytes)", n, _run_stage(args, "fingerprint", clean)))
        for strategy in ("group", "time", "time-latest"):
            rows.append(
                (
                    f"split {strategy} (hashes given)",
                    n,
                    _run_stage(args, "split", clean, strategy=strategy),
                )
            )
        for workers in (0, 2):
            result = _run_stage(args, "dataset", clean, workers=workers)
            rows.append(
                (f"ListingDataset + {args.batches} batches, num_workers={workers}", n, result)
            )

    print(_table(rows))
    eager_gb = args.rows * 3 * _IMAGE_SIZE**2 * 4 / 1024**3
    print(
        f"\nHashing {args.rows:,} distinct photos at the measured rate: "
        f"~{hashed['per_image_ms'] * args.rows / 1000 / 60:.0f} min. Decoding {args.rows:,} "
        f"images eagerly as float32 {_IMAGE_SIZE}px tensors would hold {eager_gb:.0f} GB."
    )


if __name__ == "__main__":
    main()
