"""ipguard-score: a manifest of any format scored in chunks into Parquet parts, every row kept
(bad ones flagged), and a stopped run resumed with only the parts it lacks, never with another
model or other data.

The model is an untrained tiny fused network (image, text and price features): its scores
differ from row to row, which is all these tests need, and it builds in a second.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from ipguard.config import compose
from ipguard.data.catalog import catalog_featurizer
from ipguard.jobs.batch_score import score, score_manifest
from ipguard.jobs.score_output import STATE_FILE, SUCCESS_FILE, ResumeRefusedError
from ipguard.models.fusion_classifier import FusionClassifier
from ipguard.registry.package import write_model_dir
from ipguard.serving.scorer import OUTPUT_COLUMNS, ListingScorer
from ipguard.serving.spec import ModelSpec

ROWS = 120
CONTRACT = ["listing_id", "score", "decision", "image_score", "text_score", "flags"]


def tiny_fused_model(folder: Path, brands: Path, listings: pd.DataFrame, seed: int) -> Path:
    """An untrained fused model whose thresholds split ``listings`` into all three lanes."""
    torch.manual_seed(seed)
    network = {"image_size": 32, "text_dim": 8, "n_buckets": 512, "hidden": 8}
    written, spec = write_model_dir(
        FusionClassifier("tiny_cnn", **network),  # type: ignore[arg-type]
        folder,
        calibrator={"method": "none"},
        policy={"reject_threshold": 1.0, "approve_threshold": 0.0},
        extras={"tabular": catalog_featurizer(str(brands)).to_dict()},
    )
    scores = ListingScorer.load(written).score(listings)["score"].dropna()
    spec.policy = {
        "reject_threshold": float(scores.quantile(0.7)),
        "approve_threshold": float(scores.quantile(0.3)),
    }
    spec.model_version = str(seed)
    spec.save(written)
    return written


@pytest.fixture(scope="module")
def manifest(demo_small, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 demo listings as a semicolon CSV with a byte-order mark (as Excel writes it in
    Brazil or Germany), images beside it, and one of each bad row."""
    folder = tmp_path_factory.mktemp("manifest")
    (folder / "images").symlink_to(demo_small.images_dir, target_is_directory=True)
    (folder / "broken.jpg").write_bytes(b"<html>404</html>")
    rows = pd.read_csv(demo_small.manifest_path, dtype=str).head(ROWS)
    rows.loc[0, "image_path"] = "broken.jpg"  # not an image
    rows.loc[1, "title"] = None  # empty title (a description is still there)
    rows.loc[2, "price"] = "abc"  # a price that is not a number
    rows.loc[3, "listing_id"] = None  # no id
    rows.loc[4, "image_path"] = "images/missing.jpg"  # a file that is not there
    rows.loc[5, ["title", "description"]] = None  # no text at all
    path = folder / "listings.csv"
    rows.to_csv(path, sep=";", index=False, encoding="utf-8-sig")
    return path


