"""Scoring many listings at once: the rows of a manifest chunk or of a Spark partition.

The batch job (:mod:`ipguard.jobs.batch_score`) and Spark's executors
(:mod:`ipguard.jobs.spark_score`) both score through :func:`score_rows`, so the two give the
same output row for row. It lives in serving because a Spark executor imports it: it needs the
scorer, pandas and pyarrow, never Lightning, Hydra or the jobs.

Rows arrive as the manifest holds them (CSV cells as text, a price "abc", an image path
relative to the manifest's folder); :class:`~ipguard.serving.scorer.ListingScorer` coerces
and flags each value exactly as a screening service would, so a bad row is scored with what is
usable and flagged, never dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from ipguard.data.io import image_files
from ipguard.serving.inputs import INPUT_COLUMNS
from ipguard.serving.scorer import OUTPUT_COLUMNS, OUTPUT_TYPES, ListingScorer

__all__ = [
    "OUTPUT_ARROW_TYPES",
    "cached_scorer",
    "output_schema",
    "request_columns",
    "score_partitions",
    "score_rows",
    "to_arrow",
]

#: the contract's output columns as Arrow types (Parquet parts, Spark's schema)
OUTPUT_ARROW_TYPES: dict[str, pa.DataType] = {
    name: pa.float64() if kind == "double" else pa.string() for name, kind in OUTPUT_TYPES.items()
}

# One scorer per model folder and runtime in each process: a Spark Python worker scores many
# partitions and must not rebuild the network for each.
_SCORERS: dict[tuple[str, str], ListingScorer] = {}


def cached_scorer(folder: str | Path, runtime: str = "torch") -> ListingScorer:
    """The scorer of ``folder``, loaded once per process."""
    key = (str(Path(folder).resolve()), runtime)
    if key not in _SCORERS:
        _SCORERS[key] = ListingScorer.load(key[0], runtime=runtime)
    return _SCORERS[key]


def request_columns(available: Iterable[str]) -> list[str]:
    """The model contract's input columns among ``available``, in contract order: all a
    scorer reads, so a reader can leave a manifest's other columns (label, notes) on disk."""
    names = set(available)
    return [name for name in INPUT_COLUMNS if name in names]


def _with_image_root(frame: pd.DataFrame, root: str | Path | None) -> pd.DataFrame:
    """Relative ``image_path`` values resolved against ``root``, the manifest's folder, as
    training resolves them; absolute ones kept; blank ones missing."""
    if root is None or "image_path" not in frame:
        return frame
    paths = [None if p is None else str(p) for p in image_files(frame["image_path"], root)]
    return frame.assign(image_path=pd.Series(paths, index=frame.index, dtype=object))


def score_rows(
    scorer: ListingScorer,
    frame: pd.DataFrame,
    *,
    image_root: str | Path | None = None,
    batch_size: int = 256,
    keep: Sequence[str] = (),
) -> pd.DataFrame:
    """The contract's output for every row of ``frame``, in order, then the ``keep`` columns
    copied from ``frame``; ``batch_size`` listings per scorer call.

    Raises ValueError if the scorer does not give one row per listing (it always should).
    """
    if int(batch_size) < 1:
        raise ValueError(f"batch_size: expected an int >= 1, found {batch_size!r}")
    missing = [name for name in keep if name not in frame]
    if missing:
        raise ValueError(f"keep: columns {missing} are not in the input; found {list(frame)}")
    clash = [name for name in keep if name in OUTPUT_TYPES]
    if clash:
        raise ValueError(f"keep: {clash} are output columns already; keep other columns")
    frame = frame.reset_index(drop=True)
    request = _with_image_root(frame[request_columns(frame.columns)], image_root)
    parts = []
    for start in range(0, len(request), int(batch_size)):
        batch = request.iloc[start : start + int(batch_size)].reset_index(drop=True)
        out = scorer.score(batch)
        if len(out) != len(batch):
            raise ValueError(
                f"the scorer returned {len(out)} rows for a batch of {len(batch)} listings "
                f"(rows {start}-{start + len(batch) - 1}); expected one row per listing"
            )
        parts.append(out)
    scored = (
        pd.concat(parts, ignore_index=True)
        if parts
        else scorer.score(request.head(0)).reset_index(drop=True)
    )
    for name in keep:
        scored[name] = frame[name].to_numpy()
    return scored


def output_schema(keep: Mapping[str, pa.DataType] | None = None) -> pa.Schema:
    """The Arrow schema of scored rows: the contract's columns, then the kept ones; every part
    of one run has exactly this schema, also a part in which a column is all null."""
    fields = [pa.field(name, kind) for name, kind in OUTPUT_ARROW_TYPES.items()]
    fields += [pa.field(name, kind) for name, kind in (keep or {}).items()]
    return pa.schema(fields)


def to_arrow(scored: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """``scored`` as an Arrow table of ``schema``; a missing score is null, not NaN."""
    columns = {}
    for field in schema:
        values = scored[field.name]
        if pa.types.is_floating(field.type):
            columns[field.name] = pa.array(
                values.to_numpy(dtype="float64"), field.type, from_pandas=True
            )
        else:
            columns[field.name] = pa.array(
                values.astype(object).where(values.notna(), None).tolist(), field.type
            )
    return pa.table(columns, schema=schema)


def score_partitions(
    batches: Iterable[pd.DataFrame],
    folder: str | Path,
    *,
    runtime: str = "torch",
    image_root: str | Path | None = None,
    batch_size: int = 256,
    keep: Sequence[str] = (),
    threads: int | None = None,
) -> Iterator[pd.DataFrame]:
    """Score a stream of frames (Spark's ``mapInPandas`` hands a partition as one) with the
    model in ``folder``; one output frame per input frame, with :func:`output_schema`'s
    columns. ``threads`` caps torch's intra-op threads, so that Spark's task slots, not
    torch, share the executor's cores."""
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    scorer = cached_scorer(folder, runtime)
    columns = [*OUTPUT_COLUMNS, *keep]
    for frame in batches:
        scored = score_rows(scorer, frame, image_root=image_root, batch_size=batch_size, keep=keep)
        yield pd.DataFrame({name: _plain(scored[name]) for name in columns})


def _plain(values: pd.Series) -> np.ndarray:
    """A column as NumPy: numbers as they are, anything else as objects with None missing.

    pandas 3 keeps text in Arrow-backed columns, which Spark's serializer (pyspark 4.x) fails
    to turn into a record batch ("Cannot convert pyarrow.lib.ChunkedArray"); plain arrays it
    converts under the declared schema.
    """
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values):
        return values.to_numpy()
    return values.to_numpy(dtype=object, na_value=None)
