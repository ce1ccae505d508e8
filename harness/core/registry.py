"""One generic registry for tasks, metrics, methods and models.

Entries are registered in code (``@REGISTRY.register("name")``), as lazy ``"module:attr"`` strings that
are imported on first use, or through a Python entry-point group (``harness.tasks`` and so on) that is
read lazily, so a plugin is a pip-installable package and listing names never imports torch.

The harness's own built-ins that live above the registry's package (the methods; the probe tasks of
``harness.regress``; the built-in models that ``harness.experiments`` trains) are entry points of its own
distribution (``pyproject.toml``), read the same way as a plugin's, so a registry never names a module above
it. When two distributions declare the same name, the harness's own entry wins and the other is ignored with
a warning, so a plugin cannot silently replace a built-in.

An installed distribution's entry points are its metadata, written at install time. When the harness runs from
a source checkout (an editable install, or a clone on ``sys.path``), its own entry points are read from that
checkout's ``pyproject.toml`` instead, so a pulled change that adds a built-in needs no reinstall.

A registry may also name ``modules`` whose import registers entries (``@register`` where an entry is
defined): they are imported, in order, the first time a name is missing or the names are listed, and before
the entry points are read.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import logging
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Generic, TypeVar

from harness.core.errors import HarnessError, UnknownNameError

log = logging.getLogger(__name__)
T = TypeVar("T")

# the distribution that ships the harness: its entry points are the built-ins and win name clashes
HOME_DISTRIBUTION = "medpo-harness"


class DuplicateNameError(HarnessError):
    pass


class Registry(Generic[T]):
    """Maps names to objects; values may be lazy ``"module:attr"`` strings resolved on first ``get``."""

    def __init__(self, kind: str, entry_point_group: str | None = None, modules: tuple[str, ...] = ()):
        self.kind = kind
        self.entry_point_group = entry_point_group
        self.modules = modules  # imported on demand: importing one registers the entries defined in it
        self._entries: dict[str, T | str] = {}
        self._origins: dict[str, str] = {}  # name -> distribution, for entries read from entry points
        self._entry_points_loaded = False
        self._modules_loaded = 0

    def register(self, name: str, obj: T | str | None = None) -> Callable[[T], T] | T | str:
        """Register ``obj`` under ``name``; without ``obj`` returns a decorator."""
        if obj is None:
            def decorator(value: T) -> T:
                self._add(name, value)
                return value

            return decorator
        self._add(name, obj)
        return obj

    def register_lazy(self, name: str, target: str) -> None:
        """Register ``"package.module:attr"``, imported only when the entry is first used."""
        if ":" not in target:
            raise ValueError(f"lazy {self.kind} target must look like 'module:attr', got {target!r}")
        self._add(name, target)

    def unregister(self, name: str) -> None:
        """Remove ``name`` (no error when absent): for tests and sessions that register temporary entries."""
        self._entries.pop(name, None)
        self._origins.pop(name, None)

    def _add(self, name: str, value: T | str) -> None:
        if not name or not isinstance(name, str):
            raise ValueError(f"{self.kind} name must be a non-empty string, got {name!r}")
        existing = self._entries.get(name)
        if existing is not None and existing is not value and existing != value:
            raise DuplicateNameError(f"{self.kind} '{name}' is already registered")
        self._entries[name] = value

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded or not self.entry_point_group:
            return
        self._entry_points_loaded = True
        for dist, name, value in declared_entry_points(self.entry_point_group):
            if name in self._entries:
                if self._entries[name] != value:
                    owner = self._origins.get(name, "code")
                    log.warning("%s '%s' from %s (%s) ignored: the name is already registered by %s",
                                self.kind, name, dist, value, owner)
                continue
            self._entries[name] = value
            self._origins[name] = dist

    def _load_modules(self, until: str | None = None) -> None:
        """Import the registering modules in order (all of them, or until ``until`` is registered)."""
        while self._modules_loaded < len(self.modules) and (until is None or until not in self._entries):
            module = self.modules[self._modules_loaded]
            self._modules_loaded += 1
            importlib.import_module(module)

    def _load(self, until: str | None = None) -> None:
        """The entries registered in modules (all, or until ``until`` is there), then, once every module is in,
        the entry points: a built-in registered in code always precedes a plugin's claim of its name."""
        self._load_modules(until)
        if until is None or until not in self._entries:
            self._load_entry_points()

    def origin(self, name: str) -> str | None:
        """The distribution (pip package) whose entry point registered ``name``; None for in-code entries."""
        self._load(name)
        return self._origins.get(name)

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load(name if isinstance(name, str) else None)
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def get(self, name: str) -> T:
        self._load(name)
        if name not in self._entries:
            self._load()  # every name, for the suggestion
            raise UnknownNameError(self._unknown_message(name))
        value = self._entries[name]
        if isinstance(value, str):
            value = _import_target(value, self.kind, name)
            self._entries[name] = value
        return value

    def _unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, list(self._entries), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return f"unknown {self.kind} '{name}'{hint} (known: {', '.join(sorted(self._entries)) or 'none'})"


def declared_entry_points(group: str) -> list[tuple[str, str, str]]:
    """``(distribution, name, value)`` of every entry point in ``group``: the harness's own first (from its
    source checkout's ``pyproject.toml`` when it runs from one, else from its installed metadata), then the
    plugins' in a stable order, so the first claim of a name is the one that counts."""
    found = [(_distribution(ep), ep.name, ep.value) for ep in entry_points(group=group)]
    source = _source_entry_points()
    if source is not None:  # the checkout's declaration replaces the (maybe stale) installed metadata
        found = [item for item in found if item[0] != HOME_DISTRIBUTION]
        found += [(HOME_DISTRIBUTION, name, value) for name, value in source.get(group, {}).items()]
    return sorted(found, key=lambda item: (item[0] != HOME_DISTRIBUTION, item[0], item[1]))


@functools.cache
def _source_entry_points() -> dict[str, dict[str, str]] | None:
    """The entry points the harness's ``pyproject.toml`` declares when the harness runs from a source checkout
    (the file beside the ``harness`` package names this distribution); None otherwise (an installed wheel)."""
    path = Path(__file__).resolve().parents[2] / "pyproject.toml"
    if not path.is_file():
        return None
    try:
        import tomllib
    except ImportError:  # Python 3.10: the installed metadata it is
        return None
    try:
        project = tomllib.loads(path.read_text(encoding="utf-8")).get("project", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        log.warning("%s not read (%s): entry points come from the installed metadata", path.name, exc)
        return None
    if project.get("name") != HOME_DISTRIBUTION:
        return None
    return {group: dict(entries) for group, entries in project.get("entry-points", {}).items()}


def _distribution(ep) -> str:
    dist = getattr(ep, "dist", None)
    return dist.name if dist is not None else "?"


def _import_target(target: str, kind: str, name: str):
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
        value = module
        for part in attr.split("."):
            value = getattr(value, part)
    except (ImportError, AttributeError) as exc:
        raise HarnessError(f"{kind} '{name}' could not be loaded from {target}: {exc}") from exc
    return value
