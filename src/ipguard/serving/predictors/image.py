"""Serving side of the image model: eval transform + network, on PyTorch or ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_model

from ipguard.data.images import to_rgb_array
from ipguard.data.transforms import Preprocessing, build_eval_transform
from ipguard.logistic import sigmoid
from ipguard.nets.image import ImageNetwork
from ipguard.serving.inputs import ScoringInputs
from ipguard.serving.onnx import INPUT_NAME, runtime_session
from ipguard.serving.spec import WEIGHTS_FILE, ModelSpec

BATCH = 64


class ImageTower:
    """Decoded images -> logits, shared by the image predictor and the fused one."""

    def __init__(self, network: torch.nn.Module, preprocessing: dict, session=None) -> None:  # type: ignore[no-untyped-def]
        self.network = network.eval()
        self.transform = build_eval_transform(Preprocessing.from_dict(preprocessing))
        self.session = session

    def tensor(self, inputs: ScoringInputs, rows: list[int]) -> torch.Tensor:
        return torch.stack(
            [self.transform(image=to_rgb_array(inputs.images[i]))["image"] for i in rows]
        )

    def logits(self, inputs: ScoringInputs) -> np.ndarray:
        """Logit per row; NaN where the row has no usable image."""
        out = np.full(len(inputs), np.nan)
        rows = [i for i, img in enumerate(inputs.images) if img is not None]
        for start in range(0, len(rows), BATCH):
            chunk = rows[start : start + BATCH]
            batch = self.tensor(inputs, chunk)
            if self.session is not None:
                logits = self.session.run(None, {INPUT_NAME: batch.numpy()})[0]
            else:
                with torch.inference_mode():
                    logits = self.network(batch).numpy()
            out[chunk] = np.asarray(logits).reshape(-1)
        return out


class ImagePredictor:
    needs_images = True

    def __init__(self, spec: ModelSpec, folder: Path, *, runtime: str = "torch") -> None:
        args = spec.network
        network = ImageNetwork(
            args["backbone"],
            image_size=args["image_size"],
            dropout=args.get("dropout", 0.0),
            head_hidden=args.get("head_hidden", 0),  # absent in models exported before it
        )
        load_model(network, str(Path(folder) / WEIGHTS_FILE))
        self.network = network
        self.tower = ImageTower(network, spec.preprocessing, runtime_session(folder, runtime))

    def predict(self, inputs: ScoringInputs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        image = sigmoid(self.tower.logits(inputs))
        return image, image, np.full(len(inputs), np.nan)
