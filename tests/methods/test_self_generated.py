"""Self-generated-preference baselines: pairs built from the tiny model's own samples, then one core step.

Each method (self_rewarding, stllava_med, sima, fisao) samples the untrained tiny LLaVA on real synthetic
VQA and report items, builds its pairs (judge/critic replies of an untrained model do not parse, so the
documented offline fallbacks pick the pairs: the tests check that they did and that it was counted), and
trains one step through the shared core with the LoRA weights moving.
"""

from __future__ import annotations

import math

import pytest

from harness.curation.preferences import read_pairs
from harness.methods import PairContext, get_method


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
    from harness.models.hf import load_hf_model

    model = load_hf_model(tiny_model_dir, device="cpu", dtype=config.precision)
    return train_preference(model, method, pairs, None, output_dir, config)


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
                weights = method.token_weights(pair)[side]  # what the core trains with
                assert len(weights) == row.length - row.prompt_len  # one weight per trained token
                assert all(0.0 <= w <= 2.0 for w in weights)
    assert len({w for p in pairs for w in p.extra["chosen_token_weights"]}) > 1  # not all ones
    assert_trained(train_one_step(tiny_model_dir, method, pairs, tmp_path / "train"))


def test_builders_need_the_model_and_reject_unknown_options(synth_items, tmp_path):
    from harness.core.errors import HarnessError

    task, samples = synth_items[0]
    for name in ("self_rewarding", "stllava_med", "sima", "fisao"):
        method = get_method(name)()
        with pytest.raises(HarnessError, match="own samples"):
            method.build_pairs(PairContext(task=task, samples=samples, model=None, output_dir=tmp_path))
        with pytest.raises(HarnessError, match="has no option .kk."):
            method.build_pairs(PairContext(task=task, samples=samples, model=None, output_dir=tmp_path,
                                           options={"kk": "3"}))


def test_best_and_worst_takes_the_first_of_equals_and_no_pair_from_a_tie():
    from baselines._self_generated import best_and_worst

    assert best_and_worst(["left lung", "right lung", "no lung"], [0.5, 0.9, 0.1]) == (1, 2)
    assert best_and_worst(["a", "b", "c", "d"], [1.0, 2.0, 2.0, 1.0]) == (1, 0)  # the first max, the first min
    assert best_and_worst(["a", "b"], [(1.0, 0.2), (1.0, 0.2)]) is None  # every score equal
    assert best_and_worst(["The left lung.", "the LEFT lung"], [2.0, 1.0]) is None  # same words: no pair


# ---- the judge and critic routes (replies scripted, so the parsed path is exercised) ---------------------

def test_reply_parsers():
    from baselines.self_rewarding import parse_rubric_score
    from baselines.sima import parse_better
    from baselines.stllava_med import parse_best_worst

    assert parse_rubric_score("The answer is fine.\nScore: 4") == 4.0
    assert parse_rubric_score("score: 3/5") == 3.0
    assert parse_rubric_score("Score: 7") is None and parse_rubric_score("four points") is None
    assert parse_best_worst("BEST: 2 WORST: 1", 3) == (1, 0)
    assert parse_best_worst("BEST: 2 WORST: 2", 3) is None and parse_best_worst("BEST: 4 WORST: 1", 3) is None
    assert parse_better("BETTER: B") == 1 and parse_better("better: a.") == 0 and parse_better("B") is None


class Scripted:
    """The tiny model, except that prompts starting with ``marker`` get ``reply(prompt)`` instead."""

    def __init__(self, vlm, marker, reply):
        self.vlm, self.marker, self.reply = vlm, marker, reply

    def __getattr__(self, name):
        return getattr(self.vlm, name)

    def generate(self, images, prompts, config=None):
        if prompts and prompts[0].startswith(self.marker):
            return [self.reply(p) for p in prompts]
        return self.vlm.generate(images, prompts, config)


def test_self_rewarding_uses_parsed_judge_scores(tiny_vlm, synth_items, tmp_path):
    from baselines.self_rewarding import JUDGE_PROMPT

    marker = JUDGE_PROMPT.split("\n", 1)[0][:40]

    def score(prompt):  # a judge whose score is a known function of the response
        response = prompt.split("Response: ", 1)[1].split("\n\nAfter examining", 1)[0]
        return f"Score: {len(response) % 6}"

    model = Scripted(tiny_vlm, marker, score)
    pairs = build(get_method("self_rewarding")(), model, synth_items[:1], tmp_path, k=3, max_new_tokens=12)
    judged = [p for p in pairs if p.extra["scored_by"] == "judge"]
    assert judged, "no pair was scored by the (scripted) judge"
    for pair in judged:
        assert pair.extra["chosen_score"] > pair.extra["rejected_score"]
        assert len(pair.chosen) % 6 == pair.extra["chosen_score"] and len(pair.rejected) % 6 == pair.extra["rejected_score"]


