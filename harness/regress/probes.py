"""Factuality probes: POPE-style probe sets of present and absent findings, and lesion-ablation consistency.

- Probe sets (:func:`build_probe_set`, ``harness probes build``, and the registered ``synth_probe`` and
  ``slake_probe`` tasks): from any task whose rows carry labelled findings (a ``boxes`` column of
  ``{label, bbox[, finding]}``: the synthetic suite's lesions, SLAKE's detection boxes, where only ``finding``
  boxes count), POPE's recipe (Li et al., 2023) kept inside each image's **region**: the body region and
  modality of the image (``region_of``: SLAKE's ``location`` and ``modality``, VQA-RAD's ``image_organ``;
  ``unspecified`` where a task has neither, as the synthetic suite, whose films are all one kind). For each
  image, up to ``per_image`` questions about findings it shows (answer "yes") and as many about findings of
  its own region that it does not show (answer "no"), under three negative samplings, each balanced on its
  own: ``random`` (drawn uniformly from the region's findings the image lacks), ``popular`` (the region's most
  frequent ones) and ``adversarial`` (those that co-occur most often, in the region, with the image's own
  findings; ties by the region's frequency). A region's findings are the labels shown by at least one of its
  images in the probed split. No negative ever comes from another region: an image whose region has no
  finding it lacks gives no probe, one with fewer such findings than it has findings to ask gives fewer
  pairs, and both are counted in the set's report (:meth:`ProbeSet.summary`). Each kept "yes" has its "no"
  on the same image, so every region is balanced in every setting.
  Over-represented labels are capped: a region's label is the "yes" of at most ``max_per_label`` probes per
  setting (default: twice the median, over the set's (region, label) pairs, of their "yes" counts without a
  cap); images are visited in a seeded order and each asks first about the findings asked least so far.
  Questions are grammatical (:func:`finding_question`): "Is there pneumonia?", "Is there an effusion?",
  "Are there nodules?". Probe sets carry ``PROBE_VERSION``; sets of another version are not comparable.
  Scored with ``pope_accuracy``, ``pope_precision``, ``pope_recall``, ``pope_f1``, ``pope_yes_ratio`` and
  ``pope_yes_bias`` (:mod:`harness.metrics.pope`), so a model answering "no" to everything scores F1 0, and
  one answering "yes" to everything a yes-ratio of 1 and a yes-bias of 0.5; the gate tests accuracy and the
  yes-bias.
- ``lesion_ablation_consistency``: the lesion region (the task's ``mask``) is diffusion-noised
  (``harness.curation.imaging.diffusion_noise`` on the linear DDPM schedule, which keeps 28% of the signal at step
  500, so the lesion is all but erased) and each lesion-dependent question is asked
  again. Lesion-dependent: a closed question whose reference is "yes" about a finding inside the mask. The
  score is the share of those the model answered right on the intact image whose yes/no answer changes
  when the lesion is destroyed (1.0: every right answer came from the lesion; 0.0: none did).
- For reports the factuality metrics are the task metrics ``chexpert_f1_*`` / ``finding_*`` and
  ``hallucination_rate``, gated with a coverage metric (``harness.regress.compare``).
"""

from __future__ import annotations

import json
import logging
import math
import re
import statistics
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.core.errors import DataError, HarnessError
from harness.tasks.base import Task

log = logging.getLogger(__name__)

LESION_QUESTION_TYPES = ("presence", "side", "abnormality")
SETTINGS = ("random", "popular", "adversarial")
POPE_METRIC_NAMES = ("pope_f1", "pope_accuracy", "pope_precision", "pope_recall", "pope_yes_ratio", "pope_yes_bias")
# 2.0: negatives from the image's own region and modality, regions balanced, labels capped, grammatical
# questions. 1.0 drew negatives from the whole set, so most could be answered from the body part alone.
PROBE_VERSION = "2.0"
UNSPECIFIED = "unspecified"
REGION_COLUMNS = ("location", "image_organ", "modality")

