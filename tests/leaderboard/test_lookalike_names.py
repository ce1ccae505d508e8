"""Names that render like an existing one are caught: normalised (NFKC, invisible and bidi characters removed,
look-alike letters mapped) before the name-claim and duplicate checks."""

from __future__ import annotations

import json

import pytest
from lb_fakes import submission

from harness.cli import main
from harness.results.store import ResultRow, RunRecord
from leaderboard.names import name_key, skeleton
from leaderboard.schema import clean_text, validate
from leaderboard.submit import approve, name_flags, submit_bytes

# nine spellings that render as "tiny" (the list)
LOOKALIKES = {
    "word joiner U+2060": "ti\u2060ny",
    "byte-order mark U+FEFF": "\ufefftiny",
    "soft hyphen U+00AD": "ti\u00adny",
    "combining grapheme joiner U+034F": "tin\u034fy",
    "Hangul filler U+3164": "tiny\u3164",
    "Arabic letter mark U+061C": "t\u061ciny",
    "Mongolian vowel separator U+180E": "tin\u180ey",
    "Cyrillic i U+0456": "t\u0456ny",
    "fullwidth": "\uff54\uff49\uff4e\uff59",
}


@pytest.fixture
def tiny_store(store):
    store.add_run(RunRecord(model="tiny", base_model="tiny", run_id="tiny-approved", config={"role": "base"}),
                  [ResultRow("vqa_rad", "closed_accuracy", 0.4)])
    return store


def test_each_of_the_nine_lookalikes_of_tiny_is_flagged_and_held_back(tiny_store, capsys):
    ids = {}
    for i, (what, name) in enumerate(LOOKALIKES.items()):
        payload = submission(name, value=0.5 + i / 100, method=None, base=None)
        (ids[what],) = submit_bytes(json.dumps(payload).encode(), tiny_store).stored
    for what, run_id in ids.items():
        flags = name_flags(tiny_store, tiny_store.get_run(run_id))
        assert flags and "tiny-approved" in flags[0], what
    assert main(["leaderboard", "pending", "--store", str(tiny_store.path)]) == 0
    listing = capsys.readouterr().out
    assert all(f"FLAG: run {run_id} claims the name" in listing for run_id in ids.values())
    assert "'t\\u0456ny', a look-alike of 'tiny'" in listing  # the code point is shown, not the look-alike
    held: list[str] = []
    assert approve(tiny_store, flagged=held) == [] and len(held) == 9
    assert {tiny_store.get_run(r)["status"] for r in ids.values()} == {"pending"}


def test_invisible_characters_are_dropped_from_stored_names():
    for what, name in LOOKALIKES.items():
        if "Cyrillic" in what or "fullwidth" in what:
            continue
        assert clean_text(name) == "tiny", what
    assert clean_text("a\u200db\u2066c\u202ed") == "abcd"


def test_the_skeleton_maps_lookalikes_but_keeps_different_names_apart():
    assert {name_key(n) for n in LOOKALIKES.values()} == {"tiny"}
    assert skeleton("\u0420\u0430\u0443\u0440\u0430\u0441") == "Paypac"  # all Cyrillic
    assert name_key("ΤΙΝΥ") == "tiny" and name_key("Tiny") == "tiny"  # Greek capitals, case
    for other in ("tony", "tiny2", "tinyx", "tíny", "医学"):
        assert name_key(other) != "tiny", other


def test_a_lookalike_of_a_base_model_with_a_fingerprint_is_flagged(store):
    store.add_run(RunRecord(model="tiny@44dfce972b03b425", base_model="tiny@44dfce972b03b425", run_id="tiny-fp"),
                  [ResultRow("vqa_rad", "closed_accuracy", 0.4)])
    (run_id,) = submit_bytes(json.dumps(submission("t\u0456ny", method=None, base=None)).encode(), store).stored
    assert any("tiny-fp" in flag for flag in name_flags(store, store.get_run(run_id)))


def test_an_unrelated_name_is_not_flagged(tiny_store):
    (run_id,) = submit_bytes(json.dumps(submission("fake-tinier", method=None, base=None)).encode(),
                             tiny_store).stored
    assert name_flags(tiny_store, tiny_store.get_run(run_id)) == []


def test_the_same_numbers_under_a_lookalike_name_are_a_duplicate(store):
    first = submit_bytes(json.dumps(submission("fake-dup-name")).encode(), store)
    again = submit_bytes(json.dumps(submission("fake-dup-n\u0430me")).encode(), store)  # Cyrillic a
    assert len(first.stored) == 1 and again.stored == [] and "duplicate run" in again.rejected[0]
    a = validate(submission("fake-x"), "a")[0].run.fingerprint
    assert a == validate(submission("\uff46ake-x"), "b")[0].run.fingerprint  # fullwidth f
