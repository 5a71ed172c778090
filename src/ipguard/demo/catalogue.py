"""A generator of catalogue-like listing data: what a real marketplace export looks like.

The demo dataset (:mod:`ipguard.demo.listings`) is built to train on; this one is built to
check that ipguard works on a user's data. It has the traits real catalogues have and that
break code tuned on the demo: thousands of *studio photos* that look alike (light background,
one centred product, the same framing) but show different items; several photos of each item;
the same photo re-uploaded by other sellers (cropped, resized, re-encoded); many sellers in
several markets, languages and currencies with local price levels; and a brand catalog with
one reference price per brand *and currency*.

The label is learnable but not trivially: most counterfeits carry a subtly wrong brand mark
(distorted, misspelt, recoloured, misplaced), some counterfeit listings show a genuine photo
stolen from another seller, prices of fakes are lower but overlap, and counterfeit wording is
present in fewer than half of them while honest sellers also write "original".

Run ``python -m ipguard.demo.catalogue OUT_DIR --listings 3000 --sellers 300``. Same
arguments, same bytes (on the same NumPy and Pillow versions). All brands are fictional.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import math
import sys
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from ipguard.data.columns import LABELS, MANIFEST_COLUMNS
from ipguard.demo.markets import Market
from ipguard.demo.studio import (
    MARK_DEFECTS,
    PATTERNS,
    Item,
    Mark,
    Shot,
    encode_jpeg,
    random_shot,
    render_photo,
    reupload,
    with_defect,
)

__all__ = [
    "BRANDS",
    "CURRENCIES",
    "MARKETS",
    "TRUTH_COLUMNS",
    "Catalogue",
    "main",
    "make_catalogue",
]

log = logging.getLogger(__name__)

GENERATOR_VERSION = 1
RGB = tuple[int, int, int]

TRUTH_COLUMNS: tuple[str, ...] = (
    "listing_id",
    "seller_kind",
    "item_id",
    "photo_id",
    "reupload",
    "reupload_edit",
    "mark_defect",
    "text_cue",
    "price_ratio",
)
"""Columns of ``truth.csv``: the generator's ground truth per listing, for tests and analysis,
never a model input. ``photo_id`` names the rendered photo a listing's image shows; a
re-upload (``reupload`` = ``copy`` or ``exact``) is a new file made from that photo."""


@dataclass(frozen=True)
class Brand:
    """A fictional brand: its mark, what it makes, and its typical price in US dollars."""

    name: str
    mark: Mark
    categories: tuple[str, ...]
    reference_usd: float
    lines: tuple[str, ...]


BRANDS: tuple[Brand, ...] = (
    Brand("Valtoro", Mark("triangle", "VALTO", (176, 32, 40)), ("bag", "wallet", "shoe"),
          420.0, ("Siena", "Roma Tote", "Mini")),
    Brand("Kessane", Mark("diamond", "KESSA", (28, 58, 120)), ("bag", "wallet", "cap"),
          610.0, ("Alma", "Daily", "Petite")),
    Brand("Quorvo", Mark("circle", "QUORV", (20, 20, 24)), ("watch", "headphones"),
          540.0, ("Meridian", "Atlas 40", "Pulse")),
    Brand("Lumessa", Mark("ring", "LUMES", (196, 150, 30)), ("bottle", "bag"),
          150.0, ("Nuit", "Eau Claire", "Ambra")),
    Brand("Brakvik", Mark("bars", "BRAKV", (30, 110, 60)), ("shoe", "cap", "bag"),
          140.0, ("Trail 5", "Court", "Flux")),
    Brand("Orvane", Mark("cross", "ORVAN", (120, 40, 120)), ("headphones", "watch"),
          320.0, ("Halo", "Studio 2", "Arc")),
    Brand("Sentiro", Mark("triangle", "SENTI", (210, 90, 20)), ("shoe", "cap"),
          170.0, ("Volt", "Aero 3", "Street")),
    Brand("Maribel", Mark("diamond", "MARIB", (150, 20, 70)), ("bottle", "wallet", "bag"),
          210.0, ("Rose", "Velvet", "Classic")),
    Brand("Tessaro", Mark("circle", "TESSR", (40, 90, 160)), ("watch", "wallet"),
          880.0, ("Tide 38", "Nova", "Chrono S")),
    Brand("Nordhal", Mark("bars", "NORDH", (60, 60, 70)), ("headphones", "shoe", "cap"),
          230.0, ("Fjord", "Polar", "Drift")),
)  # fmt: skip

# How much an item of each category costs relative to its brand's typical price.
_CATEGORY_PRICE = {"bag": 1.3, "shoe": 0.85, "watch": 1.25, "bottle": 0.6, "cap": 0.45,
                   "headphones": 0.95, "wallet": 0.7}  # fmt: skip


@dataclass(frozen=True)
class Currency:
    code: str
    per_usd: float
    """Exchange rate, units per US dollar."""
    price_level: float
    """Local list prices relative to the converted US price (duties, VAT, market positioning)."""
    step: float
    """Prices end on multiples of this, less ``ending`` (9.99 in USD, 12,800 in JPY)."""
    ending: float


CURRENCIES: dict[str, Currency] = {
    "USD": Currency("USD", 1.0, 1.0, 1.0, 0.01),
    "MXN": Currency("MXN", 17.2, 1.15, 10.0, 1.0),
    "BRL": Currency("BRL", 5.1, 1.35, 10.0, 0.10),
    "EUR": Currency("EUR", 0.92, 1.08, 1.0, 0.01),
    "JPY": Currency("JPY", 151.0, 1.05, 100.0, 0.0),
    "IDR": Currency("IDR", 15800.0, 1.10, 1000.0, 0.0),
}


MARKETS: tuple[Market, ...] = (
    Market("US", "en", "USD", 0.22),
    Market("MX", "es", "MXN", 0.12),
    Market("BR", "pt", "BRL", 0.14),
    Market("DE", "de", "EUR", 0.10),
    Market("FR", "fr", "EUR", 0.08),
    Market("ES", "es", "EUR", 0.06),
    Market("JP", "ja", "JPY", 0.12),
    Market("ID", "id", "IDR", 0.16),
)

_COLOURS: dict[str, RGB] = {
    "black": (34, 34, 38), "white": (236, 234, 228), "red": (178, 36, 44),
    "blue": (42, 78, 160), "green": (52, 120, 72), "beige": (212, 190, 152),
    "brown": (120, 78, 48), "pink": (226, 150, 176),
}  # fmt: skip


@dataclass(frozen=True)
class _Words:
    """What listings in one language say; Japanese titles have no spaces between words."""

    nouns: dict[str, str]
    colours: dict[str, str]
    counterfeit: tuple[str, ...]
    """Wording that gives a fake away (only some counterfeiters write it)."""
    claims: tuple[str, ...]
    """'Authentic', 'new with tags': honest sellers write it, and so do many counterfeiters."""
    not_replica: str
    """An honest seller's denial; it contains the word 'replica', a classic false alarm."""
    descriptions: tuple[str, ...]


