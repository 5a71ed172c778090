"""Serving side of the image model: eval transform + network, on PyTorch or ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import albumentations as A
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
        self._batched = _BatchedEvalTransform.of(self.transform)

    def tensor(self, inputs: ScoringInputs, rows: list[int]) -> torch.Tensor:
        arrays = [to_rgb_array(inputs.images[i]) for i in rows]
        if self._batched is not None:
            return self._batched(arrays)
        return torch.stack([self.transform(image=a)["image"] for a in arrays])

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


class _BatchedEvalTransform:
    """The eval transform's own steps, applied without albumentations' per-call machinery.

    ``Compose.__call__`` validates its arguments and runs every step through its wrapper for
    each photo, which on a ready array costs three times the resize and pad themselves (0.2
    against 0.06 ms a photo here; 6.1 against 4.7 ms for 64 decoded demo photos, whose
    conversion to arrays stays). This runs the same transform objects, with the parameters they
    compute from each photo's shape, then normalises the whole batch in one call of the same
    ``Normalize`` (a per-pixel table, so one tall image gives the same values) and makes one
    tensor: equal to stacking the Compose's outputs bit for bit
    (``tests/unit/test_serving_fast_path.py``).
    """

    def __init__(self, steps: list[A.BasicTransform], normalize: A.Normalize) -> None:
        self.steps = steps
        self.normalize = normalize

    @classmethod
    def of(cls, compose: A.Compose) -> _BatchedEvalTransform | None:
        """For a deterministic ``[geometric steps..., Normalize, ToTensorV2]``; else None (the
        caller keeps the Compose)."""
        steps = list(compose.transforms)
        if (
            len(steps) < 2
            or not isinstance(steps[-2], A.Normalize)
            or not isinstance(steps[-1], A.ToTensorV2)
            or any(step.p != 1 or isinstance(step, A.BaseCompose) for step in steps)
        ):
            return None
        return cls(steps[:-2], steps[-2])

    def __call__(self, arrays: list[np.ndarray]) -> torch.Tensor:
        shaped = []
        for image in arrays:
            for step in self.steps:
                params = step.get_params()
                params.update(
                    step.get_params_dependent_on_data({"shape": image.shape}, {"image": image})
                )
                image = step.apply(image, **params)
            shaped.append(image)
        batch = np.stack(shaped)
        n, height, width, channels = batch.shape
        tall = self.normalize.apply(batch.reshape(n * height, width, channels))
        normalised = np.asarray(tall, dtype=np.float32).reshape(n, height, width, channels)
        return torch.from_numpy(np.ascontiguousarray(normalised.transpose(0, 3, 1, 2)))


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
