"""scripts/generation_split.py: the phases of a generate call add up to the call, and the answers do not change."""

from __future__ import annotations

import functools
import importlib.util
import time
from pathlib import Path

from PIL import Image

from harness.models.base import GenerationConfig

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "generation_split.py"


def _script():
    spec = importlib.util.spec_from_file_location("generation_split", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_split_phases_add_up_and_answers_are_unchanged(tiny_hf_dir):
    from harness.models.hf import load_hf_model

    images = [Image.new("L", (32, 32), 40), Image.new("L", (32, 32), 200)]
    prompts = ["Is there a mass?", "Where is the lesion located?"]
    config = GenerationConfig(max_new_tokens=4)
    vlm = load_hf_model(tiny_hf_dir, device="cpu")
    expected = vlm.generate(images, prompts, config)
    forwards = []
    original_forward = vlm.model.forward

    @functools.wraps(original_forward)  # generate() reads forward's signature
    def counted(*args, **kwargs):
        forwards.append(1)
        return original_forward(*args, **kwargs)

    vlm.model.forward = counted
    split = _script().Split(vlm, time.perf_counter)
    assert vlm.generate(images, prompts, config) == expected
    (call,) = split.calls
    phases = [call[name] for name in _script().PHASES]
    assert all(value >= 0 for value in phases)
    assert abs(sum(phases) - call["total"]) < 1e-9
    assert call["batch"] == 2 and call["steps"] == len(forwards) - 1 >= 0
