"""``harness run``: the whole pipeline on the tiny model, its reuse of the base evaluation, and resume."""

from __future__ import annotations

import pytest

from harness.cli import build_parser, main
from harness.core.errors import HarnessError
from harness.experiments.pipeline import (
    DEFAULT_MODEL,
    SMALL_MODEL_TRAIN_DEFAULTS,
    RunConfig,
    check_config,
    model_fingerprint,
    pairs_dir,
    resolve_base_model,
    run,
)
from harness.results.store import ResultsStore
from harness.training.config import TrainConfig

pytestmark = pytest.mark.slow


def _config(tmp_path, method: str, **kw) -> RunConfig:
    kw.setdefault("train", {"batch_size": 4})
    kw.setdefault("model", "tiny")  # the session's tiny model, not the default testbed
    return RunConfig(method=method, tasks=("synth_vqa",), train_limit=12, eval_limit=6,
                     store=str(tmp_path / "store.sqlite"), **kw)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, tiny_model_dir):
    tmp = tmp_path_factory.mktemp("pipeline")
    first = run(_config(tmp, "dpo"))
    second = run(_config(tmp, "mmedpo"))
    return tmp, first, second


def test_run_stores_base_and_method_and_prints_both(two_runs):
    tmp, first, _ = two_runs
    store = ResultsStore(tmp / "store.sqlite")
    stored = {r["run_id"]: r for r in store.runs()}
    assert set(stored) >= {first.run_id, first.base_run_id}
    assert stored[first.run_id]["method"] == "dpo"
    assert stored[first.run_id]["base_model"] == stored[first.base_run_id]["model"]
    assert [row["run"] for row in first.table] == ["base", "dpo (this run)"]
    assert all(row["synth_vqa/closed_accuracy"] for row in first.table)
    assert (first.trained_model / "config.json").exists()


def test_a_run_records_the_method_citation_version_and_both_seeds(two_runs):
    tmp, first, _ = two_runs
    saved = ResultsStore(tmp / "store.sqlite").get_run(first.run_id)["config"]
    info = saved["method_info"]
    assert info["name"] == "dpo" and "arXiv" in info["citation"] and info["module"].startswith("baselines.")
    from importlib.metadata import version

    assert info["version"] == version("medpo-harness")  # the distribution that ships baselines/
    assert saved["train_seed"] == 0 and saved["pair_seed"] == 0
    assert saved["pipeline"]["train"]["batch_size"] == 4  # the nested training config is recorded whole


def test_second_method_reuses_the_base_evaluation_and_lists_earlier_runs(two_runs):
    tmp, first, second = two_runs
    assert second.base_run_id == first.base_run_id
    assert [row["run"] for row in second.table] == ["base", "dpo", "mmedpo (this run)"]
    store = ResultsStore(tmp / "store.sqlite")
    assert len(store.runs()) == 3  # one base evaluation, two method runs
    pairs = (second.pairs_dir / "pairs.jsonl").read_text().splitlines()
    assert any('"kind": "visual"' in line for line in pairs)  # mmedpo's own builder, not the default


def test_rerun_with_the_same_id_resumes_without_redoing_stages(two_runs, monkeypatch):
    tmp, first, _ = two_runs
    import harness.experiments.pipeline as pipeline

    def fail(*args, **kwargs):
        raise AssertionError("a finished stage ran again")

    monkeypatch.setattr("harness.training.train_preference", fail)
    monkeypatch.setattr(pipeline, "default_text_pairs", fail)
    again = run(_config(tmp, "dpo"), run_id=first.run_id)
    mine = [row for row in again.table if row["run_id"] in (first.run_id, first.base_run_id)]
    assert mine == first.table  # the same stored numbers; the table now also lists the later mmedpo run


