"""The storefront record both demo generators draw listings from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Market:
    """A storefront: its country, its main language, its currency, and its share of listings."""

    country: str
    language: str
    currency: str
    weight: float
