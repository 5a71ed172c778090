"""ONNX export of the hashed-text and fused networks: ONNX Runtime reproduces PyTorch within the
parity tolerance on a model trained a little on demo listings, the served pyfunc scores the same
on either runtime for 1 and 7 listings, and the fused predictor runs its image tower only on
rows that have a photo without changing any score."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch

from ipguard.data.catalog import catalog_featurizer
from ipguard.data.columns import label_array
from ipguard.logistic import sigmoid
from ipguard.models.fusion_classifier import FusionClassifier
from ipguard.models.text_classifier import FastTextClassifier
from ipguard.nets.fusion import FusionNetwork
from ipguard.nets.graphs import FusionGraph, HashedTextGraph, NgramBatch
from ipguard.nets.text import HashedTextNetwork
from ipguard.registry.package import write_model_dir
from ipguard.registry.registration import pyfunc_arguments
from ipguard.serving.inputs import collect_inputs
from ipguard.serving.onnx import (
    PARITY_FILE,
    PARITY_TOLERANCE,
    OnnxParityError,
    add_onnx,
    check_graph_parity,
    onnx_form,
    open_session,
)
from ipguard.serving.scorer import ListingScorer
from ipguard.serving.spec import ModelSpec
from ipguard.text.normalization import model_text

SIZE = 32
BUCKETS = 2048
CALIBRATOR = {"method": "temperature", "temperature": 1.5}
POLICY = {"reject_threshold": 0.7, "approve_threshold": 0.3}


def _request(demo_small, n: int) -> pd.DataFrame:
    """``n`` demo listings as a REST client sends them, with the rows a service gets wrong:
    no photo, an unreadable photo, no text at all."""
    rows = pd.read_csv(demo_small.manifest_path).head(n).reset_index(drop=True)
    root = demo_small.manifest_path.parent
    frame = rows[["listing_id", "title", "brand", "market", "price", "currency"]].assign(
        image_b64=[base64.b64encode((root / p).read_bytes()).decode() for p in rows["image_path"]]
    )
    for row, column, value in ((2, "image_b64", None), (4, "image_b64", "bm90IGFuIGltYWdl")):
        if row < n:
            frame.loc[row, column] = value
    if n > 5:
        frame.loc[5, "title"] = None
    return frame


def _fit(graph: torch.nn.Module, feeds: dict[str, np.ndarray], labels: np.ndarray) -> None:
    """A few Adam steps of ``graph`` on one batch, so the weights are a trained model's, not
    an initialisation's near-zero logits."""
    inputs = [torch.from_numpy(feeds[name]) for name in type(graph).INPUTS]
    target = torch.from_numpy(labels.astype(np.float32))
    optimiser = torch.optim.Adam(graph.parameters(), lr=0.02)
    for _ in range(30):
        out = graph(*inputs)
        logits = out if isinstance(out, torch.Tensor) else torch.stack(out)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, target.expand_as(logits)
        )
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()


