"""Image ablations for the visual-reliance diagnostic.

Evaluating again with the image blanked or noised and measuring the drop shows how much a model's answers
depend on the image at all: the modality misalignment MMedPO targets (a model that answers from the text
prior alone loses nothing). The noise is the forward-diffusion noise POVID and MMedPO use for rejected
images (``harness.curation.imaging.diffusion_noise``), applied to the whole image.
"""

from __future__ import annotations

import zlib

from PIL import Image

from harness.curation.imaging import diffusion_noise


def ablate_image(image: Image.Image | None, mode: str, *, sample_id: str, seed: int = 0,
                 noise_step: int = 500, blank_value: int = 0) -> Image.Image | None:
    """The ablated copy of ``image``: ``blank`` is a constant image of the same size, ``noise`` is noised.

    The noise seed mixes ``seed`` with the sample id, so each image gets its own noise and a resumed run
    regenerates exactly the same inputs.
    """
    if image is None:
        return None
    if mode == "blank":
        return Image.new("RGB", image.size, (blank_value,) * 3)
    if mode == "noise":
        sample_seed = (seed * 1_000_003 + zlib.crc32(str(sample_id).encode())) % 2**32
        return diffusion_noise(image, step=noise_step, seed=sample_seed)
    raise ValueError(f"unknown image ablation '{mode}'")
