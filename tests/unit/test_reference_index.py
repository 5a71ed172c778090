"""The reference index answers like brute force, filters to allowed ids, and survives a save."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ipguard.brands import index as index_module
from ipguard.brands.index import IDS_FILE, INDEX_FILE, ReferenceIndex

DIM = 24


def clustered(count: int, dim: int, clusters: int, seed: int, spread: float = 0.35) -> np.ndarray:
    """Vectors around a few centres, like a catalog's several photos of each product."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    members = rng.integers(0, clusters, size=count)
    return (centres[members] + spread * rng.normal(size=(count, dim))).astype(np.float32)


def brute_force(refs: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    refs = refs / np.linalg.norm(refs, axis=1, keepdims=True)
    queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    scores = queries @ refs.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), order


def names(count: int) -> list[str]:
    return [f"ref-{i}" for i in range(count)]


def test_exact_search_matches_numpy_brute_force() -> None:
    refs = clustered(300, DIM, 12, seed=1)
    queries = clustered(40, DIM, 12, seed=2)
    index = ReferenceIndex(refs, names(300))
    assert index.exact and len(index) == 300 and index.dim == DIM
    sims, found = index.search(queries, k=7)
    want_sims, want_rows = brute_force(refs, queries, 7)
    assert sims.dtype == np.float32 and sims.shape == (40, 7)
    assert found == [[f"ref-{r}" for r in row] for row in want_rows]
    np.testing.assert_allclose(sims, want_sims, atol=1e-5)
    assert (np.diff(sims, axis=1) <= 1e-7).all()


def test_single_query_matches_the_same_query_in_a_batch() -> None:
    refs = clustered(200, DIM, 8, seed=3)
    queries = clustered(5, DIM, 8, seed=4)
    index = ReferenceIndex(refs, names(200))
    batch_sims, batch_ids = index.search(queries, k=4)
    one_sims, one_ids = index.search(queries[2:3], k=4)
    assert one_ids == [batch_ids[2]]
    np.testing.assert_allclose(one_sims[0], batch_sims[2], atol=1e-5)


def test_vectors_are_normalised_so_scale_does_not_change_the_answer() -> None:
    refs = clustered(100, DIM, 5, seed=5)
    queries = clustered(10, DIM, 5, seed=6)
    scales = np.random.default_rng(7).uniform(0.01, 100.0, size=(100, 1)).astype(np.float32)
    plain = ReferenceIndex(refs, names(100)).search(queries, k=5)
    scaled = ReferenceIndex(refs * scales, names(100)).search(queries * 3.0, k=5)
    assert plain[1] == scaled[1]
    np.testing.assert_allclose(plain[0], scaled[0], atol=1e-5)
    assert np.all(plain[0] <= 1.0 + 1e-5)


def test_hnsw_recall_at_5_on_clustered_references() -> None:
    refs = clustered(4000, 32, 80, seed=8)
    queries = clustered(200, 32, 80, seed=9)
    index = ReferenceIndex(refs, names(4000), exact_below=1000)
    assert not index.exact
    _, found = index.search(queries, k=5)
    _, truth = brute_force(refs, queries, 5)
    hits = sum(
        len({f"ref-{r}" for r in want} & set(got)) for want, got in zip(truth, found, strict=True)
    )
    assert hits / truth.size >= 0.95


def test_the_index_kind_switches_at_exact_below() -> None:
    refs = clustered(50, DIM, 4, seed=10)
    assert ReferenceIndex(refs, names(50), exact_below=51).exact
    assert not ReferenceIndex(refs, names(50), exact_below=50).exact


@pytest.mark.parametrize("exact_below", [50_000, 100], ids=["exact", "hnsw"])
def test_allowed_returns_only_allowed_ids_and_the_best_of_them(exact_below: int) -> None:
    refs = clustered(600, DIM, 20, seed=11)
    queries = clustered(15, DIM, 20, seed=12)
    index = ReferenceIndex(refs, names(600), exact_below=exact_below)
    rows = np.random.default_rng(13).choice(600, size=30, replace=False)
    allowed = [f"ref-{r}" for r in rows]
    sims, found = index.search(queries, k=5, allowed=allowed)
    assert all(set(got) <= set(allowed) and len(got) == 5 for got in found)
    want_sims, want_rows = brute_force(refs[rows], queries, 5)
    assert found == [[allowed[r] for r in row] for row in want_rows]
    np.testing.assert_allclose(sims, want_sims, atol=1e-5)


@pytest.mark.parametrize("exact_below", [50_000, 100], ids=["exact", "hnsw"])
def test_a_large_allowed_set_goes_through_the_faiss_selector(
    exact_below: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index_module, "SUBSET_SCAN_MAX", 10)
    refs = clustered(800, DIM, 20, seed=14)
    queries = clustered(20, DIM, 20, seed=15)
    index = ReferenceIndex(refs, names(800), exact_below=exact_below)
    rows = np.arange(0, 800, 4)
    allowed = [f"ref-{r}" for r in rows]
    _, found = index.search(queries, k=5, allowed=allowed)
    allowed_set = set(allowed)
    assert all(set(got) <= allowed_set and len(got) == 5 for got in found)
    _, truth = brute_force(refs[rows], queries, 5)
    hits = sum(
        len({allowed[r] for r in want} & set(got)) for want, got in zip(truth, found, strict=True)
    )
    assert hits / truth.size >= 0.95


def test_k_is_capped_at_the_references_searched() -> None:
    refs = clustered(6, DIM, 2, seed=16)
    index = ReferenceIndex(refs, names(6))
    sims, found = index.search(refs[:2], k=10)
    assert sims.shape == (2, 6) and [len(f) for f in found] == [6, 6]
    sims, found = index.search(refs[:2], k=10, allowed=["ref-1", "ref-4", "ref-4"])
    assert sims.shape == (2, 2) and all(sorted(f) == ["ref-1", "ref-4"] for f in found)
    sims, found = index.search(refs[:2], k=3, allowed=[])
    assert sims.shape == (2, 0) and found == [[], []]