# ---------------------------------------------------------------------------------------------- wording
# Head nouns asked without an article ("Is there pneumonia?"); a label is read by its last word.
MASS_NOUNS = frozenset({
    "pneumonia", "edema", "oedema", "atelectasis", "cardiomegaly", "consolidation", "emphysema", "fibrosis",
    "ascites", "hemorrhage", "haemorrhage", "cancer", "pneumoperitoneum", "hydronephrosis", "scarring",
    "thickening", "infiltration", "inflammation", "necrosis", "calcification", "opacification", "air", "fluid",
    "gas", "blood", "enlargement", "hyperinflation", "pneumomediastinum", "hydrocephalus", "ischemia",
    "infarction", "dilatation", "dilation", "cardiomyopathy", "ards", "copd",
})
MASS_SUFFIXES = ("osis", "itis", "megaly", "ectasis", "emia", "aemia")
# Initialisms read letter by letter, written in capitals ("an MRI", "an NG tube", "a CT").
INITIALISMS = {"mri": "MRI", "ct": "CT", "ng": "NG", "et": "ET", "icd": "ICD", "ivc": "IVC", "svc": "SVC",
               "copd": "COPD", "ards": "ARDS", "av": "AV", "ecg": "ECG", "pet": "PET"}
_VOWEL_SOUND_LETTERS = set("aefhilmnorsx")  # "an F", "an M", "an X"...
_A_BEFORE_VOWEL_LETTER = ("uni", "use", "usu", "ure", "uri", "uro", "ute", "uti", "uvu", "eu", "one", "once")
_AN_BEFORE_CONSONANT = ("hour", "honest", "honor", "honour", "heir")


def article(word: str) -> str:
    """"a" or "an" by the sound that opens ``word`` ("an effusion", "a mass", "an MRI", "a uterine", "an X-ray")."""
    lower = word.lower()
    if lower in INITIALISMS or re.match(r"^[a-z]-", lower):  # spelled out: "an MRI", "an X-ray"
        return "an" if lower[0] in _VOWEL_SOUND_LETTERS else "a"
    if lower.startswith(_AN_BEFORE_CONSONANT):
        return "an"
    if lower.startswith(_A_BEFORE_VOWEL_LETTER):
        return "a"
    return "an" if lower[:1] in set("aeiou") else "a"


def finding_question(label: str) -> str:
    """The presence question about one finding: mass nouns bare, plurals "Are there", count nouns a/an."""
    words = [INITIALISMS.get(w.lower(), w) for w in str(label).strip().split()]
    if not words:
        raise HarnessError("a finding label is empty: nothing to ask about")
    phrase, head = " ".join(words), words[-1].lower()
    if head in MASS_NOUNS or head.endswith(MASS_SUFFIXES):
        return f"Is there {phrase}?"
    if head.endswith("s") and not head.endswith(("ss", "is", "us")) and head.upper() != words[-1]:
        return f"Are there {phrase}?"
    return f"Is there {article(words[0])} {phrase}?"


# ----------------------------------------------------------------------------------------------- regions
_REGION_WORDS = (
    ("head", {"head", "brain", "skull", "face", "eye", "eyes", "orbit", "cranial", "cerebral", "sinus", "sinuses"}),
    ("neck", {"neck", "thyroid", "cervical", "larynx", "pharynx"}),
    ("chest", {"chest", "lung", "lungs", "heart", "cardiac", "thorax", "thoracic", "mediastinal", "mediastinum",
               "pulmonary", "breast"}),
    ("abdomen", {"abdomen", "abdominal", "abd", "liver", "kidney", "kidneys", "spleen", "pancreas", "bowel",
                 "stomach", "gi"}),
    ("pelvis", {"pelvis", "pelvic", "bladder", "prostate", "uterus"}),
)
_MODALITIES = {"xray": "x-ray", "radiograph": "x-ray", "cr": "x-ray", "dx": "x-ray", "mri": "mri", "mr": "mri",
               "ct": "ct", "us": "ultrasound", "ultrasound": "ultrasound"}


