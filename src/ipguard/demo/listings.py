"""The deterministic synthetic demo dataset: fictional brands, sellers and listings.

`make train` has to run offline in minutes, and every quality figure in the README is measured
on this data, so the generative story is explicit (see docs/demo-data.md): sellers with a home
market and an honest or infringing habit post listings; each infringing listing shows at least
one of three cues (image, text, price), drawn so that no single modality finds them all; and
hard negatives (authorised discounts, parody, "original" claims, sale stickers, multi-view
photos) keep each cue from being a free pass. Same parameters, same bytes.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import re
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ipguard.data.columns import LABELS, MANIFEST_COLUMNS
from ipguard.demo.markets import Market
from ipguard.demo.photos import (
    RGB,
    STAMP_TEXTS,
    ImageSpec,
    LogoStyle,
    PhotoStyle,
    ProductShot,
    encode_jpeg,
    near_duplicate,
    render_image,
    render_reference_logo,
)
from ipguard.demo.texts import COLOUR_KEYS, OBFUSCATIONS, TextPlan, compose_text

log = logging.getLogger(__name__)

GENERATOR_VERSION = 1
# The generator's name in demo.json as first published: demo folders written before it moved
# to ipguard.demo.listings stay valid instead of being generated again.
_GENERATOR = "ipguard.data.synthetic"
INFRINGING_SHARE = 0.37
LISTINGS_PER_SELLER = 5.0
CUE_COLUMNS: tuple[str, ...] = (
    "listing_id",
    "seller_kind",
    "pattern",
    "image_cue",
    "text_cue",
    "price_cue",
    "price_ratio",
    "reused_from",
    "hard_case",
    "label_flipped",
)
_EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)
_DAYS = 365.0


@dataclass(frozen=True)
class Brand:
    """A fictional brand: its mark, its product line and its price in the brand's catalog.

    ``reference_price`` is in ``currency`` (USD); :func:`local_reference_price` gives the list
    price in each market's currency, the one the multi-currency catalog holds.
    """

    name: str
    category: str
    shape: str
    colours: tuple[RGB, RGB]  # (mark colour, plate colour)
    reference_price: float
    currency: str
    lines: tuple[str, ...]
    colourways: tuple[str, ...]  # keys of COLOUR_KEYS the genuine product comes in

    @property
    def logo(self) -> LogoStyle:
        return LogoStyle(self.name.upper(), self.shape, self.colours[0], self.colours[1])

    @property
    def parody_name(self) -> str:
        """The pun a parody seller prints instead of the name; fixed so it is recognisable."""
        return "P" + self.name[1:]


BRANDS: tuple[Brand, ...] = (
    Brand("Zentaro", "sneakers", "triangle", ((220, 60, 30), (250, 245, 235)), 160.0, "USD",
          ("Aero 3", "Street", "Volt Runner"), ("black", "white", "red", "grey")),
    Brand("Kestrune", "handbags", "diamond", ((120, 30, 60), (235, 210, 150)), 480.0, "USD",
          ("Mira", "Classic Tote", "Petite"), ("black", "beige", "red", "pink")),
    Brand("Quivelle", "watches", "circle", ((20, 40, 90), (210, 180, 90)), 650.0, "USD",
          ("Meridian", "Chrono S", "Atlas 40"), ("black", "grey", "blue", "white")),
    Brand("Aurvane", "headphones", "star", ((30, 30, 30), (60, 200, 190)), 280.0, "USD",
          ("Halo", "Pulse X", "Studio 2"), ("black", "white", "blue", "grey")),
    Brand("Solmira", "sunglasses", "hexagon", ((200, 140, 20), (30, 60, 50)), 190.0, "USD",
          ("Dune", "Riviera", "Aviator S"), ("black", "beige", "green", "grey")),
    Brand("Myrrine", "perfume", "crescent", ((110, 60, 150), (245, 230, 240)), 120.0, "USD",
          ("Nuit", "Eau Florale", "Ambre"), ("pink", "beige", "blue", "white")),
    Brand("Brakkon", "sneakers", "chevron", ((20, 110, 60), (240, 240, 240)), 130.0, "USD",
          ("Trail 5", "Court", "Flux"), ("white", "black", "green", "blue")),
    Brand("Lumenor", "watches", "ring", ((240, 200, 30), (40, 40, 60)), 240.0, "USD",
          ("Nova", "Arc", "Tide 38"), ("grey", "black", "white", "pink")),
)  # fmt: skip

_COLOUR_RGB: dict[str, RGB] = {
    "black": (35, 35, 38),
    "white": (235, 235, 235),
    "red": (190, 35, 40),
    "blue": (40, 80, 170),
    "green": (50, 130, 70),
    "beige": (215, 195, 160),
    "pink": (230, 150, 180),
    "grey": (130, 130, 135),
}
# Colours counterfeit marks come in; a brand's own colours are excluded when drawing.
_FAKE_MARK_COLOURS: tuple[RGB, ...] = (
    (200, 20, 20), (20, 20, 200), (240, 240, 240), (20, 20, 20), (240, 200, 0), (0, 160, 80),
    (150, 0, 150), (255, 120, 0),
)  # fmt: skip


MARKETS: tuple[Market, ...] = (
    Market("US", "en", "USD", 0.20),
    Market("GB", "en", "GBP", 0.06),
    Market("MX", "es", "MXN", 0.10),
    Market("ES", "es", "EUR", 0.08),
    Market("BR", "pt", "BRL", 0.12),
    Market("DE", "de", "EUR", 0.12),
    Market("FR", "fr", "EUR", 0.12),
    Market("JP", "ja", "JPY", 0.10),
    Market("RU", "ru", "RUB", 0.10),
)
# Fixed conversion rates (units per USD), so the price relative to the reference is the signal.
FX_PER_USD: dict[str, float] = {
    "USD": 1.0,
    "GBP": 0.79,
    "MXN": 17.0,
    "EUR": 0.92,
    "BRL": 5.0,
    "JPY": 150.0,
    "RUB": 90.0,
}
_NO_MINOR_UNITS = frozenset({"JPY"})
CATALOG_CURRENCIES: tuple[str, ...] = tuple(dict.fromkeys(m.currency for m in MARKETS))
"""The currencies of the demo markets; brands_by_currency.csv lists every brand in each."""


def local_reference_price(brand: Brand, currency: str) -> float:
    """The brand's list price in ``currency``: the USD price converted, then rounded to two
    significant figures, as local price lists are (2,720 MXN is listed at 2,700).

    Listing prices are drawn around the converted price, so a market's genuine listings sit
    within 5% of where the USD ones do against the reference (the rounding).
    """
    converted = brand.reference_price * FX_PER_USD[currency] / FX_PER_USD[brand.currency]
    step = 10.0 ** (math.floor(math.log10(converted)) - 1)
    return round(converted / step) * step


# Seller kinds: share of sellers, and odds weight that one of their listings is infringing.
_SELLER_KINDS: dict[str, tuple[float, float]] = {
    "honest": (0.44, 0.03),
    "reseller": (0.10, 0.02),
    "counterfeiter": (0.34, 12.0),
    "mixed": (0.12, 1.0),
}
_IMAGE_CUES: dict[str, float] = {
    "misspelt": 0.22,
    "recoloured": 0.20,
    "distorted": 0.20,
    "stamp": 0.14,
    "diagonal_band": 0.12,
    "collage": 0.12,
}
_SHOP_PREFIX = ("Nova", "Kaito", "Lumi", "Orbit", "Pico", "Vela", "Zen", "Mako", "Rio", "Sora")
_SHOP_SUFFIX = ("Trade", "Goods", "Market", "Deals", "House", "Corner", "Hub", "Shop")


@dataclass(frozen=True)
class DemoDataset:
    """Where a generated demo dataset lives; paths are absolute or relative as given."""

    root: Path
    manifest_path: Path  # root / "listings.csv"
    brands_path: Path  # root / "brands.csv": one row per brand, its USD reference price
    images_dir: Path  # root / "images"
    n_listings: int
    # root / "brands_by_currency.csv": one row per brand and currency of the demo markets, the
    # catalog training uses, so the price signal works in every market and not only the US
    catalog_path: Path

    @property
    def reference_catalog_path(self) -> Path:
        """root / "brand_catalog": the brands' reference catalog (see ipguard.demo.references)."""
        return self.root / "brand_catalog"


