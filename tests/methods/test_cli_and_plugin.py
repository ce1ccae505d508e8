"""``harness methods`` and the example plugin package installed through pip and its entry point.

The plugin is installed with ``pip install --no-deps --no-build-isolation --no-index --target DIR`` from a
copy of ``examples/harness-plugin-example`` (works offline, leaves the venv and the source tree untouched);
``DIR`` then goes on ``PYTHONPATH`` / ``sys.path``, where ``importlib.metadata`` finds its entry point.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.methods import METHODS
from harness.registry import Registry

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "examples" / "harness-plugin-example"


def run_cli(*args: str, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), env.get("PYTHONPATH")]))
    code = "import sys; from harness.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False)


def test_methods_lists_every_registered_method_with_its_citation(capsys):
    from harness.cli import main

    assert main(["methods", "--format", "json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(rows) == set(METHODS.names())
    for name, row in rows.items():
        if name == "mmedpo" and row.get("note"):
            continue  # another package's method; a load failure shows as a note, not a crash
        assert "arXiv:" in row["citation"], name
    assert rows["dpo"]["defaults"] == {"beta": 0.1} and rows["dpo"]["origin"] == "built-in"
    assert rows["sft"]["pair_kinds"] == ["sft"] and rows["simpo"]["reference_free"] is True
    assert rows["povid"]["pair_builder"] is True


def test_methods_table_and_no_torch_import():
    code = ("import sys; from harness.cli.commands.methods import method_rows; method_rows(); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False", "listing methods imported torch"
    table = run_cli("methods")
    assert table.returncode == 0 and table.stdout.splitlines()[0].split()[:2] == ["name", "pair_kinds"]


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    if shutil.which("pip", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("pip is not available in this environment")
    work = tmp_path_factory.mktemp("plugin")
    source = shutil.copytree(PLUGIN, work / "src", ignore=shutil.ignore_patterns("build", "*.egg-info"))
    site = work / "site"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "--quiet",
         "--target", str(site), str(source)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return site


def test_installed_plugin_is_listed_through_the_entry_point(plugin_site):
    without = run_cli("methods", "--format", "json")
    assert "dpo_shift" not in {row["name"] for row in json.loads(without.stdout)}
    listed = run_cli("methods", "--format", "json", pythonpath=plugin_site)
    assert listed.returncode == 0, listed.stderr
    row = next(r for r in json.loads(listed.stdout) if r["name"] == "dpo_shift")
    assert row["origin"] == "plugin (harness_plugin_example)"
    assert "arXiv:2502.07599" in row["citation"] and row["defaults"] == {"beta": 0.1, "shift": 0.75}


def test_installed_plugin_trains_one_step(plugin_site, monkeypatch, one_step, tmp_path):
    monkeypatch.syspath_prepend(str(plugin_site))
    # a fresh registry reads the entry points now that the plugin is importable
    registry = Registry("method", entry_point_group="harness.methods")
    method = registry.get("dpo_shift")(shift=0.5)
    result = one_step(method, tmp_path / "run")
    # policy == reference before the step: -log sigmoid(0) = log 2 for each pair, weights average 1
    assert result.history[0]["loss"] == pytest.approx(math.log(2), rel=1e-5)

