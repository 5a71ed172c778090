"""The output folder of ``ipguard-score``: Parquet parts written atomically, and a resume.

A catalogue rescan runs for hours, and a run that stops (a pre-empted machine, a killed job)
must not start again from the first row, nor mix the parts of two models. So:

* part ``k`` holds the scores of input rows ``k * chunk_size ...`` and is written to a hidden
  temporary file, flushed, then renamed: a part under its final name is always complete;
* ``_ipguard_score.json`` records, before the first part, what the parts are scored *with* and
  *from*: the model (URI, version, a hash of its folder), the input (a hash of its files), the
  chunk size, the kept columns and the runtime. A later run into the same folder resumes only
  if all of them match, and otherwise refuses, naming what differs;
* each part carries its own counts (rows, decisions, flags) in its Parquet footer, and
  ``_SUCCESS`` (JSON, Spark's marker name) gives the totals once every part is there.

Names starting with ``_`` or ``.`` are what pyarrow, Spark and ipguard's manifest reader skip,
so the folder reads as one dataset: ``pd.read_parquet(folder)``.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = [
    "PART_PATTERN",
    "STATE_FILE",
    "SUCCESS_FILE",
    "PartStats",
    "ResumeRefusedError",
    "RunIdentity",
    "ScoreOutput",
    "read_success",
]

STATE_FILE = "_ipguard_score.json"
SUCCESS_FILE = "_SUCCESS"
PART_PATTERN = re.compile(r"^part-(\d{6,})\.parquet$")
_STATS_KEY = b"ipguard.score"
_FORMAT = 1
# what must match for a run to add parts to a folder another run started
_RESUME_KEYS = ("model_fingerprint", "input_fingerprint", "chunk_size", "keep", "runtime")


class ResumeRefusedError(ValueError):
    """The output folder holds parts that this run cannot continue."""


@dataclass(frozen=True)
class RunIdentity:
    """What a run's parts are scored with and from (see the module docstring)."""

    model_uri: str
    model_version: str | None
    model_fingerprint: str
    input: str
    input_fingerprint: str
    chunk_size: int
    keep: list[str] = field(default_factory=list)
    runtime: str = "torch"

    def differences(self, recorded: dict[str, Any]) -> list[str]:
        """``key: recorded -> this run`` for each resume key that differs."""
        mine = asdict(self)
        return [
            f"{key}: {_show(recorded.get(key), key)} -> {_show(mine[key], key)}"
            for key in _RESUME_KEYS
            if recorded.get(key) != mine[key]
        ]


def _show(value: Any, key: str) -> str:
    return str(value)[:16] if key.endswith("fingerprint") and value else repr(value)


@dataclass
class PartStats:
    """The counts of one part, kept in its footer so a summary never re-reads scores."""

    index: int
    first_row: int
    rows: int
    decisions: dict[str, int] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=dict)
    flagged: int = 0
    """Rows with at least one flag."""
    not_scored: int = 0

    @classmethod
    def of(cls, index: int, first_row: int, table: pa.Table) -> PartStats:
        decisions = Counter(table.column("decision").to_pylist())
        flags: Counter[str] = Counter()
        flagged = 0
        for value in table.column("flags").to_pylist():
            if value:
                flagged += 1
                flags.update(value.split(","))
        return cls(
            index=index,
            first_row=first_row,
            rows=table.num_rows,
            decisions=dict(sorted(decisions.items())),
            flags=dict(sorted(flags.items())),
            flagged=flagged,
            not_scored=int(table.column("score").null_count),
        )


