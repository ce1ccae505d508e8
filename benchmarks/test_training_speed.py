"""Training samples/second: the shared core vs TRL's DPOTrainer vs a naive two-forward path.

Same tiny LLaVA (the training tests' builder), same 64 text pairs (same image for both sides), batch size
4, fp32, LoRA r=8 on the language model, sigmoid DPO, 16 optimizer steps, one CPU thread. Each timed call is
a whole training run (setup that builds a fresh model is outside the timing; the core's timed call also
writes its final checkpoint and adapter, TRL's does not save). The naive path is the core with its
concatenated forward replaced by separate chosen/rejected forwards computing full-sequence logits and a
``log_softmax``, as the MMedPO release's trainer does.

Two figures per path. The pytest-benchmark time is the whole ``train`` call (optimizer, accelerate and peft
set-up, the final save included). ``extra_info["steady_samples_per_s"]`` is the steady state: the samples
of steps 2..16 over the time from the start of step 2 to the start of the last step, measured the same
way for all three (the core and the naive path at their loss call, TRL at ``on_step_begin``), so per-run
set-up that the paths share, or that TRL does differently, is left out.

Run: ``OMP_NUM_THREADS=1 .venv/bin/pytest benchmarks/test_training_speed.py --benchmark-only``
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "training"))

from helpers import LocalDPO, make_pairs, save_images  # noqa: E402
from tiny import build_tiny_llava  # noqa: E402

STEPS, BATCH, PAIRS = 16, 4, 64
LORA_TARGET = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)$"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("train_bench")
    model = build_tiny_llava(root / "model")
    (root / "images").mkdir()
    save_images(root / "images")
    return root, model, make_pairs(PAIRS)


def _config():
    from harness.training import TrainConfig

    return TrainConfig(lr=1e-4, max_steps=STEPS, batch_size=BATCH, lora_r=8, lora_alpha=16, lora_dropout=0.0,
                       max_length=256, merge_lora=False, save_total_limit=1, warmup_ratio=0.0)


def _run_core(setup, counter, naive: bool):
    from harness.models.hf import load_hf_model
    from harness.training import loop

    root, model_dir, pairs = setup

    def make():
        counter[0] += 1
        return (load_hf_model(model_dir, device="cpu", dtype="fp32"), root / f"core-{naive}-{counter[0]}"), {}

    def train(vlm, out):
        method = StampedDPO()
        loop.train_preference(vlm, method, pairs, root / "images", out, _config())
        STAMPS.append(method.stamps)

    return make, train


STAMPS: list[list[float]] = []


class StampedDPO(LocalDPO):
    """LocalDPO that notes when each step's loss is computed (one micro-batch per step here)."""

    def __init__(self, **hparams):
        super().__init__(**hparams)
        self.stamps: list[float] = []

    def loss(self, policy, reference, weights):
        import time

        self.stamps.append(time.perf_counter())
        return super().loss(policy, reference, weights)


def _steady(benchmark) -> None:
    """Median over rounds of samples/s from the start of step 2 to the start of the last step."""
    import statistics

    rates = [(len(s) - 2) * BATCH / (s[-1] - s[1]) for s in STAMPS if len(s) >= 3]
    STAMPS.clear()
    benchmark.extra_info["steady_samples_per_s"] = round(statistics.median(rates), 2)


def naive_forward(model, batch):
    """Chosen and rejected through separate forwards, full logits + log_softmax (the release's way)."""
    import torch

    from harness.training.batch import PreferenceBatch

    out = {}
    for name, rows in batch.groups():
        single = PreferenceBatch(batch.ids, batch.weights, rows)
        kwargs = {k: v.to(next(model.parameters()).dtype) if k == "pixel_values" else v
                  for k, v in rows.images.items()}
        logits = model(input_ids=rows.input_ids, attention_mask=rows.attention_mask, **kwargs).logits
        logps = logits[:, :-1].log_softmax(-1)
        labels = single.chosen.input_ids[:, 1:]
        mask = single.chosen.response_mask[:, 1:]
        token = torch.gather(logps, 2, labels.unsqueeze(-1)).squeeze(-1) * mask
        tokens = mask.sum(1)
        out[name] = {"sum": token.sum(1), "mean": token.sum(1) / tokens.clamp(min=1), "tokens": tokens,
                     "token_logps": token}
    return out


@pytest.mark.benchmark(group="training-samples-per-second")
def test_core_concatenated(benchmark, setup):
    make, train = _run_core(setup, [0], naive=False)
    benchmark.extra_info["samples"] = STEPS * BATCH
    benchmark.pedantic(train, setup=make, rounds=3, iterations=1)
    _steady(benchmark)


@pytest.mark.benchmark(group="training-samples-per-second")
def test_naive_two_forwards(benchmark, setup, monkeypatch):
    from harness.training import loop, reference

    monkeypatch.setattr(loop, "concatenated_forward", naive_forward)
    monkeypatch.setattr(reference, "concatenated_forward", naive_forward)
    make, train = _run_core(setup, [0], naive=True)
    benchmark.extra_info["samples"] = STEPS * BATCH
    benchmark.pedantic(train, setup=make, rounds=3, iterations=1)
    _steady(benchmark)


@pytest.mark.benchmark(group="training-samples-per-second")
def test_trl_dpo_trainer(benchmark, setup):
    from datasets import Dataset
    from peft import LoraConfig
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    class Stamp(TrainerCallback):
        def __init__(self):
            self.stamps: list[float] = []

        def on_step_begin(self, args, state, control, **kwargs):
            import time

            self.stamps.append(time.perf_counter())

    root, model_dir, pairs = setup
    data = Dataset.from_dict({
        "images": [[Image.open(root / "images" / p.image).convert("RGB")] for p in pairs],
        "prompt": [[{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": p.prompt}]}]
                   for p in pairs],
        "chosen": [[{"role": "assistant", "content": [{"type": "text", "text": p.chosen}]}] for p in pairs],
        "rejected": [[{"role": "assistant", "content": [{"type": "text", "text": p.rejected}]}] for p in pairs],
    })
    counter = [0]

    def make():
        counter[0] += 1
        config = DPOConfig(output_dir=str(root / f"trl-{counter[0]}"), per_device_train_batch_size=BATCH,
                           max_steps=STEPS, learning_rate=1e-4, lr_scheduler_type="cosine", beta=0.1,
                           report_to=[], save_strategy="no", use_cpu=True, max_length=256, logging_steps=STEPS,
                           dataloader_num_workers=0, disable_tqdm=True)
        trainer = DPOTrainer(
            model=AutoModelForImageTextToText.from_pretrained(model_dir), args=config, train_dataset=data,
            processing_class=AutoProcessor.from_pretrained(model_dir),
            peft_config=LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=LORA_TARGET))
        stamp = Stamp()
        trainer.add_callback(stamp)
        return (trainer, stamp), {}

    def train(trainer, stamp):
        trainer.train()
        STAMPS.append(stamp.stamps)

    benchmark.extra_info["samples"] = STEPS * BATCH
    benchmark.pedantic(train, setup=make, rounds=3, iterations=1)
    _steady(benchmark)
