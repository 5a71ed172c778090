"""Binary losses for imbalanced screening data (a few percent of listings infringe)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("bce", "focal")


def binary_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    kind: str = "bce",
    pos_weight: float | None = None,
    focal_gamma: float = 2.0,
) -> torch.Tensor:
    """Mean loss over the batch.

    ``pos_weight`` up-weights the infringing class (n_genuine / n_infringing restores balance);
    focal loss instead down-weights easy examples, which suits a stream dominated by obvious
    genuine listings.
    """
    weight = None if pos_weight is None else torch.as_tensor(pos_weight, device=logits.device)
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(logits, labels, pos_weight=weight)
    if kind == "focal":
        per_row = F.binary_cross_entropy_with_logits(
            logits, labels, pos_weight=weight, reduction="none"
        )
        p = torch.sigmoid(logits)
        p_true = torch.where(labels > 0.5, p, 1 - p)
        return ((1 - p_true) ** focal_gamma * per_row).mean()
    raise ValueError(f"unknown loss {kind!r}; choose one of {LOSSES}")
