"""Curation end to end on real synthetic samples: record format, caching, resume, options, judges."""

from __future__ import annotations

import json

import pytest

from harness.core.errors import HarnessError
from harness.curation.factcheck import contradictions, severity
from harness.curation.preferences import read_pairs
from harness.methods import PairContext
from mmedpo.config import CurationConfig
from mmedpo.curate import build_mmedpo_pairs, curate, distribution
from mmedpo.stages import Curator


def _context(task, dataset, tmp_path, model=None, **options):
    return PairContext(task=task, samples=dataset, model=model, output_dir=tmp_path, seed=0, options=options)


def _rules(task, dataset, tmp_path, **options):
    """The offline injector path (no model): what these tests exercise unless they say otherwise."""
    return _context(task, dataset, tmp_path, text_generator="rules", **options)


def test_offline_curation_pools_text_and_visual_pairs(synth_train, tmp_path):
    task, dataset = synth_train
    result = curate(_rules(task, dataset, tmp_path))
    text = [p for p in result.pairs if p.kind == "text"]
    visual = [p for p in result.pairs if p.kind == "visual"]
    lesions = sum(1 for s in dataset if s["boxes"] != "[]")
    assert len(text) + sum(result.manifest["skipped"]["text"].values()) == len(dataset)
    # the release: one visual pair per item, normal films included
    assert len(visual) == len(dataset) and 0 < lesions < len(dataset)
    assert result.manifest["cases"]["visual"] == {"lesion": lesions, "normal": len(dataset) - lesions}
    assert sum(p.source == "mmedpo-normal-film-diffusion" for p in visual) == len(dataset) - lesions
    cases = {str(s["id"]): s for s in dataset}
    for pair in text:  # the verified injector: every rejected answer contradicts its case
        assert pair.rejected != pair.chosen and pair.rejected_image is None and pair.source == "mmedpo-rules"
        assert contradictions(pair.rejected, cases[pair.id.rsplit("-", 1)[0]])
    for pair in visual:
        assert pair.rejected == pair.chosen and pair.rejected_image != pair.image
        assert (result.image_root / pair.rejected_image).is_file() and (result.image_root / pair.image).is_file()
    weights = [p.weight for p in result.pairs]
    assert min(weights) >= 0.75 and max(weights) <= 1.25 and len(set(weights)) > 1
    assert result.manifest["behaviour"] == {"noise": "paper", "weighting": "paper", "text": "offline-rules",
                                            "relevance": "offline-factcheck", "visual_items": "paper",
                                            "normal_film_region": "offline-seeded-region", "denial_floor": "off"}
    # the file on disk is the release format, read back by the project's reader
    on_disk = list(read_pairs(result.pairs_path))
    assert [p.to_record() for p in on_disk] == [p.to_record() for p in result.pairs]
    record = json.loads(result.pairs_path.read_text().splitlines()[0])
    assert {"id", "image", "conversations", "rejected_conversations", "weighted_score", "kind", "source"} <= set(record)


def test_a_second_call_reads_the_cache_and_settings_change_the_key(synth_train, tmp_path, monkeypatch):
    task, dataset = synth_train
    first = curate(_rules(task, dataset, tmp_path, max_items=10))
    monkeypatch.setattr(Curator, "run_batch", lambda *a, **k: pytest.fail("recomputed a cached curation"))
    again = curate(_rules(task, dataset, tmp_path, max_items=10))
    assert again.pairs_path == first.pairs_path
    assert [p.to_record() for p in again.pairs] == [p.to_record() for p in first.pairs]
    monkeypatch.undo()
    other = curate(_rules(task, dataset, tmp_path, max_items=10, weighting="release"))
    assert other.pairs_path != first.pairs_path
    cases = {str(s["id"]): s for s in dataset}
    for pair in other.pairs:  # release weights are the raw scores: a text pair's is the severity of its error
        raw = severity(contradictions(pair.rejected, cases[pair.id.rsplit("-", 1)[0]])) if pair.kind == "text" \
            else pair.extra["raw_score"]
        assert pair.weight == pytest.approx(raw) and 0 <= pair.weight <= 1


