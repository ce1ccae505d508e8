"""Preference records: the project's pair format, which reads the MMedPO release format as it is.

One JSON object per pair (JSON Lines; a JSON list, as in the MMedPO release, is read too)::

    {"id": ..., "image": "rel/path.jpg", "conversations": [{"from": "human", "value": "<image>\\nQ"},
     {"from": "gpt", "value": "chosen"}], "rejected_conversations": [..., {"from": "gpt", "value": "rejected"}],
     "weighted_score": 1.0, "rejected_image": "rel/noised.png" (optional), "kind": "text" | "visual",
     "source": "mmedpo-rules" ...}

Images are paths relative to an image folder given when the file is read.

``weighted_score`` must be a finite number in ``[WEIGHT_MIN, WEIGHT_MAX]`` = [0, 100]: it multiplies the
pair's loss, so a negative weight would train towards the rejected answer and a huge one would swamp every
other pair (MMedPO's weights lie in [0.75, 1.25], the release's in [0, 1]). A record outside the range is a
one-line error naming the file, the record and the field, raised when the pairs are read (before any
model loads or anything is written). So is a malformed line anywhere in a JSON Lines file, the last one
included, and a pair id that appears twice (ids key the reference cache and the data order): the error
names the id and both lines. A UTF-8 byte-order mark at the start of the file is ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.core.errors import DataError
from harness.core.io import READ_ENCODING, read_json, read_jsonl_lines, write_jsonl
from harness.core.options import shown

IMAGE_TOKEN = "<image>"
WEIGHT_MIN, WEIGHT_MAX = 0.0, 100.0


@dataclass
class PreferencePair:
    id: str
    image: str
    prompt: str
    chosen: str
    rejected: str
    weight: float = 1.0
    rejected_image: str | None = None
    kind: str = "text"  # "text": same image, different text; "visual": same text, noised image
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        human = {"from": "human", "value": f"{IMAGE_TOKEN}\n{self.prompt}"}
        record = {
            "id": self.id,
            "image": self.image,
            "conversations": [human, {"from": "gpt", "value": self.chosen}],
            "rejected_conversations": [dict(human), {"from": "gpt", "value": self.rejected}],
            "weighted_score": self.weight,
            "kind": self.kind,
            "source": self.source,
        }
        if self.rejected_image is not None:
            record["rejected_image"] = self.rejected_image
        if self.extra:
            record["extra"] = self.extra
        return record

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _turns(path: Path, index: int, record: dict, key: str) -> tuple[str, str]:
    turns = record.get(key)
    if not isinstance(turns, list) or len(turns) < 2:
        raise DataError(path, "expected a list of at least two turns", record=index, field=key)
    human = next((t for t in turns if isinstance(t, dict) and t.get("from") == "human"), None)
    answer = next((t for t in reversed(turns) if isinstance(t, dict) and t.get("from") == "gpt"), None)
    if human is None or answer is None or not isinstance(human.get("value"), str) or not isinstance(answer.get("value"), str):
        raise DataError(path, "needs a 'human' turn and a 'gpt' turn with string values", record=index, field=key)
    prompt = human["value"].replace(IMAGE_TOKEN, "").strip()
    return prompt, answer["value"].strip()


def pair_from_record(record: dict, *, path: Path, index: int) -> PreferencePair:
    if not isinstance(record, dict):
        raise DataError(path, "expected a JSON object", record=index)
    for key in ("image", "conversations", "rejected_conversations"):
        if key not in record:
            raise DataError(path, "missing field", record=record.get("id", index), field=key)
    if not isinstance(record["image"], str) or not record["image"]:
        raise DataError(path, "expected a non-empty image path", record=record.get("id", index), field="image")
    prompt, chosen = _turns(path, record.get("id", index), record, "conversations")
    rejected_prompt, rejected = _turns(path, record.get("id", index), record, "rejected_conversations")
    weight = record.get("weighted_score", 1.0)
    if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight != weight:
        raise DataError(path, f"expected a number, got {weight!r}", record=record.get("id", index), field="weighted_score")
    if not WEIGHT_MIN <= weight <= WEIGHT_MAX:  # also catches +-Infinity
        raise DataError(path, f"weight {weight!r} is outside [{WEIGHT_MIN:g}, {WEIGHT_MAX:g}]",
                        record=record.get("id", index), field="weighted_score")
    rejected_image = record.get("rejected_image")
    kind = record.get("kind") or ("visual" if rejected_image and rejected_image != record["image"] else "text")
    if kind not in ("text", "visual"):
        raise DataError(path, f"expected 'text' or 'visual', got {kind!r}", record=record.get("id", index), field="kind")
    return PreferencePair(
        id=str(record.get("id", index)),
        image=record["image"],
        prompt=prompt or rejected_prompt,
        chosen=chosen,
        rejected=rejected,
        weight=float(weight),
        rejected_image=rejected_image,
        kind=kind,
        source=str(record.get("source", "")),
        extra=dict(record.get("extra", {})),
    )


def read_pairs(path: str | Path) -> Iterator[PreferencePair]:
    """Read a pair file: JSON Lines (the project's format) or a JSON list (the MMedPO release).

    Every line of a JSON Lines file must parse, and pair ids must be unique; either is a ``DataError``
    naming the file and the line (the record's index in a JSON list)."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found")
    try:
        with open(path, encoding=READ_ENCODING) as handle:
            head = handle.read(4096).lstrip()[:1]
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not UTF-8 text ({exc.reason})") from None
    if head == "[":  # a JSON list: records are named by their index
        records: Iterable[tuple[Any, Any]] = enumerate(read_json(path))
    else:
        records = ((f"line {number}", r) for number, r in read_jsonl_lines(path))
    first_seen: dict[str, Any] = {}
    for index, (where, record) in enumerate(records):
        pair = pair_from_record(record, path=path, index=index)
        if pair.id in first_seen:
            first = first_seen[pair.id]
            raise DataError(path, f"pair id {shown(pair.id)} appears twice (first at "
                                  f"{first if isinstance(first, str) else f'record {first}'}); ids key the "
                                  "reference cache and the data order", record=where, field="id")
        first_seen[pair.id] = where
        yield pair


def write_pairs(path: str | Path, pairs: Iterable[PreferencePair]) -> None:
    write_jsonl(path, (p.to_record() for p in pairs))
