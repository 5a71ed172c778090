"""Every dirty-image case decodes correctly or is flagged with a reason, and nothing raises."""

from __future__ import annotations

import base64
import importlib.util
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile

from ipguard.data.images import (
    DEFAULT_MAX_PIXELS,
    IMAGE_FLAGS,
    DecodedImage,
    ImageCheck,
    decode_base64_image,
    decode_image,
    scan_images,
    to_rgb_array,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "images"
RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def _load_fixture_script():
    script = FIXTURES.parent / "make_images.py"
    spec = importlib.util.spec_from_file_location("make_images", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pixels(name: str, **kwargs: int) -> np.ndarray:
    result = decode_image(FIXTURES / name, **kwargs)
    assert result.ok, result.detail
    assert result.flag is None
    assert result.image is not None and result.image.mode == "RGB"
    return np.asarray(result.image).astype(int)


def _assert_colour(region: np.ndarray, colour: tuple[int, int, int], tol: int = 12) -> None:
    mean = region.reshape(-1, 3).mean(axis=0)
    assert np.all(np.abs(mean - np.array(colour)) <= tol), f"mean {mean} is not {colour}"


def test_missing_file_is_flagged_missing_and_detail_names_the_path():
    path = FIXTURES / "missing.jpg"
    assert not path.exists()
    result = decode_image(path)
    assert not result.ok
    assert result.image is None
    assert result.flag == "image_missing"
    assert str(path) in result.detail


@pytest.mark.parametrize("name", ["empty.jpg", "truncated.jpg", "corrupt.jpg", "not_an_image.png"])
def test_broken_files_are_flagged_unreadable_with_their_path(name: str):
    result = decode_image(FIXTURES / name)
    assert result.flag == "image_unreadable"
    assert result.image is None
    assert name in result.detail


def test_truncated_jpeg_is_not_decoded_partially_and_global_pillow_setting_is_untouched():
    assert (FIXTURES / "truncated.jpg").stat().st_size > 0
    decode_image(FIXTURES / "truncated.jpg")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    assert "truncated" in decode_image(FIXTURES / "truncated.jpg").detail


def test_grayscale_image_becomes_rgb_with_the_same_gray_in_every_channel():
    pixels = _pixels("gray.png")
    with Image.open(FIXTURES / "gray.png") as source:
        assert source.mode == "L"
        gray = np.asarray(source).astype(int)
    for channel in range(3):
        np.testing.assert_array_equal(pixels[..., channel], gray)


def test_one_bit_image_becomes_pure_black_and_white_in_the_same_pattern():
    pixels = _pixels("bilevel.png")
    with Image.open(FIXTURES / "bilevel.png") as source:
        assert source.mode == "1"
        on = np.asarray(source)
    assert set(np.unique(pixels)) == {0, 255}
    np.testing.assert_array_equal(pixels[..., 0] == 255, on)


def test_cmyk_jpeg_decodes_to_the_printed_colours():
    pixels = _pixels("cmyk.jpg")
    _assert_colour(pixels[4:-4, 2:12], RED)
    _assert_colour(pixels[4:-4, 20:30], BLUE)


def test_palette_transparency_is_composited_on_white_not_black():
    pixels = _pixels("palette_transparent.png")
    _assert_colour(pixels[:, :16], WHITE, tol=0)
    _assert_colour(pixels[:, 16:], RED, tol=0)


def test_rgba_alpha_is_composited_on_white_not_black():
    pixels = _pixels("rgba.png")
    _assert_colour(pixels[:, :16], WHITE, tol=0)
    alpha = 128 / 255
    half_red_on_white = (255, round(255 * (1 - alpha)), round(255 * (1 - alpha)))
    _assert_colour(pixels[:, 16:], half_red_on_white, tol=2)


def test_16_bit_grayscale_is_scaled_to_8_bit_not_clipped_to_white():
    pixels = _pixels("gray16.png")
    bands = _load_fixture_script().GRAY16_BANDS
    observed = [int(pixels[8, 8 * i + 4, 0]) for i in range(len(bands))]
    expected = [round(v * 255 / 65535) for v in bands]
    assert all(abs(o - e) <= 1 for o, e in zip(observed, expected, strict=True)), observed
    assert observed == sorted(set(observed)), "bands must stay distinct and ordered"


# Quadrant colours of the stored 48x32 image: TL red, TR green, BL blue, BR white.
# Orientation 6 is shown rotated 90 degrees clockwise, 8 counter-clockwise.
@pytest.mark.parametrize(
    ("name", "top_left", "top_right", "bottom_left", "bottom_right"),
    [
        ("exif_orientation_6.jpg", BLUE, RED, WHITE, GREEN),
        ("exif_orientation_8.jpg", GREEN, WHITE, RED, BLUE),
    ],
)
def test_exif_orientation_is_applied_so_pixels_end_up_rotated(
    name: str, top_left, top_right, bottom_left, bottom_right
):
    pixels = _pixels(name)
    assert pixels.shape == (48, 32, 3)
    _assert_colour(pixels[4:20, 4:12], top_left)
    _assert_colour(pixels[4:20, 20:28], top_right)
    _assert_colour(pixels[28:44, 4:12], bottom_left)
    _assert_colour(pixels[28:44, 20:28], bottom_right)


def test_tiny_image_is_flagged_too_small_unless_min_side_allows_it():
    result = decode_image(FIXTURES / "tiny.png")
    assert result.flag == "image_too_small"
    assert "2x2" in result.detail
    pixels = _pixels("tiny.png", min_side=2)
    assert pixels.shape == (2, 2, 3)
    assert decode_image(FIXTURES / "tiny.png", min_side=3).flag == "image_too_small"


def test_header_declaring_900_megapixels_is_flagged_too_large():
    assert (FIXTURES / "huge_header.png").stat().st_size < 10_000
    result = decode_image(FIXTURES / "huge_header.png")
    assert result.flag == "image_too_large"
    assert "huge_header.png" in result.detail


def test_own_pixel_limit_stops_a_bomb_even_with_pillows_guard_disabled(monkeypatch):
    # If the decoder tried to decode this file it would fail on missing data (unreadable)
    # after allocating 900 MB; too_large proves it stopped at the header.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    result = decode_image(FIXTURES / "huge_header.png")
    assert result.flag == "image_too_large"
    assert str(DEFAULT_MAX_PIXELS) in result.detail


def test_max_pixels_is_configurable_per_call():
    assert decode_image(FIXTURES / "gray.png", max_pixels=32 * 24).ok
    result = decode_image(FIXTURES / "gray.png", max_pixels=32 * 24 - 1)
    assert result.flag == "image_too_large"


def test_pillow_bomb_warning_becomes_a_flag_not_a_warning(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # bilevel.png has 1024 pixels
    filters_before = list(warnings.filters)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = decode_image(FIXTURES / "bilevel.png")
    assert result.flag == "image_too_large"
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    assert list(warnings.filters) == filters_before


def test_webp_decodes_exactly():
    pixels = _pixels("photo.webp")
    assert pixels.shape == (24, 32, 3)
    _assert_colour(pixels[:12], RED, tol=0)
    _assert_colour(pixels[12:], BLUE, tol=0)


def test_animated_gif_decodes_its_first_frame():
    pixels = _pixels("animated.gif")
    with Image.open(FIXTURES / "animated.gif") as source:
        assert source.n_frames == 2
    _assert_colour(pixels, RED, tol=0)


def test_bytes_are_decoded_from_memory_like_the_file():
    data = (FIXTURES / "cmyk.jpg").read_bytes()
    from_bytes = decode_image(data)
    assert from_bytes.ok
    np.testing.assert_array_equal(np.asarray(from_bytes.image), _pixels("cmyk.jpg"))
    assert decode_image(bytearray(data)).ok


@pytest.mark.parametrize("data", [b"", b"GIF89a", b"\x89PNG\r\n\x1a\n", b"hello world"])
def test_bad_bytes_are_flagged_unreadable(data: bytes):
    result = decode_image(data)
    assert result.flag == "image_unreadable"
    assert "bytes" in result.detail


def test_base64_input_decodes_like_the_file_in_the_forms_clients_send():
    data = (FIXTURES / "photo.webp").read_bytes()
    plain = base64.b64encode(data).decode("ascii")
    variants = [
        plain,
        "data:image/webp;base64," + plain,
        plain.rstrip("="),
        base64.urlsafe_b64encode(data).decode("ascii"),
        "\n".join(plain[i : i + 20] for i in range(0, len(plain), 20)),
    ]
    expected = _pixels("photo.webp")
    for text in variants:
        result = decode_base64_image(text)
        assert result.ok, (text, result.detail)
        np.testing.assert_array_equal(np.asarray(result.image), expected)


def test_base64_passes_decode_options_through():
    text = base64.b64encode((FIXTURES / "tiny.png").read_bytes()).decode("ascii")
    assert decode_base64_image(text).flag == "image_too_small"
    assert decode_base64_image(text, min_side=1).ok


@pytest.mark.parametrize("text", ["not base64 at all!", "%%%%", "QUJD$"])
def test_invalid_base64_is_flagged_unreadable(text: str):
    result = decode_base64_image(text)
    assert result.flag == "image_unreadable"
    assert "base64" in result.detail


def test_valid_base64_of_non_image_bytes_is_flagged_unreadable():
    text = base64.b64encode(b"<html>nope</html>").decode("ascii")
    assert decode_base64_image(text).flag == "image_unreadable"


@pytest.mark.parametrize("text", ["", "   \n"])
def test_empty_base64_means_no_image_was_sent(text: str):
    assert decode_base64_image(text).flag == "image_missing"


def test_directory_fifo_and_odd_paths_are_flagged_not_raised(tmp_path: Path):
    assert decode_image(tmp_path).flag == "image_unreadable"
    assert decode_image("").flag == "image_missing"
    if hasattr(os, "mkfifo"):  # reading a FIFO would block a DataLoader worker forever
        os.mkfifo(tmp_path / "pipe.jpg")
        assert decode_image(tmp_path / "pipe.jpg").flag == "image_unreadable"
    assert decode_image("photo\x00.jpg").flag == "image_unreadable"
    assert decode_image("x" * 5000 + ".jpg").flag in ("image_missing", "image_unreadable")


def test_programming_errors_still_raise():
    with pytest.raises(TypeError, match="int"):
        decode_image(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="NoneType"):
        decode_image(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bytes"):
        decode_base64_image(b"abc")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_pixels"):
        decode_image(FIXTURES / "gray.png", max_pixels=0)
    with pytest.raises(ValueError, match="min_side"):
        decode_image(FIXTURES / "gray.png", min_side=-1)


def test_decoded_image_rejects_inconsistent_records():
    with pytest.raises(ValueError, match="flag"):
        DecodedImage(image=None, flag=None, detail="")
    with pytest.raises(ValueError, match="flag"):
        DecodedImage(image=None, flag="broken", detail="")
    with pytest.raises(ValueError, match="flag=None"):
        DecodedImage(image=Image.new("RGB", (2, 2)), flag="image_missing", detail="")
    with pytest.raises(ValueError, match="RGB"):
        DecodedImage(image=Image.new("L", (2, 2)), flag=None, detail="")


def test_to_rgb_array_gives_a_writable_hxwx3_uint8_array():
    array = to_rgb_array(Image.new("RGB", (5, 3), RED))
    assert array.shape == (3, 5, 3)
    assert array.dtype == np.uint8
    assert array.flags.writeable
    _assert_colour(array.astype(int), RED, tol=0)
    gray = to_rgb_array(Image.new("L", (4, 2), 77))
    assert gray.shape == (2, 4, 3)
    assert set(np.unique(gray)) == {77}
    with pytest.raises(TypeError):
        to_rgb_array(np.zeros((2, 2, 3), dtype=np.uint8))  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.iterdir()))
def test_every_fixture_gives_an_image_or_a_known_flag(name: str):
    result = decode_image(FIXTURES / name)
    assert result.ok or result.flag in IMAGE_FLAGS
    assert result.detail


_SEEDS = [(FIXTURES / name).read_bytes() for name in ("cmyk.jpg", "gray16.png", "photo.webp")]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(_SEEDS),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8),
    cut=st.integers(0, 10_000),
)
def test_mangled_image_bytes_never_raise(seed: bytes, edits: list[tuple[int, int]], cut: int):
    data = bytearray(seed)
    for position, value in edits:
        data[position % len(data)] = value
    result = decode_image(bytes(data[: max(1, cut % (len(data) + 1))]), min_side=1)
    assert result.ok or result.flag in IMAGE_FLAGS


