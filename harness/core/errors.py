"""User-facing errors.

Every error a user can cause with bad input is a ``HarnessError``; the CLI prints its message on one
line (no traceback) and exits with status 2. Messages name the file, the record and the field.
"""

from __future__ import annotations

from pathlib import Path


class HarnessError(Exception):
    """An error caused by the user's input or environment, reported as one line."""


class DataError(HarnessError):
    """Bad data on disk: names the file, and where known the record and the field."""

    def __init__(self, path: str | Path, problem: str, *, record: object = None, field: str | None = None):
        self.path = str(path)
        self.record = record
        self.field = field
        where = self.path
        if record is not None:
            where += f", record {record}"
        if field is not None:
            where += f", field '{field}'"
        super().__init__(f"{where}: {problem}")


class UnknownNameError(HarnessError, KeyError):
    """An unknown registry name, with close matches suggested."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])
