"""The MLflow pyfunc that screening services load, logged *from code*.

MLflow copies this file into the model and executes it at load time (``set_model``), so no
pickled object is ever deserialised: the model loads with
``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false``. Everything heavy lives in
:class:`ipguard.serving.scorer.ListingScorer`; this shell only wires it to MLflow.
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext

from ipguard.serving.request_limits import RequestLimits, check_request, checked_request
from ipguard.serving.scorer import ListingScorer
from ipguard.serving.spec import MODEL_DIR_ARTIFACT


class ListingScreener(PythonModel):
    """reject / review / approve for each listing, per ipguard's model contract."""

    def load_context(self, context):  # type: ignore[no-untyped-def]
        config = context.model_config or {}
        self.scorer = ListingScorer.load(
            context.artifacts[MODEL_DIR_ARTIFACT], runtime=config.get("runtime", "torch")
        )
        self.limits = RequestLimits.from_env()  # bind over REST only: see request_limits

    def predict(
        self,
        context: PythonModelContext,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        # typed so MLflow sees a DataFrame model; the logged signature, not the hint, is what
        # MLflow checks requests against (it infers no schema from a DataFrame hint)
        frame = checked_request(model_input, lambda f: check_request(f, self.limits))
        return self.scorer.score(frame, nulls=True)  # null, not NaN, in REST responses


mlflow.models.set_model(ListingScreener())
