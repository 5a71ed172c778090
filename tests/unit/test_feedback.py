"""Reviewers' and appeals' outcomes as labels: the feedback contract and the join rules.

Every expected value below follows from a rule of ipguard.data.feedback_join's docstring
applied to a hand-made frame, not from a run's output.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ipguard.data.errors import ManifestError
from ipguard.data.feedback import load_feedback, validate_feedback
from ipguard.data.feedback_join import join_feedback, rebase_image_paths

OWN = {"genuine": ["approve"], "infringing": ["reject"]}


def _traffic(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    """(listing_id, model decision, market, model_version) -> scored traffic."""
    return pd.DataFrame(
        {
            "listing_id": [r[0] for r in rows],
            "title": [f"listing {r[0]}" for r in rows],
            "market": [r[2] for r in rows],
            "score": [0.9 if r[1] == "reject" else 0.5 for r in rows],
            "decision": [r[1] for r in rows],
            "model_version": [r[3] for r in rows],
        }
    )


def _decisions(rows: list[tuple[str, str | None, str | None, str]]) -> pd.DataFrame:
    """(listing_id, reviewer_decision, appeal_outcome, decided_at) -> valid decisions."""
    frame = pd.DataFrame(
        {
            "listing_id": [r[0] for r in rows],
            "reviewer_decision": [r[1] for r in rows],
            "appeal_outcome": [r[2] for r in rows],
            "decided_at": [r[3] for r in rows],
            "queue_id": "q1",
        }
    )
    return validate_feedback(frame, label_values=OWN, source="feedback.csv").valid


def _join(decisions: pd.DataFrame, traffic: pd.DataFrame, tmp_path: Path, **kw):
    return join_feedback(decisions, traffic, root=tmp_path, traffic_source="traffic", **kw)


def _fates(joined) -> dict[tuple[str, int], str]:
    d = joined.decisions
    rows = zip(d["listing_id"], d["_source_row"], d["fate"], strict=True)
    return {(i, int(r)): f for i, r, f in rows}


def test_appeal_beats_a_later_review(tmp_path: Path) -> None:
    decisions = _decisions(
        [
            ("L1", "reject", None, "2026-01-01T09:00:00Z"),
            ("L1", None, "overturned", "2026-01-05T09:00:00Z"),
            ("L1", "reject", None, "2026-01-09T09:00:00Z"),  # a re-review after the appeal
        ]
    )
    joined = _join(decisions, _traffic([("L1", "reject", "US", "3")]), tmp_path)
    row = joined.manifest.set_index("listing_id").loc["L1"]
    assert (row["label"], row["label_source"]) == ("genuine", "appeal")
    assert _fates(joined) == {("L1", 1): "superseded", ("L1", 2): "used", ("L1", 3): "superseded"}


def test_latest_decision_of_the_same_kind_wins(tmp_path: Path) -> None:
    decisions = _decisions(
        [
            ("L2", "approve", None, "2026-01-02T00:00:00Z"),
            ("L2", "reject", None, "2026-01-03T00:00:00Z"),
            ("L2", "approve", None, "2026-01-01T00:00:00Z"),
            ("L3", None, "overturned", "2026-01-02T00:00:00Z"),
            ("L3", None, "upheld", "2026-01-04T00:00:00Z"),
        ]
    )
    traffic = _traffic([("L2", "review", "DE", "3"), ("L3", "reject", "DE", "3")])
    labels = _join(decisions, traffic, tmp_path).manifest.set_index("listing_id")["label"]
    assert labels.to_dict() == {"L2": "infringing", "L3": "infringing"}


def test_conflicting_latest_decisions_quarantine_the_listing(tmp_path: Path) -> None:
    decisions = _decisions(
        [
            ("L4", "approve", None, "2026-01-01T00:00:00Z"),
            ("L4", "approve", None, "2026-01-03T00:00:00Z"),
            ("L4", "reject", None, "2026-01-03T00:00:00Z"),
            ("L5", "reject", None, "2026-01-03T00:00:00Z"),
            ("L5", "reject", None, "2026-01-03T00:00:00Z"),  # agreeing duplicate: counts once
        ]
    )
    traffic = _traffic([("L4", "review", "US", "3"), ("L5", "review", "US", "3")])
    joined = _join(decisions, traffic, tmp_path)
    assert list(joined.manifest["listing_id"]) == ["L5"]
    assert set(joined.quarantine["_source_row"]) == {1, 2, 3}
    reason = joined.quarantine["reject_reason"].iloc[0]
    assert "conflicting review decisions about listing 'L4'" in reason
    assert "feedback.csv row 2: genuine" in reason and "feedback.csv row 3: infringing" in reason
    assert joined.counts["conflicting"] == 3
    assert (joined.counts["used"], joined.counts["superseded"]) == (1, 1)


def test_unknown_listing_is_quarantined_with_its_reason(tmp_path: Path) -> None:
    decisions = _decisions(
        [("L6", "reject", None, "2026-01-01T00:00:00Z"), ("GONE", "approve", None, "2026-01-01")]
    )
    joined = _join(decisions, _traffic([("L6", "review", "US", "3")]), tmp_path)
    assert list(joined.quarantine["listing_id"]) == ["GONE"]
    assert "'GONE' is not in the scored traffic (traffic)" in joined.quarantine["reject_reason"][0]
    assert joined.counts["unknown_listing"] == 1
    assert joined.counts["decisions"] == sum(joined.counts[f] for f in ("used", "quarantined"))


def test_listings_of_the_training_data_are_not_duplicated(tmp_path: Path) -> None:
    decisions = _decisions(
        [
            ("L7", "approve", None, "2026-01-01T00:00:00Z"),
            ("L7", None, "overturned", "2026-01-02T00:00:00Z"),
            ("L8", "reject", None, "2026-01-01T00:00:00Z"),
            ("L9", "reject", None, "2026-01-01T00:00:00Z"),
        ]
    )
    traffic = _traffic(
        [("L7", "reject", "US", "3"), ("L8", "reject", "US", "3"), ("L9", "x", "US", "3")]
    )
    base = pd.DataFrame({"listing_id": ["L7", "L8"], "label": ["infringing", "infringing"]})
    joined = _join(decisions, traffic, tmp_path, base=base)
    assert list(joined.manifest["listing_id"]) == ["L9"]
    assert joined.counts["in_training"] == 3  # every decision about L7 and L8
    assert joined.counts["listings_in_training"] == 2
    assert joined.counts["in_training_disagree"] == 1  # L7: overturned (genuine) vs infringing


def test_frozen_evaluation_listings_are_kept_out(tmp_path: Path) -> None:
    decisions = _decisions([("L10", "reject", None, "2026-01-01T00:00:00Z")])
    joined = _join(decisions, _traffic([("L10", "reject", "US", "3")]), tmp_path, holdout={"L10"})
    assert joined.manifest.empty
    assert "frozen evaluation set" in joined.quarantine["reject_reason"][0]


def test_overturn_rates_per_lane_market_and_version(tmp_path: Path) -> None:
    # reject lane: A (US, v3) overturned, B (US, v3) upheld, C (BR, v4) overturned;
    # review lane: D (BR, v4) upheld. E has only a review: not an appeal, not counted.
    traffic = _traffic(
        [
            ("A", "reject", "US", "3"),
            ("B", "reject", "US", "3"),
            ("C", "reject", "BR", "4"),
            ("D", "review", "BR", "4"),
            ("E", "reject", "BR", "4"),
        ]
    )
    decisions = _decisions(
        [
            ("A", None, "overturned", "2026-01-02"),
            ("B", None, "overturned", "2026-01-01"),  # superseded by the later upheld
            ("B", None, "upheld", "2026-01-03"),
            ("C", None, "overturned", "2026-01-02"),
            ("D", "reject", "upheld", "2026-01-02"),
            ("E", "approve", None, "2026-01-02"),
        ]
    )
    rates = _join(decisions, traffic, tmp_path).overturn.set_index(["group", "value"])
    expected = {
        ("lane", "reject"): (3, 2),
        ("lane", "review"): (1, 0),
        ("market", "US"): (2, 1),
        ("market", "BR"): (2, 1),
        ("model_version", "3"): (2, 1),
        ("model_version", "4"): (2, 1),
    }
    assert len(rates) == len(expected)
    for key, (appeals, overturned) in expected.items():
        assert (rates.loc[key, "appeals"], rates.loc[key, "overturned"]) == (appeals, overturned)
        assert rates.loc[key, "overturn_rate"] == pytest.approx(overturned / appeals)


def test_a_scored_listing_that_breaks_the_manifest_contract_is_quarantined(
    tmp_path: Path,
) -> None:
    traffic = _traffic([("L11", "review", "UK", "3"), ("L12", "review", "US", "3")])
    decisions = _decisions(
        [("L11", "reject", None, "2026-01-01"), ("L12", "approve", None, "2026-01-01")]
    )
    joined = _join(decisions, traffic, tmp_path)
    assert list(joined.manifest["listing_id"]) == ["L12"]
    assert "not a valid manifest row" in joined.quarantine["reject_reason"][0]
    assert "unknown market 'UK'" in joined.quarantine["reject_reason"][0]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_feedback_file_rows_are_valid_or_rejected_with_file_row_and_column(
    tmp_path: Path, suffix: str
) -> None:
    frame = pd.DataFrame(
        {
            "listing_id": ["L1", "L2", "L3", None, "L5", "L6"],
            "reviewer_decision": ["Reject ", "maybe", "approve", "approve", None, "approve"],
            "appeal_outcome": [None, None, "sometimes", None, None, "upheld"],
            "decided_at": ["2026-01-01T10:00:00Z", "2026-01-01", "2026-01-01", "2026-01-01",
                           "03/04/2026", "2026-01-01"],
            "reviewer_id": ["r1", "r1", "r1", "r1", "r1", None],
        }
    )  # fmt: skip
    path = tmp_path / f"feedback{suffix}"
    if suffix == ".csv":  # a team's export with semicolons
        frame.to_csv(path, sep=";", index=False)
    elif suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_json(path, orient="records", lines=True)
    rejects = tmp_path / "rejects.csv"
    result = load_feedback(path, on_error="quarantine", label_values=OWN, rejects_path=rejects)
    assert (result.rows_in, result.rows_valid, result.rows_rejected) == (6, 1, 5)
    assert result.valid.loc[0, "label"] == "infringing"  # 'Reject ' mapped
    messages = {(p.row, p.column): p.reason for p in result.problems}
    assert "unknown decision 'maybe'" in messages[(2, "reviewer_decision")]
    assert "unknown appeal_outcome 'sometimes'" in messages[(3, "appeal_outcome")]
    assert "missing required value" in messages[(4, "listing_id")]
    assert "'03/04/2026' is not a parseable timestamp" in messages[(5, "decided_at")]
    assert "no label" in messages[(5, "reviewer_decision")]
    assert "sellers appeal rejections" in messages[(6, "reviewer_decision")]
    assert "reviewer_id or a queue_id" in messages[(6, "reviewer_id")]
    assert len(pd.read_csv(rejects)) == 5
    with pytest.raises(ManifestError, match=r"feedback\S* row 2.*column 'reviewer_decision'"):
        load_feedback(path, label_values=OWN)


def test_a_feedback_file_without_who_decided_is_refused(tmp_path: Path) -> None:
    frame = pd.DataFrame({"listing_id": ["L1"], "reviewer_decision": ["reject"],
                          "decided_at": ["2026-01-01"]})  # fmt: skip
    with pytest.raises(ManifestError, match="'reviewer_id' or 'queue_id'"):
        validate_feedback(frame, label_values=OWN)


def test_image_paths_outside_the_manifest_folder_are_an_error(tmp_path: Path) -> None:
    paths = pd.Series(["images/a.png", None])
    rebased = rebase_image_paths(paths, tmp_path / "demo", tmp_path, where="traffic")
    assert rebased[0] == "demo/images/a.png" and pd.isna(rebased[1])
    with pytest.raises(ManifestError, match="lies outside"):
        rebase_image_paths(paths, tmp_path, tmp_path / "out", where="traffic")


# --- training on base + feedback ---------------------------------------------------------------


def test_feedback_rows_join_train_or_their_sellers_split_and_the_base_wins(
    tmp_path: Path,
) -> None:
    from ipguard.data.feedback_training import merge_feedback

    base = pd.DataFrame(
        {
            "listing_id": ["B1", "B2", "B3"],
            "seller_id": ["s1", "s2", "s3"],
            "label": ["genuine", "infringing", "genuine"],
            "image_path": ["images/b1.png", None, None],
        }
    )
    splits = pd.Series(["train", "val", "test"])
    feedback = pd.DataFrame(
        {
            "listing_id": ["F1", "F2", "F3", "B2"],
            "seller_id": ["s3", "s9", "s2", "s2"],
            "label": ["infringing", "genuine", "genuine", "genuine"],
            "label_source": ["review", "appeal", "review", "appeal"],
            "image_path": ["photos/f1.png", None, None, None],
        }
    )
    merged = merge_feedback(base, splits, feedback, tmp_path / "fb")
    by_id = dict(zip(merged.frame["listing_id"], merged.splits, strict=True))
    # F1's seller is in test, F3's in val; F2's seller is new: train. B2 stays the base's row.
    assert by_id == {"B1": "train", "B2": "val", "B3": "test", "F1": "test", "F2": "train",
                     "F3": "val"}  # fmt: skip
    rows = merged.frame.set_index("listing_id")
    assert rows.loc["B2", "label"] == "infringing"
    assert list(rows["label_source"]) == ["training"] * 3 + ["review", "appeal", "review"]
    assert rows.loc["F1", "image_path"] == str(tmp_path / "fb" / "photos" / "f1.png")
    assert rows.loc["B1", "image_path"] == "images/b1.png"
    assert merged.counts["feedback_in_base"] == 1 and merged.counts["feedback_added"] == 3
    assert (merged.counts["feedback_train"], merged.counts["feedback_test"]) == (1, 1)


def test_the_traffic_photos_folder_comes_from_the_score_run_records(tmp_path: Path) -> None:
    import json

    from ipguard.jobs.feedback import traffic_images_root
    from ipguard.jobs.score_output import STATE_FILE

    for day, source in (("d1", "a"), ("d2", "a")):
        (tmp_path / "scores" / day).mkdir(parents=True)
        record = {"input": str(tmp_path / source / "window.csv")}
        (tmp_path / "scores" / day / STATE_FILE).write_text(json.dumps(record))
    assert traffic_images_root(tmp_path / "scores") == tmp_path / "a"
    assert traffic_images_root(tmp_path / "scores" / "d1") == tmp_path / "a"
    (tmp_path / "scores" / "d2" / STATE_FILE).write_text(json.dumps({"input": "/b/window.csv"}))
    with pytest.raises(ValueError, match="set images_root="):
        traffic_images_root(tmp_path / "scores")