@dataclass(frozen=True)
class _Seller:
    seller_id: str
    kind: str
    market: Market
    brands: tuple[int, ...]
    photo: PhotoStyle
    signature: str
    activity: float
    start_day: float
    end_day: float


@dataclass
class _Listing:
    """One listing's plan; filled in stages (who, then label, then cues, then files)."""

    seller: _Seller
    market: Market
    language: str
    brand: Brand
    line: str
    colour_key: str
    listed_at: float  # days since the epoch
    infringing: bool = False
    listing_id: str = ""
    pattern: str = "genuine"
    image_cue: str = ""
    reuse: str = ""  # "", "identical" or "near"
    reused_from: str = ""
    text: TextPlan | None = None
    price_cue: bool = False
    price_ratio: float = 1.0
    hard_cases: tuple[str, ...] = ()
    image: ImageSpec | None = None
    infringement_type: str = ""


def _choice(rng: np.random.Generator, options: dict[str, float]) -> str:
    keys = list(options)
    weights = np.array([options[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=weights / weights.sum()))]


def _make_sellers(n: int, rng: np.random.Generator) -> list[_Seller]:
    count = max(2, round(n / LISTINGS_PER_SELLER))
    market_weights = np.array([m.weight for m in MARKETS])
    kinds = {k: share for k, (share, _) in _SELLER_KINDS.items()}
    sellers = []
    for j in range(count):
        n_brands = int(rng.integers(1, 4))
        brands = tuple(int(b) for b in rng.choice(len(BRANDS), size=n_brands, replace=False))
        photo = PhotoStyle(
            background=("solid", "gradient", "stripes", "studio")[int(rng.integers(4))],
            bg_colour=tuple(int(c) for c in rng.integers(140, 256, size=3)),  # type: ignore[arg-type]
            noise=float(rng.uniform(0.0, 6.0)),
            jpeg_quality=int(rng.integers(65, 96)),
            tilt=float(rng.uniform(0.0, 10.0)),
        )
        signature = ""
        if rng.random() < 0.7:
            prefix, suffix = _SHOP_PREFIX[int(rng.integers(10))], _SHOP_SUFFIX[int(rng.integers(8))]
            signature = f"— {prefix}{suffix} {int(rng.integers(10, 100))}"
        start = float(rng.uniform(0.0, _DAYS - 35.0))
        sellers.append(
            _Seller(
                seller_id=f"S{j + 1:05d}",
                kind=_choice(rng, kinds),
                market=MARKETS[
                    int(rng.choice(len(MARKETS), p=market_weights / market_weights.sum()))
                ],
                brands=brands,
                photo=photo,
                signature=signature,
                activity=float(rng.lognormal(0.0, 0.8)),
                start_day=start,
                end_day=min(_DAYS, start + float(rng.uniform(30.0, _DAYS))),
            )
        )
    return sellers


