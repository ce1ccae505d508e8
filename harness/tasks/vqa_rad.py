"""VQA-RAD (Lau et al., 2018): 315 radiology images with clinician-written questions.

Two on-disk sources give the same 451-question test set:

- ``source="split"`` (default): ``testset.json`` / ``trainset.json``, the standard split used by MEVF and most
  Med-VQA papers (train 3,064 QA, including the augmented "frame" phrasings).
- ``source="osf"``: the original OSF release ``VQA_RAD Dataset Public.json`` (2,248 QA); test is
  ``phrase_type`` in {test_freeform, test_para}, train the rest (1,797 QA, the MMedPO training pool).

- ``source="hub"``: a Hub snapshot in ``flaviagiammarino/vqa-rad``'s layout (``data/{train,test}-00000-of-00001-
  <hash>.parquet``, columns ``image`` {bytes, path}, ``question``, ``answer``; 1,793 / 451 rows), read by
  ``harness.tasks.hub``; ``source="hub:<repo>"`` / ``"hf://<repo>"`` loads a repository through
  ``datasets.load_dataset``. The snapshot has no ``answer_type``: each row is matched to the original release
  (question, answer and the image's bytes; ``_match``) when its files are in the folder (or in ``annotations``),
  and takes the original's qid, type and metadata; an unmatched row is typed by the yes/no rule
  (``hub.yes_no_type``), which misfiles 21 of the 272 closed test questions of ``testset.json``.
- ``source="auto"`` (default): the standard split when ``testset.json`` / ``trainset.json`` are present, else a Hub
  snapshot when ``data/*.parquet`` holds both splits.

Real quirks handled: ``answer_type`` "CLOSED " with a trailing space, integer answers, a string ``qid``.
``phrase_type`` is reported without the OSF "test_" prefix so both sources carry the same metadata.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, ClassVar

from harness.core.errors import DataError
from harness.tasks import _loading as L
from harness.tasks import hub
from harness.tasks.base import Task

log = logging.getLogger(__name__)

SPLIT_FILES = {"test": "testset.json", "train": "trainset.json"}
OSF_FILE = "VQA_RAD Dataset Public.json"
OSF_TEST_PHRASES = ("test_freeform", "test_para")
IMAGE_FOLDER = "images"
HUB_REPO = "flaviagiammarino/vqa-rad"
HUB_SPLITS = {"train": "train", "test": "test"}
LAYOUTS = ("split", "osf")

CITATION = (
    "Lau, Gayen, Ben Abacha, Demner-Fushman. A dataset of clinically generated visual questions and answers "
    "about radiology images. Scientific Data 5, 180251 (2018)."
)


@dataclasses.dataclass
class VQARADOptions(hub.SourceOptions):
    layouts = LAYOUTS
    source: str = hub.source_option(
        "the standard split", "'split': testset.json / trainset.json; 'osf': the original OSF file, split by "
                              "phrase_type", HUB_REPO)
    annotations: str = L.option_field(
        "",
        "folder holding the original release (testset.json / trainset.json / the OSF file, images/) to recover a "
        "Hub snapshot's answer_type by matching; default: the task folder itself",
    )


@dataclasses.dataclass
class VQARADTask(hub.ReleaseOrSnapshot, Task):
    options_class: ClassVar[type] = VQARADOptions
    hub_splits = HUB_SPLITS
    hub_repo = HUB_REPO
    release_layout = "split"  # 'split' (testset.json / trainset.json) or 'osf'
    release_source = "original:{kind}"

    def _source_records(self, root: Path, split: str, source: str, bad: L.BadRecords | None = None
                        ) -> tuple[Path, list[tuple[int, dict]]]:
        """``(file, [(index in file, record)])`` for one split; OSF records without a phrase_type go to ``bad``."""
        if source == "split":
            path = root / SPLIT_FILES[split]
            return path, list(enumerate(L.read_records(path)))
        path = root / OSF_FILE
        bad = bad or L.BadRecords(path, strict=True)
        chosen = []
        for index, record in enumerate(L.read_records(path)):
            with bad.record():
                phrase = L.get_field(path, record, "phrase_type", index)
            if not bad.failed and (phrase in OSF_TEST_PHRASES) == (split == "test"):
                chosen.append((index, record))
        return path, chosen

    def _rows(self, root: Path, split: str, opts: VQARADOptions) -> tuple[Path, list[dict[str, str]], L.BadRecords]:
        """The good records of one split, and the bad ones counted (or raised, when strict)."""
        file = root / (OSF_FILE if opts.source == "osf" else SPLIT_FILES[split])
        bad = L.BadRecords(file, opts.strict)
        path, records = self._source_records(root, split, opts.source, bad)
        rows = []
        for index, record in records:
            with bad.record():
                row = {
                    **L.vqa_row(path, record, index, "image_name"),
                    "image_organ": L.text(record.get("image_organ")),
                    "question_type": L.text(record.get("question_type")),
                    "phrase_type": L.text(record.get("phrase_type")).removeprefix("test_"),
                }
            if not bad.failed:
                rows.append(row)
        return path, rows, bad

    def _load_release(self, root: Path, split: str, kind: str, opts: VQARADOptions):
        if kind == "split" and not (root / SPLIT_FILES[split]).is_file() and opts.kind == "auto":
            raise DataError(root, f"no VQA-RAD data: expected {SPLIT_FILES[split]} (the standard split), "
                                  f"'{OSF_FILE}' (source=osf) or a Hub snapshot data/{split}-*.parquet")
        opts = dataclasses.replace(opts, source=kind)
        path, rows, bad = self._rows(root, split, opts)
        if not rows:
            raise DataError(path, f"no usable records for split '{split}'")
        bad.warn(self.name, split)
        names = ("id", "image", "question", "answer", "answer_type", "image_path", "image_organ", "question_type",
                 "phrase_type")
        columns: dict[str, list] = {name: [] for name in names}
        images = []
        for row in rows:
            image = root / IMAGE_FOLDER / row["image_path"]
            images.append((row["where"], image))
            columns["image"].append(str(image))
            for name in names:
                if name != "image":
                    columns[name].append(row[name])
        L.check_image_files(images, opts.check_images, path, "image_name")
        return L.build_dataset(columns, source=path)

    def _release_found(self, root: Path, kind: str) -> bool:
        needed = [root / OSF_FILE] if kind == "osf" else [root / f for f in SPLIT_FILES.values()]
        return all(p.is_file() for p in needed)

    def _release_count(self, root: Path, split: str, kind: str, opts: VQARADOptions) -> tuple[int, L.BadRecords]:
        _, rows, bad = self._rows(root, split, dataclasses.replace(opts, source=kind))
        return len(rows), bad

    # --- Hub snapshots ----------------------------------------------------------------------------------

    def _load_hub(self, split: str, data_dir: str | Path | None, opts: VQARADOptions, kind: str):
        if kind == "remote":
            path, table = Path(f"hub:{opts.repo}"), hub.load_remote(self.name, opts.repo, HUB_SPLITS[split])
            local = self.data_dir(data_dir)
        else:
            local = self.require_data_dir(data_dir)
            files = hub.split_shards(local, split, HUB_SPLITS)
            path, table = files[0], hub.read_table(files)
        originals = self._originals(Path(opts.annotations) if opts.annotations else local, split)
        bad = L.BadRecords(path, opts.strict)
        entries = hub.image_entries(table, path)
        names = ("id", "question", "answer", "answer_type", "image_path", "image_organ", "question_type",
                 "phrase_type")
        columns: dict[str, list] = {name: [] for name in names}
        kept, used, how = [], set(), {"image": 0, "text": 0, "rule": 0}
        for index, record in enumerate(table.select(["question", "answer"]).to_pylist()):
            with bad.record():
                question, answer = hub.question_answer(path, record, index)
                hub.check_image(path, entries[index], index, opts.check_images)
            if bad.failed:
                continue
            data, image_name = entries[index]
            found, by = _match(originals, question, answer, data)
            if found is not None and found["id"] not in used:
                used.add(found["id"])
                how[by] += 1
                row = {**found, "question": question, "answer": answer}
            else:
                how["rule"] += 1
                row = {"id": f"hub-{index}", "question": question, "answer": answer,
                       "answer_type": hub.yes_no_type(answer), "image_path": image_name or "",
                       "image_organ": "", "question_type": "", "phrase_type": ""}
            kept.append(index)
            for name in names:
                columns[name].append(row[name])
        if not kept:
            raise DataError(path, f"no usable records for split '{split}'")
        bad.warn(self.name, split)
        log.info("%s %s from %s: answer_type of %d of %d rows matched to %s (%d on image and text, %d on text "
                 "alone), %d by the yes/no rule", self.name, split, path.name, how["image"] + how["text"], len(kept),
                 originals["file"] or "no original file", how["image"], how["text"], how["rule"])
        return hub.build(columns, hub.image_column(table, path).take(kept), source=path)

    def _originals(self, root: Path | None, split: str) -> dict[str, Any]:
        """The original release's rows of ``split`` for matching, by text and by (text, image digest): the
        standard split first for test (its qids), the OSF pool first for train (the Hub copy's source)."""
        index: dict[str, Any] = {"image": {}, "text": {}, "file": None}
        if root is None:
            return index
        order = ("split", "osf") if split == "test" else ("osf", "split")
        digests: dict[str, str | None] = {}
        for source in order:
            needed = root / (OSF_FILE if source == "osf" else SPLIT_FILES[split])
            if not needed.is_file():
                continue
            index["file"] = needed.name
            _, rows, _ = self._rows(root, split, VQARADOptions(source=source, check_images="none"))
            for row in rows:
                if row["image_path"] not in digests:
                    image = root / IMAGE_FOLDER / row["image_path"]
                    digests[row["image_path"]] = hub.digest(image.read_bytes()) if image.is_file() else None
                text = (hub.normalise(row["question"]), hub.normalise(row["answer"]))
                kept = {k: row[k] for k in ("id", "answer_type", "image_path", "image_organ", "question_type",
                                            "phrase_type")}
                index["image"].setdefault((*text, digests[row["image_path"]]), kept)
                index["text"].setdefault(text, []).append(kept)
            break  # one release: the same question in testset.json and the OSF file is one item
        return index


def _match(originals: dict[str, Any], question: str, answer: str, data: bytes | None) -> tuple[dict | None, str]:
    """The original row of a Hub row: same question and answer (``hub.normalise``) and the same image bytes; else,
    when the question and answer occur in exactly one original row of the split, that row (``"text"``)."""
    text = (hub.normalise(question), hub.normalise(answer))
    found = originals["image"].get((*text, hub.digest(data) if data else None))
    if found is not None:
        return found, "image"
    candidates = originals["text"].get(text, [])
    return (candidates[0], "text") if len(candidates) == 1 else (None, "rule")


TASK = VQARADTask(
    name="vqa_rad",
    family="vqa",
    # 1.1: closed_accuracy / open_* rescored (exact match, distinct tokens); 1.0 results are not comparable
    # 1.2: closed questions prompted by their form (choice questions no longer told "Answer yes or no.") and
    # closed_accuracy read by the closed-answer reader (harness.metrics.closed_reader); 1.1 results do not mix
    version="1.2",
    official_sizes={"train": 3064, "test": 451},
    folder="vqa_rad",
    splits=("train", "test"),
    metrics=L.VQA_METRICS,
    description="VQA-RAD radiology VQA: 451 test QA (272 closed, 179 open) on 315 images",
    citation=CITATION,
)