# What listings say in each market language, as data: catalogue_words.json, shipped with the
# package (one object per language with the fields of _Words).
_WORDS: dict[str, _Words] = {
    language: _Words(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
    for language, fields in json.loads(
        (Path(__file__).parent / "catalogue_words.json").read_text(encoding="utf-8")
    ).items()
}

# Seller kinds: (share of sellers, chance that an item they list is a counterfeit).
_SELLER_KINDS: dict[str, tuple[float, float]] = {
    "brand_store": (0.08, 0.0),
    "authorised": (0.24, 0.01),
    "reseller": (0.28, 0.03),
    "mixed": (0.18, 0.30),
    "counterfeiter": (0.22, 0.92),
}
_MARK_DEFECT_SHARE = 0.8  # of counterfeit items; the rest are "good fakes" with a correct mark
_NEW_PHOTO = 0.6  # a listing of a known item shows a new photo of it (else an earlier one)
_RELIST = 0.35  # a seller's next listing is another listing of an item it already listed
_REUPLOAD_SHARE = 0.025  # listings whose photo is copied from another seller's listing
# Whose photos get copied: mostly the brand's own shop and authorised dealers (weights).
_COPIED_FROM = {"brand_store": 3.0, "authorised": 2.0, "reseller": 1.0, "mixed": 1.0}
_EXACT_COPY = 0.2  # of re-uploads: the very same bytes, downloaded and uploaded again
_EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Catalogue:
    """Where a generated catalogue lives, and how big it is."""

    root: Path
    manifest_path: Path  # root / "listings.csv"
    brands_path: Path  # root / "brands.csv"
    truth_path: Path  # root / "truth.csv"
    images_dir: Path  # root / "images"
    n_listings: int
    n_sellers: int
    n_photos: int
    """Distinct image files written (rendered photos and re-uploaded copies)."""


@dataclass(frozen=True)
class _Seller:
    seller_id: str
    kind: str
    markets: tuple[Market, ...]
    brands: tuple[int, ...]
    background: RGB
    quality: int
    start_day: float
    end_day: float


@dataclass
class _ItemPlan:
    item_id: str
    seller: _Seller
    brand: Brand
    item: Item
    colour: str
    line: str
    infringing: bool
    defect: str
    price_ratio: float
    photos: list[int] = field(default_factory=list)


@dataclass
class _ListingPlan:
    listing_id: str
    item: _ItemPlan
    market: Market
    photo: int
    listed_at: float
    reupload: str = ""  # "", "copy" or "exact"
    file: str = ""


def make_catalogue(
    out_dir: str | Path,
    *,
    n_listings: int = 3000,
    n_sellers: int = 300,
    seed: int = 0,
    image_size: int = 112,
    sep: str = ",",
    workers: int = 0,
) -> Catalogue:
    """Write a catalogue-like manifest, its images, brand catalog and ground truth to ``out_dir``.

    Files: ``listings.csv`` (the manifest contract of README.md, columns separated by ``sep``;
    decimals always use a point), ``images/*.jpg``, ``brands.csv`` (``brand, reference_price,
    currency``: one row per brand and currency, six currencies), ``truth.csv`` (see
    :data:`TRUTH_COLUMNS`) and ``catalogue.json`` (parameters and counts, written last).
    ``workers=N`` renders the photos in N processes (same bytes as ``workers=0``, in this
    process), for catalogues of 100k listings and more.
    """
    _validate(n_listings, n_sellers, seed, image_size, sep)
    if not isinstance(workers, int) or workers < 0:
        raise ValueError(f"catalogue workers: expected an integer >= 0, found {workers!r}")
    started = time.perf_counter()
    root = Path(out_dir)
    images_dir = root / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    (root / "catalogue.json").unlink(missing_ok=True)

    rng_sellers, rng_plan, rng_copies = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)
    )
    sellers = _make_sellers(n_sellers, rng_sellers)
    items, listings = _plan_listings(n_listings, sellers, rng_plan)
    _pick_reuploads(listings, rng_copies)

    shots = _photo_shots(items, seed)
    jobs = [(plan.item, shot, image_size) for plan, shot in shots.values()]
    if workers:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            encoded = list(pool.map(_render_jpeg, jobs, chunksize=64))
    else:
        encoded = [_render_jpeg(job) for job in jobs]
    photo_bytes = dict(zip(shots, encoded, strict=True))
    for photo, data in photo_bytes.items():
        (images_dir / f"p{photo:06d}.jpg").write_bytes(data)
    edits: dict[str, str] = {}
    for k, listing in enumerate(listings):
        if not listing.reupload:
            listing.file = f"images/p{listing.photo:06d}.jpg"
            continue
        copy_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2, k)))
        if listing.reupload == "exact":
            data, edits[listing.listing_id] = photo_bytes[listing.photo], "none"
        else:
            data, edits[listing.listing_id] = reupload(photo_bytes[listing.photo], copy_rng)
        listing.file = f"images/u{k:06d}.jpg"
        (root / listing.file).write_bytes(data)

    rows, truth_rows = [], []
    for k, listing in enumerate(listings):
        text_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(3, k)))
        row, truth = _listing_row(listing, text_rng, edit=edits.get(listing.listing_id, ""))
        rows.append(row)
        truth_rows.append(truth)

    _write_csv(root / "listings.csv", MANIFEST_COLUMNS, rows, sep=sep)
    _write_csv(root / "truth.csv", TRUTH_COLUMNS, truth_rows, sep=",")
    _write_csv(
        root / "brands.csv", ("brand", "reference_price", "currency"), _brand_rows(), sep=","
    )
    n_files = len(photo_bytes) + sum(1 for x in listings if x.reupload)
    counts = {
        "label": dict(sorted(Counter(r[12] for r in rows).items())),
        "currency": dict(sorted(Counter(r[8] for r in rows).items())),
        "sellers": len({r[9] for r in rows}),
        "items": len(items),
        "photos_rendered": len(photo_bytes),
        "reuploads": sum(1 for x in listings if x.reupload),
    }
    stamp = {
        "generator": "ipguard.demo.catalogue",
        "version": GENERATOR_VERSION,
        "n_listings": n_listings,
        "n_sellers": n_sellers,
        "seed": seed,
        "image_size": image_size,
        "sep": sep,
        "counts": counts,
    }
    (root / "catalogue.json").write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
    log.info(
        "catalogue: %d listings from %d sellers, %d image files, written to %s in %.1f s",
        n_listings,
        n_sellers,
        n_files,
        root,
        time.perf_counter() - started,
    )
    return Catalogue(
        root=root,
        manifest_path=root / "listings.csv",
        brands_path=root / "brands.csv",
        truth_path=root / "truth.csv",
        images_dir=images_dir,
        n_listings=n_listings,
        n_sellers=n_sellers,
        n_photos=n_files,
    )


