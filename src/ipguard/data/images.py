"""Decode listing photos into RGB images, or flag why they cannot be used.

Marketplace photos are dirty: dead paths, half-downloaded JPEGs, HTML error pages saved as
``.png``, CMYK print files, 16-bit scans, phone photos that rely on an EXIF rotation tag,
thumbnails, and the odd decompression bomb. Training must not lose an epoch (or a DataLoader
worker) to one bad file, and a screening service must answer with a flag rather than a 500, so
:func:`decode_image` never raises for bad *input*: it returns a :class:`DecodedImage` that either
holds an RGB picture or says, with one of :data:`IMAGE_FLAGS`, why the listing's image is
missing. The listing itself is kept; its text still counts.

The same function serves training (paths from a manifest) and serving (paths, raw bytes or
base64 from a REST payload), so both see exactly the same pixels. :func:`scan_images` asks the
same question of many files at once, without keeping any pixels, for validation: either by
decoding each file exactly as :func:`decode_image` does, or by reading only its header (cheap,
but blind to truncated or corrupt pixel data).
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import re
import stat
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

IMAGE_FLAGS = ("image_missing", "image_unreadable", "image_too_large", "image_too_small")
"""Why a listing has no usable image; the screening output carries these in ``flags``."""

DEFAULT_MAX_PIXELS = 40_000_000
"""Largest width*height decoded. 40 MP covers every phone camera; bigger is a bomb or a scan."""

_EXIF_ORIENTATION = 0x0112

# Formats a listing photo can plausibly be in. Restricting Image.open to these keeps exotic
# plugins (EPS would start Ghostscript, PSD/FITS parsers see little hardening) away from
# untrusted bytes; anything else is reported as unreadable with the list below.
_LISTING_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "TIFF", "AVIF")

_WHITE = (255, 255, 255, 255)
_DATA_URL_PREFIX = re.compile(r"^data:[^,]*;base64,", re.IGNORECASE)


@dataclass(frozen=True)
class DecodedImage:
    """The outcome of decoding one listing image: a picture, or a flag and the reason.

    A record rather than an exception so that a batch of listings can be decoded in one pass
    and every unusable image is still accounted for (flag + detail), never silently dropped.
    """

    image: Image.Image | None
    """Mode ``"RGB"`` with EXIF orientation applied; ``None`` when the image is unusable."""
    flag: str | None
    """One of :data:`IMAGE_FLAGS` when ``image`` is ``None``, else ``None``."""
    detail: str
    """Human-readable reason (or, for a usable image, what was decoded), naming the source."""

    def __post_init__(self) -> None:
        if self.image is None and self.flag not in IMAGE_FLAGS:
            raise ValueError(
                f"DecodedImage without an image needs a flag from {IMAGE_FLAGS}; "
                f"found flag={self.flag!r}"
            )
        if self.image is not None and self.flag is not None:
            raise ValueError(f"DecodedImage with an image must have flag=None; found {self.flag!r}")
        if self.image is not None and self.image.mode != "RGB":
            raise ValueError(f"DecodedImage.image must be mode 'RGB'; found {self.image.mode!r}")

    @property
    def ok(self) -> bool:
        """True when there is a usable RGB image."""
        return self.image is not None


@dataclass(frozen=True)
class ImageCheck:
    """Whether one image file can be used, as :func:`scan_images` found out; no pixels kept."""

    flag: str | None
    """One of :data:`IMAGE_FLAGS`, or ``None`` when the image is usable."""
    detail: str
    """Human-readable reason (or what was found), naming the file."""

    def __post_init__(self) -> None:
        if self.flag is not None and self.flag not in IMAGE_FLAGS:
            raise ValueError(
                f"ImageCheck flag must be one of {IMAGE_FLAGS} or None; found {self.flag!r}"
            )

    @property
    def ok(self) -> bool:
        """True when the image can be used."""
        return self.flag is None


def decode_image(
    source: str | os.PathLike[str] | bytes,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_side: int = 8,
) -> DecodedImage:
    """Decode a path or in-memory bytes into an RGB image, flagging anything unusable.

    The size limit is checked on the header, before any pixel is decoded, so a small file that
    declares 30000x30000 pixels costs nothing. Pillow's own bomb guard
    (``Image.MAX_IMAGE_PIXELS``) still applies on top of ``max_pixels``; when it trips, the
    result is the same ``image_too_large`` flag rather than an exception or a warning.
    Images whose shorter side is below ``min_side`` are flagged ``image_too_small`` (pass 0 to
    accept any size): an upscaled 2x2 thumbnail would only teach the model noise.

    Raises only for programming errors: a ``source`` of the wrong type (``TypeError``), or a
    non-positive ``max_pixels`` / negative ``min_side`` (``ValueError``).

    Warning filters are swapped for the duration of the decode (to catch Pillow's
    ``DecompressionBombWarning`` and its metadata warnings into ``detail``); Python's warning
    filters are process-global, so threads decoding concurrently may see each other's filters.
    Use processes (DataLoader workers, server workers) for parallel decoding, or
    :func:`scan_images`, which sets the filters once for all its threads.
    """
    if max_pixels <= 0:
        raise ValueError(f"max_pixels must be a positive pixel count; found {max_pixels}")
    if min_side < 0:
        raise ValueError(f"min_side must be >= 0 (0 disables the check); found {min_side}")
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        where = f"in-memory image ({len(data)} bytes)"
        if not data:
            return _flagged("image_unreadable", f"{where}: no bytes to decode")
        return _decode(io.BytesIO(data), where, max_pixels=max_pixels, min_side=min_side)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        where = f"image file '{path}'"
        if not str(source).strip():
            return _flagged("image_missing", "image path is empty")
        return _decode_path(path, where, max_pixels=max_pixels, min_side=min_side)
    raise TypeError(
        f"decode_image expects a path (str or os.PathLike) or bytes; found {type(source).__name__}"
    )


def decode_base64_image(b64: str, **kwargs: int) -> DecodedImage:
    """Decode a base64 string (as sent in a REST payload's ``image_b64``) into an RGB image.

    Tolerates what real clients send: a ``data:image/...;base64,`` prefix, line breaks, the
    URL-safe alphabet and missing padding. Anything else that is not base64 is flagged
    ``image_unreadable``; an empty string means the client sent no image (``image_missing``).
    Keyword arguments are those of :func:`decode_image`.
    """
    if not isinstance(b64, str):
        raise TypeError(f"decode_base64_image expects a str; found {type(b64).__name__}")
    text = "".join(_DATA_URL_PREFIX.sub("", b64.strip()).split())
    where = f"base64 image ({len(b64)} characters)"
    if not text:
        return _flagged("image_missing", f"{where}: empty, no image sent")
    try:
        data = _b64decode(text)
    except (binascii.Error, ValueError) as err:
        return _flagged("image_unreadable", f"{where}: not valid base64 ({err})")
    result = decode_image(data, **kwargs)
    if result.ok:
        return result
    return _flagged(result.flag or "image_unreadable", f"{where}: {result.detail}")


def to_rgb_array(image: Image.Image) -> np.ndarray:
    """Return the image as a writable HxWx3 uint8 array, the input albumentations expects."""
    if not isinstance(image, Image.Image):
        raise TypeError(f"to_rgb_array expects a PIL.Image.Image; found {type(image).__name__}")
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return np.array(rgb, dtype=np.uint8)


def _b64decode(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    if "-" in text or "_" in text:
        return base64.b64decode(padded, altchars=b"-_", validate=True)
    # the C decoder's strict mode refuses what validate=True refuses (characters outside the
    # alphabet, padding inside the data) without b64decode's Python regex over the payload,
    # which cost as much as a third of decoding a small JPEG
    return binascii.a2b_base64(padded, strict_mode=True)


def _file_problem(path: Path, where: str) -> DecodedImage | None:
    """Why ``path`` cannot even be opened as an image file, judged from ``stat`` alone."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return _flagged("image_missing", f"{where} does not exist")
    except (OSError, ValueError) as err:  # ValueError: a NUL byte in the path
        return _flagged("image_unreadable", f"{where} cannot be accessed: {err}")
    if stat.S_ISDIR(info.st_mode):
        return _flagged("image_unreadable", f"{where} is a directory, expected an image file")
    if not stat.S_ISREG(info.st_mode):  # a FIFO or device would block or never end
        return _flagged("image_unreadable", f"{where} is not a regular file")
    if info.st_size == 0:
        return _flagged("image_unreadable", f"{where} is empty (0 bytes)")
    return None


def _decode_path(
    path: Path, where: str, *, max_pixels: int, min_side: int, capture_warnings: bool = True
) -> DecodedImage:
    problem = _file_problem(path, where)
    if problem is not None:
        return problem
    try:
        handle = path.open("rb")
    except OSError as err:
        return _flagged("image_unreadable", f"{where} cannot be opened: {err}")
    with handle:
        return _decode(
            handle,
            where,
            max_pixels=max_pixels,
            min_side=min_side,
            capture_warnings=capture_warnings,
        )


def _decode(
    stream: io.BufferedIOBase | io.BytesIO,
    where: str,
    *,
    max_pixels: int,
    min_side: int,
    capture_warnings: bool = True,
) -> DecodedImage:
    """Decode with Pillow's warnings caught into ``detail``; ``capture_warnings=False`` leaves
    the filters to the caller (:func:`scan_images` sets them once for all its threads)."""
    notes: list[str] = []
    if capture_warnings:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            result = _guarded_decode(stream, where, notes, max_pixels=max_pixels)
        notes.extend(f"Pillow warned: {w.message}" for w in caught)
    else:
        result = _guarded_decode(stream, where, notes, max_pixels=max_pixels)
    if result.image is None:
        return _with_notes(result, notes)
    width, height = result.image.size
    if min(width, height) < min_side:
        return _flagged(
            "image_too_small",
            f"{where}: {width}x{height} pixels, expected at least {min_side} on the shorter side",
        )
    return _with_notes(result, notes)


def _guarded_decode(
    stream: io.BufferedIOBase | io.BytesIO, where: str, notes: list[str], *, max_pixels: int
) -> DecodedImage:
    try:
        return _open_and_convert(stream, where, notes, max_pixels=max_pixels)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        return _flagged("image_too_large", f"{where}: {err}")
    except Image.UnidentifiedImageError:
        return _not_recognised(where)
    except MemoryError:
        return _flagged("image_too_large", f"{where}: out of memory while decoding")
    # Pillow's plugins raise a zoo of exception types on hostile or damaged input
    # (OSError, SyntaxError, struct.error, IndexError, ValueError, zlib.error, ...). This
    # block only runs Pillow on untrusted bytes, so any Exception here is a bad image,
    # which must become a flag and not take down a DataLoader worker or a request.
    except Exception as err:
        return _flagged("image_unreadable", f"{where}: cannot decode ({type(err).__name__}: {err})")


def _not_recognised(where: str) -> DecodedImage:
    return _flagged(
        "image_unreadable",
        f"{where}: not a recognised image, expected one of {', '.join(_allowed_formats())}",
    )


def _open_and_convert(
    stream: io.BufferedIOBase | io.BytesIO, where: str, notes: list[str], *, max_pixels: int
) -> DecodedImage:
    with Image.open(stream, formats=_allowed_formats()) as opened:
        width, height = opened.size
        if width * height > max_pixels:
            return _flagged(
                "image_too_large",
                f"{where}: header declares {width}x{height} = {width * height} pixels, "
                f"more than max_pixels={max_pixels}; not decoded",
            )
        source_desc = f"{opened.format} {width}x{height} mode {opened.mode}"
        # Decoding is lazy in Pillow: truncation and corrupt entropy data only surface here.
        opened.load()
        oriented = _apply_exif_orientation(opened, notes)
        rgb = _to_rgb(oriented, notes)
    return DecodedImage(image=rgb, flag=None, detail=f"decoded {source_desc} from {where}")


def _apply_exif_orientation(image: Image.Image, notes: list[str]) -> Image.Image:
    """Rotate phone photos the way viewers show them; a broken EXIF block keeps the pixels."""
    try:
        orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
        if orientation in (2, 3, 4, 5, 6, 7, 8):
            notes.append(f"EXIF orientation {orientation} applied")
            return ImageOps.exif_transpose(image)
    except Exception as err:  # metadata parsers face the same hostile bytes as the decoder
        notes.append(f"EXIF orientation unreadable ({err}); pixels used as stored")
    return image


def _to_rgb(image: Image.Image, notes: list[str]) -> Image.Image:
    """Convert any decoded mode to RGB without the silent losses of a bare ``convert``.

    ``convert("RGB")`` clips 16-bit values (everything above 255 becomes white) and drops
    alpha onto black, which turns a transparent-background logo into a black square; those
    cases are handled explicitly here.
    """
    mode = image.mode
    if mode == "RGB":
        return image.copy()
    if mode.startswith("I") or mode == "F":
        return Image.fromarray(_wide_gray_to_uint8(np.asarray(image), mode, notes)).convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, _WHITE)
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _wide_gray_to_uint8(values: np.ndarray, mode: str, notes: list[str]) -> np.ndarray:
    """Scale 16-bit, 32-bit integer or float grayscale into 0..255."""
    if values.ndim != 2:
        raise ValueError(f"expected a single-channel {mode} image; found shape {values.shape}")
    wide = values.astype(np.float64)
    finite = np.isfinite(wide)
    if not finite.all():
        notes.append(f"{int((~finite).sum())} non-finite {mode} values set to 0")
        wide = np.where(finite, wide, 0.0)
    low, high = (float(wide.min()), float(wide.max())) if wide.size else (0.0, 0.0)
    if mode == "F" and low >= 0.0 and high <= 1.0:
        scaled = wide * 255.0
    elif mode != "F" and low >= 0.0 and high <= 65535.0:
        scaled = wide * (255.0 / 65535.0)
    else:
        notes.append(f"{mode} values span {low:g}..{high:g}; rescaled min-max to 0..255")
        scaled = (wide - low) * (255.0 / (high - low)) if high > low else np.zeros_like(wide)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


