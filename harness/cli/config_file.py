"""``--config FILE.yaml``: a command's flags from a YAML file, and the effective config saved with the run.

A config file is a YAML mapping whose keys are the command's long flags, spelled with ``-`` or ``_``
(``eval_limit`` = ``eval-limit``), which are the fields of the command's config dataclass (``RunConfig``,
``TrainConfig``, ``EvalConfig``...). A mapping under a key that is not a flag (``train:``) is a section: its
keys are read as flags too, so ``train: {lr: 1e-4}`` = ``lr: 1e-4``. Values are what the flag takes:

- an on/off flag takes ``true``/``false``;
- a repeatable ``KEY=VALUE`` flag takes a mapping (``option: {beta: 0.2}``; ``task_option: {vqa_rad: {source:
  osf}}``) or a list of ``KEY=VALUE`` strings;
- a list flag (``tasks``) takes a list or a comma-separated string; ``null`` leaves a flag at its default.

Each value becomes the flag's own text, so the parsing and checks of the flag apply; a bad value, an unknown key
or a YAML syntax error is a one-line error naming the file (and the key or line). Flags given on the command
line win over the file: the file's value of a flag given there is dropped entirely (a repeatable flag is not
merged). ``save_effective_config`` writes what a command ran with (every flag's value, file and command line
merged) as ``config.yaml`` in its run folder; ``harness CMD --config that/config.yaml`` reruns it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError

log = logging.getLogger(__name__)

CONFIG_NAME = "config.yaml"
# Flags that say how to run or show a command, not what it computes: never read from or saved to a config
# file (a saved run id would make a rerun resume the old run instead of starting a new one).
NOT_CONFIG = frozenset({"config_file", "help", "version", "run_id", "allow_changed", "study_id", "report_only",
                        "format", "quiet", "no_progress", "verbose", "resume", "list_options"})
_PARSER_KEY = "_config_parser"
_DEPRECATED_KEY = "_deprecated_flags"


def add_config_option(parser: argparse.ArgumentParser) -> None:
    """``--config FILE.yaml`` on ``parser``; ``parse_command_line`` reads the file."""
    parser.add_argument("--config", dest="config_file", default=None, metavar="FILE.yaml",
                        help="read flags from a YAML file (keys: the long flags, '-' or '_'); flags given on the "
                             "command line win; the run folder keeps the effective config as config.yaml")
    parser.set_defaults(**{_PARSER_KEY: parser})


def parse_command_line(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """``parser.parse_args(argv)``, with the flags of a ``--config`` file inserted before the command line's own
    (a flag given on the command line drops the file's value)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    found = _command(parser, argv)
    if found is None:
        return parser.parse_args(argv)
    index, sub = found
    rest = argv[index + 1:]
    path = _config_path(rest)
    if path is None or sub.get_default(_PARSER_KEY) is not sub:
        return parser.parse_args(argv)
    given = explicit_dests(sub, rest)
    tokens = config_tokens(sub, read_config(path), path, skip=given)
    return parser.parse_args([*argv[:index + 1], *tokens, *rest])


def _command(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[int, argparse.ArgumentParser] | None:
    """``(index in argv, parser)`` of the subcommand (the first word that is not a global flag)."""
    subparsers = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    if subparsers is None:
        return None
    for index, token in enumerate(argv):
        if token == "--":
            return None
        if not token.startswith("-"):
            sub = subparsers.choices.get(token)
            return None if sub is None else (index, sub)
    return None


def _config_path(argv: list[str]) -> str | None:
    """The last ``--config FILE`` (or ``--config=FILE``) of ``argv``."""
    path = None
    for index, token in enumerate(argv):
        if token == "--config" and index + 1 < len(argv):
            path = argv[index + 1]
        elif token.startswith("--config="):
            path = token.split("=", 1)[1]
    return path


def explicit_dests(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The destinations of the flags ``argv`` gives: ``argv`` parsed with every default suppressed and nothing
    required, so only what was written lands in the namespace."""
    saved = [(a, a.default, a.required) for a in parser._actions]
    groups = [(g, g.required) for g in parser._mutually_exclusive_groups]
    defaults = parser._defaults
    try:
        for action, _, _ in saved:
            action.default, action.required = argparse.SUPPRESS, False
        for group, _ in groups:
            group.required = False
        parser._defaults = {}
        namespace, _ = parser.parse_known_args(argv, argparse.Namespace())
    finally:
        for action, default, required in saved:
            action.default, action.required = default, required
        for group, required in groups:
            group.required = required
        parser._defaults = defaults
    return {name for name in vars(namespace) if name != _DEPRECATED_KEY}


def read_config(path: str | Path) -> dict[str, Any]:
    """The YAML mapping in ``path``: a missing file, a syntax error (with its line) or another top-level value
    is a one-line error naming the file."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HarnessError(f"--config {path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HarnessError(f"--config {path}: cannot read it ({exc.__class__.__name__})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or exc.__class__.__name__
        raise HarnessError(f"{path}:{where}: not valid YAML ({problem})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise HarnessError(f"{path}: expected a mapping of flag names to values, found a YAML "
                           f"{type(data).__name__}")
    return data


def config_tokens(parser: argparse.ArgumentParser, data: Mapping[str, Any], path: str | Path,
                  skip: set[str] = frozenset(), section: str = "") -> list[str]:
    """The command-line words that say what ``data`` says, for the flags of ``parser`` (flags whose
    destination is in ``skip`` left out). Unknown keys and bad values are one-line errors naming the key."""
    tokens: list[str] = []
    for key, value in data.items():
        name = f"{section}{key}"
        if not isinstance(key, str):
            raise HarnessError(f"{path}: key {key!r}: keys are flag names (strings)")
        action = _action(parser, key)
        if action is None and isinstance(value, Mapping):
            tokens += config_tokens(parser, value, path, skip, section=f"{name}.")
            continue
        if action is None:
            raise HarnessError(f"{path}: unknown key '{name}'{_suggestion(parser, key)} (keys are the long flags "
                               f"of this command: see --help)")
        if action.dest in skip:
            continue
        if isinstance(action, argparse.BooleanOptionalAction) and isinstance(value, bool) \
                and "--" + key.strip().replace("_", "-") != action.option_strings[0]:
            value = not value  # no_lora: true is --no-lora
        tokens += _tokens(action, value, f"{path}: key '{name}'")
    return tokens


def _action(parser: argparse.ArgumentParser, key: str) -> argparse.Action | None:
    """The flag ``--key`` (``_`` read as ``-``), or the flag whose destination is the config field ``key``
    (``options`` for ``--option``, ``task_options`` for ``--task-option``)."""
    name = key.strip()
    action = parser._option_string_actions.get("--" + name.replace("_", "-"))
    if action is None:
        field = name.replace("-", "_")
        action = next((a for a in parser._actions if a.option_strings and a.help != argparse.SUPPRESS
                       and _key(a) == field), None)
    if action is None or action.dest in NOT_CONFIG:
        return None
    return action


def _key(action: argparse.Action) -> str:
    """The config key of a flag: its destination, which is the config dataclass's field name (``cfg_limit``
    of ``harness eval`` is ``EvalConfig.limit``)."""
    return action.dest.removeprefix("cfg_")


def _suggestion(parser: argparse.ArgumentParser, key: str) -> str:
    from harness.core.options import suggest

    known = [flag[2:].replace("-", "_") for flag, a in parser._option_string_actions.items()
             if flag.startswith("--") and a.dest not in NOT_CONFIG and a.help != argparse.SUPPRESS]
    return suggest(key.replace("-", "_"), known)


def _tokens(action: argparse.Action, value: Any, where: str) -> list[str]:
    flag = next(s for s in action.option_strings if s.startswith("--"))
    if isinstance(action, argparse.BooleanOptionalAction):
        if value is None:
            return []
        return [flag if _boolean(value, where) else "--no-" + flag[2:]]
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        if value is None:
            return []
        on = _boolean(value, where)
        return [flag] if on == isinstance(action, argparse._StoreTrueAction) else []
    if _repeatable(action):
        items = _key_values(value, action.dest, where)
        return [word for item in items for word in (flag, _checked(action, item, where))]
    if value is None:
        if action.default is None:
            return []
        value = "none"
    if action.nargs in ("+", "*"):
        values = value if isinstance(value, (list, tuple)) else [v for v in str(value).split(",") if v.strip()]
        return [flag, *(_checked(action, _text(v, where), where) for v in values)] if values else []
    if isinstance(value, (list, tuple)):
        value = ",".join(_text(v, where) for v in value)
    return [flag, _checked(action, _text(value, where), where)]


def _repeatable(action: argparse.Action) -> bool:
    return isinstance(action, argparse._AppendAction) or getattr(action, "append", False)


def _boolean(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    from harness.core.options import parse_bool

    try:
        return parse_bool(str(value))
    except ValueError:
        raise HarnessError(f"{where}: expected true or false, got {value!r}") from None


def _text(value: Any, where: str) -> str:
    if isinstance(value, Mapping):
        raise HarnessError(f"{where}: expected a value, got a mapping")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _key_values(value: Any, dest: str, where: str) -> list[str]:
    """A repeatable ``KEY=VALUE`` flag's items from a mapping (nested one level for ``task_options``:
    ``{task: {key: value}}``), a list of ``KEY=VALUE`` strings, or one such string."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        items = []
        for key, item in value.items():
            if isinstance(item, Mapping) and dest == "task_options":
                items += [f"{key}.{k}={_option_text(v)}" for k, v in item.items()]
            else:
                items.append(f"{key}={_option_text(item, where)}")
        return items
    if isinstance(value, (list, tuple)):
        return [_text(v, where) for v in value]
    return [_text(value, where)]


def _option_text(value: Any, where: str = "") -> str:
    """An option value as ``harness.core.options.coerce`` reads it: lists comma-separated, mappings as JSON."""
    import json

    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, Mapping):
        return json.dumps(value)
    return str(value)


def _checked(action: argparse.Action, text: str, where: str) -> str:
    """``text`` unchanged, once the flag's own type and choices accept it (else a one-line error)."""
    value: Any = text
    if callable(action.type):
        try:
            value = action.type(text)
        except (argparse.ArgumentTypeError, TypeError, ValueError) as exc:
            kind = getattr(action.type, "__name__", "value")
            detail = str(exc) if isinstance(exc, argparse.ArgumentTypeError) else f"expected {kind}"
            raise HarnessError(f"{where}: {detail}, got {text!r}") from None
    if action.choices is not None and value not in action.choices:
        raise HarnessError(f"{where}: {text!r} is not one of {', '.join(map(str, action.choices))}")
    return text


# ---- the effective config ----------------------------------------------------------------------------------

def effective_config(args: argparse.Namespace) -> dict[str, Any]:
    """Every config flag of the command and the value it ran with, keyed by the config field the flag sets
    (the flag's name with '_'; ``options``/``task_options`` for ``--option``/``--task-option``): the form
    ``--config`` reads back, so a rerun from it parses to the same values."""
    parser = getattr(args, _PARSER_KEY, None)
    if parser is None:
        raise ValueError("effective_config needs a namespace parsed by a command with --config")
    config: dict[str, Any] = {}
    for action in parser._actions:
        if not action.option_strings or action.dest in NOT_CONFIG or action.help == argparse.SUPPRESS \
                or not hasattr(args, action.dest) or isinstance(action, argparse._HelpAction):
            continue
        value = getattr(args, action.dest)
        if _repeatable(action):
            value = _as_mapping(value or [], action.dest)
        config[_key(action)] = _plain(value)
    return config


def _as_mapping(items: list[str], dest: str) -> dict[str, Any] | list[str]:
    """``["a=1", "b=2"]`` -> ``{"a": "1", "b": "2"}`` (``task_options``: ``{task: {key: value}}``); items
    without '=' stay a list, so the error they gave is given again on a rerun."""
    mapping: dict[str, Any] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep:
            return list(items)
        if dest == "task_options":
            task, dot, name = key.partition(".")
            if not dot:
                return list(items)
            mapping.setdefault(task, {})[name] = value
        else:
            mapping[key] = value
    return mapping


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def save_effective_config(args: argparse.Namespace, folder: str | Path, command: str) -> Path:
    """``folder/config.yaml``: the effective config (written atomically); ``harness COMMAND --config`` it
    reruns the run."""
    import yaml

    from harness.core.io import atomic_write

    path = Path(folder) / CONFIG_NAME
    header = (f"# harness {command}: the effective config of this run (config file and flags merged).\n"
              f"# Rerun it with: harness {command} --config {CONFIG_NAME}\n")
    with atomic_write(path) as handle:
        handle.write(header)
        yaml.safe_dump(effective_config(args), handle, sort_keys=False, allow_unicode=True,
                       default_flow_style=False)
    return path


def remove_lone_config(folder: str | Path) -> None:
    """Remove ``folder`` when ``config.yaml`` is all it holds: a run that failed before it saved anything."""
    folder = Path(folder)
    if folder.is_dir() and [p.name for p in folder.iterdir()] == [CONFIG_NAME]:
        (folder / CONFIG_NAME).unlink(missing_ok=True)
        folder.rmdir()


# ---- deprecated spellings ------------------------------------------------------------------------------------

class DeprecatedAlias(argparse.Action):
    """A hidden old spelling of a flag: stores into the new flag's destination (appending when ``append``) and
    notes itself, so ``warn_deprecated`` logs one warning per old spelling used."""

    def __init__(self, option_strings, dest, replacement: str, append: bool = False, **kwargs):
        kwargs["help"] = argparse.SUPPRESS
        super().__init__(option_strings, dest, **kwargs)
        self.replacement = replacement
        self.append = append

    def __call__(self, parser, namespace, values, option_string=None):
        if self.append:
            values = [*(getattr(namespace, self.dest, None) or []), values]
        setattr(namespace, self.dest, values)
        used = dict(getattr(namespace, _DEPRECATED_KEY, None) or {})
        used[option_string] = self.replacement
        setattr(namespace, _DEPRECATED_KEY, used)


def add_deprecated_alias(parser: argparse.ArgumentParser, old: str, new: str, dest: str, *,
                         append: bool = False, **kwargs: Any) -> None:
    """``old`` as a hidden alias of the flag ``new`` (destination ``dest``), kept for one version."""
    parser.add_argument(old, dest=dest, action=DeprecatedAlias, replacement=new, append=append,
                        default=argparse.SUPPRESS, **kwargs)


def warn_deprecated(args: argparse.Namespace) -> None:
    """One warning per deprecated spelling the command line (or config file) used."""
    for old, new in sorted((getattr(args, _DEPRECATED_KEY, None) or {}).items()):
        log.warning("%s is deprecated and will be removed in the next version: use %s", old, new)
