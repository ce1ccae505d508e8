"""The lean core: the CLI's core commands import no optional package, and an optional part whose package is
missing says, in one line, which extra installs it."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from harness.cli import main
from harness.core.errors import HarnessError

OPTIONAL = ("pandas", "openai", "httpx", "gradio", "wandb", "mlflow", "tensorboard", "lm_eval")

PROBE = f"OPTIONAL = {OPTIONAL!r}" + """
import contextlib, io, json, sys
import harness
from harness.cli import main
codes = []
for argv in (["--help"], ["tasks"], ["methods"]):
    with contextlib.redirect_stdout(io.StringIO()) as out:
        try:
            codes.append(main(argv))
        except SystemExit as exc:
            codes.append(exc.code)
    codes.append(len(out.getvalue()) > 0)
print(json.dumps({"codes": codes, "loaded": sorted(m for m in OPTIONAL if m in sys.modules)}))
"""


def test_core_commands_import_no_optional_package():
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["codes"] == [0, True, 0, True, 0, True]  # each command ran and printed its listing
    assert report["loaded"] == []


def _without(monkeypatch, missing: str) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == missing else real(name, *a))


def test_the_openai_model_without_httpx_names_the_extra(monkeypatch):
    from harness.models.openai_model import OpenAIChatModel

    _without(monkeypatch, "httpx")
    with pytest.raises(HarnessError) as error:
        OpenAIChatModel("gpt-4o-mini")
    assert str(error.value) == ("the OpenAI-compatible endpoint model (openai:<model>, LLM judges) needs the httpx "
                                "package, which is not installed: pip install 'medpo-harness[openai]'")


def test_leaderboard_serve_without_gradio_exits_2_in_one_line(monkeypatch, capsys, tmp_path):
    _without(monkeypatch, "gradio")
    assert main(["leaderboard", "serve", "--store", str(tmp_path / "s.sqlite")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: harness leaderboard serve needs the gradio package, which is not installed: "
                   "pip install 'medpo-harness[leaderboard]'"]
