"""Decode + score throughput of a video model: the issue's 60-second clip at 1 frame/s.

Goal (issue 13): a 60-second clip sampled at 1 frame/s scored in under 2 s on 2 cores. Each
stage is timed on its own and together, in turns over ``--repeats`` (so background load weighs
on all alike): decoding and sampling (``sample_frames`` with the model's sampling, uniform
1 frame/s), ``VideoPredictor.score_frames`` on the sampled frames (the frame tower on every
frame, attention pooling, the transcript tower), and both as the pyfunc runs them
(``VideoPredictor.score`` on a one-row frame). The model is ``--model-dir`` (an exported
``ipguard-video`` folder) or, by default, the shipped video model's network with ImageNet
weights and an untrained head exported to a temporary folder: the cost does not depend on
what the head learned. Frames are sampled at the model's ``max_side`` and uncapped
(``max_frames`` lifted), so all 60 frames are scored. The load average is printed with the
figures; nothing is asserted.

    python benchmarks/video_throughput.py [--seconds 60] [--size 640x360] [--repeats 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
from video_decode import make_clip

from ipguard.data.video_frames import sample_frames
from ipguard.serving.predictors.video import VideoPredictor


def untrained_model(folder: Path) -> Path:
    """The default video network (pretrained frame tower, untrained head), exported."""
    from ipguard.models.video_classifier import VideoClassifier
    from ipguard.registry.package import write_model_dir

    model = VideoClassifier(pretrained=True)
    policy = {"reject_threshold": 0.9, "approve_threshold": 0.1}
    write_model_dir(model, folder, calibrator={"method": "none"}, policy=policy)
    return folder


def timed(call: object) -> float:
    started = time.perf_counter()
    call()  # type: ignore[operator]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "ipg-vt")
    args = parser.parse_args()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    width, height = (int(v) for v in args.size.split("x"))
    clip = make_clip(
        args.work_dir / f"clip_{width}x{height}_{args.seconds}s.mp4",
        width,
        height,
        args.seconds,
        args.fps,
    )
    folder = args.model_dir or untrained_model(args.work_dir / "model")
    predictor = VideoPredictor.load(folder)
    sampling = dataclasses.replace(
        predictor.sampling, rate=1.0, scene_threshold=None, max_frames=10 * args.seconds
    )
    predictor._sampling = sampling  # score() samples as the goal says: 1 frame/s
    sampled = sample_frames(clip, sampling)
    frames, times = sampled.frames, sampled.timestamps
    request = pd.DataFrame({"video_id": ["v"], "video_path": [str(clip)], "transcript": ["hi"]})
    predictor.score_frames(frames, times, "warm up")
    stages: dict[str, list[float]] = {"decode + sample": [], "score_frames": [], "score()": []}
    for _ in range(args.repeats):
        stages["decode + sample"].append(timed(lambda: sample_frames(clip, sampling)))
        stages["score_frames"].append(timed(lambda: predictor.score_frames(frames, times, "hi")))
        stages["score()"].append(timed(lambda: predictor.score(request)))
    load = os.getloadavg()[0]
    print(
        f"{args.seconds} s clip, {width}x{height} @{args.fps} fps, {len(times)} frames at "
        f"{sampling.max_side} px, tower at {predictor.network.config.image_size} px; "
        f"load average {load:.2f}, torch threads {__import__('torch').get_num_threads()}"
    )
    print("| stage | median s | min s | video s per wall s |")
    print("| --- | ---: | ---: | ---: |")
    for name, values in stages.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.3f} | {min(values):.3f} | {args.seconds / median:.1f} |")
    verdict = "meets" if statistics.median(stages["score()"]) < 2.0 else "misses"
    print(f"score() of the whole clip {verdict} the 2 s goal")


if __name__ == "__main__":
    main()
