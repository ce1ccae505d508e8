"""The ``saliency`` localizer: where does the target model look when it gives the ground-truth answer?

A vanilla-gradient saliency map (Simonyan et al., 2014, arXiv 1312.6034): the gradient of the summed
log-probability of the reference answer with respect to the pixel values the model sees, its absolute
value maxed over channels, smoothed with a Gaussian (15x15, as the MMedPO release smooths MedKLIP's map),
mapped back to image coordinates (undoing the processor's resize and centre crop) and min-max scaled to
[0, 1]. No external tool is needed, so it works for any dataset and any HF model the harness loads.

Confidence: the share of the attribution mass (the smoothed |gradient| in image coordinates, before min-max
scaling) that falls inside the region the map marks (map >= 0.5): high when the model's attention is
concentrated on one place, low when it is spread over the image.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from PIL import Image

from harness.core.errors import HarnessError
from harness.core.images import to_rgb
from mmedpo.localize import Localization, normalize_map

log = logging.getLogger(__name__)


class SaliencyLocalizer:
    name = "saliency"

    def __init__(self, smooth: int = 15):
        self.smooth = smooth

    def localize(self, sample: dict, *, model: Any = None, prompt: str | None = None) -> Localization | None:
        if model is None or not hasattr(model, "processor_inputs"):
            raise HarnessError("localizer 'saliency' needs a Hugging Face target model (harness.models.hf)")
        grad = answer_gradient(model, sample["image"], prompt or sample["question"], str(sample["answer"]))
        raw = np.abs(grad).max(axis=0)
        from mmedpo.noise import blur

        smoothed = blur(raw, self.smooth) if self.smooth > 1 else raw
        attribution = np.clip(to_image_coords(smoothed, sample["image"].size, model.processor), 0.0, None)
        region = normalize_map(attribution)
        if not region.any():
            return None
        return Localization(region, attribution_share(attribution, region >= 0.5), self.name)


def attribution_share(attribution: np.ndarray, inside: np.ndarray) -> float:
    """The share of the (non-negative) attribution mass that lies where ``inside`` is true; 0 with no mass."""
    total = float(attribution.sum())
    return float(attribution[inside].sum() / total) if total > 0 else 0.0


def answer_gradient(model: Any, image: Image.Image, prompt: str, answer: str) -> np.ndarray:
    """d log p(answer | image, prompt) / d pixel_values, as a (channels, height, width) array."""
    import torch

    prefix = model.format_prompt(prompt, with_image=True)
    rgb = to_rgb(image)
    inputs = model.processor_inputs([rgb], [prefix + answer], "right").to(model.device)
    prefix_len = model.processor_inputs([rgb], [prefix], "right")["input_ids"].shape[1]
    pixels = inputs["pixel_values"].to(model.model.dtype).detach().requires_grad_(True)
    inputs["pixel_values"] = pixels
    was_training = model.model.training
    model.model.eval()
    try:
        with torch.enable_grad():
            logits = model.model(**inputs).logits[0, :-1].float()
            targets = inputs["input_ids"][0, 1:]
            token_logps = torch.log_softmax(logits, dim=-1).gather(-1, targets[:, None])[:, 0]
            if prefix_len - 1 >= token_logps.shape[0]:
                raise HarnessError("saliency: the answer is empty after tokenization")
            token_logps[prefix_len - 1:].sum().backward()
    finally:
        model.model.train(was_training)
    grad = pixels.grad.detach().float().cpu().numpy()
    return grad.reshape(-1, *grad.shape[-3:])[0]


def to_image_coords(values: np.ndarray, size: tuple[int, int], processor: Any) -> np.ndarray:
    """Map a map over the processed pixels back onto the original ``(width, height)`` image.

    CLIP-style processors resize the shortest edge then centre-crop; the map covers the crop only, so it is
    placed inside the resized frame (zeros outside the crop) before resizing to the image.
    """
    from mmedpo.noise import resize_map

    image_processor = getattr(processor, "image_processor", None)
    width, height = size
    crop = getattr(image_processor, "do_center_crop", False)
    shortest = (getattr(image_processor, "size", None) or {}).get("shortest_edge") if image_processor else None
    if not (crop and shortest):
        return resize_map(values, size)
    scale = shortest / min(width, height)
    frame_w, frame_h = max(round(width * scale), 1), max(round(height * scale), 1)
    crop_h, crop_w = values.shape
    frame = np.zeros((frame_h, frame_w))
    top, left = max((frame_h - crop_h) // 2, 0), max((frame_w - crop_w) // 2, 0)
    frame[top:top + crop_h, left:left + crop_w] = values[: frame_h - top, : frame_w - left]
    return resize_map(frame, size)
