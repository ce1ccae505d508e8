"""Secrets never reach what the harness writes.

A user plants a key the ways they might: ``OPENAI_API_KEY``, a variable named by ``api_key_env``, the key
inside an endpoint URL, and options named ``api_key`` / ``token`` (refused). A tiny offline curation with an
LLM judge and an evaluation of an ``openai:`` model run against a local fake endpoint; then the results are
exported (``harness results --export``, JSON and CSV) and a Space is exported. Every file under
``HARNESS_HOME`` and every exported file is searched: no key appears anywhere.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from harness.cli import main

KEY_ENV = "sk-planted-env-5f0c2a9d1b"  # $OPENAI_API_KEY
KEY_CUSTOM = "sk-planted-custom-7e31c4aa"  # $MY_JUDGE_KEY, named by api_key_env
KEY_OPTION = "sk-planted-option-0b9d88e2"  # given as an option: refused
SECRETS = (KEY_ENV, KEY_CUSTOM, KEY_OPTION)
REAL_JPG = "synpic42202.jpg"


def _fake_openai_class():
    spec = importlib.util.spec_from_file_location("fake_openai", Path(__file__).parent / "models" / "fake_openai.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FakeOpenAI


@pytest.fixture
def server():
    server = _fake_openai_class()()
    plain = server.answer

    def answer(body):  # judges get a relevance score; the evaluated model echoes (fake_openai's default)
        reply = plain(body)
        if body["model"] == "judge":
            reply["choices"][0]["message"]["content"] = "SCORE: 0.7"
        return reply

    server.answer = answer
    yield server
    server.close()


@pytest.fixture
def planted(tmp_path, monkeypatch, shared_data, server):
    home = tmp_path / "home"
    data = tmp_path / "vqa_rad"
    (data / "images").mkdir(parents=True)
    shutil.copy(shared_data / "vqa_rad" / "images" / REAL_JPG, data / "images" / REAL_JPG)
    records = [{"qid": i, "image_name": REAL_JPG, "image_organ": "CHEST", "answer": a, "answer_type": "CLOSED",
                "question_type": "PRES", "question": q, "phrase_type": "freeform"}
               for i, (q, a) in enumerate([("Is there a pneumothorax?", "no"),
                                           ("Is there evidence of an aortic aneurysm?", "yes")], start=1)]
    for name in ("testset.json", "trainset.json"):
        (data / name).write_text(json.dumps(records), encoding="utf-8")
    port = server.base_url.split(":")[2].split("/")[0]
    monkeypatch.setenv("HARNESS_HOME", str(home))
    monkeypatch.delenv("HARNESS_STORE", raising=False)
    monkeypatch.setenv("HARNESS_DATA_VQA_RAD", str(data))
    monkeypatch.setenv("OPENAI_API_KEY", KEY_ENV)
    monkeypatch.delenv("HARNESS_OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("MY_JUDGE_KEY", KEY_CUSTOM)
    # a key inside the endpoint URL (user:password@host) travels into model descriptions and run configs
    monkeypatch.setenv("HARNESS_OPENAI_BASE_URL", f"http://planted:{KEY_ENV}@127.0.0.1:{port}/v1")
    return home


def _leaks(paths: list[Path]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for root in paths:
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        for path in files:
            data = path.read_bytes()
            for secret in SECRETS:
                if secret.encode() in data:
                    found.setdefault(secret, []).append(str(path))
    return found


def test_a_planted_key_appears_in_no_file_the_harness_writes(planted, server, tmp_path, capsys):
    home = planted
    # an option that carries a key is refused, and the message does not echo it
    assert main(["curate", "--method", "mmedpo", "--task", "vqa_rad", "--option",
                 f'judge_options={{"api_key": "{KEY_OPTION}"}}']) == 2
    err = capsys.readouterr().err
    assert "OPENAI_API_KEY" in err and KEY_OPTION not in err

    # curation with an LLM judge, its key from the variable api_key_env names
    judge_options = {"api_key_env": "MY_JUDGE_KEY", "backoff": 0, "base_url": server.base_url}
    assert main(["curate", "--method", "mmedpo", "--task", "vqa_rad", "--format", "json",
                 "--option", "judges=openai:judge", "--option", f"judge_options={json.dumps(judge_options)}",
                 "--option", "text_generator=rules", "--option", "visual_pairs=false"]) == 0
    curated = json.loads(capsys.readouterr().out)[0]
    judged = [r for r in server.requests if r["body"]["model"] == "judge"]
    assert judged and all(r["auth"] == f"Bearer {KEY_CUSTOM}" for r in judged)  # the key was used...
    assert curated["pairs"] >= 1

    # an evaluation of an endpoint model, stored and approved: the store row holds the endpoint URL
    assert main(["eval", "--model", "openai:fake-vlm", "--tasks", "vqa_rad", "--format", "json", "--no-progress"]) == 0
    run_id = json.loads(capsys.readouterr().out)["run_id"]
    assert [r for r in server.requests if r["body"]["model"] == "fake-vlm"]
    assert main(["results", "approve", run_id]) == 0
    from harness.results.store import ResultsStore

    endpoint = ResultsStore().get_run(run_id)["config"]["model"]["endpoint"]
    assert endpoint.startswith("http://planted:[REDACTED]@127.0.0.1")  # the URL's key was there, and redacted

    exports = tmp_path / "exports"
    exports.mkdir()
    for name in ("results.json", "results.csv", "results.md"):
        assert main(["results", "--export", str(exports / name)]) == 0
    assert main(["leaderboard", "export-space", str(exports / "space")]) == 0
    capsys.readouterr()

    written = [p for p in exports.rglob("*") if p.is_file()]
    assert (exports / "results.json").stat().st_size > 0 and any(p.parent.name == "space" for p in written)
    assert _leaks([home, exports]) == {}  # ...and appears in no file: manifests, items, store, exports, Space


def test_redaction_of_secret_keys_and_known_values(monkeypatch, tmp_path):
    from harness.io import read_json, write_json
    from harness.results.store import ResultsStore, RunRecord
    from harness.secrets import redact

    monkeypatch.setenv("OPENAI_API_KEY", KEY_ENV)
    config = {"judge_options": {"api_key": KEY_OPTION, "api_key_env": "MY_JUDGE_KEY", "max_tokens": 8,
                                "base_url": f"http://u:{KEY_ENV}@host/v1"}, "hf_token": "hf_abcdefgh"}
    clean = redact(config)
    assert clean["judge_options"] == {"api_key": "[REDACTED]", "api_key_env": "MY_JUDGE_KEY", "max_tokens": 8,
                                      "base_url": "http://u:[REDACTED]@host/v1"}
    assert clean["hf_token"] == "[REDACTED]"
    write_json(tmp_path / "pipeline.json", {"config": config})
    assert read_json(tmp_path / "pipeline.json")["config"] == clean
    store = ResultsStore(tmp_path / "store.sqlite")
    store.add_run(RunRecord(model="m", config=config, run_id="r1"), [])
    assert store.get_run("r1")["config"] == clean
    assert _leaks([tmp_path]) == {}