def test_pairs_are_keyed_by_the_data_seed_not_the_training_seed_or_loss(tmp_path):
    name = "tiny@abc"
    seed0 = pairs_dir(_config(tmp_path, "dpo"), name, {})
    assert pairs_dir(_config(tmp_path, "dpo", train={"batch_size": 4, "seed": 3}), name, {}) == seed0
    assert pairs_dir(_config(tmp_path, "dpo", options={"beta": "0.5"}), name, {}) == seed0
    assert pairs_dir(_config(tmp_path, "dpo", pair_seed=1), name, {}) != seed0
    assert pairs_dir(_config(tmp_path, "mmedpo"), name, {"ablation": "no-visual"}) != \
        pairs_dir(_config(tmp_path, "mmedpo"), name, {})
    # every method without a builder trains on the same default text pairs: one cache, not one per method
    assert pairs_dir(_config(tmp_path, "ipo"), name, {}) == seed0 == pairs_dir(_config(tmp_path, "sft"), name, {})
    assert seed0.name.startswith("default-text-")
    assert pairs_dir(_config(tmp_path, "mmedpo"), name, {}) != seed0


def test_a_run_id_of_another_method_is_refused(two_runs):
    tmp, first, _ = two_runs
    with pytest.raises(HarnessError, match="is a 'dpo' run"):
        run(_config(tmp, "ipo"), run_id=first.run_id)


@pytest.mark.parametrize("method, options, message", [
    ("dpo", {"lamda": "10"}, "method 'dpo' has no option 'lamda' \\(options: beta\\)"),
    ("dpo", {"bta": "1"}, "did you mean 'beta'"),
    ("dpo", {"beta": "high"}, "'beta' expects float"),
    ("mmedpo", {"ablaton": "no-visual"}, "did you mean 'ablation'"),
])
def test_option_keys_are_checked_before_any_model_loads(tmp_path, monkeypatch, method, options, message):
    import harness.experiments.pipeline as pipeline

    def no_model(*args, **kwargs):
        raise AssertionError("a model was resolved before the options were checked")

    monkeypatch.setattr(pipeline, "resolve_base_model", no_model)
    with pytest.raises(HarnessError, match=message):
        run(_config(tmp_path, method, options=options))


def test_builder_and_loss_options_together_are_accepted():
    check_config(RunConfig(method="mmedpo", options={"ablation": "no-visual", "beta": "0.2"}))


