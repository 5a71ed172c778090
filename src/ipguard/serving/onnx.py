"""Networks as ONNX graphs, so screening services can run them on ONNX Runtime.

ONNX Runtime scores a CPU batch faster than eager PyTorch (see ``benchmarks/serving_latency.py``)
and needs no autograd machinery; the graph is exported once, beside the safetensors weights,
and the served model picks it by option (``model_config={"runtime": "onnx"}``). An export is
only kept if ONNX Runtime reproduces the PyTorch outputs within :data:`PARITY_TOLERANCE` on
real batches: a silently different model in production would be worse than a slower one.

Four kinds have an ONNX form (:data:`FORMS`, the kinds table's ``onnx`` flag): the image
network (``images -> logits``), the hashed-text network, the MiniLM text network and the fused
network. The text and fused networks take strings, so what is exported is their tensors-only
form (:mod:`ipguard.nets.graphs`: hashed n-gram ids, MiniLM's token ids and mask, and for the
fused network the images of the rows that have one), which is also what the hashed and fused
PyTorch runtimes call. Every input's first axis is free (batch size, number of images, number
of n-grams); MiniLM's token axis is free too (texts are padded to the longest of a batch).

Files in the model folder: ``model.onnx`` (the graph), ``model.onnx.data`` (its weights, which
torch's exporter writes beside the graph) and ``onnx_parity.json`` (the parity check's result).
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ipguard.nets.graphs import (
    LEGACY_ROWS_INPUT,
    FusionGraph,
    HashedTextGraph,
    MiniLMGraph,
    NgramBatch,
    fusion_text_inputs,
    legacy_rows,
    minilm_token_inputs,
)
from ipguard.serving.kinds import model_kind
from ipguard.serving.spec import ONNX_DATA_FILE, ONNX_FILE, PARITY_FILE, ModelSpec

if TYPE_CHECKING:
    import onnxruntime

INPUT_NAME = "images"
OUTPUT_NAME = "logits"
PARITY_TOLERANCE = 1e-4
#: how many times the parity check runs each batch on ONNX Runtime
PARITY_RUNS = 3
#: listings in the parity check's largest text and fused batch
LARGE_BATCH = 512
#: ONNX opset of the graph; 18 is what torch's exporter targets and ORT >= 1.16 runs
OPSET = 18

Feeds = dict[str, np.ndarray]


class OnnxParityError(RuntimeError):
    """ONNX Runtime does not reproduce the PyTorch network closely enough to serve it."""


@dataclass(frozen=True)
class OnnxForm:
    """How one kind's network becomes a graph, and the batches that prove it."""

    #: the module that is traced (and that the PyTorch runtime of the kind calls)
    graph: Callable[[nn.Module], nn.Module]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    #: each input's free axes by name, its first axes in order; inputs that share a name share
    #: a size
    axes: Mapping[str, tuple[str, ...]]
    #: (spec, graph, generator) -> the traced example, then the parity batches
    batches: Callable[[Any, nn.Module, torch.Generator], tuple[Feeds, list[Feeds]]]
    #: whether ``runtime="auto"`` serves on the graph: False where eager PyTorch is the faster
    preferred: bool = True


_WORDS = (
    "replica",
    "watch",
    "genuine",
    "leather",
    "bag",
    "1:1",
    "AAA",
    "Lumenor",
    "копия",
    "コピー",
)


def _texts(n: int, generator: torch.Generator) -> list[str]:
    """``n`` listing-like texts of random words; the last one empty (a listing without text)."""
    picks = torch.randint(len(_WORDS), (n, 4), generator=generator).tolist()
    return [" ".join(_WORDS[i] for i in row) for row in picks[:-1]] + [""]


def _image_size(spec: Any) -> int:
    return int(spec.preprocessing.get("image_size") or spec.network["image_size"])


