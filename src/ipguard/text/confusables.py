"""Fold look-alike letters from other scripts onto Latin, without mangling real foreign text.

Counterfeit listings spell brand names with letters that merely *look* Latin ("Guссi" with
Cyrillic с). The table of which characters look like which comes from Unicode's
confusables data as packaged by ``confusable_homoglyphs``; nothing here is typed by hand, so
the table improves when that package does.

Folding every confusable character would turn genuine Russian or Greek text into nonsense
("сахар" -> "caxap"), so a word is folded only when it is plausibly a disguised Latin word:

* all its letters are Latin or Latin look-alikes, **and**
* it already contains at least one genuine Latin letter (a mixed-script word, the classic
  disguise), or the text as a whole is mostly Latin (a fully look-alike word such as
  "Сосо" inside an otherwise Latin title).

"Mostly Latin" is measured so that folding cannot change the verdict: letters of words that
will be folded count as Latin before and after folding, which keeps :func:`fold_homoglyphs`
idempotent. It runs before case folding, so a capital Greek "Ν" can still read as "N" (its
lowercase "ν" looks like "v"); it puts ASCII letters of the same case in place of look-alikes.
"""

from __future__ import annotations

import re
from enum import Enum
from functools import cache

from confusable_homoglyphs import categories, confusables

__all__ = [
    "fold_homoglyphs",
    "homoglyph_table",
    "is_latin_like",
    "latin_lookalike",
    "script_of",
]

_WORD = re.compile(r"[^\W\d_]+")


@cache
def script_of(char: str) -> str:
    """Unicode script alias of one character, e.g. ``LATIN``, ``CYRILLIC``, ``COMMON``."""
    if char.isascii():
        return "LATIN" if char.isalpha() else "COMMON"
    return categories.alias(char)


def _ascii_letter_targets(char: str) -> list[str]:
    entries = confusables.confusables_data.get(char, [])
    return [e["c"] for e in entries if len(e["c"]) == 1 and e["c"].isascii() and e["c"].isalpha()]


def _preferred_target(char: str, targets: list[str]) -> str:
    """Pick the ASCII letter a character most resembles, keeping its case where possible.

    The confusables data relates capital iota "Ι" only to "l" (its skeleton), yet in a word
    it stands for "I"; one hop through the ASCII pairs ("l" ~ "I") recovers that.
    """
    wanted_upper = char.isupper()
    reachable = list(targets)
    for target in targets:
        reachable += [t for t in _ascii_letter_targets(target) if t not in reachable]
    same_case = sorted(t for t in reachable if t.isupper() == wanted_upper)
    return (same_case or sorted(targets))[0].lower()


@cache
def homoglyph_table() -> dict[str, str]:
    """Map each non-ASCII letter that looks like an ASCII letter to that (lowercase) letter.

    The map is closed under case folding: when a letter is in it, so is its case-folded
    form, inheriting the capital's look-alike when it has none of its own (Cyrillic "т"
    folds to "t" because "Т" looks like "T"). ``normalize`` case-folds after folding
    homoglyphs, so this closure is what keeps a second pass from seeing a different
    picture than the first.
    """
    table: dict[str, str] = {}
    for char in confusables.confusables_data:
        if len(char) != 1 or char.isascii() or not char.isalpha():
            continue
        targets = _ascii_letter_targets(char)
        if targets:
            table[char] = _preferred_target(char, targets)
    for char, target in list(table.items()):
        folded = char.casefold()
        if len(folded) == 1 and not folded.isascii() and folded.isalpha():
            table.setdefault(folded, target)
    return table


def latin_lookalike(char: str) -> str | None:
    """The lowercase ASCII letter ``char`` passes for, or None.

    A letter counts when it or its case-folded form is in :func:`homoglyph_table`, so the
    answer never changes when ``normalize`` case-folds the text.
    """
    if char.isascii():
        return None
    table = homoglyph_table()
    found = table.get(char)
    if found is None:
        folded = char.casefold()
        found = table.get(folded) if len(folded) == 1 else None
    return found


def is_latin_like(char: str) -> bool:
    """True for Latin letters and for letters that pass for Latin ones."""
    return script_of(char) == "LATIN" or latin_lookalike(char) is not None


class _WordKind(Enum):
    LATIN = "latin"  # only Latin letters: folds only Latin-script look-alikes such as "ɑ"
    MIXED = "mixed"  # Latin letters plus look-alikes from other scripts: always folded
    LOOKALIKE = "lookalike"  # look-alikes only: folded when the text is mostly Latin
    OTHER = "other"  # contains a letter with no Latin look-alike: left intact


def _kind(word: str) -> _WordKind:
    latin = lookalike = 0
    for char in word:
        if script_of(char) == "LATIN":
            latin += 1
        elif latin_lookalike(char) is not None:
            lookalike += 1
        else:
            return _WordKind.OTHER
    if lookalike == 0:
        return _WordKind.LATIN
    return _WordKind.MIXED if latin else _WordKind.LOOKALIKE


def _fold(word: str, *, other_scripts: bool) -> str:
    """Fold Latin-script look-alikes ("ɑ", "ɡ", "ı") always, other scripts' only if asked."""
    if word.isascii():  # no ASCII character is a look-alike: the common case, at no cost
        return word
    folded = []
    for char in word:
        target = latin_lookalike(char)
        if target is not None and (other_scripts or script_of(char) == "LATIN"):
            char = target.upper() if char.isupper() else target
        folded.append(char)
    return "".join(folded)


def fold_homoglyphs(text: str) -> str:
    """Replace look-alike letters by Latin ones inside words that are disguised Latin words."""
    if text.isascii():  # nothing to fold (see _fold); most listing texts are plain ASCII
        return text
    words = [(match, _kind(match.group())) for match in _WORD.finditer(text)]
    latin_letters = sum(len(m.group()) for m, k in words if k in (_WordKind.LATIN, _WordKind.MIXED))
    other_letters = sum(
        len(m.group()) for m, k in words if k in (_WordKind.LOOKALIKE, _WordKind.OTHER)
    )
    mostly_latin = latin_letters > other_letters

    pieces: list[str] = []
    position = 0
    for match, kind in words:
        pieces.append(text[position : match.start()])
        fold_all = kind is _WordKind.MIXED or (kind is _WordKind.LOOKALIKE and mostly_latin)
        pieces.append(_fold(match.group(), other_scripts=fold_all))
        position = match.end()
    pieces.append(text[position:])
    return "".join(pieces)
