"""Lesion-region noise on real synthetic cases: the ground-truth map noises the lesion and spares the rest;
the named diffusion schedules keep the signal their releases keep."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from harness.core.errors import HarnessError
from harness.curation.imaging import alpha_bar, diffusion_noise
from mmedpo.config import CurationConfig
from mmedpo.localize import GroundTruthLocalizer, get_localizer
from mmedpo.noise import (
    NOISE_MODES,
    RELEASE_SOURCE,
    apply_noise,
    blur,
    gaussian_replace,
    noise_record,
    wrap_uint8,
)


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


def test_defaults_povid_global_and_ddpm_for_the_lesion_region():
    assert alpha_bar(500) == alpha_bar(500, schedule="sigmoid")  # POVID's whole-image noise: its release
    config = CurationConfig()
    assert (config.noise_schedule, config.noise_step) == ("linear", 500)  # MMedPO's lesion noise: DDPM's process
    assert noise_record("diffusion", 500, "linear")["signal_kept"] == pytest.approx(0.2789, abs=5e-5)
    assert noise_record("diffusion", 500, "sigmoid")["signal_kept"] == pytest.approx(_release_signal("sigmoid", 500))
    assert noise_record("release", 500, "sigmoid")["alpha_bar"] is None
    assert noise_record("gaussian-replace", 500, "sigmoid")["noise_source"] == RELEASE_SOURCE  # the old name


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


def test_release_noise_follows_the_release_rule():
    image = Image.fromarray(np.full((40, 50, 3), 200, dtype=np.uint8))
    region = np.zeros((40, 50))
    region[10:20, 10:20] = 1.0
    noised, replaced = gaussian_replace(image, region, seed=1)
    blurred = blur(region, 15)
    assert np.array_equal(replaced, blurred > blurred.mean() - blurred.std())
    # a small region: mean - std < 0, so the released rule replaces every pixel (documented quirk)
    assert replaced.all()
    draws = np.random.default_rng(1).normal(0.0, 10.0, (40, 50, 3))  # the same seeded N(0, 10) draws
    pixels = np.asarray(noised).astype(np.int64)
    assert np.array_equal(pixels, np.trunc(draws).astype(np.int64) % 256)  # truncate, then wrap mod 256
    assert "release" in NOISE_MODES and "gaussian-replace" not in NOISE_MODES  # accepted as an alias only
    assert CurationConfig.from_options({"noise": "gaussian-replace"}).noise == "release"


def test_release_noise_wraps_negative_draws_to_bright_pixels():
    # the release assigns float N(0, 10) draws into a uint8 image: a negative draw wraps to ~250
    # (salt-and-pepper), where clipping would have made it 0 (black)
    image = Image.fromarray(np.full((30, 30), 120, dtype=np.uint8))  # grayscale stays one channel
    region = np.zeros((30, 30))
    region[5:10, 5:10] = 1.0  # a small region: the release's mean - std cut passes every pixel
    noised, replaced = gaussian_replace(image, region, seed=3)
    assert noised.mode == "L" and replaced.all()
    draws = np.random.default_rng(3).normal(0.0, 10.0, (30, 30))
    pixels = np.asarray(noised)
    negative = draws <= -1.0
    assert negative.mean() > 0.4
    assert (pixels[negative] >= 200).all() and (pixels[negative] >= 240).any()
    assert (pixels[draws >= 0] <= 60).all()  # positive draws stay dark
    assert pixels.mean() > 100  # half the replaced pixels are bright: not a near-black region
    assert list(wrap_uint8(np.array([-3.7, -0.4, 250.2, 12.9, -12.1]))) == [253, 0, 250, 12, 244]
    # numpy's own cast on x86 (the platform the release ran on) agrees
    cast = np.zeros(5, dtype=np.uint8)
    with np.errstate(invalid="ignore"):
        cast[:] = np.array([-3.7, -0.4, 250.2, 12.9, -12.1])
    import platform

    if platform.machine() in ("x86_64", "AMD64"):
        assert list(cast) == list(wrap_uint8(np.array([-3.7, -0.4, 250.2, 12.9, -12.1])))


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
