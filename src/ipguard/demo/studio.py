"""Studio product photos, as marketplace catalogues are full of: one centred product on a light
background, the same framing for every item, and several shots of each item.

That sameness is the point. Two different handbags photographed this way share most of their
low-frequency picture (a light frame around a central blob), which is exactly what a small
perceptual hash sees, so near-duplicate detection has to be checked on photos like these and
not only on random pictures. Items still differ the way real products do: silhouette
proportions, colour, pattern and the brand's mark, and a counterfeit's mark is subtly wrong.

Everything is drawn with Pillow primitives at twice the output size and downsampled, so edges
are anti-aliased like a photo's; all randomness comes from the generator passed in.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

__all__ = [
    "CATEGORIES",
    "GLYPHS",
    "MARK_DEFECTS",
    "PATTERNS",
    "Item",
    "Mark",
    "Shot",
    "encode_jpeg",
    "random_shot",
    "render_mark",
    "render_photo",
    "reupload",
    "with_defect",
]

RGB = tuple[int, int, int]

CATEGORIES: tuple[str, ...] = ("bag", "shoe", "watch", "bottle", "cap", "headphones", "wallet")
GLYPHS: tuple[str, ...] = ("circle", "triangle", "diamond", "ring", "bars", "cross")
MARK_DEFECTS: tuple[str, ...] = ("distorted", "misspelt", "recoloured", "misplaced")
PATTERNS: tuple[str, ...] = ("plain", "plain", "stripes", "checks", "dots", "two_tone")

_SUPERSAMPLE = 2

# Where the mark sits on each product (centre x, centre y, width), as fractions of the side.
_MARK_BOX: dict[str, tuple[float, float, float]] = {
    "bag": (0.50, 0.60, 0.30),
    "shoe": (0.50, 0.56, 0.24),
    "watch": (0.50, 0.44, 0.20),
    "bottle": (0.50, 0.64, 0.26),
    "cap": (0.50, 0.47, 0.24),
    "headphones": (0.24, 0.62, 0.14),
    "wallet": (0.50, 0.52, 0.30),
}


@dataclass(frozen=True)
class Mark:
    """A brand's logo as printed on a product: a glyph beside a short wordmark.

    The genuine mark has ``stretch=1, angle=0, offset=(0, 0), scale=1``; a counterfeit's
    differs in one of them, or in its letters or colour (see :data:`MARK_DEFECTS`).
    """

    glyph: str
    wordmark: str
    colour: RGB
    stretch: float = 1.0
    angle: float = 0.0
    offset: tuple[float, float] = (0.0, 0.0)
    scale: float = 1.0


@dataclass(frozen=True)
class Item:
    """One product as its seller stocks it; every photo of it shows the same thing.

    Real products of one category differ in many small ways (a longer strap, a square case,
    a contrasting cap), so an item has a few continuous ``shape`` parameters in [0, 1] that
    each category's drawing reads, plus a style ``variant`` and three colours.
    """

    category: str
    body: RGB
    trim: RGB  # straps, handles, soles, caps, bands
    accent: RGB  # dials, flaps, cushions, clasps
    pattern: str
    pattern_step: float  # spacing of stripes/checks/dots, fraction of the side
    pattern_angle: float  # degrees, for stripes
    pattern_phase: float  # 0..1, where the pattern starts
    shape: tuple[float, float, float, float]
    variant: int  # 0-2: a style per category (handle type, case shape, cup shape, ...)
    mark: Mark


@dataclass(frozen=True)
class Shot:
    """How one photo was taken: framing and light differ a little from shot to shot."""

    dx: float  # shift, fraction of the side
    dy: float
    zoom: float
    angle: float  # degrees
    exposure: float  # brightness multiplier
    warmth: float  # red-blue white-balance shift, -1..1
    background: RGB
    quality: int  # JPEG quality the seller's camera app saves at


def random_shot(rng: np.random.Generator, *, background: RGB, quality: int) -> Shot:
    """A shot as a seller's studio set-up takes it: the product where it always stands, give
    or take a small shift, zoom, tilt and change of light."""
    return Shot(
        dx=float(rng.uniform(-0.025, 0.025)),
        dy=float(rng.uniform(-0.025, 0.025)),
        zoom=float(rng.uniform(0.95, 1.05)),
        angle=float(rng.uniform(-3.0, 3.0)),
        exposure=float(rng.uniform(0.96, 1.04)),
        warmth=float(rng.uniform(-0.5, 0.5)),
        background=background,
        quality=quality,
    )


def render_photo(item: Item, shot: Shot, size: int) -> Image.Image:
    """The item on a light studio background with a soft floor shadow, as an RGB image."""
    if item.category not in CATEGORIES:
        raise ValueError(f"product category: expected one of {CATEGORIES}, found {item.category!r}")
    big = size * _SUPERSAMPLE
    product = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    _draw_product(product, item, float(big))
    _draw_mark(product, item, float(big))

    product = product.transform(
        (big, big),
        Image.Transform.AFFINE,
        _shot_geometry(shot, big),
        resample=Image.Resampling.BILINEAR,
    )
    canvas = _backdrop(shot.background, big).copy()
    canvas.alpha_composite(_shadow(product, big), (0, round(0.02 * big)))
    canvas.alpha_composite(product)
    image = canvas.convert("RGB").resize((size, size), Image.Resampling.LANCZOS)
    return _light(image, shot)


def encode_jpeg(image: Image.Image, quality: int) -> bytes:
    """JPEG bytes without metadata, so identical pixels always give identical files."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=int(quality), optimize=False)
    return buffer.getvalue()


