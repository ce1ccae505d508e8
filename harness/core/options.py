"""Declared options: one way to declare, parse, validate and describe them.

Every option set in the harness (a task's loader options, a pair builder's options, a method's
hyperparameters, ``--option KEY=VALUE`` on the command line) is a dataclass whose fields are made with
:func:`option_field` (a default, a help text, optional allowed values, optional bounds). :func:`parse_options`
builds it from a dict whose values may be strings from the command line (coerced to each field's type), and
turns an unknown key into a one-line error with a "did you mean" suggestion.

Numbers: a :class:`Range` declares the values a number may take (``Range(gt=0)``, ``Range(ge=0, lt=0.5)``);
every float must be finite (no NaN, no infinity) unless its range says ``finite=False``. A method declares
its hyperparameters' ranges the same way, in ``Method.hparam_ranges``. Values echoed in errors are cut to
``SHOWN_CHARS`` characters, so a pasted file does not become the error message.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import types
import typing
from collections.abc import Iterable, Sequence
from typing import Any

from harness.core.errors import HarnessError

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")
SHOWN_CHARS = 80  # how much of a value an error message echoes


def shown(value: Any, limit: int = SHOWN_CHARS) -> str:
    """``repr(value)`` for an error message; a long value gives its first ``limit`` characters and its
    length: ``'aaaa'… (120000 chars)``."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit:
        return repr(value)
    head = repr(text[:limit]) if isinstance(value, str) else text[:limit]
    return f"{head}… ({len(text)} chars)"


def cut(text: str, limit: int = 4 * SHOWN_CHARS) -> str:
    """``text``, or its first ``limit`` characters and its length when longer (a message that quotes a value)."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} chars)"


@dataclasses.dataclass(frozen=True)
class Range:
    """The values a number option may take: a lower bound (``gt`` or ``ge``), an upper bound (``lt`` or
    ``le``), and, unless ``finite=False``, no NaN or infinity. ``Range()`` is any finite number."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    finite: bool = True

    def __post_init__(self) -> None:
        if self.gt is not None and self.ge is not None or self.lt is not None and self.le is not None:
            raise ValueError("a Range takes one lower bound (gt or ge) and one upper bound (lt or le)")

    def describe(self) -> str:
        """``"> 0"``, ``"[0, 0.5)"``, ``">= 0"``, or ``"any"`` (the finiteness is said by ``requirement``)."""
        low, high = _first(self.gt, self.ge), _first(self.lt, self.le)
        if low is not None and high is not None:
            return f"{'(' if self.gt is not None else '['}{low:g}, {high:g}{')' if self.lt is not None else ']'}"
        if low is not None:
            return f"{'>' if self.gt is not None else '>='} {low:g}"
        if high is not None:
            return f"{'<' if self.lt is not None else '<='} {high:g}"
        return "any"

    def requirement(self) -> str:
        """What a value must be, as a message says it: ``"a finite number in [0, 0.5)"``."""
        bounds = self.describe()
        number = "a finite number" if self.finite else "a number"
        if bounds == "any":
            return number
        return f"{number} in {bounds}" if bounds[0] in "([" else f"{number} {bounds}"

    def admits(self, value: float) -> bool:
        if math.isnan(value):
            return not self.finite and self.gt is None and self.ge is None and self.lt is None and self.le is None
        if self.finite and math.isinf(value):
            return False
        return ((self.gt is None or value > self.gt) and (self.ge is None or value >= self.ge)
                and (self.lt is None or value < self.lt) and (self.le is None or value <= self.le))


def range_text(bounds: Range | None) -> str | None:
    """How listings show a range: ``"> 0"``, ``"[0, 0.5)"``, ``"finite"`` (any finite number), ``"any"``,
    or None for a value that is not a number."""
    if bounds is None:
        return None
    text = bounds.describe()
    return ("finite" if bounds.finite else "any") if text == "any" else text


def _first(*values: float | None) -> float | None:
    return next((v for v in values if v is not None), None)


