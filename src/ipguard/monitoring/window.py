"""A traffic window read into a reference profile's terms once, for every consumer.

The checks (:func:`ipguard.monitoring.drift.compare`), Evidently's second opinion
(:func:`ipguard.monitoring.evidently_report.evidently_drift`) and the plots
(:func:`ipguard.monitoring.plots.plot_report`) all look at the same derived values: each
numeric feature (score, text length, unknown-word share, price ratio), each categorical column,
the flags and the lanes. Deriving them means normalising every text and matching every price
against the profile's references, which each consumer used to do again on its own; a
``TrafficWindow`` does it once and they read from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ipguard.monitoring.features import categorical_values, flag_sets
from ipguard.monitoring.profile import Profile

__all__ = ["TrafficWindow"]


@dataclass
class TrafficWindow:
    """Scored traffic (the model's output plus request columns) in ``profile``'s terms."""

    frame: pd.DataFrame
    numeric: dict[str, np.ndarray]
    categories: dict[str, pd.Series]
    flags: list[set[str]]
    decisions: np.ndarray

    @classmethod
    def of(
        cls,
        frame: pd.DataFrame,
        profile: Profile,
        numeric: Sequence[str],
        categorical: Sequence[str],
    ) -> TrafficWindow:
        """The window of ``frame``, with the ``numeric`` and ``categorical`` columns derived."""
        frame = frame.reset_index(drop=True)
        return cls(
            frame,
            {name: profile.values(frame, name) for name in numeric},
            {column: categorical_values(frame, column) for column in categorical},
            flag_sets(frame),
            frame["decision"].astype(str).to_numpy(),
        )

    @classmethod
    def of_traffic(
        cls,
        traffic: pd.DataFrame | TrafficWindow,
        profile: Profile,
        numeric: Sequence[str],
        categorical: Sequence[str],
    ) -> TrafficWindow:
        """``traffic`` itself when it is already a window, else its window: what each consumer
        that takes either a frame or a window starts with."""
        if isinstance(traffic, TrafficWindow):
            return traffic
        return cls.of(traffic, profile, numeric, categorical)

    def __len__(self) -> int:
        return len(self.frame)

    def values_frame(self, columns: Sequence[str]) -> pd.DataFrame:
        """The derived values of ``columns`` (numeric, categorical or ``decision``) side by
        side, as the reference's were derived."""
        out: dict[str, np.ndarray] = {}
        for column in columns:
            if column in self.numeric:
                out[column] = self.numeric[column]
            elif column == "decision":
                out[column] = self.decisions
            elif column in self.categories:
                out[column] = self.categories[column].to_numpy()
            else:
                raise KeyError(
                    f"traffic window: column {column!r} was not derived; it holds "
                    f"{sorted([*self.numeric, *self.categories, 'decision'])}"
                )
        return pd.DataFrame(out)

    def category_counts(self, column: str) -> dict[str, int]:
        """Rows per value of a categorical column."""
        return {str(k): int(v) for k, v in self.categories[column].value_counts().items()}
