"""Reading a job's console output as facts: how many lines, warnings and repeats it holds.

The same message reaches the console through several handlers with different prefixes
(Hydra's ``[time][logger][LEVEL] - ``, Lightning's ``LEVEL: ``, MLflow's ``date time LEVEL
logger: ``), so lines are compared by their message, prefixes stripped.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

_PREFIXES = (
    re.compile(r"^\[[^\]]+\]\[(?P<logger>[^\]]+)\]\[(?P<level>[A-Z]+)\] - "),  # Hydra's format
    re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d (?P<level>[A-Z]+) (?P<logger>[\w.]+): "),
    re.compile(r"^(?P<level>INFO|WARNING|ERROR|DEBUG): "),  # Lightning's own console handler
)
WARNING_WORDS = re.compile(r"warn", re.IGNORECASE)
# the first line of a Python warning as ``warnings`` shows it (``path.py:12: [Category: ]text``),
# or a record logged at WARNING
WARNING_SHOWN = re.compile(r"^\S+\.py:\d+: |\[WARNING\]| WARNING ")


def message(line: str) -> str:
    """The line without its logging prefix (timestamps, logger name, level)."""
    for prefix in _PREFIXES:
        stripped, n = prefix.subn("", line, count=1)
        if n:
            return stripped.strip()
    return line.strip()


@dataclass(frozen=True)
class LogCounts:
    lines: int
    warning_lines: int
    """lines that contain "warn" in any case (``UserWarning``, ``[WARNING]``...)"""
    warnings: int
    """warnings shown: Python warnings (Lightning's own show no category) and WARNING records"""
    repeated_lines: int
    """lines whose message an earlier line already said"""
    repeats: dict[str, int]
    """each repeated message and how many times it was said"""


def count(output: str) -> LogCounts:
    """:class:`LogCounts` of a console output (stdout and stderr together)."""
    lines = [line for line in output.splitlines() if line.strip()]
    said = Counter(message(line) for line in lines)
    repeats = {text: n for text, n in said.items() if n > 1}
    return LogCounts(
        lines=len(lines),
        warning_lines=sum(bool(WARNING_WORDS.search(line)) for line in lines),
        warnings=sum(bool(WARNING_SHOWN.search(line)) for line in lines),
        repeated_lines=sum(n - 1 for n in repeats.values()),
        repeats=repeats,
    )
