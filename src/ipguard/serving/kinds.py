"""The model kinds ipguard trains and serves, in one table.

A kind is what ``spec.json`` names in ``kind``; everything that differs between kinds is a row
here: the class that trains it, the network serving rebuilds, the predictor that scores it,
the registered model its versions go to, whether it has an ONNX form and which extra
distributions its pyfunc pins. Adding a kind means adding a row (and its config group).

Classes are named by dotted path and imported only when asked for, so reading the table costs
a screening service nothing: serving never imports the Lightning modules it names, and each
predictor imports only its own kind's code.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Any


@dataclass(frozen=True)
class ModelKind:
    name: str
    #: what training instantiates (the ``_target_`` of ``configs/model/<name>.yaml``)
    trainer: str
    #: the predictor that serves a model folder of this kind
    predictor: str
    #: the registered model its versions go to
    registered_model: str
    #: the network (or fitted estimator) the predictor rebuilds; None: it has none of its own
    network: str | None
    #: whether its network exports to ONNX (its form: ``ipguard.serving.onnx.FORMS``)
    onnx: bool = False
    #: distributions its pyfunc imports beyond the common serving stack (pinned exactly)
    serving_distributions: tuple[str, ...] = ()
    #: the function that writes and parity-checks the ONNX graph(s) its pyfunc can run, as
    #: ``(network, spec, folder) -> max abs diff``, for a kind whose graph is not its whole
    #: network's form (video: the frame tower); an ``onnx`` kind gets ``add_onnx``
    graph_exporter: str | None = None

    @property
    def exporter(self) -> str | None:
        """The dotted path of what writes its graph(s) at ``onnx=true``; None: none."""
        return self.graph_exporter or (_ADD_ONNX if self.onnx else None)

    def export_graphs(self, network: Any, spec: Any, folder: Any) -> float | None:
        """Write and parity-check this kind's ONNX graph(s) into ``folder``, noted in ``spec``
        (the caller saves it); None for a kind that serves on PyTorch only."""
        return None if self.exporter is None else resolve(self.exporter)(network, spec, folder)

    def trainer_class(self) -> type[Any]:
        """The training class; imports Lightning for most kinds, so jobs call it, not serving."""
        return resolve(self.trainer)

    def predictor_class(self) -> type[Any]:
        return resolve(self.predictor)

    def network_class(self) -> type[Any] | None:
        return resolve(self.network) if self.network else None


def resolve(path: str) -> Any:
    """The object a dotted path ``package.module.Name`` names."""
    module, _, name = path.rpartition(".")
    return getattr(import_module(module), name)


_PREDICTORS = "ipguard.serving.predictors"
_ADD_ONNX = "ipguard.serving.onnx.add_onnx"

KINDS: dict[str, ModelKind] = {
    kind.name: kind
    for kind in (
        ModelKind(
            "image",
            trainer="ipguard.models.image_classifier.ImageClassifier",
            predictor=f"{_PREDICTORS}.image.ImagePredictor",
            registered_model="ipguard-image",
            network="ipguard.nets.image.ImageNetwork",
            onnx=True,
        ),
        ModelKind(
            "text_tfidf",
            trainer="ipguard.models.tfidf_classifier.TfidfClassifier",
            predictor=f"{_PREDICTORS}.tfidf.TfidfPredictor",
            registered_model="ipguard-text",
            network="ipguard.models.baselines.TfidfTextModel",
        ),
        ModelKind(
            "text_fasttext",
            trainer="ipguard.models.text_classifier.FastTextClassifier",
            predictor=f"{_PREDICTORS}.text.NeuralTextPredictor",
            registered_model="ipguard-text",
            network="ipguard.nets.text.HashedTextNetwork",
            onnx=True,  # as hashed n-gram ids (ipguard.nets.graphs.HashedTextGraph)
        ),
        ModelKind(
            "text_minilm",
            trainer="ipguard.models.text_classifier.MiniLMClassifier",
            predictor=f"{_PREDICTORS}.text.NeuralTextPredictor",
            registered_model="ipguard-text",
            network="ipguard.nets.text.MiniLMNetwork",
            onnx=True,  # as token ids and mask (ipguard.nets.graphs.MiniLMGraph); ~90 MB graph
            # the predictor rebuilds its tokenizer and encoder from the folder's copy, and
            # tokenizer files behave differently across releases
            serving_distributions=("transformers", "tokenizers"),
        ),
        ModelKind(
            "fusion",
            trainer="ipguard.models.fusion_classifier.FusionClassifier",
            predictor=f"{_PREDICTORS}.fusion.FusionPredictor",
            registered_model="ipguard-listing",
            network="ipguard.nets.fusion.FusionNetwork",
            onnx=True,  # photos of the rows that have one, n-gram ids, tabular features
        ),
        ModelKind(
            "late_fusion",
            trainer="ipguard.models.late_fusion.LateFusionClassifier",
            predictor=f"{_PREDICTORS}.fusion.LateFusionPredictor",
            registered_model="ipguard-listing",
            network=None,  # a few stacker numbers in the spec over the base models' folders
        ),
        ModelKind(
            "video",
            trainer="ipguard.models.video_classifier.VideoClassifier",
            predictor=f"{_PREDICTORS}.video.VideoPredictor",
            registered_model="ipguard-video",
            network="ipguard.nets.video.VideoNetwork",
            serving_distributions=("av",),  # decodes the videos it is sent
            graph_exporter="ipguard.serving.video_onnx.export_frame_tower",
        ),
    )
}


def model_kind(name: str) -> ModelKind:
    """The table's row for ``name``; a ValueError naming the known kinds otherwise."""
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown model kind {name!r}; known: {sorted(KINDS)}") from None