def test_fixture_script_regenerates_every_committed_fixture(tmp_path: Path):
    written = _load_fixture_script().make_all(tmp_path)
    assert sorted(p.name for p in written) == sorted(p.name for p in FIXTURES.iterdir())
    assert sum(p.stat().st_size for p in FIXTURES.iterdir()) < 100_000
    for path in written:
        committed = decode_image(FIXTURES / path.name, min_side=1)
        regenerated = decode_image(path, min_side=1)
        assert committed.flag == regenerated.flag, path.name


# --- scanning many files (validation) ----------------------------------------------------------

_ALL_CASES = [*sorted(p.name for p in FIXTURES.iterdir()), "missing.jpg"]


@pytest.mark.parametrize("workers", [0, 4])
def test_full_scan_flags_every_file_exactly_as_decode_image_does(workers: int):
    paths = [FIXTURES / name for name in _ALL_CASES]
    checks = scan_images(paths, workers=workers)
    assert [c.flag for c in checks] == [decode_image(p).flag for p in paths]
    for name, check in zip(_ALL_CASES, checks, strict=True):
        assert name in check.detail


def test_header_scan_finds_every_unusable_file_except_truncated_pixel_data():
    paths = [FIXTURES / name for name in _ALL_CASES]
    full = dict(zip(_ALL_CASES, scan_images(paths), strict=True))
    header = dict(zip(_ALL_CASES, scan_images(paths, decode=False), strict=True))
    missed = sorted(name for name in _ALL_CASES if full[name].flag != header[name].flag)
    assert missed == ["truncated.jpg"]
    assert header["truncated.jpg"].ok and "pixels not decoded" in header["truncated.jpg"].detail
    assert header["huge_header.png"].flag == "image_too_large"
    assert header["tiny.png"].flag == "image_too_small"
    assert header["empty.jpg"].flag == "image_unreadable"


def test_scan_keeps_the_global_warning_filters_and_pillow_settings(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # bilevel.png trips Pillow's warning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        before = list(warnings.filters)
        checks = scan_images([FIXTURES / "bilevel.png"] * 20 + [FIXTURES / "gray.png"], workers=4)
        assert list(warnings.filters) == before  # 4 threads, and the filters are as they were
    assert {c.flag for c in checks[:20]} == {"image_too_large"}  # 1024 px > Pillow's 1000
    assert checks[-1].ok  # 32x24 = 768 px
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_scan_refuses_negative_workers_and_image_check_refuses_unknown_flags():
    with pytest.raises(ValueError, match="workers"):
        scan_images([FIXTURES / "gray.png"], workers=-1)
    with pytest.raises(ValueError, match="flag"):
        ImageCheck("image_broken", "x")