# --- planning -------------------------------------------------------------------------------


def _choice(rng: np.random.Generator, options: dict[str, float]) -> str:
    keys = list(options)
    weights = np.array([options[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=weights / weights.sum()))]


def _make_sellers(n: int, rng: np.random.Generator) -> list[_Seller]:
    market_weights = np.array([m.weight for m in MARKETS])
    market_weights /= market_weights.sum()
    kinds = {k: share for k, (share, _) in _SELLER_KINDS.items()}
    sellers = []
    for i in range(n):
        home = int(rng.choice(len(MARKETS), p=market_weights))
        markets = [MARKETS[home]]
        if rng.random() < 0.15:  # a cross-border seller lists in a second market too
            other = int(rng.choice(len(MARKETS), p=market_weights))
            if other != home:
                markets.append(MARKETS[other])
        n_brands = int(rng.integers(1, 5))
        brands = tuple(sorted(rng.choice(len(BRANDS), size=n_brands, replace=False).tolist()))
        tint = rng.integers(-6, 4, size=3)
        background = tuple(int(v) for v in np.clip(np.array([250, 249, 247]) + tint, 0, 255))
        start = float(rng.uniform(0, 300))
        sellers.append(
            _Seller(
                seller_id=f"S{i + 1:05d}",
                kind=_choice(rng, kinds),
                markets=tuple(markets),
                brands=brands,
                background=background,  # type: ignore[arg-type]
                quality=int(rng.integers(80, 96)),
                start_day=start,
                end_day=float(rng.uniform(start + 20, 365)),
            )
        )
    return sellers