def _plan_listings(n: int, sellers: list[_Seller], rng: np.random.Generator) -> list[_Listing]:
    """Who posts what, where and when; sorted by time so listing ids are chronological."""
    activity = np.array([s.activity for s in sellers])
    market_weights = np.array([m.weight for m in MARKETS])
    listings = []
    for j in rng.choice(len(sellers), size=n, p=activity / activity.sum()):
        seller = sellers[int(j)]
        market = seller.market
        if rng.random() < 0.1:
            market = MARKETS[int(rng.choice(len(MARKETS), p=market_weights / market_weights.sum()))]
        language = market.language if rng.random() < 0.85 else "en"
        brand = BRANDS[seller.brands[int(rng.integers(len(seller.brands)))]]
        listings.append(
            _Listing(
                seller=seller,
                market=market,
                language=language,
                brand=brand,
                line=brand.lines[int(rng.integers(len(brand.lines)))],
                colour_key=brand.colourways[int(rng.integers(len(brand.colourways)))],
                listed_at=float(rng.uniform(seller.start_day, seller.end_day)),
            )
        )
    listings.sort(key=lambda item: item.listed_at)
    width = max(6, len(str(n)))
    for i, item in enumerate(listings):
        item.listing_id = f"L{i + 1:0{width}d}"
    return listings


def _assign_labels(listings: list[_Listing], rng: np.random.Generator) -> None:
    """Exactly round(INFRINGING_SHARE * n) infringing listings, concentrated on bad sellers.

    Weighted sampling without replacement (keys u ** (1 / w)) keeps the class ratio exact for
    any n while a seller's habit decides who gets the infringing listings.
    """
    k = round(INFRINGING_SHARE * len(listings))
    weights = np.array([_SELLER_KINDS[item.seller.kind][1] for item in listings])
    keys = np.log(rng.uniform(1e-12, 1.0, size=len(listings))) / weights
    for i in np.argsort(-keys, kind="stable")[:k]:
        listings[int(i)].infringing = True


