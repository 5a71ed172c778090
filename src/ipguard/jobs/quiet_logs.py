"""One line per fact in a job's log: the known noise of the training stack, removed at job start.

Logs are for reading, so what a user cannot act on goes, and nothing else does:

- Lightning attaches its own console handler to the ``lightning`` logger *and* lets records
  propagate, so once Hydra has configured the root logger (every CLI run) each Lightning INFO
  line is printed twice, once per handler. When the root logger has handlers, Lightning's
  console handler is the one dropped: Hydra's handlers also write the run folder's log file.
- Lightning 2.6 builds ``torch.utils._pytree.LeafSpec`` objects, which torch 2.10 deprecates
  with a ``FutureWarning`` at every dataloader pass; the fix is Lightning's to make.
- pandera imports ``pyspark.pandas`` for its Spark backend when PySpark is installed, which
  warns that PySpark does not support pandas 3 even though validation runs on pandas alone
  (:mod:`ipguard.data.pandera_import` silences the import; the backend can load later).
- The ONNX exporter (``onnxscript``, ``onnx_ir``) logs each of its graph passes at INFO and
  warns about dynamic-axis names it merges; ipguard checks the exported graph's outputs
  against the network's (:mod:`ipguard.serving.onnx`), which is the fact worth a line.
- MLflow draws a progress bar for the few small files it reads back while logging a model
  (``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR``, left alone when the user set it).

Each warning is filtered by its message *and* category, so a different warning from the same
place still shows.
"""

from __future__ import annotations

import logging
import os
import warnings

# (message regex matched at the start of the warning text, category)
KNOWN_NOISE: tuple[tuple[str, type[Warning]], ...] = (
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning),
    (r"PySpark does not yet fully support pandas", FutureWarning),
    (r"# The axis name: .* will not be used, since it shares the same shape", UserWarning),
)
# loggers that narrate a library's internals, raised to ERROR
CHATTY_LOGGERS = ("onnxscript", "onnx_ir")


def quiet_logs() -> None:
    """Drop Lightning's duplicate console handler, filter :data:`KNOWN_NOISE` and raise
    :data:`CHATTY_LOGGERS`; idempotent. Call it once Lightning is imported."""
    drop_duplicate_lightning_handler()
    for message, category in KNOWN_NOISE:
        warnings.filterwarnings("ignore", message=message, category=category)
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def drop_duplicate_lightning_handler() -> None:
    """Remove the ``lightning`` logger's console handlers when the root logger prints too."""
    if not logging.getLogger().handlers:
        return  # a notebook or plain script: Lightning's handler is the only one that prints
    lightning = logging.getLogger("lightning")
    for handler in list(lightning.handlers):
        if type(handler) is logging.StreamHandler:  # not a FileHandler a user added
            lightning.removeHandler(handler)
