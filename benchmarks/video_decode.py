"""Decode + sample throughput of :func:`ipguard.data.video_frames.sample_frames`.

Run (inside the CPU lock on a shared machine)::

    flock /tmp/ipguard-cpu.lock python benchmarks/video_decode.py [--seconds 60] [--fps 30]
        [--repeats 3] [--work-dir DIR]

The issue's goal is a 60-second clip sampled at 1 frame/s scored in under 2 s; decoding is the
part measured here. For each resolution (360p, 720p) a ``--seconds`` clip at ``--fps`` is
generated once with libx264 (``veryfast`` preset, so the stream has B-frames and CABAC like a
phone upload; a textured pan with a cut every 10 s, so scene detection has work) and cached in
``--work-dir``. Each clip is then sampled with the default :class:`SamplingConfig` (1 fps plus
scene changes, frames shrunk to 256 px), with FFmpeg's own thread count and with one decoder
thread (as in a DataLoader worker), and uniform-only; each with every frame decoded
(``skip_frames="none"``) and with the frames no other frame refers to skipped (``"nonref"``,
what ``"auto"`` picks at 30 fps). A last row per clip decodes its keyframes only. Figures:
median wall seconds over ``--repeats``, video seconds per wall second, and CPU seconds (less
sensitive to other users' load). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from ipguard.data.video_frames import SamplingConfig, sample_frames

RESOLUTIONS = {"360p": (640, 360), "720p": (1280, 720)}


def make_clip(path: Path, width: int, height: int, seconds: int, fps: int) -> Path:
    """A textured pan (a new texture, i.e. a cut, every 10 s) encoded like a phone upload."""
    if path.exists():
        return path
    rng = np.random.default_rng(0)
    tile = 16
    partial = path.with_suffix(".partial.mp4")
    with av.open(str(partial), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps, options={"preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        texture = None
        for index in range(seconds * fps):
            if index % (10 * fps) == 0:
                coarse = rng.integers(0, 256, (height // tile + 1, 2 * width // tile + 1, 3))
                texture = coarse.astype(np.uint8).repeat(tile, 0).repeat(tile, 1)
            assert texture is not None
            shift = (index * 3) % width
            image = np.ascontiguousarray(texture[:height, shift : shift + width])
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    partial.rename(path)
    return path


def time_sampling(path: Path, config: SamplingConfig, repeats: int) -> tuple[float, float, int]:
    """Median wall and CPU seconds of :func:`sample_frames`, and the frames it kept."""
    walls, cpus, kept = [], [], 0
    for _ in range(repeats):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        sampled = sample_frames(path, config)
        walls.append(time.perf_counter() - wall0)
        cpus.append(time.process_time() - cpu0)
        kept = len(sampled.frames)
        if sampled.flags:
            raise RuntimeError(f"{path}: {sampled.flags} {sampled.detail}")
    return statistics.median(walls), statistics.median(cpus), kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "ipguard-video-bench"
    )
    args = parser.parse_args()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    configs = {
        "1 fps + scenes, every frame decoded, auto threads": SamplingConfig(skip_frames="none"),
        "1 fps + scenes, non-ref skipped, auto threads": SamplingConfig(skip_frames="nonref"),
        "1 fps + scenes, every frame decoded, 1 thread": SamplingConfig(
            decode_threads=1, skip_frames="none"
        ),
        "1 fps + scenes, non-ref skipped, 1 thread": SamplingConfig(
            decode_threads=1, skip_frames="nonref"
        ),
        "1 fps only, every frame decoded, auto threads": SamplingConfig(
            scene_threshold=None, skip_frames="none"
        ),
        "1 fps only, non-ref skipped, auto threads": SamplingConfig(
            scene_threshold=None, skip_frames="nonref"
        ),
    }
    print(
        f"{args.seconds} s clips at {args.fps} fps; {os.cpu_count()} CPUs; "
        f"load average {os.getloadavg()[0]:.2f}; median of {args.repeats}"
    )
    print("| clip | MB | sampling | kept | wall s | video s / wall s | CPU s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, (width, height) in RESOLUTIONS.items():
        path = make_clip(
            args.work_dir / f"{name}_{args.seconds}s_{args.fps}fps.mp4",
            width,
            height,
            args.seconds,
            args.fps,
        )
        megabytes = path.stat().st_size / 1e6
        for label, config in configs.items():
            wall, cpu, kept = time_sampling(path, config, args.repeats)
            print(
                f"| {name} | {megabytes:.1f} | {label} | {kept} | {wall:.2f} | "
                f"{args.seconds / wall:.0f} | {cpu:.2f} |",
                flush=True,
            )
        keyframes, wall = time_keyframes(path, args.repeats)
        print(
            f"| {name} | {megabytes:.1f} | keyframes only (skip_frame=NONKEY, raw decode) | "
            f"{keyframes} | {wall:.2f} | {args.seconds / wall:.0f} | |",
            flush=True,
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def time_keyframes(path: Path, repeats: int) -> tuple[int, float]:
    """Keyframes in the clip and the median wall seconds to decode only them: the floor a
    keyframe-only sampler would cost, and how sparse keyframes are (x264 puts one at each cut
    and at least every 250 frames)."""
    walls, count = [], 0
    for _ in range(repeats):
        wall0 = time.perf_counter()
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            stream.codec_context.skip_frame = "NONKEY"
            count = sum(1 for _ in container.decode(stream))
        walls.append(time.perf_counter() - wall0)
    return count, statistics.median(walls)


if __name__ == "__main__":
    main()
