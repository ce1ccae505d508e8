"""The task contract.

A task loads one benchmark from its real on-disk layout and returns one ``datasets.Dataset`` per split.
Every dataset has at least these columns (the evaluation engine, the pair builders and the lm-eval
bridge rely on them):

- ``id`` (str): unique within the split.
- ``image`` (``datasets.Image``, decoded lazily on access): the image the model sees.
- ``question`` (str): the VQA question, or the report-generation instruction.
- ``answer`` (str): the reference answer or report.
- ``answer_type`` (str): ``"closed"``, ``"open"`` or ``"report"``.

Tasks add the metadata papers slice by (organ, question type, modality, content type, ...) as further
string columns, and optionally ``mask`` (``datasets.Image`` or None: the lesion mask) and ``boxes``
(JSON string of ``[{"label": str, "bbox": [x, y, w, h]}]``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.core.errors import HarnessError

if TYPE_CHECKING:
    import datasets

ANSWER_TYPES = ("closed", "open", "report")

# The prompt templates every model sees (the same for all models, so numbers compare). A closed question
# gets CLOSED_PROMPT or CHOICE_PROMPT by its form (``closed_form``); a task whose prompts change bumps its version.
CLOSED_PROMPT = "{question}\nAnswer yes or no."
CHOICE_PROMPT = "{question}\nAnswer with one of the options in the question."
OPEN_PROMPT = "{question}\nAnswer with a short phrase."
REPORT_PROMPT = "{question}"
DEFAULT_REPORT_INSTRUCTION = "Describe the findings of this chest X-ray."

# ``closed_form``'s word lists. Questions that ask whether something exists read "A or B" as "either":
_EXISTENTIAL = re.compile(
    r"^(?:(?:is|are|was|were)(?: (?:is|are))? there|any|can|could|has|have|do you see"
    r"|(?:does|do|did) .*?\b(?:show|shows|have|contain|demonstrate|reveal|include|involve)\b)"
)
_WH_WORDS = frozenset({"which", "what", "where", "how", "who", "when", "whose"})
_ALTERNATIVE_WORDS = frozenset({"or", "vs", "versus"})
_ARTICLES = frozenset({"a", "an", "the"})
# Alternatives that exclude each other, so "Is there A or B?" asks which: prefix pairs (hypo-/hyper-dense)
# and a word negated ("contrast or no contrast", "enhanced or non enhanced").
_OPPOSITE_PREFIXES = (("hypo", "hyper"), ("uni", "bi"), ("supra", "infra"), ("intra", "extra"), ("mono", "poly"))
_NEGATING = frozenset({"no", "non", "not", "without"})


def _opposite(left: str, right: list[str]) -> bool:
    """Whether ``left`` (the word before "or") and ``right`` (the words after it) exclude each other."""
    first = right[0] if right else ""
    if first in _NEGATING or first in ("just", "only"):  # "contrast or no contrast", "multiple or just one"
        return True
    for a, b in _OPPOSITE_PREFIXES:
        if (left.startswith(a) and first.startswith(b)) or (left.startswith(b) and first.startswith(a)):
            return True
    # one negates the other by a prefix: "normal or abnormal", "healthy or unhealthy"
    return any(left and first in (p + left, left.removeprefix(p)) and first != left for p in ("ab", "un", "non", "in"))


def closed_form(question: str) -> str:
    """How a closed question asks, read from its text only (never from its answer, which the prompt must not
    give away): ``"choice"`` when it offers alternatives to pick from, ``"open"`` for a wh-question without
    alternatives ("Where is the lesion located?": annotated closed, asked as open questions are), else
    ``"yes/no"``.

    A question offers alternatives when it joins them with "or" / "vs" / "versus" ("Is this a CT or an MRI?",
    "Which organ is abnormal, heart or lung?"), except

    - "or not" at the end: "Does this image use contrast or not?" asks whether;
    - a question of existence ("Is there", "Are there", "Any", "Can", "Has", "Does ... show / have / contain")
      reads "or" as "either" ("Is there epidural or subdural hematoma?", "Can a diagnosis or impression be
      made?") unless it is a wh-question or its alternatives exclude each other: opposite prefixes
      ("hypoinflation or hyperinflation"), a negated or limited second one ("contrast or no contrast",
      "multiple or just one"); and "any" before the "or" keeps "either" ("any hypo- or hyperattenuations").

    docs/tasks.md ("Closed questions: yes/no or choice") counts each form per benchmark and how often it
    disagrees with the reference answers.
    """
    words = re.findall(r"[a-z0-9]+", str(question).lower())
    wh = bool(set(words[:2]) & _WH_WORDS)  # "Which ...", "In which lobe ..."
    marks = [i for i, w in enumerate(words) if w in _ALTERNATIVE_WORDS]
    if not marks or (len(marks) == 1 and words[marks[0] + 1:] == ["not"]):
        return "open" if wh else "yes/no"
    if wh or not _EXISTENTIAL.match(" ".join(words)):
        return "choice"
    for i in marks:
        right = [w for w in words[i + 1:] if w not in _ARTICLES]
        if "any" not in words[:i] and _opposite(words[i - 1] if i else "", right):
            return "choice"
    return "yes/no"


@dataclass
class Task:
    """Base class: subclasses set the class attributes and implement ``_load`` (and ``_sizes``)."""

    name: str = ""
    family: str = ""  # "vqa" or "report"
    version: str = "1.0"
    folder: str = ""  # sub-folder of the data root
    splits: tuple[str, ...] = ("train", "test")
    metrics: tuple[str, ...] = ()
    description: str = ""
    citation: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    # Items per split of the official release the field reports, for the default options; a run on fewer
    # (or other) items is marked partial (``harness.tasks.identity``). Empty: unknown, the count is not checked.
    official_sizes: dict[str, int] = field(default_factory=dict)
    # "files": read from a data folder; "generated": made by the harness from its options (no folder).
    source_kind: str = "files"

    def data_dir(self, data_dir: str | Path | None = None) -> Path | None:
        from harness.core.paths import task_data_dir

        return task_data_dir(self.name, self.folder, data_dir)

    def require_data_dir(self, data_dir: str | Path | None = None) -> Path:
        path = self.data_dir(data_dir)
        if path is None:
            raise HarnessError(
                f"task '{self.name}' needs its data: pass --data-dir or set HARNESS_DATA "
                f"(folder '{self.folder}/' inside it) or HARNESS_DATA_{self.name.upper()}"
            )
        if not path.is_dir():
            raise HarnessError(f"task '{self.name}': data folder {path} does not exist")
        return path

    def load(self, split: str = "test", data_dir: str | Path | None = None, **options: Any) -> datasets.Dataset:
        if split not in self.splits:
            raise HarnessError(f"task '{self.name}' has no split '{split}' (splits: {', '.join(self.splits)})")
        return self._load(split, data_dir, **{**self.options, **options})

    def _load(self, split: str, data_dir: str | Path | None, **options: Any) -> datasets.Dataset:
        raise NotImplementedError

    def sizes(self, data_dir: str | Path | None = None) -> dict[str, int] | None:
        """Items per split when the data is present (cheap: no image decoding, no torch); else None."""
        return None

    def size_report(self, data_dir: str | Path | None = None) -> tuple[dict[str, int], dict[str, str]] | None:
        """``(items per split, {split: "N skipped: reason"})``: sizes after skipping bad records, and what was
        skipped (see ``harness.tasks._loading.BadRecords``); None when the data is absent."""
        sizes = self.sizes(data_dir)
        return None if sizes is None else (sizes, {})

    def expected_size(self, split: str) -> int | None:
        """Items in the official ``split`` (None when unknown, or when options select another set)."""
        return None if self.options else self.official_sizes.get(split)

    def prompt(self, sample: dict) -> str:
        """The user prompt for one sample (without the image token; the model adapter places the image)."""
        kind = sample["answer_type"]
        if kind == "closed":
            kind = {"yes/no": "closed", "choice": "choice", "open": "open"}[closed_form(sample["question"])]
        template = {"closed": CLOSED_PROMPT, "choice": CHOICE_PROMPT, "open": OPEN_PROMPT, "report": REPORT_PROMPT}[kind]
        return template.format(question=sample["question"])

    def describe(self, data_dir: str | Path | None = None) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "splits": list(self.splits),
            "sizes": self.sizes(data_dir),
            "metrics": list(self.metrics),
            "version": self.version,
        }
