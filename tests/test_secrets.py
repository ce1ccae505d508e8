"""Secrets never reach what the harness writes.

A user plants a key the ways they might: ``OPENAI_API_KEY``, a variable named by ``api_key_env``, the key
inside an endpoint URL, and options named ``api_key`` / ``token`` (refused). A tiny offline curation with an
LLM judge and an evaluation of an ``openai:`` model run against a local fake endpoint; then the results are
exported (``harness results --export``, JSON and CSV) and a Space is exported. Every file under
``HARNESS_HOME`` and every exported file is searched: no key appears anywhere. A password in the endpoint URL
(``http://u:SECRET123@host/v1``) reaches the server as HTTP Basic auth and no file, export or log line.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import logging
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


def _tiny_vqa_rad(tmp_path: Path, shared_data: Path) -> Path:
    """Two VQA-RAD questions on one real image: an evaluation that takes a second."""
    data = tmp_path / "vqa_rad"
    (data / "images").mkdir(parents=True)
    shutil.copy(shared_data / "vqa_rad" / "images" / REAL_JPG, data / "images" / REAL_JPG)
    records = [{"qid": i, "image_name": REAL_JPG, "image_organ": "CHEST", "answer": a, "answer_type": "CLOSED",
                "question_type": "PRES", "question": q, "phrase_type": "freeform"}
               for i, (q, a) in enumerate([("Is there a pneumothorax?", "no"),
                                           ("Is there evidence of an aortic aneurysm?", "yes")], start=1)]
    for name in ("testset.json", "trainset.json"):
        (data / name).write_text(json.dumps(records), encoding="utf-8")
    return data


@pytest.fixture
def planted(tmp_path, monkeypatch, shared_data, server):
    home = tmp_path / "home"
    data = _tiny_vqa_rad(tmp_path, shared_data)
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


def _leaks(paths: list[Path], secrets: tuple[str, ...] = SECRETS) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for root in paths:
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        for path in files:
            data = path.read_bytes()
            for secret in secrets:
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
    from harness.core.io import read_json, write_json
    from harness.core.secrets import redact
    from harness.results.store import ResultsStore, RunRecord

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


URL_PASSWORD = "SECRET123"


@pytest.fixture
def url_password(tmp_path, monkeypatch, shared_data, server):
    """HARNESS_HOME in tmp, and the endpoint's only credential is the password in HARNESS_OPENAI_BASE_URL."""
    home = tmp_path / "home"
    monkeypatch.setenv("HARNESS_HOME", str(home))
    monkeypatch.delenv("HARNESS_STORE", raising=False)
    monkeypatch.setenv("HARNESS_DATA_VQA_RAD", str(_tiny_vqa_rad(tmp_path, shared_data)))
    for name in ("OPENAI_API_KEY", "HARNESS_OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HARNESS_OPENAI_BASE_URL", server.base_url.replace("http://", f"http://u:{URL_PASSWORD}@"))
    return home


