"""``openai:<model>`` against a local OpenAI-compatible server: data URLs, retries, cache, cap, bad answers."""

from __future__ import annotations

import pytest
from fake_openai import FakeOpenAI
from PIL import Image

from harness.core.errors import HarnessError
from harness.models import openai_model
from harness.models.base import GenerationConfig
from harness.models.openai_model import OpenAIChatModel, OpenAIConfig, load_openai_model


@pytest.fixture(scope="module")
def server():
    fake = FakeOpenAI(hang_seconds=1.5)
    yield fake
    fake.close()


@pytest.fixture
def fresh(server, tmp_path, monkeypatch):
    """Reset the server's log and script and the process-wide request count; a private cache folder."""
    monkeypatch.setenv("FAKE_OPENAI_TEST_KEY", "test-key")  # keys come from the environment only
    server.requests.clear()
    server.script.clear()
    openai_model.reset_paid_requests()

    def make(**options) -> OpenAIChatModel:
        options.setdefault("base_url", server.base_url)
        options.setdefault("api_key_env", "FAKE_OPENAI_TEST_KEY")
        options.setdefault("cache_dir", str(tmp_path / "cache"))
        options.setdefault("backoff", 0.01)
        return load_openai_model("fake-vlm", **options)

    return make


def test_generate_sends_images_as_data_urls(server, fresh):
    model = fresh()
    image = Image.new("RGB", (8, 8), (200, 10, 10))
    answers = model.generate([image, None], ["is it red?", "no image"], GenerationConfig(max_new_tokens=5))
    assert sorted(answers) == ["IS IT RED?|image=True|0", "NO IMAGE|image=False|0"]
    assert len(server.requests) == 2
    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer test-key"
    assert request["body"]["max_tokens"] == 5 and request["body"]["temperature"] == 0.0


def test_several_answers_per_prompt(fresh):
    model = fresh()
    answers = model.generate([None], ["q"], GenerationConfig(do_sample=True, num_return_sequences=3))
    assert answers == [["Q|image=False|0", "Q|image=False|1", "Q|image=False|2"]]


def test_rerun_is_answered_from_the_cache(server, fresh, tmp_path):
    first = fresh().chat([{"role": "user", "content": "judge this"}], temperature=0)
    assert len(server.requests) == 1
    # a new model object (as in a new process) with the same cache folder pays nothing
    second = fresh().chat([{"role": "user", "content": "judge this"}], temperature=0)
    assert second == first and len(server.requests) == 1
    assert openai_model.paid_requests() == 1
    # any change in the request is a different key
    fresh().chat([{"role": "user", "content": "judge this"}], temperature=0.5)
    assert len(server.requests) == 2
    assert not list((tmp_path / "cache").rglob("*.tmp"))


def test_retries_on_429_and_500_then_succeeds(server, fresh):
    server.script[:] = ["429", "500", "ok"]
    assert fresh(max_retries=3).chat([{"role": "user", "content": "x"}]) == "X|image=False|0"
    assert len(server.requests) == 3
    assert openai_model.paid_requests() == 3


def test_retries_exhausted_gives_one_line_error(server, fresh):
    server.script[:] = ["500", "500", "500"]
    with pytest.raises(HarnessError) as excinfo:
        fresh(max_retries=2).chat([{"role": "user", "content": "x"}])
    message = str(excinfo.value)
    assert "\n" not in message and "gave up after 3 attempts" in message and "HTTP 500" in message
    assert len(server.requests) == 3


def test_hanging_endpoint_times_out_with_one_line_error(server, fresh):
    server.script[:] = ["hang", "hang"]
    with pytest.raises(HarnessError) as excinfo:
        fresh(timeout=0.3, max_retries=1).chat([{"role": "user", "content": "x"}])
    message = str(excinfo.value)
    assert "\n" not in message and "no answer within 0.3s" in message


def test_timeout_then_answer_is_retried(server, fresh):
    server.script[:] = ["hang"]
    assert fresh(timeout=0.3, max_retries=2).chat([{"role": "user", "content": "y"}]) == "Y|image=False|0"


@pytest.mark.parametrize("behaviour, expected", [("garbage", "not JSON"), ("nochoices", "malformed answer"),
                                                  ("400", "HTTP 400: model not found")])
