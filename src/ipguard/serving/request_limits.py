"""Refuse REST requests too big to be a screening call, with a 400 that names the limit.

``mlflow models serve`` (MLflow 3.17: FastAPI on uvicorn) has no request size limit of its own:
it reads the whole body, parses the JSON and builds the DataFrame before the model sees it, and
the only bound it puts on a request is time (``MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT``, 60 s,
then 504). Without a check here, a 30 MB base64 "image" is decoded in full and a request of
100,000 listings is scored to the end while every other client waits behind it. So the pyfunc
refuses, before any decoding, a request over one of three limits, each set by an environment
variable of the server process (``0`` turns that limit off):

* ``IPGUARD_MAX_REQUEST_ROWS`` listings in one request (default 10,000: Spark's Arrow batch,
  so a ``spark_udf`` run through MLflow's scoring server still fits),
* ``IPGUARD_MAX_IMAGE_BYTES`` decoded bytes of one ``image_b64`` (default 10 MiB: a listing
  photo is a few hundred KB; marketplaces cap uploads near 10 MB),
* ``IPGUARD_MAX_REQUEST_BYTES`` characters of text in all the request's values together
  (default 256 MiB).

The limits bind only inside MLflow's scoring server (MLflow marks its processes with
``_MLFLOW_IS_IN_SERVING_ENVIRONMENT``): in process -- a notebook, the batch job, ``spark_udf``
with ``env_manager="local"`` -- the caller owns its memory, and a huge image is flagged by the
decoder as before. What the body costs before the model sees it is bounded only in front of
the server (a proxy's body limit), see docs/serving.md, "Under load".
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

SERVING_MARKER = "_MLFLOW_IS_IN_SERVING_ENVIRONMENT"
"""Set to ``true`` by MLflow's scoring server (and its stdin server) in the model's process."""

ENV_ROWS = "IPGUARD_MAX_REQUEST_ROWS"
ENV_IMAGE_BYTES = "IPGUARD_MAX_IMAGE_BYTES"
ENV_REQUEST_BYTES = "IPGUARD_MAX_REQUEST_BYTES"
_MIB = 2**20


class RequestTooLarge(ValueError):
    """A request over one of :class:`RequestLimits`; the message says which and how to raise it."""


@dataclass(frozen=True)
class RequestLimits:
    """Upper bounds on one request; ``0`` means no bound."""

    max_rows: int = 10_000
    max_image_bytes: int = 10 * _MIB
    max_request_bytes: int = 256 * _MIB

    def __post_init__(self) -> None:
        for name in ("max_rows", "max_image_bytes", "max_request_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"RequestLimits.{name} must be an int >= 0; found {value!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RequestLimits:
        """The defaults, overridden by ``IPGUARD_MAX_*`` variables; a bad value is named."""
        env = os.environ if environ is None else environ
        variables = {
            "max_rows": ENV_ROWS,
            "max_image_bytes": ENV_IMAGE_BYTES,
            "max_request_bytes": ENV_REQUEST_BYTES,
        }
        return cls(**limits_from_env(env, variables))


def limits_from_env(env: Mapping[str, str], variables: Mapping[str, str]) -> dict[str, int]:
    """``{field: value}`` for each ``{field: variable}`` set in ``env`` (a whole number >= 0,
    ``_`` allowed as a separator); a bad value raises a ValueError naming the variable."""
    chosen: dict[str, int] = {}
    for name, variable in variables.items():
        raw = env.get(variable, "").strip()
        if not raw:
            continue
        try:
            chosen[name] = int(raw.replace("_", ""))
        except ValueError:
            raise ValueError(
                f"environment variable {variable}={raw!r} is not a whole number "
                "(a count or bytes; 0 turns the limit off)"
            ) from None
        if chosen[name] < 0:
            raise ValueError(f"environment variable {variable}={raw!r} must be >= 0")
    return chosen


def in_scoring_server(environ: Mapping[str, str] | None = None) -> bool:
    """True in a process MLflow's scoring server runs the model in."""
    env = os.environ if environ is None else environ
    return env.get(SERVING_MARKER, "").strip().lower() in ("true", "1")


def checked_request(model_input: Any, check: Callable[[pd.DataFrame], None]) -> pd.DataFrame:
    """The pyfuncs' request as a frame, run through ``check`` when serving over REST: its
    :class:`RequestTooLarge` becomes the MLflow error the scoring server answers with HTTP 400
    and the message. In-process callers (notebooks, batch jobs) are never limited."""
    frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
    if in_scoring_server():
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

        try:
            check(frame)
        except RequestTooLarge as err:
            raise MlflowException(str(err), error_code=INVALID_PARAMETER_VALUE) from None
    return frame


def check_request(frame: pd.DataFrame, limits: RequestLimits) -> None:
    """Raise :class:`RequestTooLarge` if ``frame`` breaks a limit; cost: one pass over its text.

    Rows are checked first (no values read), then each ``image_b64`` (its decoded size is
    3/4 of its length), then all text together.
    """
    rows = len(frame)
    if limits.max_rows and rows > limits.max_rows:
        raise RequestTooLarge(
            f"request has {rows} listings, over the limit of {limits.max_rows} per request "
            f"({ENV_ROWS}); send them in several requests"
        )
    if not (limits.max_image_bytes or limits.max_request_bytes):
        return
    total = 0
    for column in frame.columns:
        values = frame[column].tolist()
        lengths = [len(v) if isinstance(v, str) else 0 for v in values]
        if column == "image_b64" and limits.max_image_bytes:
            _check_images(frame, lengths, limits.max_image_bytes)
        total += sum(lengths)
    if limits.max_request_bytes and total > limits.max_request_bytes:
        raise RequestTooLarge(
            f"request carries {_mib(total)} of text in its values, over the limit of "
            f"{_mib(limits.max_request_bytes)} per request ({ENV_REQUEST_BYTES}); "
            "send fewer listings per request"
        )


def _check_images(frame: pd.DataFrame, lengths: list[int], limit: int) -> None:
    for row, length in enumerate(lengths):
        decoded = length * 3 // 4
        if decoded > limit:
            listing = frame["listing_id"].iloc[row] if "listing_id" in frame.columns else None
            raise RequestTooLarge(
                f"row {row} (listing_id {listing!r}): image_b64 is {length} characters, "
                f"about {_mib(decoded)} decoded, over the limit of {_mib(limit)} per image "
                f"({ENV_IMAGE_BYTES}); send a smaller photo"
            )


def _mib(size: int) -> str:
    return f"{size / _MIB:.2f} MiB"
