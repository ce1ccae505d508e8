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

from harness.core.registry import Registry
from harness.methods import METHODS

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "examples" / "harness-plugin-example"


def run_cli(*args: str, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), env.get("PYTHONPATH")]))
    code = "import sys; from harness.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False)


def test_methods_lists_every_registered_method_with_its_package_and_citation(capsys):
    from harness.cli import main

    assert main(["methods", "--format", "json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(rows) == set(METHODS.names())
    for name, row in rows.items():
        assert not row["note"], (name, row["note"])
        assert "arXiv:" in row["citation"], name
    assert rows["dpo"]["defaults"] == {"beta": 0.1} and rows["dpo"]["package"] == "medpo-harness"
    assert rows["sft"]["pair_kinds"] == ["sft"] and rows["simpo"]["reference_free"] is True
    assert rows["povid"]["pair_builder"] is True and rows["dpo"]["builder_options"] == []


def test_built_in_methods_register_through_the_entry_points_of_pyproject():
    import tomllib

    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]["harness.methods"]
    fresh = Registry("method", entry_point_group="harness.methods")  # nothing registered in code
    assert set(declared) <= set(fresh.names())
    for name, target in declared.items():
        assert fresh.origin(name) == "medpo-harness", name
        assert fresh.get(name).name == name, f"entry point '{name}' -> {target} has another name"
    # one SFT: the registered method is the loss harness sft and the tiny model's training use
    from harness.methods import sft

    assert sft.SFT is METHODS.get("sft") and "arXiv:2203.02155" in sft.SFT.citation
    # the harness itself names no method: the old hard-coded table is gone
    assert "baselines" not in (REPO / "harness" / "methods" / "__init__.py").read_text()


def test_every_option_of_every_method_is_declared_with_help():
    for name in METHODS.names():
        cls = METHODS.get(name)
        missing = [k for k in cls.defaults if not cls.hparam_help.get(k, "").strip()]
        assert not missing, f"method '{name}': hyperparameter(s) {missing} have no hparam_help"
        assert set(cls.hparam_help) <= set(cls.defaults), f"method '{name}': help for unknown hyperparameters"
        if cls.has_pair_builder():
            assert cls.builder_options is not None, f"method '{name}' builds pairs but declares no builder options"
            options = cls.builder_options_help()
            assert options and all(o["help"].strip() for o in options), name
            defaults = cls.parse_builder_options({})  # the declared defaults are valid options
            for option in options:
                if hasattr(defaults, option["name"]):
                    assert getattr(defaults, option["name"]) == option["default"], (name, option["name"])


def test_methods_shows_options_with_help_for_named_methods():
    shown = run_cli("methods", "mmedpo", "sima")
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert "package medpo-harness" in text and "arXiv:2412.06141" in text
    assert "hyperparameter (--option)" in text and get_help("mmedpo", "beta") in text
    for name, option in (("mmedpo", "weighting"), ("mmedpo", "ablation"), ("sima", "critic")):
        assert next(o for o in METHODS.get(name).builder_options_help() if o["name"] == option)["help"][:40] in text
    unknown = run_cli("methods", "dpoo")
    assert unknown.returncode == 2 and "did you mean 'dpo'" in unknown.stderr


def get_help(method: str, key: str) -> str:
    return METHODS.get(method).hparam_help[key]


def test_methods_table_and_no_torch_import():
    code = ("import sys; from harness.cli.commands.methods import method_rows; method_rows(); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False", "listing methods imported torch"
    table = run_cli("methods")
    assert table.returncode == 0 and table.stdout.splitlines()[0].split()[:3] == ["name", "package", "pair_kinds"]


BUILDERS = ("mmedpo", "povid", "self_rewarding", "stllava_med", "sima", "fisao")


@pytest.mark.parametrize("method", BUILDERS)
def test_curate_lists_and_validates_every_builders_options(method, capsys):
    from harness.cli import main

    assert main(["curate", "--method", method, "--list-options", "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["option"] for r in listed] == [o["name"] for o in METHODS.get(method).builder_options_help()]
    option = "batch_size" if method != "povid" else listed[0]["option"]
    typo = option[:-1] + option[-1] * 2  # one letter doubled at the end
    assert main(["curate", "--method", method, "--task", "synth_vqa", "--option", f"{typo}=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"no option '{typo}'" in err and f"did you mean '{option}'" in err


def test_curate_refuses_options_for_a_method_without_a_builder(capsys):
    from harness.cli import main

    assert main(["curate", "--method", "dpo", "--list-options"]) == 2
    assert "has no pair builder" in capsys.readouterr().err


def test_curate_gives_a_method_without_a_builder_the_verified_default_text_pairs(tmp_path, capsys):
    from harness.cli import main
    from harness.curation.preferences import read_pairs
    from harness.findings.labeler import label_report
    from harness.findings.synthetic import read_report

    assert main(["curate", "--method", "dpo", "--task", "synth_report", "--output-dir", str(tmp_path),
                 "--format", "json"]) == 0
    pairs = list(read_pairs(tmp_path / "pairs.jsonl"))
    assert pairs and all(p.kind == "text" and p.rejected != p.chosen for p in pairs)
    normal = [p for p in pairs if not read_report(p.chosen).asserted]
    assert len(normal) > len(pairs) / 2  # most synthetic cases are normal
    # a rejected report for a normal case must assert a finding, by the exact reader and by the labeler
    silent = [p for p in normal if not read_report(p.rejected).asserted
              or not any(v == 1 for k, v in label_report(p.rejected).items() if k not in ("No Finding", "Support Devices"))]
    assert len(silent) <= 0.02 * len(normal), silent[:3]
    assert '"skipped": 0' in capsys.readouterr().out


def test_mmedpo_ablation_expands_through_the_contract():
    mmedpo = METHODS.get("mmedpo")
    config = mmedpo.parse_builder_options({"ablation": "no-visual,no-weights", "max_items": "4"})
    assert (config.visual_pairs, config.text_pairs, config.weighting, config.max_items) == (False, True, "none", 4)
    assert mmedpo.parse_builder_options({}).visual_pairs is True
    assert not mmedpo.builder_needs_model({"ablation": "no-text"})
    assert mmedpo.builder_needs_model({"localizer": "saliency"})
    from harness.core.errors import HarnessError

    with pytest.raises(HarnessError, match="did you mean 'ablation'"):
        mmedpo.parse_builder_options({"ablaton": "no-text"})


def test_train_set_typo_is_one_line_with_a_suggestion(tmp_path, capsys):
    from harness.cli import main

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("")
    assert main(["train", "--method", "simpo", "--model", "tiny", "--pairs", str(pairs), "--set", "gama=0.5"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "no hyperparameter 'gama'; did you mean 'gamma'?" in err
    assert main(["train", "--method", "simpo", "--model", "tiny", "--pairs", str(pairs), "--set", "gamma"]) == 2
    assert "--option expects KEY=VALUE" in capsys.readouterr().err  # --set: the old spelling


def test_a_plugin_cannot_take_a_built_in_name(monkeypatch, caplog):
    import harness.core.registry as registry

    class Dist:
        def __init__(self, name):
            self.name = name

    class EntryPoint:
        def __init__(self, name, value, dist):
            self.name, self.value, self.dist = name, value, Dist(dist)

    found = [EntryPoint("dpo", "evil_plugin:DPO", "aaa-plugin"), EntryPoint("dpo", "baselines.dpo:DPO", "medpo-harness"),
             EntryPoint("mine", "evil_plugin:Mine", "aaa-plugin")]
    monkeypatch.setattr(registry, "entry_points", lambda group: found)
    monkeypatch.setattr(registry, "_source_entry_points", lambda: None)  # as installed: metadata only
    fresh = Registry("method", entry_point_group="harness.methods")
    with caplog.at_level("WARNING"):
        assert fresh.names() == ["dpo", "mine"]
    assert fresh.origin("dpo") == "medpo-harness" and fresh.origin("mine") == "aaa-plugin"
    assert "evil_plugin:DPO" in caplog.text and "ignored" in caplog.text


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
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    row = rows["dpo_shift"]
    assert row["package"] == "harness-plugin-example"
    assert "arXiv:2502.07599" in row["citation"] and row["defaults"] == {"beta": 0.1, "shift": 0.75}
    assert [h["name"] for h in row["hparams"]] == ["beta", "shift"] and all(h["help"] for h in row["hparams"])
    swap = rows["answer_swap"]
    assert swap["package"] == "harness-plugin-example" and swap["pair_builder"] is True
    assert [o["name"] for o in swap["builder_options"]] == ["same_type", "mirror", "max_items"]
    assert rows["dpo"]["package"] == "medpo-harness"  # built-ins unchanged beside the plugin


def test_plugin_builder_options_in_methods_and_curate(plugin_site):
    shown = run_cli("methods", "answer_swap", pythonpath=plugin_site)
    assert shown.returncode == 0, shown.stderr
    assert "package harness-plugin-example" in shown.stdout and "left-right mirrored image" in shown.stdout
    listed = run_cli("curate", "--method", "answer_swap", "--list-options", "--format", "json", pythonpath=plugin_site)
    assert listed.returncode == 0, listed.stderr
    assert {r["option"]: r["default"] for r in json.loads(listed.stdout)} == {
        "same_type": True, "mirror": False, "max_items": None}
    typo = run_cli("curate", "--method", "answer_swap", "--task", "synth_vqa", "--option", "mirorr=true",
                   pythonpath=plugin_site)
    # rejected before the task or a model is loaded: what the builder builds is checked in-process below
    assert typo.returncode == 2 and "did you mean 'mirror'" in typo.stderr and len(typo.stderr.splitlines()) == 1


@pytest.fixture
def answer_swap(plugin_site, monkeypatch):
    monkeypatch.syspath_prepend(str(plugin_site))
    return Registry("method", entry_point_group="harness.methods").get("answer_swap")


def test_plugin_builder_pairs_mean_what_they_say(answer_swap, tmp_path):
    import numpy as np
    from PIL import Image, ImageOps

    from harness.methods import PairContext

    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)) for _ in range(4)]
    samples = [
        {"id": "a", "image": images[0], "question": "Which lung?", "answer": "left lung", "answer_type": "open"},
        {"id": "b", "image": images[1], "question": "What finding?", "answer": "effusion", "answer_type": "open"},
        {"id": "c", "image": images[2], "question": "Any mass?", "answer": "yes", "answer_type": "closed"},
        {"id": "d", "image": images[3], "question": "Any effusion?", "answer": "no", "answer_type": "closed"},
    ]
    pairs = answer_swap().build_pairs(PairContext(task=None, samples=samples, model=None, output_dir=tmp_path,
                                                  options={"mirror": "true"}))
    by_id = {p.id: p for p in pairs}
    assert set(by_id) == {"a-swap", "b-swap", "c-swap", "d-swap", "a-mirror"}  # only "left lung" names a side
    for pair in pairs:  # image paths relative to output_dir, files written there
        assert not Path(pair.image).is_absolute() and (tmp_path / pair.image).is_file()
    assert (tmp_path / "answer_swap_pairs.jsonl").is_file()
    truth = {s["id"]: s for s in samples}
    for sample_id in "abcd":
        pair = by_id[f"{sample_id}-swap"]
        # chosen: the case's own answer; rejected: another case's answer of the same type, never the truth
        assert pair.chosen == truth[sample_id]["answer"] and pair.rejected != pair.chosen
        other = next(s for s in samples if s["answer"] == pair.rejected)
        assert other["answer_type"] == truth[sample_id]["answer_type"] and pair.kind == "text"
    mirror = by_id["a-mirror"]
    assert mirror.kind == "visual" and mirror.chosen == mirror.rejected == "left lung"
    with Image.open(tmp_path / mirror.image) as original, Image.open(tmp_path / mirror.rejected_image) as flipped:
        assert np.array_equal(np.asarray(flipped), np.asarray(ImageOps.mirror(original.convert("RGB"))))
        assert not np.array_equal(np.asarray(flipped), np.asarray(original))


def test_installed_plugin_trains_one_step(plugin_site, monkeypatch, one_step, tmp_path):
    monkeypatch.syspath_prepend(str(plugin_site))
    # a fresh registry reads the entry points now that the plugin is importable
    registry = Registry("method", entry_point_group="harness.methods")
    method = registry.get("dpo_shift")(shift=0.5)
    result = one_step(method, tmp_path / "run")
    # policy == reference before the step: -log sigmoid(0) = log 2 for each pair, weights average 1
    assert result.history[0]["loss"] == pytest.approx(math.log(2), rel=1e-5)

