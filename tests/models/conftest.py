"""Fixtures shared by the model-adapter tests: a tokenizer trained here on real VQA-RAD text, tiny
checkpoints of each family (built once per session), and a few real VQA-RAD items with their images."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from families import CORPUS, build  # noqa: E402


@pytest.fixture(scope="session")
def vqa_rad_items(shared_data):
    """The first three VQA-RAD test questions with their PIL images."""
    from PIL import Image

    folder = shared_data / "vqa_rad"
    records = json.loads((folder / "testset.json").read_text(encoding="utf-8"))[:3]
    return [(Image.open(folder / "images" / r["image_name"]).convert("RGB"), r["question"], r) for r in records]


@pytest.fixture(scope="session")
def tiny_tokenizer(shared_data):
    from families import train_tokenizer

    records = json.loads((shared_data / "vqa_rad" / "testset.json").read_text(encoding="utf-8"))
    texts = [f"{r['question']} {r['answer']}" for r in records] + CORPUS
    return train_tokenizer(texts)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, tiny_tokenizer):
    """``tiny_checkpoint(family)``: the folder of a tiny saved checkpoint of that family (built once)."""
    built: dict[str, Path] = {}

    def get(family: str) -> Path:
        if family not in built:
            built[family] = build(family, tmp_path_factory.mktemp(f"tiny_{family}"), tiny_tokenizer)
        return built[family]

    return get
