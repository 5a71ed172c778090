"""Drift monitoring: a model's reference profile and the checks of traffic against it.

Sits at the level of :mod:`ipguard.evaluation` (pandas and numpy only; Evidently is imported
lazily by :func:`ipguard.monitoring.evidently_report.evidently_drift`), so the export can write
a profile into the model folder without pulling training code or a drift library into
serving. The ``ipguard-monitor`` job is :func:`ipguard.jobs.monitor.monitor`.
"""

from ipguard.monitoring.drift import Check, Thresholds, compare, psi
from ipguard.monitoring.profile import (
    PROFILE_FILE,
    SCHEMA_VERSION,
    Profile,
    build_profile,
    load_profile,
)

__all__ = [
    "PROFILE_FILE",
    "SCHEMA_VERSION",
    "Check",
    "Profile",
    "Thresholds",
    "build_profile",
    "compare",
    "load_profile",
    "psi",
]