def _listings_per_seller(n_listings: int, n_sellers: int, rng: np.random.Generator) -> np.ndarray:
    """At least one each; the rest spread with a heavy tail (a few large shops)."""
    weights = rng.lognormal(0.0, 0.8, size=n_sellers)
    extra = rng.multinomial(n_listings - n_sellers, weights / weights.sum())
    return 1 + extra


def _new_item(item_id: str, seller: _Seller, rng: np.random.Generator) -> _ItemPlan:
    brand = BRANDS[seller.brands[int(rng.integers(len(seller.brands)))]]
    category = brand.categories[int(rng.integers(len(brand.categories)))]
    infringing = bool(rng.random() < _SELLER_KINDS[seller.kind][1])
    defect = ""
    mark = brand.mark
    if infringing and rng.random() < _MARK_DEFECT_SHARE:
        defect = MARK_DEFECTS[int(rng.integers(len(MARK_DEFECTS)))]
        mark = with_defect(mark, defect, rng)
    colour, trim, accent = rng.choice(list(_COLOURS), size=3, replace=False).tolist()
    jitter = rng.integers(-12, 13, size=3)
    body = tuple(int(v) for v in np.clip(np.array(_COLOURS[colour]) + jitter, 0, 255))
    item = Item(
        category=category,
        body=body,  # type: ignore[arg-type]
        trim=_COLOURS[trim],
        accent=_COLOURS[accent],
        pattern=PATTERNS[int(rng.integers(len(PATTERNS)))],
        pattern_step=float(rng.uniform(0.05, 0.12)),
        pattern_angle=float(rng.uniform(-40.0, 40.0)),
        pattern_phase=float(rng.uniform()),
        shape=tuple(float(x) for x in rng.uniform(size=4)),  # type: ignore[arg-type]
        variant=int(rng.integers(3)),
        mark=mark,
    )
    if infringing:
        # Most fakes are cheap; some are priced like the real thing to look credible.
        ratio = rng.uniform(0.75, 1.0) if rng.random() < 0.25 else rng.uniform(0.12, 0.55)
    elif seller.kind == "reseller":
        ratio = rng.uniform(0.45, 0.95)  # outlet and pre-owned prices
    else:
        ratio = rng.lognormal(0.0, 0.12)
    return _ItemPlan(
        item_id=item_id,
        seller=seller,
        brand=brand,
        item=item,
        colour=colour,
        line=brand.lines[int(rng.integers(len(brand.lines)))],
        infringing=infringing,
        defect=defect,
        price_ratio=float(ratio),
    )