class ScoreOutput:
    """The output folder of one run; opening it checks (or writes) the run record.

    ``overwrite`` deletes the parts and records a previous run left (any model, any input)
    and starts afresh; files the folder holds that no run of ``ipguard-score`` wrote are
    never deleted: such a folder is refused.
    """

    def __init__(self, folder: str | Path, identity: RunIdentity, *, overwrite: bool = False):
        self.folder = Path(folder)
        self.identity = identity
        self.folder.mkdir(parents=True, exist_ok=True)
        ours, strangers = self._listing()
        if strangers:
            raise ResumeRefusedError(
                f"{self.folder}: holds files ipguard-score did not write "
                f"({sorted(strangers)[:5]}); score into an empty or new folder"
            )
        state = self.folder / STATE_FILE
        if overwrite:
            for name in ours:
                (self.folder / name).unlink()
        elif state.is_file():
            self._check_resumable(json.loads(state.read_text()))
        elif any(PART_PATTERN.match(name) for name in ours):
            raise ResumeRefusedError(
                f"{self.folder}: holds parts but no {STATE_FILE} saying what scored them; "
                "score into a new folder, or pass overwrite=true to replace them"
            )
        for name in ours:  # a temporary file is a part a stopped run did not finish
            if name.startswith(".") and (self.folder / name).exists():
                (self.folder / name).unlink()
        (self.folder / SUCCESS_FILE).unlink(missing_ok=True)  # complete again only at the end
        _write_atomic(state, json.dumps({"format": _FORMAT, **asdict(identity)}, indent=2).encode())

    def _listing(self) -> tuple[list[str], list[str]]:
        ours, strangers = [], []
        for entry in self.folder.iterdir():
            name = entry.name
            mine = (
                name in (STATE_FILE, SUCCESS_FILE)
                or PART_PATTERN.match(name)
                or (name.startswith(".") and ".tmp-" in name)
            )
            (ours if mine and entry.is_file() else strangers).append(name)
        return ours, strangers

    def _check_resumable(self, recorded: dict[str, Any]) -> None:
        differences = self.identity.differences(recorded)
        if differences:
            raise ResumeRefusedError(
                f"{self.folder}: its parts were scored by {recorded.get('model_uri')} "
                f"(version {recorded.get('model_version')}) from {recorded.get('input')}; this "
                f"run differs in {'; '.join(differences)}. Resuming would mix the two in one "
                "output: score into a new folder, or pass overwrite=true to start this one again"
            )

    def part_path(self, index: int) -> Path:
        return self.folder / f"part-{index:06d}.parquet"

    def done(self, index: int, rows: int) -> PartStats | None:
        """The stats of part ``index`` if it is written whole with ``rows`` rows, else None
        (then it is scored again and replaced)."""
        path = self.part_path(index)
        if not path.is_file():
            return None
        try:
            stats = _read_stats(path)
        except (OSError, pa.ArrowException, KeyError, ValueError):
            return None
        return stats if stats.rows == rows and stats.index == index else None

    def write(self, index: int, first_row: int, table: pa.Table) -> PartStats:
        """Write part ``index`` atomically, its counts in its footer."""
        stats = PartStats.of(index, first_row, table)
        metadata = dict(table.schema.metadata or {})
        metadata[_STATS_KEY] = json.dumps(asdict(stats)).encode()
        final = self.part_path(index)
        temp = self.folder / f".{final.name}.tmp-{os.getpid()}"
        pq.write_table(table.replace_schema_metadata(metadata), temp)
        _flush(temp)
        os.replace(temp, final)
        return stats

    def finish(self, totals: dict[str, Any]) -> Path:
        """Mark the folder complete: ``_SUCCESS`` with the run's totals."""
        path = self.folder / SUCCESS_FILE
        _write_atomic(path, json.dumps({**asdict(self.identity), **totals}, indent=2).encode())
        return path


def read_success(folder: str | Path) -> dict[str, Any] | None:
    """The totals of a completed output folder, None if it is not complete."""
    path = Path(folder) / SUCCESS_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def _read_stats(path: Path) -> PartStats:
    metadata = pq.read_schema(path).metadata or {}
    return PartStats(**json.loads(metadata[_STATS_KEY]))


def _flush(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _write_atomic(path: Path, data: bytes) -> None:
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    temp.write_bytes(data)
    _flush(temp)
    os.replace(temp, path)
