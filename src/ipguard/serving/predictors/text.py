"""Serving side of the text models: TF-IDF, hashed n-grams and MiniLM.

Each predictor builds the text exactly as its model was trained on (``model_text`` for the
neural networks, raw title and description for the TF-IDF pipeline, which normalises inside
itself). A row with neither title nor description is not guessed at: its raw score is NaN,
so the scorer flags it ``not_scored`` next to the ``text_empty`` flag the inputs gave it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ipguard.serving.inputs import ScoringInputs
from ipguard.serving.spec import WEIGHTS_FILE, ModelSpec

BATCH = 64


def _text_rows(inputs: ScoringInputs) -> list[int]:
    return [
        i
        for i, (title, description) in enumerate(
            zip(inputs.titles, inputs.descriptions, strict=True)
        )
        if title is not None or description is not None
    ]


def _torch_only(spec: ModelSpec, runtime: str) -> None:
    if runtime != "torch":
        raise ValueError(
            f"runtime={runtime!r}: model kind {spec.kind!r} serves on 'torch' only "
            "(ONNX export covers image models)"
        )


class TfidfPredictor:
    needs_images = False

    def __init__(self, spec: ModelSpec, folder: Path, *, runtime: str = "torch") -> None:
        from ipguard.models.baselines import TfidfTextModel

        _torch_only(spec, runtime)
        self.model = TfidfTextModel.load(Path(folder) / spec.network["file"])

    def predict(self, inputs: ScoringInputs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        text = np.full(len(inputs), np.nan)
        rows = _text_rows(inputs)
        if rows:
            text[rows] = self.model.predict_proba(
                [inputs.titles[i] for i in rows], [inputs.descriptions[i] for i in rows]
            )
        return text, np.full(len(inputs), np.nan), text


def _network(spec: ModelSpec, folder: Path) -> torch.nn.Module:
    from ipguard.nets.text import HashedTextNetwork, MiniLMNetwork

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
        from safetensors.torch import load_model

        _torch_only(spec, runtime)
        folder = Path(folder)
        self.network = _network(spec, folder)
        load_model(self.network, str(folder / WEIGHTS_FILE))
        self.network.eval()

    def predict(self, inputs: ScoringInputs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from ipguard.text.normalize import model_text

        text = np.full(len(inputs), np.nan)
        rows = _text_rows(inputs)
        for start in range(0, len(rows), BATCH):
            chunk = rows[start : start + BATCH]
            texts = [model_text(inputs.titles[i], inputs.descriptions[i]) for i in chunk]
            with torch.inference_mode():
                text[chunk] = torch.sigmoid(self.network(texts)).double().numpy()
        return text, np.full(len(inputs), np.nan), text