# --- many files at once, for validation -------------------------------------------------------


def scan_images(
    paths: Sequence[str | os.PathLike[str]],
    *,
    decode: bool = True,
    workers: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_side: int = 8,
) -> list[ImageCheck]:
    """Check many image files, one :class:`ImageCheck` per path, in order; no pixels are kept.

    ``decode=True`` decodes each file exactly as :func:`decode_image` does, so a file passes
    only if training and serving could use it. ``decode=False`` stops at the header: missing,
    empty and non-image files, decompression bombs and thumbnails are still found, at the cost
    of a ``stat`` and a few kilobytes read per file, but truncated or corrupt pixel data is not
    (Pillow decodes lazily; only a full decode reaches it).

    ``workers`` threads share the work (``None``: up to 8, one per CPU; ``0``: this thread):
    Pillow releases the GIL while it reads and decodes. Python's warning filters are
    process-global, so they are set once around the whole scan (Pillow's bomb warning raised
    as an error, its other warnings ignored) instead of per file as :func:`decode_image` does.
    """
    if workers is not None and workers < 0:
        raise ValueError(f"scan_images: workers must be >= 0 (0: this thread); found {workers}")
    if max_pixels <= 0:
        raise ValueError(f"max_pixels must be a positive pixel count; found {max_pixels}")
    if min_side < 0:
        raise ValueError(f"min_side must be >= 0 (0 disables the check); found {min_side}")
    check = partial(
        _check_path if decode else _probe_path, max_pixels=max_pixels, min_side=min_side
    )
    threads = min(8, os.cpu_count() or 1) if workers is None else workers
    with _pillow_warnings_for_threads():
        if threads <= 1 or len(paths) <= 1:
            return [check(p) for p in paths]
        with ThreadPoolExecutor(max_workers=threads) as pool:
            return list(pool.map(check, paths, chunksize=64))