def _misspell(word: str, rng: np.random.Generator) -> str:
    """A counterfeiter's near-miss of the wordmark; always differs from `word`."""
    lookalike = {"O": "Q", "N": "M", "M": "N", "R": "P", "E": "F", "C": "G", "I": "L", "U": "V"}
    kind = int(rng.integers(3))
    i = int(rng.integers(1, len(word) - 1))
    if kind == 0 and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == 1:
        return word[:i] + lookalike.get(word[i], "X" if word[i] != "X" else "Y") + word[i + 1 :]
    return word[:i] + word[i + 1 :]


_MARK_DEFECTS = ("misspelt", "recoloured", "distorted")


def _fake_logo(brand: Brand, cue: str, rng: np.random.Generator) -> LogoStyle:
    """An imitation of the brand's mark showing defect `cue`, often a second one, always askew.

    Counterfeit marks are rarely wrong in just one way, and they are applied carelessly: the
    label sits crooked on the product. The askew label is the part of the cue that a small
    image model can see at low resolution; the misspelling needs more pixels to read.
    """
    if cue not in _MARK_DEFECTS:
        return brand.logo
    defects = {cue}
    if rng.random() < 0.5:
        defects.add(_MARK_DEFECTS[int(rng.integers(len(_MARK_DEFECTS)))])
    wordmark, primary, secondary = brand.logo.wordmark, brand.colours[0], brand.colours[1]
    angle, stretch = 0.0, 1.0
    if "misspelt" in defects:
        wordmark = _misspell(wordmark, rng)
    if "recoloured" in defects:
        if rng.random() < 0.25:
            primary, secondary = secondary, primary
        else:
            palette = [c for c in _FAKE_MARK_COLOURS if c not in brand.colours]
            a, b = rng.choice(len(palette), size=2, replace=False)
            primary, secondary = palette[int(a)], palette[int(b)]
    if "distorted" in defects:
        angle = float(rng.uniform(25.0, 55.0)) * (1 if rng.random() < 0.5 else -1)
        stretch = float(rng.uniform(0.5, 0.7) if rng.random() < 0.5 else rng.uniform(1.35, 1.6))
    skew = float(rng.uniform(15.0, 35.0)) * (1 if rng.random() < 0.5 else -1)
    return LogoStyle(wordmark, brand.shape, primary, secondary, angle, stretch, skew)


def _text_plan(item: _Listing, rng: np.random.Generator, *, text_cue: bool) -> TextPlan:
    words, dupe, obfuscation = "", False, ""
    if text_cue:
        drift = item.listed_at / _DAYS  # evasion grows over the year: obfuscation gets commoner
        use_words = rng.random() < 0.75
        if rng.random() < 0.3 + 0.3 * drift:
            obfuscation = OBFUSCATIONS[int(rng.integers(len(OBFUSCATIONS)))]
        if use_words or not obfuscation:
            placement = _choice(rng, {"title": 0.3, "description": 0.3, "both": 0.25, "dupe": 0.15})
            dupe = placement == "dupe"
            words = "" if dupe else placement
    parody = "parody" in item.hard_cases
    return TextPlan(
        language=item.language,
        brand=item.brand.name,
        category=item.brand.category,
        line=item.line,
        colour_key=item.colour_key,
        counterfeit_words=words,
        dupe_wording=dupe,
        obfuscation=obfuscation,
        reseller="reseller" in item.hard_cases,
        parody_name=item.brand.parody_name if parody else "",
        claims_original=rng.random() < 0.2,
        noisy=rng.random() < 0.25,
        honest_typo=not item.infringing and not parody and rng.random() < 0.03,
        signature=item.seller.signature,
    )


def _shot(brand: Brand, colour_key: str, logo: LogoStyle | None = None) -> ProductShot:
    return ProductShot(brand.category, _COLOUR_RGB[colour_key], logo or brand.logo)


