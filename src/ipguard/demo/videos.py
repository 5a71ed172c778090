"""Deterministic synthetic short videos and livestream recordings, with a video manifest.

Video screening has to be built and tested offline, in CI, on clips whose truth is known to the
frame, so the clips are rendered, not filmed: the listing demo's products and marks
(:mod:`ipguard.demo.photos`) in a seller's scene, seen through a moving camera (a slow pan
and zoom with a little hand shake), H.264-encoded with PyAV. The story (docs/video.md):

- an infringing short video shows a counterfeit mark (a misspelt, recoloured or distorted
  imitation, :func:`ipguard.demo.listings._fake_logo`) or a "REPLICA"-style stamp for part of
  the clip, the span recorded in ``infringement_spans``; or it looks genuine and only the
  seller's words give it away (counterfeit wording in the market's language,
  :mod:`ipguard.demo.texts`); or both;
- genuine videos include the hard cases: the true mark in a close-up, a reseller's sale
  sticker appearing for part of the clip, honest "100% original" claims, reseller wording;
- a livestream is longer and shows one item after another (hard cuts); an infringing one
  shows a counterfeit item from a known time on, for one segment, so time to decision can be
  measured; a clean one never does.

``truth.csv`` holds the generator's facts per clip (pattern, cues, span), for analysis only,
never a model input. Same parameters, same bytes: every clip has its own random stream, and the
encoder runs single-threaded with fixed settings.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image

from ipguard.data.columns import LABELS
from ipguard.data.video_columns import VIDEO_COLUMNS
from ipguard.data.videos import format_spans
from ipguard.demo.listings import (
    _COLOUR_RGB,
    _MARK_DEFECTS,
    BRANDS,
    MARKETS,
    Brand,
    _atomic_write,
    _csv_bytes,
    _fake_logo,
)
from ipguard.demo.photos import (
    SALE_TEXTS,
    STAMP_TEXTS,
    ImageSpec,
    LogoStyle,
    PhotoStyle,
    ProductShot,
    render_image,
)
from ipguard.demo.texts import TextPlan, compose_text

log = logging.getLogger(__name__)

GENERATOR = "ipguard.demo.videos"
GENERATOR_VERSION = 1
STAMP_FILE = "videos.json"
INFRINGING_SHARE = 0.45
TRUTH_COLUMNS: tuple[str, ...] = (
    "video_id",
    "kind",
    "label",
    "brand",
    "pattern",
    "visual_cue",
    "text_cue",
    "hard_case",
    "span_start_s",
    "span_end_s",
    "duration_s",
    "fps",
    "frames",
)
_PATTERNS = {"visual_only": 0.4, "transcript_only": 0.3, "visual_and_transcript": 0.3}
_BACKGROUNDS = ("solid", "gradient", "stripes", "studio")
_EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)
_SCENE_SCALE = 2  # scenes are rendered at twice the frame size, so the camera can move in them
# One thread and x264's plain C code: with its SIMD code (and on several threads) x264 wrote
# different bytes for the same frames now and then in repeated runs, here on one machine; plain
# C is also the same on every CPU. The clips are small enough for it to cost little.
_ENCODER = {"crf": "30", "preset": "veryfast", "threads": "1", "x264-params": "asm=0"}


@dataclass(frozen=True)
class DemoVideos:
    """Where a generated demo video set lives: ``videos.csv`` (the manifest), ``truth.csv``
    and ``clips/<video_id>.mp4``; ``n`` short videos and ``livestreams`` recordings."""

    root: Path
    manifest_path: Path
    truth_path: Path
    clips_dir: Path
    n: int
    livestreams: int


@dataclass(frozen=True)
class _Segment:
    """What the camera shows from frame ``start`` up to (not including) frame ``end``."""

    start: int
    end: int
    spec: ImageSpec
    scene_seed: int  # segments of one item share it: same scene, only the mark or stamp differs


@dataclass
class _Clip:
    video_id: str
    kind: str
    infringing: bool
    brand: Brand
    market_index: int
    seller_id: str
    frames: int
    pattern: str = ""
    visual_cue: str = ""
    text_cue: str = ""
    hard_cases: list[str] = field(default_factory=list)
    segments: list[_Segment] = field(default_factory=list)
    span: tuple[int, int] | None = None  # frames
    transcript: str = ""
    recorded_at: datetime = _EPOCH


# --- planning ------------------------------------------------------------------------------------


def _photo_style(rng: np.random.Generator) -> PhotoStyle:
    red, green, blue = (int(c) for c in rng.integers(90, 235, size=3))
    background = _BACKGROUNDS[int(rng.integers(len(_BACKGROUNDS)))]
    return PhotoStyle(background, (red, green, blue), float(rng.uniform(0.0, 2.0)), 90, 6.0)


def _shot(brand: Brand, colour_key: str, logo: LogoStyle | None = None) -> ProductShot:
    return ProductShot(brand.category, _COLOUR_RGB[colour_key], logo or brand.logo)


def _item_specs(
    brand: Brand, colour: str, photo: PhotoStyle, cue: str, rng: np.random.Generator
) -> tuple[ImageSpec, ImageSpec]:
    """(the item as it should look, the item with ``cue``): a fake mark, a stamp or a sticker."""
    true = ImageSpec((_shot(brand, colour),), photo)
    if cue == "fake_mark":
        defect = _MARK_DEFECTS[int(rng.integers(len(_MARK_DEFECTS)))]
        return true, ImageSpec((_shot(brand, colour, _fake_logo(brand, defect, rng)),), photo)
    if cue == "stamp":
        text = STAMP_TEXTS[int(rng.integers(len(STAMP_TEXTS)))]
        return true, ImageSpec(true.shots, photo, "stamp", text)
    if cue == "sale_sticker":
        text = SALE_TEXTS[int(rng.integers(len(SALE_TEXTS)))]
        return true, ImageSpec(true.shots, photo, "sale_sticker", text)
    return true, true


def _colourway(brand: Brand, rng: np.random.Generator) -> str:
    return brand.colourways[int(rng.integers(len(brand.colourways)))]


def _spoken(
    clip: _Clip,
    brand: Brand,
    colour: str,
    rng: np.random.Generator,
    *,
    counterfeit: bool,
    hard: bool,
) -> str:
    """What the seller says about one item, in the market's language."""
    claims = hard and rng.random() < 0.6
    reseller = hard and not claims
    plan = TextPlan(
        language=MARKETS[clip.market_index].language,
        brand=brand.name,
        category=brand.category,
        line=brand.lines[int(rng.integers(len(brand.lines)))],
        colour_key=colour,
        counterfeit_words="both" if counterfeit else "",
        reseller=reseller,
        claims_original=claims,
    )
    if claims:
        clip.hard_cases.append("claims_original")
    if reseller:
        clip.hard_cases.append("reseller_wording")
    text = compose_text(plan, rng)
    return f"{text.title}. {text.description}"


