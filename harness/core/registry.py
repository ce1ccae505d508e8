"""One generic registry for tasks, metrics, methods and models.

Entries are registered in code (``@REGISTRY.register("name")``), as lazy ``"module:attr"`` strings that
are imported on first use, or through a Python entry-point group (``harness.tasks`` and so on) that is
read lazily, so a plugin is a pip-installable package and listing names never imports torch.

The harness's own built-in methods are entry points of its own distribution (``pyproject.toml``), read
the same way as a plugin's. When two distributions declare the same name, the harness's own entry wins
and the other is ignored with a warning, so a plugin cannot silently replace a built-in.
"""

from __future__ import annotations

import difflib
import importlib
import logging
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
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

    def __init__(self, kind: str, entry_point_group: str | None = None):
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._entries: dict[str, T | str] = {}
        self._origins: dict[str, str] = {}  # name -> distribution, for entries read from entry points
        self._entry_points_loaded = False

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
        found = [(_distribution(ep), ep) for ep in entry_points(group=self.entry_point_group)]
        # the harness's own entries first, then plugins in a stable order: the first claim of a name wins
        found.sort(key=lambda item: (item[0] != HOME_DISTRIBUTION, item[0], item[1].name))
        for dist, ep in found:
            if ep.name in self._entries:
                if self._entries[ep.name] != ep.value:
                    owner = self._origins.get(ep.name, "code")
                    log.warning("%s '%s' from %s (%s) ignored: the name is already registered by %s",
                                self.kind, ep.name, dist, ep.value, owner)
                continue
            self._entries[ep.name] = ep.value
            self._origins[ep.name] = dist

    def origin(self, name: str) -> str | None:
        """The distribution (pip package) whose entry point registered ``name``; None for in-code entries."""
        self._load_entry_points()
        return self._origins.get(name)

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load_entry_points()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def get(self, name: str) -> T:
        self._load_entry_points()
        if name not in self._entries:
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
