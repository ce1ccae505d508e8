"""``harness push``: the upload folder (model, processor, card, results), prepared-only without a token or a Hub,
uploaded through ``huggingface_hub.HfApi`` with one (a recording stand-in: no network), a refusal in one line."""

from __future__ import annotations

import json

import pytest

from harness.cli import main

huggingface_hub = pytest.importorskip("huggingface_hub")
TOKEN = "hf_" + "TestTokenThatMustNeverBePrinted0123"  # built at run time: no token-shaped literal in the source


class RecordingApi:
    """Stands in for ``huggingface_hub.HfApi``: records calls, checks the folder as ``upload_folder`` would see it."""

    calls: list = []
    fail_with: Exception | None = None
    user = "someone"

    def __init__(self, token=None, **kwargs):
        RecordingApi.calls.append(("init", token))

    def whoami(self):
        RecordingApi.calls.append(("whoami",))
        return {"name": self.user}

    def create_repo(self, repo_id, *, private=None, exist_ok=False, repo_type=None, **kwargs):
        RecordingApi.calls.append(("create_repo", repo_id, private, exist_ok, repo_type))
        if RecordingApi.fail_with is not None:
            raise RecordingApi.fail_with
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, *, repo_id, folder_path, repo_type=None, commit_message=None, **kwargs):
        from pathlib import Path

        files = sorted(p.name for p in Path(folder_path).iterdir())
        RecordingApi.calls.append(("upload_folder", repo_id, str(folder_path), repo_type, files))
        return None


@pytest.fixture
def api(monkeypatch):
    RecordingApi.calls, RecordingApi.fail_with = [], None
    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingApi)
    return RecordingApi


def _only_call(api, name):
    calls = [c for c in api.calls if c[0] == name]
    assert len(calls) == 1, api.calls
    return calls[0]


