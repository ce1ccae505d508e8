"""Bad input to the CLI, as a new user or an attacker gives it: each case is a one-line ``error:`` naming what is
wrong, exit status 2, no traceback, and nothing left under ``HARNESS_HOME``.

Cases run in-process (``harness.cli.main``) against a fresh ``HARNESS_HOME`` each; two run as subprocesses to
show the whole command prints no traceback. Models load from an untrained ``tiny`` folder built once (outside
the case's ``HARNESS_HOME``), so a case that gets as far as loading a model builds nothing there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main

REAL_JPG = "synpic42202.jpg"  # an image of the real VQA-RAD test split


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    """An untrained tiny model folder (cheap to build; what these cases need is a loadable model)."""
    from harness.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("bad_input_tiny"))


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("HARNESS_HOME", str(path))
    monkeypatch.delenv("HARNESS_STORE", raising=False)
    return path


@pytest.fixture
def pairs_factory(tmp_path):
    """Write a pair file of ``records`` (dicts merged into a valid record) beside a real image."""
    from PIL import Image

    Image.new("RGB", (16, 16), (120, 30, 30)).save(tmp_path / "x.png")

    def write(*overrides: dict, raw: str | None = None) -> Path:
        path = tmp_path / "pairs.jsonl"
        if raw is not None:
            path = tmp_path / "raw-pairs.jsonl"
            path.write_text(raw, encoding="utf-8")
            return path
        rows = []
        for i, extra in enumerate(overrides or ({},)):
            row = {"id": f"p{i}", "image": "x.png",
                   "conversations": [{"from": "human", "value": "<image>\nIs there a mass?"},
                                     {"from": "gpt", "value": "no"}],
                   "rejected_conversations": [{"from": "human", "value": "<image>\nIs there a mass?"},
                                              {"from": "gpt", "value": "yes"}],
                   "weighted_score": 1.0, "kind": "text"}
            row.update(extra)
            rows.append(json.dumps({k: v for k, v in row.items() if v is not ...}))
        path.write_text("\n".join(rows) + "\n", encoding="utf-8")
        return path

    return write


@pytest.fixture
def vqa_rad_mini(tmp_path, monkeypatch, shared_data):
    """A two-item VQA-RAD test split over real images; a case may spoil the second, ``bad.jpg``."""
    folder = tmp_path / "vqa_rad"
    (folder / "images").mkdir(parents=True)
    shutil.copy(shared_data / "vqa_rad" / "images" / REAL_JPG, folder / "images" / REAL_JPG)
    shutil.copy(folder / "images" / REAL_JPG, folder / "images" / "bad.jpg")  # good until a case spoils it
    records = [
        {"qid": 1, "image_name": REAL_JPG, "image_organ": "CHEST", "answer": "yes", "answer_type": "CLOSED",
         "question_type": "PRES", "question": "Is there evidence of an aortic aneurysm?", "phrase_type": "freeform"},
        {"qid": 2, "image_name": "bad.jpg", "image_organ": "CHEST", "answer": "no", "answer_type": "CLOSED",
         "question_type": "PRES", "question": "Is there a pneumothorax?", "phrase_type": "freeform"},
    ]
    (folder / "testset.json").write_text(json.dumps(records), encoding="utf-8")
    (folder / "trainset.json").write_text(json.dumps(records), encoding="utf-8")
    monkeypatch.setenv("HARNESS_DATA_VQA_RAD", str(folder))
    return folder


# What a refused command may leave: the per-id lock files (a lock is an empty file the kernel releases) and the
# weights' digest cache (a speed-up keyed by content). Neither is a run, a result or a half-written output.
BOOKKEEPING = ("runs/.locks/", "studies/.locks/", "cache/file-digests.json")


def _files(home: Path) -> list[str]:
    if not home.exists():
        return []
    files = (str(p.relative_to(home)) for p in home.rglob("*") if p.is_file())
    return sorted(f for f in files if not f.startswith(BOOKKEEPING))


def check_error(argv: list[str], capsys, home: Path, *needles: str) -> str:
    """Run the CLI; assert exit 2, exactly one ``error:`` line holding every needle, no traceback, no leftovers."""
    code = main(argv)
    out, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2, (code, out, err)
    assert "Traceback" not in out + err
    assert len(errors) == 1, err
    for needle in needles:
        assert needle.lower() in errors[0].lower(), (needle, errors[0])
    assert _files(home) == [], _files(home)
    runs = home / "runs"
    left = [p for p in runs.iterdir() if p.name != ".locks"] if runs.exists() else []
    assert not left, left
    return errors[0]


LONG = "a" * 300

# --- options that would carry a secret: refused, naming the environment variable -------------------------
SECRET_OPTIONS = [
    (["run", "--method", "mmedpo", "--option", "api_key=sk-planted-0001"], "api_key"),
    (["run", "--method", "mmedpo", "--option", 'judge_options={"api_key": "sk-planted-0002"}'], "judge_options.api_key"),
    (["run", "--method", "mmedpo", "--option", 'judge_options={"openai:x": {"token": "sk-planted-0003"}}'],
     "judge_options.openai:x.token"),
    (["curate", "--method", "mmedpo", "--task", "synth_vqa", "--option", 'judge_options={"password": "hunter22"}'],
     "judge_options.password"),
    (["curate", "--method", "mmedpo", "--task", "synth_vqa", "--option",
      'judge_options={"authorization": "Bearer sk-planted-0004"}'], "authorization"),
    (["curate", "--method", "mmedpo", "--task", "synth_vqa", "--option", 'localizer_options={"hf_token": "hf_x1234"}'],
     "hf_token"),
]


@pytest.mark.parametrize("argv,field", SECRET_OPTIONS, ids=[f"secret-{i}" for i in range(len(SECRET_OPTIONS))])
def test_secret_options_are_refused(argv, field, capsys, home):
    line = check_error(argv, capsys, home, field, "OPENAI_API_KEY")
    assert "sk-planted" not in line and "hunter22" not in line  # the message does not echo the secret


# --- run ids: safe folder names only --------------------------------------------------------------------
RUN_IDS = [
    (["run", "--method", "dpo", "--model", "tiny", "--run-id", "../../etc"], "../../etc"),
    (["run", "--method", "dpo", "--model", "tiny", "--run-id", LONG], "300 characters"),
    (["run", "--method", "dpo", "--model", "tiny", "--run-id", ".hidden"], ".hidden"),
    (["eval", "--model", "tiny", "--tasks", "synth_vqa", "--run-id", "../outside"], "../outside"),
    (["eval", "--model", "tiny", "--tasks", "synth_vqa", "--run-id", LONG], "300 characters"),
    (["eval", "--model", "tiny", "--tasks", "synth_vqa", "--run-id", "a/b"], "a/b"),
    (["study", "--methods", "base,dpo", "--study-id", "../../s"], "../../s"),
]


@pytest.mark.parametrize("argv,needle", RUN_IDS, ids=[f"run-id-{i}" for i in range(len(RUN_IDS))])
def test_unsafe_run_ids_are_refused(argv, needle, capsys, home):
    check_error(argv, capsys, home, "--run-id", needle)


def test_a_very_long_regress_source_is_one_line(capsys, home):
    check_error(["regress", "--baseline", LONG, "--candidate", "b"], capsys, home, "aaaa")


# --- harness run: every option checked before any model loads --------------------------------------------
RUN_CASES = [
    (["run", "--method", "dpoo"], "dpo"),  # did-you-mean
    (["run", "--method", "dpo", "--option", "betta=0.2"], "betta"),
    (["run", "--method", "dpo", "--tasks", "synth_vqaa"], "synth_vqaa"),
    (["run", "--method", "dpo", "--train-limit", "-1"], "--train-limit"),
    (["run", "--method", "dpo", "--option", "beta=abc"], "beta"),
    (["run", "--method", "mmedpo", "--option", "ablation=no-such"], "no-such"),
    (["run", "--method", "mmedpo", "--option", "max_fallback_share=2"], "max_fallback_share"),
    (["run", "--method", "dpo", "--model", "/nonexistent/model-folder"], "/nonexistent/model-folder"),
]


@pytest.mark.parametrize("argv,needle", RUN_CASES, ids=[f"run-{i}" for i in range(len(RUN_CASES))])
def test_run_options_fail_before_any_work(argv, needle, capsys, home, monkeypatch):
    import harness.experiments.pipeline as pipeline

    monkeypatch.setattr(pipeline, "evaluate_base", lambda *a, **k: pytest.fail("reached the base evaluation"))
    check_error(argv, capsys, home, needle)


# --- harness curate --------------------------------------------------------------------------------------
CURATE_CASES = [
    (["curate", "--method", "mmedpo"], "--task"),
    (["curate", "--method", "mmedpo", "--task", "synth_vqa", "--option", "noise=bogus"], "noise"),
    (["curate", "--method", "mmedpo", "--task", "synth_vqa", "--option", "judges=nokind"], "judge"),
    (["curate", "--method", "nosuchmethod", "--task", "synth_vqa"], "nosuchmethod"),
]


@pytest.mark.parametrize("argv,needle", CURATE_CASES, ids=[f"curate-{i}" for i in range(len(CURATE_CASES))])
def test_curate_options(argv, needle, capsys, home):
    check_error(argv, capsys, home, needle)


# --- harness eval: options and data checked before the model loads; bad images name file and item ---------
def test_eval_options(capsys, home):
    model = "tiny"  # every case fails before a model loads
    for argv, needle in [
        (["--tasks", "synth_vqaa"], "synth_vqaa"),
        (["--tasks", "synth_vqa", "--limit", "0"], "limit"),
        (["--tasks", "synth_vqa", "--batch-size", "0"], "batch size"),
        (["--tasks", "synth_vqa", "--noise-step", "2000"], "noise step"),
        (["--tasks", "synth_vqa", "--timeout", "5"], "--timeout"),
    ]:
        check_error(["eval", "--model", model, *argv], capsys, home, needle)


def test_eval_missing_model_folder(capsys, home, vqa_rad_mini):
    check_error(["eval", "--model", "/nonexistent/model-folder", "--tasks", "vqa_rad"], capsys, home,
                "/nonexistent/model-folder")


@pytest.mark.parametrize("content", [b"", b"\xff\xd8\xff\xe0 not really a jpeg"], ids=["empty-jpg", "corrupt-jpg"])
def test_eval_bad_image_names_file_and_item(content, capsys, home, vqa_rad_mini, tiny_folder):
    (vqa_rad_mini / "images" / "bad.jpg").write_bytes(content)
    check_error(["eval", "--model", str(tiny_folder), "--tasks", "vqa_rad", "--batch-size", "2"], capsys, home,
                "bad.jpg", "record 2", "image")


def test_eval_data_is_checked_before_the_model_loads(capsys, home, vqa_rad_mini, monkeypatch):
    (vqa_rad_mini / "testset.json").write_text("[{\"qid\": 1,", encoding="utf-8")
    monkeypatch.setattr("harness.models.load_model", lambda *a, **k: pytest.fail("the model loaded first"))
    check_error(["eval", "--model", "tiny", "--tasks", "vqa_rad"], capsys, home, "testset.json")


def test_eval_missing_data_folder(capsys, home, monkeypatch, tmp_path):
    monkeypatch.setenv("HARNESS_DATA_VQA_RAD", str(tmp_path / "nowhere"))
    check_error(["eval", "--model", "tiny", "--tasks", "vqa_rad"], capsys, home, "nowhere")


def test_harness_home_that_cannot_be_created(capsys, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("HARNESS_HOME", str(blocker / "home"))
    check_error(["eval", "--model", "tiny", "--tasks", "synth_vqa"], capsys, blocker / "home", "HARNESS_HOME")


@pytest.fixture
def corrupt_model(tmp_path, tiny_folder) -> Path:
    folder = tmp_path / "corrupt-model"
    shutil.copytree(tiny_folder, folder)
    for weights in folder.glob("*.safetensors"):
        weights.write_bytes(b"\x00\x01 this is not a safetensors file")
    return folder


def test_eval_corrupt_safetensors(capsys, home, corrupt_model, vqa_rad_mini):
    check_error(["eval", "--model", str(corrupt_model), "--tasks", "vqa_rad"], capsys, home, "corrupt-model")


# --- harness train / sft: pairs checked when read (weights finite and in [0, 100]), nothing left behind ----
WEIGHT_CASES = [
    ({"weighted_score": -0.5}, "-0.5"),
    ({"weighted_score": 1e30}, "1e+30"),
    ({"weighted_score": float("inf")}, "inf"),
    ({"weighted_score": float("nan")}, "nan"),
    ({"weighted_score": "high"}, "high"),
    ({"weighted_score": True}, "True"),
]


@pytest.mark.parametrize("record,needle", WEIGHT_CASES, ids=[f"weight-{i}" for i in range(len(WEIGHT_CASES))])
def test_pair_weights_are_checked_when_read(record, needle, capsys, home, tmp_path, pairs_factory):
    pairs = pairs_factory({}, record)  # the second record is the bad one
    out = tmp_path / "out"
    check_error(["train", "--method", "dpo", "--model", "tiny", "--pairs", str(pairs),
                 "--image-root", str(tmp_path), "--output", str(out)], capsys, home,
                "pairs.jsonl", "record p1", "weighted_score", needle)
    assert not out.exists()  # no train_config.json or anything else


PAIR_CASES = [
    ({"conversations": ...}, "conversations"),
    ({"kind": "audio"}, "kind"),
    ({"image": "missing.png"}, "missing.png"),
    ({"image": ""}, "image"),
]


@pytest.mark.parametrize("record,needle", PAIR_CASES, ids=[f"pair-{i}" for i in range(len(PAIR_CASES))])
def test_bad_pair_records(record, needle, capsys, home, tmp_path, pairs_factory):
    pairs = pairs_factory(record)
    check_error(["train", "--method", "dpo", "--model", "tiny", "--pairs", str(pairs),
                 "--image-root", str(tmp_path), "--output", str(tmp_path / "out")], capsys, home,
                "pairs.jsonl", needle)
    assert not (tmp_path / "out").exists()


def test_train_input_errors(capsys, home, tmp_path, pairs_factory, corrupt_model):
    good = pairs_factory()
    base = ["train", "--model", "tiny", "--image-root", str(tmp_path)]  # these fail before a model loads
    afile = tmp_path / "plain-file"
    afile.write_text("x")
    for argv, needles in [
        ([*base, "--method", "dpo", "--pairs", str(tmp_path / "none.jsonl")], ("none.jsonl", "not found")),
        ([*base, "--method", "dpo", "--pairs", str(pairs_factory(raw='{"id": 1,\n{"x": 2}\n'))], ("line 1",)),
        ([*base, "--method", "dpo", "--pairs", str(good), "--output", str(afile)], ("--output", "plain-file")),
        ([*base, "--method", "dpo", "--pairs", str(good), "--output", str(afile / "sub")], ("is a file",)),
        ([*base, "--method", "dpo", "--pairs", str(good), "--set", "betta=0.1"], ("betta",)),
        ([*base, "--method", "dpoo", "--pairs", str(good)], ("dpoo",)),
        ([*base, "--method", "dpo", "--pairs", str(good), "--limit", "0"], ("--limit",)),
    ]:
        check_error(argv, capsys, home, *needles)
    out = tmp_path / "out-corrupt"
    check_error(["train", "--model", str(corrupt_model), "--method", "dpo", "--pairs", str(good), "--image-root",
                 str(tmp_path), "--output", str(out)], capsys, home, "corrupt-model")
    assert not out.exists()


def test_sft_bad_records(capsys, home, tmp_path):
    records = tmp_path / "sft.jsonl"
    records.write_text(json.dumps({"image": "x.png", "prompt": "q"}) + "\n", encoding="utf-8")
    check_error(["sft", "--model", "tiny", "--records", str(records), "--output",
                 str(tmp_path / "sft-out")], capsys, home, "sft.jsonl", "response")
    assert not (tmp_path / "sft-out").exists()


# --- end to end: the installed command prints one line and no traceback ------------------------------------
def _harness(args: list[str], home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HARNESS_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_subprocess_weight_infinity(tmp_path, pairs_factory):
    home = tmp_path / "home"
    pairs = pairs_factory({"weighted_score": float("inf")})
    done = _harness(["train", "--method", "dpo", "--model", "tiny", "--pairs", str(pairs),
                     "--image-root", str(tmp_path), "--output", str(tmp_path / "out")], home)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert [line for line in done.stderr.splitlines() if line.startswith("error:")] == [
        f"error: {pairs}, record p0, field 'weighted_score': weight inf is outside [0, 100]"]
    assert not (tmp_path / "out").exists() and _files(home) == []


# --- values checked before any model loads: ranges, splits, limits, pair files ------------------------------
@pytest.fixture
def no_model_loads(monkeypatch):
    """Every way a command loads a model (or starts the base evaluation) fails the test."""
    import harness.experiments.pipeline
    import harness.models
    import harness.models.hf
    import harness.models.resolve

    def loaded(*args, **kwargs):
        pytest.fail("a model loaded before the bad input was refused")

    for module, name in [(harness.models, "load_model"), (harness.models.resolve, "load_model"),
                         (harness.models.hf, "load_hf_model"), (harness.experiments.pipeline, "resolve_base_model"),
                         (harness.experiments.pipeline, "evaluate_base"), (harness.experiments.pipeline, "evaluate_base_model")]:
        monkeypatch.setattr(module, name, loaded)


BETAS = ["nan", "-1", "1e999"]


def check_refused(argv: list[str], capsys, home: Path, *needles: str) -> str:
    """``check_error`` for commands that may leave their lock file (``studies/.locks/``) and nothing else."""
    code = main(argv)
    out, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in out + err, (code, out, err)
    for needle in needles:
        assert needle.lower() in errors[0].lower(), (needle, errors[0])
    assert [f for f in _files(home) if not f.startswith("studies/.locks/")] == [], _files(home)
    return errors[0]


@pytest.mark.parametrize("beta", BETAS)
def test_run_refuses_a_beta_outside_its_range_before_any_model_loads(beta, capsys, home, no_model_loads):
    check_error(["run", "--method", "dpo", "--option", f"beta={beta}"], capsys, home,
                f"hyperparameter beta={beta} must be a finite number > 0")


@pytest.mark.parametrize("beta", BETAS)
def test_train_and_study_refuse_a_bad_beta_before_any_model_loads(beta, capsys, home, tmp_path, pairs_factory,
                                                                   no_model_loads):
    check_error(["train", "--method", "simpo", "--model", "tiny", "--pairs", str(pairs_factory()), "--image-root",
                 str(tmp_path), "--output", str(tmp_path / "out"), "--set", f"beta={beta}"], capsys, home,
                f"method 'simpo': hyperparameter beta={beta}")
    check_refused(["study", "--methods", f"base,ipo[beta={beta}]", "--lr-rule", "fixed"], capsys, home,
                  f"method 'ipo': hyperparameter beta={beta}")


VALUE_CASES = [
    (["run", "--method", "robust", "--option", "label_smoothing=0.5"], "label_smoothing=0.5"),
    (["run", "--method", "simpo", "--option", "gamma=-1"], "gamma=-1"),
    (["run", "--method", "dpo", "--lr", "inf"], "lr must be a finite number"),
    (["run", "--method", "dpo", "--eval-split", "bogus"], "task 'synth_vqa' has no such split"),
    (["run", "--method", "dpo", "--train-limit", "0"], "--train-limit must be positive, got 0"),
    (["run", "--method", "dpo", "--eval-limit", "0"], "--eval-limit must be positive, got 0"),
    (["study", "--methods", "base,dpo", "--eval-split", "bogus"], "--eval-split 'bogus'"),
    (["study", "--methods", "base", "--eval-split", "bogus"], "(splits: sft, train, val, test)"),
    (["study", "--methods", "base,dpo", "--train-limit", "0"], "--train-limit must be positive"),
    (["study", "--methods", "base,dpo", "--val-limit", "0"], "--val-limit must be positive"),
    (["eval", "--model", "tiny", "--tasks", "synth_vqa", "--split", "validation"], "has no such split"),
    (["eval", "--model", "tiny", "--tasks", "synth_vqa", "--limit", "-2"], "limit"),
    (["probes", "build", "--task", "synth_vqa", "--out", "probes.jsonl", "--limit", "0"], "--limit"),
]


@pytest.mark.parametrize("argv,needle", VALUE_CASES, ids=[f"value-{i}" for i in range(len(VALUE_CASES))])
def test_values_are_checked_before_any_model_loads(argv, needle, capsys, home, no_model_loads):
    check_refused(argv, capsys, home, needle)


def test_a_huge_option_value_is_not_echoed_whole(capsys, home, no_model_loads):
    huge = "9" * 120_000
    for argv, needle in [(["run", "--method", "dpo", "--option", f"beta={huge}"], "(120000 chars)"),
                         (["run", "--method", "dpo", "--option", f"beta=x{huge}"], "(120001 chars)"),
                         (["run", "--method", "dpo", "--option", f"{huge}=1"], "(120000 chars)"),
                         (["run", "--method", "mmedpo", "--option", f"noise={huge}"], "noise")]:
        line = check_error(argv, capsys, home, needle)
        assert len(line) < 400, line[:500]


@pytest.mark.parametrize("raw,needles", [
    ("dup", ("record line 3", "pair id 'p0' appears twice (first at line 1)")),
    ("cut", ("record line 2", "malformed JSON")),
])
def test_pair_file_problems_are_found_when_read(raw, needles, capsys, home, tmp_path, pairs_factory, no_model_loads):
    good = pairs_factory({}, {}).read_text(encoding="utf-8")
    first = good.splitlines()[0]
    text = good + first + "\n" if raw == "dup" else good.splitlines()[0] + "\n" + good.splitlines()[1][:50]
    pairs = pairs_factory(raw=text)
    check_error(["train", "--method", "dpo", "--model", "tiny", "--pairs", str(pairs), "--image-root", str(tmp_path),
                 "--output", str(tmp_path / "out")], capsys, home, "raw-pairs.jsonl", *needles)


def test_subprocess_bad_beta_is_one_line_before_any_model(tmp_path):
    home = tmp_path / "home"
    done = _harness(["run", "--method", "dpo", "--option", "beta=1e999"], home)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert [line for line in done.stderr.splitlines() if line.startswith("error:")] == [
        "error: method 'dpo': hyperparameter beta=1e999 must be a finite number > 0"]
    assert _files(home) == []