def _plan_listings(
    n_listings: int, sellers: list[_Seller], rng: np.random.Generator
) -> tuple[list[_ItemPlan], list[_ListingPlan]]:
    """Items per seller, listings per item, and which photo of its item each listing shows."""
    counts = _listings_per_seller(n_listings, len(sellers), rng)
    items: list[_ItemPlan] = []
    listings: list[_ListingPlan] = []
    n_photos = 0
    for seller, count in zip(sellers, counts.tolist(), strict=True):
        own: list[_ItemPlan] = []
        for _ in range(count):
            if own and rng.random() < _RELIST:
                plan = own[int(rng.integers(len(own)))]
            else:
                plan = _new_item(f"I{len(items) + 1:06d}", seller, rng)
                own.append(plan)
                items.append(plan)
            if not plan.photos or (rng.random() < _NEW_PHOTO and len(plan.photos) < 4):
                plan.photos.append(n_photos)
                n_photos += 1
                photo = plan.photos[-1]
            else:
                photo = plan.photos[int(rng.integers(len(plan.photos)))]
            listings.append(
                _ListingPlan(
                    listing_id=f"C{len(listings) + 1:07d}",
                    item=plan,
                    market=seller.markets[int(rng.integers(len(seller.markets)))],
                    photo=photo,
                    listed_at=float(rng.uniform(seller.start_day, seller.end_day)),
                )
            )
    # Rows in time order, as a marketplace export is; ids stay as planned.
    listings.sort(key=lambda x: (x.listed_at, x.listing_id))
    return items, listings


def _pick_reuploads(listings: list[_ListingPlan], rng: np.random.Generator) -> None:
    """Some listings show a photo copied from another seller's listing of the same brand and
    category: counterfeiters steal genuine photos, resellers copy the brand's own shop. Copies
    come mostly from brand shops and authorised dealers, as on real marketplaces, so a few
    popular photos are copied many times."""
    by_product: dict[tuple[str, str], list[_ListingPlan]] = {}
    for listing in listings:
        if not listing.item.infringing and listing.item.seller.kind in _COPIED_FROM:
            key = (listing.item.brand.name, listing.item.item.category)
            by_product.setdefault(key, []).append(listing)
    n_copies = round(_REUPLOAD_SHARE * len(listings))
    for k in rng.permutation(len(listings)).tolist():
        if n_copies == 0:
            break
        listing = listings[k]
        key = (listing.item.brand.name, listing.item.item.category)
        sources = [
            x
            for x in by_product.get(key, [])
            if x.item.seller is not listing.item.seller and not x.reupload
        ]
        if listing.reupload or not sources:
            continue
        weights = np.array([_COPIED_FROM[x.item.seller.kind] for x in sources])
        source = sources[int(rng.choice(len(sources), p=weights / weights.sum()))]
        listing.photo = source.photo
        listing.reupload = "exact" if rng.random() < _EXACT_COPY else "copy"
        n_copies -= 1