def body_region(location: object) -> str:
    """head / neck / chest / abdomen / pelvis from a location name (SLAKE's "Lung", "Brain_Face", "Chest_heart",
    "Pelvic Cavity"; VQA-RAD's "HEAD", "CHEST", "ABD"); any other name as itself in lower case; "" when empty."""
    text = str(location or "").strip().lower()
    words = set(re.findall(r"[a-z]+", text))
    for region, names in _REGION_WORDS:
        if words & names:
            return region
    return text


def imaging_modality(modality: object) -> str:
    """x-ray / ct / mri / ultrasound from a modality name ("X-Ray", "CT", "MRI"); others in lower case."""
    text = str(modality or "").strip().lower()
    return _MODALITIES.get(re.sub(r"[^a-z]", "", text), text)


def region_of(row: dict[str, Any]) -> str:
    """The region key of an image: its body region and modality ("chest x-ray", "head mri"), or ``unspecified``."""
    region = body_region(row.get("location") or row.get("image_organ"))
    return " ".join(p for p in (region, imaging_modality(row.get("modality"))) if p) or UNSPECIFIED


# ------------------------------------------------------------------------------------------------ probes
def finding_labels(boxes: object, *, where: str = "") -> list[str]:
    """The distinct finding labels of one row's ``boxes`` JSON (boxes flagged ``finding: false`` are organs)."""
    try:
        items = json.loads(boxes) if isinstance(boxes, str) else (boxes or [])
    except json.JSONDecodeError as exc:
        raise DataError(where or "boxes", f"not JSON: {exc.msg}", field="boxes") from None
    if not isinstance(items, list):
        raise DataError(where or "boxes", "expected a JSON list of {label, bbox}", field="boxes")
    labels = [str(b["label"]).strip().lower() for b in items if isinstance(b, dict) and b.get("label")
              and b.get("finding", True)]
    return sorted(set(labels))


@dataclass
class _Image:
    row: dict[str, Any]
    region: str
    present: list[str]
    chosen: list[str] = field(default_factory=list)


@dataclass
class ProbeSet:
    """The probes and what was built and left out, by region (see :meth:`summary`)."""

    probes: list[dict[str, Any]]
    settings: list[str]
    max_per_label: int
    region_labels: dict[str, Counter]  # region -> label -> images of the region showing it
    region_images: Counter  # region -> images with at least one finding
    dropped: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        """The set's report: balance per region and setting, labels per region, negatives from another region
        (0 by construction, counted from the probes themselves), what a blind model could score, what was dropped.

        ``label_only_accuracy``: the accuracy of a model that sees no image but knows the region and the label
        of each probe and the set's answers (it answers each (region, label) with its more common answer):
        0.5 when the image is needed, 1.0 when the label gives the answer away."""
        from harness.tasks.identity import rows_digest

        per_region: dict[str, dict] = {}
        for region in sorted(self.region_images):
            labels = self.region_labels[region]
            per_region[region] = {
                "images": self.region_images[region], "probed_images": 0,
                "yes": dict.fromkeys(self.settings, 0), "no": dict.fromkeys(self.settings, 0),
                "labels": {label: {"images": labels[label], "yes": dict.fromkeys(self.settings, 0),
                                   "no": dict.fromkeys(self.settings, 0)} for label in sorted(labels)},
            }
        probed: dict[str, set] = defaultdict(set)
        other_region = Counter()
        for probe in self.probes:
            region, setting, answer = probe["probe_region"], probe["probe_setting"], probe["answer"]
            entry = per_region[region]
            entry[answer][setting] += 1
            label = entry["labels"].setdefault(probe["probe_label"], {  # a leaked label shows as 0 images
                "images": 0, "yes": dict.fromkeys(self.settings, 0), "no": dict.fromkeys(self.settings, 0)})
            label[answer][setting] += 1
            probed[region].add(probe["source_id"])
            if answer == "no" and not self.region_labels[region].get(probe["probe_label"]):
                other_region[setting] += 1
        for region, ids in probed.items():
            per_region[region]["probed_images"] = len(ids)
        negatives = {s: sum(e["no"][s] for e in per_region.values()) for s in self.settings}
        blind = {}
        for s in self.settings:
            total = 2 * negatives[s]
            best = sum(max(lab["yes"][s], lab["no"][s]) for e in per_region.values() for lab in e["labels"].values())
            blind[s] = best / total if total else None
        return {
            "version": PROBE_VERSION,
            "content_sha256": rows_digest(self.probes),
            "probes": len(self.probes),
            "images": len({p["source_id"] for p in self.probes}),
            "settings": list(self.settings),
            "max_per_label": self.max_per_label,
            "negatives_from_another_region": {s: other_region[s] for s in self.settings},
            "negatives_from_another_region_share": {
                s: other_region[s] / negatives[s] if negatives[s] else 0.0 for s in self.settings},
            "label_only_accuracy": blind,
            "regions": per_region,
            "dropped": self.dropped,
        }


