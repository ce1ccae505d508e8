"""Fixtures for the metric tests: Java presence and the IU-Xray test references."""

from __future__ import annotations

import json
import random
import shutil

import pytest


@pytest.fixture(scope="session")
def java():
    if shutil.which("java") is None:
        pytest.skip("java not found on PATH: the PTB tokenizer and METEOR (pycocoevalcap) need a Java runtime")


@pytest.fixture(scope="session")
def iu_pairs(shared_data):
    """(predictions, references): IU-Xray test reports against a seeded shuffle of themselves, plus the
    edge cases a model produces (empty, punctuation only, a one-word answer)."""
    path = shared_data / "iu_xray" / "annotation.json"
    if not path.is_file():
        pytest.skip(f"IU-Xray annotation not found at {path}")
    references = [r["report"] for r in json.loads(path.read_text())["test"]]
    predictions = references[:]
    random.Random(0).shuffle(predictions)
    predictions[:3] = ["", "...", "No."]
    return predictions, references
