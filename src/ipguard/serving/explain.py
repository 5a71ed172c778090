"""``explain_listing``: the saliency map of one listing's photo under a loaded model.

For a reviewer, or a data scientist in a notebook::

    from ipguard import ListingScorer, explain_listing
    scorer = ListingScorer.load("path/to/model_folder")
    shown = explain_listing(scorer, {"listing_id": "L1", "title": "...", "image_path": "a.jpg"})
    shown.overlay  # the photo with the region that drove the score painted over it

The photo goes through exactly what scoring uses (the request's decoding, the model's own
letterbox and normalisation), so the map is of the score the service gives. The maths is
:func:`ipguard.evaluation.saliency.saliency_map`; this module only turns a loaded model into
the ``images -> logit`` callable it attributes:

* an image model: its network's logit;
* the fused model: the fused logit, with the listing's text and tabular features held fixed,
  so the map shows what the photo added on top of them through the image tower (brand-reference
  similarities, which a separate embedding computes from the photo, are held fixed too);
* late fusion: its image base model's logit, which the stacker weighs with the text score and
  the tabular features (the stacker itself is a linear model over those).

Text-only models read no photo and are refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image

from ipguard.data.columns import FLAG_SEPARATOR
from ipguard.data.io import image_files
from ipguard.evaluation.saliency import Baseline, Forward, normalise, overlay, saliency_map
from ipguard.serving.inputs import ScoringInputs, collect_inputs
from ipguard.serving.predictors.fusion import FusionPredictor, LateFusionPredictor
from ipguard.serving.predictors.image import ImagePredictor
from ipguard.serving.scorer import ListingScorer
from ipguard.text.normalization import model_text

#: integrated gradients' map is smoothed by this share of the model's image side
SMOOTH_SHARE = 1 / 64
#: share of the hottest pixels clipped, so outliers do not leave the rest of the map faint
CLIP_SHARE = 0.02
#: the model kinds (``spec.kind``) that read a photo, so have a saliency map
EXPLAINED_KINDS = ("image", "fusion", "late_fusion")


class NoImageToExplain(ValueError):
    """The listing has no photo the model could read (missing, unreadable, too large...)."""


@dataclass(frozen=True)
class Explanation:
    """One listing's score and the region of its photo that drove it."""

    listing_id: str
    score: float
    """The calibrated score the scorer gives this listing."""
    photo: Image.Image
    """The photo as the model read it (decoded, EXIF-rotated, RGB), at its own size."""
    heat: np.ndarray
    """(photo height, photo width) float32 in [0, 1]: 1 where the score was driven most."""
    overlay: Image.Image
    """``heat`` painted over ``photo``."""
    method: str
    explained: str
    """Which logit was attributed (the image model's, the fused one, a base model's)."""


def explain_listing(
    scorer: ListingScorer,
    row: Mapping[str, Any] | pd.Series | pd.DataFrame,
    *,
    method: str = "integrated_gradients",
    steps: int = 32,
    baseline: Baseline = None,
    sign: str = "absolute",
    smooth: float | None = None,
    clip: float = CLIP_SHARE,
    root: str | Path | None = None,
    alpha: float = 0.45,
) -> Explanation:
    """The saliency map of ``row``'s photo under ``scorer``'s model, and its score.

    ``row`` is one listing (a mapping, a Series or a one-row frame) as a request sends it
    (``listing_id``, ``title``, ``image_path`` or ``image_b64``, ...); a relative
    ``image_path`` is read against ``root`` when given (a manifest's folder). ``method``,
    ``steps``, ``baseline``, ``sign`` and ``clip`` are
    :func:`~ipguard.evaluation.saliency.saliency_map`'s; ``smooth`` defaults to 1/64 of the
    model's image side for integrated gradients and 0 for occlusion (already blocky).
    Raises :class:`NoImageToExplain` when the row has no usable photo, and ``ValueError``
    for a model that reads no photo.
    """
    frame = _one_row(row, root)
    inputs = collect_inputs(frame, want_images=True)
    photo = inputs.images[0]
    if photo is None:
        flags = FLAG_SEPARATOR.join(inputs.flags[0]) or "image_missing"
        raise NoImageToExplain(
            f"listing {inputs.listing_ids[0] or '(no id)'}: no photo to explain ({flags})"
        )
    forward, image, explained = image_logit(scorer, inputs)
    side = int(image.shape[-1])
    if smooth is None:
        smooth = side * SMOOTH_SHARE if method == "integrated_gradients" else 0.0
    model_heat = saliency_map(
        forward,
        image,
        method=method,
        baseline=baseline,
        steps=steps,
        sign=sign,
        smooth=smooth,
        clip=clip,
    )
    heat = photo_heat(model_heat, photo.size)
    score = float(scorer.score(frame)["score"].iloc[0])
    return Explanation(
        listing_id=inputs.listing_ids[0],
        score=score,
        photo=photo,
        heat=heat,
        overlay=overlay(photo, heat, alpha=alpha),
        method=method,
        explained=explained,
    )


