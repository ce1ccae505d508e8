"""PathVQA (He et al., 2020): question-answer pairs on pathology images from two textbooks and the PEIR library.

Two layouts of folder ``path_vqa/``:

- ``source="original"``: the authors' release, ``pvqa/qas/{train,val,test}/{split}_qa.pkl`` (a pickled list of
  ``{image, question, answer}``, ``image`` the file name without ``.jpg``) and
  ``pvqa/images/{train,val,test}/<image>.jpg`` (the ``pvqa/`` level may be left out). The pickles are read
  with an unpickler that admits plain lists, dicts and strings only, so a pickle cannot run code.
- ``source="hub"``: a snapshot of ``flaviagiammarino/path-vqa`` (``data/{train,validation,test}-0000i-of-
  0000N-<hash>.parquet``, columns ``image`` {bytes, path}, ``question``, ``answer``); ``source="hub:<repo>"``
  / ``"hf://<repo>"`` loads a repository through ``datasets.load_dataset``.
- ``source="auto"`` (default): the original release when its test pickle is present, else a Hub snapshot.

The release (Feb 2023) holds 32,795 QA; some image-question-answer triplets occur twice in a split. The Hub
copy dropped them, leaving train 19,654 / validation 6,259 / test 6,719 (32,632 QA on 4,289 images), and
``dedupe=True`` (default) drops them from the original layout the same way (first occurrence kept, file order),
so both layouts give the same items and ids (``<row in the split>``). The Hub copy's text is lower-cased.

There is no answer type in either layout: as in the paper, the yes/no questions are the closed set
(``answer`` yes or no) and every other question is open.
"""

from __future__ import annotations

import dataclasses
import io
import pickle
from pathlib import Path
from typing import ClassVar

from harness.core.errors import DataError
from harness.tasks import _loading as L
from harness.tasks import hub
from harness.tasks.base import Task

HUB_REPO = "flaviagiammarino/path-vqa"
HUB_SPLITS = {"train": "train", "validation": "validation", "test": "test"}
RELEASE_SPLITS = {"train": "train", "validation": "val", "test": "test"}
RELEASE_FOLDER = "pvqa"
LAYOUTS = ("original",)

CITATION = (
    "He, Zhang, Mou, Xing, Xie. PathVQA: 30000+ Questions for Medical Visual Question Answering. "
    "arXiv:2003.10286 (2020)."
)


@dataclasses.dataclass
class PathVQAOptions(hub.SourceOptions):
    layouts = LAYOUTS
    source: str = hub.source_option("the original release", "'original': pvqa/qas/*/*_qa.pkl and pvqa/images/",
                                    HUB_REPO)
    dedupe: bool = L.option_field(
        True, "drop repeated image-question-answer triplets within a split of the original release, as the Hub "
              "copy did (the official counts assume it)")


class _PlainUnpickler(pickle.Unpickler):
    """Lists, dicts, strings and numbers only: a global (any class or function) is refused."""

    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"refusing the global {module}.{name}")


def read_pickle(path: Path) -> list[dict]:
    """The release's ``*_qa.pkl``: a list of ``{image, question, answer}`` objects."""
    try:
        data = _PlainUnpickler(io.BytesIO(path.read_bytes())).load()
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise DataError(path, f"not a plain pickled list of records ({' '.join(str(exc).split())[:120]})") from None
    return L.record_list(path, data, listing="a pickled list of records", record="a record object",
                         kind=lambda value: type(value).__name__)


