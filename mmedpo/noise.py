"""Visual dispreference: noise the lesion region of an image (MMedPO Sec. 3.1, "visual preference").

Three modes, all deterministic for a given ``seed``:

- ``diffusion`` (the paper): forward diffusion ``x_k = sqrt(abar_k) x + sqrt(1 - abar_k) eps`` at step
  ``step`` of 1000 on the ``schedule`` (default step 500 on the ``sigmoid`` schedule, POVID's released
  values, which keep ``abar = 0.745``, signal x 0.863; the paper states neither) on the pixels where the
  lesion map is >= 0.5 (``harness.imaging.diffusion_noise``).
- ``gaussian-replace`` (the released curation code): blur the map with a 15x15 Gaussian, threshold it at
  ``mean - std`` of the blurred map, and *replace* every pixel above the threshold with ``N(0, 10)`` noise on
  the 0-255 scale (so the region turns near-black and grainy). With a map that covers less than half the
  image, ``mean - std`` is negative and every pixel passes: the released rule then noises the whole image.
  ``threshold`` may be set to a number in [0, 1] to use a fixed cut instead.
- ``global`` (the paper's ablation): diffusion noise over the whole image, ignoring the map.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from PIL import Image

from harness.errors import HarnessError
from harness.imaging import DEFAULT_SCHEDULE, DEFAULT_STEP, alpha_bar, diffusion_noise

NoiseMode = Literal["diffusion", "gaussian-replace", "global"]
NOISE_MODES = ("diffusion", "gaussian-replace", "global")


def gaussian_kernel(size: int = 15, sigma: float | None = None) -> np.ndarray:
    """A normalized 1-D Gaussian; ``sigma=None`` uses OpenCV's rule for sigma 0: 0.3((size-1)/2 - 1) + 0.8."""
    if sigma is None:
        sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    kernel = np.exp(-(x**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def blur(region: np.ndarray, size: int = 15) -> np.ndarray:
    """Separable Gaussian blur with reflected borders (the behaviour of cv2.GaussianBlur's default border)."""
    kernel = gaussian_kernel(size)
    pad = size // 2
    out = np.asarray(region, dtype=np.float64)
    for axis in (0, 1):
        widths = [(0, 0), (0, 0)]
        widths[axis] = (pad, pad)
        padded = np.pad(out, widths, mode="reflect" if out.shape[axis] > pad else "edge")
        out = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="valid"), axis, padded)
    return out


def resize_map(region: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a float map to ``(width, height)`` bilinearly (the release resizes with INTER_LINEAR)."""
    region = np.asarray(region, dtype=np.float32)
    if region.shape == (size[1], size[0]):
        return region.astype(np.float64)
    resized = Image.fromarray(region, mode="F").resize(size, Image.BILINEAR)
    return np.asarray(resized, dtype=np.float64)


def gaussian_replace(
    image: Image.Image, region: np.ndarray, *, seed: int = 0, threshold: float | None = None,
    sigma: float = 10.0, kernel_size: int = 15,
) -> tuple[Image.Image, np.ndarray]:
    """The released code's rule; returns the noised image and the boolean mask of replaced pixels."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float64)
    blurred = blur(resize_map(region, image.size), kernel_size)
    cut = blurred.mean() - blurred.std() if threshold is None else float(threshold)
    replaced = blurred > cut
    noise = np.random.default_rng(seed).normal(0.0, sigma, rgb.shape)
    rgb[replaced] = noise[replaced]
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)), replaced


def apply_noise(
    image: Image.Image,
    region: np.ndarray | None,
    *,
    mode: str = "diffusion",
    step: int = DEFAULT_STEP,
    schedule: str = DEFAULT_SCHEDULE,
    seed: int = 0,
    threshold: float | None = None,
) -> Image.Image:
    """Noise ``image`` inside ``region`` (a map in [0, 1]) with ``mode``; see the module docstring."""
    if mode == "global":
        return diffusion_noise(image, None, step=step, schedule=schedule, seed=seed)
    if region is None:
        raise HarnessError(f"noise mode '{mode}' needs a lesion map; use mode 'global' to noise the whole image")
    if mode == "diffusion":
        return diffusion_noise(image, resize_map(region, image.size), step=step, schedule=schedule, seed=seed)
    if mode == "gaussian-replace":
        return gaussian_replace(image, region, seed=seed, threshold=threshold)[0]
    raise HarnessError(f"unknown noise mode '{mode}' (known: {', '.join(NOISE_MODES)})")


def noise_record(mode: str, step: int, schedule: str) -> dict[str, object]:
    """What a visual pair records about its noise: the schedule, ``abar`` and the retained signal ``sqrt(abar)``.

    ``gaussian-replace`` does not diffuse, so it records no schedule (None values).
    """
    if mode == "gaussian-replace":
        return {"noise_schedule": None, "alpha_bar": None, "signal_kept": None}
    abar = alpha_bar(step, schedule=schedule)
    return {"noise_schedule": schedule, "alpha_bar": round(abar, 6), "signal_kept": round(float(np.sqrt(abar)), 6)}
