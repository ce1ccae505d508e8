"""The submitter key: a keyed hash that cannot be brute-forced without the secret, used for the rate limit, and
found in no page, export or Space file."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
from types import SimpleNamespace

import pytest
from lb_fakes import submission

from harness.cli import main
from harness.core.errors import HarnessError
from leaderboard.submit import SECRET_ENV, SECRET_FILE, leaderboard_secret, recent_runs, submitter_key

VISITOR = "ip:198.51.100.23"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(SECRET_ENV, raising=False)
    return tmp_path / "home"


def test_the_secret_is_made_once_private_under_harness_home(home):
    first = leaderboard_secret()
    path = home / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(first) >= 32
    assert leaderboard_secret() == first  # kept, not remade
    os.chmod(path, 0o644)
    assert leaderboard_secret() == first and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_environment_secret_wins_and_a_short_one_is_refused(home, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, "k" * 40)
    expected = "hmac-sha256:" + hmac.new(b"k" * 40, VISITOR.encode(), hashlib.sha256).hexdigest()[:32]
    assert submitter_key(VISITOR) == expected and not (home / SECRET_FILE).exists()
    monkeypatch.setenv(SECRET_ENV, "short")
    with pytest.raises(HarnessError, match=f"{SECRET_ENV} is 5 characters"):
        submitter_key(VISITOR)


def test_the_key_is_not_the_old_unsalted_hash_and_depends_on_the_secret(home, monkeypatch):
    unsalted = hashlib.sha256(VISITOR.encode()).hexdigest()[:16]
    key = submitter_key(VISITOR)
    assert unsalted not in key and key == submitter_key(VISITOR)  # stable: the rate limit can count on it
    monkeypatch.setenv(SECRET_ENV, "another secret of at least thirty-two chars")
    assert submitter_key(VISITOR) != key


def _upload(store, tmp_path, model: str) -> str:
    from leaderboard.app import build_app

    demo = build_app(store=store.path)
    on_submit = next(f.fn for f in demo.fns.values() if getattr(f, "name", "") == "on_submit")
    path = tmp_path / f"{model}.json"
    path.write_text(json.dumps(submission(model)), "utf-8")
    message, _ = on_submit(str(path), SimpleNamespace(username=None, client=SimpleNamespace(host=VISITOR[3:])))
    assert message.startswith("Pending approval"), message
    return message.split()[-1]


def test_no_page_export_or_space_file_holds_the_submitter_key(store, tmp_path, home, monkeypatch):
    from leaderboard.app import BoardSource, _run_view, about_markdown
    from leaderboard.submit import approve

    monkeypatch.setenv("HARNESS_SUBMIT_LIMIT", "5")
    run_id = _upload(store, tmp_path, "fake-private")
    key = submitter_key(VISITOR)
    assert recent_runs(store, key) == 1  # the rate limit sees it
    approve(store, [run_id], force=True)
    digest = key.split(":", 1)[1]
    secret = leaderboard_secret().decode()
    texts = {}
    board = BoardSource(store=store.path).board
    texts["run page"] = json.dumps(_run_view(board, run_id)[1], default=str)
    texts["about"] = about_markdown(board)
    texts["store runs"] = json.dumps(store.runs(), default=str)
    for suffix in ("json", "csv", "md"):
        out = tmp_path / f"export.{suffix}"
        assert main(["results", "--export", str(out), "--store", str(store.path)]) == 0
        texts[f"export .{suffix}"] = out.read_text("utf-8")
    assert run_id in texts["export .json"]
    space = tmp_path / "space"
    assert main(["leaderboard", "export-space", str(space), "--store", str(store.path)]) == 0
    for path in space.rglob("*"):
        if path.is_file():
            texts[f"space {path.name}"] = path.read_text("utf-8", errors="replace")
    for where, text in texts.items():
        code = where.endswith(".py")  # the vendored display code may name the key it leaves out
        for needle in (digest, secret, VISITOR[3:], *(() if code else ("submitted_by", "hmac-sha256"))):
            assert needle not in text, f"{needle!r} found in the {where}"


def test_a_legacy_submitter_hash_in_a_config_is_moved_out_of_it(store):
    import sqlite3

    from harness.results.store import ResultsStore

    conn = sqlite3.connect(store.path)
    conn.execute("INSERT INTO runs (run_id, created_at, model, config, versions, status, source) VALUES "
                 "('legacy', datetime('now'), 'fake-legacy', '{\"submitted_by\": \"sha256:0011223344556677\"}', "
                 "'{}', 'approved', 'submission')")
    conn.commit()
    conn.close()
    reopened = ResultsStore(store.path)
    assert reopened.get_run("legacy")["config"] == {}
    conn = sqlite3.connect(store.path)
    assert "sha256:0011" not in conn.execute("SELECT config FROM runs WHERE run_id = 'legacy'").fetchone()[0]
    conn.close()
    assert recent_runs(reopened, "sha256:0011223344556677", hours=24) == 1
