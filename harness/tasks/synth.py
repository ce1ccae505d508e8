"""The synthetic suite: radiograph-like images with lesions of known kind, location and size.

Every case is drawn from its own seeded generator (``seed``, split, case index), so case ``i`` is the
same whatever the split size, and the suite is reproducible bit for bit. A case is a small grayscale
chest-film cartoon (body, two lung fields, heart, spine, ribs, noise) with zero, one or two lesions whose
exact masks are kept. ``synth_vqa`` asks one question per case and ``synth_report`` writes one report
per case, both from the ground truth, in a small fixed vocabulary a tiny model can learn.

The suite is built to *demand the image*: most cases are normal and most closed questions ask about a
finding that is absent, so about 70% of closed answers are "no" and a model that ignores the image
cannot beat that prior, while one that detects lesions can approach 100%.

Images, masks and a manifest are generated once into ``HARNESS_HOME/synth/<version>/...`` (atomically:
a split is built in a temporary folder and renamed into place) and the datasets read them lazily.

Anatomical sides follow the radiological convention: the patient's right lung is on the image's left.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from harness.core.errors import HarnessError
from harness.core.io import read_json, write_json
from harness.findings.synthetic import (
    ALLOWED_LEVELS,
    KINDS,
    LEVELS,
    NORMAL_REPORT,
    SIDES,
    finding_sentence,
)
from harness.tasks._loading import option_field, parse_options
from harness.tasks.base import DEFAULT_REPORT_INSTRUCTION, Task

if TYPE_CHECKING:
    import datasets

log = logging.getLogger(__name__)

GENERATOR_VERSION = "1"
# Cases are seeded by (seed, split code, index), so the splits are disjoint draws: ``sft`` teaches the
# built-in models (tiny, testbed), ``train`` feeds preference pairs, ``val`` chooses settings (a study's
# learning rates), ``test`` is evaluated.
SPLIT_CODES = {"train": 0, "test": 1, "sft": 2, "val": 3}

# The suite's vocabulary (kinds, sides, levels and where each kind may appear) is the findings reader's, so
# what the generator writes is exactly what harness.findings.synthetic reads back.
# How many lesions a case has: mostly normal, so absent findings dominate the answers.
LESION_COUNT_P = (0.66, 0.28, 0.06)
# Closed questions about a finding that is present are asked this often when the case has one.
ASK_PRESENT_P = 0.75
CLOSED_P = 0.6


@dataclass
class SynthOptions:
    """Options of ``synth_vqa`` and ``synth_report`` (both tasks read the same generated cases)."""

    seed: int = option_field(0, "seed of the whole suite; the same seed gives the same images bit for bit")
    sft_size: int = option_field(2000, "cases in the sft split (the built-in models' supervised training)")
    train_size: int = option_field(2000, "cases (images, and items of each task) in the train split")
    val_size: int = option_field(600, "cases in the val split (held out from pairs and test: settings are chosen on it)")
    test_size: int = option_field(
        200, "cases in the test split (synth_vqa and synth_report default to 3000: the testbed's sizes)")
    image_size: int = option_field(64, "side of the square grayscale images, in pixels (32 to 1024)")


@dataclass
class Lesion:
    kind: str
    side: str
    level: str
    size: str
    bbox: list[int]  # [x, y, w, h] in pixels

    @property
    def location(self) -> str:
        return f"{self.side} {self.level}"


@dataclass
class Case:
    """One generated image with its ground truth, question and report."""

    id: str
    image: str  # relative to the split folder
    mask: str
    lesions: list[Lesion] = field(default_factory=list)
    question: str = ""
    answer: str = ""
    answer_type: str = "closed"
    question_type: str = ""
    report: str = ""

    def to_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["lesions"] = [dict(lesion.__dict__) for lesion in self.lesions]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Case:
        lesions = [Lesion(**lesion) for lesion in data.get("lesions", [])]
        return cls(**{**data, "lesions": lesions})


# ----------------------------------------------------------------------------------------------- images


def _ellipse(xx, yy, cx, cy, rx, ry):
    return ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0


def _lung_centres(rng) -> dict[str, tuple[float, float]]:
    shift = rng.uniform(-0.03, 0.03)
    # patient's right lung on the image's left
    return {"right": (0.31 + shift, 0.5), "left": (0.69 + shift, 0.5)}


def _render_anatomy(rng, n: int):
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64) / (n - 1)
    lungs = _lung_centres(rng)
    img = np.full((n, n), 0.05)
    body = _ellipse(xx, yy, 0.5, 0.55, 0.46 + rng.uniform(-0.02, 0.02), 0.52)
    img[body] = 0.45
    lung_masks = {}
    for side, (cx, cy) in lungs.items():
        lung_masks[side] = _ellipse(xx, yy, cx, cy, 0.15 + rng.uniform(-0.01, 0.01), 0.31)
        img[lung_masks[side]] = 0.22
    ribs = np.clip(np.cos(2 * np.pi * (yy * 7.5 + 2.5 * (xx - 0.5) ** 2 + rng.uniform(0, 1))), 0, 1) ** 4
    img += 0.1 * ribs * body
    img[np.abs(xx - 0.5) < 0.035] += 0.12  # spine
    heart = _ellipse(xx, yy, 0.54 + rng.uniform(-0.02, 0.02), 0.64, 0.13, 0.12)
    img[heart] = np.maximum(img[heart], 0.62)
    return img, xx, yy, lungs, lung_masks


def _region_centre(rng, lungs, side: str, level: str) -> tuple[float, float]:
    cx, cy = lungs[side]
    y = cy - 0.14 if level == "upper" else cy + 0.12
    return cx + rng.uniform(-0.04, 0.04), y + rng.uniform(-0.04, 0.04)


def _lesion_mask(rng, kind, side, level, xx, yy, lungs, lung_masks) -> np.ndarray:
    lung = lung_masks[side]
    cx, cy = _region_centre(rng, lungs, side, level)
    if kind == "nodule":
        r = rng.uniform(0.045, 0.06)
        return _ellipse(xx, yy, cx, cy, r, r)
    if kind == "mass":
        r = rng.uniform(0.095, 0.12)
        return _ellipse(xx, yy, cx, cy, r, r) & lung
    if kind == "consolidation":
        mask = np.zeros_like(lung)
        for _ in range(int(rng.integers(5, 8))):
            r = rng.uniform(0.03, 0.05)
            mask |= _ellipse(xx, yy, cx + rng.uniform(-0.07, 0.07), cy + rng.uniform(-0.06, 0.06), r, r)
        return mask & lung
    if kind == "effusion":
        lx = lungs[side][0]
        # the meniscus climbs towards the chest wall
        top = 0.68 + rng.uniform(-0.03, 0.03) - 0.5 * np.abs(xx - lx) ** 1.5
        return lung & (yy >= top)
    if kind == "pneumothorax":
        lx, ly = lungs[side]
        outward = -1.0 if side == "right" else 1.0
        width = rng.uniform(0.09, 0.12)
        inner = _ellipse(xx, yy, lx - outward * width, ly + width, 0.15, 0.31)
        return lung & ~inner & (yy < 0.5)
    raise ValueError(f"unknown lesion kind {kind!r}")


def _paint(img, mask, kind, rng, *, apply: bool = True) -> None:
    """Paint a lesion into ``img``; with ``apply`` False draw the same random numbers and change nothing
    (the lesion-free twin of a case, ``render_case(erase=True)``)."""
    texture = 0.08 * rng.standard_normal(int(mask.sum())) if kind == "consolidation" else None
    if not apply:
        return
    if kind == "pneumothorax":
        img[mask] = 0.04  # free air: darker than lung, no markings
    elif kind == "effusion":
        img[mask] = 0.66
    elif kind == "consolidation":
        img[mask] += 0.3 + texture
    else:
        img[mask] += 0.45


def _size_label(mask: np.ndarray) -> str:
    share = float(mask.mean())
    return "small" if share < 0.012 else "medium" if share < 0.03 else "large"


def _bbox(mask: np.ndarray) -> list[int]:
    ys, xs = np.nonzero(mask)
    return [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]


def render_case(rng: np.random.Generator, image_size: int = 64, *,
                erase: bool = False) -> tuple[np.ndarray, np.ndarray, list[Lesion]]:
    """Draw one case: an 8-bit grayscale image, its 8-bit lesion mask (255 inside any lesion), its lesions.

    ``erase=True`` draws exactly the same random numbers but paints no lesion: the same film without its
    lesions (same anatomy, ribs and pixel noise), with the mask and lesions of the painted case. It is the
    counterfactual the visual-reliance diagnostics compare with (``harness diagnose``).
    """
    from PIL import Image, ImageFilter

    img, xx, yy, lungs, lung_masks = _render_anatomy(rng, image_size)
    count = int(rng.choice(len(LESION_COUNT_P), p=LESION_COUNT_P))
    kinds = rng.choice(KINDS, size=count, replace=False)
    used: set[tuple[str, str]] = set()
    union = np.zeros((image_size, image_size), dtype=bool)
    lesions: list[Lesion] = []
    for kind in (str(k) for k in kinds):
        options = [(s, lv) for s in SIDES for lv in ALLOWED_LEVELS.get(kind, LEVELS) if (s, lv) not in used]
        side, level = options[int(rng.integers(len(options)))]
        used.add((side, level))
        mask = _lesion_mask(rng, kind, side, level, xx, yy, lungs, lung_masks) & ~union
        if not mask.any():  # degenerate draw at a tiny image size: leave the case with fewer lesions
            continue
        _paint(img, mask, kind, rng, apply=not erase)
        union |= mask
        lesions.append(Lesion(kind, side, level, _size_label(mask), _bbox(mask)))
    img = img + 0.03 * rng.standard_normal(img.shape)
    pixels = Image.fromarray((np.clip(img, 0, 1) * 255).round().astype(np.uint8))
    pixels = pixels.filter(ImageFilter.GaussianBlur(radius=image_size / 96))
    return np.asarray(pixels), union.astype(np.uint8) * 255, lesions


# ------------------------------------------------------------------------------------------------ text


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def write_question(rng: np.random.Generator, lesions: list[Lesion]) -> tuple[str, str, str, str]:
    """One question about the case: (question, answer, answer_type, question_type)."""
    present = {lesion.kind for lesion in lesions}
    if rng.random() < CLOSED_P:
        style = rng.choice(["presence", "side", "abnormal"], p=[0.5, 0.3, 0.2])
        if style == "abnormal":
            return "Is there an abnormality in the lungs?", "yes" if lesions else "no", "closed", "abnormality"
        if lesions and rng.random() < ASK_PRESENT_P:
            target = lesions[int(rng.integers(len(lesions)))]
            kind, side = target.kind, target.side
        else:
            kind = str(rng.choice([k for k in KINDS if k not in present] or list(KINDS)))
            side = str(rng.choice(SIDES))
        if style == "presence":
            return f"Is there {_article(kind)} {kind}?", "yes" if kind in present else "no", "closed", "presence"
        hit = any(lesion.kind == kind and lesion.side == side for lesion in lesions)
        return f"Is there {_article(kind)} {kind} in the {side} lung?", "yes" if hit else "no", "closed", "location"
    if lesions and rng.random() < 0.5:
        target = lesions[int(rng.integers(len(lesions)))]
        if rng.random() < 0.6:
            return f"Where is the {target.kind}?", f"{target.location} lung", "open", "location"
        return f"What is the size of the {target.kind}?", target.size, "open", "size"
    answer = " and ".join(lesion.kind for lesion in lesions) if lesions else "no abnormality"
    return "What abnormality is seen in the lungs?", answer, "open", "abnormality"


def write_report(lesions: list[Lesion]) -> str:
    """A findings paragraph from the ground truth, in words the CheXpert-style labeler recognises."""
    kinds = {lesion.kind for lesion in lesions}
    if not lesions:
        return NORMAL_REPORT
    sentences = ["The heart size is normal."]
    sentences += [finding_sentence(lesion.kind, lesion.side, lesion.level, lesion.size) for lesion in lesions]
    if "effusion" not in kinds:
        sentences.append("There is no pleural effusion.")
    if "pneumothorax" not in kinds:
        sentences.append("There is no pneumothorax.")
    return " ".join(sentences)


# ----------------------------------------------------------------------------------------------- cache


def _cache_dir(split: str, seed: int, size: int, image_size: int) -> Path:
    from harness.core.paths import harness_home

    return harness_home() / "synth" / f"v{GENERATOR_VERSION}" / f"seed{seed}-px{image_size}" / f"{split}-{size}"


def _check_options(split: str, seed: int, size: int, image_size: int) -> None:
    if split not in SPLIT_CODES:
        raise HarnessError(f"synthetic suite has no split '{split}' (splits: {', '.join(SPLIT_CODES)})")
    if not isinstance(size, int) or size < 1:
        raise HarnessError(f"synthetic suite: split size must be a positive integer, got {size!r}")
    if not isinstance(image_size, int) or not 32 <= image_size <= 1024:
        raise HarnessError(f"synthetic suite: image_size must be an integer in [32, 1024], got {image_size!r}")
    if not isinstance(seed, int) or seed < 0:
        raise HarnessError(f"synthetic suite: seed must be a non-negative integer, got {seed!r}")


def generate_case(split: str, index: int, *, seed: int = 0, image_size: int = 64, erase: bool = False):
    """Case ``index`` of ``split``: (image array, mask array, Case); independent of the split size.

    ``erase=True`` gives the same case's film without its lesions (``render_case``); the Case is unchanged.
    """
    from PIL import Image  # noqa: F401  (render_case needs Pillow; fail early with a clear import error)

    rng = np.random.default_rng([seed, SPLIT_CODES[split], index])
    pixels, mask, lesions = render_case(rng, image_size, erase=erase)
    question, answer, answer_type, question_type = write_question(rng, lesions)
    case = Case(
        id=f"synth-{split}-{index:06d}",
        image=f"images/{index:06d}.png",
        mask=f"masks/{index:06d}.png",
        lesions=lesions,
        question=question,
        answer=answer,
        answer_type=answer_type,
        question_type=question_type,
        report=write_report(lesions),
    )
    return pixels, mask, case


def _manifest_ok(folder: Path) -> bool:
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return False
    try:
        cases = read_json(manifest)["cases"]
    except (HarnessError, KeyError, TypeError):
        return False
    return all((folder / c["image"]).is_file() and (folder / c["mask"]).is_file() for c in cases)


def generate_split(split: str = "test", *, seed: int = 0, size: int | None = None, image_size: int = 64,
                   force: bool = False) -> Path:
    """Generate (or reuse) one split in the cache and return its folder (holding ``manifest.json``)."""
    from PIL import Image
    from tqdm.auto import tqdm

    if size is None:
        size = getattr(SynthOptions(), f"{split}_size", 0)
    _check_options(split, seed, size, image_size)
    folder = _cache_dir(split, seed, size, image_size)
    if not force and _manifest_ok(folder):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        (tmp / "images").mkdir()
        (tmp / "masks").mkdir()
        cases = []
        for index in tqdm(range(size), desc=f"synth {split}", unit="img", disable=size < 500):
            pixels, mask, case = generate_case(split, index, seed=seed, image_size=image_size)
            Image.fromarray(pixels, mode="L").save(tmp / case.image)
            Image.fromarray(mask, mode="L").save(tmp / case.mask)
            cases.append(case.to_json())
        meta = {"version": GENERATOR_VERSION, "split": split, "seed": seed, "size": size, "image_size": image_size}
        write_json(tmp / "manifest.json", {**meta, "cases": cases}, indent=None)
        if folder.exists():  # stale or damaged copy
            shutil.rmtree(folder, ignore_errors=True)
        try:
            os.replace(tmp, folder)
        except OSError:
            if not _manifest_ok(folder):  # a concurrent writer won the race only if its copy is complete
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("generated synthetic %s split (%d cases) in %s", split, size, folder)
    return folder


def load_cases(split: str = "test", *, task_name: str = "synth", **options: Any) -> tuple[Path, list[Case]]:
    """The split folder and its cases (generating them if needed), without decoding any image."""
    opts = parse_options(task_name, SynthOptions, options)
    size = getattr(opts, f"{split}_size", 0)
    folder = generate_split(split, seed=opts.seed, size=size, image_size=opts.image_size)
    manifest = read_json(folder / "manifest.json")
    return folder, [Case.from_json(c) for c in manifest["cases"]]


# ----------------------------------------------------------------------------------------------- tasks


def _lesion_columns(case: Case) -> dict[str, str]:
    if not case.lesions:
        return {"lesion_kind": "none", "lesion_location": "none", "lesion_size": "none", "boxes": "[]"}
    return {
        "lesion_kind": ",".join(lesion.kind for lesion in case.lesions),
        "lesion_location": ",".join(lesion.location for lesion in case.lesions),
        "lesion_size": ",".join(lesion.size for lesion in case.lesions),
        "boxes": json.dumps([{"label": lesion.kind, "bbox": lesion.bbox} for lesion in case.lesions]),
    }


@dataclass
class SynthTask(Task):
    """A task over the generated suite: needs no data folder; options set seed, sizes and image size."""

    folder: str = "synth"
    version: str = GENERATOR_VERSION
    splits: tuple[str, ...] = ("sft", "train", "val", "test")
    options_class: ClassVar[type] = SynthOptions
    source_kind: str = "generated"

    def expected_size(self, split: str) -> int | None:
        """A generated split is exactly what its options say (seed and sizes are recorded with the run)."""
        return (self.sizes() or {}).get(split)

    def data_dir(self, data_dir: str | Path | None = None) -> Path | None:
        return None

    def require_data_dir(self, data_dir: str | Path | None = None) -> Path:
        from harness.core.paths import harness_home

        return harness_home() / "synth"

    def sizes(self, data_dir: str | Path | None = None) -> dict[str, int] | None:
        opts = parse_options(self.name, SynthOptions, self.options)
        return {split: getattr(opts, f"{split}_size") for split in self.splits}

    def _load(self, split: str, data_dir: str | Path | None, **options: Any) -> datasets.Dataset:
        import datasets

        folder, cases = load_cases(split, task_name=self.name, **options)
        rows = [self._row(folder, case) for case in cases]
        features = datasets.Features({
            "id": datasets.Value("string"),
            "image": datasets.Image(),
            "question": datasets.Value("string"),
            "answer": datasets.Value("string"),
            "answer_type": datasets.Value("string"),
            "image_path": datasets.Value("string"),
            "mask": datasets.Image(),
            "boxes": datasets.Value("string"),
            "lesion_kind": datasets.Value("string"),
            "lesion_location": datasets.Value("string"),
            "lesion_size": datasets.Value("string"),
            "question_type": datasets.Value("string"),
        })
        columns = {name: [row[name] for row in rows] for name in features}
        return datasets.Dataset.from_dict(columns, features=features)

    def _row(self, folder: Path, case: Case) -> dict[str, Any]:
        raise NotImplementedError


@dataclass
class SynthVQATask(SynthTask):
    def _row(self, folder: Path, case: Case) -> dict[str, Any]:
        return {
            "id": case.id,
            "image": str(folder / case.image),
            "image_path": case.image,
            "question": case.question,
            "answer": case.answer,
            "answer_type": case.answer_type,
            "mask": str(folder / case.mask),
            "question_type": case.question_type,
            **_lesion_columns(case),
        }


@dataclass
class SynthReportTask(SynthTask):
    def _row(self, folder: Path, case: Case) -> dict[str, Any]:
        return {
            "id": case.id,
            "image": str(folder / case.image),
            "image_path": case.image,
            "question": DEFAULT_REPORT_INSTRUCTION,
            "answer": case.report,
            "answer_type": "report",
            "mask": str(folder / case.mask),
            "question_type": "report",
            **_lesion_columns(case),
        }


# Test splits large enough for paired comparisons of methods to detect 3-point differences (docs/testbed.md):
# each task's default test size; SynthOptions' generic default stays small for quick looks.
VQA_TEST_SIZE = 3000
REPORT_TEST_SIZE = 3000

SYNTH_VQA = SynthVQATask(
    name="synth_vqa",
    family="vqa",
    options={"test_size": VQA_TEST_SIZE},
    metrics=("closed_accuracy", "closed_accuracy_llava_med", "open_recall", "open_recall_llava_med",
             "open_exact_match", "open_f1"),
    description="Generated chest-film cartoons with known lesions: closed and open questions (demands the image).",
)

SYNTH_REPORT = SynthReportTask(
    name="synth_report",
    family="report",
    options={"test_size": REPORT_TEST_SIZE},
    metrics=("bleu", "bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "meteor", "cider",
             "chexpert_f1_micro", "chexpert_f1_macro", "hallucination_rate",
             "finding_precision", "finding_recall", "finding_f1", "laterality_accuracy", "false_finding_rate"),
    description="Generated chest-film cartoons with known lesions: findings reports written from the ground truth.",
)