def _plan_genuine(item: _Listing, rng: np.random.Generator) -> None:
    hard: list[str] = []
    if item.seller.kind == "reseller" and rng.random() < 0.85:
        hard.append("reseller")
        item.price_ratio = float(
            rng.uniform(0.5, 0.65) if rng.random() < 0.8 else rng.uniform(0.7, 0.9)
        )
    else:
        item.price_ratio = float(rng.uniform(0.7, 1.2))
        if rng.random() < 0.03:
            hard.append("parody")
    logo = item.brand.logo
    if "parody" in hard:
        logo = LogoStyle(item.brand.parody_name.upper(), logo.shape, logo.primary, logo.secondary)
    shots: tuple[ProductShot, ...] = (_shot(item.brand, item.colour_key, logo),)
    if rng.random() < 0.05:
        hard.append("two_views")
        shots = (shots[0], shots[0])
    overlay, overlay_text = "", ""
    if "reseller" in hard and rng.random() < 0.35:
        hard.append("sale_sticker")
        overlay, overlay_text = (
            "sale_sticker",
            ("SALE", "-40%", "OUTLET", "-30%")[int(rng.integers(4))],
        )
    item.hard_cases = tuple(hard)
    item.text = _text_plan(item, rng, text_cue=False)
    if item.text.claims_original:
        item.hard_cases += ("claims_original",)
    if item.text.honest_typo:
        item.hard_cases += ("honest_typo",)
    item.image = ImageSpec(shots, item.seller.photo, overlay, overlay_text)


def _plan_infringing(item: _Listing, rng: np.random.Generator) -> None:
    """Draw which cues show: a third image-only, a third text/price-only, a third several."""
    item.pattern = _choice(rng, {"image_only": 1 / 3, "text_price_only": 1 / 3, "multi": 1 / 3})
    text_cue = price_cue = False
    if item.pattern == "image_only":
        item.image_cue = _choice(rng, _IMAGE_CUES)
    else:
        mix = {"text": 0.5, "price": 0.08, "both": 0.42}
        if item.pattern == "multi":
            item.image_cue = _choice(rng, _IMAGE_CUES)
            mix = {"text": 0.5, "price": 0.1, "both": 0.4}
        channel = _choice(rng, mix)
        text_cue, price_cue = channel in ("text", "both"), channel in ("price", "both")
        if item.pattern == "text_price_only" and rng.random() < 0.45:
            item.reuse = "identical" if rng.random() < 0.5 else "near"
    item.price_cue = price_cue
    if price_cue:
        item.price_ratio = float(rng.uniform(0.10, 0.35))
    else:
        item.price_ratio = float(
            rng.uniform(0.7, 1.15) if rng.random() < 0.85 else rng.uniform(0.5, 0.7)
        )
    item.text = _text_plan(item, rng, text_cue=text_cue)

    cue = item.image_cue
    shots = (_shot(item.brand, item.colour_key, _fake_logo(item.brand, cue, rng)),)
    overlay, overlay_text = "", ""
    if cue == "collage":
        others = rng.choice(len(BRANDS), size=3, replace=True)
        shots += tuple(
            _shot(BRANDS[int(b)], BRANDS[int(b)].colourways[int(rng.integers(4))]) for b in others
        )
    elif cue in ("stamp", "diagonal_band"):
        overlay, overlay_text = cue, STAMP_TEXTS[int(rng.integers(len(STAMP_TEXTS)))]
    item.image = ImageSpec(shots, item.seller.photo, overlay, overlay_text)
    if item.text.claims_original:
        item.hard_cases += ("claims_original",)
    item.infringement_type = _infringement_type(item)


def _infringement_type(item: _Listing) -> str:
    """Copied images are copyright; a faked mark alone is logo misuse; dupe wording is other."""
    assert item.text is not None
    if item.reuse or item.image_cue == "collage":
        return "copyright"
    if item.image_cue in ("misspelt", "recoloured", "distorted") and not (
        item.text.counterfeit_words or item.price_cue
    ):
        return "logo_misuse"
    if item.text.dupe_wording and not item.image_cue and not item.price_cue:
        return "other"
    return "counterfeit"


def _pick_reuse_sources(listings: list[_Listing], rng: np.random.Generator) -> None:
    """Point each photo-reusing listing at an earlier genuine listing of the same brand.

    The source is another seller's single-shot, unaltered photo. A seller scrapes one victim
    shop and keeps copying from it, as scrapers do; that also keeps the graph of
    "shares a photo with" from chaining most sellers into one group, which would leave a
    seller- and image-grouped split nothing to split. With no source available yet the
    listing falls back to a clean render of the true mark (still no image cue).
    """
    candidates: dict[str, list[_Listing]] = {}
    victims: dict[str, _Seller] = {}
    for item in listings:
        if item.reuse:
            pool = [s for s in candidates.get(item.brand.name, []) if s.seller is not item.seller]
            victim = victims.get(item.seller.seller_id)
            if victim is None and pool:
                shops = sorted({s.seller.seller_id: s.seller for s in pool}.items())
                victim = victims[item.seller.seller_id] = shops[int(rng.integers(len(shops)))][1]
            pool = [s for s in pool if s.seller is victim]
            if pool:
                item.reused_from = pool[int(rng.integers(len(pool)))].listing_id
            else:
                item.reuse = ""
            if item.infringing:
                item.infringement_type = _infringement_type(item)
        elif not item.infringing and not item.hard_cases:
            candidates.setdefault(item.brand.name, []).append(item)


