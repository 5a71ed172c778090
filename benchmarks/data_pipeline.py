"""The design's two training-speed quality bars, measured on the default image model.

Run (inside the CPU lock on a shared machine)::

    flock /tmp/ipguard-cpu.lock python benchmarks/data_pipeline.py [--n 2000] [--batches 20]
        [--warmup 5] [--steps 30] [--repeats 3] [--backbone resnet18] [--work-dir DIR]

1. **The data pipeline never starves the model** (target: live within 10% of cached). One
   training epoch of ``--batches`` batches (resnet18, 128 px, batch 32, AdamW; a plain loop,
   so only the data source differs) is timed three ways: live decoding + the ``standard``
   albumentations recipe through :class:`ListingDataModule` with ``num_workers=0`` and ``2``,
   and on cached tensors (the same batches decoded once beforehand, iterated from memory).
   The loader is also timed alone, without a model: its CPU cost per image is what decides
   how many workers a faster accelerator would need.
2. **Lightning costs at most 5% over plain PyTorch.** The same :class:`ImageClassifier`, the
   same cached batches and the same AdamW; ``trainer.fit`` (no progress bar, logger or
   checkpointing; the model's own metric updates and ``self.log`` calls stay, they are its
   defaults) against a hand-written loop of forward, loss, backward, step. Steady state:
   ``--steps`` steps timed after ``--warmup``, from the start of the first timed step to the
   start of the step after the last (data fetch and every hook included).

Runs alternate (cached, live, live, cached, ...; plain, Lightning, plain, ...) so a change in
machine load hits all of them, and each figure is a median over ``--repeats``. Wall time is
what the bars are about; CPU time (this process plus its reaped DataLoader workers) is shown
next to it because on a shared machine it moves far less with other people's load, and the
1-minute load average says how busy the machine was. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch

_IMAGE_SIZE = 128
_BATCH_SIZE = 32
_EPOCH_TARGET = 1.10
_LIGHTNING_TARGET = 1.05


@dataclass
class Timings:
    """Wall and CPU seconds of one kind of run, one value per repeat, plus the machine load."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    load: list[float] = field(default_factory=list)

    def add(self, wall: float, cpu: float, load: float) -> None:
        self.wall.append(wall)
        self.cpu.append(cpu)
        self.load.append(load)

    @property
    def wall_median(self) -> float:
        return statistics.median(self.wall)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)


