"""Image noising shared by POVID (whole image) and MMedPO (lesion region).

Images are PIL images; maps are float arrays in [0, 1] of the image's height and width.

Forward diffusion keeps ``sqrt(abar_k)`` of the signal at step ``k`` (Ho et al., 2020, Eq. 4). How much that
is depends on the beta schedule, so the schedule is named:

- ``sigmoid`` (default): VCD's schedule (Leng et al., 2024, ``vcd_utils/vcd_add_noise.py``), which POVID's
  release copies and calls at step 500: ``betas = sigmoid(linspace(-6, 6, 1000)) * (5e-3 - 1e-5) + 1e-5``.
  Step 500 keeps ``abar = 0.7448`` (signal x 0.8630).
- ``linear``: DDPM's ``betas = linspace(1e-4, 0.02, 1000)``. Step 500 keeps ``abar = 0.0778`` (signal x 0.2789).

Steps index the cumulative product as both releases do (``cumprod(1 - betas)[k]``, k in [0, num_steps)),
so step ``k`` applies ``k + 1`` betas.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from harness.core.errors import HarnessError
from harness.core.images import to_rgb

SCHEDULES = ("sigmoid", "linear")
DEFAULT_SCHEDULE = "sigmoid"  # POVID's release (VCD's schedule)
DEFAULT_STEP = 500  # POVID's release: add_diffusion_noise(image_tensor, 500)
NUM_STEPS = 1000
# The default noise of a visual pair's lesion region (the paper's local dispreference): the forward process the
# paper writes, x_k = sqrt(abar_k) x + sqrt(1 - abar_k) eps, is DDPM's, so its schedule is DDPM's (linear), at
# the midpoint step 500, which keeps 28% of the signal. POVID's VCD schedule keeps 86% at that step: a model
# that reads lesions still reads them through it (docs/testbed.md#diagnose), so the pair would teach nothing.
LESION_NOISE_SCHEDULE = "linear"
LESION_NOISE_STEP = 500


def betas(schedule: str = DEFAULT_SCHEDULE, num_steps: int = NUM_STEPS) -> np.ndarray:
    """The per-step noise variances of the named ``schedule`` over ``num_steps`` steps."""
    if num_steps < 1:
        raise HarnessError(f"diffusion num_steps must be >= 1, got {num_steps}")
    if schedule == "linear":
        return np.linspace(1e-4, 0.02, num_steps, dtype=np.float64)
    if schedule == "sigmoid":
        return 1.0 / (1.0 + np.exp(-np.linspace(-6.0, 6.0, num_steps, dtype=np.float64))) * (5e-3 - 1e-5) + 1e-5
    raise HarnessError(f"unknown diffusion schedule '{schedule}' (known: {', '.join(SCHEDULES)})")


def alpha_bar(step: int, num_steps: int = NUM_STEPS, schedule: str = DEFAULT_SCHEDULE) -> float:
    """``abar_k = prod_{i <= k} (1 - beta_i)``: the signal variance kept at ``step`` (retained signal: its sqrt)."""
    if not 0 <= step < num_steps:
        raise HarnessError(f"diffusion step must be in [0, {num_steps - 1}], got {step}")
    return float(np.prod(1.0 - betas(schedule, num_steps)[: step + 1]))


def diffusion_noise(
    image: Image.Image,
    region: np.ndarray | None = None,
    *,
    step: int = DEFAULT_STEP,
    num_steps: int = NUM_STEPS,
    schedule: str = DEFAULT_SCHEDULE,
    seed: int = 0,
) -> Image.Image:
    """Forward diffusion ``x_k = sqrt(abar_k) x + sqrt(1 - abar_k) eps`` on pixels scaled to [-1, 1].

    With ``region`` (a map in [0, 1]) only pixels where the map is >= 0.5 change (MMedPO's local noise);
    without it the whole image is noised (POVID; MMedPO's global-noise ablation). POVID's release noises
    ``ToTensor`` pixels in [0, 1] before the processor and does not clip, so its eps is twice as large in
    pixel terms as this one on [-1, 1]; the retained signal ``sqrt(abar_k)`` is the same.
    """
    rgb = np.asarray(to_rgb(image), dtype=np.float64) / 127.5 - 1.0
    rng = np.random.default_rng(seed)
    abar = alpha_bar(step, num_steps, schedule)
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
