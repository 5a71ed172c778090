"""Saliency maps: which part of a photo drove an image model's score, for human reviewers.

A reviewer who sees "score 0.97, reject" on a listing needs to check the model looked at the
logo on the shoe and not at the studio backdrop. These functions attribute the logit of one
preprocessed image to its pixels with Captum (PyTorch's attribution library) and paint the
result over the photo.

The network is taken as a plain callable ``images (B, 3, H, W) -> logits (B,)``, so this module
knows nothing of ipguard's networks or served models (``ipguard.serving.explain`` builds that
callable from a loaded model, including the fused one with its text and tabular inputs held
fixed). Two methods:

* ``integrated_gradients`` (default): the gradient of the logit averaged along the straight
  path from a baseline image to the photo, times the difference. Needs a differentiable
  network and one forward + backward pass per step; exact in the sense that the attributions
  add up to ``logit(image) - logit(baseline)``.
* ``occlusion``: slide a window over the image, replace it by the baseline and record how much
  the logit drops. Needs only forward passes, so it works on anything that returns a logit
  (a frozen backbone with a head, a network without gradients); about 225 forward passes per
  image whatever its size, since the window scales with the image.

**Baselines.** Attribution answers "why this score rather than the baseline's", so the
baseline decides the question. The default is a heavily blurred copy of the photo itself
(``"blur"``): it keeps the photo's colours and layout and removes its detail, so the map asks
which *details* (a logo, a printed name, stitching) drove the score, which is what infringement
turns on. A black or all-zero image, the usual default, instead credits every pixel that
differs from black, so a bright backdrop lights up as much as the product. ``"mean"`` (a flat
image of the photo's own mean colour) asks the broader "which region, colour included" and
suits models that key on colour; a number or a tensor of the input's shape is used as given.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from captum.attr import IntegratedGradients, Occlusion
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

METHODS = ("integrated_gradients", "occlusion")
BASELINES = ("blur", "mean")
SIGNS = ("absolute", "positive")
COLOUR_MAP = "inferno"
#: Gaussian sigma of the blurred baseline, as a share of the image's longer side
BLUR_SHARE = 0.1
#: occlusion windows per side; the window is side / this, the stride half a window
OCCLUSION_WINDOWS = 8
#: images per forward pass inside Captum, which bounds memory whatever ``steps`` is
ATTRIBUTION_BATCH = 16

Forward = Callable[[torch.Tensor], torch.Tensor]
Baseline = str | float | torch.Tensor | None


def saliency_map(
    forward: Forward,
    image: torch.Tensor,
    *,
    method: str = "integrated_gradients",
    baseline: Baseline = None,
    steps: int = 32,
    sign: str = "absolute",
    smooth: float = 0.0,
    clip: float = 0.0,
) -> np.ndarray:
    """The (H, W) map of how much each pixel of ``image`` drove ``forward``'s logit.

    ``image`` is one preprocessed image (3, H, W) (a leading batch axis of 1 is accepted), as
    the network sees it. ``baseline``: ``"blur"`` (None means this), ``"mean"``, a number or a
    tensor shaped like ``image`` (see the module docstring for why blur is the default).
    ``steps``: integration steps of integrated gradients (unused by occlusion). ``sign``:
    ``"absolute"`` keeps what moved the logit either way, ``"positive"`` only what raised it
    (the evidence for an infringing score). ``smooth``: Gaussian sigma in pixels applied to
    the map, which makes integrated gradients' per-pixel speckle readable as regions.
    ``clip``: share of the hottest pixels set to the map's maximum before scaling (Captum's
    own visualiser clips 2%); without it a handful of outlier pixels can leave the rest of
    the map too faint to see.

    Returns float32, >= 0, scaled so its maximum is 1; all zeros where nothing moved the
    logit (a model that ignores the image). Works on a network in eval mode and inside
    ``torch.no_grad()`` or ``torch.inference_mode()`` blocks: gradients are switched back on
    here, only for the input, and the network's parameters and mode are left untouched.
    """
    if method not in METHODS:
        raise ValueError(f"saliency_map: method must be one of {METHODS}, got {method!r}")
    if sign not in SIGNS:
        raise ValueError(f"saliency_map: sign must be one of {SIGNS}, got {sign!r}")
    if method == "integrated_gradients" and (isinstance(steps, bool) or int(steps) < 2):
        raise ValueError(f"saliency_map: steps must be an int >= 2, got {steps!r}")
    if smooth < 0 or not math.isfinite(smooth):
        raise ValueError(f"saliency_map: smooth must be a finite sigma >= 0, got {smooth!r}")
    if not 0.0 <= clip < 1.0:
        raise ValueError(f"saliency_map: clip must be a share in [0, 1), got {clip!r}")
    with torch.inference_mode(False), torch.enable_grad():
        batch = _as_batch(image)
        reference = make_baseline(batch[0], baseline).unsqueeze(0)
        model = _per_image_logit(forward)
        if method == "integrated_gradients":
            attributions = IntegratedGradients(model).attribute(
                batch,
                baselines=reference,
                n_steps=int(steps),
                internal_batch_size=min(int(steps), ATTRIBUTION_BATCH),
            )
        else:
            window, stride = occlusion_window(batch.shape[-2:])
            attributions = Occlusion(model).attribute(
                batch,
                sliding_window_shapes=(3, window, window),
                strides=(3, stride, stride),
                baselines=reference,
                perturbations_per_eval=ATTRIBUTION_BATCH,
            )
        heat = attributions.detach()[0].sum(dim=0)
    if not torch.isfinite(heat).all():
        raise ValueError(
            f"saliency_map: {method} gave non-finite attributions; the network returns NaN or "
            "inf for this image or its baseline"
        )
    heat = heat.abs() if sign == "absolute" else heat.clamp(min=0)
    if smooth > 0:
        heat = gaussian_blur(heat[None], smooth)[0]
    values = heat.cpu().numpy()
    if clip > 0 and values.max() > 0:
        values = np.minimum(values, np.quantile(values, 1.0 - clip))
    return normalise(values)


def make_baseline(image: torch.Tensor, baseline: Baseline = None) -> torch.Tensor:
    """The reference image attribution compares ``image`` (3, H, W) against."""
    if baseline is None or (isinstance(baseline, str) and baseline == "blur"):
        sigma = BLUR_SHARE * max(image.shape[-2:])
        return gaussian_blur(image, sigma)
    if isinstance(baseline, str):
        if baseline == "mean":
            return image.mean(dim=(1, 2), keepdim=True).expand_as(image).clone()
        raise ValueError(
            f"saliency_map: baseline must be one of {BASELINES}, a number or a tensor shaped "
            f"like the image; got {baseline!r}"
        )
    if isinstance(baseline, torch.Tensor):
        reference = baseline.detach().to(image.device, image.dtype)
        if reference.shape != image.shape:
            raise ValueError(
                f"saliency_map: a baseline tensor must have the image's shape "
                f"{tuple(image.shape)}, got {tuple(reference.shape)}"
            )
        return reference.clone()
    if isinstance(baseline, (int, float)) and not isinstance(baseline, bool):
        return torch.full_like(image, float(baseline))
    raise TypeError(f"saliency_map: unsupported baseline of type {type(baseline).__name__}")


def occlusion_window(size: Sequence[int]) -> tuple[int, int]:
    """(window, stride) in pixels for an image of ``size`` (H, W): a fixed number of windows
    per side, so the cost stays the same for a 32 or a 384 pixel model."""
    window = max(2, round(max(size) / OCCLUSION_WINDOWS))
    return window, max(1, window // 2)


def gaussian_blur(planes: torch.Tensor, sigma: float) -> torch.Tensor:
    """``planes`` (C, H, W) blurred by a separable Gaussian, edges replicated (so a large
    sigma tends to the local mean colour, not to black)."""
    if sigma <= 0:
        return planes.clone()
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=planes.dtype, device=planes.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = planes.shape[0]
    x = planes[None]
    x = torch.nn.functional.pad(x, (radius, radius, 0, 0), mode="replicate")
    x = torch.nn.functional.conv2d(
        x, kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1), groups=channels
    )
    x = torch.nn.functional.pad(x, (0, 0, radius, radius), mode="replicate")
    x = torch.nn.functional.conv2d(
        x, kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), groups=channels
    )
    return x[0]


def normalise(heat: np.ndarray) -> np.ndarray:
    """``heat`` as float32 scaled to a maximum of 1; all zeros if it has no positive value."""
    out = np.clip(np.asarray(heat, dtype=np.float32), 0.0, None)
    peak = float(out.max()) if out.size else 0.0
    return out / peak if peak > 0 else np.zeros_like(out)


def overlay(
    photo: Image.Image | np.ndarray, heat: np.ndarray, *, alpha: float = 0.45
) -> Image.Image:
    """``photo`` with ``heat`` (values in [0, 1], any size) painted over it in a colour map.

    The heat map is resized to the photo. Each pixel's colour is mixed in by ``alpha`` times
    its heat, so where the model did not look the photo stays as it was and the reviewer can
    still read it; at the hottest pixels the colour covers ``alpha`` of the photo.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"overlay: alpha must be in [0, 1], got {alpha!r}")
    base = _rgb(photo)
    values = np.asarray(heat, dtype=np.float32)
    if values.ndim != 2 or values.size == 0:
        raise ValueError(
            f"overlay: heat must be a non-empty (H, W) array, got shape {values.shape}"
        )
    if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1 + 1e-6:
        raise ValueError(
            "overlay: heat must hold finite values in [0, 1] (saliency_map's output); found "
            f"min {np.nanmin(values):.4g}, max {np.nanmax(values):.4g}"
        )
    resized = np.asarray(
        Image.fromarray(values, mode="F").resize(base.size, Image.Resampling.BILINEAR),
        dtype=np.float32,
    ).clip(0.0, 1.0)
    colours = colormaps[COLOUR_MAP](resized)[..., :3].astype(np.float32) * 255.0
    weight = (alpha * resized)[..., None]
    pixels = np.asarray(base, dtype=np.float32) * (1.0 - weight) + colours * weight
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), mode="RGB")


