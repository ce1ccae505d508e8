"""Image noising shared by POVID (whole image) and MMedPO (lesion region).

Images are PIL images; maps are float arrays in [0, 1] of the image's height and width.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def alpha_bar(step: int, num_steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> float:
    """Cumulative product of (1 - beta) at ``step`` for DDPM's linear schedule (Ho et al., 2020)."""
    if not 0 <= step <= num_steps:
        raise ValueError(f"diffusion step must be in [0, {num_steps}], got {step}")
    betas = np.linspace(beta_start, beta_end, num_steps, dtype=np.float64)
    return float(np.prod(1.0 - betas[:step]))


def diffusion_noise(
    image: Image.Image,
    region: np.ndarray | None = None,
    *,
    step: int = 500,
    num_steps: int = 1000,
    seed: int = 0,
) -> Image.Image:
    """Forward diffusion ``x_k = sqrt(abar_k) x + sqrt(1 - abar_k) eps`` on pixels scaled to [-1, 1].

    With ``region`` (a map in [0, 1]) only pixels where the map is >= 0.5 change (MMedPO's local noise);
    without it the whole image is noised (POVID; MMedPO's global-noise ablation).
    """
    rgb = np.asarray(image.convert("RGB"), dtype=np.float64) / 127.5 - 1.0
    rng = np.random.default_rng(seed)
    abar = alpha_bar(step, num_steps)
    noised = np.sqrt(abar) * rgb + np.sqrt(1.0 - abar) * rng.standard_normal(rgb.shape)
    if region is not None:
        inside = _region_mask(region, rgb.shape[:2])[..., None]
        noised = np.where(inside, noised, rgb)
    return Image.fromarray(np.clip((noised + 1.0) * 127.5, 0, 255).round().astype(np.uint8))


def _region_mask(region: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    region = np.asarray(region, dtype=np.float64)
    if region.shape != shape:
        resized = Image.fromarray((np.clip(region, 0, 1) * 255).astype(np.uint8)).resize((shape[1], shape[0]))
        region = np.asarray(resized, dtype=np.float64) / 255.0
    return region >= 0.5