def _text_cue_label(plan: TextPlan) -> str:
    parts = []
    if plan.counterfeit_words:
        parts.append(f"words_{plan.counterfeit_words}")
    if plan.dupe_wording:
        parts.append("dupe")
    if plan.obfuscation:
        parts.append(f"obfuscation_{plan.obfuscation}")
    return "+".join(parts)


def _format_price(amount: float, currency: str) -> str:
    return f"{amount:.0f}" if currency in _NO_MINOR_UNITS else f"{amount:.2f}"


def _atomic_write(path: Path, data: bytes) -> None:
    """Write via a temporary file so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _csv_bytes(header: tuple[str, ...], rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _validate(n: Any, seed: Any, image_size: Any, label_noise: Any) -> None:
    def is_int(value: Any) -> bool:
        return isinstance(value, (int, np.integer)) and not isinstance(value, bool)

    if not is_int(n) or n < 1:
        raise ValueError(f"demo data parameter n: expected an integer >= 1, found {n!r}")
    if not is_int(seed) or seed < 0:
        raise ValueError(f"demo data parameter seed: expected an integer >= 0, found {seed!r}")
    if not is_int(image_size) or not 32 <= image_size <= 1024:
        raise ValueError(
            "demo data parameter image_size: expected an integer in [32, 1024], "
            f"found {image_size!r}"
        )
    if not isinstance(label_noise, (int, float)) or not 0.0 <= float(label_noise) <= 1.0:
        raise ValueError(
            f"demo data parameter label_noise: expected a number in [0, 1], found {label_noise!r}"
        )


def _stamp(n: int, seed: int, image_size: int, label_noise: float) -> dict[str, Any]:
    return {
        "generator": _GENERATOR,
        "version": GENERATOR_VERSION,
        "n": int(n),
        "seed": int(seed),
        "image_size": int(image_size),
        "label_noise": float(label_noise),
    }


def _dataset(root: Path, n: int) -> DemoDataset:
    return DemoDataset(
        root,
        root / "listings.csv",
        root / "brands.csv",
        root / "images",
        n,
        root / "brands_by_currency.csv",
    )


def generate_demo_data(
    out_dir: str | Path,
    n: int = 2000,
    seed: int = 0,
    *,
    image_size: int = 128,
    label_noise: float = 0.0,
) -> DemoDataset:
    """Write the demo dataset under `out_dir`, replacing any earlier demo files there.

    Writes listings.csv, brands.csv (one row per brand, its USD reference price),
    brands_by_currency.csv (one row per brand and demo currency: the catalog training uses),
    images/<listing_id>.jpg, brands/<brand>.png, cues.csv (the generator's ground truth per
    listing, for analysis only, never a model input), brand_catalog/ (the brands' reference
    catalog, :mod:`ipguard.demo.references`) and, last, demo.json, the stamp that
    marks the dataset complete. Listing images left by an earlier, larger generation are
    removed so the folder matches the manifest.
    """
    _validate(n, seed, image_size, label_noise)
    started = time.perf_counter()
    root = Path(out_dir)
    images_dir, brands_dir = root / "images", root / "brands"
    images_dir.mkdir(parents=True, exist_ok=True)
    brands_dir.mkdir(parents=True, exist_ok=True)
    (root / "demo.json").unlink(missing_ok=True)

    seeds = np.random.SeedSequence(seed).spawn(3)
    rng_sellers, rng_plan, rng_noise = (np.random.default_rng(s) for s in seeds)
    sellers = _make_sellers(n, rng_sellers)
    listings = _plan_listings(n, sellers, rng_plan)
    _assign_labels(listings, rng_plan)
    for item in listings:
        (_plan_infringing if item.infringing else _plan_genuine)(item, rng_plan)
    _pick_reuse_sources(listings, rng_plan)

    written: dict[str, bytes] = {}
    rows, cue_rows = [], []
    flipped = set(rng_noise.choice(n, size=round(label_noise * n), replace=False).tolist())
    for i, item in enumerate(listings):
        assert item.text is not None and item.image is not None
        # Own streams per listing and per modality: a listing's text does not depend on the
        # image size, nor on how any other listing was drawn.
        image_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(3, i)))
        text_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(4, i)))
        if item.reused_from:
            source = written[item.reused_from]
            data = source if item.reuse == "identical" else near_duplicate(source, image_rng)
        else:
            image = render_image(item.image, image_size, image_rng)
            data = encode_jpeg(image, item.seller.photo.jpeg_quality)
        written[item.listing_id] = data
        (images_dir / f"{item.listing_id}.jpg").write_bytes(data)

        text = compose_text(item.text, text_rng)
        label = LABELS[int(item.infringing)]
        infringement_type = item.infringement_type
        if i in flipped:
            label = LABELS[int(not item.infringing)]
            infringement_type = "" if item.infringing else "other"
        currency = item.market.currency
        price = item.brand.reference_price * item.price_ratio * FX_PER_USD[currency]
        listed_at = _EPOCH + timedelta(seconds=int(item.listed_at * 86400))
        rows.append(
            [
                item.listing_id,
                text.title,
                text.description,
                item.brand.name,
                item.brand.category,
                item.market.country,
                item.language,
                _format_price(price, currency),
                currency,
                item.seller.seller_id,
                f"images/{item.listing_id}.jpg",
                listed_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                label,
                infringement_type,
            ]
        )
        cue_rows.append(
            [
                item.listing_id,
                item.seller.kind,
                item.pattern,
                item.image_cue,
                _text_cue_label(item.text),
                str(int(item.price_cue)),
                f"{item.price_ratio:.3f}",
                item.reused_from,
                "+".join(item.hard_cases),
                str(int(i in flipped)),
            ]
        )

    stale = re.compile(r"L\d+\.jpg")
    for path in images_dir.iterdir():
        if stale.fullmatch(path.name) and path.stem not in written:
            path.unlink()
    brand_rows, catalog_rows = [], []
    for brand in BRANDS:
        reference = brands_dir / f"{brand.name}.png"
        buffer = io.BytesIO()
        render_reference_logo(brand.logo).save(buffer, format="PNG")
        _atomic_write(reference, buffer.getvalue())
        brand_rows.append(
            [brand.name, f"{brand.reference_price:.2f}", brand.currency, brand.category,
             f"brands/{brand.name}.png"]
        )  # fmt: skip
        catalog_rows.extend(
            [brand.name, _format_price(local_reference_price(brand, currency), currency),
             currency, brand.category, f"brands/{brand.name}.png"]
            for currency in CATALOG_CURRENCIES
        )  # fmt: skip
    header = ("brand", "reference_price", "currency", "category", "reference_image")
    _atomic_write(root / "brands.csv", _csv_bytes(header, brand_rows))
    _atomic_write(root / "brands_by_currency.csv", _csv_bytes(header, catalog_rows))
    _atomic_write(root / "cues.csv", _csv_bytes(CUE_COLUMNS, cue_rows))
    _atomic_write(root / "listings.csv", _csv_bytes(MANIFEST_COLUMNS, rows))
    # own random streams: nothing above changes with it (this module is imported by it)
    from ipguard.demo.references import write_reference_catalog

    write_reference_catalog(root, seed=seed, image_size=image_size)

    stamp = _stamp(n, seed, image_size, float(label_noise))
    stamp["counts"] = {
        "label": dict(sorted(Counter(row[12] for row in rows).items())),
        "language": dict(sorted(Counter(row[6] for row in rows).items())),
        "sellers": len({row[9] for row in rows}),
    }
    _atomic_write(root / "demo.json", (json.dumps(stamp, indent=2) + "\n").encode("utf-8"))
    log.info("demo data: %d listings written to %s in %.1f s", n, root,
             time.perf_counter() - started)  # fmt: skip
    return _dataset(root, n)


# demo folders already announced as reused in this process: one log line per fact
_REUSE_ANNOUNCED: set[Path] = set()


def ensure_demo_data(
    out_dir: str | Path, n: int = 2000, seed: int = 0, **kwargs: Any
) -> DemoDataset:
    """Return the demo dataset in `out_dir`, generating it only when it is missing or stale.

    A dataset counts as present when demo.json matches these parameters and the generator
    version, and the manifest, brand catalog and all n images exist; otherwise it is rebuilt,
    so calling this twice, or from several entry points, costs one generation.
    """
    unknown = sorted(set(kwargs) - {"image_size", "label_noise"})
    if unknown:
        raise TypeError(
            f"ensure_demo_data: expected keyword arguments image_size, label_noise; found {unknown}"
        )
    image_size = kwargs.get("image_size", 128)
    label_noise = float(kwargs.get("label_noise", 0.0))
    _validate(n, seed, image_size, label_noise)
    root = Path(out_dir)
    if _is_complete(root, _stamp(n, seed, image_size, label_noise)):
        from ipguard.demo.references import ensure_reference_catalog

        ensure_reference_catalog(root, seed=seed, image_size=image_size)  # older demo folders
        if root.resolve() not in _REUSE_ANNOUNCED:  # configs resolve this path many times
            _REUSE_ANNOUNCED.add(root.resolve())
            log.info("demo data: reusing %s", root)
        return _dataset(root, n)
    return generate_demo_data(root, n, seed, image_size=image_size, label_noise=label_noise)


def _is_complete(root: Path, expected: dict[str, Any]) -> bool:
    try:
        found = json.loads((root / "demo.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(found, dict) or any(found.get(k) != v for k, v in expected.items()):
        return False
    required = [root / name for name in ("listings.csv", "brands.csv", "cues.csv")]
    required.append(root / "brands_by_currency.csv")
    required += [root / "brands" / f"{b.name}.png" for b in BRANDS]
    if not all(path.is_file() for path in required):
        return False
    width = max(6, len(str(expected["n"])))
    images = root / "images"
    return all((images / f"L{i:0{width}d}.jpg").is_file() for i in range(1, expected["n"] + 1))


def demo_manifest(
    out_dir: str | Path, n: int = 2000, seed: int = 0, wanted: bool = True
) -> str | None:
    """The demo manifest in ``out_dir``, generated on first use; ``None`` unless ``wanted``.

    The configs' ``${ipguard.demo_manifest:DIR[,N,SEED[,WANTED]]}`` (see :mod:`ipguard.config`):
    a config resolves it only when it reads the manifest, so a user's ``manifest=PATH``
    replaces it before anything is generated.
    """
    if not wanted:
        return None
    return str(ensure_demo_data(out_dir, n=n, seed=seed).manifest_path)


def demo_catalog(manifest: str | Path | None) -> str | None:
    """The brand catalog (one price per brand and demo currency) of a demo manifest; ``None``
    for any other manifest, which brings its own catalog or none.

    The configs' ``${ipguard.demo_catalog:${manifest}}``: the catalog follows the manifest.
    """
    if manifest is None:
        return None
    path = Path(manifest)
    try:
        stamp = json.loads((path.parent / "demo.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    generated = isinstance(stamp, dict) and stamp.get("generator") == _GENERATOR
    if not generated or path.name != "listings.csv":
        return None
    return str(_dataset(path.parent, int(stamp["n"])).catalog_path)


def demo_reference_catalog(manifest: str | Path | None) -> str | None:
    """The brand reference catalog folder of a demo manifest (written on first use, without
    generating the listings again); ``None`` for any other manifest.

    The configs' ``${ipguard.demo_reference_catalog:${manifest}}``, as ``demo_catalog``.
    """
    if manifest is None or demo_catalog(manifest) is None:
        return None
    from ipguard.demo.references import ensure_reference_catalog

    return str(ensure_reference_catalog(Path(manifest).parent))


def describe(dataset: DemoDataset) -> dict[str, Any]:
    """Counts per label and language, as the CLI prints them; read from the manifest."""
    with dataset.manifest_path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {
        "listings": len(rows),
        "sellers": len({row["seller_id"] for row in rows}),
        "label": dict(sorted(Counter(row["label"] for row in rows).items())),
        "language": dict(sorted(Counter(row["language"] for row in rows).items())),
        "infringement_type": dict(
            sorted(Counter(row["infringement_type"] or "-" for row in rows).items())
        ),
    }


__all__ = [
    "BRANDS",
    "CATALOG_CURRENCIES",
    "COLOUR_KEYS",
    "FX_PER_USD",
    "MARKETS",
    "Brand",
    "DemoDataset",
    "Market",
    "demo_catalog",
    "demo_manifest",
    "demo_reference_catalog",
    "describe",
    "ensure_demo_data",
    "generate_demo_data",
    "local_reference_price",
]