def _visit_order(images: list[_Image], seed: int) -> list[_Image]:
    return sorted(images, key=lambda im: (zlib.crc32(f"{seed}:{im.row['id']}".encode()), str(im.row["id"])))


def _choose_positives(by_region: dict[str, list[_Image]], frequency: dict[str, Counter], per_image: int,
                      cap: float) -> dict[str, Counter]:
    """Fill each image's ``chosen`` (its findings asked, "yes"); returns the "yes" probes lost per reason and region,
    and the images left without any candidate negative."""
    lost: dict[str, Counter] = {"no_candidate_negative": Counter(), "fewer_candidates_than_findings": Counter(),
                                "label_cap": Counter(), "images_without_a_candidate_negative": Counter()}
    for region, images in by_region.items():
        vocabulary, used = frequency[region], Counter()
        for image in images:
            wanted = min(per_image, len(image.present))
            candidates = sum(1 for label in vocabulary if label not in image.present)
            room = min(wanted, candidates)
            if room == 0:
                lost["no_candidate_negative"][region] += wanted
                lost["images_without_a_candidate_negative"][region] += 1
                image.chosen = []
                continue
            lost["fewer_candidates_than_findings"][region] += wanted - room
            open_labels = [label for label in image.present if used[label] < cap]
            image.chosen = sorted(open_labels, key=lambda lab: (used[lab], vocabulary[lab], lab))[:room]
            lost["label_cap"][region] += room - len(image.chosen)
            used.update(image.chosen)
    return lost


def default_label_cap(counts: Iterable[int]) -> int:
    """Twice the median "yes" count of the set's (region, label) pairs, at least 1."""
    counts = [c for c in counts if c > 0]
    return max(1, math.ceil(2 * statistics.median(counts))) if counts else 1


def _negatives(image: _Image, frequency: Counter, cooccur: dict[str, Counter], k: int, seed: int
               ) -> dict[str, list[str]]:
    """``k`` findings of the image's region that it lacks, per setting (``frequency``/``cooccur``: the region's)."""
    absent = sorted(label for label in frequency if label not in image.present)
    rng = np.random.default_rng([seed, zlib.crc32(str(image.row["id"]).encode())])
    together = {lab: sum(cooccur[p][lab] for p in image.present) for lab in absent}
    return {
        "random": [absent[i] for i in sorted(rng.choice(len(absent), size=k, replace=False))],
        "popular": sorted(absent, key=lambda lab: (-frequency[lab], lab))[:k],
        "adversarial": sorted(absent, key=lambda lab: (-together[lab], -frequency[lab], lab))[:k],
    }