def explains_images(scorer: ListingScorer) -> bool:
    """Whether ``scorer``'s model reads photos, so :func:`explain_listing` can explain it."""
    predictor = scorer.predictor
    if isinstance(predictor, LateFusionPredictor):
        return "image" in predictor.bases and explains_images(predictor.bases["image"])
    return isinstance(predictor, (ImagePredictor, FusionPredictor))


def image_logit(scorer: ListingScorer, inputs: ScoringInputs) -> tuple[Forward, torch.Tensor, str]:
    """``(images -> logit, row 0's preprocessed photo, what the logit is)`` for the model.

    The PyTorch network is used also when the scorer runs on ONNX Runtime: both are built
    from the same weights, and only PyTorch gives gradients.
    """
    predictor = scorer.predictor
    if isinstance(predictor, LateFusionPredictor) and "image" in predictor.bases:
        forward, image, _ = image_logit(predictor.bases["image"], inputs)
        return forward, image, "the image base model's logit (late fusion stacks it)"
    if isinstance(predictor, ImagePredictor):
        network = predictor.tower.network
        return network, _on(predictor.tower.tensor(inputs, [0])[0], network), "the image logit"
    if isinstance(predictor, FusionPredictor):
        return _fused_logit(predictor, inputs)
    raise ValueError(
        f"{scorer.folder}: a {scorer.spec.kind!r} model reads no photo, so it has no saliency "
        "map; explain an image or fused model"
    )


def photo_heat(model_heat: np.ndarray, photo_size: tuple[int, int]) -> np.ndarray:
    """The model-input map (S, S) cut to the letterboxed photo and resized to it.

    The eval transform fits the photo's longer side to S and pads the shorter one equally on
    both sides (``ipguard.data.transforms``); the padding carries no photo, so it is cut off
    before the map is stretched back to ``photo_size`` (width, height).
    """
    width, height = photo_size
    side = model_heat.shape[0]
    scale = side / max(width, height)
    inner_w, inner_h = max(1, round(width * scale)), max(1, round(height * scale))
    left, top = (side - inner_w) // 2, (side - inner_h) // 2
    inner = np.ascontiguousarray(model_heat[top : top + inner_h, left : left + inner_w])
    resized = Image.fromarray(inner.astype(np.float32), mode="F").resize(
        (width, height), Image.Resampling.BILINEAR
    )
    return normalise(np.asarray(resized, dtype=np.float32))


def _fused_logit(
    predictor: FusionPredictor, inputs: ScoringInputs
) -> tuple[Forward, torch.Tensor, str]:
    """The fused network's logit as a function of the photo alone."""
    network = predictor.network
    images, _ = predictor._images(inputs, [0])
    image = _on(images[0], network)
    texts = [model_text(inputs.titles[0], inputs.descriptions[0])]
    # row 0's input exactly as the predictor builds it for scoring
    tabular = _on(torch.from_numpy(predictor.tabular_input(inputs)[0][:1]), network)

    def fused(batch: torch.Tensor) -> torch.Tensor:
        n = batch.shape[0]
        present = torch.ones(n, device=batch.device)
        return network(batch, present, texts * n, tabular.expand(n, -1))["logit"]

    return fused, image, "the fused logit, text and tabular inputs held fixed"


def _on(tensor: torch.Tensor, network: torch.nn.Module) -> torch.Tensor:
    """``tensor`` on the device of ``network``'s weights."""
    weights = next(network.parameters(), None)
    return tensor if weights is None else tensor.to(weights.device)


def _one_row(
    row: Mapping[str, Any] | pd.Series | pd.DataFrame, root: str | Path | None
) -> pd.DataFrame:
    if isinstance(row, pd.DataFrame):
        if len(row) != 1:
            raise ValueError(f"explain_listing: expected one listing, got a frame of {len(row)}")
        frame = row.reset_index(drop=True)
    elif isinstance(row, (Mapping, pd.Series)):
        frame = pd.DataFrame([dict(row)])
    else:
        raise TypeError(
            f"explain_listing: row must be a mapping or a pandas Series, got {type(row).__name__}"
        )
    if root is not None and "image_path" in frame:
        found = image_files(frame["image_path"], root)[0]
        frame["image_path"] = [None if found is None else str(found)]
    return frame