def _plan_short(clip: _Clip, photo: PhotoStyle, rng: np.random.Generator) -> None:
    n = clip.frames
    start = int(rng.integers(max(1, n // 6), max(2, n // 2)))
    end = min(n, start + max(2, int(n * rng.uniform(0.25, 0.5))))
    visual = transcript_cue = False
    cue = ""
    if clip.infringing:
        clip.pattern = _pick(_PATTERNS, rng)
        visual = clip.pattern != "transcript_only"
        transcript_cue = clip.pattern != "visual_only"
        cue = ("fake_mark", "stamp")[int(rng.random() < 0.4)] if visual else ""
    else:
        clip.pattern = "genuine"
        if rng.random() < 0.3:
            cue = "sale_sticker"
            clip.hard_cases.append("sale_sticker")
        if rng.random() < 0.3:
            clip.hard_cases.append("true_mark_closeup")
    colour = _colourway(clip.brand, rng)
    true, shown = _item_specs(clip.brand, colour, photo, cue, rng)
    scene = int(rng.integers(2**31))
    if cue:
        clip.segments = [
            _Segment(0, start, true, scene),
            _Segment(start, end, shown, scene),
            _Segment(end, n, true, scene),
        ]
    else:
        clip.segments = [_Segment(0, n, true, scene)]
    if visual:
        clip.visual_cue, clip.span = cue, (start, end)
    clip.text_cue = "counterfeit_wording" if transcript_cue else ""
    silent = not transcript_cue and rng.random() < 0.1
    hard = not clip.infringing and rng.random() < 0.4
    clip.transcript = (
        ""
        if silent
        else _spoken(clip, clip.brand, colour, rng, counterfeit=transcript_cue, hard=hard)
    )


def _plan_livestream(clip: _Clip, photo: PhotoStyle, rng: np.random.Generator) -> None:
    """Items one after another; an infringing stream shows a counterfeit one from a known time."""
    n = clip.frames
    cuts = [0]
    while cuts[-1] < n:
        cuts.append(min(n, cuts[-1] + max(2, int(n * rng.uniform(0.15, 0.3)))))
    if n - cuts[-2] < 2 and len(cuts) > 2:  # no sliver at the end
        cuts.pop(-2)
    items = len(cuts) - 1
    bad = int(rng.integers(1, items)) if clip.infringing and items > 1 else -1
    if clip.infringing and bad < 0:
        bad = 0
    sticker = int(rng.integers(items)) if not clip.infringing and rng.random() < 0.5 else -1
    clip.pattern = "counterfeit_item" if clip.infringing else "genuine"
    spoken = []
    for k in range(items):
        brand = clip.brand if k == bad else BRANDS[int(rng.integers(len(BRANDS)))]
        cue = ("fake_mark", "stamp")[int(rng.random() < 0.4)] if k == bad else ""
        if k == sticker:
            cue = "sale_sticker"
            clip.hard_cases.append("sale_sticker")
        colour = _colourway(brand, rng)
        true, shown = _item_specs(brand, colour, photo, cue, rng)
        scene = int(rng.integers(2**31))
        clip.segments.append(_Segment(cuts[k], cuts[k + 1], shown if cue else true, scene))
        says = k == bad and rng.random() < 0.5
        if says:
            clip.text_cue = "counterfeit_wording"
        spoken.append(_spoken(clip, brand, colour, rng, counterfeit=says, hard=k == sticker))
        if k == bad:
            clip.visual_cue, clip.span = cue, (cuts[k], cuts[k + 1])
    clip.transcript = " ".join(spoken)


def _pick(options: dict[str, float], rng: np.random.Generator) -> str:
    keys = list(options)
    weights = np.array([options[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=weights / weights.sum()))]


def _plan(
    n: int, livestreams: int, seed: int, seconds: tuple[float, float], live_s: float, fps: int
) -> tuple[list[_Clip], dict[str, PhotoStyle]]:
    rng = _stream(seed, 1)
    total = n + livestreams
    sellers = max(2, total // 5)
    honest = [f"VS{k:04d}" for k in range(sellers) if k % 3 != 2]
    dishonest = [f"VS{k:04d}" for k in range(sellers) if k % 3 == 2] or honest
    photos = {s: _photo_style(rng) for s in honest + dishonest}
    weights = np.array([m.weight for m in MARKETS])
    home = {s: int(rng.choice(len(MARKETS), p=weights / weights.sum())) for s in photos}
    labels = _shuffled_labels(n, rng) + _shuffled_labels(livestreams, rng, share=0.5)
    clips = []
    for i, infringing in enumerate(labels):
        kind = "short_video" if i < n else "livestream"
        pool = dishonest if infringing == (rng.random() < 0.85) else honest
        seller = pool[int(rng.integers(len(pool)))]
        length = live_s if kind == "livestream" else float(rng.uniform(*seconds))
        clip = _Clip(
            video_id=f"V{i + 1:05d}",
            kind=kind,
            infringing=infringing,
            brand=BRANDS[int(rng.integers(len(BRANDS)))],
            market_index=home[seller],
            seller_id=seller,
            frames=max(4, round(length * fps)),
            recorded_at=_EPOCH + timedelta(seconds=int(rng.uniform(0, 365) * 86400)),
        )
        clips.append(clip)
    return clips, photos


def _shuffled_labels(
    count: int, rng: np.random.Generator, share: float = INFRINGING_SHARE
) -> list[bool]:
    labels = np.zeros(count, dtype=bool)
    labels[: round(count * share)] = True
    return [bool(x) for x in rng.permutation(labels)]


# --- rendering and encoding ----------------------------------------------------------------------


def _camera(clip: _Clip, size: int, rng: np.random.Generator) -> np.ndarray:
    """Per frame (centre x, centre y, crop side) in scene pixels: pan, zoom, hand shake and,
    for some clips, a push-in close-up on the product for part of the clip."""
    scene = size * _SCENE_SCALE
    t = np.arange(clip.frames, dtype=np.float64)
    period = max(8.0, clip.frames * rng.uniform(0.6, 1.4))
    zoom = rng.uniform(1.15, 1.4) + rng.uniform(0.0, 0.15) * np.sin(
        2 * math.pi * t / period + rng.uniform(0, 2 * math.pi)
    )
    if "true_mark_closeup" in clip.hard_cases or rng.random() < 0.15:
        a = int(rng.integers(0, max(1, clip.frames // 2)))
        b = min(clip.frames, a + max(2, clip.frames // 3))
        zoom[a:b] += np.sin(np.linspace(0, math.pi, b - a)) * rng.uniform(0.8, 1.2)
    side = scene / zoom
    shake = np.cumsum(rng.normal(0.0, 0.25, size=(clip.frames, 2)), axis=0) * 0.5
    swing = rng.uniform(0.03, 0.1, size=2) * scene
    phase = rng.uniform(0, 2 * math.pi, size=2)
    cx = scene / 2 + swing[0] * np.sin(2 * math.pi * t / period + phase[0]) + shake[:, 0]
    cy = scene / 2 + swing[1] * np.sin(2 * math.pi * t / (1.3 * period) + phase[1]) + shake[:, 1]
    cx = np.clip(cx, side / 2, scene - side / 2)
    cy = np.clip(cy, side / 2, scene - side / 2)
    return np.stack([cx, cy, side], axis=1)


def _frames(clip: _Clip, size: int, seed: int, index: int) -> Iterator[np.ndarray]:
    """The clip's RGB frames, one HxWx3 uint8 array at a time (never the whole clip)."""
    camera = _camera(clip, size, _stream(seed, 2, index))
    for segment in clip.segments:
        scene_rng = _stream(seed, 3, segment.scene_seed)
        scene = render_image(segment.spec, size * _SCENE_SCALE, scene_rng)
        for f in range(segment.start, segment.end):
            cx, cy, side = camera[f]
            box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
            yield np.asarray(scene.resize((size, size), Image.Resampling.BILINEAR, box=box))


def _stream(seed: int, *key: int) -> np.random.Generator:
    """An own random stream per purpose and clip, so one clip never depends on another."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


_RGB_TO_YUV = (
    np.array([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]])
    / 255.0
)


def _yuv420p(pixels: np.ndarray) -> np.ndarray:
    """RGB -> planar YUV 4:2:0 (BT.601, limited range) in numpy, in the layout PyAV takes.

    Done here rather than by FFmpeg's scaler, whose SIMD code may differ between CPUs, so the
    encoder's input is the same everywhere ("same seed, same bytes").
    """
    height, width, _ = pixels.shape
    yuv = pixels.astype(np.float64) @ _RGB_TO_YUV.T + np.array([16.0, 128.0, 128.0])
    luma = yuv[:, :, 0]
    chroma = yuv[:, :, 1:].reshape(height // 2, 2, width // 2, 2, 2).mean(axis=(1, 3))
    planes = [luma.ravel(), chroma[:, :, 0].ravel(), chroma[:, :, 1].ravel()]
    flat = np.clip(np.rint(np.concatenate(planes)), 0, 255).astype(np.uint8)
    return flat.reshape(height * 3 // 2, width)


def _encode(path: Path, frames: Iterable[np.ndarray], size: int, fps: int) -> None:
    """H.264 in MP4 with the index first (+faststart), a keyframe every 2 s, written atomically."""
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=fps, options=dict(_ENCODER))
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = 2 * fps
        for i, pixels in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(_yuv420p(pixels), format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    os.replace(tmp, path)


# --- the whole set -------------------------------------------------------------------------------


def _check_parameters(
    n: Any, seed: Any, size: Any, seconds: Any, fps: Any, livestreams: Any, live_s: Any
) -> tuple[float, float]:
    def is_int(value: Any) -> bool:
        return isinstance(value, (int, np.integer)) and not isinstance(value, bool)

    if not is_int(n) or n < 1:
        raise ValueError(f"demo videos parameter n: expected an integer >= 1, found {n!r}")
    if not is_int(seed) or seed < 0:
        raise ValueError(f"demo videos parameter seed: expected an integer >= 0, found {seed!r}")
    if not is_int(size) or not 32 <= size <= 512 or size % 2:
        raise ValueError(
            f"demo videos parameter size: expected an even integer in [32, 512], found {size!r}"
        )
    if not is_int(fps) or not 1 <= fps <= 60:
        raise ValueError(
            f"demo videos parameter fps: expected an integer in [1, 60], found {fps!r}"
        )
    if not is_int(livestreams) or livestreams < 0:
        raise ValueError(
            f"demo videos parameter livestreams: expected an integer >= 0, found {livestreams!r}"
        )
    low, high = (seconds, seconds) if isinstance(seconds, (int, float)) else tuple(seconds)
    if not 1.0 <= float(low) <= float(high):
        raise ValueError(
            "demo videos parameter seconds: expected a length or a (shortest, longest) range "
            f"of at least 1 s, found {seconds!r}"
        )
    if not isinstance(live_s, (int, float)) or live_s < 4:
        raise ValueError(
            f"demo videos parameter livestream_seconds: expected >= 4 seconds, found {live_s!r}"
        )
    return float(low), float(high)


def _stamp(**parameters: Any) -> dict[str, Any]:
    return {"generator": GENERATOR, "version": GENERATOR_VERSION, **parameters}


def generate_demo_videos(
    out_dir: str | Path,
    n: int = 120,
    seed: int = 0,
    *,
    size: int = 96,
    seconds: float | tuple[float, float] = (6.0, 20.0),
    fps: int = 8,
    livestreams: int = 12,
    livestream_seconds: float = 60.0,
) -> DemoVideos:
    """Write ``n`` short videos and ``livestreams`` recordings under ``out_dir``.

    Writes clips/<video_id>.mp4 (``size`` x ``size`` pixels, ``fps`` frames a second; short
    videos last between the two ``seconds``, livestreams ``livestream_seconds``), videos.csv
    (the video manifest), truth.csv (the generator's facts per clip) and, last, videos.json,
    the stamp that marks the set complete. Clips left by an earlier, larger set are removed.
    """
    low, high = _check_parameters(n, seed, size, seconds, fps, livestreams, livestream_seconds)
    started = time.perf_counter()
    root = Path(out_dir)
    clips_dir = root / "clips"
    clips_dir.mkdir(parents=True, exist_ok=True)
    (root / STAMP_FILE).unlink(missing_ok=True)

    clips, photos = _plan(n, livestreams, seed, (low, high), float(livestream_seconds), fps)
    rows, truth = [], []
    for index, clip in enumerate(clips):
        rng = _stream(seed, 4, index)
        photo = photos[clip.seller_id]
        if clip.kind == "livestream":
            _plan_livestream(clip, photo, rng)
        else:
            _plan_short(clip, photo, rng)
        _encode(clips_dir / f"{clip.video_id}.mp4", _frames(clip, size, seed, index), size, fps)
        rows.append(_manifest_row(clip, fps))
        truth.append(_truth_row(clip, fps))

    wanted = {f"{c.video_id}.mp4" for c in clips}
    for path in clips_dir.glob("V*.mp4"):
        if path.name not in wanted:
            path.unlink()
    _atomic_write(root / "truth.csv", _csv_bytes(TRUTH_COLUMNS, truth))
    _atomic_write(root / "videos.csv", _csv_bytes(VIDEO_COLUMNS, rows))
    stamp = _stamp(
        n=n, seed=seed, size=size, seconds=[low, high], fps=fps, livestreams=livestreams,
        livestream_seconds=float(livestream_seconds),
    )  # fmt: skip
    stamp["counts"] = {
        "label": dict(sorted(Counter(r[7] for r in rows).items())),
        "kind": dict(sorted(Counter(r[10] for r in rows).items())),
        "bytes": sum((clips_dir / f"{c.video_id}.mp4").stat().st_size for c in clips),
    }
    _atomic_write(root / STAMP_FILE, (json.dumps(stamp, indent=2) + "\n").encode("utf-8"))
    log.info("demo videos: %d clips written to %s in %.1f s", len(clips), root,
             time.perf_counter() - started)  # fmt: skip
    return DemoVideos(root, root / "videos.csv", root / "truth.csv", clips_dir, n, livestreams)


def _manifest_row(clip: _Clip, fps: int) -> list[str]:
    spans = format_spans([(clip.span[0] / fps, clip.span[1] / fps)]) if clip.span else ""
    return [
        clip.video_id,
        f"clips/{clip.video_id}.mp4",
        clip.transcript,
        "",
        clip.seller_id,
        MARKETS[clip.market_index].country,
        MARKETS[clip.market_index].language,
        LABELS[int(clip.infringing)],
        spans,
        clip.recorded_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        clip.kind,
    ]


def _truth_row(clip: _Clip, fps: int) -> list[str]:
    start, end = (f"{clip.span[0] / fps:g}", f"{clip.span[1] / fps:g}") if clip.span else ("", "")
    return [
        clip.video_id,
        clip.kind,
        LABELS[int(clip.infringing)],
        clip.brand.name,
        clip.pattern,
        clip.visual_cue,
        clip.text_cue,
        "+".join(dict.fromkeys(clip.hard_cases)),
        start,
        end,
        f"{clip.frames / fps:g}",
        str(fps),
        str(clip.frames),
    ]


def ensure_demo_videos(
    out_dir: str | Path, n: int = 120, seed: int = 0, **kwargs: Any
) -> DemoVideos:
    """The demo video set in ``out_dir``, generated only when missing or stale.

    A set counts as present when videos.json matches these parameters and the generator
    version and the manifest, truth.csv and every clip exist; otherwise it is written again,
    so calling this from several entry points costs one generation. Keyword arguments are
    :func:`generate_demo_videos`'.
    """
    defaults = {
        "size": 96, "seconds": (6.0, 20.0), "fps": 8, "livestreams": 12,
        "livestream_seconds": 60.0,
    }  # fmt: skip
    unknown = sorted(set(kwargs) - set(defaults))
    if unknown:
        raise TypeError(
            f"ensure_demo_videos: unknown keyword arguments {unknown}; expected {sorted(defaults)}"
        )
    options = {**defaults, **kwargs}
    low, high = _check_parameters(
        n, seed, options["size"], options["seconds"], options["fps"], options["livestreams"],
        options["livestream_seconds"],
    )  # fmt: skip
    expected = _stamp(
        n=n, seed=seed, size=options["size"], seconds=[low, high], fps=options["fps"],
        livestreams=options["livestreams"],
        livestream_seconds=float(options["livestream_seconds"]),
    )  # fmt: skip
    root = Path(out_dir)
    if _is_complete(root, expected):
        log.info("demo videos: reusing %s", root)
        return DemoVideos(
            root, root / "videos.csv", root / "truth.csv", root / "clips", n, options["livestreams"]
        )
    return generate_demo_videos(root, n, seed, **options)


def _is_complete(root: Path, expected: dict[str, Any]) -> bool:
    try:
        found = json.loads((root / STAMP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(found, dict) or any(found.get(k) != v for k, v in expected.items()):
        return False
    if not all((root / name).is_file() for name in ("videos.csv", "truth.csv")):
        return False
    total = expected["n"] + expected["livestreams"]
    return all((root / "clips" / f"V{i:05d}.mp4").is_file() for i in range(1, total + 1))


def demo_video_manifest(
    out_dir: str | Path, n: int = 120, seed: int = 0, wanted: bool = True
) -> str | None:
    """The demo video manifest in ``out_dir``, generated on first use; ``None`` unless
    ``wanted``. The configs' ``${ipguard.demo_video_manifest:DIR[,N,SEED[,WANTED]]}``, as
    :func:`ipguard.demo.listings.demo_manifest` for listings."""
    if not wanted:
        return None
    return str(ensure_demo_videos(out_dir, n=n, seed=seed).manifest_path)


__all__ = [
    "TRUTH_COLUMNS",
    "DemoVideos",
    "demo_video_manifest",
    "ensure_demo_videos",
    "generate_demo_videos",
]
