"""A judge endpoint that fails: curation says so, stops, and asks again once the endpoint is back.

``harness curate --method mmedpo`` with an LLM judge against a local fault server (``fake_openai``: every
request answered 500, or a request cap): a non-zero exit with one line, a manifest that counts the fallbacks
and says which pairs they made, and a rerun after recovery that sends the judge requests again instead of
reusing the fallbacks as finished items.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from harness.cli import main
from harness.models import openai_model

REAL_JPG = "synpic42202.jpg"
QUESTIONS = [("Is there a pneumothorax?", "no"), ("Is there evidence of an aortic aneurysm?", "yes"),
             ("Is there a pleural effusion?", "no"), ("Is the heart enlarged?", "yes")]


@pytest.fixture
def server():
    path = Path(__file__).parents[1] / "models" / "fake_openai.py"
    spec = importlib.util.spec_from_file_location("fake_openai_outage", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    server = module.FakeOpenAI()
    plain = server.answer

    def answer(body):  # a judge that scores every pair 0.7
        reply = plain(body)
        reply["choices"][0]["message"]["content"] = "SCORE: 0.7"
        return reply

    server.answer = answer
    yield server
    server.close()


@pytest.fixture
def home(tmp_path, monkeypatch, shared_data):
    data = tmp_path / "vqa_rad"
    (data / "images").mkdir(parents=True)
    shutil.copy(shared_data / "vqa_rad" / "images" / REAL_JPG, data / "images" / REAL_JPG)
    records = [{"qid": i, "image_name": REAL_JPG, "image_organ": "CHEST", "answer": a, "answer_type": "CLOSED",
                "question_type": "PRES", "question": q, "phrase_type": "freeform"}
               for i, (q, a) in enumerate(QUESTIONS, start=1)]
    (data / "trainset.json").write_text(json.dumps(records), encoding="utf-8")
    (data / "testset.json").write_text(json.dumps(records), encoding="utf-8")
    monkeypatch.setenv("HARNESS_DATA_VQA_RAD", str(data))
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    openai_model.reset_paid_requests()
    yield tmp_path / "home"
    openai_model.reset_paid_requests()


def _curate(server, *extra: str) -> list[str]:
    options = {"base_url": server.base_url, "backoff": 0, "max_retries": 1}
    return ["curate", "--method", "mmedpo", "--task", "vqa_rad", "--format", "json",
            "--option", "judges=openai:judge", "--option", f"judge_options={json.dumps(options)}",
            "--option", "text_generator=rules", "--option", "visual_pairs=false", *extra]


def _manifest(home: Path) -> dict | None:
    found = list((home / "pairs" / "vqa_rad").glob("mmedpo-*/manifest.json"))
    return json.loads(found[0].read_text()) if found else None


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_an_endpoint_answering_500_stops_curation_and_a_rerun_asks_again(server, home, capsys):
    server.script = ["500"] * 1000
    assert main(_curate(server)) == 2
    line = _error_line(capsys)
    assert "judge failed after retries on 1 of" in line and "max_fallback_share" in line and "HTTP 500" in line
    assert _manifest(home) is None  # nothing claims to be finished
    items = [json.loads(x) for x in next((home / "pairs" / "vqa_rad").glob("mmedpo-*/items.jsonl")).read_text()
             .splitlines()]
    assert [i.get("fallback") for i in items] == [["relevance"]]  # recorded as a fallback, not as done

    server.script.clear()  # the endpoint recovers
    before = len(server.requests)
    assert main(_curate(server)) == 0
    out = json.loads(capsys.readouterr().out)[0]
    judged = len(server.requests) - before
    manifest = _manifest(home)
    assert judged >= out["pairs"] >= 1  # the failed item was asked again, and every later one once
    assert manifest["judges"]["fallbacks"] == 0 and manifest["behaviour"]["relevance"] == "paper"
    assert manifest["relevance_sources"] == {"consensus": out["pairs"]}


def test_an_allowed_share_of_fallbacks_is_counted_and_retried_later(server, home, capsys):
    server.script = ["500"] * 1000
    assert main(_curate(server, "--option", "max_fallback_share=1")) == 0
    out = json.loads(capsys.readouterr().out)[0]
    manifest = _manifest(home)
    n = out["pairs"]
    assert n >= 1 and manifest["judges"]["fallbacks"] == n
    assert manifest["judges"]["fallback_stages"] == {"relevance": n}
    assert manifest["relevance_sources"] == {"heuristic-fallback": n}  # what produced each pair's weight
    assert manifest["behaviour"]["relevance"] == f"paper ({n} of {n} items fell back to offline-heuristic)"

    server.script.clear()
    before = len(server.requests)
    assert main(_curate(server, "--option", "max_fallback_share=1")) == 0
    capsys.readouterr()
    assert len(server.requests) - before >= n  # the fallbacks were not reused as finished
    assert _manifest(home)["judges"]["fallbacks"] == 0


def test_the_request_cap_raises_even_when_fallbacks_are_allowed(server, home, capsys):
    options = {"base_url": server.base_url, "backoff": 0, "max_retries": 0, "max_requests": 1}
    argv = _curate(server, "--option", "max_fallback_share=1", "--option", f"judge_options={json.dumps(options)}")
    assert main(argv) == 2
    assert "request cap reached" in _error_line(capsys)
    assert len(server.requests) == 1 and _manifest(home) is None


def test_harness_run_resolves_the_text_generator_as_curation_does():
    from mmedpo.method import MMedPO

    # curation's auto default is sample-and-judge (the paper), so the run loads the base model to sample
    assert MMedPO.builder_needs_model({"judges": "openai:gpt-4o"})
    assert not MMedPO.builder_needs_model({"judges": "openai:gpt-4o", "text_generator": "rules"})
    assert MMedPO.builder_needs_model({})
