"""Judges: LLMs that answer chat prompts for curation (picking, rewriting, scoring), and their reply parsers.

A judge is anything with ``name``, ``chat(messages, **params) -> str`` and ``describe() -> dict`` (which
enters a curation cache key). ``make_judge(spec)`` builds one from a spec string:

- ``openai:<model>``: any OpenAI-compatible chat endpoint (GPT-4o in the MMedPO and STLLaVA-Med papers)
  through ``harness.models.openai_model`` (retries, disk cache, request cap live there). Options:
  ``base_url``, ``api_key_env`` and whatever that model accepts.
- ``hf:<path>``: a local Hugging Face causal LM (``AutoModelForCausalLM`` + the tokenizer's chat template).

The parsers never raise on bad output; they return None, and callers retry (``ask``) and then fall back.
Every failed attempt (a transport error after the client's own retries, or a malformed reply) is counted in
``FAILURES``, so a caller can tell an item whose judge failed from one it answered and refuse to treat a
fallback as a finished result (MMedPO's curation does). Reaching the request cap is never a fallback: it
raises. Method-specific parsers live with their methods (``mmedpo.judges.parse_hallucination``).
"""

from __future__ import annotations

import logging
import re
from typing import Any, Protocol, runtime_checkable

from harness.core.errors import HarnessError

log = logging.getLogger(__name__)


class JudgeFailures:
    """Process-wide tally of failed judge attempts: ``errors`` (transport), ``malformed`` and the last error."""

    def __init__(self) -> None:
        self.errors = 0
        self.malformed = 0
        self.last_error: str | None = None

    @property
    def total(self) -> int:
        return self.errors + self.malformed

    def reset(self) -> None:
        self.__init__()


FAILURES = JudgeFailures()


@runtime_checkable
class Judge(Protocol):
    name: str

    def chat(self, messages: list[dict[str, str]], **params: Any) -> str:
        ...

    def describe(self) -> dict[str, Any]:
        ...


def make_judge(spec: str, **options: Any) -> Judge:
    prefix, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise HarnessError(f"judge spec must be 'openai:<model>' or 'hf:<path>', got {spec!r}")
    if prefix == "openai":
        return OpenAIJudge(rest, **options)
    if prefix == "hf":
        return LocalLMJudge(rest, **options)
    raise HarnessError(f"unknown judge kind '{prefix}' in {spec!r} (known: openai, hf)")


