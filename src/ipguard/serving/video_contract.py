"""The ``ipguard-video`` model's contract in MLflow's terms: columns, signature, example.

Input (one row per video): ``video_path`` (a file the server can read) or ``video_b64`` (a
short clip as base64, for REST), optional ``transcript`` and ``video_id``, plus any other
request column of the video manifest (``market``, ``seller_id`` ..., echoed nowhere, read by
nothing yet). Every input column is declared ``Any`` for the reason the listing signature gives
(``ipguard.serving.signature``): MLflow would refuse the whole batch for one cell of the wrong
type, while the contract flags that row and scores the rest.

Output (same order): ``score`` (calibrated P(infringing)), ``decision`` (reject / review /
approve from the stored policy), ``evidence_time_s`` (the frame with the largest attention x
instance probability; null without frames), ``top_frames`` (JSON list of the strongest frames:
``time_s``, ``weight``, ``frame_score``), ``frame_score`` and ``transcript_score`` (each
modality alone, null where absent), ``flags`` (e.g. ``video_truncated``, ``transcript_empty``)
and ``model_version``.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema
from mlflow.types.schema import AnyType

from ipguard.data.video_columns import VIDEO_REQUEST_COLUMNS

VIDEO_SCREENER_FILE = Path(__file__).parent / "video_screener.py"

#: request columns: the manifest's request columns with the base64 clip beside the path
VIDEO_INPUT_COLUMNS: tuple[str, ...] = (*VIDEO_REQUEST_COLUMNS, "video_b64")

#: one output row per input row, in request order, with these columns and types
VIDEO_OUTPUT_TYPES: dict[str, str] = {
    "video_id": "string",
    "score": "double",
    "decision": "string",
    "evidence_time_s": "double",
    "top_frames": "string",  # JSON
    "frame_score": "double",
    "transcript_score": "double",
    "flags": "string",
    "model_version": "string",
}
VIDEO_OUTPUT_COLUMNS = tuple(VIDEO_OUTPUT_TYPES)


def video_signature() -> ModelSignature:
    """Every input optional and ``Any`` (checked per row); the outputs typed."""
    inputs = Schema([ColSpec(AnyType(), name, required=False) for name in VIDEO_INPUT_COLUMNS])
    outputs = Schema([ColSpec(kind, name) for name, kind in VIDEO_OUTPUT_TYPES.items()])
    return ModelSignature(inputs=inputs, outputs=outputs)


def video_request_example(frame: pd.DataFrame, root: Path, n: int = 2) -> pd.DataFrame:
    """A couple of real videos as a REST client sends them (base64 clips, transcripts): the
    input example logged with every version."""
    rows = frame.head(n).reset_index(drop=True)
    cols = [c for c in ("video_id", "transcript", "market") if c in rows]
    example = rows[cols].astype(object).where(rows[cols].notna(), "").astype(str)
    example["video_b64"] = [
        base64.b64encode((Path(root) / p).read_bytes()).decode() if isinstance(p, str) else ""
        for p in rows["video_path"]
    ]
    return example


def with_nulls(out: pd.DataFrame) -> pd.DataFrame:
    """Missing doubles as ``None`` (JSON ``null``), not NaN, which strict parsers reject."""
    columns = {}
    for name, kind in VIDEO_OUTPUT_TYPES.items():
        column = out[name].to_numpy()
        if kind == "double":
            column = column.astype(object)
            column[pd.isna(out[name]).to_numpy()] = None
        columns[name] = column
    return pd.DataFrame(columns, columns=list(VIDEO_OUTPUT_COLUMNS))