@pytest.fixture(scope="module")
def trained(demo_small, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A fused and a hashed-text model, trained a little on 96 demo listings and exported
    with their ONNX graphs."""
    torch.manual_seed(0)
    frame = pd.read_csv(demo_small.manifest_path).head(96)
    labels = label_array(frame["label"])
    root = tmp_path_factory.mktemp("trained")
    featurizer = catalog_featurizer(demo_small.root / "brands_by_currency.csv")
    extras = {"tabular": featurizer.to_dict()}
    fused = FusionClassifier("tiny_cnn", image_size=SIZE, pretrained=False, n_buckets=BUCKETS)
    text = FastTextClassifier(n_buckets=BUCKETS, dim=16)
    folders: dict[str, Path] = {}
    for name, module, kw in (("fusion", fused, extras), ("text", text, None)):
        folders[name], _ = write_model_dir(
            module, root / f"{name}-init", calibrator=CALIBRATOR, policy=POLICY, extras=kw
        )
    # the fused graph's inputs exactly as serving builds them, from the demo rows
    request = frame.drop(columns=["label"])
    predictor = ListingScorer.load(folders["fusion"]).predictor
    inputs = collect_inputs(
        request.assign(
            image_path=[str(demo_small.manifest_path.parent / p) for p in request["image_path"]]
        )
    )
    feeds = predictor.network_inputs(inputs, list(range(len(inputs))))
    _fit(FusionGraph(fused.net).train(), feeds, labels)
    texts = [model_text(t, d) for t, d in zip(inputs.titles, inputs.descriptions, strict=True)]
    _fit(HashedTextGraph(text.net).train(), NgramBatch.of(texts, BUCKETS).feeds(), labels)
    for name, module, kw in (("fusion", fused, extras), ("text", text, None)):
        folder, spec = write_model_dir(
            module, root / name, calibrator=CALIBRATOR, policy=POLICY, extras=kw
        )
        spec.model_version = "4"
        assert add_onnx(module.network.eval(), spec, folder) < PARITY_TOLERANCE
        spec.save(folder)
        folders[name] = folder
    return folders


@pytest.mark.parametrize("name", ["fusion", "text"])
def test_export_records_parity_below_tolerance_on_free_axes(trained, name: str) -> None:
    folder = trained[name]
    spec = ModelSpec.load(folder)
    record = json.loads((folder / PARITY_FILE).read_text())
    assert record["max_abs_diff"] == spec.extras["onnx"]["parity_max_abs_diff"] < 1e-4
    # parity was checked on batches of several sizes, including one listing
    assert len({tuple(b[next(iter(b))]) for b in record["batches"]}) >= 2
    form = onnx_form(spec.kind)
    session = open_session(folder)
    assert [i.name for i in session.get_inputs()] == list(form.inputs)
    assert spec.extras["onnx"]["inputs"] == list(form.inputs)
    assert all(isinstance(i.shape[0], str) for i in session.get_inputs())  # symbolic first axes


def test_parity_check_refuses_a_graph_of_other_weights(trained) -> None:
    spec = ModelSpec.load(trained["fusion"])
    torch.manual_seed(5)
    other = FusionGraph(FusionClassifier(**_fusion_args(spec)).net)
    batches = onnx_form("fusion").batches(spec, other, torch.Generator().manual_seed(1))[1]
    with pytest.raises(OnnxParityError, match="differ from PyTorch"):
        check_graph_parity(other, trained["fusion"], batches, FusionGraph.INPUTS)


def _fusion_args(spec: ModelSpec) -> dict:
    args = {k: spec.network[k] for k in ("image_backbone", "image_size", "n_buckets")}
    return {**args, "pretrained": False}


def test_hashed_text_graph_is_the_network_on_strings(trained) -> None:
    predictor = ListingScorer.load(trained["text"]).predictor
    texts = ["replica Lumenor watch 1:1", "", "   ", "genuine leather bag", "コピー 財布"]
    feeds = NgramBatch.of(texts, BUCKETS).feeds()
    with torch.inference_mode():
        want = predictor.network(texts).numpy()
        got = HashedTextGraph(predictor.network)(*map(torch.from_numpy, feeds.values())).numpy()
    np.testing.assert_allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("name", ["fusion", "text"])
@pytest.mark.parametrize("n", [1, 7])
def test_pyfunc_on_onnx_runtime_scores_as_on_torch(
    trained, demo_small, tmp_path: Path, name: str, n: int
) -> None:
    frame = _request(demo_small, n)
    out = {}
    for runtime in ("torch", "onnx"):
        path = tmp_path / runtime
        mlflow.pyfunc.save_model(path, **pyfunc_arguments(trained[name], runtime=runtime))
        model = mlflow.pyfunc.load_model(str(path))
        assert model.unwrap_python_model().scorer.predictor.session is not None or (
            runtime == "torch"
        )
        out[runtime] = model.predict(frame)
    a, b = out["torch"], out["onnx"]
    for column in ("score", "image_score", "text_score"):
        x, y = a[column].astype(float).to_numpy(), b[column].astype(float).to_numpy()
        np.testing.assert_array_equal(np.isnan(x), np.isnan(y))
        assert np.nanmax(np.abs(x - y), initial=0.0) < 1e-5, column
    assert a["decision"].tolist() == b["decision"].tolist()
    assert a["flags"].tolist() == b["flags"].tolist()
    # a trained model's scores are spread out, so the comparison above is not of constants
    assert np.nanstd(a["score"].astype(float)) > 1e-3 or n == 1


def _old_way(predictor, inputs) -> np.ndarray:
    """The fused score as the predictor computed it before: every row through the network's
    own forward pass, a zero image where the row has no photo."""
    rows = list(range(len(inputs)))
    images, present = predictor._images(inputs, rows)
    texts = [model_text(inputs.titles[i], inputs.descriptions[i]) for i in rows]
    tabular = torch.from_numpy(predictor.tabular_input(inputs)[0])
    with torch.inference_mode():
        return sigmoid(predictor.network(images, present, texts, tabular)["logit"].double().numpy())


@pytest.mark.parametrize("runtime", ["torch", "onnx"])
@pytest.mark.parametrize("photos", ["mixed", "none"])
def test_rows_without_a_photo_skip_the_image_tower_and_score_as_before(
    trained, demo_small, monkeypatch: pytest.MonkeyPatch, runtime: str, photos: str
) -> None:
    frame = _request(demo_small, 12)
    if photos == "none":
        frame = frame.drop(columns=["image_b64"])
    else:
        frame.loc[[0, 7, 8], "image_b64"] = None
    predictor = ListingScorer.load(trained["fusion"], runtime=runtime).predictor
    inputs = collect_inputs(frame)
    with_photo = sum(image is not None for image in inputs.images)
    assert with_photo == (0 if photos == "none" else 7)
    embedded: list[int] = []
    embed = predictor.network.image.embed
    monkeypatch.setattr(
        predictor.network.image, "embed", lambda x: embedded.append(len(x)) or embed(x)
    )
    raw, image, _ = predictor.predict(inputs)
    if runtime == "torch":  # the session runs the graph, not this module
        assert sum(embedded) == with_photo
    np.testing.assert_allclose(raw, _old_way(predictor, inputs), atol=1e-6)
    assert np.isnan(image).sum() == len(frame) - with_photo


def test_onnx_runtime_missing_serves_on_torch_with_a_warning(
    trained, demo_small, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = _request(demo_small, 7)
    expected = ListingScorer.load(trained["fusion"]).score(frame)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    with pytest.warns(UserWarning, match="onnxruntime is not installed"):
        scorer = ListingScorer.load(trained["fusion"], runtime="onnx")
    assert scorer.predictor.session is None
    pd.testing.assert_frame_equal(scorer.score(frame), expected)


@pytest.mark.parametrize(
    ("name", "network"), [("fusion", FusionNetwork), ("text", HashedTextNetwork)]
)
def test_export_of_a_model_folder_exports_its_whole_network(trained, name: str, network) -> None:
    from ipguard.jobs.export import _network, _Source  # what ipguard-export model_dir=... exports

    spec = ModelSpec.load(trained[name])
    found = _network(_Source(trained[name], spec, None, "a model folder", True))
    assert type(found) is network


def _scatter_adds(folder: Path) -> list[str]:
    """The graph's nodes that add into places other nodes also write to (a scatter with a
    reduction): what races across ONNX Runtime's threads."""
    import onnx

    graph = onnx.load(str(folder / "model.onnx"), load_external_data=False).graph
    return [
        node.name
        for node in graph.node
        if node.op_type in ("ScatterND", "ScatterElements")
        and any(a.name == "reduction" and a.s not in (b"", b"none") for a in node.attribute)
    ]


