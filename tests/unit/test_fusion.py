"""The fused network, its LightningModule, late fusion, and both served predictors."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ipguard.data.catalog import catalog_featurizer
from ipguard.data.tabular import FEATURE_DIM
from ipguard.evaluation.policy import Policy
from ipguard.models.fusion_classifier import FusionClassifier
from ipguard.nets.fusion import FusionConfig, FusionNetwork
from ipguard.registry.package import write_model_dir
from ipguard.serving.scorer import ListingScorer

HIDDEN = 8
SIZE = 32
IDENTITY = {"method": "none"}
POLICY = Policy(reject_threshold=0.9, approve_threshold=0.1).to_dict()


def _network(**kwargs: object) -> FusionNetwork:
    args = {"image_size": SIZE, "text_dim": 8, "n_buckets": 512, "hidden": HIDDEN}
    return FusionNetwork(FusionConfig("tiny_cnn", **(args | kwargs)))  # type: ignore[arg-type]


def _inputs(n: int) -> tuple[torch.Tensor, torch.Tensor, list[str], torch.Tensor]:
    images = torch.rand(n, 3, SIZE, SIZE)
    texts = [f"Zentaro runner {i} replica" for i in range(n)]
    return images, torch.ones(n), texts, torch.rand(n, FEATURE_DIM)


def test_forward_gives_one_fused_and_one_logit_per_modality_per_listing() -> None:
    out = _network().eval()(*_inputs(5))
    assert set(out) == {"logit", "image_logit", "text_logit"}
    for value in out.values():
        assert value.shape == (5,)
        assert torch.isfinite(value).all()


def test_modality_dropout_zeroes_exactly_one_tower_per_dropped_listing() -> None:
    net = _network(modality_dropout=1.0).train()
    seen: list[torch.Tensor] = []
    net.head.register_forward_hook(lambda module, args, out: seen.append(args[0].detach()))
    torch.manual_seed(0)
    net(*_inputs(64))
    fused = seen[0]
    image_part, text_part = fused[:, :HIDDEN], fused[:, HIDDEN : 2 * HIDDEN]
    image_on, text_on = fused[:, 3 * HIDDEN], fused[:, 3 * HIDDEN + 1]
    assert torch.all(image_on + text_on == 1)  # p=1: every listing loses one modality
    assert 0 < int(image_on.sum()) < 64  # both kinds of drop happen
    assert torch.all(image_part[image_on == 0] == 0)
    assert torch.all(text_part[text_on == 0] == 0)
    assert image_part[image_on == 1].abs().sum() > 0


def test_no_modality_dropout_at_evaluation() -> None:
    net = _network(modality_dropout=1.0).eval()
    seen: list[torch.Tensor] = []
    net.head.register_forward_hook(lambda module, args, out: seen.append(args[0].detach()))
    net(*_inputs(16))
    assert torch.all(seen[0][:, 3 * HIDDEN : 3 * HIDDEN + 2] == 1)


def test_a_listing_without_image_is_scored_whatever_its_pixels() -> None:
    net = _network().eval()
    images, _, texts, tabular = _inputs(3)
    absent = torch.zeros(3)
    with torch.inference_mode():
        a = net(images, absent, texts, tabular)["logit"]
        b = net(torch.zeros_like(images), absent, texts, tabular)["logit"]
    torch.testing.assert_close(a, b)


def test_modality_dropout_outside_zero_one_is_refused() -> None:
    with pytest.raises(ValueError, match=r"model\.modality_dropout"):
        _network(modality_dropout=1.5)


def _classifier(**kwargs: object) -> FusionClassifier:
    args = {"image_size": SIZE, "text_dim": 8, "n_buckets": 512, "hidden": HIDDEN}
    return FusionClassifier("tiny_cnn", **(args | kwargs))  # type: ignore[arg-type]


def _batch(n: int = 6) -> dict[str, object]:
    images, present, texts, tabular = _inputs(n)
    present[0] = 0.0
    texts[1] = ""
    return {
        "index": torch.arange(n),
        "image": images,
        "image_present": present.bool(),
        "text": texts,
        "tabular": tabular,
        "label": torch.tensor([0, 1] * (n // 2)),
    }


def test_training_loss_adds_the_auxiliary_heads_losses() -> None:
    torch.manual_seed(0)
    batch = _batch()
    model = _classifier(aux_weight=0.5).eval()  # eval: no dropout, so the losses repeat
    model.log = lambda *args, **kwargs: None  # type: ignore[method-assign]
    main = model._step(batch, model.train_metrics, "train")
    total = model.training_step(batch, 0)
    aux = model._aux_loss(batch)
    assert aux.item() > 0
    assert total.item() == pytest.approx(main.item() + 0.5 * aux.item(), rel=1e-5)
    total.backward()
    assert model.net.image.head.weight.grad is not None
    assert model.net.text.head.weight.grad is not None


def test_checkpoint_hyperparameters_rebuild_the_model_without_hydra() -> None:
    model = _classifier(hidden=12)
    rebuilt = FusionClassifier(**model.hparams)
    assert rebuilt.export_spec() == model.export_spec()
    assert rebuilt.export_spec()["kind"] == "fusion"


def _request(demo_small, n: int = 5) -> pd.DataFrame:
    manifest = Path(demo_small.manifest_path)
    rows = pd.read_csv(manifest).head(n).drop(columns=["label"]).reset_index(drop=True)
    rows["image_b64"] = [
        base64.b64encode((manifest.parent / p).read_bytes()).decode() for p in rows["image_path"]
    ]
    rows = rows.drop(columns=["image_path"])
    rows.loc[1, "image_b64"] = base64.b64encode(b"not an image at all").decode()
    rows.loc[2, ["title", "description"]] = ["", None]
    rows.loc[3, ["price", "currency"]] = [None, None]
    return rows


def _check_scored(out: pd.DataFrame, request: pd.DataFrame) -> None:
    assert out["listing_id"].tolist() == request["listing_id"].tolist()
    assert np.isfinite(out["score"]).all()
    assert "image_unreadable" in out.loc[1, "flags"]
    assert np.isnan(out.loc[1, "image_score"])
    assert "text_empty" in out.loc[2, "flags"]
    assert np.isnan(out.loc[2, "text_score"])
    assert np.isfinite(out.loc[0, ["image_score", "text_score"]].astype(float)).all()
    assert not out["flags"].str.contains("not_scored").any()


def test_exported_fusion_model_scores_rows_with_a_broken_image_or_no_title(
    demo_small, tmp_path: Path
) -> None:
    featurizer = catalog_featurizer(demo_small.brands_path)
    folder, spec = write_model_dir(
        _classifier(),
        tmp_path / "model",
        calibrator=IDENTITY,
        policy=POLICY,
        extras={"tabular": featurizer.to_dict()},
    )
    assert spec.extras["tabular"] == featurizer.to_dict()
    request = _request(demo_small)
    out = ListingScorer.load(folder).score(request)
    _check_scored(out, request)


def test_fusion_model_exported_without_its_featurizer_is_refused(tmp_path: Path) -> None:
    folder, _ = write_model_dir(_classifier(), tmp_path, calibrator=IDENTITY, policy=POLICY)
    with pytest.raises(ValueError, match=r"extras\['tabular'\]"):
        ListingScorer.load(folder)


# --- late fusion ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def base_models(demo_small, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An (untrained) image model and a TF-IDF text model, exported as folders."""
    from ipguard.models.image_classifier import ImageClassifier
    from ipguard.models.tfidf_classifier import TfidfClassifier

    root = tmp_path_factory.mktemp("bases")
    frame = pd.read_csv(demo_small.manifest_path)
    text = TfidfClassifier(max_features=2000)
    text.fit_frames(frame.head(120), Path(demo_small.root))
    folders = {}
    for role, model in (("image", ImageClassifier("tiny_cnn", image_size=SIZE)), ("text", text)):
        folders[role], _ = write_model_dir(model, root / role, calibrator=IDENTITY, policy=POLICY)
    return folders


