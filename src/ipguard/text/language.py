"""Detect the language of a listing text, offline, among the marketplace's languages.

Manifests may leave ``language`` empty; per-language slices in evaluation and the text models
still need one. py3langid ships its model inside the package, so detection works without a
network. Restricting it to the languages the marketplace actually serves removes confusions
with close relatives that never occur there (Spanish with Galician, Portuguese with
Occitan); on short titles those cost more than the rare listing in an unlisted language,
which gets the nearest listed one.

Detection runs on :func:`ipguard.text.normalization.clean_unicode` output (no emoji, no invisible
characters, NFKC) but not on fully normalised text: folding look-alikes and case would erase
evidence such as German "ß" or a Cyrillic word.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache

from py3langid.langid import MODEL_FILE, LanguageIdentifier

from ipguard.text.normalization import clean_unicode

__all__ = ["DEFAULT_LANGUAGES", "available_languages", "detect_language", "detect_languages"]

#: ISO 639-1 codes of the marketplace's storefront languages (US, MX, BR, EU, JP, ...).
DEFAULT_LANGUAGES: tuple[str, ...] = (
    "en",
    "es",
    "pt",
    "de",
    "fr",
    "it",
    "nl",
    "ja",
    "zh",
    "ko",
    "ru",
    "tr",
    "pl",
    "ar",
)


@cache
def _full_identifier() -> LanguageIdentifier:
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def available_languages() -> tuple[str, ...]:
    """Every code the bundled model knows; a configured language set must come from these."""
    return tuple(sorted(_full_identifier().labels))


@cache
def _identifier(languages: tuple[str, ...]) -> LanguageIdentifier:
    # One identifier per language set: set_languages mutates, so sets must not share one.
    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    known = set(identifier.labels)
    unknown = sorted(set(languages) - known)
    if unknown:
        raise ValueError(
            f"languages: expected codes known to py3langid's model, found unknown {unknown}; "
            f"known codes: {', '.join(sorted(known))}"
        )
    identifier.set_languages(list(languages))
    return identifier


def _language_set(languages: Iterable[str] | None) -> tuple[str, ...]:
    if languages is None:
        return DEFAULT_LANGUAGES
    if isinstance(languages, str):
        raise TypeError(f"languages: expected a sequence of codes, found the string {languages!r}")
    chosen = tuple(sorted(set(languages)))
    if not chosen:
        raise ValueError("languages: expected at least one language code, found none")
    return chosen


def detect_language(text: str | None, *, languages: Iterable[str] | None = None) -> str | None:
    """ISO 639-1 code of ``text``'s language, or None when it has no letters to judge by.

    ``languages`` restricts the answer (default :data:`DEFAULT_LANGUAGES`).
    """
    identifier = _identifier(_language_set(languages))
    cleaned = clean_unicode(text)
    if not any(char.isalpha() for char in cleaned):
        return None
    language, _confidence = identifier.classify(cleaned)
    return language


def detect_languages(
    texts: Sequence[str | None], *, languages: Iterable[str] | None = None
) -> list[str | None]:
    """:func:`detect_language` for each text, in order."""
    chosen = _language_set(languages)
    return [detect_language(text, languages=chosen) for text in texts]