@pytest.mark.parametrize("name", ["fusion", "text"])
def test_graphs_have_no_scatter_add_and_run_on_onnx_runtimes_threads(trained, name: str) -> None:
    assert _scatter_adds(trained[name]) == []
    predictor = ListingScorer.load(trained[name], runtime="onnx").predictor
    assert predictor.session.get_session_options().intra_op_num_threads == 0  # its own choice
    record = json.loads((trained[name] / PARITY_FILE).read_text())
    assert record["runs"] >= 3 and record["max_run_spread"] < PARITY_TOLERANCE
    assert max(b["ngram_counts"][0] for b in record["batches"]) >= 512  # a catalogue batch


def test_text_graph_gives_the_same_logits_on_every_run_on_two_threads(trained, demo_small) -> None:
    rows = pd.read_csv(demo_small.manifest_path).fillna("")
    texts = [model_text(t, d) for t, d in zip(rows["title"], rows["description"], strict=True)]
    texts = [f"{text} lot {copy}" for copy in range(3) for text in texts]  # a catalogue chunk
    feeds = NgramBatch.of(texts, BUCKETS).feeds()
    assert len(feeds["ngram_ids"]) > 50_000  # long enough for threads to share the work
    session = open_session(trained["text"], threads=2)
    runs = [session.run(None, feeds)[0] for _ in range(12)]
    for found in runs[1:]:
        np.testing.assert_array_equal(found, runs[0])
    predictor = ListingScorer.load(trained["text"]).predictor
    with torch.inference_mode():
        want = predictor.network(texts).numpy()
    np.testing.assert_allclose(runs[0], want, atol=1e-5)