def _late_fusion(base_models: dict[str, Path], demo_small):  # type: ignore[no-untyped-def]
    from ipguard.models.late_fusion import LateFusionClassifier

    model = LateFusionClassifier(
        image_model=str(base_models["image"]), text_model=str(base_models["text"]), folds=3
    )
    model.featurizer = catalog_featurizer(demo_small.brands_path)
    return model


def test_late_fusion_fits_on_held_out_rows_and_cross_fits_their_scores(
    base_models, demo_small
) -> None:
    frame = pd.read_csv(demo_small.manifest_path)
    held_out, unseen = frame.iloc[120:200], frame.iloc[200:]
    model = _late_fusion(base_models, demo_small).fit_stacker(held_out, Path(demo_small.root))
    in_fit = model.predict_frame(held_out, Path(demo_small.root))
    assert np.isfinite(in_fit).all() and in_fit.shape == (len(held_out),)
    # rows the stacker was fitted on get their out-of-fold scores, other rows the full model's
    assert in_fit.tolist() == [model._out_of_fold[i] for i in held_out["listing_id"]]
    assert np.isfinite(model.predict_frame(unseen, Path(demo_small.root))).all()


def test_late_fusion_refuses_to_fit_without_held_out_rows(base_models, demo_small) -> None:
    model = _late_fusion(base_models, demo_small)
    with pytest.raises(RuntimeError, match="attach_data"):
        model.fit_frames(pd.read_csv(demo_small.manifest_path), Path(demo_small.root))


def test_exported_late_fusion_model_is_self_contained(
    base_models, demo_small, tmp_path: Path
) -> None:
    local = {role: tmp_path / role for role in base_models}
    for role, folder in base_models.items():
        shutil.copytree(folder, local[role])
    from ipguard.models.late_fusion import LateFusionClassifier

    model = LateFusionClassifier(image_model=str(local["image"]), text_model=str(local["text"]))
    model.featurizer = catalog_featurizer(demo_small.brands_path)
    frame = pd.read_csv(demo_small.manifest_path).iloc[120:200]
    model.fit_stacker(frame, Path(demo_small.root))
    folder, spec = write_model_dir(model, tmp_path / "late", calibrator=IDENTITY, policy=POLICY)
    assert spec.kind == "late_fusion"
    for path in local.values():
        shutil.rmtree(path)  # the exported model must not need the originals
    request = _request(demo_small)
    out = ListingScorer.load(folder).score(request)
    _check_scored(out, request)


def test_missing_base_model_names_the_source(tmp_path: Path) -> None:
    from ipguard.models.loading import load_model

    empty = tmp_path / "not-a-model"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="not-a-model: expected an exported ipguard"):
        load_model(empty, tmp_path / "dl")
