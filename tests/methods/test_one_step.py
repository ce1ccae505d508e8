"""One optimizer step of every registered method on the tiny model: finite loss, trainable weights changed.

Runs through the shared core (``harness.training.train_preference``) with LoRA. peft starts every
``lora_B`` at exactly zero, so a non-zero ``lora_B`` in the saved adapter proves the step changed the
trainable parameters. The batch holds one text pair and one visual pair (its own noised image), so CoPO
and mDPO exercise both routes to the corrupted image.
"""

from __future__ import annotations

import math

import pytest

from harness.methods import METHODS
from harness.preferences import PreferencePair

training = pytest.importorskip("harness.training", reason="the training core (harness.training) is not available")


@pytest.fixture(scope="module")
def image_root(tmp_path_factory):
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
    return train_preference(model_dir, method, pairs(), image_root, output_dir, config)


def assert_one_good_step(result):
    assert len(result.history) == 1
    assert math.isfinite(result.history[0]["loss"])
    assert result.adapter_path is not None and lora_b_changed(result.adapter_path)


# Under LoRA the policy equals the reference before the first step, so every log-ratio is 0 and the
# reference-based losses take known values; the pair weights 0.8 and 1.2 average to 1.
LOG2 = math.log(2)
FIRST_LOSS = {
    "dpo": LOG2, "povid": LOG2, "copo": LOG2, "cdpo": LOG2,
    "robust": LOG2,  # ((1 - e) log 2 - e log 2) / (1 - 2e) = log 2
    "ipo": 25.0,  # (0 - 1 / (2 * 0.1))^2
    "hinge": 1.0,  # max(0, 1 - 0)
    "mdpo": 3 * LOG2,  # DPO + CoPO + sigmoid anchor, each log 2
}


@pytest.mark.parametrize("name", [n for n in METHODS.names() if n != "mmedpo"])
def test_one_training_step(name, tiny_model_dir, image_root, tmp_path):
    """mmedpo has its own training tests (tests/mmedpo); every other registered method is checked here."""
    result = train_one_step(tiny_model_dir, METHODS.get(name)(), image_root, tmp_path / name)
    assert_one_good_step(result)
    if name in FIRST_LOSS:
        assert result.history[0]["loss"] == pytest.approx(FIRST_LOSS[name], rel=1e-5)