def _image_batches(spec: Any, graph: nn.Module, gen: torch.Generator) -> tuple[Feeds, list[Feeds]]:
    size = _image_size(spec)

    def images(n: int) -> Feeds:
        return {INPUT_NAME: torch.randn(n, 3, size, size, generator=gen).numpy()}

    # parity on batch sizes other than the example's proves the batch axis is free
    return images(2), [images(5), images(1)]


def _text_batches(spec: Any, graph: nn.Module, gen: torch.Generator) -> tuple[Feeds, list[Feeds]]:
    buckets = graph.network.n_buckets

    def texts(n: int) -> Feeds:
        return NgramBatch.of(_texts(n, gen), buckets).feeds()

    # and a catalogue-sized batch (~40,000 n-grams), where threads would race if they could
    return texts(3), [texts(7), NgramBatch.of(["Lumenor"], buckets).feeds(), texts(LARGE_BATCH)]


def _minilm_batches(spec: Any, graph: nn.Module, gen: torch.Generator) -> tuple[Feeds, list[Feeds]]:
    network = graph.network

    def texts(n: int) -> Feeds:
        return minilm_token_inputs(network, _texts(n + 1, gen)[:-1])  # no blank text

    # a one-word text has 3 tokens; parity on other batch and token counts than the example's
    return texts(3), [texts(7), minilm_token_inputs(network, ["Lumenor"])]


def _fusion_batches(spec: Any, graph: nn.Module, gen: torch.Generator) -> tuple[Feeds, list[Feeds]]:
    config = graph.network.config
    size, width = _image_size(spec), config.tabular_dim + config.reference_dim

    def rows(n: int, with_images: int) -> Feeds:
        feeds = fusion_text_inputs(_texts(n, gen), config.n_buckets)
        shown = max(with_images, 1)  # no image at all: one blank image for the pad row n
        image_rows = np.arange(with_images) if with_images else np.array([n])
        return {
            "images": torch.randn(shown, 3, size, size, generator=gen).numpy()
            * (1.0 if with_images else 0.0),
            "image_rows": image_rows.astype(np.int64),
            **feeds,
            "tabular": torch.randn(n, width, generator=gen).numpy(),
        }

    # mixed batches with and without photos and text, one listing, no photo at all, and a
    # catalogue-sized batch of texts with a few photos
    return rows(3, 2), [rows(7, 4), rows(1, 1), rows(4, 0), rows(LARGE_BATCH, 4)]


FORMS: dict[str, OnnxForm] = {
    "image": OnnxForm(
        graph=lambda network: network.eval(),
        inputs=(INPUT_NAME,),
        outputs=(OUTPUT_NAME,),
        axes={INPUT_NAME: ("batch",)},
        batches=_image_batches,
    ),
    "text_fasttext": OnnxForm(
        graph=HashedTextGraph,
        inputs=HashedTextGraph.INPUTS,
        outputs=HashedTextGraph.OUTPUTS,
        axes={"ngram_ids": ("ngrams",), "ngram_counts": ("batch",)},
        batches=_text_batches,
        # a bag mean and one linear layer: PyTorch's embedding_bag kernel does the bag 10x
        # faster than any graph form ONNX Runtime runs (64 demo listings: 0.2 vs 2.0 ms); the
        # graph stays for services that ask for runtime="onnx"
        preferred=False,
    ),
    "text_minilm": OnnxForm(
        graph=MiniLMGraph,
        inputs=MiniLMGraph.INPUTS,
        outputs=MiniLMGraph.OUTPUTS,
        axes={"input_ids": ("batch", "tokens"), "attention_mask": ("batch", "tokens")},
        batches=_minilm_batches,
    ),
    "fusion": OnnxForm(
        graph=FusionGraph,
        inputs=FusionGraph.INPUTS,
        outputs=FusionGraph.OUTPUTS,
        axes={
            "images": ("images",),
            "image_rows": ("images",),
            "ngram_ids": ("ngrams",),
            "ngram_counts": ("batch",),
            "text_present": ("batch",),
            "tabular": ("batch",),
        },
        batches=_fusion_batches,
    ),
}


