"""Lesion localizers: where in the image is the lesion, and how sure is the tool?

MMedPO noises the lesion region found by a visual tool (MedKLIP prompted with "disease" in the paper) and
uses the tool's detection confidence as the visual pair's clinical-relevance score (arXiv 2412.06141,
Sec. 3.2). A localizer is any object with ``name`` and ``localize(sample, *, model=None, prompt=None)``
returning a ``Localization`` (a float map in [0, 1] of the image's height and width, and a confidence in
[0, 1]) or None when it finds nothing (the sample then gets no visual pair).

Built in: ``ground-truth`` (the dataset's lesion ``mask`` or finding ``boxes``: the synthetic suite's exact
masks, SLAKE's disease boxes from detection.json; confidence = how visible the lesion is) and ``saliency``
(gradients of the target model's answer log-probability w.r.t. its pixel values). Plugins
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

from harness.core.errors import HarnessError
from harness.core.registry import Registry

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
    """The dataset's own lesion annotation: the ``mask`` column (nonzero pixels) and/or its ``boxes``.

    ``use``: ``auto`` (the mask when it is non-empty, else the boxes), ``mask``, ``boxes`` or ``union``.
    Only *finding* boxes form the region: a box ``{"label", "bbox", "finding": false}`` (an organ, as the
    SLAKE loader marks them) never does; a box without the flag is a lesion box (the synthetic suite); a
    raw SLAKE entry ``{label: [x, y, w, h]}`` counts when ``harness.tasks.slake.is_finding(label)``.
    ``labels`` further keeps only finding boxes with those labels. A sample with no lesion annotation is
    not localized (None), so it gets no visual pair.

    ``confidence``: ``visibility`` (default) scores how visible the annotated lesion is
    (``lesion_visibility``); ``constant`` gives every annotated lesion 1.0.
    """

    name = "ground-truth"

    def __init__(self, use: str = "auto", labels: list[str] | None = None, confidence: str = "visibility"):
        if use not in ("auto", "mask", "boxes", "union"):
            raise HarnessError(f"localizer 'ground-truth': option use must be auto, mask, boxes or union, got {use!r}")
        if confidence not in ("visibility", "constant"):
            raise HarnessError(f"localizer 'ground-truth': option confidence must be visibility or constant, "
                               f"got {confidence!r}")
        self.use = use
        self.labels = set(labels) if labels else None
        self.confidence = confidence

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
        for box in [] if skip_boxes else lesion_boxes(sample):
            if self.labels is not None and box.get("label") not in self.labels:
                continue
            x, y, w, h = (int(round(float(v))) for v in box["bbox"])
            region[max(y, 0):max(y + h, 0), max(x, 0):max(x + w, 0)] = True
        if not region.any():
            return None
        confidence = lesion_visibility(image, region) if self.confidence == "visibility" else 1.0
        return Localization(region.astype(np.float64), confidence, self.name)


def lesion_boxes(sample: dict) -> list[dict]:
    """The sample's ``boxes`` that mark a disease or abnormality, as ``{"label", "bbox": [x, y, w, h]}``."""
    raw = sample.get("boxes")
    if not raw:
        return []
    boxes = json.loads(raw) if isinstance(raw, str) else raw
    good = []
    for box in boxes:
        if isinstance(box, dict) and "bbox" in box and len(box["bbox"]) == 4:
            if box.get("finding", True):
                good.append(box)
        elif isinstance(box, dict) and len(box) == 1:  # SLAKE's detection.json: {label: [x, y, w, h]}
            from harness.tasks.slake import is_finding

            label, bbox = next(iter(box.items()))
            if is_finding(label):
                good.append({"label": label, "bbox": bbox})
        else:
            log.warning("sample %s: ignoring malformed box %r", sample.get("id"), box)
    return good


# A lesion this share of the image or larger counts as fully sized in ``lesion_visibility``.
VISIBILITY_FULL_AREA = 0.05


