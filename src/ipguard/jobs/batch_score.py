"""``ipguard-score``: a whole catalogue scored with one model, into Parquet parts.

The trust-and-safety team rescans every listing when a model or the brand catalog changes, so
this job reads a manifest of any size (CSV, Parquet, JSON lines, or a folder of part files) as
a stream of chunks (:mod:`.score_input`), scores each chunk in-process with the model's own
:class:`~ipguard.serving.scorer.ListingScorer` (:func:`ipguard.serving.batch.score_rows`, the
code Spark's executors run too), and writes one Parquet part per chunk (:mod:`.score_output`):
the model contract's output columns (``listing_id``, ``score``, ``decision``, the per-modality
scores, ``flags``, ``model_version``, ``evidence``), any ``keep`` columns, and ``_source_file``
/ ``_source_row``, which name the input row even where its ``listing_id`` is missing.

Memory is bounded by the chunk, not the manifest; a stopped run resumes where it stopped and
refuses to resume with another model or other data. A bad row is scored with what is usable
and flagged, as in serving, and every row read is written: ``rows_in == rows_out``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from ipguard.data.columns import SOURCE_FILE, SOURCE_ROW
from ipguard.jobs.run import announce, resolve_tracking_uri, set_store_uris
from ipguard.jobs.score_input import ManifestStream
from ipguard.jobs.score_output import PartStats, RunIdentity, ScoreOutput
from ipguard.models.loading import LoadedModel, load_model
from ipguard.serving.batch import output_schema, score_rows, to_arrow
from ipguard.serving.onnx import fastest_runtime
from ipguard.serving.scorer import AUTO, RUNTIMES, ListingScorer

__all__ = ["BatchScoreResult", "model_fingerprint", "score", "score_manifest"]

log = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 50_000
DEFAULT_BATCH_SIZE = 256
_READ_BYTES = 1 << 20


@dataclass
class BatchScoreResult:
    """What one run wrote; ``summary_line`` is the line scripts parse."""

    output: Path
    model_uri: str
    model_version: str | None
    rows_in: int
    rows_out: int
    parts: int
    parts_written: int
    parts_resumed: int
    seconds: float
    rows_scored: int
    """Rows this run scored itself (not counting the resumed parts)."""
    decisions: dict[str, int] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=dict)
    flagged: int = 0
    not_scored: int = 0

    @property
    def listings_per_second(self) -> float:
        return self.rows_scored / self.seconds if self.seconds > 0 else float("nan")

    def summary_line(self) -> str:
        lanes = " ".join(f"{d}={self.decisions.get(d, 0)}" for d in ("reject", "review", "approve"))
        return (
            f"ipguard: scored rows_in={self.rows_in} rows_out={self.rows_out} {lanes} "
            f"flagged={self.flagged} not_scored={self.not_scored} parts={self.parts} "
            f"(written {self.parts_written}, resumed {self.parts_resumed}) "
            f"listings_per_s={self.listings_per_second:.1f} model={self.model_uri} "
            f"output={self.output}"
        )

    def totals(self) -> dict[str, object]:
        return {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "parts": self.parts,
            "decisions": self.decisions,
            "flags": self.flags,
            "flagged": self.flagged,
            "not_scored": self.not_scored,
        }


def model_fingerprint(folder: str | Path) -> str:
    """A hash of every file of an exported model folder (spec, weights, ONNX graph): the same
    model under another URI (an alias and its version) has the same one, a retrained one not."""
    root = Path(folder)
    digest = hashlib.sha256(b"ipguard-model-folder/v1\n")
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(root).as_posix()}\0".encode())
        with open(path, "rb") as handle:
            while block := handle.read(_READ_BYTES):
                digest.update(block)
    return digest.hexdigest()


def score_manifest(
    model: LoadedModel | str | Path,
    input: str | Path,
    output: str | Path,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    batch_size: int = DEFAULT_BATCH_SIZE,
    keep: Sequence[str] = (),
    runtime: str = AUTO,
    encoding: str | None = None,
    overwrite: bool = False,
    progress: bool | None = None,
    on_part: Callable[[PartStats], None] | None = None,
) -> BatchScoreResult:
    """Score every row of the manifest ``input`` into Parquet parts under ``output``.

    ``model`` is a :class:`~ipguard.models.loading.LoadedModel` or anything
    :func:`~ipguard.models.loading.load_model` takes (``models:/name@alias``, a run URI, a
    model folder). ``chunk_size`` rows make one part (and bound memory); ``batch_size``
    listings go to the scorer per call. ``progress``: a bar on stderr; None: only when stderr
    is a terminal. ``on_part`` is called after each part is written. ``runtime``: ``"auto"``
    runs ONNX Runtime where the model folder holds its parity-checked graph and PyTorch
    otherwise (:func:`~ipguard.serving.onnx.fastest_runtime`); ``"torch"`` or ``"onnx"`` force
    one. A resumed run compares the runtime ``"auto"`` chose.

    Parts already in ``output`` from a run with the same model, input, chunk size, kept
    columns and runtime are kept; any other run's are refused
    (:class:`~ipguard.jobs.score_output.ResumeRefusedError`) unless ``overwrite``.
    """
    if runtime not in (*RUNTIMES, AUTO):
        raise ValueError(f"runtime: expected one of {(*RUNTIMES, AUTO)}, found {runtime!r}")
    options = {
        "chunk_size": chunk_size, "batch_size": batch_size, "keep": keep, "runtime": runtime,
        "encoding": encoding, "overwrite": overwrite, "progress": progress, "on_part": on_part,
    }  # fmt: skip
    if isinstance(model, LoadedModel):
        return _score(model, input, output, **options)
    with tempfile.TemporaryDirectory(prefix="ipguard-score-") as scratch:
        return _score(
            load_model(str(model), scratch, through_pyfunc=False), input, output, **options
        )


def _score(
    model: LoadedModel,
    input: str | Path,
    output: str | Path,
    *,
    chunk_size: int,
    batch_size: int,
    keep: Sequence[str],
    runtime: str,
    encoding: str | None,
    overwrite: bool,
    progress: bool | None,
    on_part: Callable[[PartStats], None] | None,
) -> BatchScoreResult:
    stream = ManifestStream(input, chunk_size=chunk_size, keep=keep, encoding=encoding)
    if runtime == AUTO:
        runtime = fastest_runtime(model.folder)
        log.info("runtime=auto: scoring on %s", "ONNX Runtime" if runtime == "onnx" else "PyTorch")
    scorer = model.listing_scorer
    if scorer is None or scorer.runtime != runtime:
        scorer = ListingScorer.load(model.folder, runtime=runtime)
    identity = RunIdentity(
        model_uri=model.uri,
        model_version=model.version or scorer.spec.model_version,
        model_fingerprint=model_fingerprint(model.folder),
        input=str(Path(input).resolve()),
        input_fingerprint=stream.fingerprint(),
        chunk_size=stream.chunk_size,
        keep=list(keep),
        runtime=runtime,
    )
    out = ScoreOutput(output, identity, overwrite=overwrite)
    schema = output_schema(
        {**stream.keep_types(), SOURCE_FILE: pa.string(), SOURCE_ROW: pa.int64()}
    )
    columns = [f.name for f in schema]
    keep_all = [*keep, SOURCE_FILE, SOURCE_ROW]

    show = sys.stderr.isatty() if progress is None else bool(progress)
    bar = tqdm(
        total=stream.total_rows, unit="rows", desc="ipguard-score", disable=not show,
        file=sys.stderr, dynamic_ncols=True,
    )  # fmt: skip
    started = time.perf_counter()
    rows_in = rows_scored = written = 0
    parts: list[PartStats] = []
    with bar:
        for chunk in stream:
            rows_in += len(chunk.frame)
            stats = out.done(chunk.index, len(chunk.frame))
            if stats is None:
                scored = score_rows(
                    scorer, chunk.frame, image_root=stream.root, batch_size=batch_size,
                    keep=keep_all,
                )  # fmt: skip
                stats = out.write(chunk.index, chunk.first_row, to_arrow(scored[columns], schema))
                rows_scored += stats.rows
                written += 1
                log.info("part %d: %d rows scored", chunk.index, stats.rows)
                if on_part is not None:
                    on_part(stats)
            parts.append(stats)
            bar.update(len(chunk.frame))
        if not parts:  # an empty input still gives a dataset with the contract's columns
            nothing = pd.DataFrame(
                {name: pd.Series([], dtype=object) for name in ["listing_id", *keep_all]}
            )
            empty = score_rows(scorer, nothing, keep=keep_all)
            parts.append(out.write(0, 0, to_arrow(empty[columns], schema)))
            written += 1
    seconds = time.perf_counter() - started
    result = _result(model, identity, out, parts, rows_in, written, rows_scored, seconds)
    if result.rows_out != result.rows_in:  # never expected: score_rows checks every batch
        raise RuntimeError(
            f"{out.folder}: read {result.rows_in} rows but wrote {result.rows_out}; "
            "the output is incomplete and not marked _SUCCESS"
        )
    out.finish(result.totals())
    return result


def _result(
    model: LoadedModel,
    identity: RunIdentity,
    out: ScoreOutput,
    parts: list[PartStats],
    rows_in: int,
    written: int,
    rows_scored: int,
    seconds: float,
) -> BatchScoreResult:
    decisions: Counter[str] = Counter()
    flags: Counter[str] = Counter()
    for stats in parts:
        decisions.update(stats.decisions)
        flags.update(stats.flags)
    return BatchScoreResult(
        output=out.folder.resolve(),
        model_uri=model.uri,
        model_version=identity.model_version,
        rows_in=rows_in,
        rows_out=sum(stats.rows for stats in parts),
        parts=len(parts),
        parts_written=written,
        parts_resumed=len(parts) - written,
        seconds=seconds,
        rows_scored=rows_scored,
        decisions=dict(sorted(decisions.items())),
        flags=dict(sorted(flags.items())),
        flagged=sum(stats.flagged for stats in parts),
        not_scored=sum(stats.not_scored for stats in parts),
    )


def score(cfg: DictConfig) -> BatchScoreResult:
    """``ipguard-score`` from a composed ``score`` config (``configs/score.yaml``)."""
    for key in ("input", "output"):
        if OmegaConf.is_missing(cfg, key) or not cfg.get(key):
            raise ValueError(f"{key}: expected a path, e.g. ipguard-score {key}=PATH")
    uri = resolve_tracking_uri(cfg.mlflow.tracking_uri, Path(cfg.paths.root_dir))
    set_store_uris(uri)
    progress = {"auto": None, True: True, False: False}[cfg.progress]
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    with tempfile.TemporaryDirectory(prefix="ipguard-score-") as scratch:
        model = load_model(
            str(cfg.model_uri or ""), scratch, brands=cfg.get("brands"), through_pyfunc=False
        )
        result = score_manifest(
            model,
            cfg.input,
            cfg.output,
            chunk_size=int(cfg.chunk_size),
            batch_size=int(cfg.batch_size),
            keep=list(cfg.keep or ()),
            runtime=str(cfg.runtime),
            encoding=cfg.get("encoding"),
            overwrite=bool(cfg.overwrite),
            progress=progress,
        )
    announce(result)
    return result
