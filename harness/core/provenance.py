"""Where a result came from: package versions, the git commit of the code, and the seeds.

Every run record in the results store carries these, so a number can be traced to the code and the
libraries that produced it. Nothing here imports torch unless a seed is set.
"""

from __future__ import annotations

import logging
import random
import subprocess
from importlib import metadata
from pathlib import Path

log = logging.getLogger(__name__)

# The libraries whose versions change generated text or scores.
TRACKED_PACKAGES = (
    "medpo-harness",
    "torch",
    "transformers",
    "tokenizers",
    "peft",
    "accelerate",
    "datasets",
    "numpy",
    "pillow",
    "pycocoevalcap",
    "openai",
)


def package_versions(packages: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    """Installed version of each package that is installed (absent ones are left out)."""
    versions = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_commit(path: str | Path | None = None) -> str | None:
    """The commit of the checkout holding ``path`` (default: this package), ``-dirty`` when it has edits.

    None when the code is not in a git checkout (an installed wheel) or git is missing.
    """
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where, capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and (when installed) torch, so sampling and bootstraps repeat."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency, but keep this usable without it
        return
    torch.manual_seed(seed)


def provenance(seed: int | None = None) -> dict:
    """The fields a ``RunRecord`` takes: versions, harness version, git commit and seed."""
    from harness import __version__

    return {"versions": package_versions(), "harness_version": __version__, "git_commit": git_commit(), "seed": seed}