def test_an_empty_index_returns_empty_results() -> None:
    index = ReferenceIndex(np.zeros((0, DIM), np.float32), [])
    assert len(index) == 0 and index.dim == DIM
    sims, found = index.search(clustered(3, DIM, 1, seed=17), k=5)
    assert sims.shape == (3, 0) and found == [[], [], []]


@pytest.mark.parametrize("exact_below", [50_000, 100], ids=["exact", "hnsw"])
def test_save_and_load_give_identical_results(exact_below: int, tmp_path: Path) -> None:
    refs = clustered(500, DIM, 15, seed=18)
    queries = clustered(25, DIM, 15, seed=19)
    index = ReferenceIndex(refs, names(500), exact_below=exact_below, ef_search=40)
    index.save(tmp_path / "refs")
    loaded = ReferenceIndex.load(tmp_path / "refs")
    assert (loaded.exact, loaded.dim, len(loaded), loaded.ids) == (
        index.exact,
        index.dim,
        len(index),
        index.ids,
    )
    for allowed in (None, [f"ref-{i}" for i in range(0, 500, 7)]):
        before = index.search(queries, k=6, allowed=allowed)
        after = loaded.search(queries, k=6, allowed=allowed)
        assert before[1] == after[1]
        np.testing.assert_array_equal(before[0], after[0])
    saved = json.loads((tmp_path / "refs" / IDS_FILE).read_text())
    assert saved["ef_search"] == 40 and saved["kind"] == ("flat" if index.exact else "hnsw")


def test_zero_norm_reference_is_named() -> None:
    refs = clustered(10, DIM, 2, seed=20)
    refs[6] = 0.0
    with pytest.raises(ValueError, match=r"ref-6 has zero norm"):
        ReferenceIndex(refs, names(10))


def test_non_finite_reference_is_named() -> None:
    refs = clustered(10, DIM, 2, seed=21)
    refs[3, 5] = np.nan
    with pytest.raises(ValueError, match=r"ref-3 has a NaN"):
        ReferenceIndex(refs, names(10))


def test_repeated_id_is_named() -> None:
    ids = names(10)
    ids[8] = "ref-2"
    with pytest.raises(ValueError, match=r"'ref-2' is repeated \(rows 2 and 8\)"):
        ReferenceIndex(clustered(10, DIM, 2, seed=22), ids)


def test_ids_must_match_the_rows() -> None:
    with pytest.raises(ValueError, match=r"10 vectors but 9 ids"):
        ReferenceIndex(clustered(10, DIM, 2, seed=23), names(9))


def test_dimension_mismatch_names_both_dims() -> None:
    index = ReferenceIndex(clustered(10, DIM, 2, seed=24), names(10))
    with pytest.raises(ValueError, match=rf"dim 16 but the index holds dim {DIM}"):
        index.search(np.ones((2, 16), np.float32))


def test_zero_norm_query_and_bad_arguments_are_errors() -> None:
    index = ReferenceIndex(clustered(10, DIM, 2, seed=25), names(10))
    queries = np.ones((3, DIM), np.float32)
    queries[1] = 0.0
    with pytest.raises(ValueError, match=r"query row 1 has zero norm"):
        index.search(queries)
    with pytest.raises(ValueError, match=r"k must be at least 1"):
        index.search(np.ones((1, DIM), np.float32), k=0)
    with pytest.raises(ValueError, match=r"2-D"):
        index.search(np.ones(DIM, np.float32))
    with pytest.raises(ValueError, match=r"does not hold: 'nope'"):
        index.search(np.ones((1, DIM), np.float32), allowed=["ref-1", "nope"])


def test_load_reports_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=INDEX_FILE):
        ReferenceIndex.load(tmp_path / "nothing")
    folder = tmp_path / "refs"
    ReferenceIndex(clustered(20, DIM, 2, seed=26), names(20)).save(folder)
    (folder / INDEX_FILE).write_bytes(b"not an index at all")
    with pytest.raises(ValueError, match=r"index.faiss: not a readable faiss index"):
        ReferenceIndex.load(folder)
    ReferenceIndex(clustered(20, DIM, 2, seed=26), names(20)).save(folder)
    (folder / IDS_FILE).write_text("{truncated", encoding="utf-8")
    with pytest.raises(ValueError, match=r"ids.json: not a readable JSON file"):
        ReferenceIndex.load(folder)
    ReferenceIndex(clustered(20, DIM, 2, seed=26), names(20)).save(folder)
    record = json.loads((folder / IDS_FILE).read_text())
    record["ids"] = record["ids"][:-1]
    (folder / IDS_FILE).write_text(json.dumps(record), encoding="utf-8")
    with pytest.raises(ValueError, match=r"20 vectors for 19 ids"):
        ReferenceIndex.load(folder)


def test_thread_setting_is_restored_after_a_search(monkeypatch: pytest.MonkeyPatch) -> None:
    import faiss

    before = faiss.omp_get_max_threads()
    monkeypatch.setenv("IPGUARD_FAISS_THREADS", "1")
    index = ReferenceIndex(clustered(50, DIM, 3, seed=27), names(50))
    index.search(clustered(4, DIM, 3, seed=28), k=3)
    assert faiss.omp_get_max_threads() == before
    monkeypatch.setenv("IPGUARD_FAISS_THREADS", "zero")
    with pytest.raises(ValueError, match="IPGUARD_FAISS_THREADS"):
        index.search(clustered(4, DIM, 3, seed=28), k=3)
