"""Normalise listing text so that disguised brand names and their clean forms read the same.

Sellers whose keyword gets blocked change its spelling, not its meaning: fullwidth letters
("Ｇucci"), Cyrillic or Greek look-alikes ("Guссi"), zero-width characters, letters split by
dots or spaces ("G.u.c.c.i"), digits for letters ("G00gle"). :func:`normalize` undoes those
tricks, in this order (each stage is visible through :func:`normalize_steps`, so a reviewer can
see why two titles were treated as one):

1. ``unicode``: missing values become ``""``; emoji, pictographs, control characters and
   trademark signs become a space; invisible characters (format characters such as ZWSP,
   ZWNJ, ZWJ, WJ, BOM, soft hyphen, plus variation selectors and Hangul fillers) are removed;
   negative squared/circled letters ("🅶") become letters; NFKC (folds fullwidth and
   mathematical letters); whitespace collapsed.
2. ``separators``: runs of single letters split by one separator are joined
   ("G.u.c.c.i", "G u c c i", "G-u-c-c-i" -> "Gucci"). Punctuation-separated runs need two
   letters ("L.V" -> "LV"), space-separated runs four, so sizes in "talla S M L" survive.
   Only letters join: "G.u.5.5.i" stays apart, since digits between dots are more often
   versions or dates than disguises.
3. ``leet``: digits between letters are read as letters ("Gu55i" -> "Gussi"); real numbers
   ("1:1", "2024", "42mm", "iphone15") are kept, see :mod:`ipguard.text.leet`.
4. ``homoglyphs``: look-alike letters inside disguised Latin words fold to Latin, using
   Unicode's confusables data; genuine Cyrillic, Greek or Japanese text is left intact, see
   :mod:`ipguard.text.confusables`. This runs before case folding because case carries the
   resemblance (Greek "Ν" looks like "N", its lowercase "ν" like "v").
5. ``normalized``: case folding (then NFKC again, which case folding can disturb).

Emoji become a space rather than a token: the normalised text exists to compare words, and
the raw half of :func:`model_text` still shows the emoji to any model that wants them.

The function is idempotent (``normalize(normalize(x)) == normalize(x)``), which lets callers
normalise defensively at every boundary. One pass is a fixed point for ordinary text; the
pass is repeated until nothing changes to cover Unicode corner cases where joining letters
creates a new composition (Hangul jamo that NFKC merges into a syllable).
"""

from __future__ import annotations

import numbers
import re
import unicodedata
from collections.abc import Callable
from functools import cache, lru_cache

from ipguard.text.confusables import fold_homoglyphs
from ipguard.text.leet import fold_leet

__all__ = [
    "MODEL_TEXT_SEPARATOR",
    "TEXT_PART_SEPARATOR",
    "casefold_text",
    "clean_unicode",
    "is_missing",
    "model_text",
    "normalize",
    "normalize_steps",
    "text_of",
]

#: Joins title and description in :func:`text_of`.
TEXT_PART_SEPARATOR = " | "
#: Joins raw and normalised text in :func:`model_text`; a character that normalisation
#: never produces from ordinary titles, so a model can tell the halves apart.
MODEL_TEXT_SEPARATOR = " ⟂ "

_MAX_PASSES = 8

# Blocks that hold emoji and pictographs. Characters here that NFKC maps to letters or digits
# (squared "🄰", "🄀") are not treated as emoji: NFKC turns them into what they show.
_EMOJI_BLOCKS: tuple[tuple[int, int], ...] = (
    (0x2300, 0x23FF),  # Miscellaneous Technical (⌚, ⏰)
    (0x2600, 0x27BF),  # Miscellaneous Symbols, Dingbats (★, ❤, ✔)
    (0x2B00, 0x2BFF),  # Miscellaneous Symbols and Arrows (⭐, ⬛)
    (0x1F000, 0x1FAFF),  # Mahjong .. Symbols and Pictographs Extended-A (🔥, 😀, 🇺)
    (0x20E3, 0x20E3),  # combining enclosing keycap (1️⃣)
)
# Trademark signs glue onto the brand they follow ("Gucci™" would become "guccitm").
_TRADEMARK_SIGNS = frozenset("©®™℠")
# Default-ignorable characters that are not format characters (category Cf).
_INVISIBLE_EXTRA = frozenset(
    "\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180f\u3164\uffa0"
    + "".join(chr(c) for c in range(0xFE00, 0xFE10))
)
_NEGATIVE_LETTER_NAME = re.compile(r"^NEGATIVE (?:SQUARED|CIRCLED) LATIN CAPITAL LETTER ([A-Z])$")

_LETTER = r"[^\W\d_]"
# "|" is left out: it joins title and description in text_of.
_SEPARATOR = r"(?: ?[.\-_*·•‧~+/–—] ?| )"
_SINGLE_LETTER_RUN = re.compile(rf"(?<![^\W_]){_LETTER}(?:{_SEPARATOR}{_LETTER})+(?![^\W_])")
_LETTER_RE = re.compile(_LETTER)


def is_missing(value: object) -> bool:
    """True for None, NaN and pandas' NA, the ways a manifest says "no text here"."""
    if value is None:
        return True
    if isinstance(value, str):
        return False
    try:
        return bool(value != value)
    except TypeError:  # pandas.NA refuses to be truth-tested
        return True


