"""Lesion-region noise on real synthetic cases: the ground-truth map noises the lesion and spares the rest."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from harness.errors import HarnessError
from mmedpo.localize import GroundTruthLocalizer, get_localizer
from mmedpo.noise import apply_noise, blur, gaussian_replace


def _lesion_samples(dataset, limit=12):
    out = [s for s in dataset if s["mask"] is not None and np.asarray(s["mask"]).any()]
    assert out, "the synthetic split has no lesion case"
    return out[:limit]


def _changed(a: Image.Image, b: Image.Image) -> np.ndarray:
    return (np.asarray(a.convert("RGB")) != np.asarray(b.convert("RGB"))).any(axis=-1)


def test_ground_truth_local_noise_hits_the_lesion_only(synth_train):
    _, dataset = synth_train
    localizer = get_localizer("ground-truth")
    inside_hits, inside_total, outside_hits, outside_total = 0, 0, 0, 0
    for index, sample in enumerate(_lesion_samples(dataset)):
        found = localizer.localize(sample)
        truth = np.asarray(sample["mask"].convert("L")) > 0
        assert found is not None and found.confidence == 1.0
        noised = apply_noise(sample["image"], found.map, mode="diffusion", step=500, seed=index)
        changed = _changed(sample["image"], noised)
        inside_hits += int(changed[truth].sum())
        inside_total += int(truth.sum())
        outside_hits += int(changed[~truth].sum())
        outside_total += int((~truth).sum())
    assert inside_hits / inside_total >= 0.90
    assert outside_hits / outside_total < 0.10


def test_global_noise_changes_most_of_the_image(synth_train):
    _, dataset = synth_train
    sample = _lesion_samples(dataset, 1)[0]
    noised = apply_noise(sample["image"], None, mode="global", step=500, seed=0)
    assert _changed(sample["image"], noised).mean() > 0.9


def test_gaussian_replace_follows_the_release_rule():
    image = Image.fromarray(np.full((40, 50, 3), 200, dtype=np.uint8))
    region = np.zeros((40, 50))
    region[10:20, 10:20] = 1.0
    noised, replaced = gaussian_replace(image, region, seed=1)
    blurred = blur(region, 15)
    assert np.array_equal(replaced, blurred > blurred.mean() - blurred.std())
    # a small region: mean - std < 0, so the released rule replaces every pixel (documented quirk)
    assert replaced.all()
    pixels = np.asarray(noised, dtype=np.float64)
    assert pixels.mean() < 20  # N(0, 10) noise clipped to [0, 255] replaces the value 200


def test_blur_matches_a_normalized_gaussian():
    impulse = np.zeros((31, 31))
    impulse[15, 15] = 1.0
    out = blur(impulse, 15)
    assert out.sum() == pytest.approx(1.0)
    assert out[15, 15] == out.max()
    assert np.allclose(out, out.T)


def test_boxes_make_a_map_and_empty_annotations_give_none():
    image = Image.new("RGB", (20, 10))
    found = GroundTruthLocalizer().localize({"image": image, "boxes": '[{"label": "x", "bbox": [2, 3, 4, 5]}]'})
    assert found.map.shape == (10, 20) and found.map.sum() == 20 and found.map[3:8, 2:6].all()
    slake_style = GroundTruthLocalizer().localize({"image": image, "boxes": [{"Liver": [0, 0, 2, 2]}]})
    assert slake_style.map.sum() == 4
    assert GroundTruthLocalizer().localize({"image": image, "mask": Image.new("L", (20, 10)), "boxes": "[]"}) is None


def test_local_noise_without_a_map_is_an_error():
    with pytest.raises(HarnessError, match="needs a lesion map"):
        apply_noise(Image.new("RGB", (4, 4)), None, mode="diffusion")
    with pytest.raises(HarnessError, match="unknown noise mode"):
        apply_noise(Image.new("RGB", (4, 4)), np.ones((4, 4)), mode="blur")


def test_unknown_localizer_suggests_a_name():
    with pytest.raises(HarnessError, match="did you mean 'ground-truth'"):
        get_localizer("ground-truht")