@dataclasses.dataclass
class PathVQATask(hub.ReleaseOrSnapshot, Task):
    options_class: ClassVar[type] = PathVQAOptions
    hub_splits = HUB_SPLITS
    hub_repo = HUB_REPO

    @staticmethod
    def _release(root: Path) -> Path:
        return root / RELEASE_FOLDER if (root / RELEASE_FOLDER / "qas").is_dir() else root

    def _release_there(self, root: Path) -> bool:
        return self._pickle(root, "test").is_file()

    def _pickle(self, root: Path, split: str) -> Path:
        name = RELEASE_SPLITS[split]
        return self._release(root) / "qas" / name / f"{name}_qa.pkl"

    # --- the original release ---------------------------------------------------------------------------

    def _release_rows(self, root: Path, split: str, opts: PathVQAOptions) -> tuple[Path, list[dict], L.BadRecords]:
        path = self._pickle(root, split)
        bad = L.BadRecords(path, opts.strict)
        rows, seen = [], set()
        for index, record in enumerate(read_pickle(path)):
            with bad.record():
                image = L.get_field(path, record, "image", index, kind=(str, int)).__str__().strip()
                question, answer = hub.question_answer(path, record, index)
            if bad.failed or (opts.dedupe and (image, question, answer) in seen):
                continue
            seen.add((image, question, answer))
            rows.append({"where": index, "image": image, "question": question, "answer": answer})
        return path, rows, bad

    def _load_release(self, root: Path, split: str, kind: str, opts: PathVQAOptions):
        if not self._pickle(root, split).is_file() and opts.kind == "auto":
            raise DataError(root, f"no PathVQA data: expected pvqa/qas/{RELEASE_SPLITS[split]}/"
                                  f"{RELEASE_SPLITS[split]}_qa.pkl (the release) or a Hub snapshot "
                                  f"data/{HUB_SPLITS[split]}-*.parquet")
        path, rows, bad = self._release_rows(root, split, opts)
        if not rows:
            raise DataError(path, f"no usable records for split '{split}'")
        bad.warn(self.name, split)
        folder = self._release(root) / "images" / RELEASE_SPLITS[split]
        columns: dict[str, list] = {name: [] for name in ("id", "image", "question", "answer", "answer_type",
                                                          "image_path")}
        images = []
        for position, row in enumerate(rows):
            image = folder / f"{row['image']}.jpg"
            images.append((row["where"], image))
            columns["id"].append(str(position))
            columns["image"].append(str(image))
            columns["question"].append(row["question"])
            columns["answer"].append(row["answer"])
            columns["answer_type"].append(hub.yes_no_type(row["answer"]))
            columns["image_path"].append(f"{RELEASE_SPLITS[split]}/{row['image']}.jpg")
        L.check_image_files(images, opts.check_images, path, "image")
        return L.build_dataset(columns, source=path)

    # --- Hub snapshots ----------------------------------------------------------------------------------

    def _load_hub(self, split: str, data_dir: str | Path | None, opts: PathVQAOptions, kind: str):
        if kind == "remote":
            path, table = Path(f"hub:{opts.repo}"), hub.load_remote(self.name, opts.repo, HUB_SPLITS[split])
        else:
            files = hub.split_shards(self.require_data_dir(data_dir), split, HUB_SPLITS)
            path, table = files[0], hub.read_table(files)
        bad = L.BadRecords(path, opts.strict)
        empty = set(hub.missing_images(table, path)) if opts.check_images != "none" else set()
        paths = hub.image_paths(table, path)
        columns: dict[str, list] = {name: [] for name in ("id", "question", "answer", "answer_type", "image_path")}
        kept = []
        for index, record in enumerate(table.select(["question", "answer"]).to_pylist()):
            with bad.record():
                question, answer = hub.question_answer(path, record, index)
                if index in empty:
                    raise DataError(path, "no image bytes in the image struct", record=index, field="image")
            if bad.failed:
                continue
            kept.append(index)
            for name, value in (("id", str(index)), ("question", question), ("answer", answer),
                                ("answer_type", hub.yes_no_type(answer)), ("image_path", paths[index] or "")):
                columns[name].append(value)
        if not kept:
            raise DataError(path, f"no usable records for split '{split}'")
        bad.warn(self.name, split)
        return hub.build_kept(columns, table, kept, path, opts.check_images)

    # --- the task contract ------------------------------------------------------------------------------

    def _release_found(self, root: Path, kind: str) -> bool:
        return all(self._pickle(root, split).is_file() for split in self.splits)

    def _release_count(self, root: Path, split: str, kind: str, opts: PathVQAOptions) -> tuple[int, L.BadRecords]:
        _, rows, bad = self._release_rows(root, split, opts)
        return len(rows), bad


TASK = PathVQATask(
    name="path_vqa",
    family="vqa",
    version="1.0",
    # The de-duplicated splits (the Hub copy's, and the release's with dedupe=True).
    official_sizes={"train": 19654, "validation": 6259, "test": 6719},
    folder="path_vqa",
    splits=("train", "validation", "test"),
    metrics=L.VQA_METRICS,
    description="PathVQA pathology VQA: 6,719 test QA (yes/no questions closed, the rest open)",
    citation=CITATION,
)