def build_probe_set(rows: Iterable[dict[str, Any]], *, per_image: int = 3, seed: int = 0,
                    settings: Sequence[str] = SETTINGS, max_per_label: int | None = None) -> ProbeSet:
    """Balanced present/absent probes per image, region and negative setting (see the module doc).

    Rows need ``id``, ``image`` and ``boxes``; the region comes from ``region`` when given (``source_rows``
    votes it over an image's questions), else from ``location`` / ``image_organ`` and ``modality``.
    ``image`` is passed through (a path or an image); the output rows carry ``probe_setting``,
    ``probe_label``, ``probe_region``, ``probe_version`` and ``source_id``. Deterministic: the same rows and
    seed give the same probes.
    """
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown:
        raise HarnessError(f"unknown probe setting '{unknown[0]}' (settings: {', '.join(SETTINGS)})")
    if per_image < 1:
        raise HarnessError(f"per_image must be at least 1, got {per_image}")
    if max_per_label is not None and max_per_label < 1:
        raise HarnessError(f"max_per_label must be at least 1, got {max_per_label}")
    images, without = [], 0
    for row in rows:
        present = finding_labels(row.get("boxes"), where=f"row {row.get('id')}")
        if not present:
            without += 1
            continue
        images.append(_Image(row, row.get("region") or region_of(row), present))
    labels = {label for image in images for label in image.present}
    if len(labels) < 2:
        raise HarnessError("a probe set needs at least two distinct finding labels in the task's boxes "
                           f"(found {len(labels)}): nothing to ask about as absent")
    by_region: dict[str, list[_Image]] = defaultdict(list)
    for image in _visit_order(images, seed):
        by_region[image.region].append(image)
    frequency = {region: Counter(lab for im in ims for lab in im.present) for region, ims in by_region.items()}
    cooccur: dict[str, dict[str, Counter]] = {region: defaultdict(Counter) for region in by_region}
    for image in images:
        for a in image.present:
            cooccur[image.region][a].update(b for b in image.present if b != a)

    if max_per_label is None:  # a first pass without a cap measures how often each label would be asked
        _choose_positives(by_region, frequency, per_image, math.inf)
        asked = Counter((im.region, lab) for im in images for lab in im.chosen)
        max_per_label = default_label_cap(asked.values())
    lost = _choose_positives(by_region, frequency, per_image, max_per_label)

    probes = []
    for image in images:  # in the rows' order
        k = len(image.chosen)
        if not k:
            continue
        region, row_id = image.region, str(image.row["id"])
        negatives = _negatives(image, frequency[region], cooccur[region], k, seed)
        for setting in settings:
            for answer, asked_labels in (("yes", image.chosen), ("no", negatives[setting])):
                for label in asked_labels:
                    probes.append({"id": f"{row_id}:{setting}:{label}", "source_id": row_id,
                                   "image": image.row["image"], "question": finding_question(label),
                                   "answer": answer, "answer_type": "closed", "question_type": f"pope_{setting}",
                                   "probe_setting": setting, "probe_label": label, "probe_region": region,
                                   "probe_version": PROBE_VERSION})
    no_candidate = lost.pop("images_without_a_candidate_negative")
    dropped = {
        "images_without_findings": without,
        "images_without_a_candidate_negative": dict(sorted(no_candidate.items())),
        "yes_probes": {reason: {r: n for r, n in sorted(c.items()) if n} for reason, c in lost.items()},
        "note": "each dropped yes probe also drops its no probe in every setting",
    }
    probe_set = ProbeSet(probes, list(settings), max_per_label,
                         {region: frequency[region] for region in sorted(frequency)},
                         Counter(im.region for im in images), dropped)
    if not probes:
        raise HarnessError("no image has a finding that its region lets it be asked about as present and absent: "
                           f"nothing to probe (dropped: {json.dumps(dropped['yes_probes'])})")
    return probe_set


