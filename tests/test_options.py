"""``harness.core.options``: declared bounds on numbers, finite floats by default, and short echoes of long values."""

from __future__ import annotations

import dataclasses

import pytest

from harness.core.errors import HarnessError
from harness.core.options import (
    Range,
    check_known,
    coerce,
    option_field,
    options_help,
    parse_key_values,
    parse_options,
    shown,
)

HUGE = "9" * 120_000


@dataclasses.dataclass
class Opts:
    rate: float = option_field(0.5, "a share", ge=0, lt=1)
    scale: float = option_field(1.0, "any finite number")
    wild: float = option_field(1.0, "infinity allowed", finite=False)
    count: int = option_field(2, "at least one", ge=1)
    cap: float | None = option_field(None, "optional, positive", gt=0)
    mode: str = option_field("a", "a mode", choices=("a", "b"))

    def __post_init__(self) -> None:
        if self.mode == "b" and self.count > 5:
            raise ValueError("mode b takes at most 5, got " + "x" * 1000)


@pytest.mark.parametrize(("bounds", "text", "inside", "outside"), [
    (Range(gt=0), "> 0", [1e-9, 3.0], [0.0, -1.0, float("nan"), float("inf")]),
    (Range(ge=0, lt=0.5), "[0, 0.5)", [0.0, 0.49], [0.5, -0.01, float("nan")]),
    (Range(gt=0, le=1), "(0, 1]", [1.0, 0.2], [0.0, 1.01]),
    (Range(le=2), "<= 2", [2.0, -5.0], [2.5, float("-inf")]),
    (Range(), "any", [-1e300, 0.0], [float("nan"), float("inf"), float("-inf")]),
    (Range(finite=False), "any", [float("inf"), float("nan")], []),
    (Range(gt=0, finite=False), "> 0", [float("inf")], [float("nan"), 0.0]),
])
def test_a_range_admits_exactly_its_values(bounds, text, inside, outside):
    assert bounds.describe() == text
    assert all(bounds.admits(v) for v in inside), inside
    assert not any(bounds.admits(v) for v in outside), outside


def test_a_range_takes_one_bound_per_side():
    with pytest.raises(ValueError):
        Range(gt=0, ge=0)


@pytest.mark.parametrize(("options", "message"), [
    ({"rate": "1"}, r"rate=1 must be a finite number in \[0, 1\)"),
    ({"rate": "nan"}, "rate=nan must be a finite number"),
    ({"scale": "inf"}, "scale=inf must be a finite number$"),
    ({"scale": "-1e999"}, "scale=-1e999 must be"),
    ({"count": "0"}, "count=0 must be a finite number >= 1"),
    ({"cap": "0"}, "cap=0 must be a finite number > 0"),
])
def test_parse_options_refuses_numbers_outside_their_range(options, message):
    with pytest.raises(HarnessError, match=message):
        parse_options("thing 'x'", Opts, options)


def test_parse_options_accepts_values_in_range_and_declared_infinity():
    parsed = parse_options("thing 'x'", Opts, {"rate": "0", "scale": "-3", "wild": "inf", "cap": "none"})
    assert (parsed.rate, parsed.scale, parsed.wild, parsed.cap) == (0.0, -3.0, float("inf"), None)


def test_options_help_lists_declared_ranges():
    ranges = {o["name"]: o["range"] for o in options_help(Opts)}
    assert ranges == {"rate": "[0, 1)", "scale": "finite", "wild": "any", "count": ">= 1", "cap": "> 0", "mode": None}


def test_shown_cuts_a_long_value_to_its_head_and_length():
    assert shown("abc") == "'abc'"
    assert shown(HUGE) == repr("9" * 80) + "… (120000 chars)"
    assert shown(list(range(100))).endswith("… (390 chars)")


@pytest.mark.parametrize("call", [
    lambda: coerce("method 'dpo'", "beta", "x" + HUGE, 0.1),
    lambda: check_known("method 'dpo'", [HUGE], ["beta"]),
    lambda: parse_key_values([HUGE]),
    lambda: parse_options("thing 'x'", Opts, {"mode": HUGE}),
    lambda: parse_options("thing 'x'", Opts, {"mode": "b", "count": "9"}),
    lambda: parse_options("thing 'x'", Opts, {"rate": HUGE}),
])
def test_errors_echo_at_most_a_few_hundred_characters_of_a_value(call):
    with pytest.raises(HarnessError) as caught:
        call()
    message = str(caught.value)
    assert len(message) < 500 and "\n" not in message, message[:600]


@dataclasses.dataclass
class Nested:
    weights: dict[str, float] | None = option_field(None, "a mapping of floats is not a float")
    limit: float | None = option_field(None, "an optional float")


def test_only_float_fields_get_the_finite_check():
    assert parse_options("thing 'x'", Nested, {"weights": '{"a": 1}'}).weights == {"a": 1}
    with pytest.raises(HarnessError, match="limit=nan must be a finite number"):
        parse_options("thing 'x'", Nested, {"limit": "nan"})
