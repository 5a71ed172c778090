"""Reading manifests literally, from any supported layout, with provenance on every row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ipguard.data.columns import SOURCE_FILE, SOURCE_ROW
from ipguard.data.errors import ManifestError
from ipguard.data.io import (
    MANIFEST_SUFFIXES,
    manifest_root,
    read_manifest,
    record_lines,
    write_manifest,
)


def small_frame(n: int = 3, start: int = 0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "listing_id": [f"L{i}" for i in range(start, start + n)],
            "title": [f"item {i}" for i in range(start, start + n)],
            "price": [0.1 + 0.2 * i for i in range(n)],
        }
    )


def test_suffix_table_covers_every_documented_format() -> None:
    assert MANIFEST_SUFFIXES == {
        ".csv": "csv",
        ".parquet": "parquet",
        ".pq": "parquet",
        ".jsonl": "jsonl",
        ".ndjson": "jsonl",
    }


def test_csv_values_stay_literal_and_only_empty_cells_are_missing(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("listing_id,title,price\n007,NA,\n8,null,1.50\n")
    df = read_manifest(tmp_path / "m.csv")
    assert df["listing_id"].tolist() == ["007", "8"]
    assert df["title"].tolist() == ["NA", "null"]
    assert df["price"].iloc[1] == "1.50"
    assert pd.isna(df["price"].iloc[0])


def test_every_row_records_its_file_and_one_based_row(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("listing_id,title\na,x\n\nb,y\nc,z\n")
    df = read_manifest(tmp_path / "m.csv")
    assert df[SOURCE_FILE].tolist() == ["m.csv"] * 3
    assert df[SOURCE_ROW].tolist() == [1, 2, 3]


def test_csv_with_byte_order_mark_still_has_listing_id(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_bytes("listing_id,title\na,x\n".encode("utf-8-sig"))
    assert read_manifest(tmp_path / "m.csv")["listing_id"].tolist() == ["a"]


def test_csv_row_with_too_many_fields_names_row_and_line(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("listing_id,title\na,x\nb,y,surprise\nc,z\n")
    with pytest.raises(ManifestError) as caught:
        read_manifest(tmp_path / "m.csv")
    [problem] = caught.value.problems
    assert (problem.file, problem.row, problem.line) == ("m.csv", 2, 3)
    assert "3 fields" in problem.reason


def test_repeated_header_name_is_an_error_not_a_silent_rename(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("listing_id,title,title\na,x,y\n")
    with pytest.raises(ManifestError, match="column 'title': column appears more than once"):
        read_manifest(tmp_path / "m.csv")


def test_missing_required_header_names_file_and_column(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("listing_id,name\na,x\n")
    with pytest.raises(ManifestError, match=r"m\.csv, column 'title': missing required column"):
        read_manifest(tmp_path / "m.csv")


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("m.xlsx", b"whatever", "unknown manifest format '.xlsx'"),
        ("m.csv", b"", "file is empty"),
        ("m.csv", b"listing_id,title\n\xff\xfe,x\n", "not UTF-8"),
        ("m.parquet", b"not parquet at all", "cannot read as Parquet"),
    ],
)
def test_unreadable_or_unknown_file_is_named_in_error(
    tmp_path: Path, name: str, content: bytes, fragment: str
) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ManifestError, match=fragment) as caught:
        read_manifest(tmp_path / name)
    assert caught.value.problems[0].file.endswith(name)


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="file not found"):
        read_manifest(tmp_path / "absent.csv")


def test_json_lines_skip_blank_lines_and_keep_types(tmp_path: Path) -> None:
    (tmp_path / "m.jsonl").write_text(
        '{"listing_id": "a", "title": "x", "price": 2.5}\n\n{"listing_id": "b", "title": "y"}\n'
    )
    df = read_manifest(tmp_path / "m.jsonl")
    assert df["listing_id"].tolist() == ["a", "b"]
    assert df["price"].iloc[0] == 2.5 and pd.isna(df["price"].iloc[1])
    assert df[SOURCE_ROW].tolist() == [1, 2]


def test_json_lines_report_every_malformed_line(tmp_path: Path) -> None:
    (tmp_path / "m.ndjson").write_text(
        '{"listing_id": "a", "title": "x"}\n{broken\n[1, 2]\n{"listing_id": "b", "title": "y"}\n'
    )
    with pytest.raises(ManifestError) as caught:
        read_manifest(tmp_path / "m.ndjson")
    assert [(p.row, p.line) for p in caught.value.problems] == [(2, 2), (3, 3)]
    assert "not valid JSON" in caught.value.problems[0].reason
    assert "expected a JSON object, found list" in caught.value.problems[1].reason


def test_parquet_dataset_folder_reads_every_part_with_its_own_rows(tmp_path: Path) -> None:
    folder = tmp_path / "listings"
    folder.mkdir()
    small_frame(2, 0).to_parquet(folder / "part-0.parquet")
    small_frame(3, 2).to_parquet(folder / "part-1.parquet")
    (folder / "_SUCCESS").write_text("")
    df = read_manifest(folder)
    assert df["listing_id"].tolist() == ["L0", "L1", "L2", "L3", "L4"]
    assert df[SOURCE_FILE].tolist() == ["part-0.parquet"] * 2 + ["part-1.parquet"] * 3
    assert df[SOURCE_ROW].tolist() == [1, 2, 1, 2, 3]
    assert manifest_root(folder) == folder.resolve()


def test_dataset_folder_with_unexpected_file_is_reported(tmp_path: Path) -> None:
    small_frame().to_parquet(tmp_path / "part-0.parquet")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ManifestError, match=r"notes\.txt: unexpected file in a dataset folder"):
        read_manifest(tmp_path)


def test_hive_partition_folders_become_columns(tmp_path: Path) -> None:
    for market in ("BR", "US"):
        (tmp_path / f"market={market}").mkdir()
        small_frame(1).to_parquet(tmp_path / f"market={market}" / "part-0.parquet")
    df = read_manifest(tmp_path)
    assert df["market"].tolist() == ["BR", "US"]
    assert df[SOURCE_FILE].tolist() == ["market=BR/part-0.parquet", "market=US/part-0.parquet"]


def test_glob_of_parts_resolves_against_folder_above_wildcard(tmp_path: Path) -> None:
    (tmp_path / "parts").mkdir()
    small_frame(1, 0).to_csv(tmp_path / "parts" / "a.csv", index=False)
    small_frame(1, 1).to_csv(tmp_path / "parts" / "b.csv", index=False)
    pattern = str(tmp_path / "parts" / "*.csv")
    df = read_manifest(pattern)
    assert df["listing_id"].tolist() == ["L0", "L1"]
    assert manifest_root(pattern) == (tmp_path / "parts").resolve()
    with pytest.raises(ManifestError, match="no files match"):
        read_manifest(str(tmp_path / "parts" / "*.parquet"))


def test_parquet_saved_with_listing_id_as_index_gets_it_back(tmp_path: Path) -> None:
    small_frame().set_index("listing_id").to_parquet(tmp_path / "m.parquet")
    df = read_manifest(tmp_path / "m.parquet")
    assert df["listing_id"].tolist() == ["L0", "L1", "L2"]


def test_manifest_root_of_a_file_is_its_folder(tmp_path: Path) -> None:
    assert manifest_root(tmp_path / "sub" / "m.csv") == (tmp_path / "sub").resolve()


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_written_manifest_reads_back_same_values_without_bookkeeping(
    tmp_path: Path, suffix: str
) -> None:
    original = small_frame()
    original["listed_at"] = pd.to_datetime(["2024-01-01T10:00:00Z"] * 3, utc=True)
    original["note"] = ["ünïcode / slash", None, "x"]
    tagged = original.assign(**{SOURCE_FILE: "x.csv", SOURCE_ROW: [1, 2, 3]})
    path = write_manifest(tagged, tmp_path / f"out{suffix}")
    back = read_manifest(path)
    assert list(back.columns) == [*original.columns, SOURCE_FILE, SOURCE_ROW]
    assert back[SOURCE_FILE].iloc[0] == f"out{suffix}"
    # Floats survive exactly (0.1 + 0.2 is not 0.3), whichever format carried them.
    assert pd.to_numeric(back["price"]).tolist() == original["price"].tolist()
    stamps = pd.to_datetime(back["listed_at"], utc=True, format="ISO8601")
    assert (stamps == original["listed_at"]).all()
    assert back["note"].iloc[0] == "ünïcode / slash" and pd.isna(back["note"].iloc[1])


def test_write_refuses_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot tell the format"):
        write_manifest(small_frame(), tmp_path / "m.xlsx")


def test_record_lines_follow_multiline_fields_and_blank_lines(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text('listing_id,title\na,"two\nlines"\n\n   \nb,x\nc,y\n')
    assert record_lines(tmp_path / "m.csv").tolist() == [2, 6, 7]
    assert len(read_manifest(tmp_path / "m.csv")) == 3
    (tmp_path / "m.jsonl").write_text('{"a": 1}\n\n{"a": 2}\n')
    assert record_lines(tmp_path / "m.jsonl").tolist() == [1, 3]
    assert record_lines(tmp_path / "m.parquet") is None


def test_empty_json_lines_file_gives_empty_manifest(tmp_path: Path) -> None:
    (tmp_path / "m.jsonl").write_text("\n")
    df = read_manifest(tmp_path / "m.jsonl")
    assert len(df) == 0 and {"listing_id", "title"} <= set(df.columns)
    assert df[SOURCE_ROW].dtype == np.int64


# --- CSV dialects: separators, byte-order marks, encodings -----------------------------------

DIALECT_ROWS = [
    ["listing_id", "title", "description", "price", "currency"],
    ["L1", "Bolsa de couro", "marrom, dois bolsos", "199.90", "BRL"],
    ["L2", "Tênis Zentaro; original", "tamanho 42", "", "BRL"],
    ["L3", 'Relógio "Chrono"', "", "1200", "BRL"],
]


def write_dialect(path: Path, separator: str, encoding: str = "utf-8") -> Path:
    import csv
    import io

    buffer = io.StringIO()
    csv.writer(buffer, delimiter=separator, lineterminator="\n").writerows(DIALECT_ROWS)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


@pytest.mark.parametrize(
    ("separator", "encoding"),
    [(";", "utf-8"), ("\t", "utf-8"), ("|", "utf-8"), (",", "utf-8-sig"), ("\t", "utf-16")],
    ids=["semicolon", "tab", "pipe", "comma-with-bom", "utf16-tab-excel"],
)
def test_other_separators_and_byte_order_marks_read_like_the_comma_csv(
    tmp_path: Path, separator: str, encoding: str
) -> None:
    comma = read_manifest(write_dialect(tmp_path / "comma.csv", ","))
    other = read_manifest(write_dialect(tmp_path / "other.csv", separator, encoding))
    pd.testing.assert_frame_equal(
        other.drop(columns=SOURCE_FILE), comma.drop(columns=SOURCE_FILE), check_dtype=True
    )
    assert other.columns[0] == "listing_id"


def test_separator_is_chosen_by_the_header_not_by_commas_in_the_text(tmp_path: Path) -> None:
    # many commas in the values, one semicolon per field: the header decides
    path = tmp_path / "m.csv"
    path.write_text("listing_id;title\na;red, blue, green, white, black\nb;one, two\n")
    assert read_manifest(path)["title"].tolist() == ["red, blue, green, white, black", "one, two"]


def test_latin1_file_is_an_error_naming_the_line_the_byte_and_the_encoding_to_try(
    tmp_path: Path,
) -> None:
    path = tmp_path / "m.csv"
    path.write_bytes("listing_id,title\na,ok\nb,Tênis barato\n".encode("latin-1"))
    with pytest.raises(ManifestError) as caught:
        read_manifest(path)
    [problem] = caught.value.problems
    assert (problem.file, problem.row, problem.line) == ("m.csv", None, 3)
    text = str(problem)
    assert text.startswith("m.csv line 3: not UTF-8 text: byte 25 (0xea")
    assert "'ê' in cp1252" in text and "encoding='cp1252'" in text
    assert read_manifest(path, encoding="cp1252")["title"].tolist() == ["ok", "Tênis barato"]


def test_bad_byte_far_beyond_the_sniffed_start_still_names_its_line(tmp_path: Path) -> None:
    rows = "".join(f"L{i},title {i}\n" for i in range(20_000))  # well past the first 64 KB
    path = tmp_path / "m.csv"
    path.write_bytes(b"listing_id,title\n" + rows.encode() + "x,Caf\xe9\n".encode("latin-1"))
    with pytest.raises(ManifestError, match=r"m\.csv line 20002: not UTF-8 text"):
        read_manifest(path)


def test_json_lines_that_are_not_utf8_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_bytes(b'{"listing_id": "a", "title": "x"}\n{"listing_id": "b", "title": "\xe9"}\n')
    with pytest.raises(ManifestError, match=r"m\.jsonl line 2: not UTF-8 text"):
        read_manifest(path)
    assert read_manifest(path, encoding="latin-1")["title"].tolist() == ["x", "é"]


def test_unknown_encoding_name_is_refused_naming_the_option(tmp_path: Path) -> None:
    path = write_dialect(tmp_path / "m.csv", ",")
    with pytest.raises(ManifestError, match="unknown encoding 'latin-9000'"):
        read_manifest(path, encoding="latin-9000")


def test_row_wider_than_the_header_names_the_separator_it_was_read_with(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("listing_id,title\na,x\nb,Bag, red\n")
    with pytest.raises(ManifestError) as caught:
        read_manifest(tmp_path / "m.csv")
    [problem] = caught.value.problems
    assert (problem.row, problem.line) == (2, 3)
    assert "3 fields, expected at most 2 as in the header" in problem.reason
    assert "comma-separated (','" in problem.reason and "double quotes" in problem.reason


def test_header_and_rows_in_different_separators_name_the_rows_separator(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("listing_id,title,price\na;Bag;10\nb;Watch;20\n")
    with pytest.raises(ManifestError) as caught:
        read_manifest(tmp_path / "m.csv")
    [problem] = caught.value.problems
    assert "the header is comma-separated" in problem.reason
    assert "look semicolon-separated (';', 3 fields)" in problem.reason


def test_record_lines_follow_the_detected_separator(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text('listing_id;title\na;"two\nlines"\n\nb;x\n')
    assert record_lines(path).tolist() == [2, 5]


def test_csv_table_reader_detects_the_separator_of_a_catalog(tmp_path: Path) -> None:
    from ipguard.data.io import read_csv_table

    path = tmp_path / "brands.csv"
    path.write_text("brand;reference_price;currency\nZentaro;2700,00;MXN\n")
    table = read_csv_table(path, known_columns=("brand", "reference_price", "currency"))
    assert table.to_dict("list") == {
        "brand": ["Zentaro"],
        "reference_price": ["2700,00"],
        "currency": ["MXN"],
    }
