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
from typing import Any, ClassVar

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
class PathVQAOptions(L.LoadOptions):
    source: str = L.option_field(
        "auto",
        "'auto': the original release if present, else a Hub snapshot in data/; 'original': pvqa/qas/*/*_qa.pkl "
        f"and pvqa/images/; 'hub': a local snapshot of {HUB_REPO} (data/*.parquet); 'hub:<repo>' or "
        "'hf://<repo>': datasets.load_dataset(<repo>)",
    )
    dedupe: bool = L.option_field(
        True, "drop repeated image-question-answer triplets within a split of the original release, as the Hub "
              "copy did (the official counts assume it)")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.kind, self.repo = hub.parse_source(self.source, LAYOUTS)


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
    if not isinstance(data, list):
        raise DataError(path, f"expected a pickled list of records, found {type(data).__name__}")
    for index, record in enumerate(data):
        if not isinstance(record, dict):
            raise DataError(path, f"expected a record object, found {type(record).__name__}", record=index)
    return data


@dataclasses.dataclass
class PathVQATask(L.SizesFromReport, Task):
    options_class: ClassVar[type] = PathVQAOptions

    @staticmethod
    def _release(root: Path) -> Path:
        return root / RELEASE_FOLDER if (root / RELEASE_FOLDER / "qas").is_dir() else root

    def _kind(self, root: Path | None, opts: PathVQAOptions) -> str:
        if opts.kind != "auto":
            return opts.kind
        if root is not None and not self._pickle(root, "test").is_file() and hub.snapshot_files(root, HUB_SPLITS):
            return "hub"
        return "original"

    def _pickle(self, root: Path, split: str) -> Path:
        name = RELEASE_SPLITS[split]
        return self._release(root) / "qas" / name / f"{name}_qa.pkl"

    def data_source(self, data_dir: str | Path | None = None) -> str:
        """``original:release``, ``hub-snapshot:flaviagiammarino/path-vqa`` or ``hub:<repo>`` (the data record's)."""
        opts = L.parse_options(self.name, self.options_class, self.options)
        kind = self._kind(self.data_dir(data_dir) if opts.kind != "remote" else None, opts)
        return {"hub": f"hub-snapshot:{HUB_REPO}", "remote": f"hub:{opts.repo}"}.get(kind, "original:release")

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

    def _load_release(self, root: Path, split: str, opts: PathVQAOptions):
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

    def _load(self, split: str, data_dir: str | Path | None, **options: Any):
        opts = L.parse_options(self.name, self.options_class, options)
        kind = self._kind(None if opts.kind == "remote" else self.require_data_dir(data_dir), opts)
        if kind in ("hub", "remote"):
            return self._load_hub(split, data_dir, opts, kind)
        root = self.require_data_dir(data_dir)
        if not self._pickle(root, split).is_file() and opts.kind == "auto":
            raise DataError(root, f"no PathVQA data: expected pvqa/qas/{RELEASE_SPLITS[split]}/"
                                  f"{RELEASE_SPLITS[split]}_qa.pkl (the release) or a Hub snapshot "
                                  f"data/{HUB_SPLITS[split]}-*.parquet")
        return self._load_release(root, split, opts)

    def size_report(self, data_dir: str | Path | None = None, **options: Any) -> tuple[dict[str, int], dict[str, str]] | None:
        opts = L.parse_options(self.name, self.options_class, {**self.options, **options})
        root = self.data_dir(data_dir)
        if root is None or opts.kind == "remote":
            return None
        counted = []
        if self._kind(root, opts) == "hub":
            return hub.size_report(root, self.splits, HUB_SPLITS, opts.strict)
        if not all(self._pickle(root, split).is_file() for split in self.splits):
            return None
        for split in self.splits:
            _, rows, bad = self._release_rows(root, split, opts)
            counted.append((split, len(rows), bad))
        return L.split_report(counted)


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
