"""The demo's brand reference catalog: what each fictional brand would hand the platform.

``<demo root>/brand_catalog/`` is a catalog folder (the second form of
:func:`ipguard.data.reference_catalog.read_brand_catalog`), written next to the listings:

* ``images/<Brand>/photos/<colourway>.png``: the brand's official product photo in each of its
  colourways -- its product with its true mark, centred on a clean studio backdrop, with no
  noise, tilt or props (:func:`ipguard.demo.photos.render_studio_shot`): what a brand supplies,
  and what a scraper steals (:func:`stolen_copy`);
* ``images/<Brand>/logos/mark.png``: the true mark on white
  (:func:`ipguard.demo.photos.render_reference_logo`);
* ``brands.csv``: the brand's local list price in every demo currency, as
  ``brands_by_currency.csv`` has them (:func:`ipguard.demo.listings.local_reference_price`);
* ``sellers.csv``: the sellers the brand has authorised -- about
  :data:`AUTHORISED_SHARE` of the honest sellers that list it, never a reseller, a
  counterfeiter or a mixed seller (seller habits as the generator drew them, from ``cues.csv``);
* ``aliases.csv``: a few misspellings of the name, by the generator's own rules (an honest
  seller's typo, :func:`ipguard.demo.texts.honest_misspelling`, and a counterfeiter's near miss
  of the wordmark), never the parody name, which is another brand's joke rather than this one;
* ``catalog.json``: the stamp, written last, that marks the catalog complete for these listings.

The catalog draws from its own random streams (spawn keys from :data:`_STREAM` on), so the
listings and their images are byte-for-byte what they were before the catalog existed, and a
demo folder generated before it gets the catalog added without its listings being generated
again (:func:`ensure_reference_catalog`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ipguard.data.tabular import brand_key
from ipguard.demo.listings import (
    _COLOUR_RGB,
    BRANDS,
    CATALOG_CURRENCIES,
    Brand,
    _format_price,
    _misspell,
    local_reference_price,
)
from ipguard.demo.photos import ProductShot, render_reference_logo, render_studio_shot
from ipguard.demo.texts import honest_misspelling

__all__ = [
    "AUTHORISED_SHARE",
    "CATALOG_DIR",
    "CATALOG_VERSION",
    "authorised_sellers",
    "brand_aliases",
    "ensure_reference_catalog",
    "official_logo",
    "official_photo",
    "stolen_copy",
    "write_reference_catalog",
]

CATALOG_DIR = "brand_catalog"
CATALOG_VERSION = 1
AUTHORISED_SHARE = 0.4
"""Share of a brand's honest sellers it has authorised (at least one, when it has any)."""
ALIASES_PER_BRAND = 3
# First spawn key of the catalog's random streams; the listing generator uses 0 to 4.
_STREAM = 12
_GENERATOR = "ipguard.demo.references"
_STAMP = "catalog.json"


def _brand(brand: str | Brand) -> Brand:
    if isinstance(brand, Brand):
        return brand
    for candidate in BRANDS:
        if brand_key(candidate.name) == brand_key(brand):
            return candidate
    raise ValueError(
        f"demo brand: expected one of {', '.join(b.name for b in BRANDS)}, found {brand!r}"
    )


def official_photo(
    brand: str | Brand, colourway: str | None = None, *, size: int = 128
) -> Image.Image:
    """The brand's official photo in ``colourway`` (default: its first), as the catalog has it."""
    spec = _brand(brand)
    colour = spec.colourways[0] if colourway is None else colourway
    if colour not in spec.colourways:
        raise ValueError(
            f"{spec.name} colourway: expected one of {', '.join(spec.colourways)}, found {colour!r}"
        )
    return render_studio_shot(ProductShot(spec.category, _COLOUR_RGB[colour], spec.logo), size)


def official_logo(brand: str | Brand, *, size: int = 128) -> Image.Image:
    """The brand's true mark on white, as the catalog has it."""
    return render_reference_logo(_brand(brand).logo, size)