def test_interrupted_curation_resumes_without_redoing_items(synth_train, tmp_path, monkeypatch):
    task, dataset = synth_train
    reference = curate(_rules(task, dataset, tmp_path / "whole"))
    calls = {"text": 0}
    original = Curator.text_item

    def crashing(self, sample, samples, **kwargs):
        calls["text"] += 1
        if calls["text"] == 20:
            raise KeyboardInterrupt
        return original(self, sample, samples, **kwargs)

    monkeypatch.setattr(Curator, "text_item", crashing)
    with pytest.raises(KeyboardInterrupt):
        curate(_rules(task, dataset, tmp_path / "resumed"))
    items = next((tmp_path / "resumed").glob("mmedpo-*/items.jsonl"))
    done_text = sum(json.loads(line)["kind"] == "text" for line in items.read_text().splitlines())
    assert done_text == 19 and not list((tmp_path / "resumed").glob("mmedpo-*/pairs.jsonl"))
    calls["text"] = 100  # no more crashes; count the items redone
    result = curate(_rules(task, dataset, tmp_path / "resumed"))
    assert calls["text"] - 100 == len(dataset) - 19
    assert [p.to_record() for p in result.pairs] == [p.to_record() for p in reference.pairs]


def test_ablation_switches(synth_train, tmp_path):
    task, dataset = synth_train
    only_text = build_mmedpo_pairs(_context(task, dataset, tmp_path, max_items=12),
                                   CurationConfig(visual_pairs=False, text_generator="rules"))
    assert only_text and {p.kind for p in only_text} == {"text"}
    from mmedpo.method import MMedPO

    context = _context(task, dataset, tmp_path, max_items=12, ablation="no-text,no-weights,global-noise")
    pairs = MMedPO().build_pairs(context)
    assert pairs and {p.kind for p in pairs} == {"visual"} and {p.weight for p in pairs} == {1.0}
    assert all(p.source.endswith("-global") for p in pairs)


@pytest.mark.parametrize("options, match", [
    ({"noise": "blur"}, "option 'noise'"),
    ({"weighting": "zscore"}, "option 'weighting'"),
    ({"text_pairs": "off", "visual_pairs": "no"}, "cannot both be off"),
    ({"text_judge": "llm"}, "needs a judge"),
    ({"text_generator": "sample-and-judge"}, "samples the target model, but none was given"),
    ({}, r"'sample-and-judge' \(the default\) samples the target model.*text_generator=rules"),
    ({"visual_items": "normal"}, "option 'visual_items'"),
    ({"noise": "gaussian"}, "option 'noise': expected one of diffusion, release, global"),
    ({"num_samples": "many"}, "option 'num_samples' expects int, got 'many'"),
    ({"colour": 1}, "method 'mmedpo' has no option 'colour'"),
    ({"ablation": "no-everything"}, "unknown mmedpo ablation"),
])
def test_bad_options_are_one_line_errors(synth_train, tmp_path, options, match):
    task, dataset = synth_train
    with pytest.raises(HarnessError, match=match):
        curate(_context(task, dataset, tmp_path, **options))


class FakeVLM:
    """Answers every question with the same k samples (a real model is exercised in test_models.py)."""

    name = "fake"

    def __init__(self, samples):
        self.samples = samples
        self.calls = 0

    def generate(self, images, prompts, config=None):
        self.calls += 1
        if not config.do_sample:  # the one greedy answer per item (the base's own error distribution)
            return [self.samples[0] for _ in prompts]
        assert config.num_return_sequences == len(self.samples)
        return [list(self.samples) for _ in prompts]

    def describe(self):
        return {"name": "fake", "samples": self.samples}


