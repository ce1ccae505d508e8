"""The pytest plugin, run in an isolated pytester session with ``-p harness.regress.pytest_plugin``."""

import pytest

pytest_plugins = ["pytester"]

TEST_FILE = """
def test_gate(factuality_gate):
    comparison = factuality_gate({candidate!r}, metrics=["closed_accuracy"], n_boot=300)
    assert comparison.rows
"""


@pytest.fixture
def gate_files(tmp_path, make_files, item_difficulty):
    _, worse = make_files(tmp_path / "worse", item_difficulty, item_difficulty * 0.6, 0, 1)
    base, same = make_files(tmp_path / "same", item_difficulty, item_difficulty, 0, 0)
    return base, same, worse


def test_gate_fails_a_regressed_candidate_and_passes_the_baseline_itself(pytester, gate_files):
    base, same, worse = gate_files
    pytester.makepyfile(test_bad=TEST_FILE.format(candidate=worse), test_good=TEST_FILE.format(candidate=same))
    report = pytester.path / "reports"
    result = pytester.runpytest("--factuality-baseline", base,
                                "--factuality-report", str(report))
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*factuality regressed against the baseline:*", "*vqa_rad/closed_accuracy*"])
    reports = {p.name: p.read_text() for p in report.iterdir()}
    assert len(reports) == 4  # a markdown and a JUnit file per test
    bad_md = next(text for name, text in reports.items() if name.endswith("test_bad.py_test_gate.md"))
    good_md = next(text for name, text in reports.items() if name.endswith("test_good.py_test_gate.md"))
    assert "**REGRESSION in 1 of 1 metrics" in bad_md and "**PASS" in good_md


def test_gate_without_a_baseline_fails_with_a_clear_message(pytester, gate_files):
    pytester.makepyfile(TEST_FILE.format(candidate=gate_files[1]))
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*factuality_gate needs a baseline*"])


def test_an_error_inside_the_gate_fails_the_test_in_one_line(pytester, gate_files):
    """Not a plugin error with a traceback (the gate's old overflow errored the whole session out)."""
    base, same, _ = gate_files
    pytester.makeconftest("""
import importlib
import pytest

@pytest.fixture(autouse=True)
def broken(monkeypatch):
    def fail(*args, **kwargs):
        raise OverflowError("int too large to convert to float")
    monkeypatch.setattr(importlib.import_module("harness.regress.compare"), "paired_bootstrap", fail)
""")
    pytester.makepyfile(TEST_FILE.format(candidate=same))
    result = pytester.runpytest("--factuality-baseline", base)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*factuality gate failed: OverflowError: int too large*"])