def test_the_cli_rejects_an_unknown_option_in_one_line(capsys):
    assert main(["run", "--method", "dpo", "--option", "lamda=10"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no option 'lamda'" in err


def test_every_training_flag_reaches_the_nested_train_config():
    from harness.cli.commands.run import run_config_from_args

    args = build_parser().parse_args(["run", "--method", "dpo", "--grad-accum", "2", "--gradient-checkpointing",
                                      "--ref-cache", "refs", "--seed", "3", "--pair-seed", "5", "--lr", "2e-4"])
    config = run_config_from_args(args, options={})
    assert (config.train.grad_accum, config.train.gradient_checkpointing, config.train.ref_cache) == (2, True, "refs")
    assert (config.train.seed, config.pair_seed, config.train.lr) == (3, 5, 2e-4)
    # flags not given keep the run's defaults for the built-in small models
    assert DEFAULT_MODEL in ("tiny", "testbed")
    assert config.train.batch_size == SMALL_MODEL_TRAIN_DEFAULTS["batch_size"] and config.train.save_every == 20
    other = run_config_from_args(build_parser().parse_args(["run", "--model", "/models/x"]), options={})
    assert other.train.lr == TrainConfig().lr and other.train.max_length == TrainConfig().max_length


def test_bad_settings_are_one_line_errors(tmp_path):
    with pytest.raises(HarnessError, match="eval-limit"):
        RunConfig(eval_limit=0)
    with pytest.raises(HarnessError, match="merge-lora"):
        RunConfig(train={"merge_lora": False})
    with pytest.raises(HarnessError, match="grad_accum"):
        RunConfig(train={"grad_accum": 0})
    with pytest.raises(HarnessError, match="local model folder or a built-in model name"):
        resolve_base_model(str(tmp_path / "missing"))


def test_built_in_models_resolve_through_the_registry(tiny_model_dir):
    assert resolve_base_model("tiny") == tiny_model_dir


def test_headline_columns_come_from_the_task_then_its_family():
    from harness.results.compare import headline_metrics
    from harness.tasks import get_task

    assert headline_metrics(get_task("synth_report"))[0] == "finding_f1"  # exact factuality on synthetic data
    assert "false_finding_rate" in headline_metrics(get_task("synth_report"))
    assert headline_metrics(get_task("iu_xray")) == ("bleu", "rouge_l", "meteor", "hallucination_rate")
    assert headline_metrics(get_task("vqa_rad")) == ("closed_accuracy", "open_recall")


def test_model_fingerprint_changes_with_the_weights(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"x" * 10)
    before = model_fingerprint(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"x" * 11)
    assert model_fingerprint(tmp_path) != before


def test_default_text_pairs_are_keyed_by_their_mode_and_flagged_on_the_cli(tmp_path):
    from harness.cli.commands.run import run_config_from_args

    name = "tiny@abc"
    sampled = pairs_dir(_config(tmp_path, "dpo"), name, {})
    assert RunConfig().text_pairs == "sample-and-judge"  # the paper's procedure is the default
    assert pairs_dir(_config(tmp_path, "dpo", text_pairs="injector"), name, {}) != sampled
    # a method with its own builder does not use the default pairs: the setting does not split its cache
    assert pairs_dir(_config(tmp_path, "mmedpo", text_pairs="injector"), name, {}) == \
        pairs_dir(_config(tmp_path, "mmedpo"), name, {})
    args = build_parser().parse_args(["run", "--method", "dpo", "--text-pairs", "injector"])
    assert run_config_from_args(args, options={}).text_pairs == "injector"
    with pytest.raises(HarnessError, match="--text-pairs must be one of sample-and-judge, injector"):
        RunConfig(text_pairs="judge")


class _PriorVLM:
    """A base whose greedy report and samples all say the text prior: "The lungs are clear"."""

    name = "prior"

    def generate(self, images, prompts, config=None):
        prior = "The heart size is normal. The lungs are clear. There is no pleural effusion or pneumothorax."
        k = config.num_return_sequences
        return [[prior] * k if k > 1 else prior for _ in prompts]


def test_build_pairs_writes_the_default_pairs_manifest_beside_them(tmp_path, monkeypatch):
    import json

    import harness.models.hf as hf
    from harness.curation.errortypes import classify
    from harness.experiments.pipeline import build_pairs
    from harness.methods import get_method
    from harness.tasks import get_task

    monkeypatch.setattr(hf, "load_hf_model", lambda *a, **k: _PriorVLM())
    config = RunConfig(method="dpo", model="tiny", tasks=("synth_report",), train_limit=24)
    folder = tmp_path / "pairs"
    pairs = build_pairs(config, get_method("dpo")(), tmp_path, folder, {})
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["text_pairs"] == "sample-and-judge" and set(manifest["tasks"]) == {"synth_report"}
    report = manifest["tasks"]["synth_report"]
    cases = {str(s["id"]): s for s in get_task("synth_report").load("train")}
    lesion = [p for p in pairs if p.extra["case"] == "lesion"]
    assert lesion and report["cases"]["lesion"] == len(lesion)
    # the base denies every lesion; so does every lesion-case pair (its own sample, picked by the judge)
    assert report["error_mix"]["base"]["lesion"] == {"denial": len(lesion)}
    assert report["error_mix"]["pairs"]["lesion"] == {"denial": len(lesion)}
    assert all(p.source == "model-sample" and classify(p.rejected, cases[p.id.split("-", 1)[1]]).primary == "denial"
               for p in lesion)
    assert report["denial_rule"]["holds"] and report["denial_rule"]["base_denial_share"] == 1.0
    assert (folder / "pairs.jsonl").exists()
