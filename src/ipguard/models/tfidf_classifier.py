"""``model=text_tfidf``: the TF-IDF baseline as an estimator that ``train()`` can run.

Not a LightningModule: ``train()`` sees that and calls :meth:`TfidfClassifier.fit_frames` and
:meth:`TfidfClassifier.predict_frame` on the split frames instead of a Trainer; export writes
the fitted pipeline through :meth:`TfidfClassifier.save_artifacts` (skops, never pickle).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ipguard.data.columns import label_array
from ipguard.models.baselines import TfidfTextModel
from ipguard.models.text_checks import check_text_training_data

#: file name of the fitted pipeline inside an exported model folder
TFIDF_FILE = "text_tfidf.skops"


def _texts(frame: pd.DataFrame) -> tuple[list[object], list[object] | None]:
    titles = frame["title"].tolist() if "title" in frame else [None] * len(frame)
    descriptions = frame["description"].tolist() if "description" in frame else None
    return titles, descriptions


class TfidfClassifier:
    """Word and character TF-IDF + logistic regression on title and description."""

    modalities: ClassVar[frozenset[str]] = frozenset({"text"})

    def __init__(self, *, max_features: int = 200_000, C: float = 4.0, seed: int = 0) -> None:
        self.max_features = max_features
        self.C = C
        self.model = TfidfTextModel(max_features=max_features, C=C, seed=seed)
        self.source: Path | None = None

    def attach_data(self, dm: Any) -> None:
        """Remember the manifest, so a refusal in :meth:`fit_frames` can name it."""
        self.source = getattr(dm, "manifest_path", None)

    def fit_frames(self, train_frame: pd.DataFrame, root: Path) -> None:
        check_text_training_data(train_frame, source=self.source or root)
        titles, descriptions = _texts(train_frame)
        self.model.fit(titles, descriptions, label_array(train_frame["label"]))  # type: ignore[arg-type]

    def predict_frame(self, frame: pd.DataFrame, root: Path) -> np.ndarray:
        """Uncalibrated P(infringing) per row, in frame order."""
        titles, descriptions = _texts(frame)
        return self.model.predict_proba(titles, descriptions)  # type: ignore[arg-type]

    def export_spec(self) -> dict[str, Any]:
        return {
            "kind": "text_tfidf",
            "network": {"file": TFIDF_FILE, "max_features": self.max_features, "C": self.C},
            # the pipeline normalises inside itself; serving passes raw title and description
            "preprocessing": {"text": "text_of(title, description), normalised in the pipeline"},
        }

    def save_artifacts(self, folder: Path) -> None:
        self.model.save(Path(folder) / TFIDF_FILE)
