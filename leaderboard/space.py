"""Export a Hugging Face Space: app.py, requirements.txt, README.md with front matter, and a snapshot.

The folder is self-contained: the leaderboard's display modules (which never import the harness) are
copied into ``DIR/leaderboard/``, and ``results.json`` holds the approved runs with the metric, task and
method metadata the display needs. ``python app.py`` in the folder serves it (``PORT``/``HOST`` or
``GRADIO_SERVER_PORT``/``GRADIO_SERVER_NAME`` choose where).
"""

from __future__ import annotations

import json
import logging
import shutil
from importlib import metadata
from pathlib import Path

from harness.errors import HarnessError
from harness.io import atomic_write, write_json

log = logging.getLogger(__name__)

VENDORED = ("__init__.py", "app.py", "data.py", "plots.py", "predictions.py")
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

README = """---
title: {title}
emoji: 🩻
colorFrom: blue
colorTo: green
sdk: gradio
sdk_version: {gradio}
app_file: app.py
pinned: false
license: apache-2.0
---

# {title}

A read-only snapshot of the approved runs of the medical VLM preference-optimization harness
({runs} runs, exported {stamp}). Values are in display units with bootstrap 95% intervals; Δ columns
compare each run with its base model's own run.

Run locally with `pip install -r requirements.txt && python app.py`. New results are submitted with
`harness submit FILE` against the maintainers' store and appear here after approval and a new export.
"""


def export_space(directory: str | Path, store, title: str = "MedPO leaderboard") -> Path:
    """Write the Space folder from the store's approved runs; returns the folder."""
    from datetime import datetime, timezone

    from leaderboard.app import BoardSource

    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()) and not (directory / SNAPSHOT).exists():
        raise HarnessError(f"{directory} exists and is not an exported Space: choose an empty folder")
    board = BoardSource(store=store.path).board
    snapshot = board.to_snapshot("approved")
    package = directory / "leaderboard"
    package.mkdir(parents=True, exist_ok=True)
    source = Path(__file__).resolve().parent
    for name in VENDORED:
        shutil.copyfile(source / name, package / name)
    write_json(directory / SNAPSHOT, snapshot)
    gradio = metadata.version("gradio")
    pandas = metadata.version("pandas")
    with atomic_write(directory / "requirements.txt") as handle:
        handle.write(f"gradio=={gradio}\npandas>={pandas.split('.')[0]}.0\npillow\n")
    with atomic_write(directory / "app.py") as handle:
        handle.write(APP_PY)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    with atomic_write(directory / "README.md") as handle:
        handle.write(README.format(title=json.dumps(title)[1:-1], gradio=gradio, runs=len(snapshot["runs"]),
                                   stamp=stamp))
    log.info("exported %d approved runs to %s", len(snapshot["runs"]), directory)
    return directory
