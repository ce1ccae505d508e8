"""Fixtures for the training tests: a tiny LLaVA, images, pairs and a small local DPO method."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers import make_pairs, save_images  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """An untrained built-in ``tiny`` model (``harness.models.tiny``)."""
    from harness.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory) -> Path:
    return save_images(tmp_path_factory.mktemp("images"))


@pytest.fixture
def pairs():
    return make_pairs(8)
