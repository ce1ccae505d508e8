"""Lesion-region noise on real synthetic cases: the ground-truth map noises the lesion and spares the rest;
the named diffusion schedules keep the signal their releases keep."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from harness.errors import HarnessError
from harness.imaging import alpha_bar, diffusion_noise
from mmedpo.config import CurationConfig
from mmedpo.localize import GroundTruthLocalizer, get_localizer
from mmedpo.noise import apply_noise, blur, gaussian_replace, noise_record


def _release_signal(schedule: str, step: int, num_steps: int = 1000) -> float:
    """sqrt(cumprod(1 - betas)[step]) written out term by term from the cited releases' formulas."""
    kept = 1.0
    for i in range(step + 1):
        t = i / (num_steps - 1)
        if schedule == "sigmoid":  # VCD vcd_add_noise.py, copied by POVID's train_dpo.py and called at step 500
            beta = 1.0 / (1.0 + math.exp(-(-6.0 + 12.0 * t))) * (0.5e-2 - 1e-5) + 1e-5
        else:  # DDPM (Ho et al., 2020): linspace(1e-4, 0.02, 1000)
            beta = 1e-4 + (0.02 - 1e-4) * t
        kept *= 1.0 - beta
    return math.sqrt(kept)


@pytest.mark.parametrize(("schedule", "signal"), [("sigmoid", 0.8630), ("linear", 0.2789)])
def test_named_schedules_keep_the_released_signal_at_step_500(schedule, signal):
    kept = math.sqrt(alpha_bar(500, schedule=schedule))
    assert kept == pytest.approx(_release_signal(schedule, 500), rel=1e-9)
    assert kept == pytest.approx(signal, abs=5e-5)  # the value docs/mmedpo.md and docs/methods.md state


def test_defaults_are_povids_release():
    assert alpha_bar(500) == alpha_bar(500, schedule="sigmoid")
    config = CurationConfig()
    assert (config.noise_schedule, config.noise_step) == ("sigmoid", 500)
    assert noise_record("diffusion", 500, "sigmoid")["signal_kept"] == pytest.approx(_release_signal("sigmoid", 500))
    assert noise_record("gaussian-replace", 500, "sigmoid")["alpha_bar"] is None


@pytest.mark.parametrize("schedule", ["sigmoid", "linear"])
def test_noised_pixels_keep_sqrt_abar_of_the_signal(schedule):
    # two gray levels: the noised levels move apart by sqrt(abar) times their distance, less the share of
    # pixels that clipping to [0, 255] pins (first order: times P(|sqrt(1 - abar) eps| <= 1))
    pixels = np.full((512, 512), 112, dtype=np.uint8)
    pixels[:, 256:] = 144
    image = Image.fromarray(pixels).convert("RGB")
    x = np.asarray(image, dtype=np.float64) / 127.5 - 1.0
    y = np.asarray(diffusion_noise(image, schedule=schedule, seed=1), dtype=np.float64) / 127.5 - 1.0
    slope = (y[:, 256:].mean() - y[:, :256].mean()) / (x[:, 256:].mean() - x[:, :256].mean())
    abar = alpha_bar(500, schedule=schedule)
    assert slope == pytest.approx(math.sqrt(abar) * math.erf(1 / math.sqrt(2 * (1 - abar))), abs=0.015)


def test_bad_schedule_or_step_is_a_one_line_error():
    with pytest.raises(HarnessError, match="unknown diffusion schedule 'cosine'"):
        alpha_bar(500, schedule="cosine")
    with pytest.raises(HarnessError, match=r"\[0, 999\], got 1000"):
        alpha_bar(1000)
    with pytest.raises(HarnessError, match="noise_schedule"):
        CurationConfig.from_options({"noise_schedule": "cosine"})


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
        assert found is not None and 0.0 < found.confidence < 1.0
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
    slake_style = [{"Liver": [0, 0, 2, 2]}, {"Liver Cancer": [5, 5, 3, 2]}]
    assert GroundTruthLocalizer().localize({"image": image, "boxes": slake_style}).map.sum() == 6
    assert GroundTruthLocalizer().localize({"image": image, "boxes": slake_style[:1]}) is None  # an organ only
    assert GroundTruthLocalizer().localize({"image": image, "mask": Image.new("L", (20, 10)), "boxes": "[]"}) is None


def test_local_noise_without_a_map_is_an_error():
    with pytest.raises(HarnessError, match="needs a lesion map"):
        apply_noise(Image.new("RGB", (4, 4)), None, mode="diffusion")
    with pytest.raises(HarnessError, match="unknown noise mode"):
        apply_noise(Image.new("RGB", (4, 4)), np.ones((4, 4)), mode="blur")


def test_unknown_localizer_suggests_a_name():
    with pytest.raises(HarnessError, match="did you mean 'ground-truth'"):
        get_localizer("ground-truht")