class OpenAIJudge:
    """A judge over the project's OpenAI-compatible model (which owns retries, caching and the request cap).

    ``options`` are ``harness.models.openai_model.OpenAIConfig`` fields (base_url, max_retries, backoff,
    max_requests, cache, cache_dir...). Judges answer greedily (temperature 0) so cached replies are reused.
    """

    def __init__(self, model: str, **options: Any):
        from dataclasses import fields

        from harness.core.secrets import refuse_secret_options
        from harness.models.openai_model import OpenAIChatModel, OpenAIConfig

        refuse_secret_options(options, f"judge 'openai:{model}'")
        known = {f.name for f in fields(OpenAIConfig)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise HarnessError(f"judge 'openai:{model}': unknown option(s) {', '.join(unknown)} "
                               f"(known: {', '.join(sorted(known))})")
        self.client = OpenAIChatModel(model, OpenAIConfig(**options))
        self.name = f"openai:{model}"

    def chat(self, messages: list[dict[str, str]], **params: Any) -> str:
        return self.client.chat(messages, **{"temperature": 0, **params})

    def describe(self) -> dict[str, Any]:
        return {"kind": "openai", **self.client.describe()}


class LocalLMJudge:
    """A local Hugging Face causal LM answering chat messages greedily."""

    def __init__(self, path: str, *, max_new_tokens: int = 48, device: str | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModelForCausalLM.from_pretrained(path)
        except (OSError, ValueError) as exc:
            raise HarnessError(f"judge 'hf:{path}': cannot load a causal LM ({str(exc).splitlines()[0]})") from None
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device).eval()
        self.path = path
        self.name = f"hf:{path}"
        self.max_new_tokens = max_new_tokens

    def _render(self, messages: list[dict[str, str]]) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        # no chat template: a plain transcript ending where the assistant should speak
        lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
        return "\n".join(lines) + "\nAssistant:"

    def chat(self, messages: list[dict[str, str]], **params: Any) -> str:
        import torch

        inputs = self.tokenizer(self._render(messages), return_tensors="pt").to(self.device)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        with torch.inference_mode():
            output = self.model.generate(
                **inputs, max_new_tokens=int(params.get("max_tokens", self.max_new_tokens)), do_sample=False,
                pad_token_id=pad,
            )
        return self.tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()

    def describe(self) -> dict[str, Any]:
        return {"kind": "hf", "path": self.path, "max_new_tokens": self.max_new_tokens}


def ask(judge: Judge, prompt: str, parse, *, retries: int = 2, what: str = "reply", **params: Any):
    """Send ``prompt``; parse the reply; on a malformed reply re-ask (with a reminder) up to ``retries`` times.

    Returns ``(parsed or None, raw replies)``. Transport errors (after the client's own retries) are logged,
    counted in ``FAILURES`` and re-asked like a malformed reply; the caller decides what a None means (MMedPO's
    curation counts it as a fallback and stops past its threshold). The request cap raises.
    """
    from harness.models.openai_model import RequestCapError

    messages = [{"role": "user", "content": prompt}]
    replies: list[str] = []
    for attempt in range(retries + 1):
        try:
            reply = judge.chat(messages, **params)
        except RequestCapError:
            raise
        except HarnessError as exc:
            log.warning("judge %s failed on attempt %d: %s", judge.name, attempt + 1, exc)
            FAILURES.errors += 1
            FAILURES.last_error = f"{judge.name}: {exc}"
            replies.append("")
            continue
        replies.append(reply)
        parsed = parse(reply)
        if parsed is not None:
            return parsed, replies
        log.info("judge %s gave a malformed %s (attempt %d): %r", judge.name, what, attempt + 1, reply[:200])
        FAILURES.malformed += 1
        FAILURES.last_error = f"{judge.name}: malformed {what} {reply[:80]!r}"
        messages = [*messages[:1], {"role": "assistant", "content": reply},
                    {"role": "user", "content": "Your reply did not follow the required format. "
                                                "Reply with exactly the one line asked for."}]
    return None, replies


_NUMBER = r"([-+]?\d+(?:\.\d+)?)"


def parse_choice(reply: str, count: int) -> int | str | None:
    """``CHOICE: n`` (1-based) -> index n-1; ``CHOICE: none`` -> "none"; anything else -> None."""
    match = re.search(r"choice\s*[:=]\s*(none|\d+)", reply, re.IGNORECASE)
    if not match:
        return None
    value = match.group(1).lower()
    if value == "none":
        return "none"
    index = int(value) - 1
    return index if 0 <= index < count else None


def parse_score(reply: str, *, allow_agree: bool = False) -> float | str | None:
    """``SCORE: x`` in [0, 1] (also x/10 or a percentage, rescaled); ``AGREE`` -> "agree"; else None."""
    if allow_agree and re.search(r"^\s*\W*agree\b", reply, re.IGNORECASE):
        return "agree"
    match = re.search(r"score\s*[:=]\s*" + _NUMBER + r"\s*(/\s*10\b|/\s*100\b|%)?", reply, re.IGNORECASE)
    if not match:
        return None
    value = float(match.group(1))
    scale = (match.group(2) or "").replace(" ", "")
    if scale == "/10" or (not scale and 1 < value <= 10):
        value /= 10
    elif scale in ("/100", "%") or (not scale and 10 < value <= 100):
        value /= 100
    return value if 0.0 <= value <= 1.0 else None
