"""Small I/O helpers: atomic writes and JSON reading with one-line errors.

The JSON writers pass what they write through ``harness.secrets.redact``, so no file the harness writes
carries an API key (a value under a secret-looking key, or the value of a key variable in the environment).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.errors import DataError


@contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8"):
    """Write to a temporary file beside ``path`` and rename it into place, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, obj: Any, indent: int | None = 2) -> None:
    from harness.secrets import redact

    obj = redact(obj)
    with atomic_write(path) as handle:
        json.dump(obj, handle, indent=indent, ensure_ascii=False)


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> None:
    from harness.secrets import known_secret_values, redact

    secrets = known_secret_values()
    with atomic_write(path) as handle:
        for row in rows:
            handle.write(json.dumps(redact(row, secrets), ensure_ascii=False) + "\n")


def append_jsonl(path: str | Path, row: dict) -> None:
    """Append one record and fsync it: used for resumable outputs (a crash loses at most a partial last line)."""
    from harness.secrets import redact

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(redact(row), ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found")
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as exc:
        raise DataError(path, f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not UTF-8 text ({exc.reason})") from None


def read_jsonl(path: str | Path, *, skip_partial_last: bool = True) -> Iterator[dict]:
    """Yield records; a truncated last line (from an interrupted writer) is skipped, other bad lines raise."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found")
    with open(path, encoding="utf-8") as handle:
        lines = handle.readlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError as exc:
            if skip_partial_last and number == len(lines) and not line.endswith("\n"):
                return
            raise DataError(path, f"malformed JSON: {exc.msg}", record=f"line {number}") from None