def test_sima_follows_the_self_critic(tiny_vlm, synth_items, tmp_path):
    from baselines.sima import CRITIC_PROMPT

    model = Scripted(tiny_vlm, CRITIC_PROMPT[:30], lambda prompt: "BETTER: B")
    pairs = build(get_method("sima")(), model, synth_items[:1], tmp_path)
    assert pairs and all(p.extra["critic"] == "self" and not p.extra["chosen_is_greedy"] for p in pairs)
    from PIL import Image

    from harness.models.base import GenerationConfig

    for pair in pairs:
        with Image.open(pair.image) as image:
            answer = tiny_vlm.generate([image.convert("RGB")], [pair.prompt], GenerationConfig(max_new_tokens=6))[0]
        assert pair.rejected == answer  # B (the sampled answer) preferred, so the greedy one is rejected


def test_stllava_med_follows_a_judge_and_falls_back(tiny_vlm, synth_items, tmp_path, monkeypatch):
    replies = iter(["BEST: 3 WORST: 1", "I cannot tell", "no idea", "still no"])

    class Judge:
        name = "scripted"

        def chat(self, messages, **params):
            return next(replies, "BEST: 3 WORST: 1")

        def describe(self):
            return {"kind": "scripted"}

    monkeypatch.setattr("harness.curation.judges.make_judge", lambda spec, **options: Judge())
    task, samples = synth_items[0]
    context = PairContext(task=task, samples=samples.select(range(2)), model=tiny_vlm, output_dir=tmp_path,
                          options={"judge": "openai:judge-model", "k": "3", "max_new_tokens": "6"})
    pairs = get_method("stllava_med")().build_pairs(context)
    assert [p.extra["chosen_by"] for p in pairs] == ["judge", "reference"]  # 2nd: 3 malformed replies
    assert all(p.source == "stllava-med-openai:judge-model" for p in pairs)


@pytest.mark.parametrize("name, options", [
    ("self_rewarding", {"k": 3, "judge": "logprob"}),
    ("stllava_med", {"k": 3}),
    ("sima", {"critic": "rules"}),
    ("fisao", {"k": 3}),
])
def test_interrupted_pair_building_resumes_to_the_same_pairs(name, options, tiny_vlm, synth_items, tmp_path,
                                                            monkeypatch, caplog):
    """Killed after its first chunk, a rerun replays that chunk from the journal, samples only the rest,
    and writes the pairs an uninterrupted build writes; a third run samples nothing."""
    method = get_method(name)()
    options = {**options, "batch_size": 2}  # 4 VQA items: two chunks
    whole = build(method, tiny_vlm, synth_items[:1], tmp_path / "whole", **options)

    cls = type(method)
    real = cls._chunk
    calls: list[int] = []
    killed: list[bool] = []

    ids = [str(record["id"]) for record in synth_items[0][1]]

    def dying(self, model, chunk, *args, **kwargs):
        b = ids.index(chunk[0].id) // options["batch_size"]  # the chunk's index, whatever else _chunk takes
        calls.append(b)
        if b == 1 and not killed:
            killed.append(True)
            raise RuntimeError("killed during chunk 1")
        return real(self, model, chunk, *args, **kwargs)

    monkeypatch.setattr(cls, "_chunk", dying)
    with pytest.raises(RuntimeError, match="killed during chunk 1"):
        build(method, tiny_vlm, synth_items[:1], tmp_path / "resumed", **options)
    journal = tmp_path / "resumed" / "synth_vqa" / f"{name}.journal.jsonl"
    assert journal.is_file()
    calls.clear()
    with caplog.at_level("INFO"):
        resumed = build(method, tiny_vlm, synth_items[:1], tmp_path / "resumed", **options)
    assert calls == [1]  # chunk 0 came from the journal
    assert "resuming pair building, 1 chunk(s) already done" in caplog.text
    assert [(p.chosen, p.rejected, p.extra) for p in resumed] == [(p.chosen, p.rejected, p.extra) for p in whole]
    # a finished build replays entirely from its journal (harness run --run-id after a crash in a later task)
    calls.clear()
    again = build(method, tiny_vlm, synth_items[:1], tmp_path / "resumed", **options)
    assert calls == [] and [p.chosen for p in again] == [p.chosen for p in whole]


def test_a_journal_for_other_options_is_not_replayed(tiny_vlm, synth_items, tmp_path, caplog):
    from baselines._self_generated import ChunkJournal, iter_samples

    task, samples = synth_items[0]
    context = PairContext(task=task, samples=samples, model=tiny_vlm, output_dir=tmp_path, seed=0, options={})
    items = list(iter_samples("self_rewarding", context))
    journal = ChunkJournal("self_rewarding", context, items, {"k": 3})
    assert journal.run(0, lambda: {"pairs": [], "counts": {"tie": 2}}) == {"pairs": [], "counts": {"tie": 2}}
    assert ChunkJournal("self_rewarding", context, items, {"k": 3}).done == {0: {"pairs": [], "counts": {"tie": 2}}}
    with caplog.at_level("WARNING"):
        other = ChunkJournal("self_rewarding", context, items, {"k": 4})
    assert other.done == {} and "written for other inputs" in caplog.text
