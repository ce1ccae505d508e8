"""Export a Hugging Face Space: app.py, requirements.txt, README.md with front matter, and a snapshot.

The folder is self-contained: the leaderboard's display modules (which never import the harness) are
copied into ``DIR/leaderboard/``, and ``results.json`` holds the approved runs with the metric, task and
method metadata the display needs. ``python app.py`` in the folder serves it (``PORT``/``HOST`` or
``GRADIO_SERVER_PORT``/``GRADIO_SERVER_NAME`` choose where).
"""

from __future__ import annotations

import logging
import shutil
import sys
from importlib import metadata
from pathlib import Path

from harness.core.errors import HarnessError
from harness.core.io import atomic_write, standard_json
from harness.core.secrets import redact

log = logging.getLogger(__name__)

VENDORED = ("__init__.py", "app.py", "data.py", "method_table.py", "plots.py", "predictions.py", "cite.py")
SNAPSHOT = "results.json"

APP_PY = '''"""Leaderboard Space: serves the approved results snapshot in results.json (read-only)."""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the vendored leaderboard package beside this file wins

from leaderboard.app import build_app, launch  # noqa: E402

demo = build_app(snapshot=HERE / "results.json")

if __name__ == "__main__":
    host = os.environ.get("HOST") or os.environ.get("GRADIO_SERVER_NAME") or "0.0.0.0"
    port = int(os.environ.get("PORT") or os.environ.get("GRADIO_SERVER_PORT") or 7860)
    launch(demo, host=host, port=port)
'''

FRONT_MATTER = {"emoji": "🩻", "colorFrom": "blue", "colorTo": "green", "sdk": "gradio", "app_file": "app.py",
                "pinned": False, "license": "apache-2.0"}
# the Hub shows it on the Space's card and caps it at 60 characters; the tag lists the Space among leaderboards
SHORT_DESCRIPTION = "Medical VLM preference optimization: Med-VQA and reports"
TAGS = ["leaderboard"]
# what the vendored display code imports; pinned to the versions this export was made (and tested) with
REQUIREMENTS = ("gradio", "pandas", "pillow")

README_BODY = """
# {heading}

A read-only snapshot of the approved runs of the medical VLM preference-optimization harness
({runs} runs, exported {stamp}). Values are in display units with bootstrap 95% intervals; Δ columns
compare each run with the base run recorded in its provenance.

Run locally with `pip install -r requirements.txt && python app.py` (Python {python}). New results are
submitted with `harness submit FILE` against the maintainers' store and appear here after approval and a
new export.
"""


def python_version() -> str:
    """The Space's Python: the exporting interpreter's major.minor, which the pins below install on."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def requirements() -> str:
    return "".join(f"{name}=={metadata.version(name)}\n" for name in REQUIREMENTS)


def front_matter(title: str, gradio: str) -> str:
    """The Space's YAML header, written by a YAML library so any title (``#``, ``:``, quotes) stays a string."""
    import yaml

    data = {"title": title, "short_description": SHORT_DESCRIPTION, **FRONT_MATTER, "sdk_version": gradio,
            "python_version": python_version(), "tags": list(TAGS)}
    return "---\n" + yaml.safe_dump(data, allow_unicode=True, sort_keys=False) + "---\n"


def export_space(directory: str | Path, store, title: str = "MedPO leaderboard",
                 studies: str | Path | None = None) -> Path:
    """Write the Space folder from the store's approved runs (and the studies in ``studies``); returns it.

    Files and folders get the modes the user's umask gives (0644 and 0755 under the usual 022). The snapshot
    is standard JSON: a NaN or infinite number (a study's undefined sd) is written as null.
    """
    from datetime import datetime, timezone

    from leaderboard.app import BoardSource
    from leaderboard.data import benchmark_cards

    title = " ".join(str(title).split())
    if not title:
        raise HarnessError("--title is empty")
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()) and not (directory / SNAPSHOT).exists():
        raise HarnessError(f"{directory} exists and is not an exported Space: choose an empty folder")
    board = BoardSource(store=store.path, studies=studies).board
    board.cards = benchmark_cards(board.results)
    snapshot = board.to_snapshot("approved")
    snapshot["exported_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    package = directory / "leaderboard"
    package.mkdir(parents=True, exist_ok=True)
    source = Path(__file__).resolve().parent
    for name in VENDORED:
        shutil.copyfile(source / name, package / name)
    with atomic_write(directory / SNAPSHOT) as handle:
        handle.write(standard_json(redact(snapshot), indent=2, ensure_ascii=False))
    gradio = metadata.version("gradio")
    with atomic_write(directory / "requirements.txt") as handle:
        handle.write(requirements())
    with atomic_write(directory / "app.py") as handle:
        handle.write(APP_PY)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    with atomic_write(directory / "README.md") as handle:
        handle.write(front_matter(title, gradio) + README_BODY.format(
            heading=title.replace("<", "&lt;"), runs=len(snapshot["runs"]), stamp=stamp, python=python_version()))
    log.info("exported %d approved runs to %s", len(snapshot["runs"]), directory)
    return directory