def build_probes(rows: Iterable[dict[str, Any]], *, per_image: int = 3, seed: int = 0,
                 settings: Sequence[str] = SETTINGS, max_per_label: int | None = None) -> list[dict[str, Any]]:
    """The probes of :func:`build_probe_set` alone."""
    return build_probe_set(rows, per_image=per_image, seed=seed, settings=settings,
                           max_per_label=max_per_label).probes


def source_rows(task: str, split: str = "test", *, data_dir: str | Path | None = None, limit: int | None = None,
                **options: Any) -> list[dict[str, Any]]:
    """``id``, image path, ``boxes`` and ``region`` of each image of a labelled task (images are not decoded).

    An image's region is the most common ``region_of`` over its questions (SLAKE names a location per question:
    "Lung" and "Chest_heart" on one X-ray are both the chest); ties go to the first in alphabetical order."""
    import datasets

    from harness.tasks import get_task

    dataset = get_task(task).load(split, data_dir=data_dir, **options)
    if "boxes" not in dataset.column_names:
        raise HarnessError(f"task '{task}' has no labelled findings (no 'boxes' column): it cannot give a probe set")
    if limit is not None:
        dataset = dataset.select(range(min(limit, len(dataset))))
    raw = dataset.cast_column("image", datasets.Image(decode=False))
    columns = ["id", "image", "boxes", *(c for c in REGION_COLUMNS if c in dataset.column_names)]
    rows: dict[str, dict[str, Any]] = {}
    votes: dict[str, Counter] = defaultdict(Counter)
    for row in raw.select_columns(columns):
        path = (row["image"] or {}).get("path")
        if not path:
            raise DataError(task, "an image has no file path: probe sets refer to images by path", record=row["id"],
                            field="image")
        votes[path][region_of(row)] += 1
        if path not in rows:  # several questions on one image: one image, one set of probes
            rows[path] = {"id": row["id"], "image": path, "boxes": row["boxes"]}
    mixed = 0
    for path, row in rows.items():
        ranked = sorted(votes[path].items(), key=lambda kv: (-kv[1], kv[0]))
        row["region"] = ranked[0][0]
        mixed += len(ranked) > 1
    if mixed:
        log.info("%s %s: %d images have questions naming several regions; each takes its most common", task,
                 split, mixed)
    return list(rows.values())


@dataclass
class ProbeTask(Task):
    """A POPE-style probe set built at load time from a labelled ``source`` task (see the module doc)."""

    source: str = ""
    per_image: int = 3
    probe_seed: int = 0

    def data_dir(self, data_dir: str | Path | None = None) -> Path | None:
        from harness.tasks import get_task

        return get_task(self.source).data_dir(data_dir)

    def require_data_dir(self, data_dir: str | Path | None = None) -> Path:
        from harness.tasks import get_task

        return get_task(self.source).require_data_dir(data_dir)

    def _load(self, split: str, data_dir: str | Path | None, **options: Any):
        import datasets

        probe_set = build_probe_set(source_rows(self.source, split, data_dir=data_dir, **options),
                                    per_image=self.per_image, seed=self.probe_seed)
        probes = probe_set.probes
        report = probe_set.summary()
        log.info("%s %s: %d probes on %d images (probe set %s), negatives from another region: %s, dropped yes "
                 "probes: %s", self.name, split, report["probes"], report["images"], PROBE_VERSION,
                 report["negatives_from_another_region"], report["dropped"]["yes_probes"])
        features = datasets.Features({name: datasets.Value("string") for name in probes[0] if name != "image"})
        features["image"] = datasets.Image()
        columns = {name: [p[name] for p in probes] for name in features}
        return datasets.Dataset.from_dict(columns, features=features)


