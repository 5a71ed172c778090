"""Pillow rendering of brand logos and product photos for the synthetic demo listings.

Everything is drawn from primitives with Pillow's built-in font, so generation needs no system
fonts, no downloads and no GPU. Geometry is expressed in fractions of the image side, so the
same listing looks the same at any `image_size`. All randomness comes from the generator
passed in, which keeps every image reproducible from the dataset seed.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

RGB = tuple[int, int, int]

SHAPES: tuple[str, ...] = (
    "circle",
    "triangle",
    "star",
    "diamond",
    "hexagon",
    "crescent",
    "chevron",
    "ring",
)
CATEGORIES: tuple[str, ...] = (
    "sneakers",
    "handbags",
    "watches",
    "headphones",
    "sunglasses",
    "perfume",
)
# Overlays: the first three are infringement cues, "sale_sticker" is an honest reseller's.
OVERLAYS: tuple[str, ...] = ("stamp", "diagonal_band", "sale_sticker")
STAMP_TEXTS: tuple[str, ...] = ("REPLICA", "AAA", "1:1", "COPY", "7A", "AAA+")
SALE_TEXTS: tuple[str, ...] = ("SALE", "-40%", "OUTLET", "-30%")


@dataclass(frozen=True)
class LogoStyle:
    """How a mark is drawn: the true mark, or a distorted, misspelt or recoloured imitation."""

    wordmark: str
    shape: str
    primary: RGB  # the shape and the letters
    secondary: RGB  # the plate behind them
    angle: float = 0.0  # degrees the shape is rotated by
    stretch: float = 1.0  # horizontal scale of the shape
    skew: float = 0.0  # degrees the whole label sits askew on the product (sloppy application)


@dataclass(frozen=True)
class PhotoStyle:
    """A seller's photographic habits; constant per seller, so it identifies the seller."""

    background: str  # "solid", "gradient", "stripes" or "studio"
    bg_colour: RGB
    noise: float  # std of pixel noise, in 0-255 units
    jpeg_quality: int
    tilt: float  # max degrees a shot is rotated by


@dataclass(frozen=True)
class ProductShot:
    category: str
    colour: RGB
    logo: LogoStyle


@dataclass(frozen=True)
class ImageSpec:
    """One listing image: one shot, or several tiled as a collage; optional overlay on top."""

    shots: tuple[ProductShot, ...]
    photo: PhotoStyle
    overlay: str = ""  # "" or one of OVERLAYS
    overlay_text: str = ""


@lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=max(6, size))


def _regular_polygon(sides: int, radius: float, start_deg: float) -> list[tuple[float, float]]:
    return [
        (
            radius * math.cos(math.radians(start_deg + 360 * k / sides)),
            radius * math.sin(math.radians(start_deg + 360 * k / sides)),
        )
        for k in range(sides)
    ]


def _shape_outline(shape: str) -> list[tuple[float, float]]:
    """Unit-radius outline around the origin (y down), before rotation and stretch."""
    if shape in ("circle", "ring", "crescent"):
        return _regular_polygon(40, 1.0, 0)
    if shape == "triangle":
        return _regular_polygon(3, 1.0, -90)
    if shape == "diamond":
        return [(0, -1), (0.7, 0), (0, 1), (-0.7, 0)]
    if shape == "hexagon":
        return _regular_polygon(6, 1.0, 0)
    if shape == "star":
        return [
            (r * math.cos(math.radians(-90 + 36 * k)), r * math.sin(math.radians(-90 + 36 * k)))
            for k, r in zip(range(10), [1.0, 0.42] * 5, strict=True)
        ]
    if shape == "chevron":
        return [(-1, -0.6), (0, 0.2), (1, -0.6), (1, 0.1), (0, 0.9), (-1, 0.1)]
    raise ValueError(f"logo shape: expected one of {SHAPES}, found {shape!r}")


