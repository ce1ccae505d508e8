"""Checks of the numbers and the declared config fields of a submission, before anything is stored.

- ``check_numbers(payload)``: every number anywhere in the file (config included) is finite and fits in 64
  bits. ``1e999`` parses as infinity; the parser keeps what was written (``Literal``) so the error echoes it:
  ``record run 0, field 'config.x': 1e999 is not a finite number``.
- ``check_config(config, method)``: the config keys the leaderboard reads have their declared type and range
  (``CONFIG_FIELDS``: ``card.params`` a positive number, limits positive integers, seeds integers...); the
  harness's own run options (``config.pipeline``, ``config.pipeline.train``) their dataclass field's type
  and range; the method's hyperparameters (``beta``...) the range the method declares. Keys the leaderboard
  computes itself (``data``, ``verification``) or keeps elsewhere (``submitted_by``) are dropped.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Callable
from typing import Any

from harness.core.errors import DataError

INT64 = 2**63 - 1
COMPUTED_KEYS = ("data", "verification", "submitted_by")  # set by the leaderboard, never by the submitter
MAX_PARAMS = 10**13
URL = re.compile(r"^https://[^\s<>\"']{1,300}$")


class Literal(float):
    """A float that remembers how the file wrote it (``1e999``), for the error message."""

    text: str

    def __new__(cls, text: str) -> Literal:
        value = super().__new__(cls, text)
        value.text = text
        return value


def parse_float(text: str) -> float:
    value = float(text)
    return value if math.isfinite(value) else Literal(text)


def written(value: Any) -> str:
    return getattr(value, "text", None) or repr(value)


def _path_text(path: list[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def locate(path: list[Any]) -> tuple[str | None, str | None]:
    """``(record, field)`` for a path into a results file: ``["runs", 0, "results", 1, "value"]`` is record
    ``run 0 result 1``, field ``value``; ``["runs", 0, "config", "x"]`` is record ``run 0``, field ``config.x``."""
    record = None
    if len(path) >= 2 and path[0] == "runs" and isinstance(path[1], int):
        record, path = f"run {path[1]}", path[2:]
    elif path and isinstance(path[0], int):  # a bare list of runs
        record, path = f"run {path[0]}", path[1:]
    if record and len(path) >= 2 and path[0] == "results" and isinstance(path[1], int):
        record, path = f"{record} result {path[1]}", path[2:]
    return record, (_path_text(path) or None)


def check_numbers(payload: Any, source: str) -> None:
    """A one-line ``DataError`` naming the first number in the file that is not finite or overflows 64 bits."""
    stack: list[tuple[Any, list[Any]]] = [(payload, [])]
    while stack:
        item, path = stack.pop()
        if isinstance(item, dict):
            stack.extend((v, [*path, k]) for k, v in reversed(list(item.items())))
        elif isinstance(item, list):
            stack.extend((v, [*path, i]) for i, v in reversed(list(enumerate(item))))
        elif isinstance(item, float) and not math.isfinite(item):
            record, field = locate(path)
            raise DataError(source, f"{written(item)} is not a finite number", record=record, field=field)
        elif isinstance(item, int) and not isinstance(item, bool) and abs(item) > INT64:
            record, field = locate(path)
            shown = str(item) if len(str(item)) <= 30 else f"{str(item)[:20]}… ({len(str(item))} digits)"
            raise DataError(source, f"{shown} does not fit in 64 bits", record=record, field=field)


# ------------------------------------------------------------------------------------------ declared fields

Check = Callable[[Any], str | None]  # the problem with a value, or None when it is fine


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def positive_number(limit: float = math.inf) -> Check:
    def check(value: Any) -> str | None:
        if not _is_number(value) or not 0 < value < limit:
            return f"{_shown(value)} is not a positive number" + ("" if limit == math.inf else f" below {limit:g}")
        return None
    return check


def positive_int(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return f"{_shown(value)} is not a positive integer"
    return None


def integer(value: Any) -> str | None:
    return None if isinstance(value, int) and not isinstance(value, bool) else f"{_shown(value)} is not an integer"


def text(limit: int = 200) -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, str):
            return f"{_shown(value)} is not a string"
        return f"is {len(value)} characters long; at most {limit}" if len(value) > limit else None
    return check


def https_url(value: Any) -> str | None:
    return None if isinstance(value, str) and URL.match(value) else f"{_shown(value)} is not an https:// URL"


def strings(value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return f"{_shown(value)} is not a list of strings"
    return None


def obj(value: Any) -> str | None:
    return None if isinstance(value, dict) else f"{_shown(value)} is not an object"


# What the leaderboard reads from a run's config, by path; None is allowed for each (the field is optional).
CONFIG_FIELDS: dict[str, Check] = {
    "card": obj,
    "card.params": positive_number(MAX_PARAMS),
    "card.model_url": https_url,
    "card.license": text(60),
    "card.precision": text(60),
    "base_run_id": text(100),
    "base_model": text(200),
    "role": text(40),
    "method": text(100),
    "precision": text(60),
    "tasks": strings,
    "signature": obj,
    "signature.limit": positive_int,
    "limit": positive_int,
    "eval_limit": positive_int,
    "lm_eval": obj,
    "lm_eval.limit": positive_number(),  # lm-eval's --limit may be a fraction of the split
    "lm_eval_limit": positive_number(),
    "pipeline": obj,
    "pipeline.eval_limit": positive_int,
    "pipeline.train_limit": positive_int,
    "pipeline.train": obj,
    "seed": integer,
    "train_seed": integer,
    "pair_seed": integer,
}


def _shown(value: Any) -> str:
    from harness.core.options import shown

    return written(value) if isinstance(value, Literal) else shown(value, 40)


def _get(config: dict[str, Any], path: str) -> tuple[bool, Any]:
    node: Any = config
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def check_config(config: dict[str, Any], method: str | None, source: str, where: str) -> dict[str, Any]:
    """The config with the leaderboard's computed keys dropped, or a one-line ``DataError`` naming the first
    declared field whose value has the wrong type or lies outside its range."""
    def fail(field: str, problem: str) -> None:
        raise DataError(source, problem, record=where, field=f"config.{field}")

    for path, check in CONFIG_FIELDS.items():
        present, value = _get(config, path)
        if present and value is not None and (problem := check(value)):
            fail(path, problem)
    pipeline = config.get("pipeline") if isinstance(config.get("pipeline"), dict) else {}
    _check_dataclass("pipeline", _run_config_class(), pipeline, fail)
    if isinstance(pipeline.get("train"), dict):
        _check_dataclass("pipeline.train", _train_config_class(), pipeline["train"], fail)
    _check_hparams(config, method, fail)
    return {k: v for k, v in config.items() if k not in COMPUTED_KEYS}


def _run_config_class() -> type | None:
    try:
        from harness.experiments.pipeline import RunConfig
    except Exception:  # the checks only need the declarations; a broken import skips them
        return None
    return RunConfig


def _train_config_class() -> type | None:
    try:
        from harness.training.config import TrainConfig
    except Exception:
        return None
    return TrainConfig


def _check_dataclass(prefix: str, cls: type | None, values: dict[str, Any], fail: Callable[[str, str], None]) -> None:
    """Each of ``values`` that is a declared field of ``cls``: its declared type (int, float, str, bool) and
    range (``harness.core.options.field_range``)."""
    if cls is None:
        return
    from harness.core.options import field_range

    hints = typing.get_type_hints(cls)
    for spec in dataclasses.fields(cls):
        if spec.name not in values or values[spec.name] is None:
            continue
        value, kind = values[spec.name], _plain_type(hints.get(spec.name))
        field = f"{prefix}.{spec.name}"
        if kind is bool and not isinstance(value, bool):
            fail(field, f"{_shown(value)} is not true or false")
        if kind is str and not isinstance(value, str):
            fail(field, f"{_shown(value)} is not a string")
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            fail(field, f"{_shown(value)} is not an integer")
        if kind is float and not _is_number(value):
            fail(field, f"{_shown(value)} is not a finite number")
        bounds = field_range(spec)
        if bounds is not None and _is_number(value) and not bounds.admits(float(value)):
            fail(field, f"{_shown(value)} is not {bounds.requirement()}")


def _plain_type(annotation: Any) -> type | None:
    """``int`` for ``int`` or ``int | None`` (likewise float, str, bool); None for anything else."""
    if annotation in (int, float, str, bool):
        return annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1 and args[0] in (
            int, float, str, bool):
        return args[0]
    return None


def _check_hparams(config: dict[str, Any], method: str | None, fail: Callable[[str, str], None]) -> None:
    """The method's hyperparameters, at the top of the config, under ``hparams``/``hyperparameters`` or in
    ``pipeline.options`` (strings, as the command line gave them): each within the method's declared range."""
    if not method:
        return
    from harness.methods import METHODS

    try:
        cls = METHODS.get(method)
    except Exception:  # an unregistered method declares nothing
        return
    places: list[tuple[str, Any]] = [("", config)]
    places += [(f"{key}.", config.get(key)) for key in ("hparams", "hyperparameters")]
    pipeline = config.get("pipeline")
    if isinstance(pipeline, dict):
        places.append(("pipeline.options.", pipeline.get("options")))
    for prefix, values in places:
        if not isinstance(values, dict):
            continue
        for key in getattr(cls, "defaults", {}):
            if key not in values or values[key] is None:
                continue
            bounds, value = cls.hparam_range(key), values[key]
            if bounds is None:
                continue
            number = value
            if isinstance(value, str) and prefix.startswith("pipeline.options"):
                try:
                    number = float(value)
                except ValueError:
                    number = None
            if not _is_number(number):
                fail(f"{prefix}{key}", f"{_shown(value)} is not a finite number ({method}'s '{key}' is "
                                       f"{bounds.requirement()})")
            if not bounds.admits(float(number)):
                fail(f"{prefix}{key}", f"{_shown(value)} is outside {method}'s declared range for '{key}': "
                                       f"{bounds.requirement()}")
