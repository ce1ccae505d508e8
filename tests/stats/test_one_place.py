"""Every test, p-value, bootstrap and interval is defined in harness/stats/ (issue 24): other modules call it.

The check reads the source of the library packages and lists every function whose name says it computes a
statistic (p-value, bootstrap, interval, a named test or correction, an MDE) outside harness/stats/.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("harness", "baselines", "mmedpo", "leaderboard")
STATISTIC = re.compile(
    r"p_?value|bootstrap|interval|(^|_)ci($|_)|confidence|wilson|clopper|mcnemar|binom|holm|hochberg|bonferroni"
    r"|sign_flip|permutation_test|ttest|t_test|welch|z_test|chi2|ks_test|kstest|mann_whitney|wilcoxon"
    r"|minimum_detectable|(^|_)mde($|_)|(^|_)resample|significan")
# Names that match but compute no statistic, each with the reason.
ALLOWED = {
    "log_interval": "harness/training/loop.py: how many training steps between log lines",
    "significance": "leaderboard/data.py: a study's p-value and interval as a * mark (harness.stats.intervals.significant)",
    "_ci_map": "leaderboard/app.py: the stored intervals of the shown runs, scaled for display",
    "_ci_text": "leaderboard/data.py: a stored interval as text",
}


def _statistic_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [node.name for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and STATISTIC.search(node.name.lower()) and node.name not in ALLOWED]


def test_no_statistic_is_defined_outside_harness_stats():
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if (ROOT / "harness" / "stats") in path.parents:
                continue
            found += [f"{path.relative_to(ROOT)}: {name}" for name in _statistic_functions(path)]
    assert not found, "statistics defined outside harness/stats/ (move them there and call them):\n" + "\n".join(found)


def test_the_check_finds_what_it_looks_for(tmp_path):
    """It flags the functions the issue found in four places (and would have failed on main)."""
    sample = tmp_path / "old.py"
    sample.write_text("def sign_flip_test(d): ...\ndef binomial_two_sided_p(k, n): ...\ndef bootstrap_ci(s): ...\n"
                      "def wilson_interval(k, n): ...\ndef holm(p): ...\ndef minimum_detectable_effect(sd, n): ...\n"
                      "def mean_result(name, scores): ...\ndef log_interval(steps): ...\n")
    assert _statistic_functions(sample) == ["sign_flip_test", "binomial_two_sided_p", "bootstrap_ci",
                                            "wilson_interval", "holm", "minimum_detectable_effect"]
    assert _statistic_functions(ROOT / "harness" / "stats" / "intervals.py")  # the real ones match too
