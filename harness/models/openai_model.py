"""``openai:<model>``: any OpenAI-compatible chat-completions endpoint, for evaluation and as a judge.

The endpoint comes from the environment: ``HARNESS_OPENAI_BASE_URL`` (else ``OPENAI_BASE_URL``, else
OpenAI's own) and ``HARNESS_OPENAI_API_KEY`` (else ``OPENAI_API_KEY``; local servers may need none), or the
variable an ``api_key_env`` option names. A key is never an option (``harness.core.secrets``): ``api_key=`` and
the like are refused with a one-line error, and key values are redacted from everything the harness writes.
Credentials inside the URL (``http://user:password@host/v1``) are taken out of it and sent as HTTP Basic
auth, the way a reverse proxy in front of a local server expects them; they then take the place of an
ambient ``$OPENAI_API_KEY`` (which is not sent to that host), and naming a key with ``api_key_env`` as well
is a one-line error. The endpoint is recorded (``describe()``) and named in messages and logs as
``http://user:[REDACTED]@host/v1``, and the password is a known secret from then on.
Images travel as PNG data URLs. Every answer is cached on disk under ``HARNESS_HOME/cache/openai``,
keyed by a hash of (base URL, model, messages, parameters), so the same request is never paid twice.
429, 5xx, time-outs and dropped connections are retried with exponential backoff; every request sent
counts against a per-process cap (``HARNESS_OPENAI_MAX_REQUESTS``, default 1000), so a runaway loop
cannot spend without bound.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.core.io import atomic_write
from harness.core.paths import harness_home
from harness.models.base import GenerationConfig, VisionLanguageModel, check_generate_args

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}



class RequestCapError(HarnessError):
    """The per-process request cap is reached: never retried or swallowed as a judge failure."""


_paid_lock = threading.Lock()
_paid_requests = 0


def paid_requests() -> int:
    """How many requests this process has sent to endpoints (cache hits are free and not counted)."""
    return _paid_requests


def reset_paid_requests() -> None:
    """Start the per-process count again (tests; a long-lived service between jobs)."""
    global _paid_requests
    with _paid_lock:
        _paid_requests = 0


def _env(*names: str, default: str | None = None) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return default


@dataclass
class OpenAIConfig:
    """How to reach and pay an OpenAI-compatible endpoint."""

    base_url: str = field(
        default_factory=lambda: _env("HARNESS_OPENAI_BASE_URL", "OPENAI_BASE_URL", default=DEFAULT_BASE_URL),
        metadata={"help": "endpoint root, e.g. http://127.0.0.1:8000/v1 ($HARNESS_OPENAI_BASE_URL, $OPENAI_BASE_URL)"},
    )
    api_key: str | None = field(
        default_factory=lambda: _env("HARNESS_OPENAI_API_KEY", "OPENAI_API_KEY"),
        metadata={"help": "bearer token, from the environment only ($HARNESS_OPENAI_API_KEY, $OPENAI_API_KEY, "
                          "or the variable api_key_env names); local servers may need none"},
        repr=False,
    )
    api_key_env: str | None = field(
        default=None, metadata={"help": "name of the environment variable holding this endpoint's key"})
    timeout: float = field(default=60.0, metadata={"help": "seconds to wait for one answer"})
    max_retries: int = field(default=5, metadata={"help": "retries after a 429, 5xx, time-out or dropped connection"})
    backoff: float = field(default=1.0, metadata={"help": "first retry delay in seconds; doubles on each retry"})
    max_backoff: float = field(default=30.0, metadata={"help": "longest delay between retries, in seconds"})
    max_requests: int = field(
        default_factory=lambda: int(_env("HARNESS_OPENAI_MAX_REQUESTS", default="1000")),
        metadata={"help": "cap on requests sent by this process ($HARNESS_OPENAI_MAX_REQUESTS)"},
    )
    cache: bool = field(default=True, metadata={"help": "answer repeated requests from the disk cache"})
    cache_dir: str | None = field(default=None, metadata={"help": "cache folder (default HARNESS_HOME/cache/openai)"})
    concurrency: int = field(default=4, metadata={"help": "requests in flight at once during generate()"})

    def __post_init__(self):
        from harness.core.secrets import secret_from_env, split_userinfo

        self.base_url = self.base_url.rstrip("/")
        if self.api_key_env is not None and split_userinfo(self.base_url)[1] is not None:
            raise HarnessError("openai options: the endpoint URL carries credentials (user:password@) and "
                               "api_key_env names a key as well; keep one of them")
        if self.api_key_env is not None:
            self.api_key = secret_from_env(self.api_key_env, where="openai options")
        if self.max_retries < 0 or self.max_requests < 0 or self.concurrency < 1 or self.timeout <= 0:
            raise HarnessError("openai options: max_retries and max_requests must be >= 0, concurrency >= 1, "
                               "timeout > 0")


def image_data_url(image) -> str:
    """A PIL image as a ``data:image/png;base64,...`` URL (PNG: lossless and deterministic for the cache key)."""
    from harness.core.images import to_rgb

    buffer = io.BytesIO()
    to_rgb(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class OpenAIChatModel(VisionLanguageModel):
    """A chat model behind an OpenAI-compatible ``/chat/completions`` endpoint."""

    def __init__(self, model: str, config: OpenAIConfig | None = None):
        if not model:
            raise HarnessError("openai model name is empty (use openai:<model>, e.g. openai:gpt-4o-mini)")
        from harness.core.extras import require

        require("httpx", "openai", "the OpenAI-compatible endpoint model (openai:<model>, LLM judges)")
        from harness.core.secrets import (
            install_log_redaction,
            redact_url,
            register_secret_value,
            split_userinfo,
            url_secret_values,
        )

        self.model = model
        self.config = config or OpenAIConfig()
        self.name = f"openai:{model}"
        install_log_redaction()  # whatever logs the endpoint URL from here on (httpx included) logs it redacted
        self._url, self._url_credentials = split_userinfo(self.config.base_url)
        for value in url_secret_values(self.config.base_url):  # a base_url option is no variable to read them from
            register_secret_value(value)
        self.endpoint = redact_url(self.config.base_url)  # what records, messages and logs show
        self.cache_dir = Path(self.config.cache_dir) if self.config.cache_dir else harness_home() / "cache" / "openai"
        self._client = None

    # -- public API ---------------------------------------------------------------------------------
    def chat(self, messages: list[dict[str, Any]], **params: Any) -> str:
        """The first answer to ``messages`` (text-only judging, or any prepared message list)."""
        return self.chat_choices(messages, **params)[0]

    def chat_choices(self, messages: list[dict[str, Any]], **params: Any) -> list[str]:
        """All ``n`` answers to ``messages``, from the cache when this exact request was made before."""
        body = {"model": self.model, "messages": messages, **params}
        key = self._cache_key(body)
        cached = self._cache_get(key)
        if cached is not None:
            return cached
        answers = self._parse(self._post(body))
        self._cache_put(key, answers)
        return answers

    def generate(
        self,
        images: Sequence[Any | None],
        prompts: Sequence[str],
        config: GenerationConfig | None = None,
    ) -> list[str] | list[list[str]]:
        from tqdm.auto import tqdm

        config = check_generate_args(images, prompts, config)
        params = self._params(config)

        def one(pair) -> list[str]:
            image, prompt = pair
            content: list[dict[str, Any]] = []
            if image is not None:
                content.append({"type": "image_url", "image_url": {"url": image_data_url(image)}})
            content.append({"type": "text", "text": prompt})
            return self.chat_choices([{"role": "user", "content": content}], **params)

        pairs = list(zip(images, prompts))
        with ThreadPoolExecutor(max_workers=self.config.concurrency) as pool:
            results = list(tqdm(pool.map(one, pairs), total=len(pairs), desc=self.name, disable=len(pairs) < 8))
        if config.num_return_sequences == 1:
            return [r[0] for r in results]
        return results

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.model, "endpoint": self.endpoint}

    # -- request, retries, cap ------------------------------------------------------------------------
    @staticmethod
    def _params(config: GenerationConfig) -> dict[str, Any]:
        params: dict[str, Any] = {"max_tokens": config.max_new_tokens}
        if config.do_sample:
            params.update(temperature=config.temperature, top_p=config.top_p)
        else:
            params["temperature"] = 0.0
        if config.num_return_sequences > 1:
            params["n"] = config.num_return_sequences
        if config.seed is not None:
            params["seed"] = config.seed
        return params

    def _http(self):
        import httpx

        if self._client is None:
            self._client = httpx.Client(base_url=self._url, headers=self._auth_headers(), timeout=self.config.timeout)
        return self._client

    def _auth_headers(self) -> dict[str, str]:
        """Basic auth from the URL's credentials, else the bearer key, else nothing (a local server)."""
        if self._url_credentials:
            if self.config.api_key:
                log.info("endpoint %s: sending the credentials in its URL as HTTP Basic auth; the API key is "
                         "not sent to it", self.endpoint)
            token = base64.b64encode(":".join(self._url_credentials).encode("utf-8")).decode("ascii")
            return {"Authorization": f"Basic {token}"}
        return {"Authorization": f"Bearer {self.config.api_key}"} if self.config.api_key else {}

    def _take_request_slot(self) -> None:
        global _paid_requests
        with _paid_lock:
            if _paid_requests >= self.config.max_requests:
                raise RequestCapError(
                    f"request cap reached: this process already sent {_paid_requests} requests to OpenAI-compatible "
                    f"endpoints (raise HARNESS_OPENAI_MAX_REQUESTS or the max_requests option)"
                )
            _paid_requests += 1

    def _post(self, body: dict[str, Any]) -> Any:
        import httpx

        from harness.core.secrets import redact_text

        where = f"endpoint {self.endpoint} (model {self.model})"
        problem = "no attempt made"
        for attempt in range(self.config.max_retries + 1):
            if attempt:
                delay = min(self.config.backoff * 2 ** (attempt - 1), self.config.max_backoff)
                log.warning("%s: %s; retry %d/%d in %.1fs", where, problem, attempt, self.config.max_retries, delay)
                time.sleep(delay)
            self._take_request_slot()
            try:
                response = self._http().post("/chat/completions", json=body)
            except httpx.TimeoutException:
                problem = f"no answer within {self.config.timeout:g}s"
                continue
            except httpx.TransportError as exc:
                problem = redact_text(f"connection failed ({type(exc).__name__}: {str(exc) or 'no detail'})")
                continue
            if response.status_code in RETRYABLE_STATUS:
                problem = f"HTTP {response.status_code}"
                continue
            if response.status_code >= 400:
                raise HarnessError(redact_text(f"{where}: HTTP {response.status_code}: {_error_text(response)}"))
            try:
                return response.json()
            except ValueError:
                raise HarnessError(redact_text(f"{where}: the answer is not JSON: {_snippet(response.text)}")) from None
        raise HarnessError(f"{where}: gave up after {self.config.max_retries + 1} attempts: {problem}")

    def _parse(self, payload: Any) -> list[str]:
        where = f"endpoint {self.endpoint} (model {self.model})"
        try:
            answers = [choice["message"]["content"] for choice in payload["choices"]]
        except (KeyError, TypeError, IndexError):
            raise HarnessError(f"{where}: malformed answer, no choices[].message.content: "
                               f"{_snippet(json.dumps(payload))}") from None
        if not answers or not all(isinstance(a, str) for a in answers):
            raise HarnessError(f"{where}: malformed answer, empty or non-text choices: {_snippet(json.dumps(payload))}")
        return answers

    # -- cache -----------------------------------------------------------------------------------------
    def _cache_key(self, body: dict[str, Any]) -> str:
        # the endpoint as recorded: a rotated password keeps the cache, and the key hashes no secret
        blob = json.dumps({"base_url": self.endpoint, **body}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def _cache_path(self, key: str) -> Path:
        return self.cache_dir / key[:2] / f"{key}.json"

    def _cache_get(self, key: str) -> list[str] | None:
        if not self.config.cache:
            return None
        path = self._cache_path(key)
        try:
            answers = json.loads(path.read_text(encoding="utf-8"))["answers"]
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError, OSError):
            log.warning("ignoring unreadable cache entry %s", path)
            return None
        return answers

    def _cache_put(self, key: str, answers: list[str]) -> None:
        if not self.config.cache:
            return
        with atomic_write(self._cache_path(key)) as handle:
            json.dump({"model": self.model, "answers": answers}, handle, ensure_ascii=False)


