"""Which reject/review/approve thresholds an evaluation report applies, and why.

Config thresholds win (to ask "what if we moved the threshold?"), then the model's own policy;
a checkpoint, which has none, gets one fitted on the evaluated listings themselves, labelled as
optimistic wherever it is shown.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd
from omegaconf import DictConfig

from ipguard.evaluation.policy import Policy, fit_policy_from_settings

OPTIMISTIC_NOTE = (
    "fitted on the evaluated listings themselves (a checkpoint carries no policy): the lane "
    "figures are optimistic; pass policy.reject_threshold and policy.approve_threshold to "
    "evaluate fixed thresholds"
)
CONFIG_POLICY_NOTE = (
    "thresholds set in the evaluation config (policy.reject_threshold, "
    "policy.approve_threshold), not the ones stored with the model"
)


def configured_policy(settings: DictConfig | dict[str, Any]) -> Policy | None:
    """The policy set by ``policy.reject_threshold`` and ``policy.approve_threshold``, if any.

    Checked before anything is loaded or scored, so a half-given override fails at once.
    """
    reject, approve = settings.get("reject_threshold"), settings.get("approve_threshold")
    if (reject is None) != (approve is None):
        raise ValueError(
            "policy.reject_threshold and policy.approve_threshold: expected both or neither, "
            f"found reject_threshold={reject!r}, approve_threshold={approve!r}"
        )
    if reject is None:
        return None
    return Policy(float(reject), float(approve), notes=(CONFIG_POLICY_NOTE,))


def choose_policy(
    settings: DictConfig | dict[str, Any],
    configured: Policy | None,
    stored: Policy | None,
    evaluated: pd.DataFrame,
) -> tuple[Policy, str]:
    """The thresholds the report applies, and where they came from.

    Config thresholds win (to ask "what if we moved the threshold?"), then the model's own
    policy; a checkpoint without either gets one fitted on the evaluated listings to the
    ``settings`` targets, marked as optimistic in its notes so every reader of the report sees it.
    """
    if configured is not None:
        return configured, "config"
    if stored is not None:
        return stored, "model"
    fitted = fit_policy_from_settings(
        evaluated["score"].to_numpy(), evaluated["label"].to_numpy(), settings
    )
    return replace(fitted, notes=(*fitted.notes, OPTIMISTIC_NOTE)), "fitted_on_evaluated_data"
