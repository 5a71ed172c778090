"""The loop after deployment, on demo traffic: deploy, score shifted traffic, the monitor's
alarm, reviewers' and appeals' outcomes joined into labels, retrain on base + feedback, and the
gate on the frozen set and the recent window.

The models are tiny and barely trained, so which way the gate goes is not the point; what is
asserted is what each step must guarantee: labels follow the stated rules, every outcome row is
accounted for, feedback rows train without moving the base's splits, and the gate's decision is
the one its rule gives on the figures it recorded, on both sets.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from tiny_registry import MODEL_OVERRIDES, TinyStore, train_cli, train_tiny_model

from ipguard.config import compose
from ipguard.data.columns import REQUEST_COLUMNS
from ipguard.registry.promotion import GateRule, gate

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KEEP = [c for c in REQUEST_COLUMNS if c != "listing_id"]
REVIEW_DAY = pd.Timestamp("2026-11-02T09:00:00Z")


def _shifted_traffic(folder: Path, base: pd.DataFrame) -> pd.DataFrame:
    """New demo listings (their own ids and sellers) with a shift: a third moved to a market
    the model never saw, priced three times higher; plus a few base listings scored again
    (without photo). Returns the rows with their ground-truth label."""
    from ipguard.demo.listings import generate_demo_data

    demo = generate_demo_data(folder, n=160, seed=11, image_size=48)
    rows = pd.read_csv(demo.manifest_path, dtype=str, keep_default_na=False)
    rows["listing_id"] = "T" + rows["listing_id"]
    rows["seller_id"] = "T" + rows["seller_id"]
    moved = np.arange(len(rows)) % 3 == 0
    rows.loc[moved, ["market", "currency"]] = ["IN", "INR"]
    rows.loc[moved, "price"] = (rows.loc[moved, "price"].astype(float) * 3).round(2).astype(str)
    again = base.head(6).assign(image_path="")
    return pd.concat([rows, again], ignore_index=True)


def _outcomes(truth: pd.DataFrame, listings: list[str], start: pd.Timestamp) -> pd.DataFrame:
    """Reviewers decide from the ground truth, wrong on every 10th listing; each wrong
    rejection is appealed and overturned, every 4th right one appealed and upheld."""
    rows = []
    for i, listing in enumerate(listings):
        infringing = truth[listing] == "infringing"
        said_reject = infringing != (i % 10 == 0)
        at = start + pd.Timedelta(hours=i)
        rows.append((listing, "reject" if said_reject else "approve", "", at, "q-review"))
        if said_reject and not infringing:
            rows.append((listing, "reject", "overturned", at + pd.Timedelta(days=3), "q-appeal"))
        elif said_reject and i % 4 == 0:
            rows.append((listing, "reject", "upheld", at + pd.Timedelta(days=3), "q-appeal"))
    columns = ["listing_id", "reviewer_decision", "appeal_outcome", "decided_at", "queue_id"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["decided_at"] = frame["decided_at"].map(lambda t: t.isoformat())
    return frame


def _expected_labels(outcomes: pd.DataFrame) -> dict[str, str]:
    """The rules by hand: an appeal decides; else the (only) review."""
    labels = {}
    for listing, group in outcomes.groupby("listing_id"):
        appeal = group[group["appeal_outcome"] != ""]
        if len(appeal):
            labels[listing] = {"upheld": "infringing", "overturned": "genuine"}[
                appeal["appeal_outcome"].iloc[-1]
            ]
        else:
            labels[listing] = {"reject": "infringing", "approve": "genuine"}[
                group["reviewer_decision"].iloc[-1]
            ]
    return labels


def test_deploy_score_feedback_retrain_promote(
    tmp_path: Path, demo_small, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ipguard.jobs.batch_score import score_manifest
    from ipguard.jobs.feedback import feedback
    from ipguard.jobs.monitor import ALERT_EXIT_CODE, monitor
    from ipguard.jobs.promote import promote

    home = tmp_path / "home"
    base_path = demo_small.manifest_path
    base = pd.read_csv(base_path, dtype=str, keep_default_na=False)
    # deploy: a tiny model registered and made champion
    store: TinyStore = train_tiny_model(home, base_path)
    client = store.client()
    client.set_registered_model_alias(store.name, "champion", store.version)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.tracking_uri)
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    # an earlier test in this process may have set MLflow's URIs, which win over the variable
    mlflow.set_tracking_uri(store.tracking_uri)
    mlflow.set_registry_uri(store.tracking_uri)
    try:
        # score a window of shifted traffic as the batch job does, request columns kept
        traffic_dir = tmp_path / "traffic"
        traffic = _shifted_traffic(traffic_dir, base)
        truth = dict(zip(traffic["listing_id"], traffic["label"], strict=True))
        traffic.drop(columns=["label", "infringement_type"]).to_csv(
            traffic_dir / "window.csv", index=False
        )
        scored = score_manifest(
            f"models:/{store.name}@champion", traffic_dir / "window.csv",
            traffic_dir / "scores", keep=KEEP, progress=False,
        )  # fmt: skip
        assert scored.rows_out == len(traffic) == 166

        # the monitor sees the shift: a market the reference never saw (exit code 3)
        drift = monitor(
            compose(
                "monitor",
                [
                    f"model_uri=models:/{store.name}@champion",
                    f"traffic={traffic_dir / 'scores'}",
                    f"output={tmp_path / 'monitor'}",
                    f"mlflow.tracking_uri={store.tracking_uri}",
                    f"paths.root_dir={home}",
                    "evidently=false",
                ],
            )
        )
        assert drift.exit_code == ALERT_EXIT_CODE
        assert "market" in {a.feature for a in drift.alerts}, [a.describe() for a in drift.alerts]

        # outcomes: weeks 1-3 become training labels, week 4 the recent window
        ids = list(traffic["listing_id"])
        weeks = _outcomes(truth, ids[:120] + ids[160:], REVIEW_DAY)
        week4 = _outcomes(truth, ids[120:160], REVIEW_DAY + pd.Timedelta(days=21))
        odd = pd.DataFrame(
            [
                ("NOPE1", "reject", "", "2026-11-03T00:00:00Z", "q-review"),  # not in traffic
                (ids[7], "maybe", "", "2026-11-03T00:00:00Z", "q-review"),  # unknown decision
                (ids[9], "approve", "", "2026-11-20T00:00:00Z", "q-review"),  # conflicting pair
                (ids[9], "reject", "", "2026-11-20T00:00:00Z", "q-review"),
            ],
            columns=weeks.columns,
        )
        clean, weeks = weeks, pd.concat([weeks, odd], ignore_index=True)
        weeks.to_csv(tmp_path / "outcomes.csv", sep=";", index=False)  # a team's export
        week4.to_csv(tmp_path / "outcomes_week4.csv", index=False)

        def run_feedback(outcomes: Path, output: Path):
            overrides = [
                f"feedback={outcomes}", f"traffic={traffic_dir / 'scores'}", f"output={output}",
                f"base={base_path}", f"paths.root_dir={home}",
            ]  # fmt: skip
            return feedback(compose("feedback", overrides))

        joined = run_feedback(tmp_path / "outcomes.csv", traffic_dir / "feedback.csv")
        counts = joined.counts
        assert counts["rows_in"] == len(weeks) and counts["rows_rejected"] == 1
        assert counts["unknown_listing"] == 1 and counts["conflicting"] == 3
        assert counts["listings_in_training"] == 6  # the base listings scored again
        assert counts["rows_in"] == counts["rows_rejected"] + sum(
            counts[k] for k in ("used", "superseded", "in_training", "quarantined")
        )
        quarantine = pd.read_csv(joined.quarantine)
        assert len(quarantine) == 1 + 1 + 3 and quarantine["reject_reason"].notna().all()
        manifest = pd.read_csv(joined.output)
        # every new listing but the conflicting one; the base listings keep their own rows
        expected = {
            k: v for k, v in _expected_labels(clean).items() if k.startswith("T") and k != ids[9]
        }
        assert dict(zip(manifest["listing_id"], manifest["label"], strict=True)) == expected
        appealed = set(clean.loc[clean["appeal_outcome"] != "", "listing_id"])
        sources = dict(zip(manifest["listing_id"], manifest["label_source"], strict=True))
        assert {k for k, v in sources.items() if v == "appeal"} == appealed & set(expected)
        # overturn rates count every resolved appeal on the traffic, base listings included
        lanes = pd.read_csv(joined.overturn)
        by_lane = lanes[lanes["group"] == "lane"]
        assert by_lane["appeals"].sum() == len(appealed)
        assert by_lane["overturned"].sum() == (clean["appeal_outcome"] == "overturned").sum()
        assert set(lanes["group"]) == {"lane", "market", "model_version"}
        assert lanes.loc[lanes["group"] == "model_version", "value"].astype(str).tolist() == [
            store.version
        ]
        assert json.loads(joined.report.read_text())["counts"] == counts

        # written outside the traffic's folder: the photos are linked in beside it
        recent = run_feedback(tmp_path / "outcomes_week4.csv", tmp_path / "labels" / "recent.csv")
        assert recent.counts["listings_labelled"] == 40
        photos = pd.read_csv(recent.output)["image_path"]
        assert photos.str.startswith("recent.images/").all()
        assert all((tmp_path / "labels" / p).is_file() for p in photos)

        # retrain on base + feedback: registered @challenger
        summary = train_cli(
            home, "debug=fast", *MODEL_OVERRIDES["image"], "data=manifest",
            f"data.manifest={base_path}", f"data.feedback={joined.output}", "seed=3",
        )  # fmt: skip
        assert summary["alias"] == "challenger" and summary["version"] != store.version
        (run,) = [
            p.parent for p in (home / "runs" / "train").glob("*/splits.csv")
            if "T" in pd.read_csv(p)["listing_id"].str[0].unique()
        ]  # fmt: skip
        splits = pd.read_csv(run / "splits.csv").set_index("listing_id")["split"]
        first = pd.read_csv(store.model_dir.parent / "splits.csv").set_index("listing_id")
        assert (splits[first.index] == first["split"]).all()  # the base split did not move
        assert (splits[manifest["listing_id"]] == "train").all()  # new sellers: train

        # the gate on the frozen set and the recent window
        from ipguard.demo.listings import generate_demo_data

        frozen = generate_demo_data(tmp_path / "frozen", n=80, seed=13, image_size=48)
        result = promote(
            compose(
                "promote",
                [
                    f"paths.root_dir={home}",
                    f"mlflow.tracking_uri={store.tracking_uri}",
                    f"name={store.name}",
                    f"manifest={frozen.manifest_path}",
                    f"recent={recent.output}",
                ],
            )
        )
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])

    rule = GateRule()
    frozen_ok = gate(result.challenger_metrics, result.champion_metrics, rule)[0]
    assert result.recent is not None
    recent_ok = gate(result.recent.challenger_metrics, result.recent.champion_metrics, rule)[0]
    assert result.promoted == (frozen_ok and recent_ok)
    assert result.failed_on == [
        n for n, ok in (("frozen", frozen_ok), ("recent", recent_ok)) if not ok
    ]
    assert result.recent.rows["total"] == 40
    champion = str(client.get_model_version_by_alias(store.name, "champion").version)
    assert champion == (summary["version"] if result.promoted else store.version)
    tags = client.get_model_version(store.name, summary["version"]).tags
    assert tags["promotion_decision"] == result.decision
    assert tags["promotion_failed_on"] == (",".join(result.failed_on) or "none")
    for key in ("ap", "auroc"):
        assert not math.isnan(float(tags[f"recent_challenger_{key}"]))
