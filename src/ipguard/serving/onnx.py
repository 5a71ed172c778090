"""The image network as an ONNX graph, so screening services can run it on ONNX Runtime.

ONNX Runtime scores a CPU batch faster than eager PyTorch (see ``benchmarks/serving_latency.py``)
and needs no autograd machinery; the graph is exported once, beside the safetensors weights,
and the served model picks it by option (``model_config={"runtime": "onnx"}``). An export is
only kept if ONNX Runtime reproduces the PyTorch logits within :data:`PARITY_TOLERANCE` on a
real batch: a silently different model in production would be worse than a slower one.

Files in the model folder: ``model.onnx`` (the graph), ``model.onnx.data`` (its weights, which
torch's exporter writes beside the graph) and ``onnx_parity.json`` (the parity check's result).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ipguard.serving.kinds import model_kind
from ipguard.serving.spec import ONNX_DATA_FILE, ONNX_FILE, PARITY_FILE

if TYPE_CHECKING:
    import onnxruntime

INPUT_NAME = "images"
OUTPUT_NAME = "logits"
PARITY_TOLERANCE = 1e-4
#: ONNX opset of the graph; 18 is what torch's exporter targets and ORT >= 1.16 runs
OPSET = 18


class OnnxParityError(RuntimeError):
    """ONNX Runtime does not reproduce the PyTorch network closely enough to serve it."""


def export_onnx(network: nn.Module, folder: str | Path, example: torch.Tensor) -> Path:
    """Write ``network`` as ``<folder>/model.onnx`` (+ ``model.onnx.data``), batch size free.

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
    out_dir = Path(folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / ONNX_FILE
    for stale in (path, out_dir / ONNX_DATA_FILE, out_dir / PARITY_FILE):
        stale.unlink(missing_ok=True)  # a graph of older weights must never survive a re-export
    batch = torch.export.Dim("batch", min=1)
    network = network.eval()
    torch.onnx.export(
        network,
        (example,),
        str(path),
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_shapes={_forward_argument(network): {0: batch}},
        opset_version=OPSET,
        external_data=True,
        dynamo=True,
        verbose=False,  # no '[torch.onnx] ...' progress lines in a service's or CI's log
    )
    return path


def open_session(folder: str | Path) -> onnxruntime.InferenceSession:
    """An ONNX Runtime CPU session on ``<folder>/model.onnx`` (input ``images``, output logits)."""
    import onnxruntime as ort

    path = Path(folder) / ONNX_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"runtime='onnx' needs {path}, which this model does not have; re-export it with "
            "onnx=true (ipguard-export / ipguard-train) or load it with runtime='torch'"
        )
    options = ort.SessionOptions()
    options.log_severity_level = 3  # warnings about unused initialisers are noise for services
    # ONNX Runtime's threads busy-wait after each run by default; in a service they would take
    # the CPU from request parsing, image decoding and the web server between two calls
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def check_parity(network: nn.Module, folder: str | Path, batch: torch.Tensor) -> float:
    """Max |PyTorch - ONNX Runtime| logit on ``batch``; recorded in ``onnx_parity.json``.

    Raises :class:`OnnxParityError` (after recording) when it is not below
    :data:`PARITY_TOLERANCE`, so a bad graph never ships.
    """
    import onnxruntime as ort

    with torch.inference_mode():
        expected = network.eval()(batch).numpy()
    found = open_session(folder).run(None, {INPUT_NAME: batch.numpy()})[0]
    diff = float(np.max(np.abs(np.asarray(found).reshape(-1) - expected.reshape(-1))))
    record = {
        "max_abs_diff": diff,
        "tolerance": PARITY_TOLERANCE,
        "batch_shape": list(batch.shape),
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
    }
    (Path(folder) / PARITY_FILE).write_text(json.dumps(record, indent=2) + "\n")
    if not diff < PARITY_TOLERANCE:
        raise OnnxParityError(
            f"{Path(folder) / ONNX_FILE}: ONNX Runtime logits differ from PyTorch by up to "
            f"{diff:.3g} on a batch of {batch.shape[0]} (expected < {PARITY_TOLERANCE}); "
            "serve this model with runtime='torch' or export with onnx=false"
        )
    return diff


def add_onnx(network: nn.Module, spec: Any, folder: str | Path, *, seed: int = 0) -> float | None:
    """Export and parity-check ``network`` for a written model folder; note it in ``spec``.

    Returns the parity (max abs diff), or None when the spec's kind has no ONNX form
    (``ModelKind.onnx``: text and fused models take strings and tables, not one image tensor).
    ``spec.extras["onnx"]`` says which files hold the graph and how close it is; the caller
    saves the spec.
    """
    if not model_kind(spec.kind).onnx:
        return None
    size = int(spec.preprocessing.get("image_size") or spec.network["image_size"])
    generator = torch.Generator().manual_seed(seed)
    example = torch.randn(2, 3, size, size, generator=generator)
    export_onnx(network, folder, example)
    # parity on a batch size that differs from the example's proves the batch axis is free
    diff = check_parity(network, folder, torch.randn(5, 3, size, size, generator=generator))
    spec.extras["onnx"] = {
        "file": ONNX_FILE,
        "data_file": ONNX_DATA_FILE,
        "input": INPUT_NAME,
        "output": OUTPUT_NAME,
        "opset": OPSET,
        "parity_max_abs_diff": diff,
    }
    return diff


def _forward_argument(network: nn.Module) -> str:
    """Name of the forward argument that takes the images (``dynamic_shapes`` is keyed by it)."""
    import inspect

    params = [p for p in inspect.signature(network.forward).parameters if p != "self"]
    if len(params) != 1:
        raise ValueError(
            f"export_onnx: expected a network whose forward takes one image tensor, found "
            f"{type(network).__name__}.forward({', '.join(params)})"
        )
    return params[0]
