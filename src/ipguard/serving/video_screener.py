"""The ``ipguard-video`` MLflow pyfunc, logged *from code* like the listing screener.

MLflow copies this file into the model and executes it at load time (``set_model``), so nothing
pickled is deserialised. The work is :class:`ipguard.serving.predictors.video.VideoPredictor`'s.
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext

from ipguard.serving.predictors.video import VideoPredictor
from ipguard.serving.request_limits import checked_request
from ipguard.serving.spec import MODEL_DIR_ARTIFACT
from ipguard.serving.video_contract import with_nulls
from ipguard.serving.video_limits import VideoLimits, check_video_request


class VideoScreener(PythonModel):
    """reject / review / approve per video, with the frames a reviewer should look at."""

    def load_context(self, context):  # type: ignore[no-untyped-def]
        # frame_tower: "auto" runs the exported ONNX frame tower when the model has one;
        # a service can pin "torch" or "onnx" (model_config={"frame_tower": ...})
        config = getattr(context, "model_config", None) or {}
        self.predictor = VideoPredictor.load(
            context.artifacts[MODEL_DIR_ARTIFACT],
            frame_tower=str(config.get("frame_tower", "auto")),
        )
        self.limits = VideoLimits.from_env()  # bind over REST only: see video_limits

    def predict(
        self,
        context: PythonModelContext,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        frame = checked_request(model_input, lambda f: check_video_request(f, self.limits))
        return with_nulls(self.predictor.score(frame))


mlflow.models.set_model(VideoScreener())