def plot_overlays(
    panels: Sequence[tuple[Image.Image, str]], path: str | Path, *, columns: int = 4
) -> Path:
    """One PNG of overlay images in a grid, each titled with its caption (a listing's id,
    label and score); a single line of text when there is nothing to show."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    n = len(panels)
    cols = max(1, min(columns, n))
    rows = max(1, math.ceil(n / cols))
    fig = Figure(figsize=(2.6 * cols, 2.9 * rows), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    if not panels:
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "no listing to explain", ha="center", va="center")
        ax.set_axis_off()
    for k, (image, caption) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, k + 1)
        ax.imshow(np.asarray(_rgb(image)))
        ax.set_title(caption, fontsize=8)
        ax.set_axis_off()
    fig.savefig(target, format="png")
    return target


def _as_batch(image: torch.Tensor) -> torch.Tensor:
    """``image`` as a (1, 3, H, W) float tensor that can carry gradients (a copy, so an
    inference-mode tensor from the caller becomes an ordinary one)."""
    if not isinstance(image, torch.Tensor):
        raise TypeError(
            f"saliency_map: image must be a preprocessed torch.Tensor (3, H, W), "
            f"got {type(image).__name__}"
        )
    x = image[0] if image.dim() == 4 and image.shape[0] == 1 else image
    if x.dim() != 3 or x.shape[0] != 3:
        raise ValueError(
            f"saliency_map: image must be one preprocessed image (3, H, W), got shape "
            f"{tuple(image.shape)}"
        )
    x = x.detach().clone().float() if not x.is_floating_point() else x.detach().clone()
    if not torch.isfinite(x).all():
        raise ValueError("saliency_map: image holds NaN or inf values")
    return x.unsqueeze(0)


def _per_image_logit(forward: Forward) -> Forward:
    """``forward`` checked to give one logit per image, as the (B,) tensor Captum expects."""

    def logits(images: torch.Tensor) -> torch.Tensor:
        out = forward(images)
        if not isinstance(out, torch.Tensor) or out.numel() != images.shape[0]:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(
                f"saliency_map: forward must return one logit per image; for a batch of "
                f"{images.shape[0]} it returned {shape}"
            )
        return out.reshape(images.shape[0])

    return logits


def _rgb(photo: Image.Image | np.ndarray) -> Image.Image:
    if isinstance(photo, Image.Image):
        return photo.convert("RGB")
    array = np.asarray(photo)
    if array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4)):
        if array.dtype != np.uint8:
            raise ValueError(f"overlay: a photo array must be uint8, got {array.dtype}")
        return Image.fromarray(array).convert("RGB")
    raise ValueError(f"overlay: a photo array must be (H, W) or (H, W, 3|4), got {array.shape}")
