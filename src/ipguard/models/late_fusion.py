"""Late fusion (``model=late_fusion``): stack separately trained image and text models.

Where the fused network (:mod:`ipguard.nets.fusion`) learns all modalities at once, late
fusion keeps the image and text models a team already trained, registered and trusts, and
learns only how to weigh them: a logistic regression over

    [logit(image score), image missing, logit(text score), text missing, tabular features]

(the tabular features are :class:`ipguard.data.tabular.TabularFeaturizer`'s price and brand
facts). The base models are given as model URIs (``models:/ipguard-image@challenger``) or
local exported model folders, and are run through their own serving code
(:class:`ipguard.serving.scorer.ListingScorer`), so the stacker sees exactly the scores the
served base models produce.

**Which rows the stacker is fitted on.** Not the training split: the base models were fitted
on it, their scores there are over-confident, and a stacker fitted on them learns to trust
them too much. ``train()`` calls :meth:`LateFusionClassifier.attach_data`, which hands over the
*validation* split (the base models must come from runs on the same data and split seed, so
they never saw it), and :meth:`~LateFusionClassifier.fit_frames` fits the stacker there. The
validation rows are also where ``train()`` fits the calibrator and the reject/review/approve
policy, so for those rows :meth:`~LateFusionClassifier.predict_frame` returns **cross-fitted**
scores (each from a stacker fitted on the other folds), never in-sample ones; the test split
stays untouched by everything.

An exported late-fusion model is self-contained: both base model folders are copied into its
own folder (``bases/image``, ``bases/text``) and the stacker is a few numbers in the spec, which
serving applies with :mod:`ipguard.nets.stacker` (no scikit-learn, nothing of this module).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from ipguard.brands.references import BrandReferences, references_extras
from ipguard.data.catalog import catalog_featurizer
from ipguard.data.columns import label_array
from ipguard.data.tabular import TabularFeaturizer
from ipguard.models.brand_references import ReferenceSettings, build_references
from ipguard.models.loading import load_model
from ipguard.nets.stacker import predict_stacker, stack_feature_names
from ipguard.serving.inputs import collect_inputs
from ipguard.serving.stacking import stacking_features

#: where the base models live inside an exported late-fusion model
BASES_DIR = "bases"
BASE_ROLES = ("image", "text")


def _absolute_images(frame: pd.DataFrame, root: Path) -> pd.DataFrame:
    """Manifest image paths are relative to its folder; the scorers read them as given."""
    if "image_path" not in frame.columns:
        return frame
    paths = [
        p if not isinstance(p, str) or not p else str(Path(root) / p) for p in frame["image_path"]
    ]
    return frame.assign(image_path=paths)


class LateFusionClassifier:
    """Logistic regression over separately trained image and text models plus tabular facts.

    An estimator for ``train()`` (``fit_frames``/``predict_frame``, no Lightning). See the
    module docstring for which rows it is fitted on and why.
    """

    modalities: ClassVar[frozenset[str]] = frozenset({"image", "text", "tabular"})

    def __init__(
        self,
        *,
        image_model: str = "models:/ipguard-image@challenger",
        text_model: str = "models:/ipguard-text@challenger",
        C: float = 1.0,
        folds: int = 5,
        seed: int = 0,
        references: bool = False,
        reference_backbone: str = ReferenceSettings.backbone,
        reference_image_size: int = ReferenceSettings.image_size,
        stolen_threshold: float = ReferenceSettings.stolen_threshold,
    ) -> None:
        if C <= 0:
            raise ValueError(f"model.C: expected a positive regularisation strength, found {C}")
        if folds < 2:
            raise ValueError(f"model.folds: expected at least 2 cross-fitting folds, found {folds}")
        self.sources = {"image": image_model, "text": text_model}
        self.C = C
        self.folds = folds
        self.seed = seed
        self.featurizer = TabularFeaturizer()
        self.use_references = references
        self.reference_settings = ReferenceSettings(
            reference_backbone, reference_image_size, stolen_threshold
        )
        self.references: BrandReferences | None = None
        self.coef: np.ndarray | None = None
        self.intercept = 0.0
        self._stack_frame: pd.DataFrame | None = None
        self._out_of_fold: dict[str, float] = {}
        self._bases: dict[str, Any] | None = None
        self._folders: dict[str, Path] = {}
        self._download_dir: tempfile.TemporaryDirectory[str] | None = None

    # --- base models ----------------------------------------------------------------------
    @property
    def bases(self) -> dict[str, Any]:
        """The base models as loaded scorers, fetched on first use."""
        if self._bases is None:
            self._download_dir = tempfile.TemporaryDirectory(prefix="ipguard-late-fusion-")
            self._bases = {}
            for role in BASE_ROLES:
                target = Path(self._download_dir.name) / role
                # ListingScorer, not the pyfunc: the stacker reads the scorer's predictor
                loaded = load_model(self.sources[role], target, through_pyfunc=False)
                self._folders[role] = loaded.folder
                self._bases[role] = loaded.listing_scorer
        return self._bases

    def _features(self, frame: pd.DataFrame, root: Path) -> tuple[np.ndarray, Any]:
        bases = self.bases
        want_images = self.references is not None or any(
            b.predictor.needs_images for b in bases.values()
        )
        inputs = collect_inputs(_absolute_images(frame, root), want_images=want_images)
        found = stacking_features(inputs, bases, self.featurizer, self.references)
        return found[0], inputs

    # --- training -------------------------------------------------------------------------
    def attach_data(self, dm: Any) -> None:
        """Take the validation split to fit on and the brand catalog for tabular features."""
        self._stack_frame = dm.frames["val"]
        self.featurizer = catalog_featurizer(dm.brands_path)
        if self.use_references:
            self.attach_catalog(dm.brands_path)

    def attach_catalog(self, catalog_path: str | Path | None) -> None:
        """Embed the reference catalog the stacker's reference features compare with."""
        self.references = build_references(catalog_path, self.reference_settings)

    def _regression(self) -> Any:
        return LogisticRegression(C=self.C, max_iter=2000, random_state=self.seed)

    def fit_frames(self, train_frame: pd.DataFrame, root: Path) -> None:
        """Fit the stacker on the attached validation split (``train_frame`` is not used:
        the base models were fitted on it); see the module docstring."""
        if self._stack_frame is None:
            raise RuntimeError(
                "LateFusionClassifier needs rows its base models did not train on: call "
                "attach_data(datamodule) first (train() does), or fit_stacker(frame, root) with "
                "a held-out frame"
            )
        self.fit_stacker(self._stack_frame, root)

    def fit_stacker(self, frame: pd.DataFrame, root: Path) -> LateFusionClassifier:
        """Fit on ``frame`` (held out from the base models) and cross-fit its own scores."""
        features, _ = self._features(frame, root)
        labels = label_array(frame["label"])
        if len(np.unique(labels)) < 2:
            raise ValueError(
                f"late fusion: expected both labels in the {len(labels)} stacking rows, "
                f"found only {np.unique(labels).tolist()}"
            )
        folds = min(self.folds, int(np.bincount(labels).min()))
        out_of_fold = np.full(len(frame), np.nan)
        if folds >= 2:
            split = StratifiedKFold(folds, shuffle=True, random_state=self.seed)
            for fit_rows, held_rows in split.split(features, labels):
                part = self._regression().fit(features[fit_rows], labels[fit_rows])
                out_of_fold[held_rows] = part.predict_proba(features[held_rows])[:, 1]
        full = self._regression().fit(features, labels)
        self.coef = full.coef_.reshape(-1).astype(np.float64)
        self.intercept = float(full.intercept_[0])
        ids = frame["listing_id"].astype(str).tolist() if "listing_id" in frame else []
        self._out_of_fold = {
            i: float(p) for i, p in zip(ids, out_of_fold, strict=False) if np.isfinite(p)
        }
        return self

    def predict_frame(self, frame: pd.DataFrame, root: Path) -> np.ndarray:
        """Uncalibrated P(infringing) per row; cross-fitted for rows the stacker was fitted on."""
        if self.coef is None:
            raise RuntimeError("LateFusionClassifier: call fit_frames() before predict_frame()")
        features, _ = self._features(frame, root)
        scores = predict_stacker(features, self.coef, self.intercept)
        if self._out_of_fold and "listing_id" in frame:
            for row, listing_id in enumerate(frame["listing_id"].astype(str)):
                scores[row] = self._out_of_fold.get(listing_id, scores[row])
        return scores

    # --- export ---------------------------------------------------------------------------
    def export_spec(self) -> dict[str, Any]:
        if self.coef is None:
            raise RuntimeError("LateFusionClassifier: call fit_frames() before exporting")
        self.bases  # noqa: B018 - resolves the base folders the spec points at
        return {
            "kind": "late_fusion",
            "network": {
                "bases": {role: f"{BASES_DIR}/{role}" for role in BASE_ROLES},
                "base_sources": {role: str(self.sources[role]) for role in BASE_ROLES},
                "features": list(stack_feature_names(self.references is not None)),
                "coef": self.coef.tolist(),
                "intercept": self.intercept,
            },
            "preprocessing": {},
            "extras": {
                "tabular": self.featurizer.to_dict(),
                **(
                    {"references": references_extras(self.references)}
                    if self.references is not None
                    else {}
                ),
            },
        }

    def save_artifacts(self, folder: Path) -> None:
        """Copy both base model folders in, so the exported model needs nothing else."""
        self.bases  # noqa: B018 - downloads them if not done yet
        for role in BASE_ROLES:
            target = Path(folder) / BASES_DIR / role
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(self._folders[role], target)
        if self.references is not None:
            self.references.save(folder)
