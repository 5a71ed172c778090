"""normalize() sees through brand-name disguises without mangling real text or numbers."""

from __future__ import annotations

import math
import string

import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ipguard.text.normalization import (
    MODEL_TEXT_SEPARATOR,
    model_text,
    normalize,
    normalize_steps,
    text_of,
)

# The autouse fixture in conftest only sets environment variables; sharing it across
# hypothesis examples is harmless.
PROPERTY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# Look-alikes written out independently of the implementation (which reads Unicode's
# confusables data), so the test checks the data rather than echoing it.
CYRILLIC_GREEK_LOOKALIKES = {
    "a": "а",
    "c": "с",
    "e": "е",
    "o": "о",
    "p": "р",
    "x": "х",
    "y": "у",
    "i": "і",
    "s": "ѕ",
    "j": "ј",
    "v": "ν",
    "A": "А",
    "B": "В",
    "C": "С",
    "E": "Е",
    "H": "Н",
    "K": "К",
    "M": "М",
    "O": "О",
    "P": "Р",
    "T": "Т",
    "X": "Х",
    "N": "Ν",
    "I": "Ι",
    "Z": "Ζ",
}
LEET = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7", "b": "8"}
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"]
CONTEXT = ("original leather handbag", "free shipping")

brands = st.text(alphabet=string.ascii_lowercase, min_size=4, max_size=10)


def _in_context(word: str) -> str:
    return f"{CONTEXT[0]} {word} {CONTEXT[1]}"


@st.composite
def mixed_case(draw: st.DrawFn, brand: str) -> str:
    flags = draw(st.lists(st.booleans(), min_size=len(brand), max_size=len(brand)))
    return "".join(c.upper() if up else c for c, up in zip(brand, flags, strict=True))


@st.composite
def disguised(draw: st.DrawFn) -> tuple[str, str]:
    """(clean brand, disguised spelling), one disguise plus optional case and invisibles."""
    brand = draw(brands)
    word = draw(mixed_case(brand))
    kind = draw(
        st.sampled_from(["fullwidth", "homoglyph", "spaces", "dots", "dashes", "leet", "none"])
    )
    if kind == "fullwidth":
        word = "".join(chr(ord(c) + 0xFEE0) for c in word)
    elif kind == "homoglyph":
        positions = [i for i, c in enumerate(word) if c in CYRILLIC_GREEK_LOOKALIKES]
        assume(positions)
        chosen = draw(st.sets(st.sampled_from(positions), min_size=1))
        word = "".join(
            CYRILLIC_GREEK_LOOKALIKES.get(c, c) if i in chosen else c for i, c in enumerate(word)
        )
    elif kind in ("spaces", "dots", "dashes"):
        word = {"spaces": " ", "dots": ".", "dashes": "-"}[kind].join(word)
    elif kind == "leet":
        interior = [i for i in range(1, len(word) - 1) if word[i].lower() in LEET]
        assume(interior)
        chosen = draw(st.sets(st.sampled_from(interior), min_size=1))
        word = "".join(LEET[c.lower()] if i in chosen else c for i, c in enumerate(word))

    inserts = draw(
        st.lists(st.tuples(st.integers(0, len(word)), st.sampled_from(INVISIBLE)), max_size=4)
    )
    for position, char in sorted(inserts, reverse=True):
        word = word[:position] + char + word[position:]
    return brand, word


@PROPERTY
@given(st.text())
def test_normalize_is_idempotent_on_arbitrary_unicode(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once


@PROPERTY
@given(disguised())
def test_every_disguise_of_a_brand_folds_to_its_clean_form(case: tuple[str, str]) -> None:
    brand, word = case
    assert normalize(_in_context(word)) == _in_context(brand)


@PROPERTY
@given(brands, st.data())
def test_mixed_script_word_folds_without_latin_context(brand: str, data: st.DataObject) -> None:
    positions = [i for i, c in enumerate(brand) if c in CYRILLIC_GREEK_LOOKALIKES]
    assume(0 < len(positions) < len(brand))  # at least one genuine Latin letter stays
    chosen = data.draw(st.sets(st.sampled_from(positions), min_size=1))
    word = "".join(CYRILLIC_GREEK_LOOKALIKES[c] if i in chosen else c for i, c in enumerate(brand))
    assert normalize(word) == brand


def test_fully_lookalike_word_inside_a_latin_title_folds() -> None:
    assert normalize("ΝΙΚΕ running shoes for men") == "nike running shoes for men"
    assert normalize("Сосо Chanel bag") == "coco chanel bag"


@pytest.mark.parametrize(
    "text",
    [
        "Оригинальная кожаная сумка, доставка по России",
        "Сахар",
        "Ψάχνω παπούτσια ΝΙΚΕ στην Αθήνα",
        "本物のグッチのバッグです、新品未使用",
        "정품 가방 새상품",
    ],
)
def test_genuine_non_latin_text_is_only_case_folded(text: str) -> None:
    assert normalize(text) == text.casefold()


@pytest.mark.parametrize("number", ["1:1", "2024", "42mm", "iphone15", "3.5", "A4", "第1回"])
def test_real_numbers_survive(number: str) -> None:
    assert normalize(f"bag {number} new").split()[1] == number.casefold()


def test_counterfeit_cues_survive_in_a_title() -> None:
    assert normalize("1:1 Replica AAA Quality 2024") == "1:1 replica aaa quality 2024"


def test_clothing_sizes_are_not_joined_into_a_word() -> None:
    assert normalize("Camiseta talla S M L XL") == "camiseta talla s m l xl"


@pytest.mark.parametrize("missing", [None, float("nan"), pd.NA, math.nan])
def test_missing_values_normalise_to_empty_string(missing: object) -> None:
    assert normalize(missing) == ""  # type: ignore[arg-type]


def test_emoji_become_word_boundaries() -> None:
    assert normalize("🔥Gucci🔥bag✨ 💯") == "gucci bag"
    assert normalize("G🔥u🔥c🔥c🔥i") == "gucci"


def test_trademark_signs_do_not_glue_onto_the_brand() -> None:
    assert normalize("Gucci™ Marmont®") == "gucci marmont"


def test_bytes_are_rejected_with_their_type() -> None:
    with pytest.raises(TypeError, match="bytes"):
        normalize(b"gucci")  # type: ignore[arg-type]


def test_normalize_steps_show_each_stage_and_end_at_normalize() -> None:
    text = "Ｇ.u.с.с.i 1:1"
    steps = normalize_steps(text)
    assert list(steps) == ["raw", "unicode", "separators", "leet", "homoglyphs", "normalized"]
    assert steps["raw"] == text
    assert steps["unicode"] == "G.u.с.с.i 1:1"  # fullwidth folded, look-alikes still there
    assert steps["separators"] == "Guссi 1:1"
    assert steps["homoglyphs"] == "Gucci 1:1"
    assert steps["normalized"] == normalize(text) == "gucci 1:1"


def test_text_of_skips_missing_and_blank_parts() -> None:
    assert text_of("Gucci bag", "  ") == "Gucci bag"
    assert text_of(None, "Leather") == "Leather"
    assert text_of("Gucci bag", "Leather") == "Gucci bag | Leather"
    assert text_of(float("nan"), None) == ""


def test_model_text_carries_raw_and_normalised_halves() -> None:
    joined = model_text("Guссi bag", "1:1")
    raw, normalised = joined.split(MODEL_TEXT_SEPARATOR)
    assert raw == "Guссi bag | 1:1"
    assert normalised == "gucci bag | 1:1"
    assert model_text(None, None) == ""
