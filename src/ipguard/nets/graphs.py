"""The text and fused networks on tensors alone: the form ONNX Runtime runs.

:class:`~ipguard.nets.text.HashedTextNetwork` and :class:`~ipguard.nets.fusion.FusionNetwork`
take strings and hash them in Python, which no graph can do (and
:class:`~ipguard.nets.text.MiniLMNetwork` tokenises them). These wrappers take what the hashing
(or the tokenizer) gives, so the same module is what the exporter traces and what the PyTorch
runtime calls: the two runtimes read identical inputs and cannot drift apart.

- **Text** is a flat array of n-gram ids, the row each id belongs to, and each row's id count.
  The mean over a row's embeddings is a scatter-add divided by the count; a row without ids
  gives a zero vector, exactly as ``nn.EmbeddingBag(mode="mean")``. (Exported as it is,
  EmbeddingBag becomes a loop over bags that ONNX Runtime ran 11x slower than PyTorch for 64
  titles; the scatter-add ran at PyTorch's speed.)
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


@dataclass(frozen=True)
class NgramBatch:
    """Hashed n-grams of B texts, flat: the text inputs of both graphs."""

    ids: np.ndarray
    """(L,) int64 bucket ids, text after text."""
    rows: np.ndarray
    """(L,) int64: the text each id belongs to."""
    counts: np.ndarray
    """(B,) float32: how many ids each text has (0 for a text without n-grams)."""

    @classmethod
    def of(cls, texts: Sequence[str], n_buckets: int) -> NgramBatch:
        ids, offsets = flat_hashed_ngrams(texts, n_buckets=n_buckets)
        flat = np.array(ids, dtype=np.int64)
        counts = np.diff(np.append(np.array(offsets, dtype=np.int64), len(flat)))
        rows = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
        return cls(flat, rows, counts.astype(np.float32))

    def feeds(self) -> dict[str, np.ndarray]:
        return {"ngram_ids": self.ids, "ngram_rows": self.rows, "ngram_counts": self.counts}


def bag_mean(
    weight: torch.Tensor, ids: torch.Tensor, rows: torch.Tensor, counts: torch.Tensor
) -> torch.Tensor:
    """(B, dim): the mean embedding of each row's ids; zeros for a row without ids."""
    summed = torch.zeros(counts.shape[0], weight.shape[1], dtype=weight.dtype)
    summed = summed.index_add(0, rows, weight[ids])
    return summed / counts.to(weight.dtype).clamp(min=1.0)[:, None]


class HashedTextGraph(nn.Module):
    """:class:`HashedTextNetwork` from hashed n-grams: (ids, rows, counts) -> logits (B,)."""

    INPUTS = ("ngram_ids", "ngram_rows", "ngram_counts")
    OUTPUTS = ("logits",)

    def __init__(self, network: HashedTextNetwork) -> None:
        super().__init__()
        self.network = network.eval()

    def forward(
        self, ngram_ids: torch.Tensor, ngram_rows: torch.Tensor, ngram_counts: torch.Tensor
    ) -> torch.Tensor:
        features = bag_mean(self.network.bag.weight, ngram_ids, ngram_rows, ngram_counts)
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
        "ngram_rows",
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
        ngram_rows: torch.Tensor,
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
        text = bag_mean(net.text.bag.weight, ngram_ids, ngram_rows, ngram_counts)
        out = net.fuse(features, present, text, text_present, tabular)
        return out["logit"], out["image_logit"], out["text_logit"]


def fusion_text_inputs(texts: Sequence[str], n_buckets: int) -> dict[str, np.ndarray]:
    """The fused graph's text inputs for ``texts``: hashed n-grams and text presence (a text
    of only blanks is absent, as :func:`~ipguard.nets.fusion.text_presence` says)."""
    present = text_presence(texts).numpy().astype(np.float32)
    return {**NgramBatch.of(texts, n_buckets).feeds(), "text_present": present}
