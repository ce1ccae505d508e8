"""Run folders for the model-card and push tests.

``fake_run`` lays out a finished ``harness run`` folder file for file as the pipeline writes it (pipeline.json,
train/train_config.json, train/adapter with PEFT's template README, train/model with the processor's files,
eval/results.json and eval/run.json, the pair cache), without training, so most tests take milliseconds.
``dpo_run`` is a real ``harness run --method dpo --model tiny`` (one optimizer step, four test items), made
once per session for the end-to-end checks.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.curation.preferences import PreferencePair, write_pairs

DPO_CITATION = ("Rafailov, Sharma, Mitchell, Ermon, Manning, Finn. Direct Preference Optimization: Your Language "
                "Model is Secretly a Reward Model. NeurIPS 2023. arXiv:2305.18290")
# what PEFT 0.x writes as adapter/README.md: its empty template
PEFT_TEMPLATE = """---
base_model: {base}
library_name: peft
---

# Model Card for Model ID

## Model Details

- **Developed by:** [More Information Needed]
- **License:** [More Information Needed]
"""
RESULTS = [
    {"task": "synth_vqa", "metric": "closed_accuracy", "value": 0.75, "ci_low": 0.3006, "ci_high": 0.9544, "n": 4,
     "higher_is_better": True, "task_version": "1.1"},
    {"task": "synth_vqa", "metric": "open_recall", "value": 0.5, "ci_low": 0.25, "ci_high": 0.75, "n": 2,
     "higher_is_better": True, "task_version": "1.1"},
    {"task": "synth_report", "metric": "false_finding_rate", "value": 0.125, "ci_low": 0.0, "ci_high": 0.3,
     "n": 4, "higher_is_better": False, "task_version": "1.0"},
]


def _write(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data, indent=2), encoding="utf-8")


def make_run(home: Path, run_id: str = "r-card", *, model: str = "tiny", evaluated: bool = True,
             data_source: str | None = None, partial: str = "limit 4", lora: bool = True) -> Path:
    """A finished ``harness run`` folder under ``home/runs`` (see the module docstring); returns it."""
    run_dir = home / "runs" / run_id
    pairs_dir = home / "pairs" / "default-text-0123456789ab"
    pairs = [PreferencePair(id=f"{task}-{i}", image=str(home / "synth" / f"{task}-{i}.png"), prompt=f"q{i}",
                            chosen="yes", rejected="no", kind="text", source="injector")
             for task in ("synth_vqa", "synth_report") for i in range(3)]
    pairs_dir.mkdir(parents=True, exist_ok=True)
    write_pairs(pairs_dir / "pairs.jsonl", pairs)
    train = {"lr": 0.0001, "epochs": 1.0, "max_steps": 1, "batch_size": 4, "seed": 0, "lora": lora, "lora_r": 16,
             "ref_cache": str(home / "refcache"), "merge_lora": True, "report_to": "none"}
    config = {"method": "dpo", "model": model, "tasks": ["synth_vqa", "synth_report"], "data_dir": None,
              "train_limit": 8, "eval_limit": 4, "eval_split": "test", "eval_batch_size": 64, "pair_seed": 0,
              "options": {}, "text_pairs": "injector", "device": None, "store": str(home / "results.sqlite"),
              "train": train}
    _write(run_dir / "pipeline.json", {
        "run_id": run_id, "status": "finished", "config": config, "fingerprint": {},
        "method": {"name": "dpo", "citation": DPO_CITATION, "module": "baselines.dpo", "version": "0.1.0"},
        "base_model": "tiny@0123456789abcdef", "base_run_id": "base-fedcba9876543210", "pairs_dir": str(pairs_dir)})
    _write(run_dir / "train" / "train_config.json",
           {"method": "dpo", "hparams": {"beta": 0.1}, "config": train, "pairs": 6, "total_steps": 1})
    base_path = str(home / "models" / "tiny-2")
    if lora:
        adapter = run_dir / "train" / "adapter"
        _write(adapter / "adapter_config.json", {"peft_type": "LORA", "base_model_name_or_path": base_path, "r": 16,
                                                 "lora_alpha": 32, "target_modules": ["q_proj", "v_proj"]})
        (adapter / "adapter_model.safetensors").write_bytes(b"adapter weights")
        _write(adapter / "README.md", PEFT_TEMPLATE.format(base=base_path))
    model_dir = run_dir / "train" / "model"
    _write(model_dir / "config.json", {"_name_or_path": base_path, "model_type": "llava"})
    (model_dir / "model.safetensors").write_bytes(b"merged weights")
    for name in ("tokenizer.json", "tokenizer_config.json", "processor_config.json", "preprocessor_config.json",
                 "chat_template.jinja", "generation_config.json"):
        _write(model_dir / name, "{}")
    if evaluated:
        _write(run_dir / "eval" / "results.json", {
            "run_id": run_id, "model": {"name": "tiny@0123456789abcdef+dpo", "path": str(model_dir),
                                        "family": "llava", "fingerprint": "00aa"}, "results": RESULTS})
        data = {}
        for task in ("synth_vqa", "synth_report"):
            data[task] = {"task": task, "version": "1.0", "split": "test", "source": "generated", "options": {},
                          "items_sha256": "1" * 64, "content_sha256": "c0ffee" + "0" * 58, "n": 4, "n_split": 400,
                          "expected_n": 400, "partial": partial}
            if data_source:
                data[task]["data_source"] = data_source
        _write(run_dir / "eval" / "run.json", {
            "run_id": run_id, "model": {"name": "x", "path": str(model_dir)}, "tasks": list(data), "config": {},
            "data": data, "environment": {"versions": {"torch": "2.9.0", "peft": "0.17.1"},
                                          "harness_version": "0.1.0", "git_commit": "abc123", "seed": 0},
            "run_config": {}})
    return run_dir


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("HARNESS_HOME", str(home))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return home


@pytest.fixture
def fake_run(home):
    """``fake_run(run_id=..., model=..., evaluated=..., data_source=..., partial=..., lora=...)``: ``make_run`` under
    the test's own ``HARNESS_HOME``."""
    return lambda *args, **kwargs: make_run(home, *args, **kwargs)


@pytest.fixture
def fake_results():
    """The result rows ``fake_run`` writes into eval/results.json."""
    return [dict(row) for row in RESULTS]


@pytest.fixture(scope="session")
def dpo_run(tiny_model_dir, tmp_path_factory) -> Path:
    """A real ``harness run --method dpo --model tiny`` folder (one step; four test items of synth_vqa)."""
    from harness.cli import main
    from harness.core.paths import runs_dir

    store = tmp_path_factory.mktemp("card-store") / "store.sqlite"
    argv = ["run", "--method", "dpo", "--model", "tiny", "--tasks", "synth_vqa", "--train-limit", "8",
            "--eval-limit", "4", "--max-steps", "1", "--batch-size", "4", "--text-pairs", "injector",
            "--run-id", "card-dpo", "--store", str(store), "--no-progress"]
    assert main(argv) == 0
    return runs_dir() / "card-dpo"
