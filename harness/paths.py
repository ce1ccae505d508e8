"""Where the harness reads data and writes everything else.

``HARNESS_HOME`` (default ``~/.cache/harness``) holds the results store, cached models, preference pairs
and run directories. ``HARNESS_DATA`` (or ``--data-dir``) is the folder holding one sub-folder per dataset
(``vqa_rad/``, ``slake/``, ``iu_xray/``, ``mimic_cxr/``); ``HARNESS_DATA_<TASK>`` overrides one task's folder.
"""

from __future__ import annotations

import os
from pathlib import Path


def harness_home() -> Path:
    home = Path(os.environ.get("HARNESS_HOME", Path.home() / ".cache" / "harness")).expanduser()
    home.mkdir(parents=True, exist_ok=True)
    return home


def data_root(data_dir: str | Path | None = None) -> Path | None:
    """The data directory from the argument, else ``HARNESS_DATA``, else None."""
    value = data_dir if data_dir is not None else os.environ.get("HARNESS_DATA")
    return Path(value).expanduser() if value else None


def task_data_dir(task: str, folder: str, data_dir: str | Path | None = None) -> Path | None:
    """One task's folder: ``HARNESS_DATA_<TASK>`` if set, else ``<data root>/<folder>``."""
    override = os.environ.get(f"HARNESS_DATA_{task.upper()}")
    if override:
        return Path(override).expanduser()
    root = data_root(data_dir)
    return root / folder if root is not None else None


def runs_dir() -> Path:
    path = harness_home() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path
