"""Pair builders read a sample's image through ``harness.core.images`` (``harness.curation.pairs.load_image``): a
16-bit image is written as its 8-bit conversion; an oversized one is one line naming the file and the sample."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from harness.core.errors import DataError, HarnessError
from harness.core.images import MAX_PIXELS
from harness.curation.pairs import load_image, save_sample_image


@pytest.mark.parametrize("kind", ["path", "undecoded path", "undecoded bytes", "decoded"])
def test_a_16bit_sample_image_is_its_8bit_conversion(ramp_pngs, kind):
    ramp16, ramp8 = ramp_pngs
    with Image.open(ramp16) as decoded:
        decoded.load()
        value = {"path": ramp16, "undecoded path": {"path": str(ramp16), "bytes": None},
                 "undecoded bytes": {"path": None, "bytes": ramp16.read_bytes()}, "decoded": decoded}[kind]
        got = np.asarray(load_image(value, owner="method 'x'", sample_id="s1"))
    with Image.open(ramp8) as want:
        assert np.array_equal(got, np.asarray(want.convert("RGB")))
    assert (got == 255).mean() < 0.01


def test_the_saved_pair_image_is_the_8bit_conversion(ramp_pngs, tmp_path):
    ramp16, ramp8 = ramp_pngs
    name16, _ = save_sample_image({"image": str(ramp16)}, tmp_path, owner="method 'x'", sample_id="s1")
    name8, _ = save_sample_image({"image": str(ramp8)}, tmp_path, owner="method 'x'", sample_id="s2")
    assert name16 == name8  # named by content: the same pixels


@pytest.mark.parametrize("as_dict", [False, True])
def test_an_oversized_sample_image_is_one_line(oversized_png, as_dict):
    value = {"path": str(oversized_png), "bytes": None} if as_dict else oversized_png
    with pytest.raises(DataError) as caught:
        load_image(value, owner="method 'x'", sample_id="s9")
    message = str(caught.value)
    assert message.startswith(f"{oversized_png}, record s9, field 'image': image is 400,000,000 pixels")
    assert f"limit of {MAX_PIXELS:,} pixels" in message and "\n" not in message


def test_oversized_bytes_name_the_file_they_came_from(oversized_png):
    with pytest.raises(DataError, match=f"^{oversized_png}, record s9, field 'image': image is 400,000,000"):
        load_image({"path": str(oversized_png), "bytes": oversized_png.read_bytes()}, owner="m", sample_id="s9")
    with pytest.raises(DataError, match="^method 'x', record s9, field 'image': image is 400,000,000"):
        load_image({"path": None, "bytes": oversized_png.read_bytes()}, owner="method 'x'", sample_id="s9")


def test_no_image_is_still_named_by_the_builder():
    with pytest.raises(HarnessError, match="method 'x': sample s1 has no usable image"):
        load_image(None, owner="method 'x'", sample_id="s1")
