"""Nearest-neighbour search over a brand catalog's reference embeddings (docs/brand_protection.md).

A listing photo is compared with every brand's reference photos and logos -- hundreds per brand,
up to millions in all -- so the lookup has to stay a few milliseconds whatever the catalog's
size. Embeddings are L2-normalised here, so the inner product the index ranks by is the cosine
similarity the features report.

Why faiss (faiss-cpu) rather than hnswlib or usearch: it is the most used and longest-maintained
of the three; exact (``IndexFlatIP``) and approximate (HNSW, and IVF should a catalog outgrow
HNSW's memory) indexes sit behind one ``search`` API, so a small catalog gets exact answers and a
large one a graph without a second code path; ID selectors restrict a search to one brand's
references for both kinds; CPU wheels are on PyPI for every platform we serve on; and an index
is written with ``faiss.write_index`` (or to bytes with ``faiss.serialize_index``) in faiss's
own format -- no pickle -- so it can travel inside an exported model or a catalog artifact.

Which index: below ``exact_below`` references an exact flat scan is both exact and fast (1,000
references of width 1280 is a 5 MB matrix-vector product); at or above it an HNSW graph
(``hnsw_m`` links per node, ``ef_construction`` at build, ``ef_search`` at query time), whose
lookup grows with log n instead of n.

``allowed`` (search only these ids, e.g. the claimed brand's references): up to
``SUBSET_SCAN_MAX`` ids are scanned exactly -- their vectors are taken out of the index and
multiplied, which is exact for both kinds and cheaper than walking a graph for a few hundred
candidates; larger sets go through faiss's ``IDSelectorBatch`` in the search parameters (exact
for the flat index; for HNSW, ``ef_search`` is raised in proportion to how few nodes are
allowed, since the graph walk skips the rest). A query row for which HNSW finds fewer than
k' allowed neighbours is answered by an exact scan of the index's own storage instead, so every
row has k' results.

Threads (the note the brief asks for): faiss runs on OpenMP and by default takes every core,
which on a serving host oversubscribes the CPU when torch, other workers or several model
processes share it. Building and batch searches use ``IPGUARD_FAISS_THREADS`` threads (default:
all cores); a single query uses one thread, because splitting one small search across threads
costs more in OpenMP wake-ups than it saves. The thread count is set around each call and put
back afterwards, so importing this module changes nothing for the rest of the process.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import faiss
import numpy as np

INDEX_FILE = "index.faiss"
IDS_FILE = "ids.json"
FORMAT_VERSION = 1
SUBSET_SCAN_MAX = 8192
"""An ``allowed`` set at most this large is scanned exactly instead of filtered in faiss."""
ADD_CHUNK_ROWS = 16_384
"""Rows normalised and added at a time, so a memory-mapped input is never copied whole."""
_MAX_EF_SEARCH = 4096


def _threads() -> int:
    """Threads for building and batch searches: ``IPGUARD_FAISS_THREADS`` or every core."""
    raw = os.environ.get("IPGUARD_FAISS_THREADS", "").strip()
    if raw:
        try:
            value = int(raw)
        except ValueError as err:
            msg = f"IPGUARD_FAISS_THREADS must be a positive integer, found {raw!r}"
            raise ValueError(msg) from err
        if value < 1:
            msg = f"IPGUARD_FAISS_THREADS must be a positive integer, found {raw!r}"
            raise ValueError(msg)
        return value
    return max(1, os.cpu_count() or 1)


@contextmanager
def _omp_threads(count: int) -> Iterator[None]:
    """Run faiss with ``count`` OpenMP threads and restore the previous setting afterwards."""
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(count)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def _normalised(block: np.ndarray, names: Sequence[str], what: str) -> np.ndarray:
    """A float32 copy of ``block`` with unit rows; a row that cannot be normalised is named."""
    out = np.array(block, dtype=np.float32, copy=True)
    finite = np.isfinite(out).all(axis=1)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        msg = f"{what} {names[bad]} has a NaN or infinite value; it cannot be indexed or compared"
        raise ValueError(msg)
    norms = np.linalg.norm(out, axis=1)
    if (norms == 0).any():
        bad = int(np.flatnonzero(norms == 0)[0])
        msg = f"{what} {names[bad]} has zero norm; a zero embedding has no direction to compare"
        raise ValueError(msg)
    out /= norms[:, None]
    return out


class _RowNames(Sequence[str]):
    """Names for query rows in error messages, without building a list per search."""

    def __init__(self, count: int) -> None:
        self._count = count

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, row):  # type: ignore[override]
        return f"row {row}"


class ReferenceIndex:
    """Cosine-similarity search over reference embeddings, each known by a string id."""

    def __init__(
        self,
        vectors: np.ndarray,
        ids: Sequence[str],
        *,
        exact_below: int = 50_000,
        hnsw_m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 64,
    ) -> None:
        if not isinstance(vectors, np.ndarray):  # a memmap stays a memmap: read in chunks below
            vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2:
            msg = f"vectors must be a 2-D array (n, dim), found shape {vectors.shape}"
            raise ValueError(msg)
        count, dim = (int(s) for s in vectors.shape)
        ids = [str(i) for i in ids]
        if len(ids) != count:
            msg = f"{count} vectors but {len(ids)} ids: one id per row is needed"
            raise ValueError(msg)
        if dim < 1:
            raise ValueError("vectors must have at least one column")
        for name, value in (("hnsw_m", hnsw_m), ("ef_construction", ef_construction)):
            if value < 2:
                raise ValueError(f"{name} must be at least 2, found {value}")
        if ef_search < 1:
            raise ValueError(f"ef_search must be at least 1, found {ef_search}")
        positions: dict[str, int] = {}
        for row, name in enumerate(ids):
            if name in positions:
                first = positions[name]
                msg = f"id {name!r} is repeated (rows {first} and {row}); ids must be unique"
                raise ValueError(msg)
            positions[name] = row
        self._params = {
            "exact_below": int(exact_below),
            "hnsw_m": int(hnsw_m),
            "ef_construction": int(ef_construction),
            "ef_search": int(ef_search),
        }
        if count < exact_below:
            index: faiss.Index = faiss.IndexFlatIP(dim)
        else:
            index = faiss.IndexHNSWFlat(dim, int(hnsw_m), faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = int(ef_construction)
        with _omp_threads(_threads()):
            for start in range(0, count, ADD_CHUNK_ROWS):
                stop = min(start + ADD_CHUNK_ROWS, count)
                index.add(_normalised(vectors[start:stop], ids[start:stop], "reference id"))
        self._set_state(index, ids, positions)

    def _set_state(self, index: faiss.Index, ids: list[str], positions: dict[str, int]) -> None:
        self._index = index
        self._ids = ids
        self._positions = positions

    @property
    def exact(self) -> bool:
        """True for the flat index, whose answers are exact; False for the HNSW graph."""
        return not isinstance(self._index, faiss.IndexHNSW)

    @property
    def dim(self) -> int:
        return int(self._index.d)

    @property
    def ids(self) -> list[str]:
        """The reference ids, in the order their vectors were given."""
        return list(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __repr__(self) -> str:
        kind = "exact" if self.exact else f"hnsw(M={self._params['hnsw_m']})"
        return f"ReferenceIndex({len(self)} references, dim={self.dim}, {kind})"

    # -- search --------------------------------------------------------------------------------

    def search(
        self, queries: np.ndarray, k: int = 5, *, allowed: Sequence[str] | None = None
    ) -> tuple[np.ndarray, list[list[str]]]:
        """The ``k`` most similar references per query, most similar first.

        Returns cosine similarities of shape (m, k') and the matching ids, where k' is k capped
        at the number of references searched (all of them, or the ``allowed`` ones). An id in
        ``allowed`` that the index does not hold is an error rather than silently ignored.
        """
        queries = np.asarray(queries)
        if queries.ndim != 2:
            msg = f"queries must be a 2-D array (m, dim), found shape {queries.shape}"
            raise ValueError(msg)
        if queries.shape[1] != self.dim:
            msg = f"queries have dim {queries.shape[1]} but the index holds dim {self.dim}"
            raise ValueError(msg)
        if k < 1:
            raise ValueError(f"k must be at least 1, found {k}")
        unit = _normalised(queries, _RowNames(len(queries)), "query")
        candidates = self._allowed_positions(allowed)
        pool = len(self) if candidates is None else len(candidates)
        width = min(k, pool)
        if width == 0 or len(unit) == 0:
            return np.zeros((len(unit), width), np.float32), [[] for _ in range(len(unit))]
        threads = 1 if len(unit) == 1 else _threads()
        with _omp_threads(threads):
            if candidates is not None and len(candidates) <= SUBSET_SCAN_MAX:
                sims, rows = self._scan_subset(unit, width, candidates)
            else:
                sims, rows = self._search_index(unit, width, candidates)
        return sims, [[self._ids[r] for r in row] for row in rows]

    def _allowed_positions(self, allowed: Sequence[str] | None) -> np.ndarray | None:
        if allowed is None:
            return None
        if isinstance(allowed, str):
            raise TypeError("allowed must be a sequence of ids, not a single string")
        unknown = [str(a) for a in allowed if str(a) not in self._positions]
        if unknown:
            shown = ", ".join(repr(u) for u in unknown[:5])
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            msg = f"allowed names {len(unknown)} id(s) the index does not hold: {shown}{more}"
            raise ValueError(msg)
        return np.unique(np.fromiter((self._positions[str(a)] for a in allowed), np.int64))

    def _scan_subset(
        self, unit: np.ndarray, width: int, candidates: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-``width`` of a few candidates: their vectors out of the index, one product."""
        block = self._index.reconstruct_batch(candidates)
        scores = unit @ block.T
        top = np.argpartition(-scores, width - 1, axis=1)[:, :width]
        top_scores = np.take_along_axis(scores, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        rows = candidates[np.take_along_axis(top, order, axis=1)]
        return np.take_along_axis(top_scores, order, axis=1).astype(np.float32), rows

    def _search_index(
        self, unit: np.ndarray, width: int, candidates: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        selector = None if candidates is None else faiss.IDSelectorBatch(candidates)
        if self.exact:
            params = None if selector is None else faiss.SearchParameters(sel=selector)
            return self._index.search(unit, width, params=params)
        ef = max(self._params["ef_search"], width)
        if candidates is not None:
            ef = min(_MAX_EF_SEARCH, ef * math.ceil(len(self) / len(candidates)))
        params = faiss.SearchParametersHNSW(efSearch=ef)
        if selector is not None:
            params.sel = selector
        sims, rows = self._index.search(unit, width, params=params)
        short = np.flatnonzero((rows < 0).any(axis=1))
        if len(short):
            storage = faiss.downcast_index(self._index.storage)
            flat_params = None if selector is None else faiss.SearchParameters(sel=selector)
            sims[short], rows[short] = storage.search(unit[short], width, params=flat_params)
        return sims, rows

    # -- files ---------------------------------------------------------------------------------

    def save(self, folder: Path) -> None:
        """Write ``index.faiss`` (faiss's own format) and ``ids.json`` (ids and parameters)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self._index, str(folder / INDEX_FILE))
        record = {
            "format": FORMAT_VERSION,
            "kind": "flat" if self.exact else "hnsw",
            "dim": self.dim,
            "count": len(self),
            **self._params,
            "ids": self._ids,
        }
        (folder / IDS_FILE).write_text(json.dumps(record), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> ReferenceIndex:
        """Read an index written by :meth:`save`; missing, corrupt or mismatched files fail."""
        folder = Path(folder)
        index_path, ids_path = folder / INDEX_FILE, folder / IDS_FILE
        for path in (index_path, ids_path):
            if not path.is_file():
                raise FileNotFoundError(f"{path}: missing; a saved reference index has both files")
        try:
            record = json.loads(ids_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{ids_path}: not a readable JSON file ({err})") from err
        if not isinstance(record, dict) or record.get("format") != FORMAT_VERSION:
            found = record.get("format") if isinstance(record, dict) else type(record).__name__
            msg = f"{ids_path}: expected format {FORMAT_VERSION}, found {found!r}"
            raise ValueError(msg)
        ids = record.get("ids")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ValueError(f"{ids_path}: 'ids' must be a list of strings")
        positions = {name: row for row, name in enumerate(ids)}
        if len(positions) != len(ids):
            raise ValueError(f"{ids_path}: 'ids' holds a repeated id")
        try:
            index = faiss.read_index(str(index_path))
        except RuntimeError as err:
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else "unreadable"
            raise ValueError(f"{index_path}: not a readable faiss index ({first_line})") from err
        kind = "hnsw" if isinstance(index, faiss.IndexHNSW) else "flat"
        problems = []
        if index.ntotal != len(ids):
            problems.append(f"{index.ntotal} vectors for {len(ids)} ids")
        if record.get("dim") != index.d:
            problems.append(f"dim {index.d} against {record.get('dim')} recorded")
        if record.get("kind") != kind:
            problems.append(f"a {kind} index against {record.get('kind')!r} recorded")
        if index.metric_type != faiss.METRIC_INNER_PRODUCT:
            problems.append("a metric other than inner product")
        if problems:
            msg = f"{folder}: {INDEX_FILE} does not match {IDS_FILE}: " + "; ".join(problems)
            raise ValueError(msg)
        self = cls.__new__(cls)
        defaults = {"exact_below": 50_000, "hnsw_m": 32, "ef_construction": 80, "ef_search": 64}
        self._params = {key: int(record.get(key, value)) for key, value in defaults.items()}
        self._set_state(index, ids, positions)
        return self
