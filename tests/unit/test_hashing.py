"""Hashed n-gram ids are stable across processes and fit nn.EmbeddingBag."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from ipguard.text.hashing import batch_hashed_ngrams, hashed_ngram_ids

TEXTS = ["gucci 1:1 replica bag", "本物のバッグ", "", "nike air"]


def test_ids_are_identical_in_processes_with_different_hash_seeds() -> None:
    script = (
        "import json, sys; from ipguard.text.hashing import hashed_ngram_ids; "
        "print(json.dumps([hashed_ngram_ids(t, n_buckets=1000) for t in json.loads(sys.argv[1])]))"
    )
    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", script, json.dumps(TEXTS)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
            timeout=120,
        )
        outputs.append(json.loads(done.stdout))
    here = [hashed_ngram_ids(t, n_buckets=1000) for t in TEXTS]
    assert outputs[0] == outputs[1] == here


def test_one_id_per_word_ngram_and_per_character_ngram_of_marked_words() -> None:
    ids = hashed_ngram_ids("ab cde", word_ngrams=(1, 2), char_ngrams=(3,))
    # words: 2 unigrams + 1 bigram; characters: "<ab>" has 2 trigrams, "<cde>" has 3
    assert len(ids) == 2 + 1 + 2 + 3


def test_ids_stay_inside_the_bucket_range() -> None:
    ids = hashed_ngram_ids("a fairly long listing title with many words", n_buckets=7)
    assert ids and all(0 <= i < 7 for i in ids)


def test_shared_word_gets_the_same_id_and_different_words_differ() -> None:
    first = hashed_ngram_ids("replica", word_ngrams=(1,), char_ngrams=())
    second = hashed_ngram_ids("bag replica", word_ngrams=(1,), char_ngrams=())
    other = hashed_ngram_ids("authentic", word_ngrams=(1,), char_ngrams=())
    assert first[0] == second[1]
    assert first != other


def test_word_and_character_ngram_with_the_same_text_are_different_features() -> None:
    word = hashed_ngram_ids("abc", word_ngrams=(1,), char_ngrams=())
    chars = hashed_ngram_ids("abc", word_ngrams=(), char_ngrams=(5,))  # "<abc>"
    trigram = hashed_ngram_ids("xabcx", word_ngrams=(), char_ngrams=(3,))  # includes "abc"
    assert word[0] not in trigram
    assert chars != word


def test_batch_offsets_mark_each_text_and_feed_embedding_bag() -> None:
    flat, offsets = batch_hashed_ngrams(TEXTS, n_buckets=64)
    assert flat.dtype == torch.int64 and offsets.dtype == torch.int64
    lengths = [len(hashed_ngram_ids(t, n_buckets=64)) for t in TEXTS]
    assert offsets.tolist() == [sum(lengths[:i]) for i in range(len(TEXTS))]
    assert flat.numel() == sum(lengths)

    bag = torch.nn.EmbeddingBag(64, 8, mode="mean")
    pooled = bag(flat, offsets)
    assert pooled.shape == (len(TEXTS), 8)
    assert torch.all(pooled[2] == 0)  # the empty text is an empty bag
    assert not torch.all(pooled[0] == 0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_buckets": 0}, "n_buckets"),
        ({"word_ngrams": (0,)}, "word_ngrams"),
        ({"char_ngrams": (2, -1)}, "char_ngrams"),
    ],
)
def test_invalid_settings_are_rejected_by_name(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        hashed_ngram_ids("gucci", **kwargs)


def test_non_string_in_batch_is_rejected_with_its_position() -> None:
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        batch_hashed_ngrams(["ok", None])  # type: ignore[list-item]


def _reference_ids(text: str, n_buckets: int, words_n: tuple, chars_n: tuple) -> list[int]:
    """The ids spelled out n-gram by n-gram, with no per-word cache: what the cached
    implementation must reproduce, order included."""
    import hashlib

    def bucket(feature: str) -> int:
        digest = hashlib.blake2b(feature.encode("utf-8", "surrogatepass"), digest_size=8)
        return int.from_bytes(digest.digest(), "little") % n_buckets

    words = text.split()
    ids = [
        bucket(f"w{n}\x1f" + " ".join(words[i : i + n]))
        for n in words_n
        for i in range(len(words) - n + 1)
    ]
    for word in words:
        marked = f"<{word}>"
        ids += [
            bucket(f"c{n}\x1f{marked[i : i + n]}")
            for n in chars_n
            for i in range(len(marked) - n + 1)
        ]
    return ids


@pytest.mark.parametrize(
    ("words_n", "chars_n"), [((1, 2), (3, 4, 5)), ((2, 1), (4,)), ((1, 2, 3), ()), ((2,), (3,))]
)
def test_cached_ids_equal_the_n_grams_spelled_out(words_n: tuple, chars_n: tuple) -> None:
    texts = [*TEXTS, "bag bag bag gucci", "a", "  spaced   out  ", "gucci ⟂ gucci"]
    for text in texts * 2:  # the second round reads the per-word cache
        expected = _reference_ids(text, 997, words_n, chars_n)
        assert hashed_ngram_ids(text, n_buckets=997, word_ngrams=words_n, char_ngrams=chars_n) == (
            expected
        )