def onnx_form(kind: str) -> OnnxForm:
    """The ONNX form of a kind whose table row says ``onnx=True``."""
    if kind not in FORMS:
        raise ValueError(f"model kind {kind!r} has no ONNX form; forms exist for {sorted(FORMS)}")
    return FORMS[kind]


def export_graph(graph: nn.Module, folder: str | Path, form: OnnxForm, example: Feeds) -> Path:
    """Write ``graph`` as ``<folder>/model.onnx`` (+ ``model.onnx.data``), every axis in
    ``form.axes`` free. ``example`` must have at least 2 along each of them: the exporter
    specialises a dimension of size 1 to a constant."""
    axes = form.axes
    for name in form.inputs:
        for position, _ in enumerate(axes.get(name, ())):
            if example[name].shape[position] < 2:
                raise ValueError(
                    f"export_graph: expected at least 2 along axis {position} of the example's "
                    f"{name!r} (a size of 1 would be frozen into the graph), found "
                    f"{example[name].shape[position]}"
                )
    out_dir = Path(folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / ONNX_FILE
    for stale in (path, out_dir / ONNX_DATA_FILE, out_dir / PARITY_FILE):
        stale.unlink(missing_ok=True)  # a graph of older weights must never survive a re-export
    dims = {axis: torch.export.Dim(axis, min=1) for names in axes.values() for axis in names}
    graph = graph.eval()
    with _quiet_exporter():
        torch.onnx.export(
            graph,
            tuple(torch.from_numpy(example[name]) for name in form.inputs),
            str(path),
            input_names=list(form.inputs),
            output_names=list(form.outputs),
            dynamic_shapes=tuple(
                {i: dims[axis] for i, axis in enumerate(axes[name])} if name in axes else None
                for name in form.inputs
            ),
            opset_version=OPSET,
            external_data=True,
            dynamo=True,
            verbose=False,  # no '[torch.onnx] ...' progress lines in a service's or CI's log
        )
    return path


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """No exporter chatter in a training run's log: the graph optimiser's per-initialiser INFO
    lines and notes about its own choices, and the warning that two inputs sharing an axis
    (the images and their row numbers) share its name -- which is what they are meant to do.
    Errors still surface; the parity check is what says whether the graph is right."""
    loggers = [logging.getLogger(name) for name in ("onnx_ir", "onnxscript")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"# The axis name: .* will not be used")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


def export_onnx(network: nn.Module, folder: str | Path, example: torch.Tensor) -> Path:
    """Write the image ``network`` as ``<folder>/model.onnx`` (+ ``model.onnx.data``), batch free.

    ``example`` is an image batch of the served shape ``(B, 3, H, W)``; only its batch dimension
    is left dynamic, so the graph accepts any number of listings at the trained image size.
    ``B`` must be at least 2: the exporter specialises a dimension of size 1 to a constant.
    """
    if example.ndim != 4 or example.shape[1] != 3:
        raise ValueError(
            f"export_onnx: expected an example image batch of shape (B, 3, H, W), "
            f"found {tuple(example.shape)}"
        )
    if example.shape[0] < 2:
        raise ValueError(
            f"export_onnx: expected an example batch of at least 2 images (a batch of 1 would be "
            f"frozen into the graph), found {example.shape[0]}"
        )
    _forward_argument(network)  # one image tensor in, or a clear error
    return export_graph(network, folder, FORMS["image"], {INPUT_NAME: example.numpy()})


def open_session(folder: str | Path, *, threads: int = 0) -> onnxruntime.InferenceSession:
    """An ONNX Runtime CPU session on ``<folder>/model.onnx``; ``threads``: its intra-op
    threads (0: ONNX Runtime's choice). A graph exported before 0.8 (it takes
    :data:`~ipguard.nets.graphs.LEGACY_ROWS_INPUT`) runs on one thread whatever is asked: its
    scatter-add races on several."""
    path = Path(folder) / ONNX_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"runtime='onnx' needs {path}, which this model does not have; re-export it with "
            "onnx=true (ipguard-export / ipguard-train) or load it with runtime='torch'"
        )
    session = _session(path, threads)
    if threads != 1 and LEGACY_ROWS_INPUT in _input_names(session):
        session = _session(path, 1)
    return session


