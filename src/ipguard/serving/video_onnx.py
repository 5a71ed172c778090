"""The video model's frame tower on ONNX Runtime: frames -> backbone features, any number.

Scoring a video is one pass of the frame tower over every sampled frame (60 for a minute at
1 frame/s) and a few small layers after it, so the tower is nearly all of the cost; eager
PyTorch runs EfficientNet-Lite0's depthwise convolutions several times slower than ONNX Runtime
on a CPU (``benchmarks/video_throughput.py``). Only the tower is exported: attention pooling
and the transcript's hashed n-grams stay in torch, where the padding mask and the string input
need no graph of their own.

The graph is written with :func:`ipguard.serving.onnx.export_onnx` (batch axis free) into the
model folder's ``frame_tower/`` (``model.onnx``, ``model.onnx.data``, ``onnx_parity.json``) and
kept only if ONNX Runtime reproduces the torch features within
:data:`~ipguard.serving.onnx.PARITY_TOLERANCE` (:func:`~ipguard.serving.onnx.check_parity`).
``spec.extras["onnx"]`` records it (``graph: frame_tower``), which also tags the registered
version with its parity.

A predictor uses the graph when it is there (``frame_tower="auto"``) and falls back to torch
when the model has none (a folder exported before) or ONNX Runtime is not installed (with a
warning: the graph was meant to be used). The session runs on :func:`session_threads` threads:
on a 2-core machine two, so one request does not fight itself for the cores; spinning is off,
so idle ONNX Runtime threads do not take the CPU from decoding the next video.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ipguard.serving.onnx import (
    INPUT_NAME,
    OPSET,
    check_parity,
    export_onnx,
    open_session,
)
from ipguard.serving.spec import ONNX_DATA_FILE, ONNX_FILE, ModelSpec

if TYPE_CHECKING:
    from ipguard.nets.video import VideoNetwork

#: subfolder of a video model's folder that holds the frame tower's graph
FRAME_TOWER_DIR = "frame_tower"
#: which frame tower a predictor runs: the graph when present, the graph or an error, torch
FRAME_TOWERS = ("auto", "onnx", "torch")
#: environment variable that sets ONNX Runtime's intra-op threads for the frame tower
ENV_THREADS = "IPGUARD_ONNX_THREADS"


def frame_tower_dir(folder: str | Path) -> Path:
    return Path(folder) / FRAME_TOWER_DIR


def export_frame_tower(network: VideoNetwork | None, spec: ModelSpec, folder: str | Path) -> float:
    """:func:`add_frame_tower_onnx` in the kinds table's exporter form (``network`` first)."""
    return add_frame_tower_onnx(spec, folder, network)


def add_frame_tower_onnx(
    spec: ModelSpec, folder: str | Path, network: VideoNetwork | None = None, *, seed: int = 0
) -> float:
    """Export the frame tower of the video model in ``folder`` and parity-check it.

    ``network`` is the trained network (training passes its module's); without it the network
    is rebuilt from the folder's spec and weights, as serving would. Returns the max abs
    difference of the features on a random batch (recorded in ``spec.extras["onnx"]``; the
    caller saves the spec); raises :class:`~ipguard.serving.onnx.OnnxParityError` when it is
    not within tolerance, so a bad graph never ships.
    """
    if spec.kind != "video":
        raise ValueError(
            f"{folder}: add_frame_tower_onnx exports video models, found {spec.kind!r}"
        )
    if network is None:
        from ipguard.serving.predictors.video import VideoPredictor

        network = VideoPredictor(spec, folder, frame_tower="torch").network
    tower = network.backbone.eval()
    size = int(network.config.image_size)
    generator = torch.Generator().manual_seed(seed)
    target = frame_tower_dir(folder)
    export_onnx(tower, target, torch.randn(2, 3, size, size, generator=generator))
    # another batch size than the example's: proves the frame axis is free
    diff = check_parity(tower, target, torch.randn(5, 3, size, size, generator=generator))
    spec.extras["onnx"] = {
        "graph": FRAME_TOWER_DIR,
        "file": f"{FRAME_TOWER_DIR}/{ONNX_FILE}",
        "data_file": f"{FRAME_TOWER_DIR}/{ONNX_DATA_FILE}",
        "input": INPUT_NAME,
        "output": "backbone features (frames, feature_dim)",
        "opset": OPSET,
        "parity_max_abs_diff": diff,
    }
    return diff


def session_threads(environ: dict[str, str] | None = None) -> int:
    """Intra-op threads: ``IPGUARD_ONNX_THREADS`` if set, else the cores this process may use."""
    env = os.environ if environ is None else environ
    raw = env.get(ENV_THREADS, "").strip()
    if raw:
        try:
            threads = int(raw)
        except ValueError:
            threads = 0
        if threads < 1:
            raise ValueError(f"environment variable {ENV_THREADS}={raw!r}: expected an int >= 1")
        return threads
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class OnnxFrameTower:
    """The frame tower's graph in an ONNX Runtime session: (N,3,S,S) pixels -> (N,D) features."""

    def __init__(self, folder: str | Path, *, threads: int | None = None) -> None:
        # ONNX Runtime's default sequential mode: one chain of convolutions, nothing beside it
        self.threads = threads or session_threads()
        self.session = open_session(frame_tower_dir(folder), threads=self.threads)

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        batch = np.ascontiguousarray(pixels.numpy(), dtype=np.float32)
        (features,) = self.session.run(None, {INPUT_NAME: batch})
        return torch.from_numpy(np.asarray(features))


def open_frame_tower(folder: str | Path, frame_tower: str = "auto") -> OnnxFrameTower | None:
    """The ONNX frame tower of a video model folder, or None where torch should run it.

    ``"auto"``: the graph when the folder has one and ONNX Runtime is installed, else None
    (warning when the graph is there but ONNX Runtime is not); ``"onnx"``: the graph, or an
    error saying what is missing; ``"torch"``: None.
    """
    if frame_tower not in FRAME_TOWERS:
        raise ValueError(f"frame_tower: expected one of {FRAME_TOWERS}, found {frame_tower!r}")
    if frame_tower == "torch":
        return None
    path = frame_tower_dir(folder) / ONNX_FILE
    if not path.is_file():
        if frame_tower == "onnx":
            raise FileNotFoundError(
                f"frame_tower='onnx' needs {path}, which this model does not have; re-export "
                "it with onnx=true (ipguard-export / ipguard-train) or use frame_tower='torch'"
            )
        return None
    try:
        import onnxruntime  # noqa: F401
    except ImportError as err:
        if frame_tower == "onnx":
            raise ImportError(f"frame_tower='onnx' needs onnxruntime: {err}") from err
        warnings.warn(
            f"{path}: onnxruntime is not installed; scoring frames with torch (slower)",
            stacklevel=2,
        )
        return None
    return OnnxFrameTower(folder)
