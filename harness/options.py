"""Declared options: one way to declare, parse, validate and describe them.

Every option set in the harness (a task's loader options, a pair builder's options, a method's
hyperparameters, ``--option KEY=VALUE`` on the command line) is a dataclass whose fields are made with
:func:`option_field` (a default, a help text, optional allowed values). :func:`parse_options` builds it
from a dict whose values may be strings from the command line (coerced to each field's type), and turns
an unknown key into a one-line error with a "did you mean" suggestion.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from collections.abc import Iterable, Sequence
from typing import Any

from harness.errors import HarnessError

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


def parse_bool(value: str) -> bool:
    """``"yes"``/``"on"``/``"1"``/``"true"`` and their opposites, any case; anything else is a ValueError."""
    lowered = value.lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise ValueError(value)


def option_field(default: Any, help: str, choices: Sequence[Any] | None = None) -> Any:
    """A dataclass field carrying its help text (shown by the CLI, docs and errors) and allowed values."""
    meta = {"help": help, "choices": tuple(choices or ())}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def parse_key_values(items: Iterable[str], flag: str = "--option") -> dict[str, str]:
    """``["a=1", "b=x=y"]`` -> ``{"a": "1", "b": "x=y"}``; an item without ``=`` is a one-line error."""
    parsed: dict[str, str] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise HarnessError(f"{flag} expects KEY=VALUE, got {item!r}")
        parsed[key.strip()] = value
    return parsed


def suggest(name: str, known: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest known name, or ``""``."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def check_known(owner: str, given: Iterable[str], known: Iterable[str], what: str = "option") -> None:
    """A one-line error for the first key of ``given`` not in ``known`` (with a suggestion)."""
    known = list(known)
    for name in given:
        if name not in known:
            listing = ", ".join(sorted(known)) or "none"
            raise HarnessError(f"{owner} has no {what} '{name}'{suggest(name, known)} ({what}s: {listing})")


def field_default(spec: dataclasses.Field) -> Any:
    if spec.default is not dataclasses.MISSING:
        return spec.default
    if spec.default_factory is not dataclasses.MISSING:
        return spec.default_factory()
    return None


def coerce(owner: str, name: str, value: Any, default: Any, annotation: Any = None) -> Any:
    """Convert a command-line string to the type of ``default`` (or of ``annotation`` when the default is None).

    bool, int, float, list (comma-separated) and dict (JSON); ``"none"`` gives None for optional fields;
    non-strings and string-typed options pass unchanged.
    """
    if not isinstance(value, str):
        return value
    kind = _target_type(default, annotation)
    if kind is None or kind is str:
        return value
    if value.strip().lower() == "none" and (default is None or _optional(annotation)):
        return None
    try:
        if kind is bool:
            return parse_bool(value)
        if kind in (int, float):
            return kind(value)
        if kind in (list, tuple):
            return kind(v.strip() for v in value.split(",") if v.strip())
        if kind is dict:
            parsed = json.loads(value)
            if not isinstance(parsed, dict):
                raise ValueError(value)
            return parsed
    except ValueError:
        raise HarnessError(f"{owner}: option '{name}' expects {kind.__name__}, got {value!r}") from None
    return value


def _optional(annotation: Any) -> bool:
    if isinstance(annotation, str):
        return "None" in annotation
    return type(None) in typing.get_args(annotation)


def _target_type(default: Any, annotation: Any) -> type | None:
    if default is not None:
        return type(default) if type(default) in (bool, int, float, str, list, tuple, dict) else None
    if isinstance(annotation, str):  # postponed annotations: "int | None"
        for name, kind in (("bool", bool), ("int", int), ("float", float), ("list", list), ("tuple", tuple),
                           ("dict", dict), ("str", str)):
            if name in annotation:
                return kind
        return None
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    candidate = args[0] if len(args) == 1 else annotation
    if isinstance(candidate, types.GenericAlias):
        candidate = typing.get_origin(candidate)
    return candidate if candidate in (bool, int, float, str, list, tuple, dict) else None


def parse_options(owner: str, cls: type, options: dict[str, Any] | None):
    """Build the options dataclass ``cls`` from ``options`` (strings from the CLI are coerced).

    ``owner`` names what the options belong to in messages (``"task 'slake'"``, ``"method 'povid'"``).
    Unknown keys, values of the wrong type and values outside a field's ``choices`` are one-line
    ``HarnessError``s.
    """
    options = dict(options or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    check_known(owner, options, fields)
    values = {name: coerce(owner, name, value, field_default(fields[name]), fields[name].type)
              for name, value in options.items()}
    try:
        parsed = cls(**values)
    except (TypeError, ValueError) as exc:
        raise HarnessError(f"{owner}: {exc}") from None
    for name, spec in fields.items():
        choices = spec.metadata.get("choices")
        value = getattr(parsed, name)
        if choices and value not in choices:
            raise HarnessError(f"{owner}: option {name}={value!r} is not one of {', '.join(repr(c) for c in choices)}")
    return parsed


def options_help(cls: type) -> list[dict[str, Any]]:
    """``[{name, default, help, choices}]`` for the CLI, docs and ``--format json`` listings."""
    return [
        {
            "name": f.name,
            "default": field_default(f),
            "help": f.metadata.get("help", ""),
            "choices": list(f.metadata.get("choices", ())),
        }
        for f in dataclasses.fields(cls)
    ]