def _render_jpeg(job: tuple[Item, Shot, int]) -> bytes:
    """One photo's JPEG bytes; a module-level function so worker processes can run it."""
    item, shot, size = job
    return encode_jpeg(render_photo(item, shot, size), shot.quality)


def _photo_shots(items: list[_ItemPlan], seed: int) -> dict[int, tuple[_ItemPlan, Shot]]:
    """One shot per rendered photo, drawn from that photo's own random stream."""
    shots: dict[int, tuple[_ItemPlan, Shot]] = {}
    for plan in items:
        for photo in plan.photos:
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, photo)))
            shot = random_shot(rng, background=plan.seller.background, quality=plan.seller.quality)
            shots[photo] = (plan, shot)
    return dict(sorted(shots.items()))


# --- rows -----------------------------------------------------------------------------------


def _price(usd: float, currency: Currency) -> float:
    """A local price as a seller writes it: converted, at the local level, on a price point."""
    local = usd * currency.per_usd * currency.price_level
    if local < currency.step * 2:
        return round(max(local, 0.01), 2)
    return math.ceil(local / currency.step) * currency.step - currency.ending


def _format_price(amount: float, currency: str) -> str:
    return f"{amount:.0f}" if currency in ("JPY", "IDR") else f"{amount:.2f}"


def _obfuscate(name: str, rng: np.random.Generator) -> str:
    """A brand name written so exact-match filters miss it."""
    swaps = {"a": "@", "o": "0", "e": "3", "i": "1"}
    positions = [i for i, ch in enumerate(name) if ch.lower() in swaps]
    if positions and rng.random() < 0.6:
        i = positions[int(rng.integers(len(positions)))]
        return name[:i] + swaps[name[i].lower()] + name[i + 1 :]
    return " ".join(name.upper())


def _text(listing: _ListingPlan, rng: np.random.Generator) -> tuple[str, str, str]:
    """Title, description and the text cue the title carries (for the ground truth)."""
    plan = listing.item
    words = _WORDS[listing.market.language]
    noun, colour = words.nouns[plan.item.category], words.colours[plan.colour]
    brand, cue = plan.brand.name, ""
    extras: list[str] = []
    if plan.infringing:
        draw = rng.random()
        if draw < 0.40:
            cue = "counterfeit_wording"
            extras.append(words.counterfeit[int(rng.integers(len(words.counterfeit)))])
        elif draw < 0.52:
            cue = "obfuscated_brand"
            brand = _obfuscate(brand, rng)
        if rng.random() < 0.45:  # fakes claim to be real, too
            extras.append(words.claims[int(rng.integers(len(words.claims)))])
    else:
        if rng.random() < 0.35:
            extras.append(words.claims[int(rng.integers(len(words.claims)))])
        if rng.random() < 0.05:
            cue = "denies_replica"
            extras.append(words.not_replica)
    parts = [brand, plan.line, noun, colour, *extras]
    joiner = "" if listing.market.language == "ja" else " "
    order = rng.permutation(len(parts) - 2) + 2 if rng.random() < 0.3 else range(2, len(parts))
    title = joiner.join([parts[0], parts[1], *(parts[i] for i in order)])
    description = words.descriptions[int(rng.integers(len(words.descriptions)))]
    return title, description, cue


