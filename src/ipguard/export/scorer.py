"""ListingScorer: an exported ipguard model, scoring listings in-process.

This is the whole serving path. The MLflow pyfunc (``screener.py``) is a thin shell around it,
and notebooks or batch jobs can use it directly on a model folder. It imports torch and the
image/text preprocessing, never Lightning or Hydra.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ipguard.evaluation.calibration import calibrator_from_dict
from ipguard.evaluation.policy import Policy
from ipguard.export.inputs import ScoringInputs, collect_inputs
from ipguard.export.spec import WEIGHTS_FILE, ModelSpec

OUTPUT_COLUMNS = (
    "listing_id",
    "score",
    "decision",
    "image_score",
    "text_score",
    "flags",
    "model_version",
)
BATCH = 64


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class ListingScorer:
    """Scores a request frame under the model contract (see DESIGN.md)."""

    def __init__(self, spec: ModelSpec, folder: str | Path, *, runtime: str = "torch") -> None:
        if runtime not in ("torch", "onnx"):
            raise ValueError(f"runtime must be 'torch' or 'onnx', got {runtime!r}")
        self.spec = spec
        self.folder = Path(folder)
        self.runtime = runtime
        self.calibrator = calibrator_from_dict(spec.calibrator)
        self.policy = Policy.from_dict(spec.policy)
        builders: dict[str, Callable[[], None]] = {"image": self._build_image}
        if spec.kind not in builders:
            raise ValueError(f"{self.folder}: unknown model kind {spec.kind!r}")
        builders[spec.kind]()

    @classmethod
    def load(cls, folder: str | Path, *, runtime: str = "torch") -> ListingScorer:
        return cls(ModelSpec.load(folder), folder, runtime=runtime)

    # --- image networks -----------------------------------------------------------------------
    def _build_image(self) -> None:
        from safetensors.torch import load_model

        from ipguard.data.transforms import Preprocessing, build_eval_transform
        from ipguard.models.image import ImageNetwork

        net_args = self.spec.network
        self.image_net = ImageNetwork(
            net_args["backbone"],
            image_size=net_args["image_size"],
            dropout=net_args.get("dropout", 0.0),
        )
        load_model(self.image_net, str(self.folder / WEIGHTS_FILE))
        self.image_net.eval()
        self.image_transform = build_eval_transform(
            Preprocessing.from_dict(self.spec.preprocessing)
        )
        self.onnx_session = None
        if self.runtime == "onnx":
            from ipguard.export.onnx import open_session

            self.onnx_session = open_session(self.folder)

    def _image_tensor(self, inputs: ScoringInputs, rows: list[int]) -> torch.Tensor:
        from ipguard.data.images import to_rgb_array

        return torch.stack(
            [self.image_transform(image=to_rgb_array(inputs.images[i]))["image"] for i in rows]
        )

    def image_logits(self, inputs: ScoringInputs) -> np.ndarray:
        """Logit per row; NaN where the row has no usable image."""
        out = np.full(len(inputs), np.nan)
        rows = [i for i, img in enumerate(inputs.images) if img is not None]
        for start in range(0, len(rows), BATCH):
            chunk = rows[start : start + BATCH]
            batch = self._image_tensor(inputs, chunk)
            if self.onnx_session is not None:
                logits = self.onnx_session.run(None, {"images": batch.numpy()})[0]
            else:
                with torch.inference_mode():
                    logits = self.image_net(batch).numpy()
            out[chunk] = logits.reshape(-1)
        return out

    # --- the contract -------------------------------------------------------------------------
    def raw_scores(self, inputs: ScoringInputs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(uncalibrated score, image_score, text_score) per row."""
        image = _sigmoid(self.image_logits(inputs))
        text = np.full(len(inputs), np.nan)
        return image, image, text

    def score(self, frame: pd.DataFrame) -> pd.DataFrame:
        inputs = collect_inputs(frame, want_images=self.spec.kind in ("image", "fusion"))
        raw, image_score, text_score = self.raw_scores(inputs)
        score = np.full(len(inputs), np.nan)
        ok = ~np.isnan(raw)
        if ok.any():
            score[ok] = self.calibrator(raw[ok])
        flags = inputs.flag_strings()
        for i in np.flatnonzero(~ok):
            flags[i] = ",".join(f for f in (flags[i], "not_scored") if f)
        return pd.DataFrame(
            {
                "listing_id": inputs.listing_ids,
                "score": score,
                "decision": self.policy.decide(score),
                "image_score": image_score,
                "text_score": text_score,
                "flags": flags,
                "model_version": str(self.spec.model_version or ""),
            },
            columns=list(OUTPUT_COLUMNS),
        )