def _session(path: Path, threads: int) -> onnxruntime.InferenceSession:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # warnings about unused initialisers are noise for services
    if threads:
        options.intra_op_num_threads = threads
    # ONNX Runtime's threads busy-wait after each run by default; in a service they would take
    # the CPU from request parsing, image decoding and the web server between two calls
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _input_names(session: onnxruntime.InferenceSession) -> list[str]:
    return [node.name for node in session.get_inputs()]


def graph_feeds(session: onnxruntime.InferenceSession, feeds: Feeds) -> Feeds:
    """``feeds`` as ``session``'s graph takes them: only the inputs it declares, and for a
    graph of the pre-0.8 form the row of each n-gram id, derived from the counts."""
    names = _input_names(session)
    if LEGACY_ROWS_INPUT in names and LEGACY_ROWS_INPUT not in feeds:
        feeds = {**feeds, LEGACY_ROWS_INPUT: legacy_rows(feeds["ngram_counts"])}
    return {name: feeds[name] for name in names}


def fastest_runtime(folder: str | Path) -> str:
    """``"onnx"`` where ``folder`` holds a graph (written only after its parity check) of a
    kind whose graph is the faster (:attr:`OnnxForm.preferred`) and ONNX Runtime is installed,
    else ``"torch"``: what a service or job that may choose should run.

    The graphs score the same listings within 1e-5 and run 3-6x faster on a CPU batch here
    (benchmarks/batch_score.py: the default fused model with photos 74 -> 348-453 listings/s).
    """
    if not (Path(folder) / ONNX_FILE).is_file():
        return "torch"
    form = FORMS.get(ModelSpec.load(folder).kind)
    if form is None or not form.preferred:
        return "torch"
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "torch"
    return "onnx"


def runtime_session(folder: str | Path, runtime: str) -> onnxruntime.InferenceSession | None:
    """The session a predictor runs on ``runtime='onnx'``; None on ``'torch'``.

    Where ONNX Runtime is not installed (a slim service image), the model still serves, on
    PyTorch from the same weights, with a warning: the graph is an optimisation, not the model.
    A missing graph stays an error (:func:`open_session`): the caller asked for a form the
    model folder does not have.
    """
    if runtime != "onnx":
        return None
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        warnings.warn(
            f"runtime='onnx' for {folder}: onnxruntime is not installed, so this model serves "
            "on PyTorch (same weights, same scores within 1e-4); pip install onnxruntime",
            stacklevel=2,
        )
        return None
    return open_session(folder)


