"""Request limits of the REST pyfunc: what is refused, with which message, and only where."""

from __future__ import annotations

import pandas as pd
import pytest

from ipguard.serving.request_limits import (
    ENV_IMAGE_BYTES,
    ENV_REQUEST_BYTES,
    ENV_ROWS,
    SERVING_MARKER,
    RequestLimits,
    RequestTooLarge,
    check_request,
    in_scoring_server,
)


def _frame(n: int, image_chars: int = 8, title: str = "bag") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "listing_id": [f"L{i}" for i in range(n)],
            "title": [title] * n,
            "image_b64": ["A" * image_chars] * n,
        }
    )


def test_a_request_within_every_limit_passes() -> None:
    check_request(_frame(10, image_chars=400), RequestLimits(10, 300, 10_000))


def test_too_many_rows_are_refused_with_the_count_and_the_variable() -> None:
    with pytest.raises(RequestTooLarge, match=rf"11 listings, over the limit of 10 .*{ENV_ROWS}"):
        check_request(_frame(11), RequestLimits(max_rows=10))


def test_an_image_over_its_decoded_limit_names_its_row_and_listing() -> None:
    frame = _frame(3)
    frame.loc[2, "image_b64"] = "A" * 1400  # 1050 bytes decoded
    with pytest.raises(RequestTooLarge, match=rf"row 2 \(listing_id 'L2'\).*{ENV_IMAGE_BYTES}"):
        check_request(frame, RequestLimits(max_image_bytes=1000))
    check_request(frame, RequestLimits(max_image_bytes=1050))  # exactly at the limit


def test_all_text_together_is_bounded_even_when_each_value_is_small() -> None:
    frame = _frame(20, image_chars=100, title="t" * 100)
    with pytest.raises(RequestTooLarge, match=ENV_REQUEST_BYTES):
        check_request(frame, RequestLimits(max_image_bytes=1000, max_request_bytes=3000))


def test_zero_turns_a_limit_off() -> None:
    check_request(_frame(50, image_chars=10_000), RequestLimits(0, 0, 0))


def test_limits_come_from_the_environment_and_bad_values_are_named() -> None:
    limits = RequestLimits.from_env({ENV_ROWS: "64", ENV_IMAGE_BYTES: "1_000", "OTHER": "x"})
    assert (limits.max_rows, limits.max_image_bytes) == (64, 1000)
    assert limits.max_request_bytes == RequestLimits().max_request_bytes
    with pytest.raises(ValueError, match=f"{ENV_REQUEST_BYTES}='lots' is not a whole number"):
        RequestLimits.from_env({ENV_REQUEST_BYTES: "lots"})
    with pytest.raises(ValueError, match=f"{ENV_ROWS}='-1' must be >= 0"):
        RequestLimits.from_env({ENV_ROWS: "-1"})


def test_limits_bind_only_in_mlflows_scoring_server() -> None:
    assert in_scoring_server({SERVING_MARKER: "true"})
    assert not in_scoring_server({})
    assert not in_scoring_server({SERVING_MARKER: "false"})