def stolen_copy(
    photo: Image.Image,
    rng: np.random.Generator,
    *,
    crop: float = 0.06,
    scale: float = 0.7,
    quality: int = 60,
    banner: str | None = "SALE",
) -> Image.Image:
    """A photo as a scraper re-uploads it: cropped by ``crop`` of each side (split at random
    between the two edges), resized by ``scale``, with a ``banner`` band of text across the
    top or bottom, and re-encoded as JPEG at ``quality``.

    The copy differs from the original in every byte, and in size, while showing the same
    product: what a stolen-photo match has to see through.
    """
    if not 0.0 <= crop < 0.5:
        raise ValueError(f"stolen_copy: crop must be in [0, 0.5), found {crop}")
    if not 0.0 < scale <= 4.0:
        raise ValueError(f"stolen_copy: scale must be in (0, 4], found {scale}")
    if not 1 <= quality <= 95:
        raise ValueError(f"stolen_copy: quality must be in [1, 95], found {quality}")
    image = photo.convert("RGB")
    width, height = image.size
    cut_w, cut_h = round(crop * width), round(crop * height)
    left, top = int(rng.integers(0, cut_w + 1)), int(rng.integers(0, cut_h + 1))
    image = image.crop((left, top, width - (cut_w - left), height - (cut_h - top)))
    size = (max(8, round(image.width * scale)), max(8, round(image.height * scale)))
    image = image.resize(size, Image.Resampling.BILINEAR)
    if banner:
        band = max(4, round(image.height * 0.16))
        y = 0 if rng.random() < 0.5 else image.height - band
        draw = ImageDraw.Draw(image)
        fill = ((210, 30, 40), (20, 20, 20), (240, 200, 0))[int(rng.integers(3))]
        draw.rectangle((0, y, image.width, y + band), fill=fill)
        font = ImageFont.load_default(size=max(6, int(band * 0.7)))
        draw.text((image.width / 2, y + band / 2), banner, font=font, fill=(255, 255, 255),
                  anchor="mm")  # fmt: skip
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=int(quality))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def authorised_sellers(root: str | Path, seed: int) -> dict[str, tuple[str, ...]]:
    """Per demo brand, the sellers it has authorised: about :data:`AUTHORISED_SHARE` of the
    honest sellers with a listing of it in ``root``'s listings.csv (seller habits from
    cues.csv), drawn from the catalog's own stream for that brand; ids sorted."""
    folder = Path(root)
    with (folder / "cues.csv").open(encoding="utf-8", newline="") as handle:
        kind = {row["listing_id"]: row["seller_kind"] for row in csv.DictReader(handle)}
    honest: dict[str, set[str]] = {b.name: set() for b in BRANDS}
    with (folder / "listings.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if kind.get(row["listing_id"]) == "honest" and row["brand"] in honest:
                honest[row["brand"]].add(row["seller_id"])
    out = {}
    for index, brand in enumerate(BRANDS):
        pool = sorted(honest[brand.name])
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_STREAM, index)))
        k = max(1, round(AUTHORISED_SHARE * len(pool))) if pool else 0
        chosen = rng.choice(len(pool), size=k, replace=False) if k else []
        out[brand.name] = tuple(sorted(pool[int(i)] for i in chosen))
    return out