@pytest.fixture(scope="module")
def model_dir(demo_small, manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    listings = pd.read_csv(demo_small.manifest_path, dtype=str).head(ROWS)
    listings["image_path"] = [str(demo_small.root / p) for p in listings["image_path"]]
    return tiny_fused_model(
        tmp_path_factory.mktemp("model"), demo_small.brands_path, listings, seed=3
    )


@pytest.fixture(scope="module")
def clean(model_dir: Path, manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The manifest scored in one chunk, the reference the other runs must equal."""
    out = tmp_path_factory.mktemp("clean")
    score_manifest(str(model_dir), manifest, out, chunk_size=10_000)
    return out


def _read(folder: Path) -> pd.DataFrame:
    return pd.read_parquet(folder).reset_index(drop=True)


def _assert_same_scores(found: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert len(found) == len(expected)
    for column in ("listing_id", "decision", "flags", "model_version", "evidence"):
        assert found[column].tolist() == expected[column].tolist(), column
    for column in ("score", "image_score", "text_score"):
        np.testing.assert_allclose(found[column], expected[column], atol=1e-6, equal_nan=True)


def test_every_row_is_written_and_bad_rows_are_flagged_not_dropped(
    clean: Path, manifest: Path
) -> None:
    out = _read(clean)
    assert list(out.columns) == [*OUTPUT_COLUMNS, "_source_file", "_source_row"]
    assert len(out) == ROWS
    assert out["_source_row"].tolist() == list(range(1, ROWS + 1))
    assert out["_source_file"].eq("listings.csv").all()
    flags = out["flags"].tolist()
    assert flags[0] == "image_unreadable"
    assert flags[1] == "title_missing"
    assert flags[2] == "price_invalid"
    assert flags[3] == "listing_id_missing" and out["listing_id"][3] == ""
    assert flags[4] == "image_unreadable"
    assert flags[5] == "text_empty"
    # each bad row is still scored with what it has: the others' inputs
    assert out["score"][:6].notna().all()
    assert out["text_score"][5:6].isna().all() and out["image_score"][:1].isna().all()
    assert (out["flags"][6:] == "").all()
    assert set(out["decision"]) == {"reject", "review", "approve"}
    assert out["model_version"].eq("3").all()
    done = json.loads((clean / SUCCESS_FILE).read_text())
    assert done["rows_in"] == done["rows_out"] == ROWS
    assert done["flagged"] == 6 and done["flags"]["image_unreadable"] == 2
    assert sum(done["decisions"].values()) == ROWS


def test_scores_match_the_scorer_on_the_same_rows(
    clean: Path, manifest: Path, model_dir: Path
) -> None:
    rows = pd.read_csv(manifest, sep=";", dtype=str, encoding="utf-8-sig")
    rows["image_path"] = [
        None if pd.isna(p) else str(manifest.parent / p) for p in rows["image_path"]
    ]
    direct = ListingScorer.load(model_dir).score(rows.drop(columns=["label"]))
    _assert_same_scores(_read(clean), direct)


def test_parquet_file_and_folder_of_parts_score_like_the_csv(
    clean: Path, manifest: Path, model_dir: Path, tmp_path: Path
) -> None:
    rows = pd.read_csv(manifest, sep=";", dtype=str, encoding="utf-8-sig")
    one = manifest.parent / "listings.parquet"
    rows.to_parquet(one, index=False)
    parts = manifest.parent / "parts"
    parts.mkdir(exist_ok=True)
    # a dataset folder holds only parts, so its rows name their images by absolute path
    absolute = rows.assign(image_path=[str(manifest.parent / p) for p in rows["image_path"]])
    for k, start in enumerate(range(0, ROWS, 50)):
        absolute.iloc[start : start + 50].to_parquet(parts / f"part-{k}.parquet", index=False)
    (parts / "_SUCCESS").write_text("")  # a writer's marker, skipped as the manifest reader does
    expected = _read(clean)
    for source in (one, parts):
        result = score_manifest(str(model_dir), source, tmp_path / source.name, chunk_size=40)
        assert result.rows_in == result.rows_out == ROWS
        _assert_same_scores(_read(tmp_path / source.name), expected)
    files = _read(tmp_path / "parts")["_source_file"]
    assert files.unique().tolist() == ["part-0.parquet", "part-1.parquet", "part-2.parquet"]


def test_chunks_smaller_than_the_input_give_several_parts_with_the_same_scores(
    clean: Path, manifest: Path, model_dir: Path, tmp_path: Path
) -> None:
    result = score_manifest(str(model_dir), manifest, tmp_path, chunk_size=25, batch_size=16)
    names = sorted(p.name for p in tmp_path.glob("part-*.parquet"))
    assert names == [f"part-{k:06d}.parquet" for k in range(5)]
    assert [pq.read_metadata(tmp_path / n).num_rows for n in names] == [25, 25, 25, 25, 20]
    assert result.parts == 5 and result.parts_written == 5
    _assert_same_scores(_read(tmp_path), _read(clean))


class Stop(Exception):
    pass


def test_a_stopped_run_resumes_with_only_the_parts_it_lacks(
    clean: Path, manifest: Path, model_dir: Path, tmp_path: Path
) -> None:
    written: list[int] = []

    def stop_after_two(stats) -> None:  # type: ignore[no-untyped-def]
        written.append(stats.index)
        if len(written) == 2:
            raise Stop

    with pytest.raises(Stop):
        score_manifest(str(model_dir), manifest, tmp_path, chunk_size=30, on_part=stop_after_two)
    assert written == [0, 1]
    assert not (tmp_path / SUCCESS_FILE).exists()
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("part-*.parquet")}
    assert sorted(before) == ["part-000000.parquet", "part-000001.parquet"]
    (tmp_path / ".part-000002.parquet.tmp-99").write_bytes(b"half a part")  # killed mid-write

    resumed: list[int] = []
    result = score_manifest(
        str(model_dir), manifest, tmp_path, chunk_size=30, on_part=lambda s: resumed.append(s.index)
    )
    assert resumed == [2, 3]
    assert (result.parts_written, result.parts_resumed, result.rows_scored) == (2, 2, 60)
    assert result.rows_in == result.rows_out == ROWS
    assert {n: (tmp_path / n).stat().st_mtime_ns for n in before} == before
    assert not list(tmp_path.glob(".*tmp*"))
    _assert_same_scores(_read(tmp_path), _read(clean))
    # a finished run started again scores nothing
    again = score_manifest(str(model_dir), manifest, tmp_path, chunk_size=30)
    assert (again.parts_written, again.parts_resumed) == (0, 4)


def test_resuming_with_another_model_or_chunk_size_is_refused(
    demo_small, clean: Path, manifest: Path, tmp_path: Path
) -> None:
    listings = pd.read_csv(demo_small.manifest_path, dtype=str).head(10)
    listings["image_path"] = [str(demo_small.root / p) for p in listings["image_path"]]
    other = tiny_fused_model(tmp_path / "other", demo_small.brands_path, listings, seed=4)
    recorded = json.loads((clean / STATE_FILE).read_text())
    with pytest.raises(
        ResumeRefusedError, match=r"model_fingerprint.*new folder, or pass overwrite"
    ):
        score_manifest(str(other), manifest, clean, chunk_size=10_000)
    with pytest.raises(ResumeRefusedError, match=r"chunk_size: 10000 -> 60"):
        score_manifest(recorded["model_uri"], manifest, clean, chunk_size=60)
    assert json.loads((clean / STATE_FILE).read_text()) == recorded  # left as it was

    copy = tmp_path / "copy"
    copy.mkdir()
    for path in clean.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    result = score_manifest(str(other), manifest, copy, chunk_size=60, overwrite=True)
    assert result.parts_written == 2
    assert _read(copy)["model_version"].eq("4").all()


def test_resuming_on_changed_input_is_refused(
    clean: Path, manifest: Path, model_dir: Path, tmp_path: Path
) -> None:
    changed = tmp_path / "listings.csv"
    changed.write_bytes(manifest.read_bytes().replace(b"L000010", b"L999999"))
    out = tmp_path / "out"
    score_manifest(str(model_dir), manifest, out, chunk_size=200)
    with pytest.raises(ResumeRefusedError, match=r"input_fingerprint"):
        score_manifest(str(model_dir), changed, out, chunk_size=200)


def test_an_output_folder_with_other_files_is_refused(model_dir: Path, manifest: Path, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ResumeRefusedError, match=r"did not write \(\['notes.txt'\]\)"):
        score_manifest(str(model_dir), manifest, tmp_path, overwrite=True)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_kept_columns_and_an_input_without_ids_column(
    model_dir: Path, manifest: Path, tmp_path: Path
) -> None:
    score_manifest(str(model_dir), manifest, tmp_path / "kept", keep=["seller_id", "label"])
    out = _read(tmp_path / "kept")
    rows = pd.read_csv(manifest, sep=";", dtype=str, encoding="utf-8-sig")
    assert out["seller_id"].tolist() == rows["seller_id"].tolist()
    assert out["label"].tolist() == rows["label"].tolist()
    no_ids = tmp_path / "no_ids.csv"
    rows.drop(columns=["listing_id"]).to_csv(no_ids, index=False)
    with pytest.raises(ValueError, match=r"no_ids.csv: missing required column 'listing_id'"):
        score_manifest(str(model_dir), no_ids, tmp_path / "none")


def test_an_empty_manifest_gives_one_empty_part_with_the_contract_columns(
    model_dir: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("listing_id,title\n")
    result = score_manifest(str(model_dir), empty, tmp_path / "out")
    assert (result.rows_in, result.rows_out, result.parts) == (0, 0, 1)
    out = pd.read_parquet(tmp_path / "out")
    assert out.empty and list(out.columns)[: len(OUTPUT_COLUMNS)] == list(OUTPUT_COLUMNS)


def test_the_score_config_runs_the_job(model_dir: Path, manifest: Path, tmp_path: Path) -> None:
    cfg = compose(
        "score",
        [
            f"model_uri={model_dir}",
            f"input={manifest}",
            f"output={tmp_path / 'out'}",
            "chunk_size=50",
            "progress=false",
            f"paths.root_dir={tmp_path}",
        ],
    )
    result = score(cfg)
    line = result.summary_line()
    assert line.startswith(f"ipguard: scored rows_in={ROWS} rows_out={ROWS} reject=")
    assert "parts=3 (written 3, resumed 0)" in line
    assert ModelSpec.load(model_dir).model_version == result.model_version == "3"
    with pytest.raises(ValueError, match="input: expected a path"):
        score(compose("score", [f"model_uri={model_dir}", f"output={tmp_path}"]))


def test_auto_runtime_scores_on_the_graph_where_the_model_has_one(
    demo_small, manifest: Path, model_dir: Path, tmp_path: Path
) -> None:
    import shutil

    from ipguard.serving.onnx import add_onnx
    from ipguard.serving.predictors import build_predictor

    with_graph = tmp_path / "with-graph"
    shutil.copytree(model_dir, with_graph)
    spec = ModelSpec.load(with_graph)
    add_onnx(build_predictor(spec, with_graph).network, spec, with_graph)
    spec.save(with_graph)
    chosen = {}
    for name, folder in (("plain", model_dir), ("graph", with_graph)):
        result = score_manifest(str(folder), manifest, tmp_path / name)  # runtime="auto"
        chosen[name] = json.loads((tmp_path / name / STATE_FILE).read_text())["runtime"]
        assert result.rows_out == ROWS
    assert chosen == {"plain": "torch", "graph": "onnx"}
    found, expected = _read(tmp_path / "graph"), _read(tmp_path / "plain")
    for column in ("listing_id", "decision", "flags"):
        assert found[column].tolist() == expected[column].tolist(), column
    for column in ("score", "image_score", "text_score"):
        np.testing.assert_allclose(found[column], expected[column], atol=1e-5, equal_nan=True)
    forced = score_manifest(str(with_graph), manifest, tmp_path / "forced", runtime="torch")
    assert forced.rows_out == ROWS
    assert json.loads((tmp_path / "forced" / STATE_FILE).read_text())["runtime"] == "torch"
