"""Fixtures for the method tests: ``LogProbs`` built from summed log-probs and token counts."""

from __future__ import annotations

import math

import pytest
import torch

from harness.curation.preferences import PreferencePair
from harness.methods.base import LogProbs


def _logprobs(chosen, rejected, chosen_tokens, rejected_tokens, extra=None, requires_grad=False) -> LogProbs:
    def t(values):
        return torch.tensor(values, dtype=torch.float64, requires_grad=requires_grad)

    c, r = t(chosen), t(rejected)
    ct = torch.tensor(chosen_tokens, dtype=torch.float64)
    rt = torch.tensor(rejected_tokens, dtype=torch.float64)
    return LogProbs(c, r, c / ct, r / rt, ct, rt, extra={k: t(v) for k, v in (extra or {}).items()})


@pytest.fixture
def make_logprobs():
    """``make_logprobs(chosen, rejected, chosen_tokens, rejected_tokens, extra=None)``; means are sum / tokens."""
    return _logprobs


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """The untrained tiny LLaVA (a root-level fixture of the same name may replace this one)."""
    from harness.models import tiny

    return tiny.build_tiny_model(tmp_path_factory.mktemp("methods_tiny"))


@pytest.fixture(scope="session")
def one_step_images(tmp_path_factory):
    import numpy as np
    from PIL import Image

    folder = tmp_path_factory.mktemp("one_step_images")
    rng = np.random.default_rng(0)
    for name in ("scan", "noised"):
        Image.fromarray(rng.integers(0, 255, (36, 40, 3), dtype=np.uint8)).save(folder / f"{name}.png")
    return folder


def pairs() -> list[PreferencePair]:
    prompt = "is there a lesion in the left lung?\nAnswer yes or no."
    return [
        PreferencePair(id="t0", image="scan.png", prompt=prompt, chosen="yes there is a mass", rejected="no",
                       weight=0.8, kind="text"),
        PreferencePair(id="v0", image="scan.png", prompt=prompt, chosen="yes there is a mass",
                       rejected="yes there is a mass", rejected_image="noised.png", weight=1.2, kind="visual"),
    ]


def lora_b_changed(adapter_path) -> bool:
    from safetensors.torch import load_file

    files = list(adapter_path.glob("*.safetensors"))
    assert files, f"no adapter weights saved in {adapter_path}"
    tensors = {k: v for f in files for k, v in load_file(f).items() if "lora_B" in k}
    assert tensors, "the adapter holds no lora_B weights"
    return any(bool(t.abs().sum() > 0) for t in tensors.values())


def train_one_step(model_dir, method, image_root, output_dir):
    from harness.training import TrainConfig, train_preference

    config = TrainConfig(lr=1e-2, max_steps=1, batch_size=2, warmup_ratio=0.0, lora_r=4, max_length=96,
                         merge_lora=False)
    from harness.models.hf import load_hf_model

    model = load_hf_model(model_dir, device="cpu", dtype=config.precision)
    return train_preference(model, method, pairs(), image_root, output_dir, config)


def assert_one_good_step(result):
    assert len(result.history) == 1
    assert math.isfinite(result.history[0]["loss"])
    assert result.adapter_path is not None and lora_b_changed(result.adapter_path)


@pytest.fixture
def one_step(tiny_model_dir, one_step_images):
    """``one_step(method, output_dir)``: train one step, check it (finite loss, LoRA moved), return the result.

    peft starts every ``lora_B`` at exactly zero, so a non-zero ``lora_B`` in the saved adapter proves the
    step changed the trainable parameters. The batch holds a text pair and a visual pair (its own noised
    image), so CoPO and mDPO use both routes to the corrupted image.
    """
    def run(method, output_dir):
        result = train_one_step(tiny_model_dir, method, one_step_images, output_dir)
        assert_one_good_step(result)
        return result

    return run
