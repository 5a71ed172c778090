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

import torch

__all__ = ["batch_hashed_ngrams", "hashed_ngram_ids"]


def _check_sizes(name: str, sizes: tuple[int, ...]) -> None:
    if any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in sizes):
        raise ValueError(f"{name}: expected positive integer n-gram sizes, found {sizes!r}")


@lru_cache(maxsize=2**20)  # n-grams repeat across listings; hashing dominates the cost
def _bucket(feature: str, n_buckets: int) -> int:
    digest = hashlib.blake2b(feature.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % n_buckets


def _word_ngrams(words: list[str], sizes: tuple[int, ...]) -> list[str]:
    features: list[str] = []
    for n in sizes:
        prefix = f"w{n}\x1f"
        features += [prefix + " ".join(words[i : i + n]) for i in range(len(words) - n + 1)]
    return features


def _char_ngrams(words: list[str], sizes: tuple[int, ...]) -> list[str]:
    features: list[str] = []
    for word in words:
        marked = f"<{word}>"
        for n in sizes:
            prefix = f"c{n}\x1f"
            features += [prefix + marked[i : i + n] for i in range(len(marked) - n + 1)]
    return features


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
    if isinstance(n_buckets, bool) or not isinstance(n_buckets, int) or n_buckets < 1:
        raise ValueError(f"n_buckets: expected a positive integer, found {n_buckets!r}")
    word_ngrams, char_ngrams = tuple(word_ngrams), tuple(char_ngrams)
    _check_sizes("word_ngrams", word_ngrams)
    _check_sizes("char_ngrams", char_ngrams)

    words = text.split()
    features = _word_ngrams(words, word_ngrams) + _char_ngrams(words, char_ngrams)
    return [_bucket(feature, n_buckets) for feature in features]


def batch_hashed_ngrams(
    texts: Sequence[str], **kwargs: object
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat ids and per-text offsets (both int64), the input format of ``nn.EmbeddingBag``.

    ``kwargs`` are those of :func:`hashed_ngram_ids`. ``offsets[i]`` is where text ``i``'s ids
    start in the flat tensor; a text with no ids has an empty bag.
    """
    flat: list[int] = []
    offsets: list[int] = []
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{index}]: expected str, found {type(text).__name__}")
        offsets.append(len(flat))
        flat += hashed_ngram_ids(text, **kwargs)  # type: ignore[arg-type]
    return torch.tensor(flat, dtype=torch.int64), torch.tensor(offsets, dtype=torch.int64)