def test_bad_answers_give_one_line_errors(server, fresh, behaviour, expected):
    server.script[:] = [behaviour]
    with pytest.raises(HarnessError) as excinfo:
        fresh().chat([{"role": "user", "content": "x"}])
    message = str(excinfo.value)
    assert "\n" not in message and expected in message and server.base_url in message
    assert len(server.requests) == 1  # not retried: asking again would pay again for the same garbage


def test_unreachable_endpoint(fresh):
    with pytest.raises(HarnessError) as excinfo:
        fresh(base_url="http://127.0.0.1:9/v1", max_retries=1).chat([{"role": "user", "content": "x"}])
    assert "\n" not in str(excinfo.value) and "connection failed" in str(excinfo.value)


def test_request_cap(server, fresh):
    model = fresh(max_requests=2)
    model.chat([{"role": "user", "content": "1"}])
    model.chat([{"role": "user", "content": "2"}])
    model.chat([{"role": "user", "content": "1"}])  # cached: free
    with pytest.raises(HarnessError, match="request cap reached"):
        model.chat([{"role": "user", "content": "3"}])
    assert len(server.requests) == 2


def test_environment_configures_the_endpoint(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://a.example/v1/")
    monkeypatch.setenv("HARNESS_OPENAI_BASE_URL", "http://b.example/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "k1")
    monkeypatch.setenv("HARNESS_OPENAI_MAX_REQUESTS", "7")
    config = OpenAIConfig()
    assert config.base_url == "http://b.example/v1" and config.api_key == "k1" and config.max_requests == 7
    assert "k1" not in repr(config)


def test_bad_options():
    with pytest.raises(HarnessError, match="unknown options colour"):
        load_openai_model("m", colour="red")
    with pytest.raises(HarnessError, match="adapter"):
        load_openai_model("m", adapter="lora/")
    # local-model options from `harness eval` are accepted and ignored
    assert load_openai_model("m", device="cpu", dtype="auto").describe()["name"] == "openai:m"


def test_resolves_through_the_model_spec(server, fresh, tmp_path, monkeypatch):
    from harness.models import resolve

    monkeypatch.setenv("HARNESS_OPENAI_BASE_URL", server.base_url)
    model = resolve.load_model("openai:fake-vlm", cache_dir=str(tmp_path / "c2"))
    assert model.generate([None], ["hi"]) == ["HI|image=False|0"]


def _basic(user: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_url_credentials_go_as_basic_auth_and_are_never_shown(server, fresh, monkeypatch, caplog):
    import logging

    password = "pa@ss-8c1f0e"  # "@" travels percent-encoded in the URL and decoded in the header
    monkeypatch.setenv("OPENAI_API_KEY", "sk-ambient-key-0d93")  # an ambient key is not sent to this host
    base = server.base_url.replace("http://", "http://alice:pa%40ss-8c1f0e@")
    server.script[:] = ["500"]
    caplog.set_level(logging.INFO)
    model = fresh(base_url=base, api_key_env=None, max_retries=1)
    assert model.chat([{"role": "user", "content": "x"}]) == "X|image=False|0"
    assert [r["auth"] for r in server.requests] == [_basic("alice", password)] * 2
    assert server.requests[0]["path"] == "/v1/chat/completions"
    shown = server.base_url.replace("http://", "http://alice:[REDACTED]@")
    assert model.describe()["endpoint"] == shown
    retry = [r.getMessage() for r in caplog.records if "retry 1/1" in r.getMessage()]
    assert retry and shown in retry[0]
    assert not [r for r in caplog.records if "8c1f0e" in r.getMessage()]


def test_errors_from_an_endpoint_with_url_credentials_do_not_carry_them(server, fresh):
    base = server.base_url.replace("http://", "http://bob:hunter2-77aa@")
    server.script[:] = ["500", "500"]
    with pytest.raises(HarnessError) as excinfo:
        fresh(base_url=base, api_key_env=None, max_retries=1).chat([{"role": "user", "content": "x"}])
    message = str(excinfo.value)
    assert "gave up after 2 attempts" in message and "bob:[REDACTED]@127.0.0.1" in message
    assert "hunter2" not in message


def test_url_credentials_and_a_named_key_are_refused(server, fresh):
    base = server.base_url.replace("http://", "http://bob:hunter2-77aa@")
    with pytest.raises(HarnessError) as excinfo:
        fresh(base_url=base)  # api_key_env names FAKE_OPENAI_TEST_KEY as well
    message = str(excinfo.value)
    assert "\n" not in message and "keep one of them" in message and "hunter2" not in message
