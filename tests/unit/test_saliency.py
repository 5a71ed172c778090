"""Saliency maps for reviewers: the maths on networks whose answer is known, the overlay,
``explain_listing`` on exported image and fused models, and the evaluation report's figure."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch import nn

from ipguard.config import compose
from ipguard.data.catalog import catalog_featurizer
from ipguard.evaluation.policy import Policy
from ipguard.evaluation.report import build_report
from ipguard.evaluation.saliency import METHODS, overlay, saliency_map
from ipguard.jobs.evaluate import evaluate
from ipguard.jobs.evaluation_report import SALIENCY_PLOT, write_saliency
from ipguard.logistic import sigmoid
from ipguard.models.fusion_classifier import FusionClassifier
from ipguard.models.image_classifier import ImageClassifier
from ipguard.registry.package import write_model_dir
from ipguard.serving.explain import NoImageToExplain, explain_listing, image_logit, photo_heat
from ipguard.serving.inputs import collect_inputs
from ipguard.serving.scorer import ListingScorer

SIZE = 32
IDENTITY = {"method": "none"}
POLICY = Policy(reject_threshold=0.6, approve_threshold=0.4).to_dict()


class QuadrantRed(nn.Module):
    """Logit = weight x mean red of one quadrant (minus another's, when given): the pixels
    that drive it are known exactly. A parameter, so eval mode and grads can be checked."""

    def __init__(self, plus: tuple[int, int], minus: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.tensor(2.0))
        self.plus, self.minus = plus, minus

    @staticmethod
    def _red(x: torch.Tensor, quadrant: tuple[int, int]) -> torch.Tensor:
        h, w = x.shape[-2] // 2, x.shape[-1] // 2
        r, c = quadrant
        return x[:, 0, r * h : (r + 1) * h, c * w : (c + 1) * w].mean(dim=(1, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self._red(x, self.plus)
        if self.minus is not None:
            out = out - self._red(x, self.minus)
        return self.weight * out


def _quadrant_share(heat: np.ndarray, quadrant: tuple[int, int]) -> float:
    h, w = heat.shape[0] // 2, heat.shape[1] // 2
    r, c = quadrant
    return float(heat[r * h : (r + 1) * h, c * w : (c + 1) * w].sum() / heat.sum())


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("quadrant", [(0, 0), (1, 1), (0, 1)])
def test_the_maps_mass_is_in_the_quadrant_that_drives_the_logit(method, quadrant) -> None:
    torch.manual_seed(sum(quadrant))
    net = QuadrantRed(quadrant).eval()
    image = torch.randn(3, SIZE, SIZE)
    heat = saliency_map(net, image, method=method, steps=8)
    # integrated gradients is exact here (zero gradient outside); occlusion's windows that
    # straddle the quadrant's edge leak a little beyond it
    assert _quadrant_share(heat, quadrant) > (0.99 if method == "integrated_gradients" else 0.8)
    peak = np.unravel_index(int(np.argmax(heat)), heat.shape)
    assert (peak[0] // (SIZE // 2), peak[1] // (SIZE // 2)) == quadrant


@pytest.mark.parametrize("method", METHODS)
def test_map_has_the_images_shape_is_float32_and_peaks_at_one(method) -> None:
    image = torch.randn(3, 24, 40)
    heat = saliency_map(QuadrantRed((1, 0)).eval(), image[None], method=method, steps=4)
    assert heat.shape == (24, 40)
    assert heat.dtype == np.float32
    assert heat.min() >= 0.0
    assert heat.max() == pytest.approx(1.0)


@pytest.mark.parametrize("method", METHODS)
def test_inside_inference_mode_the_network_keeps_its_mode_and_gets_no_grads(method) -> None:
    net = QuadrantRed((0, 0)).eval()
    with torch.inference_mode():
        image = torch.randn(3, SIZE, SIZE)  # an inference tensor, as serving code makes
        heat = saliency_map(net, image, method=method, steps=4)
    assert heat.max() == pytest.approx(1.0)
    assert not net.training
    assert net.weight.grad is None


def test_a_network_that_ignores_the_image_gives_an_all_zero_map() -> None:
    heat = saliency_map(lambda x: x.sum(dim=(1, 2, 3)) * 0.0, torch.randn(3, 16, 16))
    assert heat.shape == (16, 16) and not heat.any()


def test_positive_sign_keeps_only_what_raised_the_logit() -> None:
    net = QuadrantRed((0, 0), minus=(1, 1)).eval()
    image = torch.rand(3, SIZE, SIZE) + 0.5  # above the baseline 0 everywhere
    both = saliency_map(net, image, baseline=0.0, steps=8)
    raised = saliency_map(net, image, baseline=0.0, steps=8, sign="positive")
    assert _quadrant_share(both, (1, 1)) > 0.3  # the lowering quadrant counts in absolute
    assert _quadrant_share(raised, (0, 0)) > 0.99
    assert not raised[SIZE // 2 :, SIZE // 2 :].any()


def test_smoothing_spreads_the_map_but_keeps_it_normalised() -> None:
    net = QuadrantRed((0, 0)).eval()
    image = torch.randn(3, SIZE, SIZE)
    sharp = saliency_map(net, image, steps=8)
    smooth = saliency_map(net, image, steps=8, smooth=2.0)
    assert smooth.max() == pytest.approx(1.0)
    assert (smooth > 0.05).sum() > (sharp > 0.05).sum()


def test_clipping_the_hottest_pixels_keeps_one_outlier_from_hiding_the_rest() -> None:
    weights = torch.ones(16, 16)
    weights[0, 0] = 1000.0  # one pixel matters 1000 times more than the others

    def net(x: torch.Tensor) -> torch.Tensor:
        return (x[:, 0] * weights).sum(dim=(1, 2))

    image = torch.ones(3, 16, 16)
    plain = saliency_map(net, image, baseline=0.0, steps=4)
    clipped = saliency_map(net, image, baseline=0.0, steps=4, clip=0.02)
    assert np.median(plain) < 0.01  # the outlier leaves everything else invisible
    assert np.median(clipped) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="clip must be a share"):
        saliency_map(net, image, clip=1.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "gradcam"}, "method must be one of"),
        ({"steps": 1}, "steps must be an int >= 2"),
        ({"baseline": "black"}, "baseline must be one of"),
        ({"baseline": torch.zeros(3, 8, 8)}, "the image's shape"),
        ({"sign": "negative"}, "sign must be one of"),
    ],
)
def test_bad_arguments_are_refused_by_name(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        saliency_map(QuadrantRed((0, 0)), torch.randn(3, 16, 16), **kwargs)


def test_a_forward_without_one_logit_per_image_and_a_wrong_image_are_refused() -> None:
    with pytest.raises(ValueError, match="one logit per image"):
        saliency_map(lambda x: x.mean(dim=(2, 3)), torch.randn(3, 16, 16))
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        saliency_map(QuadrantRed((0, 0)), torch.randn(1, 16, 16))


def test_overlay_has_the_photos_size_and_colours_only_where_the_heat_is() -> None:
    photo = np.full((30, 50, 3), 128, dtype=np.uint8)
    heat = np.zeros((8, 8), dtype=np.float32)
    heat[:, 4:] = 1.0  # the right half of the photo
    out = overlay(photo, heat)
    assert out.size == (50, 30) and out.mode == "RGB"
    pixels = np.asarray(out).astype(int)
    assert (pixels[:, :20] == 128).all()  # cold: the photo untouched
    assert np.abs(pixels[:, 30:] - 128).sum(axis=2).min() > 10  # hot: coloured
    grey = Image.fromarray(photo[..., 0], mode="L")
    assert overlay(grey, np.zeros((4, 4))).size == (50, 30)


def test_overlay_refuses_heat_outside_zero_one() -> None:
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        overlay(np.zeros((10, 10, 3), np.uint8), np.full((4, 4), 2.0))


def test_photo_heat_cuts_the_letterbox_padding_off_before_resizing() -> None:
    # a 60 x 30 photo letterboxed into 32 x 32: 32 x 16 of photo, 8 rows of padding above
    model_heat = np.zeros((32, 32), dtype=np.float32)
    model_heat[8:24, :16] = 0.5  # the photo's left half
    model_heat[0:8, :] = 1.0  # padding: no photo there, must not show
    heat = photo_heat(model_heat, (60, 30))
    assert heat.shape == (30, 60)
    assert heat.max() == pytest.approx(1.0)
    assert heat[:, :25].min() > 0.9 and heat[:, 35:].max() < 0.1


# --- explain_listing on exported models -------------------------------------------------------


@pytest.fixture(scope="module")
def image_scorer(tmp_path_factory: pytest.TempPathFactory) -> ListingScorer:
    torch.manual_seed(0)
    folder, _ = write_model_dir(
        ImageClassifier("tiny_cnn", image_size=SIZE),
        tmp_path_factory.mktemp("image-model"),
        calibrator=IDENTITY,
        policy=POLICY,
    )
    return ListingScorer.load(folder)


def _photo(path: Path, size: tuple[int, int], seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


@pytest.mark.parametrize("method", METHODS)
def test_explain_listing_maps_the_photo_at_its_own_size_with_the_scorers_score(
    image_scorer, tmp_path, method
) -> None:
    _photo(tmp_path / "shoe.png", (60, 40))
    row = {"listing_id": "L1", "title": "Zentaro runner", "image_path": "shoe.png"}
    shown = explain_listing(image_scorer, row, method=method, steps=4, root=tmp_path)
    assert shown.listing_id == "L1"
    assert shown.photo.size == (60, 40)
    assert shown.heat.shape == (40, 60) and shown.heat.dtype == np.float32
    assert shown.heat.max() == pytest.approx(1.0) and shown.heat.min() >= 0
    assert shown.overlay.size == (60, 40)
    request = pd.DataFrame([{**row, "image_path": str(tmp_path / "shoe.png")}])
    assert shown.score == pytest.approx(float(image_scorer.score(request)["score"].iloc[0]))


def test_a_listing_without_a_usable_photo_cannot_be_explained(image_scorer, tmp_path) -> None:
    (tmp_path / "broken.jpg").write_bytes(b"<html>404</html>")
    with pytest.raises(NoImageToExplain, match=r"L2.*image_unreadable"):
        explain_listing(
            image_scorer, {"listing_id": "L2", "image_path": str(tmp_path / "broken.jpg")}
        )
    with pytest.raises(NoImageToExplain, match=r"L3.*image_missing"):
        explain_listing(image_scorer, pd.Series({"listing_id": "L3", "title": "x"}))


def test_the_fused_logit_of_the_photo_is_the_one_the_served_model_gives(
    demo_small, tmp_path
) -> None:
    torch.manual_seed(0)
    folder, _ = write_model_dir(
        FusionClassifier("tiny_cnn", image_size=SIZE, text_dim=8, n_buckets=512, hidden=8),
        tmp_path / "fusion",
        calibrator=IDENTITY,
        policy=POLICY,
        extras={"tabular": catalog_featurizer(demo_small.brands_path).to_dict()},
    )
    scorer = ListingScorer.load(folder)
    row = pd.read_csv(demo_small.manifest_path).iloc[0].drop("label").to_dict()
    row["image_path"] = str(demo_small.root / row["image_path"])
    frame = pd.DataFrame([row])
    inputs = collect_inputs(frame)
    forward, image, explained = image_logit(scorer, inputs)
    assert "fused" in explained
    raw, _, _ = scorer.predictor.predict(inputs)
    with torch.inference_mode():
        held_fixed = float(forward(image[None])[0])
    assert sigmoid(np.float64(held_fixed)) == pytest.approx(raw[0], abs=1e-6)
    shown = explain_listing(scorer, row, steps=4)
    width, height = shown.photo.size
    assert shown.heat.shape == (height, width)


def test_late_fusion_explains_its_image_base_models_logit(demo_small, tmp_path) -> None:
    from ipguard.models.late_fusion import LateFusionClassifier
    from ipguard.models.tfidf_classifier import TfidfClassifier

    frame = pd.read_csv(demo_small.manifest_path)
    text = TfidfClassifier(max_features=500)
    text.fit_frames(frame.head(80), Path(demo_small.root))
    bases = {}
    for role, model in (("image", ImageClassifier("tiny_cnn", image_size=SIZE)), ("text", text)):
        bases[role], _ = write_model_dir(model, tmp_path / role, calibrator=IDENTITY, policy=POLICY)
    late = LateFusionClassifier(image_model=str(bases["image"]), text_model=str(bases["text"]))
    late.featurizer = catalog_featurizer(demo_small.brands_path)
    late.fit_stacker(frame.iloc[80:160], Path(demo_small.root))
    folder, _ = write_model_dir(late, tmp_path / "late", calibrator=IDENTITY, policy=POLICY)
    scorer = ListingScorer.load(folder)
    row = frame.iloc[0].drop("label").to_dict()
    shown = explain_listing(scorer, row, steps=4, root=demo_small.root)
    assert "image base model" in shown.explained
    assert shown.heat.shape == (shown.photo.height, shown.photo.width)
    assert shown.score == pytest.approx(
        float(
            scorer.score(
                pd.DataFrame([row]).assign(image_path=str(demo_small.root / row["image_path"]))
            )["score"].iloc[0]
        )
    )


# --- the evaluation report --------------------------------------------------------------------


def _evaluated(folder: Path, n: int = 10) -> pd.DataFrame:
    """Scored listings with photos; the last infringing one has none."""
    rows = []
    for i in range(n):
        _photo(folder / f"p{i}.png", (40, 32), seed=i)
        rows.append(
            {
                "listing_id": f"L{i}",
                "title": f"listing {i}",
                "image_path": f"p{i}.png",
                "label": "infringing" if i % 2 else "genuine",
                "score": 0.05 + 0.09 * i,
                "decision": "review",
            }
        )
    frame = pd.DataFrame(rows)
    frame.loc[n - 1, "image_path"] = None  # the highest-scoring listing: no photo
    return frame


def test_report_figure_explains_top_infringing_and_genuine_and_names_those_passed_over(
    image_scorer, tmp_path
) -> None:
    evaluated = _evaluated(tmp_path)
    report = build_report(evaluated, Policy.from_dict(POLICY), tmp_path / "report", n_boot=5)
    path = write_saliency(report, image_scorer, evaluated, tmp_path)
    assert path == tmp_path / "report" / SALIENCY_PLOT
    with Image.open(path) as figure:
        assert figure.format == "PNG" and figure.width > 200
    assert report.plots["saliency"] == path
    text = report.markdown_path.read_text(encoding="utf-8")
    assert f"![Saliency]({SALIENCY_PLOT})" in text
    assert text.index("## Saliency") < text.index("## Slices")
    assert "L9: no photo to explain (image_missing)" in text
    assert write_saliency(report, None, evaluated, tmp_path) is None


def test_evaluate_writes_the_saliency_figure_for_an_image_model_folder(
    image_scorer, demo_small, tmp_path
) -> None:
    folder = tmp_path / "listings"
    rows = pd.read_csv(demo_small.manifest_path, dtype=str).head(24)
    (folder / "images").mkdir(parents=True)
    for rel in rows["image_path"]:
        shutil.copy(demo_small.root / rel, folder / rel)
    rows.to_csv(folder / "listings.csv", index=False)
    cfg = compose(
        "evaluate",
        [
            f"paths.root_dir={tmp_path / 'project'}",
            f"out_dir={tmp_path / 'evaluation'}",
            f"model_uri={image_scorer.folder}",
            f"manifest={folder / 'listings.csv'}",
            "n_boot=5",
        ],
    )
    result = evaluate(cfg)
    report_dir = result.report.markdown_path.parent
    with Image.open(report_dir / SALIENCY_PLOT) as figure:
        assert figure.format == "PNG"
    assert f"]({SALIENCY_PLOT})" in result.report.markdown_path.read_text(encoding="utf-8")
