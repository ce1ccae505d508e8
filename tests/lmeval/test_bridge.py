"""lm-eval bridge: exported task folders, an offline lm_eval run that matches harness eval, and the import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.cli import main

LIMIT = 20


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!function", lambda loader, node: f"!function {loader.construct_scalar(node)}")


def test_export_writes_every_task_with_harness_hooks(tmp_path, capsys):
    assert main(["export", "lm-eval", str(tmp_path)]) == 0
    assert "vqa_rad: vqa_rad_closed, vqa_rad_open" in capsys.readouterr().out
    for task in ("vqa_rad", "slake", "iu_xray", "mimic_cxr", "synth_vqa", "synth_report"):
        assert (tmp_path / task / "utils.py").is_file()
    closed = yaml.load((tmp_path / "vqa_rad" / "vqa_rad_closed.yaml").read_text(), Loader=_Loader)
    assert closed["doc_to_image"] == "!function utils.doc_to_image"
    assert closed["custom_dataset"] == "!function utils.load_dataset"
    assert closed["generation_kwargs"] == {"until": [], "do_sample": False, "temperature": 0.0, "max_gen_toks": 8}
    assert [m["metric"] for m in closed["metric_list"]] == ["closed_accuracy", "closed_accuracy_llava_med"]
    report = yaml.load((tmp_path / "iu_xray" / "iu_xray.yaml").read_text(), Loader=_Loader)
    assert {"chexpert_f1_micro", "hallucination_rate"} <= {m["metric"] for m in report["metric_list"]}
    hall = next(m for m in report["metric_list"] if m["metric"] == "hallucination_rate")
    assert hall["higher_is_better"] is False
    group = yaml.safe_load((tmp_path / "vqa_rad" / "_vqa_rad_group.yaml").read_text())
    assert group == {"group": "vqa_rad", "task": ["vqa_rad_closed", "vqa_rad_open"], "metadata": {"version": 1.0}}


def test_exported_hooks_load_real_items_and_score_with_harness_metrics(tmp_path, shared_data):
    import importlib.util

    from harness.tasks import get_task

    main(["export", "lm-eval", str(tmp_path), "--tasks", "vqa_rad", "--data-dir", str(shared_data)])
    spec = importlib.util.spec_from_file_location("exported_utils", tmp_path / "vqa_rad" / "utils.py")
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    docs = utils.load_dataset(task="vqa_rad", answer_type="closed", split="test", data_dir=str(shared_data))["test"]
    assert set(docs["answer_type"]) == {"closed"} and len(docs) == 272
    doc = docs[0]
    assert utils.doc_to_text_closed(doc) == "<image>" + get_task("vqa_rad").prompt(doc)
    assert utils.doc_to_image(doc)[0].mode == "RGB"
    items = [utils.process_results_closed(d, [p])["closed_accuracy"] for d, p in ((docs[0], "yes"), (docs[1], "no"))]
    expected = sum(str(d["answer"]).strip().lower() == p for d, p in ((docs[0], "yes"), (docs[1], "no"))) / 2
    assert utils.aggregate_closed_accuracy(items) == expected


def test_prompt_format_needs_a_model_with_a_chat_template(tmp_path, capsys):
    (tmp_path / "model").mkdir()
    code = main(["export", "lm-eval", str(tmp_path / "out"), "--prompt-format-from", str(tmp_path / "model")])
    assert code == 2 and "model" in capsys.readouterr().err


def _lm_eval(model_dir: Path, tasks_dir: Path, out_dir: Path, home: Path) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HARNESS_HOME": str(home),
           "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [sys.executable, "-m", "lm_eval", "--model", "hf-multimodal",
               "--model_args", f"pretrained={model_dir},dtype=float32", "--device", "cpu",
               "--include_path", str(tasks_dir), "--tasks", "vqa_rad_closed", "--limit", str(LIMIT),
               "--output_path", str(out_dir), "--log_samples"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(next(out_dir.rglob("results_*.json")).read_text())


@pytest.mark.slow
def test_lm_eval_offline_matches_harness_eval_on_the_same_items(tmp_path, shared_data, lmeval_model_dir,
                                                                 isolated_harness_home, capsys):
    from harness.evaluation import evaluate
    from harness.models.hf import load_hf_model
    from harness.results.store import ResultsStore
    from harness.tasks import get_task

    tasks_dir = tmp_path / "lm_tasks"
    assert main(["export", "lm-eval", str(tasks_dir), "--tasks", "vqa_rad", "--data-dir", str(shared_data),
                 "--prompt-format-from", str(lmeval_model_dir)]) == 0
    results = _lm_eval(lmeval_model_dir, tasks_dir, tmp_path / "lm_out", isolated_harness_home)
    samples = [json.loads(line) for line in next((tmp_path / "lm_out").rglob("samples_*.jsonl")).open()]
    lm_answers = {s["doc"]["id"]: s["filtered_resps"][0].strip() for s in samples}
    assert len(lm_answers) == LIMIT

    # harness eval over the first items of the split that hold the same 20 closed questions
    kinds = get_task("vqa_rad").load("test", data_dir=shared_data)["answer_type"]
    n_items = [i for i, k in enumerate(kinds) if k == "closed"][LIMIT - 1] + 1
    model = load_hf_model(lmeval_model_dir, device="cpu", dtype="fp32")
    store = tmp_path / "results.sqlite"
    ours = evaluate(model, ["vqa_rad"], limit=n_items, data_dir=shared_data, store=store, progress=False,
                    output_dir=tmp_path / "harness_run")
    harness_answers = {r["id"]: r["prediction"] for r in ours.tasks["vqa_rad"].predictions
                       if r["answer_type"] == "closed"}
    assert harness_answers == lm_answers  # the same prompt, template, budget and greedy decoding, item by item
    lm_acc = results["results"]["vqa_rad_closed"]["closed_accuracy,none"]
    assert lm_acc == pytest.approx(ours.tasks["vqa_rad"].metrics["closed_accuracy"].value)

    # the import records the run with its samples as predictions, which regress can compare item by item
    results_file = next((tmp_path / "lm_out").rglob("results_*.json"))
    assert main(["import", "lm-eval", str(results_file), "--store", str(store), "--model", "tiny-lm-eval"]) == 0
    run_id = capsys.readouterr().out.split()[-1]
    rows = ResultsStore(store).results(run_ids=[run_id])
    assert {(r["task"], r["metric"]) for r in rows} == {("vqa_rad", "closed_accuracy"),
                                                         ("vqa_rad", "closed_accuracy_llava_med")}
    assert main(["regress", "--baseline", ours.run_id, "--candidate", run_id, "--store", str(store),
                 "--metrics", "closed_accuracy", "--n-boot", "200", "--allow-partial"]) == 0  # lm-eval: closed only


def test_import_rejects_a_file_without_results(tmp_path, capsys):
    bad = tmp_path / "results.json"
    bad.write_text(json.dumps({"config": {}}))
    assert main(["import", "lm-eval", str(bad), "--store", str(tmp_path / "s.sqlite")]) == 2
    assert "results.json, field 'results'" in capsys.readouterr().err


def test_import_without_samples_records_metrics_only(tmp_path):
    from harness.lmeval.importer import import_lm_eval
    from harness.results.store import ResultsStore

    payload = {"results": {"iu_xray": {"alias": "iu_xray", "bleu_4,none": 0.12, "bleu_4_stderr,none": 0.01,
                                       "hallucination_rate,none": 0.3, "hallucination_rate_stderr,none": "N/A"}},
               "higher_is_better": {"iu_xray": {"bleu_4": True, "hallucination_rate": False}},
               "n-samples": {"iu_xray": {"original": 590, "effective": 590}},
               "config": {"model": "hf-multimodal", "model_args": {"pretrained": "org/model"}}}
    path = tmp_path / "results_2025.json"
    path.write_text(json.dumps(payload))
    store = ResultsStore(tmp_path / "s.sqlite")
    run_id = import_lm_eval(path, store=store)
    rows = {r["metric"]: r for r in store.results(run_ids=[run_id])}
    assert rows["bleu_4"]["ci_low"] == pytest.approx(0.12 - 1.96 * 0.01) and rows["bleu_4"]["n"] == 590
    assert rows["hallucination_rate"]["higher_is_better"] is False and rows["hallucination_rate"]["ci_low"] is None
    run = store.get_run(run_id)
    assert run["source"] == "lm-eval" and run["predictions_dir"] is None and run["model"] == "org/model"
