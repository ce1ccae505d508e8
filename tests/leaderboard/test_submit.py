"""Submitting: pending until approved, duplicates rejected, concurrent writers never corrupt the store."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from lb_fakes import submission

from harness.cli import main
from harness.core.errors import DataError, HarnessError
from harness.results.store import ResultsStore
from leaderboard.submit import approve, recent_runs, reject, submit_bytes, submit_file, submitter_key


def _write(path, payload):
    path.write_text(json.dumps(payload), "utf-8")
    return path


def test_a_submission_is_pending_then_approved(store, tmp_path):
    outcome = submit_file(_write(tmp_path / "s.json", submission("fake-sub")), store)
    (run_id,) = outcome.stored
    assert store.get_run(run_id)["status"] == "pending"
    assert store.get_run(run_id)["source"] == "submission"
    assert approve(store) == [run_id] and store.get_run(run_id)["status"] == "approved"


def test_the_same_content_is_rejected_the_second_time(store):
    data = json.dumps(submission("fake-dup")).encode()
    assert len(submit_bytes(data, store).stored) == 1
    again = submit_bytes(data, store, source="again.json")
    assert again.stored == [] and "duplicate run" in again.rejected[0] and again.rejected[0].startswith("again.json")


def test_a_malformed_file_stores_nothing(store):
    payload = submission("fake-half")
    payload["runs"].append({"model": "fake-broken", "results": [{"task": "vqa_rad"}]})
    before = len(store.runs())
    with pytest.raises(DataError, match="record run 1 result 0"):
        submit_bytes(json.dumps(payload).encode(), store)
    assert len(store.runs()) == before


def test_fifty_concurrent_submissions_are_each_stored_or_cleanly_rejected(tmp_path):
    store = ResultsStore(tmp_path / "concurrent.sqlite")
    # 40 distinct files and 10 repeats of one file racing each other
    payloads = [submission(f"fake-concurrent-{i}", value=0.5 + i / 1000) for i in range(40)]
    payloads += [submission("fake-concurrent-same", value=0.42)] * 10

    def send(payload):
        try:
            out = submit_bytes(json.dumps(payload).encode(), ResultsStore(store.path))
            return ("stored", out.stored) if out.stored else ("rejected", out.rejected)
        except HarnessError as exc:
            return ("error", str(exc))

    with ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(send, payloads))
    kinds = [kind for kind, _ in outcomes]
    assert "error" not in kinds
    assert kinds.count("stored") == 41 and kinds.count("rejected") == 9
    assert all("duplicate run" in detail[0] for kind, detail in outcomes if kind == "rejected")
    runs = store.runs(status="pending")
    assert len(runs) == 41 and len(store.results()) == 82
    assert store.integrity_check() == []


def test_cli_submit_approve_and_reject(store, tmp_path, capsys):
    path = _write(tmp_path / "cli.json", submission("fake-cli"))
    assert main(["submit", str(path), "--store", str(store.path)]) == 0
    run_id = capsys.readouterr().out.split()[1]
    assert store.get_run(run_id)["status"] == "pending"
    assert main(["submit", str(path), "--store", str(store.path)]) == 2
    assert "duplicate run" in capsys.readouterr().out
    assert main(["leaderboard", "reject", run_id, "--store", str(store.path)]) == 0
    assert store.get_run(run_id)["status"] == "rejected"
    assert main(["leaderboard", "approve", run_id, "--store", str(store.path)]) == 0
    assert store.get_run(run_id)["status"] == "approved"
    assert main(["leaderboard", "approve", "--all", "--store", str(store.path)]) == 0
    assert "approved 0 run(s)" in capsys.readouterr().out.splitlines()[-1]


def test_cli_errors_are_one_line(store, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "harness-results/1", "runs": [{"model": "fake", "results": 3}]}', "utf-8")
    assert main(["submit", str(bad), "--store", str(store.path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: bad.json, record run 0, field 'results': expected a non-empty list of results"
    assert main(["leaderboard", "approve", "no-such-run", "--store", str(store.path)]) == 2
    with pytest.raises(HarnessError):
        reject(store, "no-such-run")


def test_submissions_are_rate_limited_per_submitter_per_hour(store, monkeypatch):
    monkeypatch.setenv("HARNESS_SUBMIT_LIMIT", "2")
    for i in range(2):
        submit_bytes(json.dumps(submission(f"fake-rl-{i}", value=0.5 + i / 100)).encode(), store, submitter="ip:1")
    with pytest.raises(DataError, match="rate limit: 2 run"):
        submit_bytes(json.dumps(submission("fake-rl-3", value=0.6)).encode(), store, submitter="ip:1")
    # another submitter is not affected, and the store keeps only a keyed hash of who submitted, apart from the run
    (run_id,) = submit_bytes(json.dumps(submission("fake-rl-4", value=0.61)).encode(), store,
                             submitter="ip:2").stored
    assert "submitted_by" not in store.get_run(run_id)["config"]
    assert "ip:2" not in json.dumps(store.get_run(run_id))
    assert recent_runs(store, submitter_key("ip:2")) == 1 and recent_runs(store, submitter_key("ip:1")) == 2


def test_approve_cli_holds_back_a_name_claim_until_forced(store, tmp_path, capsys):
    path = _write(tmp_path / "claim.json", submission("fake-base-7b-dpo", value=0.31))
    assert main(["submit", str(path), "--store", str(store.path)]) == 0
    run_id = capsys.readouterr().out.split()[1]
    assert main(["leaderboard", "pending", "--store", str(store.path)]) == 0
    listing = capsys.readouterr().out
    assert "FLAG" in listing and "fake-run-1" in listing
    assert main(["leaderboard", "approve", run_id, "--store", str(store.path)]) == 2
    assert "flagged, left pending" in capsys.readouterr().out and store.get_run(run_id)["status"] == "pending"
    assert main(["leaderboard", "approve", run_id, "--force", "--store", str(store.path)]) == 0
    assert store.get_run(run_id)["status"] == "approved"


def test_simultaneous_uploads_from_one_submitter_cannot_pass_the_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_SUBMIT_LIMIT", "3")
    store = ResultsStore(tmp_path / "burst.sqlite")

    def send(i):
        try:
            return submit_bytes(json.dumps(submission(f"fake-burst-{i}", value=0.5 + i / 100)).encode(),
                                ResultsStore(store.path), submitter="ip:9").stored
        except DataError:
            return []

    with ThreadPoolExecutor(max_workers=10) as pool:
        stored = [ids for ids in pool.map(send, range(10)) if ids]
    assert len(stored) == 3 and len(store.runs()) == 3
