"""Every method's hyperparameters have declared ranges, checked in ``Method.__init__`` (before any model
loads), and docs/methods.md lists them as declared."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.core.errors import HarnessError
from harness.methods import METHODS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "methods.md"
WITH_BETA = [n for n in METHODS.names() if "beta" in METHODS.get(n).defaults]


def test_every_method_declares_ranges_only_for_its_own_hyperparameters():
    for name in METHODS.names():
        cls = METHODS.get(name)
        cls()  # the defaults lie in their ranges
        declared = set(cls.hparam_ranges) - {"beta"}  # the base class declares beta for every method
        assert declared <= set(cls.defaults), (name, declared - set(cls.defaults))
        floats = [k for k, v in cls.defaults.items() if isinstance(v, float)]
        assert all(cls.hparam_range(k) is not None for k in floats), name


@pytest.mark.parametrize("name", WITH_BETA)
@pytest.mark.parametrize("beta", ["nan", "-1", "0", "1e999", "-inf", float("nan"), float("inf"), -0.5])
def test_beta_must_be_positive_and_finite_in_every_method(name, beta):
    with pytest.raises(HarnessError, match=f"method '{name}': hyperparameter beta=.* must be a finite number > 0"):
        METHODS.get(name)(beta=beta)


@pytest.mark.parametrize("name", WITH_BETA)
def test_a_positive_beta_is_accepted(name):
    assert METHODS.get(name)(beta="0.25").hparams["beta"] == 0.25


@pytest.mark.parametrize(("name", "key", "bad", "good"), [
    ("robust", "label_smoothing", ["0.5", "-0.1", "nan"], ["0", "0.49"]),
    ("cdpo", "label_smoothing", ["0.5", "1", "inf"], ["0", "0.3"]),
    ("simpo", "gamma", ["-0.1", "nan"], ["0", "5"]),
    ("dpo_nll", "alpha", ["-1", "inf"], ["0", "2"]),
    ("mdpo", "delta", ["nan", "inf"], ["-1", "0.5"]),
])
def test_each_hyperparameter_is_checked_against_its_range(name, key, bad, good):
    cls = METHODS.get(name)
    for value in bad:
        with pytest.raises(HarnessError, match=f"{key}={re.escape(value)} must be"):
            cls(**{key: value})
    for value in good:
        assert cls(**{key: value}).hparams[key] == float(value)


def test_the_message_echoes_what_was_typed_and_cuts_a_long_value():
    with pytest.raises(HarnessError, match=r"beta=1e999 must be a finite number > 0$"):
        METHODS.get("dpo")(beta="1e999")
    with pytest.raises(HarnessError) as caught:
        METHODS.get("dpo")(beta="9" * 120_000)
    assert len(str(caught.value)) < 300 and "(120000 chars)" in str(caught.value)


def test_methods_listing_shows_the_ranges():
    from harness.cli.commands.methods import method_rows, option_rows

    rows = {r["option"]: r["range"] for r in option_rows(method_rows(["robust"])[0])}
    assert rows == {"beta": "> 0", "label_smoothing": "[0, 0.5)"}


def _documented_ranges() -> dict[str, str]:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("### Hyperparameter ranges", 1)[1].split("\n\n")
    table = next(block for block in section if block.startswith("| name | ranges |"))
    rows = {}
    for line in table.splitlines()[2:]:
        name, ranges = (cell.strip() for cell in line.strip("|").split("|"))
        rows[name.strip("`")] = re.sub(r"\s*\(.*\)$", "", ranges)  # drop notes such as mdpo's anchor
    return rows


def test_docs_list_every_built_in_methods_ranges_as_declared():
    documented = _documented_ranges()
    for name in METHODS.names():
        if METHODS.origin(name) != "medpo-harness":
            continue  # a plugin's methods are documented by the plugin
        declared = ", ".join(f"`{h['name']}` {h['range']}" for h in METHODS.get(name).hparams_help() if h["range"])
        assert documented.get(name) == (declared or "—"), name
