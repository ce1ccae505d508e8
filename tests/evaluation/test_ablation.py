import numpy as np
from PIL import Image

from harness.evaluation.ablation import ablate_image


def _image():
    return Image.fromarray(np.random.default_rng(0).integers(0, 255, (24, 40, 3), dtype=np.uint8))


def test_blank_is_a_constant_image_of_the_same_size():
    blank = ablate_image(_image(), "blank", sample_id="a", blank_value=7)
    pixels = np.asarray(blank)
    assert blank.size == (40, 24) and (pixels == 7).all()


def test_noise_changes_the_image_and_repeats_per_sample():
    image = _image()
    first = np.asarray(ablate_image(image, "noise", sample_id="a", seed=1))
    again = np.asarray(ablate_image(image, "noise", sample_id="a", seed=1))
    other = np.asarray(ablate_image(image, "noise", sample_id="b", seed=1))
    assert (first == again).all()  # a resumed run sees the same inputs
    assert not (first == other).all()  # each sample gets its own noise
    assert np.abs(first.astype(float) - np.asarray(image, dtype=float)).mean() > 20


def test_missing_image_stays_missing():
    assert ablate_image(None, "blank", sample_id="a") is None