SYNTH_PROBE = ProbeTask(
    name="synth_probe",
    family="vqa",
    version="3.0",  # 3.0: probe set 2.0 (region negatives, label cap, grammar); 1.0 asked about absent findings only
    source="synth_vqa",
    splits=("train", "test"),
    options={"test_size": 200},  # the synthetic suite's cases probed (about 600 probes per setting pass)
    metrics=POPE_METRIC_NAMES,
    description="POPE-style probes on the synthetic suite: present and absent lesion kinds, balanced, "
                "random/popular/adversarial negatives.",
)
SLAKE_PROBE = ProbeTask(
    name="slake_probe",
    family="vqa",
    version="2.0",  # 2.0: probe set 2.0 (negatives from the image's own region and modality, label cap, grammar)
    source="slake",
    folder="slake",
    splits=("train", "test"),
    metrics=POPE_METRIC_NAMES,
    description="POPE-style probes from SLAKE's detection boxes (finding boxes only), negatives from the "
                "image's own body region and modality.",
)


@dataclass
class ConsistencyResult:
    value: float  # share of lesion-dependent, correctly answered items whose answer changed
    n_lesion_dependent: int
    n_correct: int
    n_changed: int
    items: list[dict[str, Any]]


def lesion_dependent(row: dict[str, Any], mask) -> bool:
    if row["answer_type"] != "closed" or str(row["answer"]).strip().lower() != "yes" or mask is None:
        return False
    if row.get("question_type") and row["question_type"] not in LESION_QUESTION_TYPES:
        return False
    return bool(np.asarray(mask.convert("L")).max() > 0)


def lesion_ablation_consistency(model, task: str = "synth_vqa", *, split: str = "test", limit: int | None = None,
                                data_dir: str | Path | None = None, step: int = 500, seed: int = 0,
                                batch_size: int = 16, max_new_tokens: int = 8) -> ConsistencyResult:
    """Ask each lesion-dependent question on the intact and the lesion-noised image; count changed answers."""
    from tqdm.auto import tqdm

    from harness.core.images import to_rgb
    from harness.curation.imaging import diffusion_noise
    from harness.metrics.vqa import read_yes_no
    from harness.models.base import GenerationConfig
    from harness.tasks import get_task

    task_obj = get_task(task)
    dataset = task_obj.load(split, data_dir=data_dir)
    if "mask" not in dataset.column_names:
        raise HarnessError(f"task '{task}' has no lesion masks: the ablation probe needs a 'mask' column")
    if limit is not None:
        dataset = dataset.select(range(min(limit, len(dataset))))
    chosen = [i for i, row in enumerate(dataset) if lesion_dependent(row, row["mask"])]
    items = []
    config = GenerationConfig(max_new_tokens=max_new_tokens)
    for start in tqdm(range(0, len(chosen), batch_size), desc=f"{task} lesion ablation", unit="batch"):
        rows = [dataset[i] for i in chosen[start:start + batch_size]]
        prompts = [task_obj.prompt(row) for row in rows]
        intact = [to_rgb(row["image"]) for row in rows]
        # the linear DDPM schedule keeps 28% of the lesion's signal at step 500 (the sigmoid default keeps 86%):
        # the probe asks whether answers depend on the lesion, so the lesion must be all but erased
        noised = [diffusion_noise(img, np.asarray(row["mask"].convert("L"), dtype=float) / 255.0, step=step,
                                  schedule="linear", seed=seed + zlib.crc32(str(row["id"]).encode()))
                  for img, row in zip(intact, rows)]
        before = model.generate(intact, prompts, config)
        after = model.generate(noised, prompts, config)
        for row, a, b in zip(rows, before, after):
            items.append({"id": str(row["id"]), "question": row["question"], "intact": a, "noised": b,
                          "correct": read_yes_no(a) == "yes", "changed": read_yes_no(a) != read_yes_no(b)})
    correct = [it for it in items if it["correct"]]
    changed = sum(it["changed"] for it in correct)
    value = changed / len(correct) if correct else float("nan")
    return ConsistencyResult(value, len(items), len(correct), changed, items)