class _ScatterTextGraph(torch.nn.Module):
    """The hashed-text graph as ipguard before 0.8 exported it: the bag mean a scatter-add
    over each n-gram's row."""

    INPUTS = ("ngram_ids", "ngram_rows", "ngram_counts")

    def __init__(self, network: HashedTextNetwork) -> None:
        super().__init__()
        self.network = network.eval()

    def forward(self, ids: torch.Tensor, rows: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        weight = self.network.bag.weight
        summed = torch.zeros(counts.shape[0], weight.shape[1]).index_add(0, rows, weight[ids])
        return self.network.head(summed / counts.clamp(min=1.0)[:, None]).squeeze(-1)


def test_a_graph_of_the_old_scatter_form_still_serves_on_one_thread(
    trained, demo_small, tmp_path: Path
) -> None:
    import dataclasses
    import shutil

    from ipguard.nets.graphs import legacy_rows
    from ipguard.serving.onnx import export_graph

    folder = Path(shutil.copytree(trained["text"], tmp_path / "old"))
    predictor = ListingScorer.load(folder).predictor
    legacy = _ScatterTextGraph(predictor.network)
    form = dataclasses.replace(
        onnx_form("text_fasttext"),
        inputs=legacy.INPUTS,
        axes={"ngram_ids": ("ngrams",), "ngram_rows": ("ngrams",), "ngram_counts": ("batch",)},
    )
    example = NgramBatch.of(["replica watch", "genuine bag"], BUCKETS).feeds()
    export_graph(
        legacy, folder, form, {**example, "ngram_rows": legacy_rows(example["ngram_counts"])}
    )
    assert _scatter_adds(folder)  # really the old form

    served = ListingScorer.load(folder, runtime="onnx")
    assert [i.name for i in served.predictor.session.get_inputs()] == list(legacy.INPUTS)
    assert served.predictor.session.get_session_options().intra_op_num_threads == 1
    frame = _request(demo_small, 7)
    want = ListingScorer.load(folder).score(frame)["text_score"].astype(float).to_numpy()
    got = served.score(frame)["text_score"].astype(float).to_numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_auto_serves_the_fused_model_on_its_graph_and_the_hashed_text_model_on_torch(
    trained,
) -> None:
    # the text network is a bag mean and a linear layer, which eager embedding_bag runs faster
    assert ListingScorer.load(trained["fusion"], runtime="auto").runtime == "onnx"
    assert ListingScorer.load(trained["text"], runtime="auto").runtime == "torch"
    assert ListingScorer.load(trained["text"], runtime="onnx").predictor.session is not None