def test_sample_and_judge_with_consensus_weights(synth_train, tmp_path, monkeypatch, scripted_judge):
    task, dataset = synth_train
    judges = {
        "fake:a": scripted_judge(["CHOICE: 1", "SCORE: 0.9"], "a"),  # picks, then scores relevance
        "fake:b": scripted_judge(["AGREE"], "b"),
    }
    monkeypatch.setattr("harness.curation.judges.make_judge", lambda spec, **options: judges[spec])
    model = FakeVLM(["a large mass in the right lung", "a large mass in the right lung"])
    result = curate(_context(task, dataset, tmp_path, model=model, max_items=4, visual_pairs=False,
                             judges="fake:a,fake:b", num_samples=2, weighting="release",
                             max_fallback_share=1.0))  # the scripted replies do not fit every later prompt
    assert model.calls == 2  # k samples, then one greedy answer per item
    assert [p.source for p in result.pairs][:1] == ["mmedpo-judge-pick"]
    first = result.pairs[0]
    assert first.rejected == "a large mass in the right lung"
    assert first.extra["relevance"]["consensus"] and first.extra["relevance"]["scores_given"] == [0.9, 0.9]
    # the manifest says how many items the judge failed on, and those pairs' sources say the same
    fell = sum(p.source == "mmedpo-rules-fallback" for p in result.pairs)
    assert result.manifest["judges"]["fallback_stages"].get("text", 0) == fell
    assert result.manifest["behaviour"]["text"] == ("paper" if not fell else
                                                    f"paper ({fell} of 4 items fell back to offline-rules)")


class CaseVLM:
    """Answers each (image, prompt) with the samples a function of them gives (a real model is used below)."""

    name = "case-fake"

    def __init__(self, answer):
        self.answer = answer

    def generate(self, images, prompts, config=None):
        return [self.answer(image, prompt) for image, prompt in zip(images, prompts)]

    def describe(self):
        return {"name": self.name}


def test_offline_sample_and_judge_picks_the_models_own_mistakes(synth_train, tmp_path):
    task, dataset = synth_train
    by_case = {(s["image"].tobytes(), task.prompt(s)): s for s in dataset}
    assert len(by_case) == len(dataset)

    def answer(image, prompt):  # closed questions: the model always says the opposite; open ones: the truth
        truth = by_case[image.tobytes(), prompt]["answer"]
        return [truth, {"yes": "no", "no": "yes"}.get(truth, truth)]

    result = curate(_context(task, dataset, tmp_path, model=CaseVLM(answer), text_generator="sample-and-judge",
                             visual_pairs=False, num_samples=2, weighting="release"))
    samples = {str(s["id"]): s for s in dataset}
    closed = {str(s["id"]) for s in dataset if s["answer_type"] == "closed"}
    assert closed and len(closed) < len(dataset)
    for pair in result.pairs:
        sample_id = pair.id.rsplit("-", 1)[0]
        case = samples[sample_id]
        found = contradictions(pair.rejected, case)
        assert found, (pair.rejected, case["answer"])  # every rejected answer is a real mistake about its case
        # the weight is the severity of what it contradicts (release weighting keeps raw scores)
        assert pair.weight == pytest.approx(severity(found)) and pair.extra["relevance"]["source"] == "factcheck"
        expected = "mmedpo-truth-pick" if sample_id in closed else "mmedpo-injector-fallback"
        assert pair.source == expected and pair.extra["text"]["judge"] == "ground-truth"
        if sample_id in closed:
            assert pair.rejected == {"yes": "no", "no": "yes"}[case["answer"]]
    manifest = result.manifest
    assert manifest["text_judge"] == "ground-truth" and manifest["behaviour"]["text"] == "offline-ground-truth-judge"
    assert sum(manifest["sources"]["text"].values()) == manifest["counts"]["text"] == len(result.pairs)
    assert manifest["sources"]["text"]["mmedpo-truth-pick"] == len(closed)
    # the weights tell errors apart; the heaviest is a "no" to a present finding (a denied finding)
    heaviest = max(result.pairs, key=lambda p: p.weight)
    assert len({p.weight for p in result.pairs}) >= 3
    assert heaviest.rejected == "no" and heaviest.extra["text"]["contradictions"][0]["kind"] == "denied_finding"
    stats = manifest["weights"]["text"]
    weights = sorted(p.weight for p in result.pairs)
    assert stats["n"] == len(weights) and stats["min"] == weights[0] and stats["max"] == weights[-1]
    assert stats["min"] <= stats["q1"] <= stats["median"] <= stats["q3"] <= stats["max"]
    assert manifest["weights"]["visual"] is None


