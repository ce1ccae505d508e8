"""Secrets: read only from the environment, refused as options, and redacted from everything the harness writes.

- ``refuse_secret_options(options, where)``: an option whose name carries a secret (``api_key``, ``token``,
  ``password``, ``authorization``, ``secret``, ``bearer``...) is a one-line error naming the environment
  variable to use instead. Nested dicts (``judge_options={"openai:x": {"api_key": ...}}``) are searched too.
- ``redact(obj)``: a copy of ``obj`` (dicts, lists, strings) in which every value under a secret-looking key,
  and every occurrence of a known secret value, reads ``[REDACTED]``. Known values are those of the
  environment variables the harness reads keys from (``OPENAI_API_KEY``, ``HARNESS_OPENAI_API_KEY``, any
  variable named by an ``api_key_env`` option, see ``register_secret_env``) and of every variable whose name
  looks secret (``*_API_KEY``, ``*_TOKEN``, ``*_SECRET``, ``*PASSWORD``). ``harness.io``'s JSON writers and
  the results store apply it, so manifests, run configs, ``pipeline.json``, store rows, and therefore the
  exports and the Space read from the store, never carry a key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from harness.errors import HarnessError

REDACTED = "[REDACTED]"
DEFAULT_KEY_ENV = "OPENAI_API_KEY"
# Environment variables the harness itself reads keys from.
KEY_ENVS = ("HARNESS_OPENAI_API_KEY", "OPENAI_API_KEY")
_SECRET_WORDS = (r"api[_-]?key|apikey|access[_-]?key|secret[_-]?key|private[_-]?key|client[_-]?secret|secret|"
                 r"token|access[_-]?token|auth[_-]?token|password|passwd|passphrase|authorization|bearer|"
                 r"credentials?|cookie")
# A name that IS a secret: the word alone or as the last part (openai_api_key, hf_token), not *_env, *_tokens.
SECRET_NAME = re.compile(rf"(?i)^(?:.*[_.-])?(?:{_SECRET_WORDS})$")
_ENV_SECRET_NAME = re.compile(r"(?i)(api[_-]?key|token|secret|password|passwd|credentials?)$")
MIN_SECRET_LENGTH = 6  # shorter values are too likely to occur in ordinary text to be replaced
_registered: set[str] = set()


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.match(str(name)))


def register_secret_env(name: str) -> None:
    """Treat the value of environment variable ``name`` as a secret from now on (an ``api_key_env`` option)."""
    _registered.add(name)


def known_secret_values() -> list[str]:
    """Values of the key variables in the environment, longest first (so a key inside another is covered)."""
    names = set(KEY_ENVS) | _registered | {n for n in os.environ if _ENV_SECRET_NAME.search(n)}
    values = {os.environ.get(n, "") for n in names}
    return sorted((v for v in values if len(v) >= MIN_SECRET_LENGTH), key=len, reverse=True)


def secret_from_env(variable: str | None, *, where: str) -> str | None:
    """The key in ``variable`` (an ``api_key_env`` option), or None for the default variables' fallback.

    A named variable that is unset is a one-line error: the user asked for it explicitly.
    """
    if variable is None:
        return None
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(variable)):
        raise HarnessError(f"{where}: api_key_env must name an environment variable, got {variable!r}")
    register_secret_env(variable)
    value = os.environ.get(variable)
    if not value:
        raise HarnessError(f"{where}: api_key_env names ${variable}, which is not set")
    return value


def refuse_secret_options(options: Mapping[str, Any] | None, where: str, *, env: str = DEFAULT_KEY_ENV) -> None:
    """A one-line error when any key of ``options`` (searched recursively) names a secret."""
    for path in _secret_paths(options or {}):
        raise HarnessError(
            f"{where}: option '{path}' would carry a secret; secrets are read only from the environment: set "
            f"${env} (or name another variable with the option api_key_env=VARNAME)")


def _secret_paths(options: Any, prefix: str = ""):
    if isinstance(options, Mapping):
        for key, value in options.items():
            path = f"{prefix}{key}"
            if is_secret_name(key):
                yield path
            yield from _secret_paths(value, path + ".")
    elif isinstance(options, (list, tuple)):
        for index, value in enumerate(options):
            yield from _secret_paths(value, f"{prefix}{index}.")


def redact(obj: Any, secrets: list[str] | None = None) -> Any:
    """A copy of ``obj`` with secret-keyed values and known secret values replaced by ``[REDACTED]``."""
    values = known_secret_values() if secrets is None else secrets
    return _redact(obj, values)


def _redact(obj: Any, values: list[str]) -> Any:
    if isinstance(obj, str):
        for value in values:
            if value in obj:
                obj = obj.replace(value, REDACTED)
        return obj
    if isinstance(obj, Mapping):
        return {k: (REDACTED if is_secret_name(k) and obj[k] not in (None, "", REDACTED) and not isinstance(
            obj[k], (bool, int, float)) else _redact(v, values)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_redact(v, values) for v in obj]
    return obj


def redact_text(text: str) -> str:
    """``text`` with every known secret value replaced (for free text such as a log line or a JSON blob)."""
    return _redact(text, known_secret_values())
