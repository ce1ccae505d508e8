"""The shared image reader (``harness.core.images``): high-bit-depth images scaled to 8 bits, never clipped;
images above the pixel limit refused in one line naming the file and the limit."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from harness.core.errors import DataError
from harness.core.images import MAX_PIXELS, open_image, read_image, to_8bit, to_rgb

LIMIT_TEXT = f"{MAX_PIXELS:,} pixels"


def test_16bit_png_reads_as_its_8bit_conversion(ramp_pngs):
    ramp16, ramp8 = ramp_pngs
    with Image.open(ramp16) as raw:
        assert raw.mode == "I;16"
        clipped = np.asarray(raw.convert("RGB"))
    assert (clipped == 255).mean() > 0.9  # what PIL's convert("RGB") does: the bug this reader fixes
    got = np.asarray(open_image(ramp16))
    want = np.asarray(open_image(ramp8))
    assert got.shape == want.shape == (64, 256, 3)
    assert np.array_equal(got, want)
    assert (got == 255).mean() < 0.01 and np.array_equal(got[0, :, 0], np.arange(256))


@pytest.mark.parametrize("dtype", ["<u2", ">u2"])
def test_16bit_tiff_of_either_byte_order_scales_the_same(tmp_path, dtype):
    levels = np.arange(256, dtype=np.uint16).reshape(16, 16)
    path = tmp_path / "ramp.tif"
    Image.fromarray((levels * 257).astype(dtype)).save(path)
    assert np.array_equal(np.asarray(read_image(path)), levels.astype(np.uint8))


def test_16bit_values_round_to_the_nearest_level():
    values = np.array([[0, 128, 129, 257 * 100 + 128, 257 * 100 + 129, 65535]], dtype=np.uint16)
    assert np.asarray(to_8bit(Image.fromarray(values))).tolist() == [[0, 0, 1, 100, 101, 255]]


def test_int_and_float_images_are_stretched_over_their_own_range():
    ints = Image.fromarray(np.array([[1000, 3000, 5000]], dtype=np.int32))
    floats = Image.fromarray(np.array([[0.0, 0.25, 1.0]], dtype=np.float32))
    assert (ints.mode, floats.mode) == ("I", "F")
    assert np.asarray(to_8bit(ints)).tolist() == [[0, 128, 255]]
    assert np.asarray(to_8bit(floats)).tolist() == [[0, 64, 255]]
    assert np.asarray(to_rgb(floats))[0, 1].tolist() == [64, 64, 64]
    with_nan = Image.fromarray(np.array([[np.nan, 2.0, 4.0]], dtype=np.float32))
    assert np.asarray(to_8bit(with_nan)).tolist() == [[0, 0, 255]]
    constant = Image.fromarray(np.full((2, 2), 7, dtype=np.int32))
    assert np.asarray(to_8bit(constant)).tolist() == [[0, 0], [0, 0]]


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK"])
def test_8bit_modes_convert_exactly_as_pil_does(mode):
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).convert(mode)
    assert np.array_equal(np.asarray(to_rgb(image)), np.asarray(image.convert("RGB")))
    assert to_8bit(image) is image


def test_every_source_kind_reads_the_same(ramp_pngs):
    ramp16, _ = ramp_pngs
    data = ramp16.read_bytes()
    with Image.open(ramp16) as image:
        image.load()
        sources = [ramp16, str(ramp16), data, {"path": str(ramp16), "bytes": None}, {"path": None, "bytes": data},
                   image]
        pixels = [np.asarray(open_image(source)) for source in sources]
    assert all(np.array_equal(p, pixels[0]) for p in pixels)


def test_oversized_png_is_one_line_naming_the_file_and_the_limit(oversized_png):
    with pytest.raises(DataError) as caught:
        open_image(oversized_png, record="case-7")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{oversized_png}, record case-7, field 'image': ")
    assert "400,000,000 pixels" in message and LIMIT_TEXT in message


def test_an_annotation_file_can_be_named_instead(oversized_png, tmp_path):
    with pytest.raises(DataError, match=f"^{tmp_path / 'test.json'}, record 3, field 'img_name': image file "
                                        f".*huge.png is 400,000,000 pixels, above the limit of {LIMIT_TEXT}"):
        read_image(oversized_png, where=tmp_path / "test.json", record=3, field="img_name")


def test_between_one_and_two_times_the_limit_is_refused_not_warned(tmp_path, blank_png):
    """PIL only warns up to twice its limit (and would decode the image): the harness refuses at the limit."""
    path = blank_png(tmp_path / "big.png", 10000, 10000)  # 100M pixels: 1.1x the limit
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning that slipped through would fail here instead
        with pytest.raises(DataError, match=f"big.png.*100,000,000 pixels, above the limit of {LIMIT_TEXT}"):
            open_image(path)


def test_the_limit_holds_when_pil_s_own_limit_is_lifted(tmp_path, monkeypatch, blank_png):
    path = blank_png(tmp_path / "big.png", 10000, 10000)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    with pytest.raises(DataError, match=f"10000x10000 = 100,000,000 pixels, above the limit of {LIMIT_TEXT}"):
        open_image(path)


def test_a_lower_pil_limit_lowers_the_harness_limit(ramp_pngs, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)  # the ramp has 16,384 pixels
    with pytest.raises(DataError, match="above the limit of 10,000 pixels"):
        open_image(ramp_pngs[0])
    with pytest.raises(DataError, match="above the limit of 10,000 pixels"):
        open_image(Image.new("L", (200, 200)), where="in memory")


def test_unreadable_and_missing_files_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match=r"^image bytes, record 4, field 'image': image cannot be decoded \("):
        open_image(b"not an image", record=4)
    with pytest.raises(DataError, match=f"^{tmp_path / 'none.png'}, field 'image': image not found$"):
        open_image(tmp_path / "none.png")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty.jpg.*cannot be decoded"):
        open_image(empty)
    with pytest.raises(DataError, match="no usable image"):
        open_image(12)

