"""The ``evidence`` column: why a listing was scored as it was, as JSON a reviewer can read.

A reviewer in the review lane, or the team answering a seller's appeal, must be able to say
what in the listing looked wrong. Each output row carries one JSON object (docs/serving.md,
"Evidence"), with a key per kind of fact, ``null`` where the model had nothing to say:

* ``scores``: each modality's own score (the same numbers as ``image_score`` and
  ``text_score``), so the JSON stands on its own in a review tool;
* ``text``: the counterfeit wording found (:func:`ipguard.text.cues.counterfeit_terms`) and
  the catalog brand the text names, verbatim or disguised;
* ``price``: the listing's price against the brand's reference price in its own currency;
* ``references``: for models built with a brand reference catalog, the nearest reference
  image and its similarity, the claimed brand's photo and logo similarity, a stolen-photo match
  with the official photo it copies, and whether the seller is authorised.

Clients that read only the contract's other columns see no change.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from ipguard.data.tabular import TabularFeaturizer
from ipguard.serving.inputs import ScoringInputs
from ipguard.text.cues import counterfeit_terms
from ipguard.text.normalization import text_of

__all__ = ["evidence_column"]


def _score(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), 4)


def evidence_column(
    inputs: ScoringInputs,
    image_score: np.ndarray,
    text_score: np.ndarray,
    *,
    featurizer: TabularFeaturizer | None = None,
    references: Sequence[dict[str, Any]] | None = None,
    facts: Sequence[dict[str, Any]] | None = None,
) -> list[str]:
    """One JSON object per row, in request order; see the module docstring.

    ``facts``: the featurizer's facts when the predictor already computed them with its
    features (:meth:`TabularFeaturizer.featurize`); otherwise ``featurizer`` computes them.
    """
    tabular = facts
    if tabular is None and featurizer is not None:
        tabular = featurizer.featurize(inputs.columns)[1]
    rows: list[str] = []
    for i in range(len(inputs)):
        text = text_of(inputs.titles[i], inputs.descriptions[i])
        facts = tabular[i] if tabular is not None else {}
        record = {
            "scores": {"image": _score(image_score[i]), "text": _score(text_score[i])},
            "text": None
            if not text
            else {
                "counterfeit_terms": counterfeit_terms(text),
                "brand_mention": facts.get("brand_mention"),
            },
            "price": facts.get("price"),
            "references": None if references is None else references[i],
        }
        if tabular is not None:
            record["brand"] = facts.get("brand")
        rows.append(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
    return rows