def check_graph_parity(
    graph: nn.Module,
    folder: str | Path,
    batches: list[Feeds],
    inputs: tuple[str, ...],
    *,
    runs: int = PARITY_RUNS,
) -> float:
    """Max |PyTorch - ONNX Runtime| over every output of ``graph`` on ``batches`` (``inputs``:
    the graph's forward arguments, in order, by their names in the feeds); recorded in
    ``onnx_parity.json``. Raises :class:`OnnxParityError` (after recording) when it is not
    below :data:`PARITY_TOLERANCE`, so a bad graph never ships.

    ONNX Runtime runs every batch ``runs`` times on all its threads, as the services run it,
    and every run counts: a kernel that races across threads gives
    different outputs from one run to the next, and a single run on a small batch can miss it
    (the pre-0.8 text graphs passed a 7-row check and were off by 7e-4 on 3 of 69 catalogue
    chunks). The record also gives the largest spread between runs of one batch."""
    import onnxruntime as ort

    session = open_session(folder)
    diff = spread = 0.0
    for feeds in batches:
        with torch.inference_mode():
            expected = graph.eval()(*(torch.from_numpy(feeds[name]) for name in inputs))
        expected = expected if isinstance(expected, tuple) else (expected,)
        want = [e.numpy().reshape(-1) for e in expected]
        first: list[np.ndarray] | None = None
        for _ in range(runs):
            found = [np.asarray(f).reshape(-1) for f in session.run(None, feeds)]
            for w, got in zip(want, found, strict=True):
                diff = max(diff, float(np.abs(got - w).max(initial=0.0)))
            if first is None:
                first = found
            for a, b in zip(first, found, strict=True):
                spread = max(spread, float(np.abs(a - b).max(initial=0.0)))
    record = {
        "max_abs_diff": diff,
        "tolerance": PARITY_TOLERANCE,
        "runs": runs,
        "max_run_spread": spread,
        "intra_op_threads": "onnxruntime default",
        "batch_shape": list(next(iter(batches[0].values())).shape),
        "batches": [{name: list(value.shape) for name, value in f.items()} for f in batches],
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
    }
    (Path(folder) / PARITY_FILE).write_text(json.dumps(record, indent=2) + "\n")
    if not diff < PARITY_TOLERANCE:
        sizes = ", ".join(str(len(next(iter(f.values())))) for f in batches)
        raise OnnxParityError(
            f"{Path(folder) / ONNX_FILE}: ONNX Runtime outputs differ from PyTorch by up to "
            f"{diff:.3g} on batches of {sizes}, {runs} runs each (expected < "
            f"{PARITY_TOLERANCE}); serve this model with runtime='torch' or export with "
            "onnx=false"
        )
    return diff


def check_parity(network: nn.Module, folder: str | Path, batch: torch.Tensor) -> float:
    """:func:`check_graph_parity` of an image network on one image ``batch``."""
    return check_graph_parity(network, folder, [{INPUT_NAME: batch.numpy()}], (INPUT_NAME,))


def add_onnx(network: nn.Module, spec: Any, folder: str | Path, *, seed: int = 0) -> float | None:
    """Export and parity-check ``network`` for a written model folder; note it in ``spec``.

    Returns the parity (max abs diff), or None when the spec's kind has no ONNX form
    (``ModelKind.onnx``: the TF-IDF pipeline and late fusion serve on PyTorch; video exports its
    frame tower through :mod:`ipguard.serving.video_onnx`).
    ``spec.extras["onnx"]`` says which files hold the graph, its inputs and how close it is;
    the caller saves the spec.
    """
    if not model_kind(spec.kind).onnx:
        return None
    form = onnx_form(spec.kind)
    graph = form.graph(network)
    generator = torch.Generator().manual_seed(seed)
    example, parity_batches = form.batches(spec, graph, generator)
    export_graph(graph, folder, form, example)
    diff = check_graph_parity(graph, folder, parity_batches, form.inputs)
    spec.extras["onnx"] = {
        "file": ONNX_FILE,
        "data_file": ONNX_DATA_FILE,
        "inputs": list(form.inputs),
        "outputs": list(form.outputs),
        "opset": OPSET,
        "parity_max_abs_diff": diff,
    }
    if form.inputs == (INPUT_NAME,):
        spec.extras["onnx"].update(input=INPUT_NAME, output=OUTPUT_NAME)
    return diff


def _forward_argument(network: nn.Module) -> str:
    """Name of the forward argument that takes the images (an image form has one input)."""
    import inspect

    params = [p for p in inspect.signature(network.forward).parameters if p != "self"]
    if len(params) != 1:
        raise ValueError(
            f"export_onnx: expected a network whose forward takes one image tensor, found "
            f"{type(network).__name__}.forward({', '.join(params)})"
        )
    return params[0]
