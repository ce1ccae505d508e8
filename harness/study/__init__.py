"""``harness study``: several methods x several training seeds, then a paired comparison over items and seeds.

``runner`` runs the study resumably (``$HARNESS_HOME/studies/<study_id>/study.json``), ``analysis``
builds the per-(method, task, metric) records, ``stats`` holds the sign-flip test and the minimum
detectable effect, ``plot`` draws the effect plot as SVG. See docs/study.md.
"""

from __future__ import annotations

from harness.study.runner import BASE, MethodEntry, Study, StudyConfig, load_study, parse_methods, run_study

__all__ = ["BASE", "MethodEntry", "Study", "StudyConfig", "load_study", "parse_methods", "run_study", "report"]


def report(study: Study, store=None) -> dict:
    """Compare the study's finished runs and write ``results.json``, ``table.md`` and ``effects.svg`` beside
    ``study.json``. Returns ``{"records", "rows", "files"}``."""
    from harness.io import atomic_write, write_json
    from harness.results.store import ResultsStore
    from harness.study.analysis import compare, format_rows, json_records, to_markdown
    from harness.study.plot import effect_svg

    store = store if isinstance(store, ResultsStore) else ResultsStore(store or study.state.get("store"))
    records = json_records(compare(study, store))
    rows = format_rows(records, study.state.get("reference"))
    files = {"json": study.folder / "results.json", "md": study.folder / "table.md",
             "svg": study.folder / "effects.svg"}
    write_json(files["json"], records)
    with atomic_write(files["md"]) as handle:
        handle.write(to_markdown(rows))
    with atomic_write(files["svg"]) as handle:
        handle.write(effect_svg(records))
    return {"records": records, "rows": rows, "files": files}
