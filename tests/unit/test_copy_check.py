"""The copy check on studio photos: one backdrop and framing for every product of a category.

On a studio catalogue most of every photo is the same light backdrop, so a colour agreement
taken over all tiles called any two products of a category alike; these tests pin the cases
that broke it: another item in another colour is no copy, while a copy cut unevenly (a 10%
crop taken mostly from one edge) still is.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ipguard.brands.copies import CopyVerifier, copy_score, copy_signature
from ipguard.demo.references import stolen_copy
from ipguard.demo.studio import Item, Mark, Shot, render_photo

THRESHOLD = 0.75  # model.stolen_threshold's default
MARK = Mark("circle", "VELTRA", (30, 30, 30))
BACKDROP = (236, 236, 232)


def bag(body: tuple[int, int, int], shape: tuple[float, float, float, float]) -> Item:
    return Item("bag", body, (60, 40, 30), (200, 180, 60), "plain", 0.08, 10.0, 0.3, shape, 1, MARK)


def photo(item: Item, *, dx: float = 0.0, angle: float = 0.0) -> Image.Image:
    shot = Shot(dx, -dx, 1.0 + dx, angle, 1.0, 0.0, BACKDROP, 90)
    return render_photo(item, shot, 128)


@pytest.fixture(scope="module")
def official() -> Image.Image:
    return photo(bag((40, 60, 120), (0.5, 0.5, 0.5, 0.5)))


@pytest.mark.parametrize(
    "body,shape",
    [((150, 60, 40), (0.5, 0.5, 0.5, 0.5)), ((150, 60, 40), (0.3, 0.6, 0.7, 0.4))],
    ids=["another colour", "another colour and cut"],
)
def test_another_item_on_the_same_backdrop_is_no_copy(
    official: Image.Image, body: tuple[int, int, int], shape: tuple[float, float, float, float]
) -> None:
    other = photo(bag(body, shape), dx=0.01, angle=1.0)
    assert copy_score(other, copy_signature(official)) < 0.6


@pytest.mark.parametrize("seed", range(4))
def test_an_uneven_crop_of_the_official_photo_is_still_a_copy(
    official: Image.Image, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    copy = stolen_copy(official, rng, crop=0.1, scale=0.6, quality=50)
    assert copy_score(copy, copy_signature(official)) >= THRESHOLD


def test_the_copy_scores_highest_against_its_own_photo(official: Image.Image) -> None:
    sibling = photo(bag((150, 60, 40), (0.5, 0.5, 0.5, 0.5)))
    verifier = CopyVerifier({"own": copy_signature(official), "sibling": copy_signature(sibling)})
    copy = stolen_copy(official, np.random.default_rng(9), crop=0.06, scale=0.7, quality=60)
    assert verifier.score(copy, "own") >= THRESHOLD > verifier.score(copy, "sibling")
