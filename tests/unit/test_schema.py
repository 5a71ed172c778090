"""Every manifest rule has a good case and a bad case; bad rows are named, never dropped."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ipguard.data.columns import LABELS, MANIFEST_COLUMNS, REJECT_REASON, SOURCE_FILE, SOURCE_ROW
from ipguard.data.errors import ManifestError, Problem
from ipguard.data.io import write_manifest
from ipguard.data.schema import ValidationResult, load_manifest, validate_brands, validate_manifest


def good_row(i: int = 0, **changes: object) -> dict[str, object]:
    row: dict[str, object] = {
        "listing_id": f"L{i}",
        "title": f"Leather wallet {i}",
        "description": "brown, two pockets",
        "brand": "Acme",
        "category": "accessories",
        "market": "US",
        "language": "en",
        "price": "19.99",
        "currency": "USD",
        "seller_id": "S1",
        "image_path": "img/a.jpg",
        "listed_at": "2024-03-01T12:00:00Z",
        "label": "genuine",
        "infringement_type": None,
    }
    row.update(changes)
    return row


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.jpg").write_bytes(b"\xff\xd8 not decoded here")
    return tmp_path


def frame(*rows: dict[str, object]) -> pd.DataFrame:
    return pd.DataFrame(list(rows)).astype(object)


def quarantine(root: Path, *rows: dict[str, object], **kwargs: object) -> ValidationResult:
    return validate_manifest(frame(*rows), root=root, on_error="quarantine", **kwargs)


def reasons_for(result: ValidationResult, row: int) -> str:
    match = result.rejects[result.rejects[SOURCE_ROW] == row]
    assert len(match) == 1, f"row {row} should be rejected exactly once"
    return str(match[REJECT_REASON].iloc[0])


# --- whole-file rules ------------------------------------------------------------------------


@pytest.mark.parametrize("column", ["listing_id", "title", "label"])
def test_missing_required_column_is_one_file_level_error_even_in_quarantine(
    root: Path, column: str
) -> None:
    df = frame(good_row(0), good_row(1)).drop(columns=[column])
    with pytest.raises(ManifestError) as caught:
        validate_manifest(df, root=root, on_error="quarantine", source="listings.csv")
    [problem] = caught.value.problems
    assert problem.column == column and problem.row is None
    assert problem.file == "listings.csv"
    assert f"missing required column {column!r}" in str(caught.value)


def test_label_column_may_be_absent_for_unlabelled_data(root: Path) -> None:
    df = frame(good_row(0)).drop(columns=["label"])
    result = validate_manifest(df, root=root, require_label=False)
    assert result.rows_valid == 1
    assert result.valid["label"].isna().all()


def test_missing_label_value_is_allowed_only_without_require_label(root: Path) -> None:
    rows = (good_row(0), good_row(1, label=None))
    assert quarantine(root, *rows, require_label=False).rows_rejected == 0
    strict = quarantine(root, *rows)
    assert strict.rows_rejected == 1
    assert "missing label" in reasons_for(strict, 2)


def test_column_name_with_stray_space_gets_a_hint(root: Path) -> None:
    df = frame(good_row(0)).rename(columns={"title": " Title"})
    with pytest.raises(ManifestError, match=r"did you mean ' Title'"):
        validate_manifest(df, root=root)


def test_unknown_extra_column_is_kept_and_reported_as_warning(root: Path) -> None:
    df = frame(good_row(0, seller_rating="4.5"))
    result = validate_manifest(df, root=root)
    assert result.valid["seller_rating"].tolist() == ["4.5"]
    assert [w.column for w in result.warnings] == ["seller_rating"]


def test_optional_contract_columns_may_be_absent(root: Path) -> None:
    df = pd.DataFrame({"listing_id": ["a"], "title": ["t"], "label": ["infringing"]})
    result = validate_manifest(df, root=root)
    assert list(result.valid.columns[: len(MANIFEST_COLUMNS)]) == list(MANIFEST_COLUMNS)
    assert result.valid["price"].isna().all()


# --- per-row rules: the bad cases ------------------------------------------------------------

BAD_VALUES = [
    ("listing_id", None, "missing required value"),
    ("listing_id", "   ", "missing required value"),
    ("title", None, "missing required value"),
    ("title", " \t ", "missing required value"),
    ("label", "fake", "expected one of: genuine, infringing"),
    ("label", "Genuine", "unknown label 'Genuine'"),
    ("price", "abc", "not a finite number"),
    ("price", "$12", "not a finite number"),
    ("price", "inf", "not a finite number"),
    ("price", "-3", "negative price (-3.0); expected >= 0"),
    ("currency", "usd", "did you mean 'USD'"),
    ("currency", "ABC", "ISO 4217"),
    ("market", "UK", "did you mean 'GB'"),
    ("market", "USA", "ISO 3166-1 alpha-2"),
    ("language", "EN", "did you mean 'en'"),
    ("language", "english", "ISO 639-1"),
    ("language", "xx", "ISO 639-1"),
    ("listed_at", "31/02/2024", "not a parseable timestamp"),
    ("listed_at", "yesterday", "not a parseable timestamp"),
    ("image_path", "/etc/passwd", "is absolute"),
    ("image_path", "C:\\img\\a.jpg", "absolute"),
    ("image_path", "../a.jpg", "escapes the manifest folder"),
    ("image_path", "img/../../a.jpg", "escapes the manifest folder"),
    ("image_path", "..\\a.jpg", "escapes the manifest folder"),
    ("image_path", "img/missing.jpg", "not found"),
]


@pytest.mark.parametrize(("column", "value", "fragment"), BAD_VALUES)
def test_bad_value_rejects_only_its_row_and_names_column(
    root: Path, column: str, value: object, fragment: str
) -> None:
    result = quarantine(root, good_row(0), good_row(1, **{column: value}), good_row(2))
    assert result.rows_rejected == 1
    assert result.valid["listing_id"].tolist() == ["L0", "L2"]
    reason = reasons_for(result, 2)
    assert f"column {column!r}" in reason
    assert fragment in reason


@pytest.mark.parametrize(("column", "value", "fragment"), BAD_VALUES)
def test_bad_value_raises_naming_row_column_and_reason(
    root: Path, column: str, value: object, fragment: str
) -> None:
    df = frame(good_row(0), good_row(1, **{column: value}))
    with pytest.raises(ManifestError) as caught:
        validate_manifest(df, root=root, source="listings.csv")
    problem = caught.value.problems[0]
    assert (problem.file, problem.row, problem.column) == ("listings.csv", 2, column)
    assert fragment in problem.reason


# --- per-row rules: the good cases -----------------------------------------------------------

GOOD_VALUES = [
    ("label", "infringing"),
    ("infringement_type", "counterfeit"),
    ("infringement_type", "logo_misuse"),
    # descriptive only: a team's own type is kept (and counted in a warning), not rejected
    ("infringement_type", "knockoff"),
    ("price", "0"),
    ("price", "1e3"),
    ("price", 12.5),
    ("currency", "JPY"),
    ("currency", "BRL"),
    ("market", "MX"),
    ("market", "JP"),
    ("language", "pt"),
    ("language", "ja"),
    ("listed_at", "2024-03-01"),
    ("listed_at", "2024-03-01 08:30:00+02:00"),
    ("image_path", "img/./a.jpg"),
    ("image_path", None),
    ("description", None),
    ("brand", "Ácme 株式会社"),
]


@pytest.mark.parametrize(("column", "value"), GOOD_VALUES)
def test_good_value_is_accepted(root: Path, column: str, value: object) -> None:
    result = validate_manifest(frame(good_row(0, **{column: value})), root=root)
    assert result.rows_valid == 1 and result.rows_rejected == 0


def test_price_without_currency_is_an_error_but_currency_alone_is_fine(root: Path) -> None:
    result = quarantine(root, good_row(0, currency=None), good_row(1, price=None))
    assert result.rows_rejected == 1
    assert "given without currency" in reasons_for(result, 1)
    assert result.valid["listing_id"].tolist() == ["L1"]


def test_missing_image_is_only_checked_when_asked(root: Path) -> None:
    df = frame(good_row(0, image_path="img/missing.jpg"))
    assert validate_manifest(df, root=root, check_images=False).rows_valid == 1
    with pytest.raises(ManifestError, match="not found"):
        validate_manifest(df, root=root)


def test_escaping_image_path_is_rejected_even_without_image_check(root: Path) -> None:
    df = frame(good_row(0, image_path="../outside.jpg"))
    with pytest.raises(ManifestError, match="escapes the manifest folder"):
        validate_manifest(df, root=root, check_images=False)


def test_every_duplicate_after_the_first_is_reported_naming_the_first(root: Path) -> None:
    rows = [good_row(0), good_row(1), good_row(0), good_row(2), good_row(0), good_row(1)]
    result = quarantine(root, *rows)
    assert sorted(result.rejects[SOURCE_ROW]) == [3, 5, 6]
    assert "first seen at row 1" in reasons_for(result, 3)
    assert "first seen at row 1" in reasons_for(result, 5)
    assert "first seen at row 2" in reasons_for(result, 6)
    assert result.valid["listing_id"].tolist() == ["L0", "L1", "L2"]


def test_duplicate_across_part_files_names_the_other_file(root: Path) -> None:
    df = frame(good_row(0), good_row(0))
    df[SOURCE_FILE] = ["part-0.parquet", "part-1.parquet"]
    df[SOURCE_ROW] = [1, 1]
    result = validate_manifest(df, root=root, on_error="quarantine")
    assert "first seen at part-0.parquet row 1" in result.rejects[REJECT_REASON].iloc[0]


def test_row_with_several_problems_lists_every_column(root: Path) -> None:
    result = quarantine(root, good_row(0, title="", price="-1", market="ZZ"))
    reason = reasons_for(result, 1)
    for column in ("title", "price", "market"):
        assert f"column {column!r}" in reason
    assert len(result.problems) == 3


def test_nested_json_value_in_text_column_is_rejected(root: Path) -> None:
    result = quarantine(root, good_row(0, title=["not", "text"]), good_row(1))
    assert "expected text, found a list" in reasons_for(result, 1)
    assert result.rows_valid == 1


# --- what valid and rejected rows look like --------------------------------------------------


def test_valid_rows_are_typed(root: Path) -> None:
    result = validate_manifest(frame(good_row(0), good_row(1, price=None)), root=root)
    valid = result.valid
    assert valid["price"].dtype == np.float64
    assert valid["price"].iloc[0] == pytest.approx(19.99)
    assert np.isnan(valid["price"].iloc[1])
    assert isinstance(valid["listed_at"].dtype, pd.DatetimeTZDtype)
    assert str(valid["listed_at"].dt.tz) == "UTC"
    assert pd.api.types.is_string_dtype(valid["title"].dtype)
    assert valid["infringement_type"].isna().all()
    assert valid[SOURCE_ROW].tolist() == [1, 2]


def test_naive_and_offset_timestamps_become_utc(root: Path) -> None:
    rows = (
        good_row(0, listed_at="2024-03-01T12:00:00"),
        good_row(1, listed_at="2024-03-01T14:00:00+02:00"),
    )
    stamps = validate_manifest(frame(*rows), root=root).valid["listed_at"]
    assert stamps.iloc[0] == stamps.iloc[1] == pd.Timestamp("2024-03-01T12:00:00Z")


def test_numeric_ids_from_typed_formats_become_text(root: Path) -> None:
    df = frame(good_row(0))
    df["listing_id"] = pd.Series([7], dtype="int64")
    assert validate_manifest(df, root=root).valid["listing_id"].tolist() == ["7"]


def test_rejects_keep_original_values_and_provenance(root: Path) -> None:
    result = quarantine(root, good_row(0), good_row(1, price=" 1,5 kg "))
    rejected = result.rejects.iloc[0]
    assert rejected["price"] == " 1,5 kg "
    assert rejected[SOURCE_ROW] == 2
    assert rejected[SOURCE_FILE] == "<dataframe>"


def test_counts_add_up_and_summary_reports_them(root: Path) -> None:
    result = quarantine(root, good_row(0), good_row(1, label="x"), good_row(2, title=""))
    assert (result.rows_in, result.rows_valid, result.rows_rejected) == (3, 1, 2)
    assert result.summary() == "rows_in=3 rows_valid=1 rows_rejected=2"


def test_empty_manifest_is_valid_and_counts_zero(root: Path) -> None:
    df = pd.DataFrame({"listing_id": [], "title": [], "label": []}, dtype=object)
    result = validate_manifest(df, root=root, on_error="quarantine")
    assert (result.rows_in, result.rows_valid, result.rows_rejected) == (0, 0, 0)


def test_unknown_on_error_mode_is_refused(root: Path) -> None:
    with pytest.raises(ValueError, match="on_error"):
        validate_manifest(frame(good_row(0)), root=root, on_error="skip")  # type: ignore[arg-type]


# --- messages ---------------------------------------------------------------------------------


def test_problem_text_names_file_row_line_and_column() -> None:
    problem = Problem("listings.csv", 7, "price", "-3", "negative price (-3.0); expected >= 0", 8)
    assert str(problem) == (
        "listings.csv row 7 (line 8), column 'price': negative price (-3.0); expected >= 0"
    )
    assert str(Problem("a.parquet", None, None, None, "cannot read")) == "a.parquet: cannot read"


def test_error_text_lists_fifty_problems_then_counts_the_rest() -> None:
    problems = [Problem("m.csv", i, "title", None, "missing") for i in range(1, 121)]
    text = str(ManifestError(problems))
    lines = text.splitlines()
    assert len(lines) == 51
    assert lines[-1] == "... and 70 more"
    assert lines[0].startswith("m.csv row 1")


def test_error_survives_pickling_with_its_problems() -> None:
    err = ManifestError([Problem("m.csv", 3, "label", "x", "unknown label")])
    again = pickle.loads(pickle.dumps(err))
    assert again.problems == err.problems
    assert str(again) == str(err)


# --- load_manifest: read + validate + rejects file --------------------------------------------


def test_load_manifest_puts_physical_lines_in_messages(root: Path) -> None:
    text = (
        "listing_id,title,description,label\n"
        'a,ok,"first line\nsecond line",genuine\n'
        "\n"
        "b,ok,plain,bogus\n"
    )
    (root / "m.csv").write_text(text)
    with pytest.raises(ManifestError) as caught:
        load_manifest(root / "m.csv")
    [problem] = caught.value.problems
    assert (problem.row, problem.line) == (2, 5)
    assert "m.csv row 2 (line 5), column 'label'" in str(caught.value)


def test_load_manifest_writes_rejects_file_that_reads_back(root: Path) -> None:
    write_manifest(frame(good_row(0), good_row(1, market="XX")), root / "m.csv")
    result = load_manifest(root / "m.csv", on_error="quarantine", rejects_path=root / "bad.csv")
    assert result.rows_rejected == 1
    rejects = pd.read_csv(root / "bad.csv", dtype=str)
    assert rejects["listing_id"].tolist() == ["L1"]
    assert rejects[SOURCE_ROW].tolist() == ["2"]
    assert "column 'market'" in rejects[REJECT_REASON].iloc[0]


def test_load_manifest_writes_empty_rejects_file_when_all_rows_pass(root: Path) -> None:
    write_manifest(frame(good_row(0)), root / "m.jsonl")
    load_manifest(root / "m.jsonl", on_error="quarantine", rejects_path=root / "bad.jsonl")
    assert (root / "bad.jsonl").read_text() == ""


def test_labels_constant_puts_infringing_at_index_one() -> None:
    assert LABELS.index("infringing") == 1


# --- brand catalog ----------------------------------------------------------------------------


def test_brand_catalog_is_typed_and_keeps_extra_columns() -> None:
    brands = pd.DataFrame(
        {
            "brand": ["Acme", "Zeta"],
            "reference_price": ["49.90", None],
            "currency": ["EUR", None],
            "reference_images": ["acme/1.jpg", ""],
        }
    )
    typed = validate_brands(brands)
    assert typed["reference_price"].iloc[0] == pytest.approx(49.9)
    assert typed["reference_images"].tolist() == ["acme/1.jpg", ""]


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"brand": " "}, "missing required value"),
        ({"reference_price": "-1"}, "negative reference_price"),
        ({"reference_price": "n/a"}, "not a finite number"),
        ({"currency": "EURO"}, "unknown currency"),
        ({"currency": None}, "given without currency"),
    ],
)
def test_bad_brand_row_raises_naming_row_and_column(change: dict, fragment: str) -> None:
    rows = [{"brand": "Acme", "reference_price": "10", "currency": "USD"}] * 2
    rows = [rows[0], {**rows[1], "brand": "Zeta", **change}]
    with pytest.raises(ManifestError) as caught:
        validate_brands(pd.DataFrame(rows), source="brands.csv")
    [problem] = caught.value.problems
    assert (problem.file, problem.row) == ("brands.csv", 2)
    assert fragment in problem.reason


def test_duplicate_brand_is_reported_and_missing_brand_column_raised() -> None:
    rows = pd.DataFrame(
        {"brand": ["Acme", "Acme"], "reference_price": ["1", "2"], "currency": "USD"}
    )
    with pytest.raises(ManifestError, match="duplicate brand 'Acme'; first seen at row 1"):
        validate_brands(rows)
    with pytest.raises(ManifestError, match="missing required column 'brand'"):
        validate_brands(pd.DataFrame({"name": ["Acme"]}))


def test_catalog_with_a_row_per_brand_and_currency_is_valid() -> None:
    currencies = ["USD", "MXN", "BRL", "EUR", "JPY", "IDR"]
    rows = pd.DataFrame(
        {
            "brand": ["Acme"] * 6 + ["Zeta"] * 6,
            "reference_price": ["100", "1700", "500", "92", "15000", "1600000"] * 2,
            "currency": currencies * 2,
        }
    )
    typed = validate_brands(rows)
    assert len(typed) == 12
    assert typed.groupby("brand")["currency"].nunique().to_dict() == {"Acme": 6, "Zeta": 6}


def test_repeated_brand_and_currency_pair_names_both_rows_and_the_column() -> None:
    rows = pd.DataFrame(
        {
            "brand": ["Acme", "Acme", "Acme", "Zeta", "Zeta"],
            "reference_price": ["1", "17", "2", None, None],
            "currency": ["USD", "MXN", "USD", None, None],
        }
    )
    with pytest.raises(ManifestError) as caught:
        validate_brands(rows, source="brands.csv")
    problems = caught.value.problems
    assert [(p.file, p.row, p.column) for p in problems] == [
        ("brands.csv", 3, "brand"),
        ("brands.csv", 5, "brand"),
    ]
    assert "duplicate brand 'Acme'; first seen at row 1 for currency 'USD'" in problems[0].reason
    assert "first seen at row 4 with no currency either" in problems[1].reason


# --- forgiving where nothing depends on it ---------------------------------------------------


def test_infringement_type_outside_the_documented_four_is_kept_normalised_and_counted(
    root: Path,
) -> None:
    rows = [
        good_row(0, label="infringing", infringement_type="stolen_photo"),
        good_row(1, label="infringing", infringement_type=" Stolen_Photo "),
        good_row(2, label="infringing", infringement_type=" Counterfeit"),
        good_row(3, label="infringing", infringement_type="knockoff"),
    ]
    result = validate_manifest(frame(*rows), root=root, source="listings.csv")
    assert result.rows_rejected == 0
    assert result.valid["infringement_type"].tolist() == [
        "stolen_photo",
        "stolen_photo",
        "counterfeit",
        "knockoff",
    ]
    assert result.other_infringement_types == {"stolen_photo": 2, "knockoff": 1}
    [warning] = [w for w in result.warnings if w.column == "infringement_type"]
    assert str(warning).startswith(
        "listings.csv, column 'infringement_type': 3 rows with values outside counterfeit, "
        "logo_misuse, copyright, other: stolen_photo (2), knockoff (1); kept"
    )


TEAM_LABELS = {"genuine": ["ok", "legit"], "infringing": ["fake", "counterfeit"]}


def test_team_label_values_map_onto_the_contract_labels(root: Path) -> None:
    rows = [
        good_row(0, label="ok"),
        good_row(1, label=" FAKE "),
        good_row(2, label="Legit"),
        good_row(3, label="infringing"),
        good_row(4, label="maybe"),
    ]
    result = quarantine(root, *rows, label_values=TEAM_LABELS)
    assert result.valid["label"].tolist() == ["genuine", "infringing", "genuine", "infringing"]
    reason = reasons_for(result, 5)
    assert "unknown label 'maybe'; expected one of: genuine, infringing" in reason
    assert "label_values (genuine: legit, ok; infringing: counterfeit, fake)" in reason
    assert result.rejects["label"].tolist() == ["maybe"]  # rejects keep what was written


def test_team_label_values_are_needed_for_team_labels(root: Path) -> None:
    result = quarantine(root, good_row(0, label="ok"))
    assert "unknown label 'ok'" in reasons_for(result, 1)


@pytest.mark.parametrize(
    ("label_values", "fragment"),
    [
        ({"benign": ["ok"]}, "unknown label 'benign'"),
        ({"genuine": ["ok"], "infringing": ["OK"]}, "given for both"),
        ({"genuine": ["infringing"]}, "given for both"),
        ({"genuine": [" "]}, "non-blank"),
        (["ok"], "expected a mapping"),
    ],
)
def test_bad_label_values_are_refused_naming_the_option(
    root: Path, label_values: object, fragment: str
) -> None:
    with pytest.raises(ValueError, match="label_values") as caught:
        validate_manifest(frame(good_row(0)), root=root, label_values=label_values)  # type: ignore[arg-type]
    assert fragment in str(caught.value)


def test_load_manifest_maps_team_labels_of_a_semicolon_file(root: Path) -> None:
    (root / "m.csv").write_text("listing_id;title;label\na;Bag;ok\nb;Watch;fake\n")
    result = load_manifest(root / "m.csv", label_values={"genuine": "ok", "infringing": "fake"})
    assert result.valid["label"].tolist() == ["genuine", "infringing"]


# --- decoding images during validation -------------------------------------------------------

FIXTURE_IMAGES = Path(__file__).resolve().parents[1] / "fixtures" / "images"


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """A folder with a good photo and one of each unusable kind."""
    from PIL import Image

    (tmp_path / "img").mkdir()
    Image.new("RGB", (16, 16), (10, 120, 30)).save(tmp_path / "img" / "good.jpg")
    for name in ("truncated.jpg", "huge_header.png", "tiny.png"):
        (tmp_path / "img" / name).write_bytes((FIXTURE_IMAGES / name).read_bytes())
    (tmp_path / "img" / "empty.jpg").write_bytes(b"")
    return tmp_path


def image_rows() -> list[dict[str, object]]:
    names = ["good.jpg", "truncated.jpg", "good.jpg", "empty.jpg", "huge_header.png", "tiny.png"]
    return [good_row(i, image_path=f"img/{name}") for i, name in enumerate(names)]


def test_decoding_keeps_rows_with_unusable_images_and_counts_them_per_flag(photos: Path) -> None:
    result = validate_manifest(
        frame(*image_rows()), root=photos, decode_images="full", source="listings.csv"
    )
    assert result.rows_valid == 6 and result.rows_rejected == 0
    assert result.image_check == "full" and result.images_checked == 6
    assert result.images_unusable == {
        "image_too_large": 1,
        "image_too_small": 1,
        "image_unreadable": 2,
    }
    assert result.summary() == "rows_in=6 rows_valid=6 rows_rejected=0 images_unusable=4"
    warned = {w.row: w.reason for w in result.warnings if w.column == "image_path"}
    assert sorted(warned) == [2, 4, 5, 6]
    assert warned[2].startswith("image unusable (image_unreadable)")
    assert "truncated" in warned[2] and "kept, scored without its image" in warned[2]


def test_reject_mode_sets_rows_with_unusable_images_aside_with_their_reason(photos: Path) -> None:
    result = quarantine(photos, *image_rows(), decode_images="full", unusable_images="reject")
    assert (result.rows_in, result.rows_valid, result.rows_rejected) == (6, 2, 4)
    assert "image_too_large" in reasons_for(result, 5)
    assert "set aside (unusable_images=reject)" in reasons_for(result, 6)
    with pytest.raises(ManifestError) as caught:
        validate_manifest(
            frame(*image_rows()), root=photos, decode_images="full", unusable_images="reject"
        )
    assert sorted(p.row for p in caught.value.problems) == [2, 4, 5, 6]


def test_header_check_misses_only_truncated_pixel_data(photos: Path) -> None:
    result = validate_manifest(frame(*image_rows()), root=photos, decode_images="header")
    assert result.images_unusable == {
        "image_too_large": 1,
        "image_too_small": 1,
        "image_unreadable": 1,
    }


def test_images_are_not_decoded_unless_asked(photos: Path) -> None:
    result = validate_manifest(frame(*image_rows()), root=photos)
    assert (result.image_check, result.images_checked, result.images_unusable) == ("none", 0, {})
    assert result.summary() == "rows_in=6 rows_valid=6 rows_rejected=0"


def test_unknown_image_options_are_refused(root: Path) -> None:
    with pytest.raises(ValueError, match="decode_images"):
        validate_manifest(frame(good_row(0)), root=root, decode_images="all")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unusable_images"):
        validate_manifest(frame(good_row(0)), root=root, unusable_images="drop")  # type: ignore[arg-type]


def test_validating_prints_no_warning_the_user_cannot_act_on() -> None:
    """pandera pulls in pyspark.pandas when PySpark is installed, which warns about pandas 3 on
    import in every process; ipguard's validation runs on pandas alone and stays quiet."""
    code = "import ipguard.data.schema, ipguard.data.videos"
    result = subprocess.run(
        [sys.executable, "-W", "error::FutureWarning", "-c", code], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