def brand_aliases(brand: str | Brand, seed: int) -> tuple[str, ...]:
    """A few misspellings of the brand's name (see the module doc), distinct, sorted."""
    spec = _brand(brand)
    index = BRANDS.index(spec)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_STREAM + 1, index)))
    taken = {brand_key(b.name) for b in BRANDS} | {brand_key(spec.parody_name)}
    found: dict[str, str] = {}
    for attempt in range(50):
        if len(found) == ALIASES_PER_BRAND:
            break
        if attempt % 3 == 2:
            alias = _misspell(spec.name.upper(), rng).capitalize()
        else:
            alias = honest_misspelling(spec.name, rng)
        key = brand_key(alias)
        if key not in taken and key not in found:
            found[key] = alias
    return tuple(sorted(found.values()))


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _csv(path: Path, header: tuple[str, ...], rows: list[list[str]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode("utf-8"))


def _stamp(root: Path, seed: int, image_size: int) -> dict[str, Any]:
    listings = hashlib.sha256((root / "listings.csv").read_bytes()).hexdigest()
    return {
        "generator": _GENERATOR,
        "version": CATALOG_VERSION,
        "seed": int(seed),
        "image_size": int(image_size),
        "listings_sha256": listings,
    }


def _write_files(folder: Path, root: Path, seed: int, image_size: int) -> None:
    sellers = authorised_sellers(root, seed)
    prices, references, seller_rows, alias_rows = [], [], [], []
    for brand in BRANDS:
        images = folder / "images" / brand.name
        (images / "photos").mkdir(parents=True, exist_ok=True)
        (images / "logos").mkdir(parents=True, exist_ok=True)
        for colourway in brand.colourways:
            path = f"images/{brand.name}/photos/{colourway}.png"
            (folder / path).write_bytes(_png(official_photo(brand, colourway, size=image_size)))
            references.append([brand.name, "photo", path, f"{brand.name}/photo/{colourway}"])
        path = f"images/{brand.name}/logos/mark.png"
        (folder / path).write_bytes(_png(official_logo(brand, size=image_size)))
        references.append([brand.name, "logo", path, f"{brand.name}/logo/mark"])
        prices += [
            [brand.name, currency, _format_price(local_reference_price(brand, currency), currency)]
            for currency in CATALOG_CURRENCIES
        ]
        seller_rows += [[brand.name, seller] for seller in sellers[brand.name]]
        alias_rows += [[brand.name, alias] for alias in brand_aliases(brand, seed)]
    _csv(folder / "brands.csv", ("brand", "currency", "reference_price"), prices)
    _csv(folder / "references.csv", ("brand", "kind", "image_path", "reference_id"), references)
    _csv(folder / "sellers.csv", ("brand", "seller_id"), seller_rows)
    _csv(folder / "aliases.csv", ("brand", "alias"), alias_rows)


def write_reference_catalog(root: str | Path, *, seed: int, image_size: int) -> Path:
    """Write ``root/brand_catalog/`` for the demo listings in ``root`` (listings.csv and
    cues.csv must be there), replacing an earlier one; returns the folder.

    Written in a temporary folder and moved into place, so a reader (another process
    generating the same demo) never sees half a catalog.
    """
    folder = Path(root)
    target = folder / CATALOG_DIR
    tmp = folder / f".{CATALOG_DIR}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    _write_files(tmp, folder, seed, image_size)
    stamp = _stamp(folder, seed, image_size)
    (tmp / _STAMP).write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
    old = folder / f".{CATALOG_DIR}.old{os.getpid()}"
    if target.exists():
        os.replace(target, old)
    try:
        os.replace(tmp, target)
    except OSError:
        if not _is_complete(target, stamp):  # another process moved its own in first
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    return target


def ensure_reference_catalog(
    root: str | Path, *, seed: int | None = None, image_size: int | None = None
) -> Path:
    """``root/brand_catalog/``, written only when missing or not made for these listings.

    ``seed`` and ``image_size`` default to those in the demo's demo.json.
    """
    folder = Path(root)
    if seed is None or image_size is None:
        demo = json.loads((folder / "demo.json").read_text(encoding="utf-8"))
        seed = int(demo["seed"]) if seed is None else seed
        image_size = int(demo["image_size"]) if image_size is None else image_size
    target = folder / CATALOG_DIR
    if _is_complete(target, _stamp(folder, seed, image_size)):
        return target
    return write_reference_catalog(folder, seed=seed, image_size=image_size)


def _is_complete(target: Path, expected: dict[str, Any]) -> bool:
    try:
        found = json.loads((target / _STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return found == expected
