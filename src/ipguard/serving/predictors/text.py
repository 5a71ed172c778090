"""Serving side of the neural text models: hashed n-grams and MiniLM.

Each predictor builds the text exactly as its model was trained on (``model_text`` of title
and description). A row with neither title nor description is not guessed at: its raw score
is NaN, so the scorer flags it ``not_scored`` next to the ``text_empty`` flag the inputs gave
it. (The TF-IDF baseline, which normalises inside its pipeline, is served by ``tfidf.py``.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_model

from ipguard.nets.text import HashedTextNetwork, MiniLMNetwork
from ipguard.serving.inputs import ScoringInputs
from ipguard.serving.spec import WEIGHTS_FILE, ModelSpec
from ipguard.text.normalize import model_text

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

    def predict(self, inputs: ScoringInputs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        text = np.full(len(inputs), np.nan)
        rows = inputs.text_rows()
        for start in range(0, len(rows), BATCH):
            chunk = rows[start : start + BATCH]
            texts = [model_text(inputs.titles[i], inputs.descriptions[i]) for i in chunk]
            with torch.inference_mode():
                text[chunk] = torch.sigmoid(self.network(texts)).double().numpy()
        return text, np.full(len(inputs), np.nan), text