def reupload(jpeg: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    """A photo copied from another listing, as copies really arrive: cropped by up to 3% on
    each side, resized (aspect ratio kept), and saved again at another JPEG quality.

    Returns the new bytes and a short description of what was done, for the ground truth.
    """
    image = Image.open(io.BytesIO(jpeg)).convert("RGB")
    w, h = image.size
    left, top, right, bottom = (rng.uniform(0.0, 0.03, size=4) * np.array([w, h, w, h])).round()
    image = image.crop((int(left), int(top), w - int(right), h - int(bottom)))
    scale = float(rng.uniform(0.8, 1.3))
    image = image.resize(
        (round(image.width * scale), round(image.height * scale)), Image.Resampling.BILINEAR
    )
    quality = int(rng.integers(60, 93))
    crop = (left + right + top + bottom) / (2 * (w + h))
    edit = f"crop={crop:.3f} size={image.width}x{image.height} quality={quality}"
    return encode_jpeg(image, quality), edit


# --- drawing --------------------------------------------------------------------------------


@lru_cache(maxsize=32)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=max(6, size))


def _shade(colour: RGB, factor: float) -> RGB:
    return tuple(int(min(255, max(0, c * factor))) for c in colour)  # type: ignore[return-value]


def _shot_geometry(shot: Shot, side: int) -> tuple[float, float, float, float, float, float]:
    """Pillow's affine coefficients (output -> input) for the shot's zoom, tilt and shift."""
    angle = math.radians(shot.angle)
    cos, sin = math.cos(angle) / shot.zoom, math.sin(angle) / shot.zoom
    centre = side / 2
    to_x, to_y = centre + shot.dx * side, centre + shot.dy * side  # where the centre lands
    return (cos, sin, centre - cos * to_x - sin * to_y, -sin, cos, centre + sin * to_x - cos * to_y)


@lru_cache(maxsize=64)
def _backdrop(colour: RGB, side: int) -> Image.Image:
    """A light sweep: a touch brighter in the middle, as under a softbox (cached: copy it)."""
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / side
    falloff = 1.02 - 0.10 * ((xx - 0.5) ** 2 + (yy - 0.42) ** 2)
    pixels = np.asarray(colour, dtype=np.float32) * falloff[:, :, None]
    rgb = np.clip(pixels, 0, 255).astype(np.uint8)
    alpha = np.full((side, side, 1), 255, dtype=np.uint8)
    return Image.fromarray(np.concatenate([rgb, alpha], axis=2), "RGBA")


