"""Time to decision of the livestream scorer, and how often it halts a clean stream.

Run (inside the CPU lock on a shared machine)::

    flock /tmp/ipguard-cpu.lock python benchmarks/livestream.py [--work-dir DIR]
        [--model FOLDER] [--window-s 4] [--hop-s 2] [--epochs 15]

What it does, all on generated data (nothing downloads):

1. the demo clips (:func:`ipguard.demo.videos.ensure_demo_videos`, seed 0: 120 short videos and
   12 livestreams); unless ``--model`` names one, the video model is trained on the **short
   videos only** (``experiment=video``, the livestreams left out so none of the streams it is
   measured on was seen in training) and exported with its policy;
2. validation streams: 24 more demo livestreams (seed 1, 12 infringing); each is screened
   with :class:`~ipguard.serving.livestream.LivestreamScorer` and the stream policy is fitted on
   their window scores (:func:`~ipguard.serving.stream_policy.fit_stream_policy`, no false halt
   allowed) and stored beside the model as ``stream_policy.json``;
3. test streams: the 12 seed-0 demo livestreams plus 24 seed-2 ones (18 infringing, each with
   a counterfeit item from a known onset); each is screened by the live scorer under the
   fitted policy (read from the file as a stream, window by window).

Reported: seconds from onset to ``halt`` (median, p90, streams never halted), false halts (a
clean stream halted, or an infringing one before its onset) per stream and per hour of clean
video, the same under the model's listing policy used on windows (the fallback), and
throughput (windows per wall second, video seconds per wall second, model seconds per window).
Transcripts are not used: the demo livestreams' transcripts are untimed, and a window must only
hear what was said by its end. Nothing is asserted; the figures go to docs/video.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ipguard.demo.videos import ensure_demo_videos
from ipguard.serving.livestream import LivestreamScorer
from ipguard.serving.predictors.video import VideoPredictor
from ipguard.serving.stream_policy import (
    StreamPolicy,
    ValidationStream,
    fit_stream_policy,
    halt_outcomes,
)

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


def train_model(
    work: Path,
    demo_root: Path,
    epochs: int,
    overrides: list[str],
    train_streams: Path | None = None,
) -> Path:
    """The video model trained on the demo's short videos only; its exported folder.
    ``overrides`` are more ``ipguard-train`` overrides (e.g. ``data.train_windows={...}``).

    With ``train_streams`` (a demo set of another seed than the validation and test streams),
    its livestreams join the *training* split (ids and sellers prefixed, so none collides with
    the short videos'), with their spans, so window training cuts windows of livestreams too;
    the short videos keep the split they get alone (a saved split file)."""
    from omegaconf import OmegaConf

    from ipguard.config import compose
    from ipguard.data.splits import SplitConfig, split_manifest
    from ipguard.jobs.train import train

    frame = pd.read_csv(demo_root / "videos.csv", dtype=str, keep_default_na=False)
    short = demo_root / "short_videos.csv"
    frame = frame[frame["kind"] == "short_video"].reset_index(drop=True)
    frame.to_csv(short, index=False)
    manifest, extra = short, []
    if train_streams is not None:
        streams = pd.read_csv(train_streams / "videos.csv", dtype=str, keep_default_na=False)
        streams = streams[streams["kind"] == "livestream"].reset_index(drop=True)
        tag = f"{train_streams.name}-"
        streams["video_id"] = tag + streams["video_id"]
        streams["seller_id"] = tag + streams["seller_id"]
        both = pd.concat(
            [
                frame.assign(video_path=f"{demo_root.name}/" + frame["video_path"]),
                streams.assign(video_path=f"{train_streams.name}/" + streams["video_path"]),
            ],
            ignore_index=True,
        )
        manifest = work / "train_manifest.csv"  # beside both clip folders: paths stay inside
        both.to_csv(manifest, index=False)
        extra = [f"data.split_file={work / 'train_splits.csv'}"]
    os.environ["IPGUARD_HOME"] = str(work / "home")
    arguments = [
        "experiment=video",
        f"data.manifest={manifest}",
        f"trainer.max_epochs={epochs}",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        f"paths.output_dir={work / 'run'}",
        *overrides,
    ]
    cfg = compose("train", arguments)
    if train_streams is not None:
        split = SplitConfig(**OmegaConf.to_container(cfg.data.split, resolve=True))  # type: ignore[arg-type]
        short_splits = split_manifest(frame, split).splits.tolist()
        pd.DataFrame(
            {
                "video_id": [*frame["video_id"], *streams["video_id"]],
                "split": [*short_splits, *["train"] * len(streams)],
            }
        ).to_csv(work / "train_splits.csv", index=False)
        cfg = compose("train", [*arguments, *extra])
        print(f"training on {len(frame)} short videos and {len(streams)} livestreams "
              f"of {train_streams.name} (training split only)", flush=True)  # fmt: skip
    result = train(cfg)
    print(result.summary_line(), flush=True)
    if result.model_dir is None:
        raise RuntimeError("training registered no model folder (register=false?)")
    return Path(result.model_dir)


def streams_of(root: Path) -> list[dict[str, Any]]:
    """The livestreams of a demo set with their onset (span start) from truth.csv."""
    truth = pd.read_csv(root / "truth.csv", dtype=str, keep_default_na=False)
    live = truth[truth["kind"] == "livestream"]
    return [
        {
            "id": f"{root.name}/{row.video_id}",
            "path": root / "clips" / f"{row.video_id}.mp4",
            "onset_s": float(row.span_start_s) if row.label == "infringing" else None,
            "span_end_s": float(row.span_end_s) if row.label == "infringing" else None,
            "duration_s": float(row.duration_s),
        }
        for row in live.itertuples()
    ]


def screen(
    predictor: VideoPredictor, policy: StreamPolicy, stream: dict[str, Any], args: Any
) -> dict[str, Any]:
    """One stream through the live scorer, read to its end (the halt latches and is kept)."""
    live = LivestreamScorer(
        predictor, policy, window_s=args.window_s, hop_s=args.hop_s, stop_on_halt=False
    )
    began = time.perf_counter()
    events = list(live.run(stream["path"], stream_id=stream["id"]))
    wall = time.perf_counter() - began
    windows = [e for e in events if e.event == "window"]
    halt = next((e for e in windows if e.decision == "halt"), None)
    return {
        **stream,
        "ends": np.array([e.window_end_s for e in windows]),
        "scores": np.array([np.nan if e.score is None else e.score for e in windows]),
        "halted_at_s": None if halt is None else halt.halted_at_s,
        "halt_windows": None if halt is None else halt.window_index + 1,
        "reviewed_at_s": next((e.window_end_s for e in windows if e.decision == "review"), None),
        "windows": len(windows),
        "wall_s": wall,
        "model_s": float(sum(e.scored_in_s for e in windows)),
        "video_s": float(windows[-1].window_end_s) if windows else 0.0,
    }


def screen_all(
    predictor: VideoPredictor,
    policy: StreamPolicy,
    streams: list[dict[str, Any]],
    args: Any,
    cache: Path,
    model_key: str,
) -> list[dict[str, Any]]:
    """:func:`screen` over ``streams``; window scores cached in ``cache`` (JSON) per model (its
    weights and spec), window settings and policy, so a rerun does not decode and score again
    and another model is scored afresh."""
    key = f"{model_key}/{args.window_s}/{args.hop_s}"
    stored = json.loads(cache.read_text()) if cache.is_file() else {}
    if stored.get("key") == key and stored.get("policy") == policy.to_dict():
        print(f"window scores from {cache}", flush=True)
        return [
            {**r, "path": Path(r["path"]), "ends": np.array(r["ends"]),
             "scores": np.array(r["scores"], dtype=float)}
            for r in stored["results"]
        ]  # fmt: skip
    results = []
    for i, stream in enumerate(streams, start=1):
        results.append(screen(predictor, policy, stream, args))
        r = results[-1]
        print(f"  {i}/{len(streams)} {r['id']}: {r['windows']} windows in {r['wall_s']:.1f} s, "
              f"halt at {r['halted_at_s']}, onset {r['onset_s']}", flush=True)  # fmt: skip
    serial = [
        {**r, "path": str(r["path"]), "ends": r["ends"].tolist(),
         "scores": [None if np.isnan(x) else float(x) for x in r["scores"]]}
        for r in results
    ]  # fmt: skip
    cache.write_text(json.dumps({"key": key, "policy": policy.to_dict(), "results": serial}))
    return results


def model_digest(folder: Path) -> str:
    """sha256 of an exported model folder's spec and weights: what its window scores depend on."""
    digest = hashlib.sha256()
    for name in ("spec.json", "weights.safetensors"):
        path = folder / name
        digest.update(name.encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"-")
    return digest.hexdigest()[:16]


def window_auroc(results: list[dict[str, Any]], window_s: float) -> dict[str, Any]:
    """AUROC of single window scores: a window ``[end - window_s, end)`` is infringing if it
    overlaps its stream's span (the counterfeit item on screen); unscored windows left out."""
    from sklearn.metrics import roc_auc_score

    labels, scores = [], []
    for r in results:
        for end, score in zip(r["ends"], r["scores"], strict=True):
            if np.isnan(score):
                continue
            onset, stop = r["onset_s"], r.get("span_end_s")
            inside = onset is not None and end - window_s < (stop or np.inf) and end > onset
            labels.append(int(inside))
            scores.append(float(score))
    y = np.array(labels)
    return {
        "windows": len(y),
        "infringing_windows": int(y.sum()),
        "window_auroc": round(float(roc_auc_score(y, scores)), 4) if 0 < y.sum() < len(y) else None,
    }


def as_validation(results: list[dict[str, Any]]) -> list[ValidationStream]:
    return [
        ValidationStream(r["id"], r["ends"], r["scores"], r["onset_s"], r["duration_s"])
        for r in results
    ]


def describe(name: str, outcome: Any, streams: int, clean_streams: int) -> dict[str, Any]:
    summary = outcome.summary()
    infringing = streams - clean_streams
    row = {
        "policy": name,
        "infringing_halted": f"{outcome.true_halts}/{infringing}",
        "never_halted": outcome.missed,
        "median_s": summary.get("median_delay_s"),
        "p90_s": summary.get("p90_delay_s"),
        "false_halts": outcome.false_halts,
        "false_halts_per_stream": round(outcome.false_halts / streams, 4),
        "false_halts_per_hour": round(outcome.false_halts_per_hour, 3),
        "clean_hours": round(outcome.clean_hours, 3),
    }
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--model", type=Path, default=None, help="an exported video model")
    parser.add_argument("--window-s", type=float, default=4.0)
    parser.add_argument("--hop-s", type=float, default=2.0)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--val-streams", type=int, default=24)
    parser.add_argument("--test-streams", type=int, default=24, help="besides the 12 demo ones")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument(
        "--override",
        action="append",
        default=[],
        help="an ipguard-train override for the model trained here, e.g. "
        "'data.train_windows={min_s:2,max_s:8,per_clip:8}' (repeatable)",
    )
    parser.add_argument(
        "--train-streams",
        type=int,
        default=0,
        help="livestreams of another seed (--train-seed) added to the training split, with "
        "their spans (for window training); 0: short videos only",
    )
    parser.add_argument("--train-seed", type=int, default=3)
    parser.add_argument(
        "--budgets",
        type=float,
        nargs="*",
        default=[10.0, 30.0, 60.0],
        help="false halts per hour of clean video the policy may make on validation, besides 0",
    )
    args = parser.parse_args()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="ipguard-livestream-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"work dir: {work}", flush=True)

    started = time.perf_counter()
    demo = ensure_demo_videos(work / "demo_videos")  # seed 0: 120 short videos, 12 livestreams
    val_set = ensure_demo_videos(work / "val_streams", n=1, seed=1, livestreams=args.val_streams)
    test_set = ensure_demo_videos(work / "test_streams", n=1, seed=2, livestreams=args.test_streams)
    train_set = None
    if args.train_streams:
        if args.train_seed in (0, 1, 2):
            raise SystemExit("--train-seed: 0, 1 and 2 are the test and validation streams' seeds")
        train_set = ensure_demo_videos(
            work / "train_streams", n=1, seed=args.train_seed, livestreams=args.train_streams
        )
    print(f"demo clips ready in {time.perf_counter() - started:.1f} s", flush=True)

    folder = args.model or train_model(
        work,
        demo.root,
        args.epochs,
        args.override,
        train_streams=None if train_set is None else train_set.root,
    )
    predictor = VideoPredictor.load(folder)
    model_key = model_digest(Path(folder))
    listing = StreamPolicy.from_policy(predictor.policy)
    print(f"model {folder}; listing policy {predictor.policy.to_dict()}", flush=True)

    tag = f"w{args.window_s:g}h{args.hop_s:g}"
    val = screen_all(
        predictor, listing, streams_of(val_set.root), args, work / f"val_{tag}.json", model_key
    )
    fitted = fit_stream_policy(as_validation(val))
    fitted.save(folder)
    print(f"fitted stream policy: {json.dumps(fitted.to_dict())}", flush=True)

    tests = streams_of(demo.root) + streams_of(test_set.root)
    results = screen_all(predictor, fitted, tests, args, work / f"test_{tag}.json", model_key)
    stream_set = as_validation(results)
    clean = sum(r["onset_s"] is None for r in results)
    live_outcome = halt_outcomes(stream_set, fitted.halt_threshold, fitted.k, fitted.n)
    # the replay and the live scorer must agree on every halt: a check on both
    for r in results:
        replayed = halt_outcomes(as_validation([r]), fitted.halt_threshold, fitted.k, fitted.n)
        assert (replayed.halts == 1) == (r["halted_at_s"] is not None), r["id"]
    rows = [describe("fitted", live_outcome, len(results), clean)]
    rows.append(
        describe(
            "listing policy (reject threshold, 2 of 3)",
            halt_outcomes(stream_set, listing.halt_threshold, listing.k, listing.n),
            len(results),
            clean,
        )
    )
    for k, n in ((1, 1), (2, 3), (3, 5)):
        rows.append(
            describe(
                f"fitted threshold, {k} of {n}",
                halt_outcomes(stream_set, fitted.halt_threshold, k, n),
                len(results),
                clean,
            )
        )
    for budget in args.budgets:  # a false-halt budget on validation buys earlier halts
        loose = fit_stream_policy(as_validation(val), target_false_halts_per_hour=budget)
        rows.append(
            describe(
                f"fitted for {budget:g} false halts/h: halt >= {loose.halt_threshold:.3f}, "
                f"{loose.k} of {loose.n}",
                halt_outcomes(stream_set, loose.halt_threshold, loose.k, loose.n),
                len(results),
                clean,
            )
        )
    demo_only = [v for v in stream_set if v.stream_id.startswith("demo_videos/")]
    rows.append(
        describe(
            "fitted, the 12 demo livestreams only",
            halt_outcomes(demo_only, fitted.halt_threshold, fitted.k, fitted.n),
            len(demo_only),
            sum(v.onset_s is None for v in demo_only),
        )
    )
    windows = sum(r["windows"] for r in results)
    wall = sum(r["wall_s"] for r in results)
    model_s = sum(r["model_s"] for r in results)
    video_s = sum(r["video_s"] for r in results)
    throughput = {
        "streams": len(results),
        "windows": windows,
        "video_s": round(video_s, 1),
        "wall_s": round(wall, 2),
        "windows_per_s": round(windows / wall, 2),
        "video_s_per_wall_s": round(video_s / wall, 2),
        "model_ms_per_window": round(1000 * model_s / windows, 2),
    }
    per_stream = pd.DataFrame(
        [
            {
                "stream": r["id"],
                "onset_s": r["onset_s"],
                "halted_at_s": r["halted_at_s"],
                "first_review_s": r["reviewed_at_s"],
                "max_score": round(float(np.nanmax(r["scores"])), 4),
            }
            for r in results
        ]
    )
    pd.set_option("display.width", 200)
    print(per_stream.to_string(index=False))
    print(pd.DataFrame(rows).to_string(index=False))
    windows_roc = window_auroc(results, args.window_s)
    print(json.dumps(throughput))
    print(f"test windows: {json.dumps(windows_roc)}")
    print(
        f"window {args.window_s} s, hop {args.hop_s} s; total {time.perf_counter() - started:.0f} s"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "model": str(folder),
                    "model_key": model_key,
                    "policy": fitted.to_dict(),
                    "rows": rows,
                    "throughput": throughput,
                    "test_windows": windows_roc,
                    "val_windows": window_auroc(val, args.window_s),
                    "max_score": per_stream.to_dict(orient="records"),
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
