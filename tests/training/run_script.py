"""Subprocess entry for the resume test: train LocalDPO on the test pairs; argv: model images out resume slow."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from helpers import LocalDPO, make_pairs  # noqa: E402

from harness.models.hf import load_hf_model  # noqa: E402
from harness.training import TrainConfig, train_preference  # noqa: E402


class SlowDPO(LocalDPO):
    """Sleeps in each loss so the parent has time to kill the process mid-run."""

    def loss(self, policy, reference, weights):
        time.sleep(0.15)
        return super().loss(policy, reference, weights)


if __name__ == "__main__":
    model, images, out, resume, slow = sys.argv[1:6]
    config = TrainConfig(lr=5e-3, max_steps=8, batch_size=2, grad_accum=2, save_every=1, save_total_limit=2,
                         lora_r=4, lora_dropout=0.1, warmup_ratio=0.25, seed=3)
    method = SlowDPO() if slow == "1" else LocalDPO()
    vlm = load_hf_model(model, device="cpu", dtype="fp32")
    train_preference(vlm, method, make_pairs(6), Path(images), Path(out), config, resume=resume == "1")
