"""Counterfeit wording found for the evidence column, and the hoisted search it runs."""

from __future__ import annotations

import random
import re

import pytest

from ipguard.text.cues import COUNTERFEIT_TERMS, _pattern, counterfeit_terms
from ipguard.text.normalization import normalize


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Gucci bag 1:1 mirror quality AAA+", ["1:1", "mirror quality", "aaa+"]),
        ("R.E.P.L.I.C.A watch, replica strap", ["replica"]),  # disguised and plain, once
        ("100% guarantee, copyright 2024", []),  # "ua" and "copy" only as whole words
        ("Сумка реплика люкс копия", ["реплика", "люкс копия"]),
        ("スーパーコピー 財布", ["スーパーコピー"]),
        ("", []),
        (None, []),
    ],
)
def test_terms_are_found_once_in_order_as_whole_words(text: str | None, found: list[str]) -> None:
    assert counterfeit_terms(text) == found


def _plain_pattern() -> re.Pattern[str]:
    """The search as one branch per term, each with its own boundary checks (the form the
    hoisted pattern must agree with)."""
    terms = sorted(
        {normalize(t) for group in COUNTERFEIT_TERMS.values() for t in group}, key=len, reverse=True
    )
    parts = [
        ("(?<!\\w)" if t[0].isalnum() else "")
        + re.escape(t)
        + ("(?!\\w)" if t[-1].isalnum() else "")
        for t in terms
    ]
    return re.compile("|".join(parts))


def test_hoisted_search_matches_one_branch_per_term() -> None:
    terms = [t for group in COUNTERFEIT_TERMS.values() for t in group]
    glue = ["", " ", "-", ".", "+", "x", "7", "ü", "コ"]
    noise = ["guarantee", "copyright", "aaa++", "1:1:1", "ua-", "7a7", "скопия", "コピー品"]
    rng = random.Random(3)
    texts = []
    for _ in range(3000):
        words = rng.sample(terms, 3) + rng.sample(noise, 2)
        rng.shuffle(words)
        texts.append(normalize(rng.choice(glue).join(words)))
    plain, hoisted = _plain_pattern(), _pattern()
    assert hoisted.pattern != plain.pattern  # the search really is the hoisted form
    hits = 0
    for text in texts:
        expected = [(m.start(), m.group()) for m in plain.finditer(text)]
        assert [(m.start(), m.group()) for m in hoisted.finditer(text)] == expected, text
        hits += len(expected)
    assert hits > 3000  # the texts do exercise the terms
