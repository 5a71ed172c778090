"""Serving side of the neural text models: hashed n-grams and MiniLM.

Each predictor builds the text exactly as its model was trained on (``model_text`` of title
and description). A row with neither title nor description is not guessed at: its raw score
is NaN, so the scorer flags it ``not_scored`` next to the ``text_empty`` flag the inputs gave
it. (The TF-IDF baseline, which normalises inside its pipeline, is served by ``tfidf.py``.)

Both also serve on ONNX Runtime (``runtime="onnx"``): the texts are hashed or tokenised here, as
the network does it, and the graph (:class:`~ipguard.nets.graphs.HashedTextGraph`,
:class:`~ipguard.nets.graphs.MiniLMGraph`) gets the ids.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_model

from ipguard.logistic import sigmoid
from ipguard.nets.graphs import HashedTextGraph, MiniLMGraph, NgramBatch, minilm_token_inputs
from ipguard.nets.text import HashedTextNetwork, MiniLMNetwork
from ipguard.serving.inputs import ScoringInputs
from ipguard.serving.onnx import graph_feeds, runtime_session
from ipguard.serving.spec import WEIGHTS_FILE, ModelSpec
from ipguard.text.normalization import model_text

BATCH = 64


def _network(spec: ModelSpec, folder: Path) -> torch.nn.Module:
    args = dict(spec.network)
    if spec.kind == "text_fasttext":
        return HashedTextNetwork(args["n_buckets"], args["dim"], args.get("dropout", 0.0))
    if spec.kind == "text_minilm":
        return MiniLMNetwork(
            folder / args["encoder_dir"],
            max_length=args["max_length"],
            dropout=args.get("dropout", 0.0),
            load_weights=False,  # the exported weights below carry the encoder too
        )
    raise ValueError(
        f"{folder}: NeuralTextPredictor serves text_fasttext and text_minilm, "
        f"found kind {spec.kind!r}"
    )


class NeuralTextPredictor:
    needs_images = False

    def __init__(self, spec: ModelSpec, folder: Path, *, runtime: str = "torch") -> None:
        folder = Path(folder)
        self.network = _network(spec, folder)
        load_model(self.network, str(folder / WEIGHTS_FILE))
        self.network.eval()
        #: the ONNX Runtime session of runtime='onnx'; None on PyTorch
        self.session = runtime_session(folder, runtime)

    def logits(self, texts: list[str]) -> np.ndarray:
        """The network's logit per model text, on the session when there is one."""
        if self.session is None:
            with torch.inference_mode():
                return self.network(texts).double().numpy()
        if isinstance(self.network, MiniLMNetwork):
            return self._minilm_session_logits(texts)
        feeds = graph_feeds(self.session, NgramBatch.of(texts, self.network.n_buckets).feeds())
        (out,) = self.session.run(list(HashedTextGraph.OUTPUTS), feeds)
        return np.asarray(out, dtype=np.float64)

    def _minilm_session_logits(self, texts: list[str]) -> np.ndarray:
        """MiniLM on the graph; a blank text gets the head's logit of a zero embedding, as on
        PyTorch (the encoder never sees it)."""
        out = np.empty(len(texts))
        rows = [i for i, text in enumerate(texts) if text.strip()]
        if len(rows) < len(texts):
            with torch.inference_mode():
                blank = self.network.classify(torch.zeros(1, self.network.embed_dim))
            out[:] = float(blank[0])
        if rows:
            feeds = minilm_token_inputs(self.network, [texts[i] for i in rows])
            (found,) = self.session.run(list(MiniLMGraph.OUTPUTS), feeds)  # type: ignore[union-attr]
            out[rows] = np.asarray(found, dtype=np.float64).reshape(-1)
        return out

    def predict(self, inputs: ScoringInputs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        text = np.full(len(inputs), np.nan)
        rows = inputs.text_rows()
        for start in range(0, len(rows), BATCH):
            chunk = rows[start : start + BATCH]
            texts = [model_text(inputs.titles[i], inputs.descriptions[i]) for i in chunk]
            text[chunk] = sigmoid(self.logits(texts))
        return text, np.full(len(inputs), np.nan), text
