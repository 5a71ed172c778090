"""``ipguard-livestream MODEL SOURCE``: screen a livestream, one JSON line per window.

What a moderation pipeline runs beside a live sale: ``ffmpeg -i rtmp://... -f mpegts - |
ipguard-livestream models:/ipguard-video@champion - --format mpegts``. Each window's decision
(:class:`ipguard.serving.livestream.LivestreamEvent`) is written to stdout as soon as it is
made; the command stops reading at a halt (``--keep-reading`` to go on) and ends with an
event whose ``final`` is true. Messages about what was loaded go to stderr, so stdout stays
pure JSON lines.

The stream policy is, first found: ``--policy FILE``; ``stream_policy.json`` beside the model's
``spec.json`` (fitted on validation streams, :func:`ipguard.serving.stream_policy.
fit_stream_policy`); the model's own listing policy used on windows
(:meth:`~ipguard.serving.stream_policy.StreamPolicy.from_policy`).

Exit status: 0 when the stream was screened to its end or to a halt (the JSON says which),
1 when the model, policy or transcript cannot be used, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from ipguard.serving.kinds import model_kind
from ipguard.serving.livestream import LivestreamScorer, read_transcript
from ipguard.serving.spec import SPEC_FILE, ModelSpec, folder_in_logged_model
from ipguard.serving.stream_policy import STREAM_POLICY_FILE, StreamPolicy

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ipguard-livestream",
        description="Screen a livestream with an ipguard-video model: read it window by "
        "window and write one JSON line per decision (halt / review / continue).",
    )
    parser.add_argument(
        "model",
        metavar="MODEL",
        help="an exported ipguard-video folder, a logged MLflow model folder holding one, or a "
        "registry / run URI (models:/ipguard-video@champion, models:/ipguard-video/3, runs:/...)",
    )
    parser.add_argument(
        "source",
        metavar="SOURCE",
        help="the stream: a file or named pipe, or - for stdin (then pass --format)",
    )
    parser.add_argument("--stream-id", default=None, help="echoed in every event (default: SOURCE)")
    parser.add_argument(
        "--transcript",
        metavar="FILE",
        default=None,
        help="timed transcript: JSON list, JSON lines or CSV of start_s, end_s, text",
    )
    parser.add_argument(
        "--policy",
        metavar="FILE",
        default=None,
        help=f"a stream policy JSON (default: {STREAM_POLICY_FILE} beside the model, else the "
        "model's listing policy)",
    )
    parser.add_argument(
        "--format",
        dest="container_format",
        default=None,
        help="the stream's container, e.g. mpegts, matroska, flv (needed for most pipes)",
    )
    parser.add_argument(
        "--window-s", type=float, default=4.0, help="seconds of video each decision scores (4)"
    )
    parser.add_argument(
        "--hop-s",
        type=float,
        default=None,
        help="seconds between decisions; window-s must be a multiple (default: window-s)",
    )
    parser.add_argument(
        "--lookback-s",
        default="0",
        help="transcript a window hears: segments that ended within this many seconds before "
        "it, or 'all' for everything said so far (default 0: only its own)",
    )
    parser.add_argument(
        "--keep-reading",
        action="store_true",
        help="go on reading and scoring after a halt (the decision stays halt)",
    )
    return parser


def resolve_model_folder(model: str, scratch: Path) -> Path:
    """The exported model folder ``model`` names; a URI is downloaded under ``scratch``."""
    if model.startswith(("models:/", "runs:/")):
        import mlflow  # only for a URI: a folder is read without MLflow
        from mlflow.exceptions import MlflowException

        try:
            local = mlflow.artifacts.download_artifacts(artifact_uri=model, dst_path=str(scratch))
        except (MlflowException, OSError) as err:
            raise FileNotFoundError(
                f"{model}: could not download it from the MLflow registry at "
                f"{mlflow.get_tracking_uri()} ({type(err).__name__}: {err})"
            ) from None
        folder = folder_in_logged_model(local)
        if folder is None:
            raise ValueError(f"{model}: not an ipguard model (no {SPEC_FILE} in its artifacts)")
        return folder
    path = Path(model).expanduser()
    if (path / SPEC_FILE).is_file():
        return path
    folder = folder_in_logged_model(path) if path.is_dir() else None
    if folder is None:
        found = (
            "a folder without one"
            if path.is_dir()
            else "nothing"
            if not path.exists()
            else "a file"
        )
        raise FileNotFoundError(
            f"{model}: expected a model folder with {SPEC_FILE}, a logged ipguard MLflow model "
            f"or a models:/ URI; found {found}"
        )
    return folder


def load_scorer_and_policy(folder: Path, policy_file: str | None) -> tuple[Any, StreamPolicy, str]:
    """The folder's video predictor, the stream policy to apply, and where the policy came from."""
    spec = ModelSpec.load(folder)
    if spec.kind != "video":
        raise ValueError(
            f"{folder}: ipguard-livestream needs an ipguard-video model; found kind {spec.kind!r} "
            f"(registered as {spec.registered_model})"
        )
    predictor = model_kind(spec.kind).predictor_class().load(folder)
    if policy_file is not None:
        return predictor, StreamPolicy.load(policy_file), str(policy_file)
    stored = folder / STREAM_POLICY_FILE
    if stored.is_file():
        return predictor, StreamPolicy.load(stored), str(stored)
    return predictor, StreamPolicy.from_policy(predictor.policy), "the model's listing policy"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    lookback: float | None
    if args.lookback_s.strip().lower() == "all":
        lookback = None
    else:
        try:
            lookback = float(args.lookback_s)
        except ValueError:
            parser.error(f"--lookback-s: expected seconds or 'all', found {args.lookback_s!r}")
        if not (math.isfinite(lookback) and lookback >= 0):
            parser.error(f"--lookback-s: expected seconds >= 0, found {args.lookback_s!r}")
    if args.source != "-" and not Path(args.source).exists():
        print(f"ipguard-livestream: {args.source}: no such file or pipe", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="ipguard-livestream-") as scratch:
        try:
            folder = resolve_model_folder(args.model, Path(scratch))
            predictor, policy, origin = load_scorer_and_policy(folder, args.policy)
            transcript = read_transcript(args.transcript) if args.transcript else None
            scorer = LivestreamScorer(
                predictor,
                policy,
                window_s=args.window_s,
                hop_s=args.hop_s,
                stop_on_halt=not args.keep_reading,
                transcript_lookback_s=lookback,
            )
        except (OSError, ValueError, TypeError) as err:
            print(f"ipguard-livestream: {err}", file=sys.stderr)
            return 1
        print(
            f"ipguard-livestream: model {folder} (version {predictor.model_version or '-'}); "
            f"policy from {origin}: halt >= {policy.halt_threshold:.4f} on {policy.k} of "
            f"{policy.n} windows, review >= {policy.review_threshold:.4f}",
            file=sys.stderr,
            flush=True,
        )
        source = sys.stdin.buffer if args.source == "-" else args.source
        stream_id = args.stream_id or ("stdin" if args.source == "-" else args.source)
        try:
            for event in scorer.run(
                source,
                stream_id=stream_id,
                transcript=transcript,
                container_format=args.container_format,
            ):
                sys.stdout.write(event.to_json() + "\n")
                sys.stdout.flush()
        except BrokenPipeError:  # whoever read our output has gone: nothing left to tell
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