@contextmanager
def _pillow_warnings_for_threads() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def _where(source: str | os.PathLike[str]) -> str:
    return f"image file '{Path(source)}'"


def _check_path(source: str | os.PathLike[str], *, max_pixels: int, min_side: int) -> ImageCheck:
    if not str(source).strip():
        return ImageCheck("image_missing", "image path is empty")
    result = _decode_path(
        Path(source),
        _where(source),
        max_pixels=max_pixels,
        min_side=min_side,
        capture_warnings=False,
    )
    if result.image is not None:
        result.image.close()
    return ImageCheck(result.flag, result.detail)


def _probe_path(source: str | os.PathLike[str], *, max_pixels: int, min_side: int) -> ImageCheck:
    """The header-only check: what :func:`decode_image` would say, short of decoding pixels."""
    if not str(source).strip():
        return ImageCheck("image_missing", "image path is empty")
    path, where = Path(source), _where(source)
    problem = _file_problem(path, where)
    if problem is not None:
        return ImageCheck(problem.flag, problem.detail)
    try:
        with Image.open(path, formats=_allowed_formats()) as opened:
            width, height, fmt = opened.width, opened.height, opened.format
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        return ImageCheck("image_too_large", f"{where}: {err}")
    except Image.UnidentifiedImageError:
        return ImageCheck("image_unreadable", _not_recognised(where).detail)
    except Exception as err:  # the header parsers face the same hostile bytes as the decoder
        return ImageCheck(
            "image_unreadable",
            f"{where}: cannot read the header ({type(err).__name__}: {err})",
        )
    if width * height > max_pixels:
        return ImageCheck(
            "image_too_large",
            f"{where}: header declares {width}x{height} = {width * height} pixels, "
            f"more than max_pixels={max_pixels}",
        )
    if min(width, height) < min_side:
        return ImageCheck(
            "image_too_small",
            f"{where}: {width}x{height} pixels, expected at least {min_side} on the shorter side",
        )
    return ImageCheck(None, f"header of {fmt} {width}x{height} in {where} (pixels not decoded)")


@cache
def _allowed_formats() -> tuple[str, ...]:
    Image.init()
    return tuple(fmt for fmt in _LISTING_FORMATS if fmt in Image.OPEN)


def _flagged(flag: str, detail: str) -> DecodedImage:
    return DecodedImage(image=None, flag=flag, detail=detail)


def _with_notes(result: DecodedImage, notes: list[str]) -> DecodedImage:
    if not notes:
        return result
    return DecodedImage(
        image=result.image, flag=result.flag, detail=f"{result.detail} ({'; '.join(notes)})"
    )
