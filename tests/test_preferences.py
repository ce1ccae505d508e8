"""``harness.curation.preferences.read_pairs``: a pair file is read whole and honestly, before any model loads."""

from __future__ import annotations

import json

import pytest

from harness.core.errors import DataError
from harness.curation.preferences import read_pairs


def record(pair_id: str) -> dict:
    turns = [{"from": "human", "value": "<image>\nIs there a mass?"}]
    return {"id": pair_id, "image": "x.png", "conversations": [*turns, {"from": "gpt", "value": "no"}],
            "rejected_conversations": [*turns, {"from": "gpt", "value": "yes"}], "weighted_score": 1.0}


def lines(*ids: str) -> str:
    return "".join(json.dumps(record(i)) + "\n" for i in ids)


def test_a_duplicate_id_names_the_id_and_both_lines(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text(lines("a", "b") + "\n" + lines("c", "b", "a"), encoding="utf-8")  # a blank line 3
    with pytest.raises(DataError) as caught:
        list(read_pairs(path))
    assert str(caught.value) == (f"{path}, record line 5, field 'id': pair id 'b' appears twice (first at line 2); "
                                 "ids key the reference cache and the data order")


def test_a_duplicate_id_in_a_json_list_names_the_records(tmp_path):
    path = tmp_path / "release.json"
    path.write_text(json.dumps([record("a"), record("b"), record("a")]), encoding="utf-8")
    with pytest.raises(DataError, match=r"record 2, field 'id': pair id 'a' appears twice \(first at record 0\)"):
        list(read_pairs(path))


def test_a_malformed_last_line_is_an_error_not_a_dropped_pair(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text(lines("a", "b") + json.dumps(record("c"))[:40], encoding="utf-8")
    with pytest.raises(DataError, match="pairs.jsonl, record line 3: malformed JSON"):
        list(read_pairs(path))


@pytest.mark.parametrize("layout", ["jsonl", "json"])
def test_a_byte_order_mark_is_ignored(tmp_path, layout):
    path = tmp_path / f"pairs.{layout}"
    text = lines("a", "b") if layout == "jsonl" else json.dumps([record("a"), record("b")])
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert [p.id for p in read_pairs(path)] == ["a", "b"]