def _as_text(value: object, what: str) -> str:
    if is_missing(value):
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Number) and not isinstance(value, bool):
        # A CSV reader may parse a title such as "2024" as a number; it is still text.
        return str(value)
    raise TypeError(f"{what}: expected str or None, found {type(value).__name__} ({value!r})")


@cache
def _enclosed_letters() -> dict[str, str]:
    table: dict[str, str] = {}
    for code in range(0x1F100, 0x1F200):
        match = _NEGATIVE_LETTER_NAME.match(unicodedata.name(chr(code), ""))
        if match:
            table[chr(code)] = match.group(1).lower()
    return table


@cache
def _is_emoji(char: str) -> bool:
    code = ord(char)
    in_block = any(low <= code <= high for low, high in _EMOJI_BLOCKS)
    return in_block and unicodedata.normalize("NFKC", char) == char


def _is_invisible(char: str) -> bool:
    return unicodedata.category(char) == "Cf" or char in _INVISIBLE_EXTRA


def _clean_char(char: str) -> str:
    if char.isascii() and char.isprintable():
        return char
    enclosed = _enclosed_letters().get(char)
    if enclosed is not None:
        return enclosed
    if _is_invisible(char):
        return ""
    if char in _TRADEMARK_SIGNS or unicodedata.category(char) == "Cc" or _is_emoji(char):
        return " "
    return char


def _until_stable(text: str, step: Callable[[str], str]) -> str:
    for _ in range(_MAX_PASSES):
        following = step(text)
        if following == text:
            break
        text = following
    return text


class _CleanTable(dict[int, str]):
    """:func:`_clean_char` as a ``str.translate`` table, filled on first sight of a character.

    Cleaning char by char in Python was a third of :func:`normalize`'s cost; ``translate``
    walks the text in C and asks Python only about characters it has not met before, with the
    same replacement for each.
    """

    def __missing__(self, code: int) -> str:
        self[code] = replacement = _clean_char(chr(code))
        return replacement


_CLEAN_TABLE = _CleanTable()


def _clean_pass(text: str) -> str:
    return unicodedata.normalize("NFKC", text.translate(_CLEAN_TABLE))


def _casefold_pass(text: str) -> str:
    return unicodedata.normalize("NFKC", text.casefold())


def clean_unicode(text: str | None) -> str:
    """Stage 1 of :func:`normalize`: invisible characters and emoji out, NFKC, one space.

    Case is kept. Useful on its own where folding would hurt, e.g. language detection.
    """
    return " ".join(_until_stable(_as_text(text, "text"), _clean_pass).split())


def casefold_text(text: str) -> str:
    """Last stage of :func:`normalize`: case folding (with NFKC, which it can disturb)."""
    return " ".join(_until_stable(text, _casefold_pass).split())


def _join_run(match: re.Match[str]) -> str:
    run = match.group()
    letters = _LETTER_RE.findall(run)
    needed = 4 if " " in run else 2
    return "".join(letters) if len(letters) >= needed else run


def _join_single_letters(text: str) -> str:
    return _SINGLE_LETTER_RUN.sub(_join_run, text)


def _one_pass(text: str) -> dict[str, str]:
    steps = {"raw": text}
    steps["unicode"] = clean_unicode(text)
    steps["separators"] = _join_single_letters(steps["unicode"])
    steps["leet"] = fold_leet(steps["separators"])
    steps["homoglyphs"] = fold_homoglyphs(steps["leet"])
    steps["normalized"] = casefold_text(steps["homoglyphs"])
    return steps


def normalize_steps(text: str | None) -> dict[str, str]:
    """Each stage's output, in order, ending with ``normalized`` (equal to :func:`normalize`).

    Meant for explaining a score to a reviewer: which stage turned "Ｇ.u.с.с.i" into
    "gucci".
    """
    steps = _one_pass(_as_text(text, "text"))
    steps["normalized"] = normalize(steps["normalized"])
    return steps


def normalize(text: str | None) -> str:
    """The comparable form of a listing text; idempotent, ``""`` for missing values."""
    return _normalized(_as_text(text, "text"))


@lru_cache(maxsize=4096)
def _normalized(text: str) -> str:
    # bounded cache: scoring one listing normalises the same text for the text tower, the
    # brand matcher and the evidence's cue search, and a request's texts stay within the bound
    return _until_stable(text, lambda current: _one_pass(current)["normalized"])


def text_of(title: str | None, description: str | None) -> str:
    """The listing text a model reads: title, then description, missing or blank parts skipped."""
    parts = (_as_text(title, "title").strip(), _as_text(description, "description").strip())
    return TEXT_PART_SEPARATOR.join(part for part in parts if part)


def model_text(title: str | None, description: str | None) -> str:
    """Raw and normalised listing text joined by :data:`MODEL_TEXT_SEPARATOR`.

    Models see both: the normalised half makes disguises look like the clean word, the raw
    half keeps the disguise itself (odd scripts, emoji, spacing), which is evidence too.
    Empty when the listing has no text.
    """
    raw = text_of(title, description)
    if not raw:
        return ""
    return f"{raw}{MODEL_TEXT_SEPARATOR}{normalize(raw)}"
