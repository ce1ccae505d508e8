"""Curation end to end on real synthetic samples: record format, caching, resume, options, judges."""

from __future__ import annotations

import json

import pytest

from harness.errors import HarnessError
from harness.methods import PairContext
from harness.preferences import read_pairs
from mmedpo.config import CurationConfig
from mmedpo.curate import build_mmedpo_pairs, curate
from mmedpo.stages import Curator


def _context(task, dataset, tmp_path, model=None, **options):
    return PairContext(task=task, samples=dataset, model=model, output_dir=tmp_path, seed=0, options=options)


def test_offline_curation_pools_text_and_visual_pairs(synth_train, tmp_path):
    task, dataset = synth_train
    result = curate(_context(task, dataset, tmp_path))
    text = [p for p in result.pairs if p.kind == "text"]
    visual = [p for p in result.pairs if p.kind == "visual"]
    lesions = sum(1 for s in dataset if s["boxes"] != "[]")
    assert len(text) == len(dataset) and len(visual) == lesions > 0
    for pair in text:
        assert pair.rejected != pair.chosen and pair.rejected_image is None and pair.source == "mmedpo-rules"
    for pair in visual:
        assert pair.rejected == pair.chosen and pair.rejected_image != pair.image
        assert (result.image_root / pair.rejected_image).is_file() and (result.image_root / pair.image).is_file()
    weights = [p.weight for p in result.pairs]
    assert min(weights) >= 0.75 and max(weights) <= 1.25 and len(set(weights)) > 1
    assert result.manifest["behaviour"] == {"noise": "paper", "weighting": "paper", "text": "offline-rules",
                                            "relevance": "offline-heuristic"}
    # the file on disk is the release format, read back by the project's reader
    on_disk = list(read_pairs(result.pairs_path))
    assert [p.to_record() for p in on_disk] == [p.to_record() for p in result.pairs]
    record = json.loads(result.pairs_path.read_text().splitlines()[0])
    assert {"id", "image", "conversations", "rejected_conversations", "weighted_score", "kind", "source"} <= set(record)


def test_a_second_call_reads_the_cache_and_settings_change_the_key(synth_train, tmp_path, monkeypatch):
    task, dataset = synth_train
    first = curate(_context(task, dataset, tmp_path, max_items=10))
    monkeypatch.setattr(Curator, "run_batch", lambda *a, **k: pytest.fail("recomputed a cached curation"))
    again = curate(_context(task, dataset, tmp_path, max_items=10))
    assert again.pairs_path == first.pairs_path
    assert [p.to_record() for p in again.pairs] == [p.to_record() for p in first.pairs]
    monkeypatch.undo()
    other = curate(_context(task, dataset, tmp_path, max_items=10, weighting="release"))
    assert other.pairs_path != first.pairs_path
    assert {p.weight for p in other.pairs} <= {0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0}


def test_interrupted_curation_resumes_without_redoing_items(synth_train, tmp_path, monkeypatch):
    task, dataset = synth_train
    reference = curate(_context(task, dataset, tmp_path / "whole"))
    calls = {"text": 0}
    original = Curator.text_item

    def crashing(self, sample, samples):
        calls["text"] += 1
        if calls["text"] == 20:
            raise KeyboardInterrupt
        return original(self, sample, samples)

    monkeypatch.setattr(Curator, "text_item", crashing)
    with pytest.raises(KeyboardInterrupt):
        curate(_context(task, dataset, tmp_path / "resumed"))
    items = next((tmp_path / "resumed").glob("mmedpo-*/items.jsonl"))
    done_text = sum(json.loads(line)["kind"] == "text" for line in items.read_text().splitlines())
    assert done_text == 19 and not list((tmp_path / "resumed").glob("mmedpo-*/pairs.jsonl"))
    calls["text"] = 100  # no more crashes; count the items redone
    result = curate(_context(task, dataset, tmp_path / "resumed"))
    assert calls["text"] - 100 == len(dataset) - 19
    assert [p.to_record() for p in result.pairs] == [p.to_record() for p in reference.pairs]


def test_ablation_switches(synth_train, tmp_path):
    task, dataset = synth_train
    only_text = build_mmedpo_pairs(_context(task, dataset, tmp_path, max_items=12), CurationConfig(visual_pairs=False))
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
    ({"text_generator": "sample-and-judge"}, "needs a judge"),
    ({"num_samples": "many"}, "cannot read 'many'"),
    ({"colour": 1}, "unknown mmedpo option"),
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
        assert config.do_sample and config.num_return_sequences == len(self.samples)
        return [list(self.samples) for _ in prompts]

    def describe(self):
        return {"name": "fake", "samples": self.samples}


def test_sample_and_judge_with_consensus_weights(synth_train, tmp_path, monkeypatch, scripted_judge):
    task, dataset = synth_train
    judges = {
        "fake:a": scripted_judge(["CHOICE: 1", "SCORE: 0.9"], "a"),  # picks, then scores relevance
        "fake:b": scripted_judge(["AGREE"], "b"),
    }
    monkeypatch.setattr("mmedpo.judges.make_judge", lambda spec, **options: judges[spec])
    model = FakeVLM(["a large mass in the right lung", "a large mass in the right lung"])
    result = curate(_context(task, dataset, tmp_path, model=model, max_items=4, visual_pairs=False,
                             judges="fake:a,fake:b", num_samples=2, weighting="release"))
    assert model.calls == 1
    assert [p.source for p in result.pairs][:1] == ["mmedpo-judge-pick"]
    first = result.pairs[0]
    assert first.rejected == "a large mass in the right lung"
    assert first.extra["relevance"]["consensus"] and first.extra["relevance"]["scores_given"] == [0.9, 0.9]
    assert result.manifest["behaviour"]["text"] == "paper" and result.manifest["behaviour"]["relevance"] == "paper"