def _transform(
    points: list[tuple[float, float]], cx: float, cy: float, r: float, angle: float, stretch: float
) -> list[tuple[float, float]]:
    cos_a, sin_a = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    return [
        (cx + r * (x * stretch * cos_a - y * sin_a), cy + r * (x * stretch * sin_a + y * cos_a))
        for x, y in points
    ]


def draw_logo(logo: LogoStyle, width: int, height: int) -> Image.Image:
    """The mark on its plate: shape above, wordmark below, in the style's two colours."""
    plate = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(plate)
    draw.rounded_rectangle(
        (0, 0, width - 1, height - 1), radius=max(1, height // 6), fill=(*logo.secondary, 255)
    )
    r = height * 0.26
    cx, cy = width / 2, height * 0.36
    outline = _transform(_shape_outline(logo.shape), cx, cy, r, logo.angle, logo.stretch)
    draw.polygon(outline, fill=logo.primary)
    if logo.shape in ("ring", "crescent"):
        shift = 0.0 if logo.shape == "ring" else 0.45
        inner = _transform(
            _regular_polygon(40, 0.6 if logo.shape == "ring" else 0.85, 0),
            cx + r * shift * math.cos(math.radians(logo.angle)),
            cy + r * shift * math.sin(math.radians(logo.angle)),
            r,
            logo.angle,
            logo.stretch,
        )
        draw.polygon(inner, fill=logo.secondary)
    font_size = int(height * 0.3)
    font = _font(font_size)
    while font_size > 6 and draw.textlength(logo.wordmark, font=font) > width * 0.92:
        font_size -= 1
        font = _font(font_size)
    draw.text((width / 2, height * 0.8), logo.wordmark, font=font, fill=logo.primary, anchor="mm")
    return plate


# Where the logo sits on each product, and its size, as fractions of the side.
_LOGO_BOX: dict[str, tuple[float, float, float, float]] = {
    "sneakers": (0.46, 0.55, 0.40, 0.2),
    "handbags": (0.50, 0.62, 0.44, 0.28),
    "watches": (0.50, 0.50, 0.36, 0.24),
    "headphones": (0.50, 0.58, 0.34, 0.22),
    "sunglasses": (0.50, 0.80, 0.44, 0.24),
    "perfume": (0.50, 0.60, 0.40, 0.28),
}


def _shade(colour: RGB, factor: float) -> RGB:
    return tuple(int(min(255, max(0, c * factor))) for c in colour)  # type: ignore[return-value]


def _draw_product(draw: ImageDraw.ImageDraw, category: str, colour: RGB, s: float) -> None:
    """A recognisable silhouette per category; crude on purpose, the logo carries the cues."""

    def box(x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
        return (x0 * s, y0 * s, x1 * s, y1 * s)

    def poly(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        return [(x * s, y * s) for x, y in points]

    dark, light = _shade(colour, 0.6), _shade(colour, 1.4)
    w = max(1, int(s * 0.03))
    if category == "sneakers":
        upper = [(0.1, 0.66), (0.1, 0.36), (0.2, 0.33), (0.32, 0.42), (0.42, 0.28), (0.54, 0.3)]
        upper += [(0.66, 0.44), (0.88, 0.52), (0.94, 0.62)]
        draw.polygon(poly([*upper, (0.94, 0.66)]), fill=colour)
        draw.rounded_rectangle(box(0.08, 0.64, 0.95, 0.76), radius=s * 0.04, fill=(235, 235, 230))
        for k in range(3):
            x, y = 0.45 + 0.07 * k, 0.36 + 0.04 * k
            draw.line(poly([(x, y), (x + 0.05, y - 0.04)]), fill=light, width=w)
    elif category == "handbags":
        draw.arc(box(0.28, 0.1, 0.72, 0.6), start=180, end=360, fill=dark, width=2 * w)
        draw.polygon(poly([(0.16, 0.36), (0.84, 0.36), (0.92, 0.88), (0.08, 0.88)]), fill=colour)
        draw.line(poly([(0.16, 0.44), (0.84, 0.44)]), fill=dark, width=w)
    elif category == "watches":
        draw.rectangle(box(0.38, 0.02, 0.62, 0.98), fill=dark)
        draw.ellipse(box(0.18, 0.18, 0.82, 0.82), fill=colour)
        draw.ellipse(box(0.23, 0.23, 0.77, 0.77), fill=(240, 240, 235))
        for k in range(12):
            a = math.radians(30 * k)
            draw.line(
                poly(
                    [
                        (0.5 + 0.25 * math.cos(a), 0.5 + 0.25 * math.sin(a)),
                        (0.5 + 0.22 * math.cos(a), 0.5 + 0.22 * math.sin(a)),
                    ]
                ),
                fill=dark,
                width=max(1, w // 2),
            )
    elif category == "headphones":
        draw.arc(box(0.18, 0.1, 0.82, 0.8), start=180, end=360, fill=colour, width=3 * w)
        draw.rounded_rectangle(box(0.1, 0.42, 0.3, 0.78), radius=s * 0.06, fill=colour)
        draw.rounded_rectangle(box(0.7, 0.42, 0.9, 0.78), radius=s * 0.06, fill=colour)
        draw.ellipse(box(0.14, 0.48, 0.26, 0.72), fill=dark)
        draw.ellipse(box(0.74, 0.48, 0.86, 0.72), fill=dark)
    elif category == "sunglasses":
        draw.line(poly([(0.04, 0.36), (0.12, 0.4)]), fill=colour, width=w)
        draw.line(poly([(0.96, 0.36), (0.88, 0.4)]), fill=colour, width=w)
        draw.ellipse(box(0.1, 0.34, 0.47, 0.62), fill=colour)
        draw.ellipse(box(0.53, 0.34, 0.9, 0.62), fill=colour)
        draw.ellipse(box(0.13, 0.37, 0.44, 0.59), fill=(40, 45, 55))
        draw.ellipse(box(0.56, 0.37, 0.87, 0.59), fill=(40, 45, 55))
        draw.arc(box(0.42, 0.36, 0.58, 0.5), start=200, end=340, fill=colour, width=w)
    elif category == "perfume":
        draw.rectangle(box(0.4, 0.08, 0.6, 0.22), fill=dark)
        draw.rectangle(box(0.45, 0.22, 0.55, 0.3), fill=(200, 200, 200))
        draw.rounded_rectangle(box(0.22, 0.3, 0.78, 0.9), radius=s * 0.06, fill=light)
        draw.rounded_rectangle(box(0.26, 0.5, 0.74, 0.86), radius=s * 0.04, fill=colour)
    else:
        raise ValueError(f"product category: expected one of {CATEGORIES}, found {category!r}")


def _background(photo: PhotoStyle, size: int, rng: np.random.Generator) -> Image.Image:
    base = np.array(photo.bg_colour, dtype=np.float32) * float(rng.uniform(0.93, 1.07))
    if photo.background == "gradient":
        ramp = np.linspace(0.75, 1.15, size, dtype=np.float32)[:, None, None]
        pixels = np.broadcast_to(base * ramp, (size, size, 3))
    elif photo.background == "stripes":
        rows = (np.arange(size) // max(2, size // 12)) % 2
        ramp = np.where(rows == 0, 1.0, 0.85).astype(np.float32)[:, None, None]
        pixels = np.broadcast_to(base * ramp, (size, size, 3))
    elif photo.background == "studio":
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
        vignette = 1.1 - 0.45 * ((xx - 0.5) ** 2 + (yy - 0.45) ** 2)
        pixels = base * vignette[:, :, None]
    elif photo.background == "solid":
        pixels = np.broadcast_to(base, (size, size, 3))
    else:
        raise ValueError(
            f"photo background: expected solid/gradient/stripes/studio, found {photo.background!r}"
        )
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def _draw_props(
    draw: ImageDraw.ImageDraw, photo: PhotoStyle, size: int, rng: np.random.Generator
) -> None:
    """Muted scene clutter (a box, a pot, a shadow) so two sellers' shots of one product are
    different photos rather than accidental perceptual duplicates of each other."""
    for _ in range(int(rng.integers(1, 3))):
        w, h = rng.uniform(0.15, 0.4, size=2) * size
        x, y = rng.uniform(-0.1, 0.9) * size, rng.uniform(-0.1, 0.9) * size
        random_tone = rng.integers(40, 230, size=3)
        tone = tuple(
            int(0.5 * c + 0.5 * b) for c, b in zip(random_tone, photo.bg_colour, strict=True)
        )
        if rng.random() < 0.5:
            draw.rounded_rectangle((x, y, x + w, y + h), radius=int(size * 0.02), fill=tone)
        else:
            draw.ellipse((x, y, x + w, y + h), fill=tone)


def _render_shot(
    shot: ProductShot, photo: PhotoStyle, size: int, rng: np.random.Generator
) -> Image.Image:
    image = _background(photo, size, rng)
    _draw_props(ImageDraw.Draw(image), photo, size, rng)
    layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    _draw_product(ImageDraw.Draw(layer), shot.category, shot.colour, float(size))
    cx, cy, fw, fh = _LOGO_BOX[shot.category]
    lw, lh = max(8, int(fw * size)), max(6, int(fh * size))
    logo = draw_logo(shot.logo, lw, lh)
    if shot.logo.skew:
        logo = logo.rotate(shot.logo.skew, resample=Image.Resampling.BILINEAR, expand=True)
    layer.alpha_composite(logo, (int(cx * size - logo.width / 2), int(cy * size - logo.height / 2)))
    scale = float(rng.uniform(0.65, 1.2))  # framing varies: full shot to close-up
    angle = float(rng.uniform(-photo.tilt, photo.tilt))
    offset = rng.uniform(-0.14, 0.14, size=2) * size
    scaled = max(8, int(size * scale))
    layer = layer.resize((scaled, scaled), Image.Resampling.BILINEAR)
    layer = layer.rotate(angle, resample=Image.Resampling.BILINEAR, expand=False)
    x = int((size - scaled) / 2 + offset[0])
    y = int((size - scaled) / 2 + offset[1])
    image.paste(layer, (x, y), layer)
    return image


def _overlay(image: Image.Image, kind: str, text: str, rng: np.random.Generator) -> Image.Image:
    size = image.width
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    if kind == "stamp":
        font = _font(int(size * 0.18))
        x, y = rng.uniform(0.05, 0.4) * size, rng.uniform(0.08, 0.78) * size
        colour = ((200, 20, 20), (20, 20, 20), (30, 30, 160))[int(rng.integers(3))]
        draw.text(
            (x, y),
            text,
            font=font,
            fill=(*colour, 235),
            stroke_width=1,
            stroke_fill=(255, 255, 255, 200),
        )
        return Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")
    if kind == "diagonal_band":
        band = Image.new("RGBA", (size * 2, int(size * 0.22)), (255, 255, 255, 110))
        band_draw = ImageDraw.Draw(band)
        font = _font(int(size * 0.12))
        band_draw.text(
            (size, band.height / 2),
            f"{text}  {text}  {text}",
            font=font,
            fill=(90, 90, 90, 170),
            anchor="mm",
        )
        band = band.rotate(float(rng.uniform(25, 50)), expand=True)
        layer.alpha_composite(band, ((size - band.width) // 2, (size - band.height) // 2))
        return Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")
    if kind == "sale_sticker":
        r = size * 0.14
        cx, cy = (rng.uniform(0.15, 0.85) * size, rng.uniform(0.15, 0.3) * size)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(210, 30, 40, 255))
        draw.text(
            (cx, cy), text, font=_font(int(size * 0.08)), fill=(255, 255, 255, 255), anchor="mm"
        )
        return Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")
    raise ValueError(f"image overlay: expected one of {OVERLAYS}, found {kind!r}")


def render_image(spec: ImageSpec, size: int, rng: np.random.Generator) -> Image.Image:
    """Render a listing image; several shots are tiled 2 across (a collage or multi-view)."""
    if not spec.shots:
        raise ValueError("image spec: expected at least one product shot, found none")
    if len(spec.shots) == 1:
        image = _render_shot(spec.shots[0], spec.photo, size, rng)
    else:
        image = Image.new("RGB", (size, size), (250, 250, 250))
        cols = 2
        rows = math.ceil(len(spec.shots) / cols)
        tile_w, tile_h = size // cols, size // rows
        tile = min(tile_w, tile_h)
        for k, shot in enumerate(spec.shots):
            part = _render_shot(shot, spec.photo, tile, rng)
            x = (k % cols) * tile_w + (tile_w - tile) // 2
            y = (k // cols) * tile_h + (tile_h - tile) // 2
            image.paste(part, (x, y))
        draw = ImageDraw.Draw(image)
        for c in range(1, cols):
            draw.line((c * tile_w, 0, c * tile_w, size), fill=(255, 255, 255), width=2)
    if spec.overlay:
        image = _overlay(image, spec.overlay, spec.overlay_text, rng)
    if spec.photo.noise > 0:
        pixels = np.asarray(image, dtype=np.float32)
        pixels = pixels + rng.normal(0.0, spec.photo.noise, size=pixels.shape).astype(np.float32)
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    return image


def encode_jpeg(image: Image.Image, quality: int) -> bytes:
    """JPEG bytes without metadata, so identical pixels always give identical files."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=int(quality), optimize=False)
    return buffer.getvalue()


def near_duplicate(jpeg: bytes, rng: np.random.Generator) -> bytes:
    """A reposted copy of a photo: re-encoded, slightly cropped or slightly relit.

    The result differs in bytes but stays a perceptual near-duplicate of the source, the way a
    photo scraped from another listing and re-uploaded does.
    """
    image = Image.open(io.BytesIO(jpeg)).convert("RGB")
    kind = int(rng.integers(3))
    if kind == 1:
        size = image.width
        margin = max(1, int(size * float(rng.uniform(0.01, 0.025))))
        image = image.crop((margin, margin, size - margin, size - margin)).resize(
            (size, size), Image.Resampling.BILINEAR
        )
    elif kind == 2:
        factor = float(rng.uniform(0.94, 1.06))
        image = image.point(lambda v: min(255, int(v * factor)))
    return encode_jpeg(image, int(rng.integers(60, 90)))


def render_reference_logo(logo: LogoStyle, size: int = 256) -> Image.Image:
    """The brand's true mark on white, as a brand catalog's reference image."""
    canvas = Image.new("RGBA", (size, size), (255, 255, 255, 255))
    mark = draw_logo(logo, int(size * 0.8), int(size * 0.5))
    canvas.alpha_composite(mark, (int(size * 0.1), int(size * 0.25)))
    return canvas.convert("RGB")


def render_studio_shot(
    shot: ProductShot, size: int, background: RGB = (246, 246, 246)
) -> Image.Image:
    """The product as its brand photographs it for a catalog: full frame, centred, the mark
    square on it, on a plain backdrop, with no props, noise or tilt.

    No randomness: a brand's official photo is the same file at every generation, which is
    what makes a seller's re-upload of it recognisable as a copy.
    """
    image = Image.new("RGB", (size, size), background)
    layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    _draw_product(ImageDraw.Draw(layer), shot.category, shot.colour, float(size))
    cx, cy, fw, fh = _LOGO_BOX[shot.category]
    logo = draw_logo(shot.logo, max(8, int(fw * size)), max(6, int(fh * size)))
    layer.alpha_composite(logo, (int(cx * size - logo.width / 2), int(cy * size - logo.height / 2)))
    image.paste(layer, (0, 0), layer)
    return image
