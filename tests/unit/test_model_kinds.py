"""The table of model kinds is the one place a kind is declared: each row's classes exist and
agree with what its trained model exports, the spec accepts it, serving builds its predictor,
its config trains it, and its ONNX flag is what the exporter does."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from ipguard.data.tabular import TabularFeaturizer
from ipguard.nets.stacker import STACK_FEATURE_NAMES
from ipguard.registry.package import write_model_dir
from ipguard.registry.registration import pip_requirements
from ipguard.serving.kinds import KINDS, ModelKind, model_kind
from ipguard.serving.onnx import add_onnx, onnx_form
from ipguard.serving.predictors import build_predictor
from ipguard.serving.spec import ONNX_FILE, ModelSpec

SIZE = 16
IDENTITY = {"method": "none"}
POLICY = {"reject_threshold": 0.9, "approve_threshold": 0.1}
CONFIGS = Path(__file__).resolve().parents[2] / "src" / "ipguard" / "configs" / "model"
TEXTS = [
    ("replica watch copy 1:1", "infringing"),
    ("authentic watch with receipt", "genuine"),
    ("fake designer bag cheap", "infringing"),
    ("genuine leather bag official store", "genuine"),
]


def _text_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "listing_id": [f"L{i}" for i in range(len(TEXTS))],
            "title": [t for t, _ in TEXTS],
            "label": [y for _, y in TEXTS],
        }
    )


def _image(tmp: Path) -> Any:
    from ipguard.models.image_classifier import ImageClassifier

    return ImageClassifier("tiny_cnn", image_size=SIZE)


def _fasttext(tmp: Path) -> Any:
    from ipguard.models.text_classifier import FastTextClassifier

    return FastTextClassifier(n_buckets=64, dim=4)


def _minilm(tmp: Path) -> Any:
    from ipguard.models.text_classifier import MiniLMClassifier

    return MiniLMClassifier(max_length=8)


def _tfidf(tmp: Path) -> Any:
    from ipguard.models.tfidf_classifier import TfidfClassifier

    model = TfidfClassifier(max_features=100)
    model.fit_frames(_text_frame(), tmp)
    return model


def _fusion(tmp: Path) -> Any:
    from ipguard.models.fusion_classifier import FusionClassifier

    return FusionClassifier("tiny_cnn", image_size=SIZE, text_dim=4, n_buckets=64, hidden=4)


def _late_fusion(tmp: Path) -> Any:
    from ipguard.models.late_fusion import LateFusionClassifier

    bases = {}
    for role, make in (("image", _image), ("text", _fasttext)):
        bases[role], _ = write_model_dir(
            make(tmp), tmp / "bases" / role, calibrator=IDENTITY, policy=POLICY
        )
    model = LateFusionClassifier(image_model=str(bases["image"]), text_model=str(bases["text"]))
    model.coef = np.zeros(len(STACK_FEATURE_NAMES))  # a stacker's numbers, without fitting one
    return model


def _video(tmp: Path) -> Any:
    from ipguard.models.video_classifier import VideoClassifier

    return VideoClassifier("tiny_cnn", image_size=SIZE, text_dim=4, n_buckets=64, hidden=4)


BUILDERS = {
    "image": _image,
    "text_tfidf": _tfidf,
    "text_fasttext": _fasttext,
    "text_minilm": _minilm,
    "fusion": _fusion,
    "late_fusion": _late_fusion,
    "video": _video,
}
#: the MiniLM encoder makes its export ~90 MB; its serving is also covered in test_text_models
SLOW_KINDS = {"text_minilm"}


def test_every_kind_in_the_table_has_a_builder_here() -> None:
    assert set(BUILDERS) == set(KINDS)


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_KINDS else n for n in KINDS],
)
def test_kind_exports_registers_and_serves_as_its_row_says(name: str, tmp_path: Path) -> None:
    kind = model_kind(name)
    model = BUILDERS[name](tmp_path)
    assert isinstance(model, kind.trainer_class())
    folder, spec = write_model_dir(
        model,
        tmp_path / "model",
        calibrator=IDENTITY,
        policy=POLICY,
        extras={"tabular": TabularFeaturizer().to_dict()},
    )
    assert spec.kind == name
    assert spec.registered_model == kind.registered_model
    loaded = ModelSpec.load(folder)  # the spec accepts the kind
    assert loaded.kind == name
    predictor = build_predictor(loaded, folder)
    assert isinstance(predictor, kind.predictor_class())
    network = kind.network_class()
    if network is not None:
        # where each predictor keeps what it rebuilt: a network, a fitted model, or its tower's
        held = [getattr(predictor, name, None) for name in ("network", "model")]
        held.append(getattr(getattr(predictor, "tower", None), "network", None))
        assert isinstance(next(h for h in held if h is not None), network)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_config_group_trains_the_kind_of_the_table(name: str) -> None:
    config = OmegaConf.load(CONFIGS / f"{name}.yaml")
    assert config["_target_"] == model_kind(name).trainer


@pytest.mark.parametrize("kind", KINDS.values(), ids=list(KINDS))
def test_onnx_flag_is_what_the_exporter_handles(kind: ModelKind, tmp_path: Path) -> None:
    spec = ModelSpec(kind.name, {"image_size": SIZE}, {}, IDENTITY, POLICY, kind.registered_model)
    if not kind.onnx:
        # the exporter leaves such a model as it is, and serving refuses the runtime
        assert add_onnx(_image(tmp_path).network, spec, tmp_path) is None
        assert not (tmp_path / ONNX_FILE).exists() and "onnx" not in spec.extras
        with pytest.raises(ValueError, match="serves on 'torch' only"):
            build_predictor(spec, tmp_path, runtime="onnx")
        return
    # an ONNX kind has a form, and what it traces takes the graph's inputs: the image network
    # itself (one image tensor), or the tensors-only wrapper of a network that reads strings
    form = onnx_form(kind.name)
    network = kind.network_class()
    assert network is not None
    traced = network if form.inputs == ("images",) else form.graph
    params = [p for p in inspect.signature(traced.forward).parameters if p != "self"]
    assert len(params) == len(form.inputs)


def test_unknown_kind_is_refused_by_the_spec_with_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown model kind 'audio'.*late_fusion"):
        ModelSpec("audio", {}, {}, IDENTITY, POLICY, "ipguard-audio")
    ModelSpec("image", {}, {}, IDENTITY, POLICY, "ipguard-image").save(tmp_path)
    spec = (tmp_path / "spec.json").read_text().replace('"image"', '"audio"', 1)
    (tmp_path / "spec.json").write_text(spec)
    with pytest.raises(ValueError, match=r"spec\.json: unknown model kind 'audio'"):
        ModelSpec.load(tmp_path)


def test_pip_requirements_pin_a_kinds_own_distributions() -> None:
    for kind in KINDS.values():
        names = {r.split("==")[0] for r in pip_requirements(kind.name)}
        assert set(kind.serving_distributions) <= names


def test_every_kind_that_exports_a_graph_says_so_in_its_row() -> None:
    exporting = {name for name, kind in KINDS.items() if kind.exporter is not None}
    assert exporting == {"image", "text_fasttext", "text_minilm", "fusion", "video"}
    assert not KINDS["video"].onnx  # its graph is the frame tower, not the whole network
    assert KINDS["text_tfidf"].export_graphs(None, None, None) is None
