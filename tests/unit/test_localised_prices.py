"""Prices as spreadsheets in Brazil and Europe write them: a semicolon CSV with decimal commas
validates with the numbers a person reads, and nothing ambiguous is guessed."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ipguard.data.coercion import coerce_price
from ipguard.data.schema import load_manifest


@pytest.mark.parametrize(
    ("written", "value"),
    [
        ("19,90", 19.9),
        ("7,5", 7.5),
        ("1.299,00", 1299.0),
        ("12.345.678,99", 12345678.99),
        ("1,299", 1299.0),
        ("1,299.50", 1299.5),
        ("1.299", 1.299),  # a plain decimal number: never reread as thousands
        ("-3,25", -3.25),
    ],
)
def test_localised_prices_parse_to_the_number_a_person_reads(written: str, value: float) -> None:
    number, bad = coerce_price(pd.Series([written]))
    assert not bad.item()
    assert number.item() == pytest.approx(value)


@pytest.mark.parametrize("written", ["19,9,9", "1.29,00", "R$ 19,90", "12,3456"])
def test_prices_that_admit_no_single_reading_stay_errors(written: str) -> None:
    number, bad = coerce_price(pd.Series([written]))
    assert bad.item()
    assert pd.isna(number.item())


def test_semicolon_manifest_with_decimal_commas_validates(tmp_path: Path) -> None:
    manifest = tmp_path / "anuncios.csv"
    manifest.write_text(
        "listing_id;title;price;currency;label\n"
        "A1;Bolsa de couro;1.299,90;BRL;genuine\n"
        "A2;Bolsa réplica 1:1;189,00;BRL;infringing\n",
        encoding="utf-8",
    )
    result = load_manifest(manifest, check_images=False)
    assert result.rows_rejected == 0
    assert result.valid["price"].tolist() == pytest.approx([1299.9, 189.0])
