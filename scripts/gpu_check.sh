#!/usr/bin/env bash
# One short check for the day a CUDA machine is at hand (CI has none; the test suite only
# syntax-checks this file). It trains resnet18 at 128 px for one epoch in bf16 on the demo
# data with trainer=gpu, then prints the training throughput and ipguard's summary line.
#
#   scripts/gpu_check.sh                    # run from the repository root
#   BATCH_SIZE=128 NUM_WORKERS=8 scripts/gpu_check.sh
#
# Environment: IPGUARD_HOME (default: a fresh temporary folder, so nothing lands in the
# repository), BATCH_SIZE (64), NUM_WORKERS (4), WARMUP_BATCHES (5: excluded from the
# throughput, they include cuDNN autotuning and worker start-up).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export NO_ALBUMENTATIONS_UPDATE=1 PYTHONUNBUFFERED=1

if [[ -x .venv/bin/python ]]; then
  PY=.venv/bin/python
else
  echo "gpu_check: no .venv yet, running 'make setup'" >&2
  make setup
  PY=.venv/bin/python
fi

if ! "$PY" - <<'EOF'
import sys

import torch

if not torch.cuda.is_available():
    print(
        "gpu_check: no CUDA device visible: torch.cuda.is_available() is False "
        f"(torch {torch.__version__}, built for CUDA {torch.version.cuda}). "
        "Run this on a machine with an NVIDIA GPU and its driver.",
        file=sys.stderr,
    )
    sys.exit(1)
name = torch.cuda.get_device_name(0)
print(f"gpu_check: {torch.cuda.device_count()} CUDA device(s), using {name}")
if not torch.cuda.is_bf16_supported():
    print(f"gpu_check: {name} does not support bf16; trainer=gpu uses bf16-mixed", file=sys.stderr)
    sys.exit(1)
EOF
then
  exit 2
fi

export IPGUARD_HOME="${IPGUARD_HOME:-$(mktemp -d -t ipguard-gpu-check.XXXXXX)}"
echo "gpu_check: IPGUARD_HOME=$IPGUARD_HOME"
.venv/bin/ipguard-demo-data "$IPGUARD_HOME/data/demo" --n 2000 --image-size 128

"$PY" - "${BATCH_SIZE:-64}" "${NUM_WORKERS:-4}" "${WARMUP_BATCHES:-5}" <<'EOF'
import sys
import time

import lightning as L
import torch
from omegaconf import open_dict

from ipguard.config import compose
from ipguard.jobs.train import train

batch_size, num_workers, warmup = (int(a) for a in sys.argv[1:4])


class Throughput(L.Callback):
    """Training images per second after the warm-up batches, CUDA-synchronised."""

    images = 0
    seconds = 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == warmup:
            torch.cuda.synchronize()
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if batch_idx >= warmup:
            Throughput.images += len(batch["label"])
        torch.cuda.synchronize()
        if batch_idx >= warmup:
            Throughput.seconds = time.perf_counter() - self.start


cfg = compose(
    "train",
    [
        "trainer=gpu",
        "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false",
        "model=image",
        "model.backbone=resnet18",
        "data.image_size=128",
        f"data.batch_size={batch_size}",
        f"data.num_workers={num_workers}",
        "run_name=gpu_check",
    ],
)
with open_dict(cfg):
    cfg.callbacks.throughput = {"_target_": "__main__.Throughput"}
result = train(cfg)
if Throughput.images == 0:
    sys.exit(f"gpu_check: the epoch had no more than {warmup} batches; lower WARMUP_BATCHES")
rate = Throughput.images / Throughput.seconds
print(
    f"gpu_check: throughput {rate:.0f} images/s (resnet18, 128 px, bf16-mixed, batch "
    f"{batch_size}, {num_workers} workers; {Throughput.images} images after {warmup} warm-up "
    "batches)"
)
print(result.summary_line())
EOF