def test_a_password_in_the_endpoint_url_is_sent_as_basic_auth_and_appears_nowhere(
        url_password, server, tmp_path, capsys, caplog):
    home = url_password
    log_file = io.StringIO()  # a user's own log handler, with tracebacks
    handler = logging.StreamHandler(log_file)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    caplog.set_level(logging.INFO)
    server.script[:] = ["500"]  # the first request fails: a retry warning names the endpoint
    try:
        assert main(["eval", "--model", "openai:fake-vlm", "--tasks", "vqa_rad", "--format", "json",
                     "--no-progress", "--max-retries", "2"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert main(["results", "approve", out["run_id"]]) == 0
        exports = tmp_path / "exports"
        exports.mkdir()
        for name in ("results.json", "results.csv", "results.md"):
            assert main(["results", "--export", str(exports / name)]) == 0
        assert main(["leaderboard", "export-space", str(exports / "space")]) == 0
    finally:
        logging.getLogger().removeHandler(handler)
    captured = capsys.readouterr()

    evaluated = [r for r in server.requests if r["body"]["model"] == "fake-vlm"]
    basic = "Basic " + base64.b64encode(f"u:{URL_PASSWORD}".encode()).decode()
    assert len(evaluated) == 3 and all(r["auth"] == basic for r in evaluated)  # 2 questions + 1 retry
    retries = [r.getMessage() for r in caplog.records if "retry 1/2" in r.getMessage()]
    assert retries and "endpoint http://u:[REDACTED]@127.0.0.1:" in retries[0]
    from harness.results.store import ResultsStore

    endpoint = ResultsStore().get_run(out["run_id"])["config"]["model"]["endpoint"]
    assert endpoint == server.base_url.replace("http://", "http://u:[REDACTED]@")

    run_dir = Path(out["run_dir"])
    assert (run_dir / "run.json").is_file() and (run_dir / "results.json").is_file()
    assert (exports / "results.json").stat().st_size > 0
    assert _leaks([home, exports], (URL_PASSWORD,)) == {}
    logged = [caplog.text, log_file.getvalue(), captured.out, captured.err]
    assert "retry 1/2" in log_file.getvalue() and not [text for text in logged if URL_PASSWORD in text]


@pytest.mark.parametrize("text, clean", [
    ("http://alice:PASS@host/v1", "http://alice:[REDACTED]@host/v1"),
    ("https://ghp_0123abcd@github.com/o/r.git", "https://[REDACTED]@github.com/o/r.git"),
    ("http://u:p%40ss@10.0.0.2:8000/v1/", "http://u:[REDACTED]@10.0.0.2:8000/v1/"),
    ("https://h/v1?api_key=abc&model=gpt", "https://h/v1?api_key=[REDACTED]&model=gpt"),
    ("https://h/cb#access_token=xyz&state=1", "https://h/cb#access_token=[REDACTED]&state=1"),
    ("https://b.s3/x.png?X-Amz-Signature=f00&X-Amz-Date=2024", "https://b.s3/x.png?X-Amz-Signature=[REDACTED]&X-Amz-Date=2024"),
    ("https://h/x?key=k1;token=t2&sig=s3", "https://h/x?key=[REDACTED];token=[REDACTED]&sig=[REDACTED]"),
    # URLs inside longer text: a sentence, a quoted JSON value, an error in parentheses
    ("endpoint http://u:pw@h/v1 (model m): HTTP 500", "endpoint http://u:[REDACTED]@h/v1 (model m): HTTP 500"),
    ('{"base_url": "http://u:pw@h/v1", "n": 1}', '{"base_url": "http://u:[REDACTED]@h/v1", "n": 1}'),
    ("failed (see https://h/?token=abc).", "failed (see https://h/?token=[REDACTED])."),
])
def test_url_secrets_are_redacted_wherever_the_url_is(text, clean):
    from harness.core.secrets import redact, redact_url

    assert redact(text, []) == clean  # by the URL's shape alone: no known secret value is needed
    assert redact(clean, []) == clean  # redacting again changes nothing
    if text.startswith("http"):
        assert redact_url(text) == clean


@pytest.mark.parametrize("text", [
    "http://127.0.0.1:8000/v1", "https://api.openai.com/v1", "https://huggingface.co/m?revision=main&x=1",
    "https://h.openai.azure.com/openai?api-version=2024-02-01", "user@example.org wrote: a:b@c",
    "data:image/png;base64,iVBORw0KGgo=", "see https://h/a@b/c and https://h/p?keyword=cat",
])
def test_urls_without_secrets_are_unchanged(text):
    from harness.core.secrets import redact

    assert redact(text, []) == text


def test_url_secrets_never_reach_json_files_or_the_store(tmp_path):
    from harness.core.io import write_json
    from harness.results.store import ResultsStore, RunRecord

    config = {"model": {"endpoint": "http://u:pw-not-in-env-41@h/v1?token=tok-not-in-env-42"},
              "notes": ["retried http://u:pw-not-in-env-41@h/v1 twice"]}
    write_json(tmp_path / "run.json", config)
    ResultsStore(tmp_path / "store.sqlite").add_run(RunRecord(model="m", config=config, run_id="r1"), [])
    assert _leaks([tmp_path], ("pw-not-in-env-41", "tok-not-in-env-42")) == {}
    assert ResultsStore(tmp_path / "store.sqlite").get_run("r1")["config"]["model"]["endpoint"] == \
        "http://u:[REDACTED]@h/v1?token=[REDACTED]"


def test_the_password_of_a_url_variable_is_a_known_secret(monkeypatch):
    from harness.core.secrets import known_secret_values, redact_text

    monkeypatch.setenv("HARNESS_OPENAI_BASE_URL", "http://u:p%40ssw0rd-9@h/v1?api_key=qk-31337")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxyuser:proxy-pw-55@proxy:3128")
    known = known_secret_values()
    assert {"p@ssw0rd-9", "p%40ssw0rd-9", "qk-31337", "proxy-pw-55"} <= set(known)
    # a message that echoes the password alone, without the URL around it, is covered too
    assert redact_text("401: bad password p@ssw0rd-9 (proxy-pw-55)") == "401: bad password [REDACTED] ([REDACTED])"


def test_log_records_are_redacted_whichever_handler_writes_them(monkeypatch):
    from harness.core.secrets import install_log_redaction

    monkeypatch.setattr(logging, "_logRecordFactory", logging.LogRecord)  # restored after the test
    install_log_redaction()
    factory = logging.getLogRecordFactory()
    install_log_redaction()  # a second install does not wrap the first
    assert factory is not logging.LogRecord and logging.getLogRecordFactory() is factory
    buffer = io.StringIO()  # added after the install: still covered
    handler = logging.StreamHandler(buffer)
    logger = logging.getLogger("some.library")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.warning("POST %s failed", "http://u:pw-in-args-1@h/v1?token=tok-in-args-2")
        try:
            raise ConnectionError("cannot reach http://u:pw-in-exc-3@h/v1")
        except ConnectionError:
            logger.exception("request failed")
    finally:
        logger.removeHandler(handler)
    text = buffer.getvalue()
    assert "POST http://u:[REDACTED]@h/v1?token=[REDACTED] failed" in text
    assert "cannot reach http://u:[REDACTED]@h/v1" in text  # the traceback too
    assert not [s for s in ("pw-in-args-1", "tok-in-args-2", "pw-in-exc-3") if s in text]