def lesion_visibility(image: Image.Image, region: np.ndarray) -> float:
    """How visible the annotated lesion is, in [0, 1]: the offline stand-in for a detector's confidence.

    The region (``map >= 0.5``) is split into connected lesions (8-connectivity). For each lesion L, its
    ring R is the square dilation of L by ``r = max(1, round(sqrt(|L|) / 2))`` pixels minus the whole region,
    and on the grayscale image in [0, 1]:

    - contrast ``c = d / (d + s)`` with ``d = |mean(L) - mean(R)|`` and ``s = std(R)``: the contrast-to-noise
      ratio ``d / s`` mapped to [0, 1) as ``cnr / (1 + cnr)`` (0: the lesion looks like its surroundings;
      0.5: its step equals the surrounding texture);
    - size ``a = min(1, sqrt(share / 0.05))`` with ``share = |L| / |image|`` (a lesion covering 5% of the
      image or more is fully sized; smaller ones scale with their side length).

    The score is ``max over lesions of c * a`` (the most visible lesion decides whether a reader sees one,
    as a detector's "disease" probability does). A lesion with no ring (it fills the image) scores 0.
    """
    from scipy import ndimage

    gray = np.asarray(image.convert("L"), dtype=np.float64) / 255.0
    inside = np.asarray(region) >= 0.5
    if inside.shape != gray.shape:
        raise HarnessError(f"lesion map of shape {inside.shape} does not match the image ({gray.shape})")
    labels, count = ndimage.label(inside, structure=np.ones((3, 3), dtype=bool))
    best = 0.0
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        area = int((labels[box] == index).sum())
        pad = max(1, int(round(np.sqrt(area) / 2)))
        top, left = max(box[0].start - pad, 0), max(box[1].start - pad, 0)
        window = (slice(top, box[0].stop + pad), slice(left, box[1].stop + pad))
        lesion = labels[window] == index
        ring = ndimage.maximum_filter(lesion.astype(np.uint8), size=2 * pad + 1).astype(bool) & ~inside[window]
        if not ring.any():
            continue
        pixels, around = gray[window][lesion], gray[window][ring]
        step, texture = abs(float(pixels.mean() - around.mean())), float(around.std())
        contrast = step / (step + texture) if step > 0 else 0.0
        size = min(1.0, float(np.sqrt(area / inside.size / VISIBILITY_FULL_AREA)))
        best = max(best, contrast * size)
    return best


# The radius of a normal film's region, as a share of the image side: the suite's nodule-to-mass radii
# (harness.tasks.synth._lesion_mask), so the region covers 0.6-4.5% of the image (lesions: median 2.7%).
NORMAL_FILM_RADIUS = (0.045, 0.12)


def is_normal_film(sample: dict) -> bool:
    """A synthetic case labelled normal (``lesion_kind == "none"``): known to have no lesion. Rows of real
    datasets carry no such label, so an image without a lesion annotation there is not known to be normal."""
    return str(sample.get("lesion_kind", "")).strip() == "none"


def normal_film_region(image: Image.Image, *, seed: int, confidence: float) -> Localization:
    """The region a normal film's visual pair noises (the release gives every item a visual pair; its tool
    returns a map for a normal film too): a lesion-sized disc at a seeded random place where the suite draws
    lesions. Side and zone are drawn uniformly, the centre as ``harness.tasks.synth`` draws a lesion's
    (``_lung_centres``, ``_region_centre``: the lung's centre, 0.14 above or 0.12 below it, jittered), the
    radius uniformly in :data:`NORMAL_FILM_RADIUS` of the image side. ``confidence`` is the pair's raw score
    (``normal_film_confidence``, default 0.2: below the least visible lesion of the suite, 0.27 on ``train``,
    as a detector's disease probability is low on a normal film)."""
    from harness.tasks.synth import LEVELS, SIDES, _lung_centres, _region_centre

    rng = np.random.default_rng(seed)
    side, level = SIDES[int(rng.integers(len(SIDES)))], LEVELS[int(rng.integers(len(LEVELS)))]
    cx, cy = _region_centre(rng, _lung_centres(rng), side, level)
    radius = float(rng.uniform(*NORMAL_FILM_RADIUS))
    width, height = image.size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    yy, xx = yy / max(height - 1, 1), xx / max(width - 1, 1)
    region = (((xx - cx) / radius) ** 2 + ((yy - cy) / radius) ** 2 <= 1.0).astype(np.float64)
    if not region.any():  # a tiny image: at least the centre pixel
        region[min(int(round(cy * (height - 1))), height - 1), min(int(round(cx * (width - 1))), width - 1)] = 1.0
    return Localization(region, float(confidence), "normal-film")


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
