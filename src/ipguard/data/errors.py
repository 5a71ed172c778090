"""What is wrong with a manifest, said so that a person can fix it: file, row, column, reason.

The error types are their own module because every reader and checker raises them (CSV and
Parquet reading, the pandera rules, folder import, brand catalogs) and none of those should
need another's machinery to do so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

MAX_LISTED = 50
"""Problems (or values) a message lists before it says how many more there are."""


@dataclass(frozen=True)
class Problem:
    """One reason a manifest (or one of its rows) cannot be used as is.

    ``row`` is the 1-based data-row number within ``file`` (``None`` for file-level problems);
    ``line`` is the physical line in the file where the row starts, when it is known (CSV and
    JSON lines read through :func:`ipguard.data.schema.load_manifest`).
    """

    file: str
    row: int | None
    column: str | None
    value: str | None
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f" row {self.row}"
            if self.line is not None:
                where += f" (line {self.line})"
        elif self.line is not None:  # a problem of the file's text, before rows exist
            where += f" line {self.line}"
        if self.column is not None:
            where += f", column {self.column!r}"
        return f"{where}: {self.reason}"


class ManifestError(ValueError):
    """A manifest cannot be used; ``problems`` says every place and reason, not just the first."""

    def __init__(self, problems: Problem | Iterable[Problem]) -> None:
        self.problems: list[Problem] = (
            [problems] if isinstance(problems, Problem) else list(problems)
        )
        super().__init__(_describe(self.problems))

    def __reduce__(self) -> tuple[type[ManifestError], tuple[list[Problem]]]:
        # The default would re-create the error from its message; keep the structured problems.
        return (type(self), (self.problems,))


def file_problem(
    file: str, reason: str, *, column: str | None = None, line: int | None = None
) -> Problem:
    """A problem of a whole file (or one of its columns) rather than of one row."""
    return Problem(file, None, column, None, reason, line)


def file_error(file: str, reason: str, *, line: int | None = None) -> ManifestError:
    """The error for a file that cannot be read at all: unknown format, bad encoding, empty."""
    return ManifestError(file_problem(file, reason, line=line))


def _describe(problems: list[Problem]) -> str:
    lines = [str(p) for p in problems[:MAX_LISTED]]
    if len(problems) > MAX_LISTED:
        lines.append(f"... and {len(problems) - MAX_LISTED} more")
    return "\n".join(lines) if lines else "invalid manifest"
