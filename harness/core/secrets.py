"""Secrets: read only from the environment, refused as options, and redacted from everything the harness writes.

- ``refuse_secret_options(options, where)``: an option whose name carries a secret (``api_key``, ``token``,
  ``password``, ``authorization``, ``secret``, ``bearer``...) is a one-line error naming the environment
  variable to use instead. Nested dicts (``judge_options={"openai:x": {"api_key": ...}}``) are searched too.
- ``redact(obj)``: a copy of ``obj`` (dicts, lists, strings) in which every value under a secret-looking key,
  and every occurrence of a known secret value, reads ``[REDACTED]``. Known values are those of the
  environment variables the harness reads keys from (``OPENAI_API_KEY``, ``HARNESS_OPENAI_API_KEY``, any
  variable named by an ``api_key_env`` option, see ``register_secret_env``) and of every variable whose name
  looks secret (``*_API_KEY``, ``*_TOKEN``, ``*_SECRET``, ``*PASSWORD``). ``harness.core.io``'s JSON writers and
  the results store apply it, so manifests, run configs, ``pipeline.json``, store rows, and therefore the
  exports and the Space read from the store, never carry a key.
- URLs: in every string ``redact`` and ``redact_text`` see, a URL's userinfo (``user:pass@`` reads
  ``user:[REDACTED]@``, a bare ``token@`` reads ``[REDACTED]@``) and the values of query or fragment parameters
  whose names look secret (``api_key=``, ``token=``, ``key=``, ``sig=``, ``access_token=``...) are replaced, so
  an endpoint URL can be recorded and logged. The password and secret parameters of URL-bearing variables
  (``HARNESS_OPENAI_BASE_URL``, ``OPENAI_BASE_URL``, any ``*_URL``, ``*_URI``, ``*_ENDPOINT``, ``*_PROXY``)
  are known secret values too, so a message that echoes only part of such a URL is covered.
- ``install_log_redaction()``: every log record created from then on, by any logger, has its message and
  traceback redacted before any handler (a console, a log file, pytest's capture) sees it. The CLI installs it,
  and so does every ``openai:`` model, the one place a URL credential enters.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from harness.core.errors import HarnessError

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
_registered_values: set[str] = set()
# Environment variables holding URLs the harness (or its HTTP client) reads: their credentials are secrets.
URL_ENVS = ("HARNESS_OPENAI_BASE_URL", "OPENAI_BASE_URL")
_ENV_URL_NAME = re.compile(r"(?i)(_url|_uri|_endpoint|_proxy)$")
# A URL anywhere in a string: a scheme, "://", then everything up to a space, a quote or an angle bracket.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")
_URL_TRAILER = ".,;:!?)"  # sentence punctuation after a URL is not part of it
# name=value inside a URL's query or fragment
_URL_PARAM = re.compile(r"([?#&;])([^=&;#?]+)=([^&;#]*)")
# Query parameters that carry a secret under a short name (signed URLs, tokens in links).
_QUERY_SECRET_NAME = re.compile(r"(?i)^(?:.*[_.-])?(?:key|sig|signature|auth|pwd|pass|credential|session[_-]?id|jwt)$")


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.match(str(name)))


def register_secret_env(name: str) -> None:
    """Treat the value of environment variable ``name`` as a secret from now on (an ``api_key_env`` option)."""
    _registered.add(name)


def register_secret_value(value: str | None) -> None:
    """Treat ``value`` as a secret from now on (a URL's password given as an option rather than a variable)."""
    if value:
        _registered_values.add(value)


def known_secret_values() -> list[str]:
    """Values of the key variables in the environment, the credentials inside URL-bearing variables and the
    registered values, longest first (so a key inside another is covered)."""
    names = set(KEY_ENVS) | _registered | {n for n in os.environ if _ENV_SECRET_NAME.search(n)}
    values = {os.environ.get(n, "") for n in names} | _registered_values
    for name in set(URL_ENVS) | {n for n in os.environ if _ENV_URL_NAME.search(n)}:
        values.update(url_secret_values(os.environ.get(name, "")))
    return sorted((v for v in values if len(v) >= MIN_SECRET_LENGTH), key=len, reverse=True)


def is_secret_query_name(name: str) -> bool:
    """Whether a URL parameter of this name carries a secret (``api_key``, ``token``, ``key``, ``sig``...)."""
    return is_secret_name(name) or bool(_QUERY_SECRET_NAME.match(name))


def redact_url(url: str) -> str:
    """``url`` with its userinfo password (or a bare ``token@``) and secret-named parameter values replaced.

    Works on the text, not a parsed and rebuilt URL, so everything else stays byte for byte; applying it twice
    changes nothing more.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    if "@" in authority:
        userinfo, host = authority.rsplit("@", 1)
        user, colon, _ = userinfo.partition(":")
        authority = f"{user}:{REDACTED}@{host}" if colon and user else f"{REDACTED}@{host}"

    def param(match: re.Match) -> str:
        mark, name, value = match.groups()
        if value and value != REDACTED and is_secret_query_name(unquote(name)):
            value = REDACTED
        return f"{mark}{name}={value}"

    return f"{scheme}://{authority}{_URL_PARAM.sub(param, tail)}"


def url_secret_values(url: str) -> set[str]:
    """The secrets inside ``url``: its password (or bare user), secret-named parameter values; raw and decoded."""
    if "://" not in url:
        return set()
    try:
        parts = urlsplit(url.strip())
        password = parts.password if parts.password is not None else parts.username
    except ValueError:  # not a URL after all (a bad port, a broken IPv6 host): nothing to extract
        return set()
    raw = [password or ""]
    for text in (parts.query, parts.fragment):
        for pair in re.split(r"[&;]", text):
            name, eq, value = pair.partition("=")
            if eq and is_secret_query_name(unquote(name)):
                raw.append(value)
    return {v for value in raw if value for v in (value, unquote(value))}


def split_userinfo(url: str) -> tuple[str, tuple[str, str] | None]:
    """``url`` without its ``user:password@`` part, and the decoded (user, password), or None without one."""
    scheme, sep, rest = url.partition("://")
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    if not sep or "@" not in rest[:end]:
        return url, None
    userinfo, host = rest[:end].rsplit("@", 1)
    user, _, password = userinfo.partition(":")
    return f"{scheme}://{host}{rest[end:]}", (unquote(user), unquote(password))


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
        if "://" in obj:
            obj = _URL.sub(_redact_url_match, obj)
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


def _redact_url_match(match: re.Match) -> str:
    url = match.group(0)
    trailer = len(url) - len(url.rstrip(_URL_TRAILER))
    return redact_url(url[:len(url) - trailer]) + url[len(url) - trailer:]


def redact_text(text: str) -> str:
    """``text`` with URL credentials and every known secret value replaced (a log line, an error, a JSON blob)."""
    return _redact(text, known_secret_values())


def redact_log_record(record: logging.LogRecord) -> None:
    """Replace the secrets in ``record``'s message, traceback and stack text, in place."""
    try:
        message = record.getMessage()
    except Exception:  # a malformed record is reported by logging itself when it is emitted
        return
    clean = redact_text(message)
    if clean != message:
        record.msg, record.args = clean, ()
    if record.exc_info and not record.exc_text:
        text = logging.Formatter().formatException(record.exc_info)
        clean = redact_text(text)
        if clean != text:
            record.exc_text = clean  # formatters reuse exc_text instead of formatting the exception again
    if record.stack_info:
        record.stack_info = redact_text(record.stack_info)


def install_log_redaction() -> None:
    """From now on every log record, from any logger and whatever handlers exist, is redacted when created.

    A record factory rather than a handler filter: a handler added later (a notebook's, pytest's capture)
    is covered too. Installing twice changes nothing.
    """
    current = logging.getLogRecordFactory()
    if getattr(current, "redacts_secrets", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        redact_log_record(record)
        return record

    factory.redacts_secrets = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
