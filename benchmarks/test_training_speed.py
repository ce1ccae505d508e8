"""Training samples/second: the shared core vs TRL's DPOTrainer vs naive two-forward paths.

Same tiny LLaVA (``harness.models.tiny``'s recipe), same 64 text pairs (same image for both sides), batch size
4, fp32, LoRA r=8 on the language model, sigmoid DPO, 16 optimizer steps, one CPU thread. Each timed call is
a whole training run (setup that builds a fresh model is outside the timing; the core's timed call also
writes its final checkpoint and adapter, TRL's does not save). Five paths:

* ``core``: the shared core as shipped (prefix sharing on: a text pair's image + prompt run once);
* ``core_without_prefix_sharing``: the same with ``share_prefix=False`` (chosen and rejected rows stacked);
* ``naive[minimal]``: the core with its forward replaced by separate chosen / rejected forwards computing
  full-sequence logits and a ``log_softmax``;
* ``naive[release]``: the same, doing per side what the MMedPO release's trainer does
  (``release_forward``: the forward also computes the model's own LM loss, float32 logits, the vision
  tower run again to realign labels, the mean logit kept for the logs);
* TRL's ``DPOTrainer`` on the same model and data.

The naive paths share everything else with the core (data loading, the encode-once data path, reference
switching, optimizer), so the ratios isolate the forward. They run with ``share_prefix=False``: they do not
pack, so they pay neither the one-off packing check nor the packed layout the core's data path builds.

Two figures per path. The pytest-benchmark time is the whole ``train`` call (optimizer, accelerate and peft
set-up, the final save included). ``extra_info["steady_samples_per_s"]`` is the steady state: the samples
of steps 2..16 over the time from the start of step 2 to the start of the last step, measured the same
way for all paths (the core and the naive paths at their loss call, TRL at ``on_step_begin``), so per-run
set-up that the paths share, or that TRL does differently, is left out. One warm-up round, then 5.

Run: ``OMP_NUM_THREADS=1 .venv/bin/pytest benchmarks/test_training_speed.py --benchmark-only``
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "training"))

from helpers import LocalDPO, make_pairs, save_images  # noqa: E402

STEPS, BATCH, PAIRS = 16, 4, 64
# the naive paths' config changes: they do not pack
NAIVE = {"share_prefix": False}
LORA_TARGET = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)$"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("train_bench")
    from harness.models.tiny import TinyConfig, build_tiny_model

    # the one tiny recipe, at the size the training tests' own builder had (vision 32 wide, 1 layer, 2 heads)
    model = build_tiny_model(root / "model", config=TinyConfig(vision_hidden=32, vision_layers=1, heads=2,
                                                               vocab_size=400))
    (root / "images").mkdir()
    save_images(root / "images")
    return root, model, make_pairs(PAIRS)


def _config(**changes):
    from harness.training import TrainConfig

    return TrainConfig(lr=1e-4, max_steps=STEPS, batch_size=BATCH, lora_r=8, lora_alpha=16, lora_dropout=0.0,
                       max_length=256, merge_lora=False, save_total_limit=1, warmup_ratio=0.0, **changes)


def _run_core(setup, counter, label: str, **changes):
    from harness.models.hf import load_hf_model
    from harness.training import loop

    root, model_dir, pairs = setup

    def make():
        from harness.training import logps

        logps._PACKING_CHECKED.clear()  # each timed run pays the one-off packing check, as a fresh process does
        counter[0] += 1
        return (load_hf_model(model_dir, device="cpu", dtype="fp32"), root / f"{label}-{counter[0]}"), {}

    def train(vlm, out):
        method = StampedDPO()
        loop.train_preference(vlm, method, pairs, root / "images", out, _config(**changes))
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
    """Median over the timed rounds (the warm-up round left out) of samples/s from the start of step 2 to the
    start of the last step."""
    import statistics

    rates = [(len(s) - 2) * BATCH / (s[-1] - s[1]) for s in STAMPS[ROUNDS["warmup_rounds"]:] if len(s) >= 3]
    STAMPS.clear()
    benchmark.extra_info["steady_samples_per_s"] = round(statistics.median(rates), 2)


def naive_forward(model, batch, **_):
    """Minimal two-forward path: chosen and rejected through separate forwards, full logits + log_softmax."""
    return _separate_forwards(model, batch, release=False)


def release_forward(model, batch, **_):
    """The MMedPO release's per-side procedure (``train/dpo/dpo_trainer_weighted.py``, its
    ``concatenated_forward``, which despite the name runs one forward per side): each side's forward gets
    ``labels`` (so the model also computes its own LM loss), the logits are copied to float32, the side's
    multimodal inputs are prepared again to realign the labels (``prepare_inputs_labels_for_multimodal``,
    which runs the vision tower and projector a second time), then a full ``log_softmax`` + gather, and the
    mean logit of each side is kept for the logs."""
    return _separate_forwards(model, batch, release=True)


def _separate_forwards(model, batch, release: bool):
    import torch

    dtype = next(model.parameters()).dtype
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    out = {}
    for name, rows in batch.groups():
        kwargs = {k: v.to(dtype) if k == "pixel_values" else v for k, v in rows.images.items()}
        labels = rows.input_ids.masked_fill(~rows.response_mask, -100) if release else None
        logits = model(input_ids=rows.input_ids, attention_mask=rows.attention_mask, labels=labels, **kwargs).logits
        if release:
            logits = logits.to(torch.float32)
            base.get_image_features(pixel_values=kwargs["pixel_values"])
        logps = logits[:, :-1].log_softmax(-1)
        labels = rows.input_ids[:, 1:]
        mask = rows.response_mask[:, 1:]
        token = torch.gather(logps, 2, labels.unsqueeze(-1)).squeeze(-1) * mask
        tokens = mask.sum(1)
        out[name] = {"sum": token.sum(1), "mean": token.sum(1) / tokens.clamp(min=1), "tokens": tokens,
                     "token_logps": token}
        if release and torch.is_grad_enabled():  # the release logs the policy's mean logits
            out[name]["mean_logit"] = float(logits.detach().mean())
    return out


ROUNDS = dict(rounds=5, warmup_rounds=1, iterations=1)


@pytest.mark.benchmark(group="training-samples-per-second")
def test_core(benchmark, setup, speed_guard):
    make, train = _run_core(setup, [0], "core")
    benchmark.extra_info["samples"] = STEPS * BATCH
    timed = speed_guard.path("training.core", train, faster_than=[
        "training.stacked", "training.naive_minimal", "training.naive_release", "training.trl"])
    benchmark.pedantic(timed, setup=make, **ROUNDS)
    _steady(benchmark)


@pytest.mark.benchmark(group="training-samples-per-second")
def test_core_without_prefix_sharing(benchmark, setup, speed_guard):
    make, train = _run_core(setup, [0], "stacked", share_prefix=False)
    benchmark.extra_info["samples"] = STEPS * BATCH
    benchmark.pedantic(speed_guard.path("training.stacked", train), setup=make, **ROUNDS)
    _steady(benchmark)


@pytest.mark.benchmark(group="training-samples-per-second")
@pytest.mark.parametrize("forward", ["release", "minimal"])
def test_naive_two_forwards(benchmark, setup, monkeypatch, forward, speed_guard):
    from harness.training import loop, reference

    replacement = release_forward if forward == "release" else naive_forward
    monkeypatch.setattr(loop, "sequence_logps", replacement)
    monkeypatch.setattr(reference, "sequence_logps", replacement)
    make, train = _run_core(setup, [0], f"naive-{forward}", **NAIVE)
    benchmark.extra_info["samples"] = STEPS * BATCH
    benchmark.pedantic(speed_guard.path(f"training.naive_{forward}", train), setup=make, **ROUNDS)
    _steady(benchmark)


@pytest.mark.benchmark(group="training-samples-per-second")
def test_trl_dpo_trainer(benchmark, setup, speed_guard):
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
                           dataloader_num_workers=0, disable_tqdm=True, bf16=False)  # fp32 like the core
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
    benchmark.pedantic(speed_guard.path("training.trl", train), setup=make, **ROUNDS)
    _steady(benchmark)


PAIRED_ROUNDS = 7


@pytest.mark.benchmark(group="training-paired-speed-ups")
def test_paired_speedups(benchmark, setup, monkeypatch, speed_guard):
    """The core's speed-ups as paired ratios: each round runs core, naive[minimal] and naive[release] back to
    back on fresh models, so a machine that drifts faster or slower between the separate tests above moves
    all three alike. ``extra_info``: the median over rounds (the first round, a warm-up, left out) of
    naive time / core time for whole runs and of core rate / naive rate in the steady state. The timed
    figure itself is a whole round of three runs and is not a comparison."""
    import statistics
    import time

    from harness.training import loop, reference

    original = loop.sequence_logps
    paths = {"core": original, "minimal": naive_forward, "release": release_forward}
    guard_names = {"core": "training.core", "minimal": "training.naive_minimal", "release": "training.naive_release"}
    whole: dict[str, list[float]] = {name: [] for name in paths}
    steady: dict[str, list[float]] = {name: [] for name in paths}
    counter = [0]

    def one_round():
        for name, forward in paths.items():
            make, train = _run_core(setup, counter, f"paired-{name}", **({} if name == "core" else NAIVE))
            args, _ = make()
            monkeypatch.setattr(loop, "sequence_logps", forward)
            monkeypatch.setattr(reference, "sequence_logps", forward)
            start = time.perf_counter()
            speed_guard.slowable(guard_names[name], train)(*args)
            whole[name].append(time.perf_counter() - start)
            stamps = STAMPS.pop()
            steady[name].append((len(stamps) - 2) * BATCH / (stamps[-1] - stamps[1]))

    benchmark.pedantic(one_round, rounds=PAIRED_ROUNDS, iterations=1)
    for name in ("minimal", "release"):
        ratios = [n / c for n, c in zip(whole[name][1:], whole["core"][1:])]
        rates = [c / n for n, c in zip(steady[name][1:], steady["core"][1:])]
        benchmark.extra_info[f"whole_run_speedup_vs_{name}"] = round(statistics.median(ratios), 3)
        benchmark.extra_info[f"whole_run_speedup_vs_{name}_range"] = [round(min(ratios), 3), round(max(ratios), 3)]
        benchmark.extra_info[f"steady_speedup_vs_{name}"] = round(statistics.median(rates), 3)
        benchmark.extra_info[f"steady_speedup_vs_{name}_range"] = [round(min(rates), 3), round(max(rates), 3)]
        speed_guard.ratio(f"training.paired.whole_core_vs_naive_{name}", statistics.median(ratios))
        speed_guard.ratio(f"training.paired.whole_core_vs_naive_{name}.worst_round", min(ratios))
        speed_guard.ratio(f"training.paired.steady_core_vs_naive_{name}", statistics.median(rates))
