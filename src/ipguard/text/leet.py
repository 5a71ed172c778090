"""Undo leetspeak inside words ("g00gle" -> "google") while leaving real numbers alone.

Titles are full of numbers that matter: "1:1" and "AAA" are counterfeit cues, "2024", "42mm",
"iphone15" and "a4" are model years, sizes and model names. A digit is therefore read as a
letter only where it sits *between* letters, possibly in a run of such digits ("gu55i",
"g00gle"). Digits at the edge of a word stay digits: "nik3" could be a model number as
easily as a disguise, and the brand matcher's fuzzy comparison is the right place to weigh
that, not normalisation, which must never invent letters where a number was meant.
Neighbouring letters must be Latin or Latin look-alikes, so "第1回" keeps its number.
"""

from __future__ import annotations

import re

from ipguard.text.confusables import is_latin_like

__all__ = ["LEET_MAP", "fold_leet"]

#: Characters read as letters when they sit between letters. "1" is read as "i", the more
#: common of its two readings ("i" and "l") in disguised brand names.
LEET_MAP: dict[str, str] = {
    "0": "o",
    "1": "i",
    "3": "e",
    "4": "a",
    "5": "s",
    "7": "t",
    "8": "b",
    "@": "a",
    "$": "s",
}

_LEET_CHARS = re.escape("".join(LEET_MAP))
# The left letter is consumed so that "a1b5c" folds both runs; the right one is only peeked.
_SANDWICHED = re.compile(rf"([^\W\d_])([{_LEET_CHARS}]+)(?=([^\W\d_]))")


def _replace(match: re.Match[str]) -> str:
    left, run, right = match.group(1), match.group(2), match.group(3)
    if is_latin_like(left) and is_latin_like(right):
        run = "".join(LEET_MAP[char] for char in run)
    return left + run


def fold_leet(text: str) -> str:
    """Replace runs of leet characters that sit between two Latin(-looking) letters."""
    return _SANDWICHED.sub(_replace, text)
