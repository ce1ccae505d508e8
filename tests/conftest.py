"""Shared fixtures.

``shared_data`` is the real data folder beside the project (``../shared/data``; ``HARNESS_SHARED_DATA``
overrides it); tests that need it skip with the reason when it is absent. Every test session writes under
its own temporary ``HARNESS_HOME`` so nothing touches the user's cache.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path:
    return Path(os.environ.get("HARNESS_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = _shared_data()
    if not path.is_dir():
        pytest.skip(f"real data folder not found at {path} (set HARNESS_SHARED_DATA)")
    return path


@pytest.fixture(scope="session", autouse=True)
def isolated_harness_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("harness_home")
    old = os.environ.get("HARNESS_HOME")
    os.environ["HARNESS_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("HARNESS_HOME", None)
    else:
        os.environ["HARNESS_HOME"] = old


@pytest.fixture(scope="session")
def tiny_model_dir(isolated_harness_home) -> Path:
    """The trained built-in ``tiny`` model (built and trained on the synthetic suite once per session)."""
    from harness.builtin_models import ensure_tiny

    return ensure_tiny()
