"""Test helpers shared by the training tests and their subprocess scripts."""

from __future__ import annotations

from pathlib import Path

from harness.curation.preferences import PreferencePair
from harness.methods.base import LogProbs, LossOutput, Method


class LocalDPO(Method):
    """Sigmoid DPO (Rafailov et al., 2023, Eq. 7), local to the tests so they do not need baselines/."""

    name = "test_dpo"
    defaults = {"beta": 0.1}

    def loss(self, policy: LogProbs, reference: LogProbs | None, weights) -> LossOutput:
        import torch.nn.functional as F

        beta = self.hparams["beta"]
        chosen = beta * (policy.chosen_logps - reference.chosen_logps)
        rejected = beta * (policy.rejected_logps - reference.rejected_logps)
        return LossOutput(-F.logsigmoid(chosen - rejected), chosen.detach(), rejected.detach())


class LocalSimPO(LocalDPO):
    """Reference-free: length-normalized margin (Meng et al., 2024)."""

    name = "test_simpo"
    reference_free = True

    def loss(self, policy, reference, weights):
        import torch.nn.functional as F

        chosen, rejected = policy.chosen_mean_logps, policy.rejected_mean_logps
        return LossOutput(-F.logsigmoid(2.0 * (chosen - rejected)), chosen.detach(), rejected.detach())


def save_images(folder: Path) -> Path:
    from PIL import Image

    for i, color in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200), (120, 120, 120)]):
        Image.new("RGB", (40, 36), color).save(folder / f"img{i}.png")
        Image.new("RGB", (40, 36), tuple(255 - c for c in color)).save(folder / f"noised{i}.png")
    return folder


def make_pairs(n: int, visual: bool = False) -> list[PreferencePair]:
    answers = [("yes there is a mass", "no"), ("the heart is normal", "there is a large opacity"),
               ("pneumonia in the right lower lobe", "fracture"), ("no pleural effusion", "effusion")]
    pairs = []
    for i in range(n):
        chosen, rejected = answers[i % len(answers)]
        pairs.append(PreferencePair(
            id=f"p{i}", image=f"img{i % 4}.png", prompt="is there a lesion in the left lung?",
            chosen=chosen, rejected=chosen if visual else rejected, weight=0.5 + 0.1 * (i % 5),
            rejected_image=f"noised{i % 4}.png" if visual else None, kind="visual" if visual else "text"))
    return pairs


def trainable_state(model_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(model_dir / "model.safetensors"))
