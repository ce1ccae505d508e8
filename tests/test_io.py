"""``harness.core.io``: atomic writes with a plain file's permissions, and JSON readers for user data (strict,
byte-order mark tolerated) and for resumable outputs (a cut-off last line skipped with a warning)."""

from __future__ import annotations

import json
import logging
import os
import stat
import sys

import pytest

from harness.core.errors import DataError
from harness.core.io import append_jsonl, atomic_write, read_json, read_jsonl, write_json, write_jsonl

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")


@pytest.fixture
def umask():
    """Set the process umask for a test, and restore it after."""
    saved = os.umask(0o022)
    os.umask(saved)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(saved)


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@posix_only
@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077, 0o027])
def test_atomic_writes_get_the_permissions_of_a_plain_open(tmp_path, umask, mask):
    umask(mask)
    plain = tmp_path / "plain.json"
    plain.write_text("{}")
    write_json(tmp_path / "a.json", {"x": 1})
    write_jsonl(tmp_path / "b.jsonl", [{"x": 1}])
    with atomic_write(tmp_path / "c.bin", "wb") as handle:
        handle.write(b"x")
    for name in ("a.json", "b.jsonl", "c.bin"):
        assert _mode(tmp_path / name) == _mode(plain) == 0o666 & ~mask, name
    assert not list(tmp_path.glob(".*.tmp"))


@posix_only
def test_replacing_a_file_keeps_its_permissions(tmp_path, umask):
    umask(0o022)
    path = tmp_path / "shared.json"
    write_json(path, {"v": 1})
    path.chmod(0o640)
    write_json(path, {"v": 2})
    assert _mode(path) == 0o640 and read_json(path) == {"v": 2}


def test_user_files_with_a_byte_order_mark_read(tmp_path):
    (tmp_path / "a.json").write_bytes(b"\xef\xbb\xbf" + json.dumps([{"id": 1}]).encode())
    (tmp_path / "b.jsonl").write_bytes(b"\xef\xbb\xbf" + b'{"id": 1}\n{"id": 2}\n')
    assert read_json(tmp_path / "a.json") == [{"id": 1}]
    assert list(read_jsonl(tmp_path / "b.jsonl")) == [{"id": 1}, {"id": 2}]


@pytest.mark.parametrize(("text", "line"), [
    ('{"id": 1}\n{"id": 2}\n{"id": 3', 3),  # cut off at the end
    ('{"id": 1}\n{"id": \n{"id": 3}\n', 2),  # broken in the middle
    ('{"id": 1}\nnot json\n', 2),  # a whole bad last line
])
def test_user_data_refuses_a_malformed_line_anywhere(tmp_path, text, line):
    path = tmp_path / "data.jsonl"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=f"data.jsonl, record line {line}: malformed JSON"):
        list(read_jsonl(path))


def test_user_data_that_is_not_utf8_is_a_data_error(tmp_path):
    path = tmp_path / "latin.jsonl"
    path.write_bytes('{"a": "caf\xe9"}\n'.encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        list(read_jsonl(path))


def test_a_resumable_output_skips_its_cut_off_last_line_with_a_warning(tmp_path, caplog):
    path = tmp_path / "items.jsonl"
    path.write_text('{"id": 1}\n{"id": 2}\n{"id": ', encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="harness.core.io"):
        assert list(read_jsonl(path, skip_partial_last=True)) == [{"id": 1}, {"id": 2}]
    assert "items.jsonl" in caplog.text and "line 3" in caplog.text
    path.write_text('{"id": 1}\n{"id": \n{"id": 3}\n', encoding="utf-8")  # mid-file damage is never skipped
    with pytest.raises(DataError, match="line 2"):
        list(read_jsonl(path, skip_partial_last=True))


def test_appending_after_an_interrupted_write_starts_a_fresh_line(tmp_path):
    path = tmp_path / "journal.jsonl"
    path.write_text('{"chunk": 0}\n{"chunk": 1, "res', encoding="utf-8")
    append_jsonl(path, {"chunk": 1, "result": "redone"})
    assert list(read_jsonl(path)) == [{"chunk": 0}, {"chunk": 1, "result": "redone"}]
    path.write_text('{"chunk": 0}', encoding="utf-8")  # whole, only its newline missing: kept
    append_jsonl(path, {"chunk": 1})
    assert list(read_jsonl(path)) == [{"chunk": 0}, {"chunk": 1}]


def test_atomic_dir_swaps_a_whole_folder_and_a_failed_write_leaves_the_old_one(tmp_path):
    from harness.core.io import atomic_dir

    final = tmp_path / "model"
    atomic_dir(final, lambda d: (d.mkdir(), (d / "weights").write_text("v1")))
    assert (final / "weights").read_text() == "v1"

    def fails(d):
        d.mkdir()
        (d / "weights").write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_dir(final, fails)
    assert (final / "weights").read_text() == "v1"  # the old folder, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary or old folder left behind

    atomic_dir(final, lambda d: (d.mkdir(), (d / "weights").write_text("v2")))
    assert (final / "weights").read_text() == "v2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
