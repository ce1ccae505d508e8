"""Real local models: a tiny random causal-LM judge (garbage replies: the fallback paths) and saliency."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.core.errors import HarnessError


@pytest.fixture(scope="module")
def tiny_causal_lm(tmp_path_factory) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from harness.models.tiny import build_tokenizer

    corpus = ["SCORE: 0.5 CHOICE: 1 HALLUCINATION: there is a nodule in the left lung", "yes no AGREE"] * 20
    fast = build_tokenizer(corpus, 300, special_tokens=("<pad>", "<unk>", "<s>", "</s>"), image_token=None,
                           prepend_bos=False)
    fast.chat_template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}assistant:"
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                                         pad_token_id=fast.pad_token_id, eos_token_id=fast.eos_token_id))
    out = tmp_path_factory.mktemp("judge_lm")
    model.save_pretrained(out)
    fast.save_pretrained(out)
    return out


def test_local_lm_judge_garbage_takes_the_fallback_paths(tiny_causal_lm):
    from harness.curation.judges import make_judge
    from mmedpo.relevance import ConsensusScorer
    from mmedpo.text import judge_dispreference

    judge = make_judge(f"hf:{tiny_causal_lm}", max_new_tokens=8, device="cpu")
    reply = judge.chat([{"role": "user", "content": "Reply with SCORE: 0.5"}])
    assert isinstance(reply, str)
    assert judge.describe()["kind"] == "hf"
    made = judge_dispreference(judge, "Where is the nodule?", "left upper lung", ["right lower lung"], seed=0,
                               retries=1)
    assert made.how == "rules-fallback" and made.rejected != "left upper lung"
    result = ConsensusScorer([judge], max_rounds=1, retries=1).score("q", "left upper lung", made.rejected,
                                                                    edits=made.edits)
    assert result.source == "heuristic-fallback" and 0 < result.score <= 1


def test_unloadable_judge_is_a_one_line_error(tmp_path):
    from harness.curation.judges import make_judge

    with pytest.raises(HarnessError, match="cannot load a causal LM"):
        make_judge(f"hf:{tmp_path}")
    with pytest.raises(HarnessError, match="unknown judge kind"):
        make_judge("gpt4:x")


def test_saliency_map_covers_the_image_and_follows_the_answer(synth_train, tiny_vlm):
    from mmedpo.localize import get_localizer

    _, dataset = synth_train
    sample = next(s for s in dataset if s["boxes"] != "[]")
    found = get_localizer("saliency").localize(sample, model=tiny_vlm, prompt=sample["question"])
    assert found is not None and found.map.shape == (sample["image"].size[1], sample["image"].size[0])
    assert 0.0 <= found.map.min() and found.map.max() == pytest.approx(1.0) and 0.0 < found.confidence <= 1.0
    other = dict(sample, answer="a large effusion in the left lower lung")
    assert not np.allclose(get_localizer("saliency").localize(other, model=tiny_vlm).map, found.map)
    with pytest.raises(HarnessError, match="needs a Hugging Face target model"):
        get_localizer("saliency").localize(sample, model=None)


def test_localizer_iou_is_one_for_ground_truth_and_measured_for_saliency(synth_train, tiny_vlm):
    from mmedpo.localize import get_localizer, localizer_iou

    _, dataset = synth_train
    assert localizer_iou(get_localizer("ground-truth"), dataset)["iou"] == 1.0
    measured = localizer_iou(get_localizer("saliency"), dataset, model=tiny_vlm, limit=4)
    assert measured["n"] == 4 and 0.0 <= measured["iou"] <= 1.0  # an untrained model: any value; see docs
