"""Property: for any mix of good and broken rows, every row is accounted for exactly once."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipguard.data.columns import INFRINGEMENT_TYPES, LABELS, REJECT_REASON, SOURCE_ROW
from ipguard.data.errors import ManifestError
from ipguard.data.io import write_manifest
from ipguard.data.schema import load_manifest

# Characters a real title may hold; control characters are left to the reader tests.
TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=20
).filter(lambda s: s.strip() != "")

GOOD_ROW = st.fixed_dictionaries(
    {
        "title": TEXT,
        "brand": st.one_of(st.none(), TEXT),
        "market": st.sampled_from(["US", "MX", "BR", "DE", "JP", None]),
        "language": st.sampled_from(["en", "es", "pt", "de", "ja", None]),
        "price": st.one_of(
            st.none(), st.floats(min_value=0, max_value=1e6, allow_nan=False).map(repr)
        ),
        "image_path": st.sampled_from(["img/a.jpg", "img/sub/b.png", None]),
        "listed_at": st.sampled_from(["2024-03-01", "2023-12-31T23:59:59Z", None]),
        "label": st.sampled_from(LABELS),
        # descriptive only: a team's own values (any case, stray spaces) are kept, not rejected
        "infringement_type": st.sampled_from(
            [*INFRINGEMENT_TYPES, None, "fake", "Counterfeit", "logo misuse", " stolen_photo "]
        ),
    }
)

# Ways to break one column; each value is invalid under the contract whatever else the row says.
BREAKS: dict[str, st.SearchStrategy] = {
    "listing_id": st.sampled_from([None, "  ", "DUPLICATE"]),
    "title": st.sampled_from([None, "", "   ", "\t "]),
    "label": st.text(alphabet="abcdefgINGU \u00e9-", max_size=8).filter(lambda s: s not in LABELS),
    "price": st.sampled_from(["abc", "-1", "-0.01", "nan", "inf", "1,5 kg", "$3", "NO_CURRENCY"]),
    "currency": st.sampled_from(["usd", "US", "EURO", "XXX", "12"]),
    "market": st.sampled_from(["usa", "us", "UK", "ZZ", "1"]),
    "language": st.sampled_from(["EN", "eng", "xx", "e"]),
    "listed_at": st.sampled_from(["yesterday", "2024-13-01", "31/12/2024"]),
    "image_path": st.sampled_from(["../x.jpg", "/abs/x.jpg", "img/none.jpg", "img/../../x.jpg"]),
}

ROW = st.tuples(
    GOOD_ROW,
    st.lists(st.sampled_from(sorted(BREAKS)), max_size=3, unique=True).flatmap(
        lambda columns: st.tuples(*(st.tuples(st.just(c), BREAKS[c]) for c in columns))
    ),
)


def build(rows: list[tuple[dict, tuple]]) -> tuple[pd.DataFrame, set[int], dict[int, set[str]]]:
    """The manifest, the 1-based rows that were broken, and which columns each one broke."""
    records, broken, columns = [], set(), {}
    ids: list[str | None] = []
    for i, (good, breaks) in enumerate(rows):
        record = {"listing_id": f"L{i}", "currency": "USD", **good}
        for column, value in breaks:
            if column == "listing_id" and value == "DUPLICATE":
                earlier = [x for x in ids if x is not None]
                if not earlier:
                    continue  # nothing to duplicate yet; leave the row intact
                value = earlier[0]
            if column == "price" and value == "NO_CURRENCY":
                record["price"], record["currency"] = "5", None
                column = "currency"
            else:
                record[column] = value
            broken.add(i + 1)
            columns.setdefault(i + 1, set()).add(column)
        ids.append(record["listing_id"] if isinstance(record["listing_id"], str) else None)
        ids[-1] = None if ids[-1] is None or not ids[-1].strip() else ids[-1]
        records.append(record)
    return pd.DataFrame(records).astype(object), broken, columns


def write_tree(folder: Path, df: pd.DataFrame, suffix: str) -> Path:
    (folder / "img" / "sub").mkdir(parents=True)
    (folder / "img" / "a.jpg").write_bytes(b"a")
    (folder / "img" / "sub" / "b.png").write_bytes(b"b")
    return write_manifest(df, folder / f"listings{suffix}")


SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(rows=st.lists(ROW, min_size=1, max_size=12), suffix=st.sampled_from([".csv", ".jsonl"]))
def test_quarantine_accounts_for_every_row_exactly_once(rows: list, suffix: str) -> None:
    df, broken, columns = build(rows)
    with tempfile.TemporaryDirectory() as tmp:
        result = load_manifest(write_tree(Path(tmp), df, suffix), on_error="quarantine")
    valid_rows = result.valid[SOURCE_ROW].tolist()
    rejected_rows = result.rejects[SOURCE_ROW].tolist()
    assert sorted(valid_rows + rejected_rows) == list(range(1, len(df) + 1))
    assert result.rows_in == result.rows_valid + result.rows_rejected == len(df)
    assert set(rejected_rows) == broken
    for row, reason in zip(rejected_rows, result.rejects[REJECT_REASON], strict=True):
        for column in columns[row]:
            assert f"column {column!r}" in reason


@SETTINGS
@given(rows=st.lists(ROW, min_size=1, max_size=12))
def test_raise_mode_lists_every_bad_row(rows: list) -> None:
    df, broken, _ = build(rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_tree(Path(tmp), df, ".parquet")
        if not broken:
            assert load_manifest(path).rows_valid == len(df)
            return
        with pytest.raises(ManifestError) as caught:
            load_manifest(path)
    assert {p.row for p in caught.value.problems} == broken
    assert all(p.column and p.reason for p in caught.value.problems)
