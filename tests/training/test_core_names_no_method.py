"""The training core names no method and no pair kind: what a method needs from the loop (its pairs, a
rejected side or not, extra rows, per-token weights) comes through the method contract."""

from __future__ import annotations

import re
from pathlib import Path

from harness.curation.preferences import PreferencePair
from harness.methods import METHODS
from harness.methods.base import Method

CORE = Path(__file__).resolve().parents[2] / "harness" / "training"
# a pair kind as the core would test one: a pair's ``kind`` read, or the chosen-only kind's string ("text"
# and "visual" are also a chat template's content type and a vision module's name prefix there)
KIND_USE = re.compile(r"""["']sft["']|\.kind\b""")


def test_no_file_of_the_core_names_a_method_or_a_pair_kind():
    names = sorted(METHODS.names(), key=len, reverse=True)
    assert {"dpo", "sft", "fisao", "mmedpo", "povid"} <= set(names)  # the registry was read
    word = re.compile(r"(?<![a-z0-9])(" + "|".join(map(re.escape, names)) + r")(?![a-z0-9])", re.IGNORECASE)
    found = []
    for path in sorted(CORE.rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            for match in (*word.finditer(line), *KIND_USE.finditer(line)):
                found.append(f"{path.name}:{number}: {match.group(0)}")
    assert found == []


def test_the_contract_defaults_select_by_kind_and_weigh_no_tokens():
    class TextOnly(Method):
        name = "text_only"

    method, pair = TextOnly(), PreferencePair("a", "x.png", "q", "yes", "no", kind="text")
    visual = PreferencePair("b", "x.png", "q", "yes", "yes", rejected_image="y.png", kind="visual")
    assert method.paired and method.trains_on(pair) and not method.trains_on(visual)
    assert method.token_weights(pair) is None
    sft = METHODS.get("sft")()
    assert not sft.paired and sft.trains_on(pair) and sft.trains_on(visual)