def check_number(owner: str, name: str, value: Any, bounds: Range, what: str = "option", given: Any = None) -> None:
    """A one-line error unless ``value`` is a number (None passes: optional fields) that ``bounds`` admits.

    ``given`` is what the user wrote, when ``value`` was converted from it (``"1e999"`` for ``inf``): the
    message echoes that."""
    if value is None:
        return
    echo = given if isinstance(given, str) else shown(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise HarnessError(f"{owner}: {what} '{name}' must be {bounds.requirement()}, got {shown(value)}")
    if not bounds.admits(float(value)):
        raise HarnessError(f"{owner}: {what} {name}={cut(echo, SHOWN_CHARS)} must be {bounds.requirement()}")


def default_range(value: Any) -> Range | None:
    """The range of a number without a declared one: floats are finite, other values are not checked."""
    return Range() if isinstance(value, float) else None


def parse_bool(value: str) -> bool:
    """``"yes"``/``"on"``/``"1"``/``"true"`` and their opposites, any case; anything else is a ValueError."""
    lowered = value.lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise ValueError(value)


def option_field(default: Any, help: str, choices: Sequence[Any] | None = None, *, gt: float | None = None,
                 ge: float | None = None, lt: float | None = None, le: float | None = None,
                 finite: bool = True) -> Any:
    """A dataclass field carrying its help text (shown by the CLI, docs and errors), allowed values and, for
    a number, its bounds (``gt``/``ge`` below, ``lt``/``le`` above; a float must be finite unless
    ``finite=False``), checked by :func:`parse_options`."""
    meta: dict[str, Any] = {"help": help, "choices": tuple(choices or ())}
    if (gt, ge, lt, le, finite) != (None, None, None, None, True):
        meta["range"] = Range(gt=gt, ge=ge, lt=lt, le=le, finite=finite)
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def parse_key_values(items: Iterable[str], flag: str = "--option") -> dict[str, str]:
    """``["a=1", "b=x=y"]`` -> ``{"a": "1", "b": "x=y"}``; an item without ``=`` is a one-line error."""
    parsed: dict[str, str] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise HarnessError(f"{flag} expects KEY=VALUE, got {shown(str(item))}")
        parsed[key.strip()] = value
    return parsed


def suggest(name: str, known: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest known name, or ``""``."""
    if len(name) > SHOWN_CHARS:  # no name is that long, and difflib is slow on long strings
        return ""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def check_known(owner: str, given: Iterable[str], known: Iterable[str], what: str = "option") -> None:
    """A one-line error for the first key of ``given`` not in ``known`` (with a suggestion)."""
    known = list(known)
    for name in given:
        if name not in known:
            listing = ", ".join(sorted(known)) or "none"
            raise HarnessError(f"{owner} has no {what} {shown(str(name))}{suggest(str(name), known)} ({what}s: {listing})")


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
        raise HarnessError(f"{owner}: option '{name}' expects {kind.__name__}, got {shown(value)}") from None
    return value


def _optional(annotation: Any) -> bool:
    if isinstance(annotation, str):
        return "None" in annotation
    return type(None) in typing.get_args(annotation)


def _target_type(default: Any, annotation: Any) -> type | None:
    if default is not None:
        return type(default) if type(default) in (bool, int, float, str, list, tuple, dict) else None
    if isinstance(annotation, str):  # postponed annotations: "int | None", "dict[str, float] | None"
        parts = [p.strip() for p in annotation.split("|") if p.strip() not in ("None", "")]
        outer = parts[0].split("[")[0].strip() if parts else ""
        return {"bool": bool, "int": int, "float": float, "list": list, "tuple": tuple, "dict": dict,
                "str": str}.get(outer)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    candidate = args[0] if len(args) == 1 else annotation
    if isinstance(candidate, types.GenericAlias):
        candidate = typing.get_origin(candidate)
    return candidate if candidate in (bool, int, float, str, list, tuple, dict) else None


def parse_options(owner: str, cls: type, options: dict[str, Any] | None):
    """Build the options dataclass ``cls`` from ``options`` (strings from the CLI are coerced).

    ``owner`` names what the options belong to in messages (``"task 'slake'"``, ``"method 'povid'"``).
    Unknown keys, values of the wrong type, numbers outside a field's range (or not finite) and values
    outside a field's ``choices`` are one-line ``HarnessError``s.
    """
    options = dict(options or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    check_known(owner, options, fields)
    values = {name: coerce(owner, name, value, field_default(fields[name]), fields[name].type)
              for name, value in options.items()}
    for name, value in values.items():
        bounds = field_range(fields[name])
        if bounds is not None:
            check_number(owner, name, value, bounds, given=options[name])
    try:
        parsed = cls(**values)
    except (TypeError, ValueError) as exc:
        raise HarnessError(f"{owner}: {cut(str(exc))}") from None
    for name, spec in fields.items():
        choices = spec.metadata.get("choices")
        value = getattr(parsed, name)
        if choices and value not in choices:
            raise HarnessError(f"{owner}: option {name}={shown(value)} is not one of "
                               f"{', '.join(repr(c) for c in choices)}")
    return parsed


def field_range(spec: dataclasses.Field) -> Range | None:
    """A field's declared range, or for a float field the default one (finite)."""
    declared = spec.metadata.get("range")
    if declared is not None:
        return declared
    default = field_default(spec)
    return Range() if isinstance(default, float) or default is None and _plain_float(spec.type) else None


def _plain_float(annotation: Any) -> bool:
    """``float`` or ``float | None`` (not ``dict[str, float]``), written out or postponed as a string."""
    if isinstance(annotation, str):
        return annotation.replace(" ", "") in ("float", "float|None", "None|float", "Optional[float]")
    return annotation is float or [a for a in typing.get_args(annotation) if a is not type(None)] == [float]


def options_help(cls: type) -> list[dict[str, Any]]:
    """``[{name, default, help, choices, range}]`` for the CLI, docs and ``--format json`` listings; ``range``
    is ``range_text`` of the field's range (``"> 0"``, ``"finite"`` for an undeclared float)."""
    return [
        {
            "name": f.name,
            "default": field_default(f),
            "help": f.metadata.get("help", ""),
            "choices": list(f.metadata.get("choices", ())),
            "range": range_text(field_range(f)),
        }
        for f in dataclasses.fields(cls)
    ]
