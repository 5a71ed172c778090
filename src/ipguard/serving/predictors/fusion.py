"""Serving side of the fused models: the fusion network and the late-fusion stacker.

Both rebuild everything from the spec and the model folder: the network from
``spec.network`` and its safetensors weights (or, for late fusion, the base models copied
into the folder), the image preprocessing from ``spec.preprocessing`` through
:class:`~ipguard.serving.predictors.image.ImageTower`, and the tabular features from the
featurizer stored in ``spec.extras["tabular"]``. The fused network runs in its tensors-only
form (:class:`~ipguard.nets.graphs.FusionGraph`), on PyTorch or, with ``runtime="onnx"``, on
ONNX Runtime from the folder's graph: the image tower sees only the rows that have a usable
photo, and the others are scored with ``image_present=0`` and zero image features, which the
head multiplies away -- the score such a row gets from the network with a blank picture, at
none of the image tower's cost (a text-only batch runs no image tower at all).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_model

from ipguard.brands.references import BrandReferences
from ipguard.data.tabular import TabularFeaturizer
from ipguard.logistic import sigmoid
from ipguard.nets.fusion import FusionConfig, FusionNetwork
from ipguard.nets.graphs import FusionGraph, fusion_text_inputs
from ipguard.nets.stacker import predict_stacker, stack_feature_names
from ipguard.serving.inputs import ScoringInputs
from ipguard.serving.onnx import graph_feeds, runtime_session
from ipguard.serving.predictors.image import ImageTower
from ipguard.serving.scorer import ListingScorer
from ipguard.serving.spec import WEIGHTS_FILE, ModelSpec
from ipguard.serving.stacking import stacking_features
from ipguard.text.normalization import model_text

BATCH = 64


def _featurizer(spec: ModelSpec, folder: Path) -> TabularFeaturizer:
    if "tabular" not in spec.extras:
        raise ValueError(
            f"{folder}: a {spec.kind!r} model needs its tabular featurizer in the spec's "
            "extras['tabular'], found none; re-export it with ipguard"
        )
    return TabularFeaturizer.from_dict(spec.extras["tabular"])


def _references(spec: ModelSpec, folder: Path, width: int) -> BrandReferences | None:
    """The embedded brand catalog of a model that reads reference features, else None."""
    if width == 0:
        return None
    if "references" not in spec.extras:
        raise ValueError(
            f"{folder}: the model reads {width} brand-reference features but its spec names no "
            "references folder (extras['references']); re-export it with its brand catalog"
        )
    return BrandReferences.load(Path(folder) / spec.extras["references"]["folder"])


class FusionPredictor:
    """The fused image + text + tabular network."""

    needs_images = True

    def __init__(self, spec: ModelSpec, folder: Path, *, runtime: str = "torch") -> None:
        self.network = FusionNetwork(FusionConfig(**spec.network))
        load_model(self.network, str(Path(folder) / WEIGHTS_FILE))
        self.network.eval()
        self.graph = FusionGraph(self.network)
        #: the ONNX Runtime session of runtime='onnx'; None on PyTorch
        self.session = runtime_session(folder, runtime)
        self.image_size = int(spec.preprocessing["image_size"])
        self.tower = ImageTower(self.network.image, spec.preprocessing)
        self.featurizer = _featurizer(spec, folder)
        self.references = _references(spec, folder, self.network.config.reference_dim)
        self.last_evidence: list[dict[str, Any]] | None = None
        #: the featurizer's facts of the last request, for the evidence column (one pass)
        self.last_facts: list[dict[str, Any]] | None = None

    def _images(self, inputs: ScoringInputs, chunk: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Every row's image tensor (zeros without a photo) and presence: the network's own
        input, which the saliency maps (``serving.explain``) differentiate."""
        images = torch.zeros(len(chunk), 3, self.image_size, self.image_size)
        present = torch.zeros(len(chunk))
        usable = [k for k, i in enumerate(chunk) if inputs.images[i] is not None]
        if usable:
            images[usable] = self.tower.tensor(inputs, [chunk[k] for k in usable])
            present[usable] = 1.0
        return images, present

    def tabular_input(
        self, inputs: ScoringInputs
    ) -> tuple[np.ndarray, list[dict[str, Any]] | None]:
        """The network's tabular input: the featurizer's features, then the brand-reference
        features for a model built with references (and their evidence, else None).

        The featurizer's facts for the evidence column come out of the same pass
        (:attr:`last_facts`), so the brand matcher reads each listing text once."""
        tabular, self.last_facts = self.featurizer.featurize(inputs.columns)
        if self.references is None:
            return tabular, None
        found = self.references.features(inputs.frame, inputs.images)
        return np.concatenate([tabular, found.matrix], axis=1), found.evidence

    def network_inputs(
        self, inputs: ScoringInputs, chunk: list[int], tabular: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """What the network reads for the rows ``chunk`` (the :class:`FusionGraph` inputs, by
        name): the photos of the rows that have one and which rows those are, the hashed model
        texts and their presence, the tabular features (``tabular``: all rows' features,
        computed here when None)."""
        if tabular is None:
            tabular = self.tabular_input(inputs)[0]
        shown = [k for k, i in enumerate(chunk) if inputs.images[i] is not None]
        size = self.image_size
        images = (
            self.tower.tensor(inputs, [chunk[k] for k in shown]).numpy()
            if shown
            else np.zeros((0, 3, size, size), dtype=np.float32)
        )
        texts = [model_text(inputs.titles[i], inputs.descriptions[i]) for i in chunk]
        return {
            "images": images,
            "image_rows": np.asarray(shown, dtype=np.int64),
            **fusion_text_inputs(texts, self.network.config.n_buckets),
            "tabular": np.ascontiguousarray(tabular[chunk], dtype=np.float32),
        }

    def forward(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The network's three logits for one chunk's :meth:`network_inputs`, as float64."""
        if self.session is not None:
            if len(feeds["image_rows"]) == 0:  # a graph takes no empty image batch: pad row B
                size, rows = self.image_size, len(feeds["tabular"])
                blank = np.zeros((1, 3, size, size), dtype=np.float32)
                feeds = {**feeds, "images": blank, "image_rows": np.array([rows], np.int64)}
            out = self.session.run(list(FusionGraph.OUTPUTS), graph_feeds(self.session, feeds))
        else:
            with torch.inference_mode():
                out = self.graph(*(torch.from_numpy(feeds[name]) for name in FusionGraph.INPUTS))
        return {
            name: np.asarray(value, dtype=np.float64)
            for name, value in zip(FusionGraph.OUTPUTS, out, strict=True)
        }

    def predict(self, inputs: ScoringInputs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = len(inputs)
        raw, image, text = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
        features, self.last_evidence = self.tabular_input(inputs)
        for start in range(0, n, BATCH):
            chunk = list(range(start, min(start + BATCH, n)))
            feeds = self.network_inputs(inputs, chunk, features)
            out = self.forward(feeds)
            raw[chunk] = sigmoid(out["logit"])
            has_image = np.zeros(len(chunk), dtype=bool)
            has_image[feeds["image_rows"]] = True
            has_text = feeds["text_present"] > 0
            image[chunk] = np.where(has_image, sigmoid(out["image_logit"]), np.nan)
            text[chunk] = np.where(has_text, sigmoid(out["text_logit"]), np.nan)
        return raw, image, text


class LateFusionPredictor:
    """The logistic-regression stacker over the image and text base models in ``bases/``."""

    def __init__(self, spec: ModelSpec, folder: Path, *, runtime: str = "torch") -> None:
        network = spec.network
        with_references = "references" in spec.extras
        expected = stack_feature_names(with_references)
        if tuple(network.get("features", ())) != expected:
            raise ValueError(
                f"{folder}: the stacker was fitted on features {network.get('features')}, "
                f"this ipguard builds {list(expected)}; use the ipguard that built it"
            )
        self.bases = {
            role: ListingScorer.load(Path(folder) / rel, runtime=runtime)
            for role, rel in network["bases"].items()
        }
        self.coef = np.asarray(network["coef"], dtype=np.float64)
        self.intercept = float(network["intercept"])
        self.featurizer = _featurizer(spec, folder)
        self.references = (
            BrandReferences.load(Path(folder) / spec.extras["references"]["folder"])
            if with_references
            else None
        )
        self.needs_images = self.references is not None or any(
            b.predictor.needs_images for b in self.bases.values()
        )
        self.last_evidence: list[dict[str, Any]] | None = None

    def predict(self, inputs: ScoringInputs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        features, image, text, self.last_evidence = stacking_features(
            inputs, self.bases, self.featurizer, self.references
        )
        return predict_stacker(features, self.coef, self.intercept), image, text
