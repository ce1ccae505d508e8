"""Small I/O helpers: atomic writes and JSON reading with one-line errors.

The JSON writers pass what they write through ``harness.core.secrets.redact``, so no file the harness writes
carries an API key (a value under a secret-looking key, or the value of a key variable in the environment).
Files written atomically get the permissions a plain ``open()`` would give them (``0666`` less the umask, or
the replaced file's own), not ``tempfile``'s private ``0600``.

The readers take UTF-8 with or without a byte-order mark (``utf-8-sig``: spreadsheet exports and Windows
editors add one). ``read_jsonl`` has two modes: user data (the default) refuses a malformed line anywhere,
the last included; a resumable output (``skip_partial_last=True``, files appended to record by record)
skips a truncated last line, the trace of an interrupted writer, with a warning naming the file.
"""

from __future__ import annotations

import json
import logging
import math
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.core.errors import DataError

log = logging.getLogger(__name__)

READ_ENCODING = "utf-8-sig"  # UTF-8, and a leading byte-order mark is dropped rather than read as text


def _umask() -> int:
    """The process umask. Linux shows it in /proc; elsewhere it can only be read by setting it (briefly, to
    the common 022 rather than 0, so a file another thread creates meanwhile is not world-writable)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def plain_open_mode(path: Path) -> int:
    """The permission bits ``open(path, "w")`` would leave: an existing file keeps its own, a new one gets
    ``0666 & ~umask``."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o666 & ~_umask()


@contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8"):
    """Write to a temporary file beside ``path`` and rename it into place, so readers never see half a file.

    The file ends with the permissions a plain ``open()`` would give it (``plain_open_mode``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    permissions = plain_open_mode(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, permissions)
        else:  # Windows
            os.chmod(tmp, permissions)
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def finite(obj: Any, replace: Callable[[float], Any] | None = None) -> Any:
    """A copy of ``obj`` (dicts, lists, tuples) in which every NaN or infinite float reads ``replace(value)``
    (None without ``replace``): what standard JSON can hold. Other values are shared, not copied."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return replace(obj) if replace is not None else None
    if isinstance(obj, dict):
        return {k: finite(v, replace) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v, replace) for v in obj]
    return obj


def standard_json(obj: Any, *, replace: Callable[[float], Any] | None = None, **kwargs: Any) -> str:
    """``json.dumps`` that never writes ``NaN`` or ``Infinity`` (not JSON: SQLite's JSON functions and other
    parsers refuse them): non-finite floats become ``replace(value)``, None by default (``finite``)."""
    return json.dumps(finite(obj, replace), allow_nan=False, **kwargs)


def write_json(path: str | Path, obj: Any, indent: int | None = 2) -> None:
    from harness.core.secrets import redact

    obj = redact(obj)
    with atomic_write(path) as handle:
        json.dump(obj, handle, indent=indent, ensure_ascii=False)


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> None:
    from harness.core.secrets import known_secret_values, redact

    secrets = known_secret_values()
    with atomic_write(path) as handle:
        for row in rows:
            handle.write(json.dumps(redact(row, secrets), ensure_ascii=False) + "\n")


def append_jsonl(path: str | Path, row: dict) -> None:
    """Append one record and fsync it: used for resumable outputs (a crash loses at most a partial last line,
    which the next append cuts off: ``end_on_a_line``)."""
    from harness.core.secrets import redact

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    end_on_a_line(path)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(redact(row), ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def end_on_a_line(path: Path) -> None:
    """Before appending to a resumable JSON Lines file: a last line without its newline is a record an
    interrupted writer cut off (its work is redone), so cut it, lest the next record be glued to it into a
    malformed line mid-file. A last line that parses whole only gets its newline."""
    try:
        handle = open(path, "rb+")
    except FileNotFoundError:
        return
    with handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return
        start = size
        while start > 0:  # back to the last newline, a block at a time
            block = min(1 << 16, start)
            handle.seek(start - block)
            newline = handle.read(block).rfind(b"\n")
            start -= block
            if newline >= 0:
                start += newline + 1
                break
        handle.seek(start)
        tail = handle.read()
        try:
            json.loads(tail)
        except ValueError:  # UnicodeDecodeError included
            log.warning("%s: cut off its unfinished last line (an interrupted write) before appending", path)
            handle.truncate(start)
        else:
            handle.write(b"\n")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found")
    try:
        with open(path, encoding=READ_ENCODING) as handle:
            return json.load(handle)
    except json.JSONDecodeError as exc:
        raise DataError(path, f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not UTF-8 text ({exc.reason})") from None


def read_jsonl(path: str | Path, *, skip_partial_last: bool = False) -> Iterator[Any]:
    """Yield the records of a JSON Lines file; blank lines are skipped. See ``read_jsonl_lines``."""
    for _, record in read_jsonl_lines(path, skip_partial_last=skip_partial_last):
        yield record


def read_jsonl_lines(path: str | Path, *, skip_partial_last: bool = False) -> Iterator[tuple[int, Any]]:
    """Yield ``(line number, record)``; a malformed line is a ``DataError`` naming the file and the line.

    ``skip_partial_last=True`` is for resumable outputs the harness appends to: a last line that is cut off
    (malformed and without its newline: an interrupted writer) is skipped with a warning, and its record
    is redone by the resumed work. User-supplied files keep the default: a cut-off last line is an error,
    never silently dropped data.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found")
    try:
        with open(path, encoding=READ_ENCODING) as handle:
            lines = handle.readlines()
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not UTF-8 text ({exc.reason})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            cut_off = number == len(lines) and not line.endswith("\n")
            if skip_partial_last and cut_off:
                log.warning("%s: skipped the cut-off last line %d (an interrupted write); its record is redone",
                            path, number)
                return
            hint = " (the file ends mid-record: truncated?)" if cut_off else ""
            raise DataError(path, f"malformed JSON: {exc.msg}{hint}", record=f"line {number}") from None
        yield number, record


def atomic_dir(final: str | Path, write: Callable[[Path], Any]) -> Path:
    """Build folder ``final`` by ``write(tmp)`` in a sibling temporary folder and swap it in: a reader sees the
    old folder or the new one, never half of one, and a failed ``write`` leaves the old one whole."""
    import shutil

    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".tmp-{final.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        write(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = final.with_name(f".old-{final.name}")
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        final.replace(old)
    tmp.replace(final)
    shutil.rmtree(old, ignore_errors=True)
    return final