def _shadow(product: Image.Image, side: int) -> Image.Image:
    """A soft grey shadow of the product's own outline, a little below it."""
    alpha = product.getchannel("A").point(lambda a: a * 0.22)
    alpha = alpha.filter(ImageFilter.BoxBlur(max(1, side // 40)))
    shadow = Image.new("RGBA", product.size, (60, 60, 60, 0))
    shadow.putalpha(alpha)
    return shadow


def _light(image: Image.Image, shot: Shot) -> Image.Image:
    """Exposure and white balance of this shot."""
    pixels = np.asarray(image, dtype=np.float32) * shot.exposure
    pixels[:, :, 0] *= 1 + 0.03 * shot.warmth
    pixels[:, :, 2] *= 1 - 0.03 * shot.warmth
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def _pattern_layer(item: Item, side: int) -> Image.Image:
    """The item's surface: body colour with its pattern, lit from above like a softbox."""
    layer = Image.new("RGB", (side, side), item.body)
    draw = ImageDraw.Draw(layer)
    step = max(4, int(item.pattern_step * side))
    line = max(1, step // 3)
    offset = int(item.pattern_phase * step)
    if item.pattern == "stripes":
        slope = math.tan(math.radians(item.pattern_angle))
        for x in range(-2 * side + offset, 3 * side, step):
            draw.line((x, 0, x + slope * side, side), fill=item.trim, width=line)
    elif item.pattern == "checks":
        for k in range(offset, side, step):
            draw.line((k, 0, k, side), fill=item.trim, width=line)
            draw.line((0, k, side, k), fill=item.trim, width=line)
    elif item.pattern == "dots":
        r = max(1, step // 4)
        for yk, y in enumerate(range(offset, side, step)):
            for x in range(offset + (yk % 2) * step // 2, side, step):
                draw.ellipse((x - r, y - r, x + r, y + r), fill=item.trim)
    elif item.pattern == "two_tone":
        split = int(side * (0.4 + 0.25 * item.pattern_phase))
        draw.rectangle((0, split, side, side), fill=item.trim)
    elif item.pattern != "plain":
        raise ValueError(f"item pattern: expected one of {PATTERNS}, found {item.pattern!r}")
    light = np.linspace(1.08, 0.88, side, dtype=np.float32)[:, None, None]
    lit = np.asarray(layer, dtype=np.float32) * light
    return Image.fromarray(np.clip(lit, 0, 255).astype(np.uint8), "RGB")


def _draw_product(canvas: Image.Image, item: Item, s: float) -> None:
    """The category's silhouette, filled with the item's surface, plus its details.

    Drawn in unit coordinates (0..1 across the canvas) and scaled by ``s``; ``a, b, c, d`` are
    the item's shape parameters, each in [0, 1].
    """
    mask = Image.new("L", canvas.size, 0)
    body = ImageDraw.Draw(mask)
    draw = ImageDraw.Draw(canvas)
    a, b, c, d = item.shape
    v = item.variant

    def p(x: float, y: float) -> tuple[float, float]:
        return (x * s, y * s)

    def box(x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
        return (x0 * s, y0 * s, x1 * s, y1 * s)

    def width(fraction: float) -> int:
        return max(2, int(s * fraction))

    category = item.category
    after: list[tuple[str, tuple, dict]] = []  # details drawn over the body's surface
    if category == "bag":
        top, half_top, half_bottom = 0.30 + 0.14 * a, 0.20 + 0.08 * b, 0.30 + 0.09 * b
        bottom = 0.80 + 0.06 * c
        body.polygon(
            [
                p(0.5 - half_top, top),
                p(0.5 + half_top, top),
                p(0.5 + half_bottom, bottom),
                p(0.5 - half_bottom, bottom),
            ],
            fill=255,
        )
        if v == 0:  # one arched handle
            draw.arc(
                box(0.5 - half_top * 0.7, top - 0.2 - 0.1 * d, 0.5 + half_top * 0.7, top + 0.12),
                180,
                360,
                fill=item.trim,
                width=width(0.02 + 0.03 * d),
            )
        elif v == 1:  # two short handles
            for x in (0.5 - half_top * 0.5, 0.5 + half_top * 0.5):
                draw.arc(
                    box(x - 0.07, top - 0.12 - 0.05 * d, x + 0.07, top + 0.06),
                    180,
                    360,
                    fill=item.trim,
                    width=width(0.025),
                )
        else:  # a thin shoulder strap and a flap
            draw.arc(
                box(0.5 - half_top - 0.05, top - 0.28 - 0.06 * d, 0.5 + half_top + 0.05, top + 0.2),
                190,
                350,
                fill=item.trim,
                width=width(0.012),
            )
            after.append(
                (
                    "polygon",
                    (
                        [
                            p(0.5 - half_top, top),
                            p(0.5 + half_top, top),
                            p(0.5, top + 0.12 + 0.1 * c),
                        ],
                    ),
                    {"fill": item.accent},
                )
            )
    elif category == "shoe":
        toe, heel, sole = 0.40 + 0.08 * a, 0.30 + 0.1 * b, 0.06 + 0.05 * c
        ground = 0.74
        upper = [
            p(0.12, ground - sole),
            p(0.13, heel),
            p(0.27, heel - 0.03),
            p(0.4, heel + 0.1),
            p(0.58, toe),
            p(0.80, ground - sole - 0.1 - 0.05 * d),
            p(0.91, ground - sole),
        ]
        body.polygon(upper, fill=255)
        sole_colour = item.trim if v == 1 else (238, 236, 232)
        draw.rounded_rectangle(
            box(0.10, ground - sole, 0.93, ground), radius=s * 0.02, fill=sole_colour
        )
        for k in range(2 + v):  # laces
            x = 0.38 + 0.06 * k
            after.append(
                (
                    "line",
                    ([p(x, heel + 0.1 + 0.02 * k), p(x + 0.05, toe + 0.02)],),
                    {"fill": item.accent, "width": width(0.012)},
                )
            )
    elif category == "watch":
        case, strap = 0.18 + 0.07 * a, 0.08 + 0.06 * b
        draw.rectangle(box(0.5 - strap, 0.04, 0.5 + strap, 0.96), fill=item.trim)
        outline = box(0.5 - case, 0.48 - case, 0.5 + case, 0.48 + case)
        if v == 0:
            body.ellipse(outline, fill=255)
        elif v == 1:
            body.rounded_rectangle(outline, radius=s * 0.05, fill=255)
        else:
            body.rounded_rectangle(
                box(0.5 - case * 0.8, 0.48 - case * 1.15, 0.5 + case * 0.8, 0.48 + case * 1.15),
                radius=s * 0.08,
                fill=255,
            )
        dial = case * (0.62 + 0.2 * c)
        after.append(
            (
                "ellipse",
                (box(0.5 - dial, 0.48 - dial, 0.5 + dial, 0.48 + dial),),
                {"fill": item.accent},
            )
        )
        angle = math.radians(360 * d)
        after.append(
            (
                "line",
                (
                    [
                        p(0.5, 0.48),
                        p(0.5 + dial * 0.8 * math.sin(angle), 0.48 - dial * 0.8 * math.cos(angle)),
                    ],
                ),
                {"fill": item.trim, "width": width(0.012)},
            )
        )
    elif category == "bottle":
        half, shoulder = 0.16 + 0.08 * a, 0.32 + 0.1 * b
        if v == 2:  # faceted
            body.polygon(
                [
                    p(0.5 - half * 0.7, shoulder),
                    p(0.5 + half * 0.7, shoulder),
                    p(0.5 + half, shoulder + 0.12),
                    p(0.5 + half, 0.88),
                    p(0.5 - half, 0.88),
                    p(0.5 - half, shoulder + 0.12),
                ],
                fill=255,
            )
        else:
            body.rounded_rectangle(
                box(0.5 - half, shoulder, 0.5 + half, 0.88), radius=s * (0.02 + 0.08 * v), fill=255
            )
        neck, cap_h, cap_w = 0.05 + 0.02 * c, 0.08 + 0.08 * d, 0.07 + 0.07 * c
        draw.rectangle(box(0.5 - neck, shoulder - 0.07, 0.5 + neck, shoulder), fill=(205, 205, 200))
        draw.rounded_rectangle(
            box(0.5 - cap_w, shoulder - 0.07 - cap_h, 0.5 + cap_w, shoulder - 0.07),
            radius=s * 0.015,
            fill=item.trim,
        )
    elif category == "cap":
        crown, brim = 0.20 + 0.1 * a, 0.14 + 0.14 * b
        body.pieslice(box(0.22, crown, 0.78, 0.86 + 0.04 * c), 180, 360, fill=255)
        brim_colour = item.trim if v != 0 else item.body
        draw.ellipse(box(0.40, 0.52, 0.78 + brim, 0.62 + 0.04 * d), fill=_shade(brim_colour, 0.8))
        after.append(
            ("ellipse", (box(0.47, crown - 0.02, 0.53, crown + 0.03),), {"fill": item.accent})
        )
        if v == 2:  # panel seams
            for x in (0.38, 0.62):
                after.append(
                    (
                        "line",
                        ([p(0.5, crown + 0.02), p(x, 0.55)],),
                        {"fill": item.accent, "width": width(0.008)},
                    )
                )
    elif category == "headphones":
        band_top, thick = 0.12 + 0.1 * a, 0.02 + 0.03 * b
        cup_w, cup_h = 0.09 + 0.06 * c, 0.14 + 0.08 * d
        draw.arc(
            box(0.16, band_top, 0.84, 0.95 - band_top), 180, 360, fill=item.trim, width=width(thick)
        )
        for x in (0.16 + cup_w * 0.6, 0.84 - cup_w * 0.6):
            cup = box(x - cup_w, 0.62 - cup_h, x + cup_w, 0.62 + cup_h)
            if v == 0:
                body.ellipse(cup, fill=255)
            elif v == 1:
                body.rounded_rectangle(cup, radius=s * 0.04, fill=255)
            else:
                body.rounded_rectangle(cup, radius=s * 0.1, fill=255)
            inner = box(x - cup_w * 0.5, 0.62 - cup_h * 0.6, x + cup_w * 0.5, 0.62 + cup_h * 0.6)
            after.append(("ellipse", (inner,), {"fill": item.accent}))
    elif category == "wallet":
        half_w, half_h = 0.26 + 0.08 * a, 0.15 + 0.07 * b
        body.rounded_rectangle(
            box(0.5 - half_w, 0.52 - half_h, 0.5 + half_w, 0.52 + half_h),
            radius=s * (0.01 + 0.04 * c),
            fill=255,
        )
        flap = 0.52 - half_h + (0.08 + 0.12 * d) * half_h * 2
        after.append(
            (
                "line",
                ([p(0.5 - half_w, flap), p(0.5 + half_w, flap)],),
                {"fill": item.trim, "width": width(0.018)},
            )
        )
        if v >= 1:  # a clasp
            r = 0.03 + 0.01 * v
            after.append(
                (
                    "ellipse",
                    (box(0.5 + half_w - 0.12 - r, flap - r, 0.5 + half_w - 0.12 + r, flap + r),),
                    {"fill": item.accent},
                )
            )
    else:
        raise ValueError(f"product category: expected one of {CATEGORIES}, found {category!r}")
    canvas.paste(_pattern_layer(item, canvas.width), (0, 0), mask)
    for method, args, kwargs in after:
        getattr(draw, method)(*args, **kwargs)


def _draw_mark(canvas: Image.Image, item: Item, s: float) -> None:
    """The brand mark at its fixed place on the product, drawn on a light plate."""
    mark = item.mark
    cx, cy, fw = _MARK_BOX[item.category]
    plate = _mark_plate(mark, max(10, int(fw * s * mark.scale)))
    x = int((cx + mark.offset[0]) * s - plate.width / 2)
    y = int((cy + mark.offset[1]) * s - plate.height / 2)
    canvas.alpha_composite(plate, (max(0, x), max(0, y)))


def render_mark(mark: Mark, width: int = 256) -> Image.Image:
    """The mark alone on a white ground, as a brand supplies its logo to a reference catalog."""
    plate = _mark_plate(mark, width)
    image = Image.new("RGBA", (plate.width + width // 8, plate.height + width // 8), "white")
    image.alpha_composite(plate, (width // 16, width // 16))
    return image.convert("RGB")


def _mark_plate(mark: Mark, width: int) -> Image.Image:
    """Glyph and wordmark on a rounded light plate, ``width`` pixels wide before any stretch."""
    height = max(6, int(width * 0.42))
    plate = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(plate)
    draw.rounded_rectangle(
        (0, 0, width - 1, height - 1), radius=max(1, height // 5), fill=(246, 244, 238, 255)
    )
    r = height * 0.34
    gx, gy = height * 0.5, height * 0.5
    _draw_glyph(draw, mark.glyph, gx, gy, r, mark.colour)
    font_size = int(height * 0.5)
    font = _font(font_size)
    room = width - height * 1.05
    while font_size > 6 and draw.textlength(mark.wordmark, font=font) > room:
        font_size -= 1
        font = _font(font_size)
    draw.text(
        (height * 0.95 + room / 2, height * 0.52),
        mark.wordmark,
        font=font,
        fill=mark.colour,
        anchor="mm",
    )
    if mark.stretch != 1.0:
        plate = plate.resize((max(4, int(width * mark.stretch)), height), Image.Resampling.BICUBIC)
    if mark.angle:
        plate = plate.rotate(mark.angle, resample=Image.Resampling.BICUBIC, expand=True)
    return plate


def _draw_glyph(
    draw: ImageDraw.ImageDraw, glyph: str, x: float, y: float, r: float, colour: RGB
) -> None:
    if glyph == "circle":
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    elif glyph == "ring":
        draw.ellipse((x - r, y - r, x + r, y + r), outline=colour, width=max(1, int(r * 0.4)))
    elif glyph == "triangle":
        draw.polygon([(x, y - r), (x + r, y + r * 0.8), (x - r, y + r * 0.8)], fill=colour)
    elif glyph == "diamond":
        draw.polygon([(x, y - r), (x + r * 0.75, y), (x, y + r), (x - r * 0.75, y)], fill=colour)
    elif glyph == "bars":
        for k in (-1, 0, 1):
            draw.rectangle(
                (x + k * r * 0.7 - r * 0.2, y - r, x + k * r * 0.7 + r * 0.2, y + r), fill=colour
            )
    elif glyph == "cross":
        t = r * 0.35
        draw.rectangle((x - t, y - r, x + t, y + r), fill=colour)
        draw.rectangle((x - r, y - t, x + r, y + t), fill=colour)
    else:
        raise ValueError(f"mark glyph: expected one of {GLYPHS}, found {glyph!r}")


def with_defect(mark: Mark, defect: str, rng: np.random.Generator) -> Mark:
    """The brand's mark as a counterfeiter prints it: close, but wrong in one way."""
    if defect == "distorted":
        if rng.random() < 0.5:
            return replace(mark, stretch=float(rng.choice([0.72, 0.78, 1.3, 1.4])))
        return replace(mark, angle=float(rng.choice([-1, 1]) * rng.uniform(10, 20)))
    if defect == "misspelt":
        return replace(mark, wordmark=_misspell(mark.wordmark, rng))
    if defect == "recoloured":
        return replace(mark, colour=_other_colour(mark.colour, rng))
    if defect == "misplaced":
        dx, dy = rng.choice([-1, 1], size=2) * rng.uniform(0.06, 0.1, size=2)
        return replace(mark, offset=(float(dx), float(dy)), scale=float(rng.uniform(0.7, 0.85)))
    raise ValueError(f"mark defect: expected one of {MARK_DEFECTS}, found {defect!r}")


_LOOKALIKE = {"O": "Q", "E": "F", "A": "R", "N": "M", "I": "L", "V": "U", "R": "P", "S": "5"}


def _misspell(word: str, rng: np.random.Generator) -> str:
    """One letter swapped with its neighbour or replaced by a look-alike."""
    i = int(rng.integers(len(word)))
    if rng.random() < 0.5 and len(word) > 2:
        j = min(i, len(word) - 2)
        swapped = word[:j] + word[j + 1] + word[j] + word[j + 2 :]
        if swapped != word:
            return swapped
    return word[:i] + _LOOKALIKE.get(word[i], "X" if word[i] != "X" else "K") + word[i + 1 :]


def _other_colour(colour: RGB, rng: np.random.Generator) -> RGB:
    """A clearly different hue at a similar brightness."""
    r, g, b = colour
    options = [c for c in ((g, b, r), (b, r, g), (255 - r, 255 - g, 255 - b)) if c != colour]
    return options[int(rng.integers(len(options)))]
