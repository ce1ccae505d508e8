"""Self-generated-preference baselines: pairs built from the tiny model's own samples, then one core step.

Each method (self_rewarding, stllava_med, sima, fisao) samples the untrained tiny LLaVA on real synthetic
VQA and report items, builds its pairs (judge/critic replies of an untrained model do not parse, so the
documented offline fallbacks pick the pairs: the tests check that they did and that it was counted), and
trains one step through the shared core with the LoRA weights moving.
"""

from __future__ import annotations

import math

import pytest

from harness.methods import PairContext, get_method
from harness.preferences import read_pairs

pytest.importorskip("harness.training", reason="the training core (harness.training) is not available")


@pytest.fixture(scope="session")
def tiny_vlm(tiny_model_dir):
    from harness.models.hf import load_hf_model

    return load_hf_model(tiny_model_dir, device="cpu", dtype="fp32")


@pytest.fixture(scope="session")
def synth_items():
    """4 VQA items and 2 reports of the synthetic suite's train split (small generated split)."""
    from harness.tasks import get_task

    vqa, report = get_task("synth_vqa"), get_task("synth_report")
    return [(vqa, vqa.load("train", train_size=8).select(range(4))),
            (report, report.load("train", train_size=8).select(range(2)))]


def build(method, tiny_vlm, synth_items, tmp_path, **options):
    pairs = []
    for task, samples in synth_items:
        context = PairContext(task=task, samples=samples, model=tiny_vlm, output_dir=tmp_path / task.name,
                              seed=0, options={"max_new_tokens": 6, **options})
        for pair in method.build_pairs(context):
            pair.image = str((tmp_path / task.name / pair.image).resolve())
            pair.id = f"{task.name}-{pair.id}"
            pairs.append(pair)
    return pairs


def train_one_step(tiny_model_dir, method, pairs, output_dir):
    from harness.training import TrainConfig, train_preference

    config = TrainConfig(lr=1e-2, max_steps=1, batch_size=4, warmup_ratio=0.0, lora_r=4, max_length=160,
                         merge_lora=False)
    return train_preference(tiny_model_dir, method, pairs, None, output_dir, config)


def assert_trained(result):
    """A finite loss, and a non-zero lora_B saved (peft starts every lora_B at zero: the step moved it)."""
    from safetensors.torch import load_file

    assert len(result.history) == 1 and math.isfinite(result.history[0]["loss"])
    tensors = [t for f in result.adapter_path.glob("*.safetensors") for k, t in load_file(f).items() if "lora_B" in k]
    assert tensors and any(bool(t.abs().sum() > 0) for t in tensors)


def assert_pairs(pairs, source_prefix):
    assert len(pairs) >= 3, f"only {len(pairs)} pairs built from 6 items"
    for pair in pairs:
        assert pair.chosen.strip() != pair.rejected.strip()
        assert pair.source.startswith(source_prefix)
        assert pair.kind == "text" and pair.rejected_image is None


@pytest.mark.parametrize("name, options, source, marker", [
    ("self_rewarding", {"k": 3, "judge_max_new_tokens": 6}, "self-rewarding-M1", ("scored_by", "logprob")),
    ("stllava_med", {"k": 3}, "stllava-med-reference", ("chosen_by", "reference")),
    ("sima", {"critic_max_new_tokens": 6}, "sima-", ("critic", "rules")),
])
def test_pairs_from_own_samples_train_one_step(name, options, source, marker, tiny_vlm, tiny_model_dir,
                                               synth_items, tmp_path):
    method = get_method(name)()
    pairs = build(method, tiny_vlm, synth_items, tmp_path / "pairs", **options)
    assert_pairs(pairs, source)
    key, fallback = marker
    # an untrained model never writes the judge's format: every pair comes from the documented fallback
    assert all(p.extra[key] == fallback for p in pairs)
    written = list(read_pairs(tmp_path / "pairs" / "synth_vqa" / f"{name}_pairs.jsonl"))
    assert [p.chosen for p in written] == [p.chosen for p in pairs if p.id.startswith("synth_vqa-")]
    assert_trained(train_one_step(tiny_model_dir, method, pairs, tmp_path / "train"))


def test_self_rewarding_is_deterministic_and_prefers_higher_logprob(tiny_vlm, synth_items, tmp_path):
    from baselines._self_generated import mean_logps

    method = get_method("self_rewarding")()
    first = build(method, tiny_vlm, synth_items[:1], tmp_path / "a", k=3, judge="logprob")
    second = build(method, tiny_vlm, synth_items[:1], tmp_path / "b", k=3, judge="logprob")
    assert [(p.chosen, p.rejected) for p in first] == [(p.chosen, p.rejected) for p in second]
    from PIL import Image

    pair = first[0]
    with Image.open(pair.image) as image:
        chosen, rejected = mean_logps(tiny_vlm, [(image.convert("RGB"), pair.prompt, pair.chosen),
                                                 (image.convert("RGB"), pair.prompt, pair.rejected)])
    assert chosen > rejected
    assert pair.extra["chosen_score"] == pytest.approx(chosen, abs=1e-5)


def test_fisao_token_weights_follow_the_encoder_and_train(tiny_vlm, tiny_model_dir, synth_items, tmp_path):
    from harness.training.encoding import RowEncoder

    method = get_method("fisao")()
    pairs = build(method, tiny_vlm, synth_items, tmp_path / "pairs", k=3)
    assert_pairs(pairs, "fisao")
    encoder = RowEncoder(tiny_vlm.processor, tiny_vlm.format_prompt, 10_000)
    from PIL import Image

    for pair in pairs:
        assert pair.extra["chosen_grounding"] > pair.extra["rejected_grounding"]
        with Image.open(pair.image) as image:
            for side in ("chosen", "rejected"):
                row = encoder.encode(image.convert("RGB"), pair.prompt, getattr(pair, side))
                weights = pair.extra[f"{side}_token_weights"]
                assert len(weights) == row.length - row.prompt_len  # one weight per trained token
                assert all(0.0 <= w <= 2.0 for w in weights)
    assert len({w for p in pairs for w in p.extra["chosen_token_weights"]}) > 1  # not all ones
    assert_trained(train_one_step(tiny_model_dir, method, pairs, tmp_path / "train"))


def test_builders_need_the_model_and_reject_unknown_options(synth_items, tmp_path):
    from harness.errors import HarnessError

    task, samples = synth_items[0]
    for name in ("self_rewarding", "stllava_med", "sima", "fisao"):
        method = get_method(name)()
        with pytest.raises(HarnessError, match="own samples"):
            method.build_pairs(PairContext(task=task, samples=samples, model=None, output_dir=tmp_path))
        with pytest.raises(HarnessError, match="unknown option"):
            method.build_pairs(PairContext(task=task, samples=samples, model=None, output_dir=tmp_path,
                                           options={"kk": "3"}))
