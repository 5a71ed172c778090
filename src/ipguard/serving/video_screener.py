"""The ``ipguard-video`` MLflow pyfunc, logged *from code* like the listing screener.

MLflow copies this file into the model and executes it at load time (``set_model``), so nothing
pickled is deserialised. The work is :class:`ipguard.serving.predictors.video.VideoPredictor`'s.
"""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

from ipguard.serving.predictors.video import VideoPredictor
from ipguard.serving.spec import MODEL_DIR_ARTIFACT
from ipguard.serving.video_contract import with_nulls


class VideoScreener(PythonModel):
    """reject / review / approve per video, with the frames a reviewer should look at."""

    def load_context(self, context):  # type: ignore[no-untyped-def]
        self.predictor = VideoPredictor.load(context.artifacts[MODEL_DIR_ARTIFACT])

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return with_nulls(self.predictor.score(frame))


mlflow.models.set_model(VideoScreener())
