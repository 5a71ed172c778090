"""The promotion gate: the rule deciding whether a challenger may replace the champion.

Screening services load ``models:/<name>@champion``; a new model reaches them only after it
proved, on a frozen evaluation set, that it is no worse than the model it replaces. This module
is the rule alone, on plain numbers (the two models' metrics on the same listings); scoring both
versions and moving the alias is the promote job's (:mod:`ipguard.jobs.promote`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: the metrics compared, as :func:`ipguard.evaluation.metrics.headline_metrics` names them
COMPARED = ("average_precision", "auroc", "recall_at_reject", "precision_at_reject")
#: short names used in reasons and tags
SHORT = {"average_precision": "ap"}


@dataclass(frozen=True)
class GateRule:
    """When a challenger may replace the champion.

    The default asks for no loss that matters to a trust-and-safety team: ranking quality (AP)
    within ``tolerance`` of the champion's, and at least as many infringing listings removed
    automatically (recall at the reject threshold, within ``recall_tolerance``).
    """

    metric: str = "average_precision"
    """Ranking metric compared first (any of :data:`COMPARED`)."""
    tolerance: float = 0.01
    """How much lower than the champion's ``metric`` the challenger's may be."""
    require_recall_at_reject: bool = True
    """Also require recall at the reject threshold not lower than the champion's."""
    recall_tolerance: float = 0.0

    def __post_init__(self) -> None:
        if self.metric not in COMPARED:
            raise ValueError(f"rule.metric: expected one of {COMPARED}, found {self.metric!r}")
        for name in ("tolerance", "recall_tolerance"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 <= value < 1):
                raise ValueError(f"rule.{name}: expected a number in [0, 1), found {value!r}")

    def describe(self) -> str:
        """The rule in one line, as the ``promotion_rule`` tag records it."""
        text = f"{self.metric} >= champion - {self.tolerance:g}"
        if self.require_recall_at_reject:
            text += f" and recall_at_reject >= champion - {self.recall_tolerance:g}"
        return text


def gate(
    challenger: dict[str, float], champion: dict[str, float] | None, rule: GateRule
) -> tuple[bool, str]:
    """``(promote?, reason)`` for two models' metrics on the same listings."""
    if champion is None:
        return True, "no champion"
    name = SHORT.get(rule.metric, rule.metric)
    mine, theirs = challenger[rule.metric], champion[rule.metric]
    if math.isnan(mine):
        return False, f"challenger {name} is undefined on the evaluation set (one class only?)"
    if not math.isnan(theirs) and mine < theirs - rule.tolerance:
        return False, (
            f"challenger {name} {mine:.4f} < champion {name} {theirs:.4f} - tolerance "
            f"{rule.tolerance:g}"
        )
    reasons = [f"{name} {mine:.4f} vs champion {theirs:.4f} (tolerance {rule.tolerance:g})"]
    if rule.require_recall_at_reject:
        mine_r, theirs_r = challenger["recall_at_reject"], champion["recall_at_reject"]
        if math.isnan(mine_r) or (
            not math.isnan(theirs_r) and mine_r < theirs_r - rule.recall_tolerance
        ):
            return False, (
                f"challenger recall at reject {mine_r:.4f} < champion {theirs_r:.4f}"
                + (f" - tolerance {rule.recall_tolerance:g}" if rule.recall_tolerance else "")
            )
        reasons.append(f"recall at reject {mine_r:.4f} vs champion {theirs_r:.4f}")
    return True, "; ".join(reasons)