def _listing_row(
    listing: _ListingPlan, rng: np.random.Generator, *, edit: str
) -> tuple[list[str], list[str]]:
    """The manifest row and the ground-truth row of one listing."""
    plan = listing.item
    title, description, cue = _text(listing, rng)
    currency = CURRENCIES[listing.market.currency]
    noise = float(rng.lognormal(0.0, 0.06))  # the same item is priced a little differently
    usd = plan.brand.reference_usd * _CATEGORY_PRICE[plan.item.category] * plan.price_ratio * noise
    label = LABELS[int(plan.infringing)]
    infringement_type = ""
    if plan.infringing:
        infringement_type = "copyright" if listing.reupload else "counterfeit"
    listed_at = _EPOCH + timedelta(seconds=int(listing.listed_at * 86400))
    row = [
        listing.listing_id,
        title,
        description,
        plan.brand.name,
        plan.item.category,
        listing.market.country,
        listing.market.language,
        _format_price(_price(usd, currency), currency.code),
        currency.code,
        plan.seller.seller_id,
        listing.file,
        listed_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        label,
        infringement_type,
    ]
    truth = [
        listing.listing_id,
        plan.seller.kind,
        plan.item_id,
        f"p{listing.photo:06d}",
        listing.reupload,
        edit,
        plan.defect,
        cue,
        f"{plan.price_ratio * noise:.3f}",
    ]
    return row, truth


def _brand_rows() -> list[list[str]]:
    """One reference price per brand and currency, at each market's own price level."""
    rows = []
    for brand in BRANDS:
        for currency in CURRENCIES.values():
            price = _price(brand.reference_usd, currency)
            rows.append([brand.name, _format_price(price, currency.code), currency.code])
    return rows


def _write_csv(path: Path, header: Sequence[str], rows: list[list[str]], *, sep: str) -> None:
    """Write via a temporary file so a reader never sees half a file."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=sep, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(buffer.getvalue(), encoding="utf-8")
    tmp.replace(path)


def _validate(n_listings: object, n_sellers: object, seed: object, image_size: object,
              sep: object) -> None:  # fmt: skip
    def is_int(value: object) -> bool:
        return isinstance(value, (int, np.integer)) and not isinstance(value, bool)

    if not is_int(n_listings) or n_listings < 1:  # type: ignore[operator]
        raise ValueError(f"catalogue n_listings: expected an integer >= 1, found {n_listings!r}")
    if not is_int(n_sellers) or not 1 <= n_sellers <= n_listings:  # type: ignore[operator]
        raise ValueError(
            f"catalogue n_sellers: expected an integer in [1, n_listings={n_listings}] (every "
            f"seller lists at least once), found {n_sellers!r}"
        )
    if not is_int(seed) or seed < 0:  # type: ignore[operator]
        raise ValueError(f"catalogue seed: expected an integer >= 0, found {seed!r}")
    if not is_int(image_size) or not 32 <= image_size <= 512:  # type: ignore[operator]
        raise ValueError(
            f"catalogue image_size: expected an integer in [32, 512], found {image_size!r}"
        )
    if not isinstance(sep, str) or len(sep) != 1 or sep in '"\r\n.':
        raise ValueError(
            "catalogue sep: expected one character other than a quote, a point or a line "
            f"break (e.g. ',' or ';'), found {sep!r}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ipguard.demo.catalogue",
        description="Write a catalogue-like manifest (studio photos, re-uploads, six currencies).",
    )
    parser.add_argument("out_dir", type=Path, help="folder to write into (created if needed)")
    # option names as documented, destinations as make_catalogue's parameters
    parser.add_argument(
        "--listings", dest="n_listings", type=int, default=3000, help="number of listings"
    )
    parser.add_argument(
        "--sellers", dest="n_sellers", type=int, default=300, help="number of sellers"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-size", type=int, default=112, help="photo side in pixels")
    parser.add_argument("--sep", default=",", help="manifest column separator, e.g. ';'")
    parser.add_argument("--workers", type=int, default=0, help="render in this many processes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        catalogue = make_catalogue(**vars(args))
    except ValueError as exc:
        parser.error(str(exc))
    stamp = json.loads((catalogue.root / "catalogue.json").read_text(encoding="utf-8"))
    print(json.dumps({"manifest": str(catalogue.manifest_path), **stamp["counts"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
