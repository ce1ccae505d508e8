"""Built-ins register where they are defined or through the harness's own entry points, never by a lower module
naming a higher one: the pyproject declarations and the registries agree, a source checkout reads its own
pyproject (no reinstall after a pull), metrics register with ``@metric`` and listing them stays cheap."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

import harness.core.registry as registry
from harness.core.registry import HOME_DISTRIBUTION, Registry, declared_entry_points

REPO = Path(__file__).resolve().parents[1]
DECLARED = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]


@pytest.mark.parametrize(("group", "kind"), [("harness.tasks", "task"), ("harness.models", "model")])
def test_the_declared_built_ins_are_registered_from_the_source_tree(group, kind):
    fresh = Registry(kind, entry_point_group=group)
    assert set(DECLARED[group]) <= set(fresh.names())
    for name, target in DECLARED[group].items():
        assert fresh.origin(name) == HOME_DISTRIBUTION, name
        module, _, attr = target.partition(":")
        assert fresh.get(name) is getattr(__import__(module, fromlist=[attr]), attr), name


def test_the_probe_tasks_and_built_in_models_reach_the_registries():
    from harness.models.registry import MODELS
    from harness.tasks import TASKS

    assert {"synth_probe", "slake_probe"} <= set(TASKS.names())
    assert TASKS.get("synth_probe").name == "synth_probe" and TASKS.get("slake_probe").name == "slake_probe"
    assert {"hf", "tiny", "testbed"} <= set(MODELS.names())
    assert MODELS.get("tiny").__name__ == "load_tiny"


def test_a_checkout_reads_its_own_pyproject_not_stale_metadata(monkeypatch):
    class Dist:
        name = HOME_DISTRIBUTION

    class Stale:  # what an editable install made before the probe tasks moved to entry points would hold
        name, value, dist = "old_task", "harness.tasks.gone:TASK", Dist()

    monkeypatch.setattr(registry, "entry_points", lambda group: [Stale()])
    found = declared_entry_points("harness.tasks")
    assert {(d, n, v) for d, n, v in found} == {(HOME_DISTRIBUTION, n, v) for n, v in DECLARED["harness.tasks"].items()}
    monkeypatch.setattr(registry, "_source_entry_points", lambda: None)  # an installed wheel: its metadata
    assert declared_entry_points("harness.tasks") == [(HOME_DISTRIBUTION, "old_task", "harness.tasks.gone:TASK")]


def test_the_study_reference_is_a_declared_method_and_the_default():
    from harness.experiments.study.runner import StudyConfig, parse_methods
    from harness.methods import REFERENCE_GROUP, default_reference

    (name, target), = DECLARED[REFERENCE_GROUP].items()
    assert DECLARED["harness.methods"][name] == target  # the method's own entry, under its own name
    assert default_reference() == name
    assert StudyConfig(methods=parse_methods("base")).reference == name
    assert StudyConfig(methods=parse_methods("base"), reference="ipo").reference == "ipo"


def test_a_study_of_the_base_model_alone_checks_its_tasks_without_a_method(monkeypatch):
    from harness.core.errors import HarnessError
    from harness.experiments.pipeline import RunConfig
    from harness.experiments.study.runner import StudyConfig, parse_methods, validate
    from harness.methods import METHODS

    def no_method(name):
        raise AssertionError(f"validation of a base-only study loaded method '{name}'")

    monkeypatch.setattr(METHODS, "get", no_method)
    config = StudyConfig(methods=parse_methods("base"), run=RunConfig(tasks=("synth_vqa",), eval_split="nope"),
                         lr_rule="fixed")
    with pytest.raises(HarnessError, match="--eval-split 'nope': task 'synth_vqa' has no such split"):
        validate(config)
    with pytest.raises(HarnessError, match="unknown task 'synth_vq'"):
        validate(StudyConfig(methods=parse_methods("base"), run=RunConfig(tasks=("synth_vq",)), lr_rule="fixed"))


def test_every_built_in_metric_registers_where_it_is_defined():
    from harness.metrics import METRICS, get_metric
    from harness.metrics.registry import MODULES

    for module in MODULES:
        source = (REPO / Path(*module.split("."))).with_suffix(".py").read_text()
        assert "@metric\n" in source or "metric(Metric(" in source, module
    assert "register_lazy" not in (REPO / "harness/metrics/registry.py").read_text()  # no list of strings
    names = METRICS.names()  # other tests in this process may have registered more: the exact count of
    # built-ins (34) is checked in a fresh process below
    assert {"bleu_4", "pope_f1", "finding_f1", "chexpert_f1_macro", "open_f1"} <= set(names)
    for name in names:
        metric = get_metric(name)
        assert metric.name == name and metric.compute is not None
    assert get_metric("pope_f1").items.family == "pope" and get_metric("meteor").no_items
    assert get_metric("rouge_l").items is None and get_metric("false_finding_rate").items is None


def test_a_metric_vqa_lookup_imports_no_report_scorer_and_listing_imports_nothing_heavy():
    probe = """
import json, sys
from harness.metrics import get_metric, METRICS
get_metric("closed_accuracy")
first = sorted(m for m in sys.modules if m.startswith("harness.metrics."))
names = METRICS.names()
heavy = sorted(m for m in ("torch", "transformers", "datasets", "evaluate", "scipy", "PIL", "pandas")
               if m in sys.modules)
print(json.dumps({"first": first, "names": len(names), "heavy": heavy}))
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert "harness.metrics.vqa" in report["first"] and "harness.metrics.report" not in report["first"]
    assert report["names"] == 34 and report["heavy"] == []


def test_entries_registered_in_modules_precede_a_plugins_claim(monkeypatch, caplog, tmp_path):
    import types

    class Dist:
        name = "aaa-plugin"

    class EntryPoint:
        name, value, dist = "shared", "evil_plugin:THING", Dist()

    holder = types.ModuleType("_layers_holder")
    monkeypatch.setitem(sys.modules, "_layers_holder", holder)
    (tmp_path / "_layers_defs.py").write_text(
        "import _layers_holder\n_layers_holder.REG.register('shared', 42)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "entry_points", lambda group: [EntryPoint()])
    holder.REG = Registry("thing", entry_point_group="harness.things", modules=("_layers_defs",))
    with caplog.at_level("WARNING"):
        assert holder.REG.get("shared") == 42  # the module first, then the entry points
        assert holder.REG.names() == ["shared"]  # the plugin's claim read, and refused
    assert holder.REG.origin("shared") is None and "evil_plugin:THING" in caplog.text and "ignored" in caplog.text


def test_evaluate_modules_are_generated_from_one_template(monkeypatch, tmp_path):
    from harness.core.errors import HarnessError
    from harness.metrics import evaluate_module_path
    from harness.metrics.suite import EVALUATE_TEMPLATE

    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    folder = evaluate_module_path("pope_f1")  # every registered metric has one
    script = folder / "pope_f1.py"
    assert folder == tmp_path / "evaluate_modules" / "pope_f1" and script.read_text() == EVALUATE_TEMPLATE.format(
        name="pope_f1")
    assert 'metric_name = "pope_f1"' in script.read_text()
    compile(script.read_text(), str(script), "exec")
    script.write_text("edited")
    evaluate_module_path("pope_f1")
    assert script.read_text() == EVALUATE_TEMPLATE.format(name="pope_f1")  # content, not presence, decides
    with pytest.raises(HarnessError, match="unknown metric 'pope_f2'"):
        evaluate_module_path("pope_f2")
    assert not list((REPO / "harness" / "metrics").glob("evaluate_modules/*/*.py"))  # no copies in the source