def _snippet(text: str, limit: int = 120) -> str:
    flat = " ".join(str(text).split())
    return (flat[:limit] + "...") if len(flat) > limit else (flat or "(empty)")


def _error_text(response) -> str:
    try:
        error = response.json().get("error")
        message = error.get("message") if isinstance(error, dict) else error
        if message:
            return _snippet(str(message))
    except (ValueError, AttributeError):
        pass
    return _snippet(response.text)


_IGNORED_OPTIONS = {"device", "dtype", "attn_implementation", "name"}


def load_openai_model(model_name: str, **options: Any) -> OpenAIChatModel:
    """Factory behind ``openai:<model>``: ``options`` set ``OpenAIConfig`` fields (local-model options are ignored)."""
    from harness.core.secrets import refuse_secret_options

    refuse_secret_options(options, f"openai:{model_name}")
    known = {f.name for f in fields(OpenAIConfig)}
    if options.get("adapter") is not None:
        raise HarnessError(f"openai:{model_name}: a LoRA adapter cannot be applied to a remote endpoint")
    unknown = set(options) - known - _IGNORED_OPTIONS - {"adapter"}
    if unknown:
        raise HarnessError(f"openai:{model_name}: unknown options {', '.join(sorted(unknown))} "
                           f"(known: {', '.join(sorted(known))})")
    return OpenAIChatModel(model_name, OpenAIConfig(**{k: v for k, v in options.items() if k in known}))
