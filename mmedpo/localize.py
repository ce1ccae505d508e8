"""Lesion localizers: where in the image is the lesion, and how sure is the tool?

MMedPO noises the lesion region found by a visual tool (MedKLIP prompted with "disease" in the paper) and
uses the tool's detection confidence as the visual pair's clinical-relevance score (arXiv 2412.06141,
Sec. 3.2). A localizer is any object with ``name`` and ``localize(sample, *, model=None, prompt=None)``
returning a ``Localization`` (a float map in [0, 1] of the image's height and width, and a confidence in
[0, 1]) or None when it finds nothing (the sample then gets no visual pair).

Built in: ``ground-truth`` (the dataset's ``mask`` / ``boxes`` columns: SLAKE, the synthetic suite) and
``saliency`` (gradients of the target model's answer log-probability w.r.t. its pixel values). Plugins
register through the ``harness.localizers`` entry-point group; an external tool such as MedKLIP is wrapped
the same way (see ``ExternalLocalizer`` and docs/mmedpo.md).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from harness.errors import HarnessError
from harness.registry import Registry

log = logging.getLogger(__name__)


@dataclass
class Localization:
    map: np.ndarray  # (height, width) float in [0, 1]; the lesion region is map >= 0.5
    confidence: float  # in [0, 1]; the visual pair's raw clinical-relevance score
    source: str = ""


@runtime_checkable
class Localizer(Protocol):
    name: str

    def localize(self, sample: dict, *, model: Any = None, prompt: str | None = None) -> Localization | None:
        ...


@runtime_checkable
class ExternalLocalizer(Protocol):
    """What an external grounding tool (MedKLIP, BiomedCLIP, a segmentation network) provides.

    ``predict(image, query)`` returns ``(heat_map, confidence)``: any-resolution float scores (higher = more
    lesion-like, e.g. MedKLIP's 14x14 patch attention for the query "disease") and the tool's detection
    probability for the query (MedKLIP: softmax of the "disease" class logits, which the MMedPO release uses
    as the visual pair's weighted_score). ``ToolLocalizer`` turns it into a ``Localizer``.
    """

    def predict(self, image: Image.Image, query: str) -> tuple[np.ndarray, float]:
        ...


LOCALIZERS: Registry = Registry("localizer", entry_point_group="harness.localizers")
LOCALIZERS.register_lazy("ground-truth", "mmedpo.localize:GroundTruthLocalizer")
LOCALIZERS.register_lazy("saliency", "mmedpo.saliency:SaliencyLocalizer")


def get_localizer(name: str, **options: Any) -> Localizer:
    """Instantiate the localizer registered as ``name`` (a class or a factory) with ``options``."""
    factory = LOCALIZERS.get(name)
    try:
        return factory(**options)
    except TypeError as exc:
        raise HarnessError(f"localizer '{name}': bad options {sorted(options)} ({exc})") from None


def normalize_map(values: np.ndarray) -> np.ndarray:
    """Min-max scale to [0, 1]; a constant map becomes all zeros (nothing stands out)."""
    values = np.asarray(values, dtype=np.float64)
    low, high = float(values.min()), float(values.max())
    if high - low <= 1e-12:
        return np.zeros_like(values)
    return (values - low) / (high - low)


class GroundTruthLocalizer:
    """The dataset's own annotation: the ``mask`` column (nonzero pixels) and/or ``boxes`` ([x, y, w, h]).

    ``use``: ``auto`` (the mask when it is non-empty, else the boxes), ``mask``, ``boxes`` or ``union``.
    ``labels`` keeps only boxes with those labels (SLAKE's detection.json names organs and lesions).
    Confidence is 1.0: an annotated lesion is certain. A sample with no annotation is not localized (None).
    """

    name = "ground-truth"

    def __init__(self, use: str = "auto", labels: list[str] | None = None):
        if use not in ("auto", "mask", "boxes", "union"):
            raise HarnessError(f"localizer 'ground-truth': option use must be auto, mask, boxes or union, got {use!r}")
        self.use = use
        self.labels = set(labels) if labels else None

    def localize(self, sample: dict, *, model: Any = None, prompt: str | None = None) -> Localization | None:
        image = sample["image"]
        width, height = image.size
        region = np.zeros((height, width), dtype=bool)
        mask = sample.get("mask") if self.use != "boxes" else None
        if mask is not None:
            if not isinstance(mask, Image.Image):
                mask = Image.fromarray(np.asarray(mask).astype(np.uint8))
            if mask.size != image.size:
                mask = mask.resize(image.size, Image.NEAREST)
            region |= np.asarray(mask.convert("L")) > 0
        skip_boxes = self.use == "mask" or (self.use == "auto" and region.any())
        for box in [] if skip_boxes else _boxes(sample):
            if self.labels is not None and box.get("label") not in self.labels:
                continue
            x, y, w, h = (int(round(float(v))) for v in box["bbox"])
            region[max(y, 0):max(y + h, 0), max(x, 0):max(x + w, 0)] = True
        if not region.any():
            return None
        return Localization(region.astype(np.float64), 1.0, self.name)


def _boxes(sample: dict) -> list[dict]:
    raw = sample.get("boxes")
    if not raw:
        return []
    boxes = json.loads(raw) if isinstance(raw, str) else raw
    good = []
    for box in boxes:
        if isinstance(box, dict) and "bbox" in box and len(box["bbox"]) == 4:
            good.append(box)
        elif isinstance(box, dict) and len(box) == 1:  # SLAKE's detection.json: {label: [x, y, w, h]}
            label, bbox = next(iter(box.items()))
            good.append({"label": label, "bbox": bbox})
        else:
            log.warning("sample %s: ignoring malformed box %r", sample.get("id"), box)
    return good


class ToolLocalizer:
    """Wrap an ``ExternalLocalizer`` (e.g. MedKLIP) as a ``Localizer``: query it, upsample and scale its map."""

    name = "tool"

    def __init__(self, tool: ExternalLocalizer, query: str = "disease", name: str = "tool"):
        self.tool = tool
        self.query = query
        self.name = name

    def localize(self, sample: dict, *, model: Any = None, prompt: str | None = None) -> Localization | None:
        from mmedpo.noise import resize_map

        heat, confidence = self.tool.predict(sample["image"], self.query)
        region = normalize_map(resize_map(np.asarray(heat), sample["image"].size))
        return Localization(region, float(np.clip(confidence, 0.0, 1.0)), self.name)


def mask_iou(region: np.ndarray, truth: np.ndarray) -> float:
    """IoU of a map's region (>= 0.5) with a boolean mask; two empty masks count as 1."""
    predicted, truth = np.asarray(region) >= 0.5, np.asarray(truth, dtype=bool)
    union = np.logical_or(predicted, truth).sum()
    return 1.0 if union == 0 else float(np.logical_and(predicted, truth).sum() / union)


def localizer_iou(localizer: Localizer, samples: Any, *, model: Any = None, limit: int | None = None) -> dict[str, float]:
    """Mean IoU of ``localizer`` against the samples' ``mask`` column, over samples with a non-empty mask.

    A sample the localizer declines (None) scores 0. Returns ``{"iou": mean, "n": count, "found": share}``.
    """
    from tqdm.auto import tqdm

    scores, found = [], 0
    for sample in tqdm(samples, desc=f"IoU {localizer.name}", unit="sample"):
        mask = sample.get("mask")
        if mask is None:
            continue
        truth = np.asarray(mask.convert("L").resize(sample["image"].size, Image.NEAREST)) > 0
        if not truth.any():
            continue
        result = localizer.localize(sample, model=model, prompt=sample.get("question"))
        found += result is not None
        scores.append(0.0 if result is None else mask_iou(result.map, truth))
        if limit is not None and len(scores) >= limit:
            break
    if not scores:
        raise HarnessError("no sample with a non-empty lesion mask to measure IoU on")
    return {"iou": float(np.mean(scores)), "n": float(len(scores)), "found": found / len(scores)}