def test_items_without_a_verified_hallucination_are_skipped_and_counted(synth_train, tmp_path, monkeypatch):
    task, dataset = synth_train
    monkeypatch.setattr("harness.curation.hallucinate.make_hallucination", lambda sample, *, seed: None)
    model = CaseVLM(lambda image, prompt: ["no abnormality"])
    result = curate(_context(task, dataset, tmp_path, model=model, max_items=12, text_generator="sample-and-judge",
                             num_samples=1, denial_floor=False))
    text = [p for p in result.pairs if p.kind == "text"]
    skipped = result.manifest["skipped"]["text"]
    assert len(text) + sum(skipped.values()) == 12 and sum(skipped.values()) > 0
    assert list(skipped) == ["no sample contradicts the truth and the injector made no hallucination the fact "
                             "checker confirms"]
    assert {p.source for p in text} == {"mmedpo-truth-pick"}
    assert all(contradictions(p.rejected, next(s for s in dataset if p.id.startswith(s["id"]))) for p in text)
    assert result.manifest["counts"]["skipped"] == sum(skipped.values()) + sum(result.manifest["skipped"]["visual"].values())


def test_offline_sample_and_judge_with_the_tiny_model(synth_reports, tiny_vlm, tmp_path):
    task, dataset = synth_reports
    result = curate(_context(task, dataset, tmp_path, model=tiny_vlm, max_items=4, visual_pairs=False,
                             text_generator="sample-and-judge", num_samples=2, max_new_tokens=24))
    assert result.pairs and set(result.manifest["sources"]["text"]) <= {
        "mmedpo-truth-pick", "mmedpo-injector-fallback", "mmedpo-denial-floor-greedy", "mmedpo-denial-floor-injector"}
    for pair in result.pairs:
        case = next(s for s in dataset if pair.id.startswith(s["id"]))
        assert contradictions(pair.rejected, case) and len(pair.extra["text"]["samples"]) == 2
        if pair.source == "mmedpo-truth-pick":
            assert pair.rejected in [s.strip() for s in pair.extra["text"]["samples"]]


def test_weight_distribution_is_hand_computed():
    stats = distribution([4.0, 1.0, 3.0, 2.0])
    assert stats == {"n": 4, "min": 1.0, "q1": 1.75, "median": 2.5, "q3": 3.25, "max": 4.0, "mean": 2.5}
    assert distribution([0.5]) == {"n": 1, "min": 0.5, "q1": 0.5, "median": 0.5, "q3": 0.5, "max": 0.5, "mean": 0.5}
    assert distribution([]) is None


def test_naming_a_text_judge_asks_for_samples_and_the_model():
    from mmedpo.method import MMedPO

    # the default is the paper's procedure: the target model's samples, judged (offline: by the ground truth)
    assert CurationConfig().resolved_generator() == "sample-and-judge"
    assert CurationConfig().resolved_text_judge() == "ground-truth"
    assert CurationConfig(text_generator="rules").resolved_text_judge() is None
    config = CurationConfig(text_judge="ground-truth")
    assert config.resolved_generator() == "sample-and-judge" and config.resolved_relevance() == "factcheck"
    assert MMedPO.builder_needs_model({"text_judge": "ground-truth"})
    assert MMedPO.builder_needs_model({"text_generator": "sample-and-judge"})
    assert MMedPO.builder_needs_model({})
    assert not MMedPO.builder_needs_model({"text_generator": "rules"})
    assert not MMedPO.builder_needs_model({"ablation": "no-text"})