def test_without_a_token_the_folder_is_prepared_and_named_in_one_line(fake_run, home, api, capsys):
    run_dir = fake_run("r1")
    assert main(["push", "r1"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    folder = run_dir / "push" / "adapter"
    assert len(out) == 1 and str(folder) in out[0] and "HF_TOKEN is not set" in out[0]
    assert api.calls == []  # nothing talked to the Hub
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md", "adapter_config.json", "adapter_model.safetensors", "chat_template.jinja",
        "preprocessor_config.json", "processor_config.json", "results.json", "tokenizer.json",
        "tokenizer_config.json"]
    adapter_config = json.loads((folder / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] is None and adapter_config["r"] == 16  # no machine path
    assert (folder / "adapter_model.safetensors").read_bytes() == b"adapter weights"
    results = json.loads((folder / "results.json").read_text())
    assert results["results"] == json.loads((run_dir / "eval" / "results.json").read_text())["results"]
    assert results["evaluated"] is True and set(results["data"]) == {"synth_vqa", "synth_report"}
    for name in ("README.md", "results.json", "adapter_config.json"):
        assert str(home) not in (folder / name).read_text()
    card = huggingface_hub.ModelCard.load(folder / "README.md")
    assert card.data.eval_results and "[More Information Needed]" not in card.text


def test_with_a_token_it_creates_the_repo_and_uploads_the_prepared_folder(fake_run, home, api, monkeypatch, capsys,
                                                                          caplog):
    run_dir = fake_run("r1")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert main(["push", "r1", "--repo-id", "me/tiny-dpo", "--private"]) == 0
    out = capsys.readouterr()
    folder = run_dir / "push" / "adapter"
    assert ("init", TOKEN) in api.calls  # the token reaches the client, and nothing else
    assert _only_call(api, "create_repo") == ("create_repo", "me/tiny-dpo", True, True, "model")
    _, repo, path, repo_type, files = _only_call(api, "upload_folder")
    assert (repo, path, repo_type) == ("me/tiny-dpo", str(folder), "model")
    assert {"README.md", "adapter_model.safetensors", "results.json"} <= set(files)
    assert "uploaded the adapter of r1 to https://huggingface.co/me/tiny-dpo" in out.out
    assert TOKEN not in out.out + out.err + caplog.text
    card = huggingface_hub.ModelCard.load(folder / "README.md")
    assert card.data.model_name == "tiny-dpo" and 'PeftModel.from_pretrained(base, "me/tiny-dpo")' in card.text


def test_without_a_repo_id_it_asks_whose_token_it_is(fake_run, home, api, monkeypatch, capsys):
    fake_run("r1")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert main(["push", "r1", "--merged", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)  # only JSON on stdout
    assert data["uploaded"] is True and data["kind"] == "merged" and data["repo_id"] == "someone/tiny-dpo-r1"
    assert _only_call(api, "whoami") and _only_call(api, "create_repo")[1] == "someone/tiny-dpo-r1"
    assert "model.safetensors" in data["files"] and "adapter_config.json" not in data["files"]


def test_an_unreachable_hub_leaves_the_folder_prepared_and_exits_0(fake_run, home, api, monkeypatch, capsys):
    httpx = pytest.importorskip("httpx")

    fake_run("r1")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    api.fail_with = httpx.ConnectError("[Errno -3] Temporary failure in name resolution")
    assert main(["push", "r1", "--repo-id", "me/tiny-dpo", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["uploaded"] is False and "unreachable (ConnectError" in data["reason"]
    assert (home / "runs" / "r1" / "push" / "adapter" / "README.md").is_file()


def test_offline_mode_prepares_without_calling_the_hub(fake_run, home, api, monkeypatch, capsys):
    fake_run("r1")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["push", "r1", "--repo-id", "me/x"]) == 0
    assert "offline mode" in capsys.readouterr().out and api.calls == []


def test_a_refused_token_is_one_line_with_exit_2_and_never_shows_the_token(fake_run, home, api, monkeypatch,
                                                                            capsys, caplog):
    fake_run("r1")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    response = httpx_response(401)
    api.fail_with = huggingface_hub.errors.HfHubHTTPError("401 Client Error: Unauthorized", response=response)
    assert main(["push", "r1", "--repo-id", "me/tiny-dpo"]) == 2
    out = capsys.readouterr()
    lines = [line for line in out.err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "HTTP 401" in lines[0] and "Traceback" not in out.err
    assert TOKEN not in out.out + out.err + caplog.text


def httpx_response(status: int):
    httpx = pytest.importorskip("httpx")

    return httpx.Response(status, request=httpx.Request("POST", "https://huggingface.co/api/repos/create"))


@pytest.mark.parametrize("argv, message", [
    (["push", "nope"], "no harness run 'nope'"),
    (["push", "../etc"], "no such training folder"),
    (["push", "r1", "--repo-id", "bad id!"], "not a Hub repo id"),
    (["push", "r1", "--repo-id", "noslash"], "'owner/name'"),
])
def test_bad_input_is_one_line(fake_run, home, capsys, argv, message):
    fake_run("r1")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_an_evaluation_run_has_no_model_to_push(home, capsys):
    folder = home / "runs" / "e1"
    folder.mkdir(parents=True)
    (folder / "run.json").write_text("{}")
    assert main(["push", "e1"]) == 2
    assert "is an evaluation" in capsys.readouterr().err


def test_merged_of_a_training_without_a_merged_model_is_refused(fake_run, home, capsys):
    import shutil

    run_dir = fake_run("r1")
    shutil.rmtree(run_dir / "train" / "model")
    assert main(["push", "r1", "--merged"]) == 2
    assert "no merged model" in capsys.readouterr().err


def test_a_harness_train_folder_is_pushed_by_its_path_with_the_base_named(tmp_path, home, capsys):
    from harness.curation.preferences import PreferencePair
    from harness.methods import get_method
    from harness.results.card import write_training_cards

    out = tmp_path / "train-dpo"
    (out / "adapter").mkdir(parents=True)
    (out / "adapter" / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(tmp_path)}))
    (out / "adapter" / "adapter_model.safetensors").write_bytes(b"w")
    (out / "train_config.json").write_text(json.dumps({"method": "dpo", "hparams": {"beta": 0.1}, "config": {},
                                                       "total_steps": 1}))
    pairs = [PreferencePair(id="1", image="a.png", prompt="q", chosen="yes", rejected="no")]
    write_training_cards(out, method=get_method("dpo")(), pairs=pairs, base_spec=str(tmp_path), base_model="m@00")
    assert main(["push", str(out), "--base-model", "llava-hf/llava-1.5-7b-hf", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    folder = out / "push" / "adapter"
    assert data["folder"] == str(folder) and data["uploaded"] is False
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "llava-hf/llava-1.5-7b-hf"
    card = huggingface_hub.ModelCard.load(folder / "README.md")
    assert card.data.base_model == "llava-hf/llava-1.5-7b-hf" and "Not evaluated" in card.text


def test_a_second_push_replaces_the_folder_whole(fake_run, home, capsys, tmp_path):
    fake_run("r1")
    target = tmp_path / "upload"
    assert main(["push", "r1", "--output-dir", str(target)]) == 0
    (target / "stale.txt").write_text("from an older push")
    assert main(["push", "r1", "--output-dir", str(target), "--merged"]) == 0
    names = {p.name for p in target.iterdir()}
    assert "stale.txt" not in names and "model.safetensors" in names and "adapter_config.json" not in names
    assert not any(p.name.startswith((".tmp-", ".old-")) for p in tmp_path.iterdir())


@pytest.mark.slow
def test_push_of_a_real_run_prepares_a_folder_peft_loads(dpo_run, capsys, monkeypatch):
    pytest.importorskip("peft")
    from peft import PeftConfig

    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert main(["push", dpo_run.name, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    folder = dpo_run / "push" / "adapter"
    assert data["folder"] == str(folder) and data["uploaded"] is False
    assert PeftConfig.from_pretrained(str(folder)).base_model_name_or_path is None
    from transformers import AutoProcessor

    assert AutoProcessor.from_pretrained(str(folder)) is not None  # the processor travels with the adapter
    card = huggingface_hub.ModelCard.load(folder / "README.md")
    assert card.data.eval_results and "[More Information Needed]" not in card.text
