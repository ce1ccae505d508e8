"""``harness study``: several methods x several training seeds, then a comparison over test items and seeds.

``runner`` runs the study resumably (``$HARNESS_HOME/studies/<study_id>/study.json``), each seed with its own
pair draw by default; ``analysis`` builds the per-(method, task, metric) records with the tests of
``harness.stats.seeds`` (item and seed variance, multiplicity control); ``plot`` draws the effect plot as
SVG. See docs/study.md.
"""

from __future__ import annotations

from harness.experiments.study.runner import (
    BASE,
    PAIR_DRAWS,
    MethodEntry,
    Study,
    StudyConfig,
    load_study,
    parse_methods,
    run_study,
)

__all__ = ["BASE", "PAIR_DRAWS", "MethodEntry", "Study", "StudyConfig", "load_study", "parse_methods", "run_study",
           "report"]


def report(study: Study, store=None, *, n_boot: int = 2000, correction: str = "holm") -> dict:
    """Compare the study's finished runs and write ``results.json``, ``table.md`` and ``effects.svg`` beside
    ``study.json``. Returns ``{"records", "rows", "files"}``; record values are in display units."""
    from harness.core.io import atomic_write, write_json
    from harness.experiments.study.analysis import compare, format_rows, json_records, to_markdown
    from harness.experiments.study.plot import effect_svg
    from harness.results.store import ResultsStore

    store = store if isinstance(store, ResultsStore) else ResultsStore(store or study.state.get("store"))
    records = json_records(compare(study, store, n_boot=n_boot, correction=correction))
    rows = format_rows(records, study.state.get("reference"))
    files = {"json": study.folder / "results.json", "md": study.folder / "table.md",
             "svg": study.folder / "effects.svg"}
    write_json(files["json"], records)
    with atomic_write(files["md"]) as handle:
        handle.write(to_markdown(rows))
    with atomic_write(files["svg"]) as handle:
        handle.write(effect_svg(records))
    return {"records": records, "rows": rows, "files": files}
