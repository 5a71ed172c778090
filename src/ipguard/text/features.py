"""Brand-mention features: which catalog brand a listing names, and how hard it hid the name.

A genuine seller writes "Gucci"; a counterfeiter who has been blocked writes "Guссi",
"G.u.c.c.i" or "Gucc1". Both mention the brand, but only the second *disguises* it, and
the disguise itself is strong evidence. :class:`BrandMatcher` therefore reports, for the
best-matching catalog brand, both how well the normalised text matches it and how much work
(normalisation, fuzziness) that match needed.

Matching compares the brand, with its words joined ("louisvuitton"), against every window of
one to ``k + 1`` consecutive words of the normalised text (``k`` = the most words in a
catalog brand), also joined, so "louis vuitton", "louisvuitton" and "lou isvuitton" all line
up with the brand. Windows are also tried with every digit read as a letter ("nik3" ->
"nike"), which normalisation refuses to do at word edges because it cannot tell a disguise
from a model number; here the brand catalog tells the two apart. Accents are ignored when
comparing ("hermes" matches "Hermès"). Similarity is rapidfuzz's normalised Levenshtein
similarity: unlike the Indel ratio it does not let a short brand hide inside a longer word
("nike" scores 0.67 against "unlike", not 0.8).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from ipguard.text.leet import LEET_MAP
from ipguard.text.normalization import is_missing, normalize

__all__ = ["FEATURE_DIM", "FEATURE_NAMES", "BrandMatcher", "BrandMention"]

#: Column names of :meth:`BrandMatcher.features`, in order.
FEATURE_NAMES: tuple[str, ...] = (
    "brand_score",
    "brand_exact_raw",
    "brand_exact_normalised",
    "brand_disguise",
    "brand_found",
)
FEATURE_DIM = len(FEATURE_NAMES)

_DICT_FORMAT = "ipguard.brand_matcher"
_DICT_VERSION = 1
_TOKEN = re.compile(r"[^\W_]+")
_DIGITS_AS_LETTERS = str.maketrans({d: c for d, c in LEET_MAP.items() if d.isdigit()})


@dataclass(frozen=True)
class BrandMention:
    """The best catalog brand found in one listing text.

    ``disguise`` is 0 for a verbatim (case-insensitive) mention, 1 when no brand was found,
    and otherwise ``0.5 + 0.5 * (1 - score)``: half for needing normalisation at all, the
    rest for the fuzziness that remained after it.
    """

    brand: str | None
    score: float
    exact_raw: bool
    exact_normalised: bool
    disguise: float

    @property
    def found(self) -> bool:
        return self.brand is not None


def _joined_tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def _without_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", stripped)


def _bounded(needle: str) -> re.Pattern[str]:
    """A pattern for ``needle`` not glued to further letters or digits on either side.

    Any run of whitespace matches a space in ``needle``: a doubled space is not a disguise.
    """
    body = r"\s+".join(re.escape(part) for part in needle.split())
    return re.compile(rf"(?<![^\W_]){body}(?![^\W_])")


class BrandMatcher:
    """Finds the catalog brand a listing text names, seeing through disguises.

    The matcher is a plain value (catalog + threshold) that serialises to JSON with
    :meth:`to_dict`, so it travels with a model and serving reproduces training exactly.
    """

    FEATURE_NAMES: tuple[str, ...] = FEATURE_NAMES

    def __init__(self, brands: Sequence[str], *, threshold: float = 0.8) -> None:
        if isinstance(brands, str) or not isinstance(brands, Sequence):
            raise TypeError(
                f"brands: expected a sequence of brand names, found {type(brands).__name__}"
            )
        if len(brands) == 0:
            raise ValueError("brands: expected at least one brand name, found an empty catalog")
        if not 0.0 < float(threshold) <= 1.0:
            raise ValueError(f"threshold: expected a value in (0, 1], found {threshold!r}")

        self._brands: tuple[str, ...] = tuple(brands)
        self._threshold = float(threshold)
        self._normalised: list[str] = []
        self._keys: list[str] = []
        seen: dict[str, int] = {}
        for index, brand in enumerate(self._brands):
            if not isinstance(brand, str):
                raise TypeError(
                    f"brands[{index}]: expected str, found {type(brand).__name__} ({brand!r})"
                )
            normalised = normalize(brand)
            key = _without_accents("".join(_joined_tokens(normalised)))
            if not key:
                raise ValueError(
                    f"brands[{index}]: {brand!r} has no letters or digits after normalisation"
                )
            if key in seen:
                first = seen[key]
                raise ValueError(
                    f"brands[{index}]: {brand!r} normalises to the same name as "
                    f"brands[{first}] ({self._brands[first]!r}); keep one of them"
                )
            seen[key] = index
            self._normalised.append(normalised)
            self._keys.append(key)

        self._raw_patterns = [_bounded(brand.casefold()) for brand in self._brands]
        self._normalised_patterns = [_bounded(n) for n in self._normalised]
        self._window = max(len(_joined_tokens(n)) for n in self._normalised) + 1

    @property
    def brands(self) -> tuple[str, ...]:
        return self._brands

    @property
    def threshold(self) -> float:
        return self._threshold

    def _candidates(self, normalised: str) -> list[str]:
        tokens = _joined_tokens(_without_accents(normalised))
        candidates: set[str] = set()
        for size in range(1, self._window + 1):
            for start in range(len(tokens) - size + 1):
                window = "".join(tokens[start : start + size])
                candidates.add(window)
                if not window.isdigit():
                    candidates.add(window.translate(_DIGITS_AS_LETTERS))
        return sorted(candidates)

    def _similarities(self, normalised: str) -> np.ndarray:
        candidates = self._candidates(normalised)
        if not candidates:
            return np.zeros(len(self._keys), dtype=np.float64)
        matrix = process.cdist(
            self._keys,
            candidates,
            scorer=Levenshtein.normalized_similarity,
            dtype=np.float64,
            workers=1,
        )
        return matrix.max(axis=1)

    def match(self, text: str | None) -> BrandMention:
        """The best brand mention in ``text`` (raw listing text, e.g. from ``text_of``)."""
        if is_missing(text) or not str(text).strip():
            return BrandMention(None, 0.0, False, False, 1.0)
        raw = str(text)
        raw_folded = raw.casefold()
        normalised = normalize(raw)

        scores = self._similarities(normalised)
        exact_raw = np.array(
            [pattern.search(raw_folded) is not None for pattern in self._raw_patterns]
        )
        scores[exact_raw] = 1.0

        best_score = float(scores.max())
        tied = np.flatnonzero(scores >= best_score - 1e-12)
        # Among equally good brands prefer a verbatim one, then the longest name.
        best = max(tied, key=lambda i: (bool(exact_raw[i]), len(self._keys[i]), -i))
        if best_score < self._threshold:
            return BrandMention(None, best_score, False, False, 1.0)

        is_raw = bool(exact_raw[best])
        is_normalised = (
            not is_raw and self._normalised_patterns[best].search(normalised) is not None
        )
        disguise = 0.0 if is_raw else 0.5 + 0.5 * (1.0 - best_score)
        return BrandMention(self._brands[best], best_score, is_raw, is_normalised, disguise)

    def features(self, texts: Sequence[str | None]) -> np.ndarray:
        """Float32 ``(n, FEATURE_DIM)``: score, exact_raw, exact_normalised, disguise, found."""
        rows = np.zeros((len(texts), FEATURE_DIM), dtype=np.float32)
        for row, text in enumerate(texts):
            mention = self.match(text)
            rows[row] = (
                mention.score,
                mention.exact_raw,
                mention.exact_normalised,
                mention.disguise,
                mention.found,
            )
        return rows

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable description; :meth:`from_dict` rebuilds an equal matcher."""
        return {
            "format": _DICT_FORMAT,
            "version": _DICT_VERSION,
            "brands": list(self._brands),
            "threshold": self._threshold,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BrandMatcher:
        if not isinstance(d, Mapping):
            raise TypeError(f"brand matcher: expected a mapping, found {type(d).__name__}")
        if d.get("format") != _DICT_FORMAT or d.get("version") != _DICT_VERSION:
            raise ValueError(
                f"brand matcher: expected format {_DICT_FORMAT!r} version {_DICT_VERSION}, "
                f"found format {d.get('format')!r} version {d.get('version')!r}"
            )
        missing = [key for key in ("brands", "threshold") if key not in d]
        if missing:
            raise ValueError(
                f"brand matcher: expected keys 'brands' and 'threshold', missing {missing}"
            )
        return cls(list(d["brands"]), threshold=float(d["threshold"]))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BrandMatcher):
            return NotImplemented
        return self._brands == other._brands and self._threshold == other._threshold

    def __hash__(self) -> int:
        return hash((self._brands, self._threshold))

    def __repr__(self) -> str:
        return f"BrandMatcher({len(self._brands)} brands, threshold={self._threshold})"
