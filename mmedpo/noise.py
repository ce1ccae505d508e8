"""Visual dispreference: noise the lesion region of an image (MMedPO Sec. 3.1, "visual preference").

Three modes, all deterministic for a given ``seed``:

- ``diffusion`` (the paper): forward diffusion ``x_k = sqrt(abar_k) x + sqrt(1 - abar_k) eps`` at step
  ``step`` of 1000 on the ``schedule`` (default step 500 on the ``sigmoid`` schedule, POVID's released
  values, which keep ``abar = 0.745``, signal x 0.863; the paper states neither) on the pixels where the
  lesion map is >= 0.5 (``harness.curation.imaging.diffusion_noise``).
- ``release`` (the released curation code, alias ``gaussian-replace``): aiming-lab/MMedPO at commit
  97d17e2, ``curation/Sample_Zero-Shot_Grounding_RSNA/inference_attention-map_score.py``,
  ``generate_noised_image`` (lines 211-237): the map is resized to the image bilinearly (lines 218-222),
  blurred with a 15x15 Gaussian, sigma 0 (OpenCV's rule; line 224), thresholded at ``mean - std`` of the
  blurred map (lines 225-227), and every pixel above the threshold is *replaced* by ``N(0, 10)`` noise drawn
  on the 0-255 scale in the image's own shape (lines 228-230). The image array is ``uint8`` (``np.array``
  of the PIL image, copied at line 231), so the assignment at line 233 casts the float draws to ``uint8``:
  truncation toward zero, then modulo 256 on x86, so a negative draw (half of them) *wraps* to 226-255 and
  the region turns to salt-and-pepper; the ``np.clip`` at line 234 acts on the already-cast ``uint8``
  array and changes nothing. :func:`wrap_uint8` does that cast explicitly (numpy leaves it to the
  platform: ARM saturates to 0). With a map that covers less than half the image, ``mean - std`` is
  negative and every pixel passes: the released rule then noises the whole image. ``threshold`` may be set
  to a number in [0, 1] to use a fixed cut instead.
- ``global`` (the paper's ablation): diffusion noise over the whole image, ignoring the map.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from PIL import Image

from harness.core.errors import HarnessError
from harness.core.images import to_8bit
from harness.curation.imaging import DEFAULT_SCHEDULE, DEFAULT_STEP, alpha_bar, diffusion_noise

NoiseMode = Literal["diffusion", "release", "global"]
NOISE_MODES = ("diffusion", "release", "global")
# Older names of a mode, still accepted (saved configs): gaussian-replace is the release's rule.
NOISE_ALIASES = {"gaussian-replace": "release"}
RELEASE_SOURCE = ("aiming-lab/MMedPO@97d17e2 curation/Sample_Zero-Shot_Grounding_RSNA/"
                  "inference_attention-map_score.py:211-237")


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


def wrap_uint8(values: np.ndarray) -> np.ndarray:
    """Float values cast to ``uint8`` as the release's assignment into a ``uint8`` array does on x86:
    truncated toward zero, then taken modulo 256 (-3.7 -> 253, -0.4 -> 0, 12.9 -> 12)."""
    return np.mod(np.trunc(np.asarray(values, dtype=np.float64)).astype(np.int64), 256).astype(np.uint8)


def gaussian_replace(
    image: Image.Image, region: np.ndarray, *, seed: int = 0, threshold: float | None = None,
    sigma: float = 10.0, kernel_size: int = 15,
) -> tuple[Image.Image, np.ndarray]:
    """The released code's rule (module docstring, ``release``); returns the noised image and the boolean
    mask of replaced pixels. A grayscale image stays one channel (the release noises the array of the image
    as stored; 16-bit and float grayscale is first scaled to L by ``harness.core.images.to_8bit``); other modes
    than L and RGB are converted to RGB first."""
    source = to_8bit(image)
    source = source if source.mode in ("L", "RGB") else source.convert("RGB")
    pixels = np.array(source, dtype=np.uint8)
    blurred = blur(resize_map(region, image.size), kernel_size)
    cut = blurred.mean() - blurred.std() if threshold is None else float(threshold)
    replaced = blurred > cut
    noise = np.random.default_rng(seed).normal(0.0, sigma, pixels.shape)
    pixels[replaced] = wrap_uint8(noise[replaced])
    return Image.fromarray(pixels, mode=source.mode), replaced


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
    mode = NOISE_ALIASES.get(mode, mode)
    if mode == "global":
        return diffusion_noise(image, None, step=step, schedule=schedule, seed=seed)
    if region is None:
        raise HarnessError(f"noise mode '{mode}' needs a lesion map; use mode 'global' to noise the whole image")
    if mode == "diffusion":
        return diffusion_noise(image, resize_map(region, image.size), step=step, schedule=schedule, seed=seed)
    if mode == "release":
        return gaussian_replace(image, region, seed=seed, threshold=threshold)[0]
    raise HarnessError(f"unknown noise mode '{mode}' (known: {', '.join(NOISE_MODES)})")


def noise_record(mode: str, step: int, schedule: str) -> dict[str, object]:
    """What a visual pair records about its noise: the schedule, ``abar`` and the retained signal ``sqrt(abar)``.

    ``release`` does not diffuse, so it records no schedule (None values) but cites its source.
    """
    mode = NOISE_ALIASES.get(mode, mode)
    if mode == "release":
        return {"noise_schedule": None, "alpha_bar": None, "signal_kept": None, "noise_source": RELEASE_SOURCE}
    abar = alpha_bar(step, schedule=schedule)
    return {"noise_schedule": schedule, "alpha_bar": round(abar, 6), "signal_kept": round(float(np.sqrt(abar)), 6)}
