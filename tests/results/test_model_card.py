"""Model cards (``harness.results.card``): Hub metadata that ``huggingface_hub`` reads back, the run's own results
in the model-index, no PEFT placeholder, no machine path; ``base_model`` only when the base is on the Hub."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from harness.results.card import (
    FACTS_FILE,
    facts_from_run,
    hub_id_of,
    model_card,
    pairs_summary,
    write_run_cards,
    write_training_cards,
)

ModelCard = pytest.importorskip("huggingface_hub").ModelCard
PLACEHOLDER = "[More Information Needed]"


def _load(path: Path):
    return ModelCard.load(path)  # raises on a model-index it cannot parse


def _no_machine_path(text: str, *roots: Path) -> None:
    for root in roots:
        assert str(root) not in text
    assert "/tmp/" not in text and "/home/" not in text and "/root/" not in text


def test_a_runs_cards_replace_peft_template_and_hold_its_results(fake_run, fake_results, home):
    run_dir = fake_run()
    assert PLACEHOLDER in (run_dir / "train" / "adapter" / "README.md").read_text()
    written = write_run_cards(run_dir)
    assert [p.parent.name for p in written] == ["adapter", "model"]
    for path, library in zip(written, ("peft", "transformers")):
        text = path.read_text()
        assert PLACEHOLDER not in text
        _no_machine_path(text, home)
        card = _load(path)
        assert card.data.library_name == library
        assert card.data.to_dict()["model-index"]  # the Hub's key, in the YAML itself
        got = {(r.dataset_name, r.metric_type): r for r in card.data.eval_results}
        assert set(got) == {(r["task"], r["metric"]) for r in fake_results}
        for row in fake_results:  # the values results.json holds, with n and the interval
            result = got[(row["task"], row["metric"])]
            assert result.metric_value == row["value"] and result.dataset_split == "test"
            assert result.metric_args["n"] == row["n"]
            assert (result.metric_args["ci_low"], result.metric_args["ci_high"]) == (row["ci_low"], row["ci_high"])
            assert result.metric_args["higher_is_better"] is row["higher_is_better"]
        assert got[("synth_vqa", "closed_accuracy")].task_type == "visual-question-answering"
        assert got[("synth_report", "false_finding_rate")].task_type == "image-to-text"


def test_the_card_names_method_citation_pairs_settings_and_partial_data(fake_run, home):
    card = _load(write_run_cards(fake_run())[0])
    data, text = card.data, card.text
    assert {"dpo", "medical", "preference-optimization", "lora", "arxiv:2305.18290"} <= set(data.tags)
    assert "Direct Preference Optimization" in text and "https://arxiv.org/abs/2305.18290" in text
    assert "`beta=0.1`" in text and "| `lr` | `0.0001` |" in text and "1 optimizer steps" in text
    assert "ref_cache" not in text  # a path-valued setting is left out, not printed
    assert "| synth_vqa | 3 | text 3 | injector 3 |" in text and "default-text-0123456789ab" in text
    assert "| synth_vqa | closed_accuracy | 0.7500 | [0.3006, 0.9544] | 4 | higher |" in text
    assert "| synth_report | false_finding_rate | 0.1250 | [0.0000, 0.3000] | 4 | lower |" in text
    assert "**Partial test set**" in text and "synth_vqa: limit 4" in text
    assert "PeftModel.from_pretrained" in text


def test_a_builtin_base_is_left_out_of_base_model_with_a_note(fake_run, home):
    card = _load(write_run_cards(fake_run())[0])
    assert card.data.base_model is None and card.data.datasets is None and card.data.license is None
    assert "built-in `tiny` model" in card.text and "`tiny@0123456789abcdef`" in card.text


def test_a_base_from_the_hub_cache_is_named_by_its_hub_id_with_its_license(fake_run, home):
    snapshot = home / "hub" / "models--llava-hf--llava-1.5-7b-hf" / "snapshots" / "a272c74"
    snapshot.mkdir(parents=True)
    (snapshot / "README.md").write_text("---\nlicense: llama2\n---\n# LLaVA\n")
    run_dir = fake_run(model=f"llava:{snapshot}", data_source="hub-snapshot:flaviagiammarino/vqa-rad")
    card = _load(write_run_cards(run_dir)[0])
    assert card.data.base_model == "llava-hf/llava-1.5-7b-hf" and card.data.license == "llama2"
    assert card.data.datasets == ["flaviagiammarino/vqa-rad"]
    assert {r.dataset_type for r in card.data.eval_results} == {"flaviagiammarino/vqa-rad"}
    assert 'from_pretrained("llava-hf/llava-1.5-7b-hf")' in card.text
    _no_machine_path(card.text, home)


@pytest.mark.parametrize("spec, expected", [
    ("llava-hf/llava-1.5-7b-hf", "llava-hf/llava-1.5-7b-hf"),
    ("hf:Qwen/Qwen2-VL-2B-Instruct", "Qwen/Qwen2-VL-2B-Instruct"),
    ("tiny", None), ("./models/x", None), ("a/b/c", None), ("../x", None), ("", None),
])
def test_hub_ids_are_recognised_and_paths_are_not(spec, expected):
    assert hub_id_of(spec) == expected


def test_a_local_folder_that_is_not_in_the_hub_cache_has_no_hub_id(tmp_path):
    folder = tmp_path / "org" / "model"
    folder.mkdir(parents=True)
    assert hub_id_of(folder) is None and hub_id_of(f"llava:{folder}") is None


def test_a_card_before_the_evaluation_says_it_is_pending_and_has_no_model_index(fake_run, home):
    run_dir = fake_run(evaluated=False)
    card = _load(write_run_cards(run_dir)[0])
    assert not card.data.eval_results and "model-index" not in card.data.to_dict()
    assert "Not evaluated yet" in card.text and PLACEHOLDER not in card.text


def test_a_full_fine_tuning_gets_one_transformers_card(fake_run, home):
    run_dir = fake_run(lora=False)
    written = write_run_cards(run_dir)
    assert [p.parent.name for p in written] == ["model"]
    card = _load(written[0])
    assert card.data.library_name == "transformers" and "lora" not in card.data.tags
    assert "fully fine-tuned" in card.text


def test_a_non_finite_result_is_kept_out_of_the_model_index(fake_run, fake_results, home):
    run_dir = fake_run()
    path = run_dir / "eval" / "results.json"
    payload = json.loads(path.read_text())
    payload["results"][1]["value"] = float("nan")
    path.write_text(json.dumps(payload))
    results = _load(write_run_cards(run_dir)[0]).data.eval_results
    assert len(results) == len(fake_results) - 1 and all(math.isfinite(r.metric_value) for r in results)


def test_a_training_without_evaluation_gets_a_card_that_says_so(tmp_path):
    from harness.curation.preferences import PreferencePair
    from harness.methods import get_method

    out = tmp_path / "train-dpo"
    (out / "adapter").mkdir(parents=True)
    (out / "adapter" / "README.md").write_text("# Model Card for Model ID\n[More Information Needed]\n")
    (out / "train_config.json").write_text(json.dumps({"method": "dpo", "hparams": {"beta": 0.2},
                                                       "config": {"lr": 5e-6}, "pairs": 2, "total_steps": 1}))
    pairs = [PreferencePair(id=str(i), image=str(tmp_path / f"{i}.png"), prompt="q", chosen="yes", rejected="no")
             for i in range(2)]
    written = write_training_cards(out, method=get_method("dpo")(beta=0.2), pairs=pairs,
                                   base_spec="llava-hf/llava-1.5-7b-hf", base_model="llava-1.5-7b-hf@00ff")
    card = _load(written[0])
    assert card.data.base_model == "llava-hf/llava-1.5-7b-hf" and not card.data.eval_results
    assert "Not evaluated" in card.text and "`beta=0.2`" in card.text and PLACEHOLDER not in card.text
    assert json.loads((out / FACTS_FILE).read_text())["pairs"]["total"] == 2
    _no_machine_path(card.text, tmp_path)


def test_the_pairs_digest_is_their_content_not_where_their_images_lie():
    from harness.curation.preferences import PreferencePair

    def pairs(root: str, chosen: str = "yes"):
        return [PreferencePair(id="synth_vqa-1", image=f"{root}/a.png", prompt="q", chosen=chosen, rejected="no")]

    here, there = pairs_summary(pairs("/data/x"), ["synth_vqa"]), pairs_summary(pairs("/elsewhere"), ["synth_vqa"])
    assert here["sha256"] == there["sha256"] and here["tasks"]["synth_vqa"]["count"] == 1
    assert pairs_summary(pairs("/data/x", chosen="no finding"), ["synth_vqa"])["sha256"] != here["sha256"]


def test_a_run_folder_that_is_not_a_run_is_one_line(tmp_path):
    from harness.core.errors import HarnessError

    with pytest.raises(HarnessError, match="not a harness run"):
        facts_from_run(tmp_path, "adapter")


def test_model_card_refuses_an_unknown_kind(fake_run, home):
    from harness.core.errors import HarnessError

    facts = facts_from_run(fake_run(), "adapter")
    facts.kind = "gguf"
    with pytest.raises(HarnessError, match="kind must be one of"):
        model_card(facts)


@pytest.mark.slow
def test_after_harness_run_the_adapter_and_model_cards_hold_the_runs_results(dpo_run, isolated_harness_home):
    results = json.loads((dpo_run / "eval" / "results.json").read_text())["results"]
    assert results
    for folder, library in (("adapter", "peft"), ("model", "transformers")):
        text = (dpo_run / "train" / folder / "README.md").read_text()
        assert PLACEHOLDER not in text
        _no_machine_path(text, isolated_harness_home)
        card = ModelCard(text)
        assert card.data.library_name == library and card.data.to_dict()["model-index"]
        got = {(r.dataset_name, r.metric_type): (r.metric_value, r.metric_args["n"]) for r in card.data.eval_results}
        assert got == {(r["task"], r["metric"]): (r["value"], r["n"]) for r in results
                       if math.isfinite(r["value"])}
        assert "`tiny@" in card.text and card.data.base_model is None


def test_a_relative_model_folder_never_passes_for_a_hub_id_when_read_from_elsewhere(fake_run, home, tmp_path,
                                                                                    monkeypatch):
    project = tmp_path / "project"
    (project / "models" / "llava").mkdir(parents=True)
    monkeypatch.chdir(project)
    run_dir = fake_run(model="models/llava")  # 'org/name'-shaped, but a folder where the run was started
    assert _load(write_run_cards(run_dir)[0]).data.base_model is None
    monkeypatch.chdir(tmp_path)  # harness push from another folder: the facts the run saved decide
    assert facts_from_run(run_dir, "adapter").base_model_id is None


@pytest.mark.slow
def test_harness_train_writes_cards_that_say_the_model_was_not_evaluated(dpo_run, tmp_path):
    from harness.cli import main

    pairs = json.loads((dpo_run / "pipeline.json").read_text())["pairs_dir"]
    out = tmp_path / "train-dpo"
    assert main(["train", "--method", "dpo", "--model", "tiny", "--pairs", f"{pairs}/pairs.jsonl", "--limit", "4",
                 "--max-steps", "1", "--batch-size", "4", "--output-dir", str(out), "--no-progress"]) == 0
    for folder, library in (("adapter", "peft"), ("model", "transformers")):
        card = _load(out / folder / "README.md")
        assert card.data.library_name == library and not card.data.eval_results
        assert "Not evaluated" in card.text and "`tiny@" in card.text and PLACEHOLDER not in card.text
        assert "| pairs | 4 | text 4 |" in card.text
        _no_machine_path(card.text, tmp_path)


@pytest.mark.slow
def test_harness_sft_writes_cards_too(tiny_model_dir, tmp_path):
    from harness.cli import main

    out = tmp_path / "sft"
    assert main(["sft", "--model", "tiny", "--tasks", "synth_vqa", "--limit", "4", "--max-steps", "1",
                 "--batch-size", "4", "--output-dir", str(out), "--no-progress"]) == 0
    card = _load(out / "adapter" / "README.md")
    assert "sft" in card.data.tags and "`harness sft`" in card.text and "| pairs | 4 | sft 4 |" in card.text
    assert PLACEHOLDER not in card.text
