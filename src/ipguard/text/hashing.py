"""Hashed word and character n-gram ids for a fastText-style ``nn.EmbeddingBag`` text model.

Hashing instead of a vocabulary means no vocabulary to build, store or fall out of date: a
new counterfeit slang word or a new language gets ids like any other, and character n-grams
cover scripts written without spaces (Japanese, Chinese). The price is collisions, which a
few hundred thousand buckets keep rare enough for titles.

Ids must be identical at training and serving time, in every process, so the hash is
BLAKE2b over UTF-8 bytes, never Python's ``hash()`` (salted per process). Every n-gram is
prefixed with its kind and size ("w2", "c4") so that the word "bag" and the character
trigram "bag" are different features.

Character n-grams are taken per word with ``<`` and ``>`` marking its edges, as in
fastText, so "<gu" (a word starting with "gu") differs from "gu" inside a word.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import torch

__all__ = ["batch_hashed_ngrams", "flat_hashed_ngrams", "hashed_ngram_ids"]


def _check_sizes(name: str, sizes: tuple[int, ...]) -> None:
    if any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in sizes):
        raise ValueError(f"{name}: expected positive integer n-gram sizes, found {sizes!r}")


@lru_cache(maxsize=2**20)  # n-grams repeat across listings; hashing dominates the cost
def _bucket(feature: str, n_buckets: int) -> int:
    digest = hashlib.blake2b(feature.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % n_buckets


@lru_cache(maxsize=2**18)
def _word_ids(
    word: str, word_sizes: tuple[int, ...], char_sizes: tuple[int, ...], n_buckets: int
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A word's own ids: its unigram id (when 1 is a word n-gram size) and its character
    n-gram ids, in :func:`hashed_ngram_ids`' order.

    Cached per word because words repeat far more than texts do (brand names, "bag",
    "original"): a title's ids are then a few cache look-ups instead of building and hashing
    every character n-gram string again, which was most of the text tower's serving cost
    (about 6 of 9 ms for 64 demo titles).
    """
    unigram = (_bucket(f"w1\x1f{word}", n_buckets),) if 1 in word_sizes else ()
    marked = f"<{word}>"
    chars = tuple(
        _bucket(f"c{n}\x1f{marked[i : i + n]}", n_buckets)
        for n in char_sizes
        for i in range(len(marked) - n + 1)
    )
    return unigram, chars


def _checked(
    n_buckets: object, word_ngrams: Sequence[int], char_ngrams: Sequence[int]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    if isinstance(n_buckets, bool) or not isinstance(n_buckets, int) or n_buckets < 1:
        raise ValueError(f"n_buckets: expected a positive integer, found {n_buckets!r}")
    words, chars = tuple(word_ngrams), tuple(char_ngrams)
    _check_sizes("word_ngrams", words)
    _check_sizes("char_ngrams", chars)
    return words, chars


def _ids(
    text: str, n_buckets: int, word_sizes: tuple[int, ...], char_sizes: tuple[int, ...]
) -> list[int]:
    """Word n-grams by size, then each word's character n-grams: the order ids have always
    had (a bag's mean does not depend on it, but tests and stored fixtures compare lists)."""
    words = text.split()
    per_word = [_word_ids(word, word_sizes, char_sizes, n_buckets) for word in words]
    ids: list[int] = []
    for n in word_sizes:
        if n == 1:
            ids += [unigram[0] for unigram, _ in per_word]
        else:
            ids += [
                _bucket(f"w{n}\x1f" + " ".join(words[i : i + n]), n_buckets)
                for i in range(len(words) - n + 1)
            ]
    for _, chars in per_word:
        ids += chars
    return ids


def hashed_ngram_ids(
    text: str,
    *,
    n_buckets: int = 2**18,
    word_ngrams: tuple[int, ...] = (1, 2),
    char_ngrams: tuple[int, ...] = (3, 4, 5),
) -> list[int]:
    """Bucket ids of ``text``'s word and character n-grams, repeats kept (they are counts).

    Words are whitespace-separated tokens; pass text that is already normalised (e.g.
    :func:`ipguard.text.normalization.model_text`), this function does not change it. An empty
    text gives an empty list, which ``nn.EmbeddingBag`` turns into a zero vector.
    """
    if not isinstance(text, str):
        raise TypeError(f"text: expected str, found {type(text).__name__}")
    return _ids(text, n_buckets, *_checked(n_buckets, word_ngrams, char_ngrams))


def flat_hashed_ngrams(
    texts: Sequence[str],
    *,
    n_buckets: int = 2**18,
    word_ngrams: tuple[int, ...] = (1, 2),
    char_ngrams: tuple[int, ...] = (3, 4, 5),
) -> tuple[list[int], list[int]]:
    """:func:`batch_hashed_ngrams` as Python lists, for callers that build NumPy arrays (the
    serving graphs) rather than tensors."""
    sizes = _checked(n_buckets, word_ngrams, char_ngrams)
    flat: list[int] = []
    offsets: list[int] = []
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{index}]: expected str, found {type(text).__name__}")
        offsets.append(len(flat))
        flat += _ids(text, n_buckets, *sizes)
    return flat, offsets


def batch_hashed_ngrams(texts: Sequence[str], **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat ids and per-text offsets (both int64), the input format of ``nn.EmbeddingBag``.

    ``kwargs`` are those of :func:`hashed_ngram_ids`. ``offsets[i]`` is where text ``i``'s ids
    start in the flat tensor; a text with no ids has an empty bag.
    """
    flat, offsets = flat_hashed_ngrams(texts, **kwargs)
    return torch.tensor(flat, dtype=torch.int64), torch.tensor(offsets, dtype=torch.int64)
