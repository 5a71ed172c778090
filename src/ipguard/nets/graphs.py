"""The text and fused networks on tensors alone: the form ONNX Runtime runs.

:class:`~ipguard.nets.text.HashedTextNetwork` and :class:`~ipguard.nets.fusion.FusionNetwork`
take strings and hash them in Python, which no graph can do (and
:class:`~ipguard.nets.text.MiniLMNetwork` tokenises them). These wrappers take what the hashing
(or the tokenizer) gives, so the same module is what the exporter traces and what the PyTorch
runtime calls: the two runtimes read identical inputs and cannot drift apart.

- **Text** is a flat array of n-gram ids, text after text, and each text's id count; a text
  without ids gives a zero vector, as ``nn.EmbeddingBag(mode="mean")``. Eager PyTorch takes
  the mean with ``embedding_bag``; the exported graph as a difference of prefix sums
  (:func:`bag_mean`), because exported as it is EmbeddingBag becomes a loop over bags that
  ONNX Runtime ran 11x slower than PyTorch for 64 titles, and the form before 0.8, a
  scatter-add over each id's row, races across ONNX Runtime's intra-op threads (3 of 69
  chunks of catalogue listings off by up to 7e-4 in the text logit). Graphs of that old form
  still load (:data:`LEGACY_ROWS_INPUT`): they are fed the rows they ask for, on one thread.
- **Images** come only for the rows that have one, with ``image_rows`` saying which rows they
  are, so the image tower never runs on a listing without a photo. Every other row gets zero
  image features and ``image_present`` 0, which the fused head multiplies away, so its score
  is exactly what the network gives such a row with a blank picture. Row ``B`` (one past the
  batch) is a pad row: a graph cannot take an empty image batch, so a caller with no image at
  all sends one blank image addressed to row ``B``, and it is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ipguard.nets.fusion import FusionNetwork, text_presence
from ipguard.nets.text import HashedTextNetwork, MiniLMNetwork
from ipguard.text.hashing import flat_hashed_ngrams

#: the input that graphs exported before 0.8 take: the text each n-gram id belongs to (their
#: bag mean is the scatter-add that races on several ONNX Runtime threads)
LEGACY_ROWS_INPUT = "ngram_rows"


@dataclass(frozen=True)
class NgramBatch:
    """Hashed n-grams of B texts, flat: the text inputs of both graphs."""

    ids: np.ndarray
    """(L,) int64 bucket ids, text after text."""
    counts: np.ndarray
    """(B,) float32: how many ids each text has (0 for a text without n-grams)."""

    @classmethod
    def of(cls, texts: Sequence[str], n_buckets: int) -> NgramBatch:
        ids, offsets = flat_hashed_ngrams(texts, n_buckets=n_buckets)
        flat = np.array(ids, dtype=np.int64)
        counts = np.diff(np.append(np.array(offsets, dtype=np.int64), len(flat)))
        return cls(flat, counts.astype(np.float32))

    def feeds(self) -> dict[str, np.ndarray]:
        return {"ngram_ids": self.ids, "ngram_counts": self.counts}


def legacy_rows(counts: np.ndarray) -> np.ndarray:
    """(L,) int64: the text each n-gram id belongs to, for a graph of the old form."""
    return np.repeat(np.arange(len(counts), dtype=np.int64), counts.astype(np.int64))


def bag_mean(weight: torch.Tensor, ids: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """(B, dim): the mean embedding of each text's ids (contiguous, ``counts`` of them per
    text); zeros for a text without ids.

    Two forms of one sum, because each runtime has a different fast one: eager PyTorch's
    ``embedding_bag`` (0.12 ms for 64 catalogue listings on 2 threads, vs 2.8 ms for a
    scatter-add) and, in an exported graph, :func:`_prefix_sum_bags`. The parity check of every
    export compares the two."""
    if torch.compiler.is_exporting():
        return _prefix_sum_bags(weight, ids, counts)
    ends = torch.cumsum(counts.to(torch.int64), dim=0)
    return nn.functional.embedding_bag(ids, weight, ends - counts.to(torch.int64), mode="mean")


#: ids per block of the graph form's running sums (:func:`_prefix_sum_bags`)
_BLOCK = 64


def _prefix_sum_bags(weight: torch.Tensor, ids: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """The bag means as ONNX Runtime runs them fast and deterministically: each text's sum is
    the difference of two prefix sums over the flat ids, so no two threads ever add into one
    place (the scatter-add this replaced raced: onnxruntime#18048).

    One float32 running sum over 35,000 ids (64 catalogue listings) drifts far from zero, and
    the difference of two such sums kept only ~1e-5 of a short text's mean; a float64 one
    ran 2.5x slower than the scatter-add. So the sums are in two levels: float32 within
    blocks of :data:`_BLOCK` ids, float64 over the block totals. 1.8 ms for that chunk on 2
    threads (scatter-add: 1.3 ms), 5e-8 from a float64 mean (scatter-add: 1e-7)."""
    dim = weight.shape[1]
    # a zero id in front, so that prefix p (the sum of the first p ids) is row p
    rows = ids.shape[0] + 1
    padded = nn.functional.pad(weight[ids], (0, 0, 1, (-rows) % _BLOCK))
    within = torch.cumsum(padded.reshape(-1, _BLOCK, dim), dim=1)
    totals = within[:, -1, :].to(torch.float64)
    before = torch.cumsum(totals, dim=0) - totals  # what every block starts from
    within = within.reshape(-1, dim)
    ends = torch.cumsum(counts.to(torch.int64), dim=0)
    starts = ends - counts.to(torch.int64)
    blocks = (before[ends // _BLOCK] - before[starts // _BLOCK]).to(weight.dtype)
    summed = blocks + (within[ends] - within[starts])
    return summed / counts.to(weight.dtype).clamp(min=1.0)[:, None]


class HashedTextGraph(nn.Module):
    """:class:`HashedTextNetwork` from hashed n-grams: (ids, counts) -> logits (B,)."""

    INPUTS = ("ngram_ids", "ngram_counts")
    OUTPUTS = ("logits",)

    def __init__(self, network: HashedTextNetwork) -> None:
        super().__init__()
        self.network = network.eval()

    def forward(self, ngram_ids: torch.Tensor, ngram_counts: torch.Tensor) -> torch.Tensor:
        features = bag_mean(self.network.bag.weight, ngram_ids, ngram_counts)
        return self.network.head(features).squeeze(-1)


class MiniLMGraph(nn.Module):
    """:class:`MiniLMNetwork` from its tokenizer's output: (input_ids, attention_mask), both
    (B, T) int64 -> logits (B,). Texts that are blank are the caller's to keep out: the network
    gives them a zero embedding without running the encoder."""

    INPUTS = ("input_ids", "attention_mask")
    OUTPUTS = ("logits",)

    def __init__(self, network: MiniLMNetwork) -> None:
        super().__init__()
        self.network = network.eval()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.network.classify(self.network.encode_tokens(input_ids, attention_mask))


def minilm_token_inputs(network: MiniLMNetwork, texts: list[str]) -> dict[str, np.ndarray]:
    """:class:`MiniLMGraph`'s feeds for ``texts`` (non-blank), tokenised as the network does."""
    tokens = network.tokens(texts, tensors="np")
    return {name: np.asarray(tokens[name], dtype=np.int64) for name in MiniLMGraph.INPUTS}


class FusionGraph(nn.Module):
    """:class:`FusionNetwork` from tensors: images of the rows that have one, hashed n-grams,
    text presence and tabular features -> (logit, image_logit, text_logit), each (B,)."""

    INPUTS = (
        "images",
        "image_rows",
        "ngram_ids",
        "ngram_counts",
        "text_present",
        "tabular",
    )
    OUTPUTS = ("logit", "image_logit", "text_logit")

    def __init__(self, network: FusionNetwork) -> None:
        super().__init__()
        self.network = network.eval()

    def forward(
        self,
        images: torch.Tensor,
        image_rows: torch.Tensor,
        ngram_ids: torch.Tensor,
        ngram_counts: torch.Tensor,
        text_present: torch.Tensor,
        tabular: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        net = self.network
        batch = tabular.shape[0]
        embedded = net.image.embed(images)
        # one pad row past the batch takes the blank image of a batch without any photo
        features = torch.zeros(batch + 1, embedded.shape[1], dtype=embedded.dtype)
        features = features.index_copy(0, image_rows, embedded)[:batch]
        present = torch.zeros(batch + 1, dtype=embedded.dtype)
        present = present.index_fill(0, image_rows, 1.0)[:batch]
        text = bag_mean(net.text.bag.weight, ngram_ids, ngram_counts)
        out = net.fuse(features, present, text, text_present, tabular)
        return out["logit"], out["image_logit"], out["text_logit"]


def fusion_text_inputs(texts: Sequence[str], n_buckets: int) -> dict[str, np.ndarray]:
    """The fused graph's text inputs for ``texts``: hashed n-grams and text presence (a text
    of only blanks is absent, as :func:`~ipguard.nets.fusion.text_presence` says)."""
    present = text_presence(texts).numpy().astype(np.float32)
    return {**NgramBatch.of(texts, n_buckets).feeds(), "text_present": present}
