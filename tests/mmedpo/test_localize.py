"""Localizer confidence carries information offline: ground truth scores how visible the lesion is, saliency
the share of its attribution mass inside the region, and on the synthetic suite the visual weights spread."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from harness.core.errors import HarnessError
from harness.methods import PairContext
from mmedpo.curate import curate
from mmedpo.localize import GroundTruthLocalizer, lesion_visibility
from mmedpo.saliency import attribution_share


def _textured(size=40, base=100, swing=20) -> np.ndarray:
    """A checkerboard base +- swing: its mean is base and its std is swing on any even-sized window."""
    yy, xx = np.mgrid[0:size, 0:size]
    return np.where((yy + xx) % 2 == 0, base + swing, base - swing).astype(np.uint8)


def _with_square(pixels, top, left, side, value) -> tuple[Image.Image, np.ndarray]:
    pixels = pixels.copy()
    pixels[top:top + side, left:left + side] = value
    region = np.zeros(pixels.shape)
    region[top:top + side, left:left + side] = 1.0
    return Image.fromarray(pixels), region


def test_visibility_is_the_documented_contrast_times_size():
    image, region = _with_square(_textured(), 10, 10, 4, 200)
    # ring: 2 pixels around the 4x4 square, a checkerboard with mean 100 and std 20 (0-255 scale)
    contrast = 100 / (100 + 20)
    size = np.sqrt((16 / 1600) / 0.05)
    assert lesion_visibility(image, region) == pytest.approx(contrast * size, abs=1e-9)


def test_visibility_rises_with_contrast_and_area_and_vanishes_without_either():
    background = _textured()
    faint = lesion_visibility(*_with_square(background, 10, 10, 6, 130))
    bright = lesion_visibility(*_with_square(background, 10, 10, 6, 230))
    large = lesion_visibility(*_with_square(background, 10, 10, 12, 230))
    assert 0.0 < faint < bright < large <= 1.0
    # a "lesion" with the texture of its surroundings, and one that fills the image, are not seen
    assert lesion_visibility(Image.fromarray(background), np.pad(np.ones((8, 8)), 16)) == pytest.approx(0.0, abs=0.02)
    assert lesion_visibility(Image.fromarray(background), np.ones((40, 40))) == 0.0


def test_the_most_visible_lesion_decides():
    image, region = _with_square(_textured(), 4, 4, 6, 230)
    pixels = np.asarray(image).copy()
    pixels[24:30, 24:30] = 125
    second = region.copy()
    second[24:30, 24:30] = 1.0
    alone = lesion_visibility(image, region)
    assert lesion_visibility(Image.fromarray(pixels), second) == pytest.approx(alone)


def test_constant_confidence_option_and_bad_option():
    image, region = _with_square(_textured(), 10, 10, 4, 200)
    sample = {"image": image, "mask": Image.fromarray((region * 255).astype(np.uint8))}
    assert GroundTruthLocalizer(confidence="constant").localize(sample).confidence == 1.0
    assert GroundTruthLocalizer().localize(sample).confidence < 1.0
    with pytest.raises(HarnessError, match="confidence must be visibility or constant"):
        GroundTruthLocalizer(confidence="always")


def test_saliency_confidence_is_the_attribution_mass_inside_the_region():
    attribution = np.zeros((10, 10))
    attribution[2:4, 2:4] = 3.0  # 12 units inside
    attribution[8, :] = 0.4  # 4 units spread outside
    inside = attribution >= 0.5 * attribution.max()
    assert attribution_share(attribution, inside) == pytest.approx(12 / 16)
    assert attribution_share(np.zeros((4, 4)), np.ones((4, 4), dtype=bool)) == 0.0


@pytest.mark.parametrize("fixture", ["synth_train", "synth_reports"])
def test_visual_weights_spread_on_the_synthetic_suite(fixture, request, tmp_path):
    task, dataset = request.getfixturevalue(fixture)
    result = curate(PairContext(task=task, samples=dataset, model=None, output_dir=tmp_path, seed=0,
                                options={"text_pairs": False, "visual_items": "lesion"}))
    visual = [p for p in result.pairs if p.kind == "visual"]
    assert len(visual) == sum(1 for s in dataset if s["boxes"] != "[]") > 4
    raw = np.array([p.extra["raw_score"] for p in visual])
    weights = np.array([p.weight for p in visual])
    q1, q3 = np.quantile(weights, [0.25, 0.75])
    assert q3 - q1 > 0.1  # 'paper' weights: mean 1, variance 0.1, clipped to [0.75, 1.25]
    # a more visible lesion never gets a smaller weight
    order = np.argsort(raw)
    assert np.all(np.diff(weights[order]) >= -1e-12)
    extra = visual[0].extra
    assert (extra["noise_schedule"], extra["noise_step"]) == ("linear", 500)
    assert extra["signal_kept"] == pytest.approx(0.279, abs=1e-3)


def test_every_item_gets_a_visual_pair_and_a_normal_film_a_seeded_lung_region(synth_train, tmp_path):
    from harness.tasks.synth import _lung_centres
    from mmedpo.localize import NORMAL_FILM_RADIUS, is_normal_film, normal_film_region

    task, dataset = synth_train
    result = curate(PairContext(task=task, samples=dataset, model=None, output_dir=tmp_path, seed=0,
                                options={"text_pairs": False}))  # visual_items=all, the release's default
    visual = {p.id.rsplit("-", 1)[0]: p for p in result.pairs if p.kind == "visual"}
    assert set(visual) == {str(s["id"]) for s in dataset}
    normal = [s for s in dataset if is_normal_film(s)]
    lesion = [s for s in dataset if not is_normal_film(s)]
    assert normal and lesion
    for sample in normal:
        pair = visual[str(sample["id"])]
        assert pair.source == "mmedpo-normal-film-diffusion" and pair.extra["region"] == "normal-film"
        assert pair.extra["raw_score"] == 0.2 and pair.rejected == pair.chosen  # same ground truth both sides
        before = np.asarray(Image.open(result.image_root / pair.image).convert("L"), dtype=np.int64)
        after = np.asarray(Image.open(result.image_root / pair.rejected_image).convert("L"), dtype=np.int64)
        changed = before != after
        share = changed.mean()  # a lesion-sized region (0.6-4.5% of the image), not the whole film
        assert 0.003 < share < 0.06, share
        ys, xs = np.nonzero(changed)  # ... inside one lung field, where the suite draws lesions
        centre_x = xs.mean() / (before.shape[1] - 1)
        assert 0.15 < centre_x < 0.47 or 0.53 < centre_x < 0.85
    # normal films weigh no more than any lesion (their raw score sits below every lesion's visibility)
    lesion_raw = [visual[str(s["id"])].extra["raw_score"] for s in lesion]
    assert min(lesion_raw) > 0.2
    assert max(visual[str(s["id"])].weight for s in normal) <= min(visual[str(s["id"])].weight for s in lesion)
    # the region is seeded: the same seed gives the same region, another seed another
    image = normal[0]["image"]
    first = normal_film_region(image, seed=5, confidence=0.2)
    assert np.array_equal(first.map, normal_film_region(image, seed=5, confidence=0.2).map)
    assert not np.array_equal(first.map, normal_film_region(image, seed=6, confidence=0.2).map)
    radius = np.sqrt(first.map.mean() / np.pi)
    assert NORMAL_FILM_RADIUS[0] * 0.8 < radius < NORMAL_FILM_RADIUS[1] * 1.2
    assert set(_lung_centres(np.random.default_rng(0))) == {"right", "left"}
