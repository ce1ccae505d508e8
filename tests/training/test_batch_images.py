"""Training reads its images through ``harness.core.images``: a 16-bit image trains as its 8-bit conversion; an
oversized one stops the run with one line naming the file, the pair and the limit."""

from __future__ import annotations

import numpy as np
import pytest

from harness.core.errors import DataError
from harness.core.images import MAX_PIXELS
from harness.curation.preferences import PreferencePair
from harness.training.batch import PairDataset


class RecordingEncoder:
    """Stands in for ``RowEncoder``: keeps the images the dataset hands over."""

    def __init__(self):
        self.images = []

    def encode_prompt(self, image, prompt):
        self.images.append(image)
        return prompt

    def append(self, prefix, text, row_id):
        return (prefix, text)


def _pair(image: str, rejected_image: str | None = None) -> PreferencePair:
    return PreferencePair(id="p0", image=image, prompt="is there a mass?", chosen="no", rejected="yes",
                          rejected_image=rejected_image, kind="visual" if rejected_image else "text")


def _images_seen(pair: PreferencePair, root) -> list:
    encoder = RecordingEncoder()
    PairDataset([pair], root, encoder, with_rejected=True)[0]
    return encoder.images


def test_a_16bit_image_trains_as_its_8bit_conversion(ramp_pngs):
    ramp16, ramp8 = ramp_pngs
    (seen16,), (seen8,) = _images_seen(_pair(ramp16.name), ramp16.parent), _images_seen(_pair(ramp8.name), ramp8.parent)
    assert seen16.mode == seen8.mode == "RGB"
    assert np.array_equal(np.asarray(seen16), np.asarray(seen8))
    assert (np.asarray(seen16) == 255).mean() < 0.01


def test_an_oversized_image_is_one_line_naming_the_file_pair_and_limit(oversized_png):
    with pytest.raises(DataError) as caught:
        _images_seen(_pair(oversized_png.name), oversized_png.parent)
    message = str(caught.value)
    assert message.startswith(f"{oversized_png}, record p0, field 'image': image is 400,000,000 pixels")
    assert f"limit of {MAX_PIXELS:,} pixels" in message and "\n" not in message


def test_an_oversized_rejected_image_names_its_field(oversized_png, ramp_pngs):
    ramp8 = ramp_pngs[1]
    with pytest.raises(DataError, match="record p0, field 'rejected_image': image is 400,000,000 pixels"):
        _images_seen(_pair(str(ramp8), rejected_image=str(oversized_png)), None)


def test_a_training_run_stops_on_an_oversized_image_in_one_line(tiny_model, oversized_png, tmp_path):
    from helpers import LocalDPO

    from harness.models.hf import load_hf_model
    from harness.training import TrainConfig, train_preference

    model = load_hf_model(tiny_model, device="cpu", dtype="fp32")
    with pytest.raises(DataError, match=f"^{oversized_png}, record p0, field 'image': image is 400,000,000 pixels"):
        train_preference(model, LocalDPO(), [_pair(oversized_png.name)], oversized_png.parent, tmp_path / "run",
                         TrainConfig(max_steps=1, batch_size=1))
