"""Text models end to end: ``ipguard-train model=text_*`` in a subprocess on a manifest with no
images at all, registered as ``ipguard-text``, then loaded by alias in a *separate* process
(no Lightning, no Hydra, pickle disabled) that scores listings under the model contract."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from tiny_registry import subprocess_env, train_cli

pytestmark = pytest.mark.integration

CONTRACT = ["listing_id", "score", "decision", "image_score", "text_score", "flags"]
# Latin letters and their Cyrillic look-alikes, the commonest disguise of a brand name
CYRILLIC = str.maketrans("aeopcxyiAEOPCMTKHB", "аеорсхуіАЕОРСМТКНВ")


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def _env(home: Path) -> dict[str, str]:
    return subprocess_env(home, HF_HUB_OFFLINE="1")


@pytest.fixture(scope="module")
def text_only(demo_small, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The demo listings without their image column, and an empty tracking home."""
    folder = tmp_path_factory.mktemp("text_only")
    frame = pd.read_csv(demo_small.manifest_path).drop(columns=["image_path"])
    frame.to_csv(folder / "listings.csv", index=False)
    return {"manifest": folder / "listings.csv", "home": tmp_path_factory.mktemp("home")}


def _train(paths: dict[str, Path], *overrides: str) -> dict[str, str]:
    return train_cli(
        paths["home"],
        "debug=fast",
        f"data.manifest={paths['manifest']}",
        "seed=5",
        *overrides,
        HF_HUB_OFFLINE="1",
    )


SCORER = textwrap.dedent(
    """
    import json, sys
    import mlflow, pandas as pd
    uri, model_uri, request = sys.argv[1], sys.argv[2], sys.argv[3]
    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model(model_uri)
    out = model.predict(pd.read_json(request, orient="records", dtype=False))
    print(json.dumps({"out": out.to_dict(orient="list"),
                      "columns": list(out.columns),
                      "heavy_loaded": [m for m in ("lightning", "hydra") if m in sys.modules]}))
    """
)


def _score(run: dict[str, str], home: Path, request: pd.DataFrame, tmp_path: Path) -> dict:
    path = tmp_path / "request.json"
    request.to_json(path, orient="records")
    model_uri = f"models:/{run['name']}@{run['alias']}"
    proc = subprocess.run(
        [sys.executable, "-c", SCORER, run["uri"], model_uri, str(path)],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _request(manifest: Path) -> pd.DataFrame:
    """Held-out-like listings as a service sends them, the brand in each title disguised twice
    (Cyrillic look-alikes, fullwidth), plus one listing with no text at all."""
    frame = pd.read_csv(manifest).drop(columns=["label"])
    standalone = [
        re.search(rf"(?<!\S){re.escape(b)}(?!\S)", t) is not None
        for t, b in zip(frame["title"], frame["brand"].fillna("~"), strict=True)
    ]
    clean = frame[standalone].head(3).reset_index(drop=True)
    disguised = [
        clean.assign(
            listing_id=clean["listing_id"] + suffix,
            title=[
                t.replace(b, how(b)) for t, b in zip(clean["title"], clean["brand"], strict=True)
            ],
        )
        for suffix, how in (("-cyr", lambda b: b.translate(CYRILLIC)), ("-fw", _fullwidth))
    ]
    empty = clean.head(1).assign(listing_id="no-text", title="  ", description=None)
    return pd.concat([clean, *disguised, empty], ignore_index=True)


def _check_contract(result: dict, request: pd.DataFrame, version: str) -> pd.DataFrame:
    out = pd.DataFrame(result["out"])
    assert result["columns"][: len(CONTRACT)] == CONTRACT
    assert out["listing_id"].tolist() == request["listing_id"].tolist()
    assert set(out["decision"]) <= {"reject", "review", "approve"}
    assert (out["model_version"] == version).all()
    assert out["image_score"].isna().all()  # a text model never claims an image score
    scored, empty = out.iloc[:-1], out.iloc[-1]
    assert scored["score"].between(0, 1).all() and (scored["flags"] == "").all()
    assert empty["flags"] == "text_empty,not_scored" and pd.isna(empty["score"])
    assert empty["decision"] == "review"  # what could not be scored goes to a human
    assert result["heavy_loaded"] == []
    return out


@pytest.fixture(scope="module")
def tfidf_run(text_only: dict[str, Path]) -> dict[str, str]:
    return _train(text_only, "model=text_tfidf", "model.max_features=5000")


@pytest.fixture(scope="module")
def fasttext_run(text_only: dict[str, Path], tfidf_run: dict[str, str]) -> dict[str, str]:
    return _train(text_only, "model=text_fasttext", "model.n_buckets=4096", "model.dim=16")


def test_tfidf_trains_on_a_manifest_without_images_and_registers_challenger(
    tfidf_run: dict[str, str],
) -> None:
    assert (tfidf_run["name"], tfidf_run["alias"]) == ("ipguard-text", "challenger")
    assert 0.0 <= float(tfidf_run["auroc"]) <= 1.0


def test_tfidf_challenger_serves_the_contract_and_ignores_homoglyph_disguises(
    tfidf_run: dict[str, str], text_only: dict[str, Path], tmp_path: Path
) -> None:
    request = _request(text_only["manifest"])
    out = _check_contract(
        _score(tfidf_run, text_only["home"], request, tmp_path), request, tfidf_run["version"]
    )
    clean, cyrillic, fullwidth = (out["score"].iloc[i : i + 3].to_numpy() for i in (0, 3, 6))
    assert cyrillic == pytest.approx(clean, abs=1e-6)
    assert fullwidth == pytest.approx(clean, abs=1e-6)


@pytest.mark.slow
def test_fasttext_registers_the_next_challenger_and_serves_the_contract(
    fasttext_run: dict[str, str],
    tfidf_run: dict[str, str],
    text_only: dict[str, Path],
    tmp_path: Path,
) -> None:
    assert fasttext_run["name"] == "ipguard-text"
    assert int(fasttext_run["version"]) == int(tfidf_run["version"]) + 1
    request = _request(text_only["manifest"])
    _check_contract(
        _score(fasttext_run, text_only["home"], request, tmp_path),
        request,
        fasttext_run["version"],
    )


@pytest.mark.slow
def test_minilm_trains_registers_and_serves_offline(
    text_only: dict[str, Path], fasttext_run: dict[str, str], tmp_path: Path
) -> None:
    run = _train(text_only, "model=text_minilm", "model.max_length=64")
    assert run["name"] == "ipguard-text" and run["alias"] == "challenger"
    request = _request(text_only["manifest"])
    _check_contract(_score(run, text_only["home"], request, tmp_path), request, run["version"])