def _clock() -> tuple[float, float]:
    """(wall, CPU of this process and of its children that have exited)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    return time.perf_counter(), cpu


# --- data and model ------------------------------------------------------------------------


def _data_module(demo_dir: Path, n: int, workers: int):
    """The training data path exactly as ``ipguard-train`` builds it, images only."""
    from ipguard.data.datamodule import ListingDataModule
    from ipguard.demo.listings import ensure_demo_data

    dm = ListingDataModule(
        str(ensure_demo_data(demo_dir, n=n).manifest_path),
        split={"strategy": "random", "seed": 0},  # which rows train does not matter here
        batch_size=_BATCH_SIZE,
        num_workers=workers,
        image_size=_IMAGE_SIZE,
        modalities=("image",),
    )
    dm.prepare_data()
    dm.setup("fit")
    return dm


def _model(backbone: str):
    from ipguard.models.image_classifier import ImageClassifier

    torch.manual_seed(0)
    return ImageClassifier(backbone, image_size=_IMAGE_SIZE, scheduler="none")


def _cached(loader: Any, n_batches: int) -> list[dict[str, Any]]:
    """``n_batches`` batches decoded and augmented once, kept as tensors in memory."""
    out = []
    for batch in loader:
        out.append(batch)
        if len(out) == n_batches:
            break
    if len(out) < n_batches:
        raise SystemExit(f"the training split has only {len(out)} batches; lower --batches")
    return out


def _from_memory(batches: list[dict[str, Any]]):
    """A DataLoader over pre-made batches (``batch_size=None``: no re-collation)."""
    from torch.utils.data import DataLoader

    return DataLoader(batches, batch_size=None, shuffle=False)


# --- loops -----------------------------------------------------------------------------------


def plain_step_clocks(
    model: Any, batches: Iterable[dict[str, Any]], n_steps: int
) -> list[tuple[float, float]]:
    """A hand-written training loop; the clock at the start of each step and after the last."""
    from ipguard.models.losses import binary_loss

    model.train()
    optimizer = model.configure_optimizers()
    hp = model.hparams
    clocks: list[tuple[float, float]] = []
    iterator = iter(batches)
    for _ in range(n_steps):
        clocks.append(_clock())
        batch = next(iterator)
        logits = model.logits(batch)
        loss = binary_loss(
            logits,
            batch["label"].float(),
            kind=hp.loss,
            pos_weight=hp.pos_weight,
            focal_gamma=hp.focal_gamma,
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    del iterator  # DataLoader workers shut down (and are reaped) inside the epoch
    clocks.append(_clock())
    return clocks


class StepClock(L.Callback):
    """Notes the clock when each training batch starts (data fetch and hooks included)."""

    def __init__(self) -> None:
        self.clocks: list[tuple[float, float]] = []

    def on_train_batch_start(self, *args: Any) -> None:
        self.clocks.append(_clock())


def lightning_step_clocks(model: Any, loader: Any, n_steps: int) -> list[tuple[float, float]]:
    clock = StepClock()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=n_steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        logger=False,
        callbacks=[clock],
    )
    trainer.fit(model, train_dataloaders=loader)
    return clock.clocks


def _span(clocks: list[tuple[float, float]], first: int, last: int) -> tuple[float, float]:
    """Wall and CPU seconds from the start of step ``first`` to the start of step ``last``."""
    return clocks[last][0] - clocks[first][0], clocks[last][1] - clocks[first][1]


def loader_alone(loader: Any, n_batches: int) -> tuple[float, float]:
    """Wall and CPU seconds to fetch ``n_batches`` batches with no model at all."""
    start = _clock()
    iterator = iter(loader)
    for _ in range(n_batches):
        next(iterator)
    del iterator
    end = _clock()
    return end[0] - start[0], end[1] - start[1]


# --- report ----------------------------------------------------------------------------------


def _verdict(ratio: float, target: float) -> str:
    return "met" if ratio <= target else "MISSED"


def _row(name: str, t: Timings, reference: float, target: float | None, digits: int = 2) -> str:
    ratio = t.wall_median / reference
    verdict = "-" if target is None else _verdict(ratio, target)
    walls = ", ".join(f"{v:.{digits}f}" for v in t.wall)
    return (
        f"| {name} | {walls} | {t.wall_median:.{digits}f} | {ratio:.3f}x "
        f"| {t.cpu_median:.{digits}f} | {statistics.median(t.load):.1f} | {verdict} |"
    )


_HEAD = "| wall (s), per repeat | median | vs {ref} | CPU (s), median | load avg | bar |"
_ALIGN = "| --- | --- | ---: | ---: | ---: | ---: | --- |"


def pipeline_bar(
    args: argparse.Namespace, loaders: dict[int, Any], cached: list, setup: str
) -> None:
    """Bar 1: one epoch with live decoding vs on cached tensors, and the loader alone."""
    sources: dict[str, Callable[[], Any]] = {
        "cached tensors": lambda: _from_memory(cached[: args.batches]),
        "live decode + augment, num_workers=0": lambda: loaders[0],
        "live decode + augment, num_workers=2": lambda: loaders[2],
    }
    epochs = {name: Timings() for name in sources}
    alone = {w: Timings() for w in loaders}
    model = _model(args.backbone)
    plain_step_clocks(model, _from_memory(cached[:3]), 3)  # allocator and kernel warm-up
    for _ in range(args.repeats):
        for name, make in sources.items():
            load = os.getloadavg()[0]
            clocks = plain_step_clocks(model, make(), args.batches)
            epochs[name].add(*_span(clocks, 0, args.batches), load)
            print(f"  {name:<40} {epochs[name].wall[-1]:.2f} s", file=sys.stderr)
        for w, loader in loaders.items():
            alone[w].add(*loader_alone(loader, args.batches), os.getloadavg()[0])

    print(f"### Data pipeline: one epoch of {args.batches} training steps ({setup})\n")
    print("| data source " + _HEAD.format(ref="cached"))
    print(_ALIGN)
    cached_wall = epochs["cached tensors"].wall_median
    for name, t in epochs.items():
        print(_row(name, t, cached_wall, None if name == "cached tensors" else _EPOCH_TARGET))
    print(f"\n### The loader alone, {args.batches} batches of {_BATCH_SIZE}, no model\n")
    print("| num_workers | wall ms/batch (median) | images/s | CPU ms/image (median) |")
    print("| ---: | ---: | ---: | ---: |")
    images = args.batches * _BATCH_SIZE
    for w, t in alone.items():
        print(
            f"| {w} | {1000 * t.wall_median / args.batches:.0f} | {images / t.wall_median:.0f} "
            f"| {1000 * t.cpu_median / images:.1f} |"
        )


def lightning_bar(args: argparse.Namespace, cached: list, setup: str) -> None:
    """Bar 2: steady-state step time of trainer.fit vs a plain loop, same model and batches."""
    memory = _from_memory(cached)
    n_steps = args.warmup + args.steps + 1
    loops: dict[str, Callable[[Any, Any, int], list[tuple[float, float]]]] = {
        "plain PyTorch loop": plain_step_clocks,
        "Lightning trainer.fit": lightning_step_clocks,
    }
    per_step = {name: Timings() for name in loops}
    for repeat in range(args.repeats):
        # plain, Lightning, Lightning, plain, ...: a drift in machine load favours neither
        order = list(loops.items())
        for name, loop in order if repeat % 2 == 0 else order[::-1]:
            load = os.getloadavg()[0]
            clocks = loop(_model(args.backbone), memory, n_steps)
            wall, cpu = _span(clocks, args.warmup, args.warmup + args.steps)
            per_step[name].add(wall / args.steps, cpu / args.steps, load)
            print(f"  {name:<40} {per_step[name].wall[-1]:.3f} s/step", file=sys.stderr)

    print(f"\n### Training step, {args.steps} steps after {args.warmup} warm-up ({setup})\n")
    print("| loop " + _HEAD.format(ref="plain").replace("(s)", "(s/step)"))
    print(_ALIGN)
    plain, lightning = per_step["plain PyTorch loop"], per_step["Lightning trainer.fit"]
    for name, t in per_step.items():
        target = None if t is plain else _LIGHTNING_TARGET
        print(_row(name, t, plain.wall_median, target, digits=3))
    paired = [lt / pt for pt, lt in zip(plain.wall, lightning.wall, strict=True)]
    print(
        f"\nLightning / plain by CPU time: {lightning.cpu_median / plain.cpu_median:.3f}x; "
        f"wall, paired within each repeat: {', '.join(f'{r:.3f}' for r in paired)} "
        f"(median {statistics.median(paired):.3f}x); {args.repeats} repeats, alternating."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="demo listings")
    parser.add_argument("--batches", type=int, default=20, help="batches per timed epoch")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument(
        "--part", choices=("all", "pipeline", "lightning"), default="all", help="bar 1, 2 or both"
    )
    args = parser.parse_args()
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*no `val_dataloader`.*")
    work = (args.work_dir or Path(tempfile.mkdtemp(prefix="ipguard-pipeline-"))).resolve()
    setup = (
        f"{args.backbone}, {_IMAGE_SIZE} px, batch {_BATCH_SIZE}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} intra-op threads, {os.cpu_count()} CPUs"
    )
    print(setup, file=sys.stderr)
    loaders = {w: _data_module(work / "demo", args.n, w).train_dataloader() for w in (0, 2)}
    cached = _cached(loaders[0], max(args.batches, args.warmup + args.steps + 1))
    if args.part in ("all", "pipeline"):
        pipeline_bar(args, loaders, cached, setup)
    if args.part in ("all", "lightning"):
        lightning_bar(args, cached, setup)


if __name__ == "__main__":
    main()
