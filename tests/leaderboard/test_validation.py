"""Validation at the door: every number finite, every declared field typed, stored JSON standard, and no stored
row (however it got there) able to block a later upload or stop the board."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest
from lb_fakes import submission

from harness.cli import main
from harness.core.errors import DataError
from harness.results.store import ResultRow, ResultsStore, RunRecord
from leaderboard.schema import parse_bytes, validate
from leaderboard.submit import approve


def _strict_json(text: str):
    """Standard JSON only: NaN and Infinity are not JSON."""
    def refuse(name):
        raise ValueError(f"non-standard constant {name}")
    return json.loads(text, parse_constant=refuse)


def _file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return path


def _with_config(config_text: str, model: str = "fake-door") -> str:
    """A valid submission whose config is the given JSON text (so literals such as 1e999 stay as written)."""
    payload = json.dumps(submission(model)).replace('{"note": "synthetic test submission"}', config_text)
    assert config_text in payload
    return payload


INFINITE = [
    ('{"x": 1e999}', "config.x"),
    ('{"deep": {"list": [1, 2, -1e999]}}', "config.deep.list[2]"),
    ('{"pipeline": {"train": {"lr": 1E400}}}', "config.pipeline.train.lr"),
]


@pytest.mark.parametrize(("config", "field"), INFINITE)
def test_harness_submit_refuses_an_infinite_number_in_the_config_naming_the_field(store, tmp_path, capsys, config,
                                                                                   field):
    path = _file(tmp_path, "inf.json", _with_config(config))
    assert main(["submit", str(path), "--store", str(store.path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"field '{field}'" in err and "is not a finite number" in err and "1e" in err.lower()


@pytest.mark.parametrize("where", ["value", "ci_low", "n", "seed", "versions", "extra", "predictions"])
def test_1e999_anywhere_in_the_file_is_refused(store, where):
    payload = json.dumps(submission("fake-anywhere"))
    run = json.loads(payload)["runs"][0]
    if where in ("value", "ci_low", "n"):
        run["results"][0][where] = "@INF@"
    elif where == "versions":
        run["versions"]["torch"] = "@INF@"
    elif where == "predictions":
        run["predictions"] = {"vqa_rad": ["a", "@INF@"]}
    else:
        run[where] = "@INF@"
    text = json.dumps({"format": "harness-results/1", "runs": [run]}).replace('"@INF@"', "1e999")
    before = len(store.runs())
    with pytest.raises(DataError, match="1e999 is not a finite number") as caught:
        validate(parse_bytes(text.encode(), "x.json"), "x.json")
    assert "field '" in str(caught.value) and "\n" not in str(caught.value)
    assert len(store.runs()) == before


@pytest.mark.parametrize(
    ("extra", "field", "problem"),
    [
        ({"config": {"card": {"params": "lots"}}}, "config.card.params", "'lots' is not a positive number"),
        ({"config": {"card": {"params": -7}}}, "config.card.params", "is not a positive number"),
        ({"params": "lots"}, "params", "positive integer"),
        ({"config": {"card": {"model_url": "javascript:alert(1)"}}}, "config.card.model_url", "https://"),
        ({"config": {"card": "big"}}, "config.card", "is not an object"),
        ({"config": {"base_run_id": 7}}, "config.base_run_id", "is not a string"),
        ({"config": {"signature": {"limit": 0}}}, "config.signature.limit", "is not a positive integer"),
        ({"config": {"lm_eval": {"limit": -0.5}}}, "config.lm_eval.limit", "is not a positive number"),
        ({"config": {"train_seed": 1.5}}, "config.train_seed", "is not an integer"),
        ({"config": {"beta": -1}}, "config.beta", "dpo's declared range for 'beta'"),
        ({"config": {"pipeline": {"options": {"beta": "huge"}}}}, "config.pipeline.options.beta", "finite number"),
        ({"config": {"pipeline": {"train": {"lr": "fast"}}}}, "config.pipeline.train.lr", "finite number"),
        ({"config": {"pipeline": {"train": {"epochs": True}}}}, "config.pipeline.train.epochs", "finite number"),
        ({"config": {"pipeline": {"train": {"lora": "yes"}}}}, "config.pipeline.train.lora", "true or false"),
        ({"config": {"pipeline": {"eval_batch_size": "64"}}}, "config.pipeline.eval_batch_size", "an integer"),
        ({"config": {"tasks": ["vqa_rad", 3]}}, "config.tasks", "list of strings"),
        ({"predictions": {"slake": ["1"]}}, "predictions.slake", "no result of the run is for task"),
        ({"predictions": {"vqa_rad": ["1", "1"]}}, "predictions.vqa_rad[1]", "appears twice"),
        ({"predictions": {"vqa_rad": [{"answer": "yes"}]}}, "predictions.vqa_rad[0]", "expected an item id"),
    ],
)
def test_a_declared_field_of_the_wrong_type_or_range_is_refused_in_one_line(extra, field, problem):
    payload = submission("fake-typed")
    run = payload["runs"][0]
    for key, value in extra.items():
        run[key] = {**run[key], **value} if key == "config" else value
    with pytest.raises(DataError) as caught:
        validate(payload, "typed.json")
    message = str(caught.value)
    assert f"field '{field}'" in message and problem in message and "\n" not in message


def test_harness_submit_of_card_params_lots_exits_2_with_one_line(store, tmp_path, capsys):
    path = _file(tmp_path, "lots.json", _with_config('{"card": {"params": "lots"}}'))
    assert main(["submit", str(path), "--store", str(store.path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("error: lots.json, record run 0, field 'config.card.params': 'lots' is not a positive number "
                   "below 1e+13")


def test_valid_config_fields_are_kept_and_computed_ones_are_dropped():
    payload = submission("fake-kept", extra={"params": 7_000_000_000, "license": "apache-2.0"})
    payload["runs"][0]["config"] = {"beta": 0.1, "card": {"precision": "bf16", "params": 1, "junk": "x"},
                                    "data": {"vqa_rad": {"partial": ""}}, "verification": {"test_set": "verified"},
                                    "submitted_by": "someone", "pipeline": {"train": {"lr": 1e-5, "lora": True}}}
    config = validate(payload, "ok.json")[0].run.config
    assert config["card"] == {"precision": "bf16", "params": 7_000_000_000, "license": "apache-2.0"}
    assert config["beta"] == 0.1 and config["pipeline"]["train"]["lr"] == 1e-5
    assert not {"data", "verification", "submitted_by"} & set(config)


def test_the_store_and_the_json_export_write_standard_json(tmp_path):
    store = ResultsStore(tmp_path / "s.sqlite")
    store.add_run(RunRecord(model="fake-local", run_id="r1", config={"max_grad_norm": float("inf"),
                                                                     "nested": [float("nan")]}),
                  [ResultRow("vqa_rad", "closed_accuracy", 0.5)])
    conn = sqlite3.connect(store.path)
    (text,) = conn.execute("SELECT config FROM runs WHERE run_id = 'r1'").fetchone()
    conn.close()
    assert _strict_json(text) == {"max_grad_norm": "inf", "nested": ["nan"]}
    out = tmp_path / "export.json"
    assert main(["results", "--export", str(out), "--store", str(store.path)]) == 0
    assert _strict_json(out.read_text("utf-8"))[0]["config"]["max_grad_norm"] == "inf"


def _legacy_rows(store: ResultsStore) -> None:
    """Rows as older versions could store them: a config with Infinity (accepted before validation), a config
    that is not JSON at all, and an approved card with params 'lots'."""
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc).isoformat(timespec="seconds")  # inside the rate limit's hour
    conn = sqlite3.connect(store.path)
    rows = [("legacy-inf", '{"x": Infinity, "submitted_by": "sha256:0123456789abcdef"}', "pending"),
            ("legacy-broken", '{"x": ', "pending"),
            ("legacy-card", '{"card": {"params": "lots", "license": "mit"}}', "approved")]
    for run_id, config, status in rows:
        conn.execute("INSERT INTO runs (run_id, created_at, model, config, versions, status, source) VALUES "
                     "(?, ?, ?, ?, '{}', ?, 'submission')", (run_id, now, f"fake-{run_id}", config, status))
        conn.execute("INSERT INTO results (run_id, task, metric, value) VALUES (?, 'vqa_rad', 'closed_accuracy', 0.5)",
                     (run_id,))
    conn.commit()
    conn.close()


def _upload_handler(demo):
    return next(f.fn for f in demo.fns.values() if getattr(f, "name", "") == "on_submit")


def test_after_refused_and_malformed_submissions_a_valid_app_upload_is_accepted(store, tmp_path, monkeypatch):
    from leaderboard.app import build_app

    monkeypatch.setenv("HARNESS_SUBMIT_LIMIT", "20")
    _legacy_rows(store)
    demo = build_app(store=store.path)
    on_submit = _upload_handler(demo)
    visitor = SimpleNamespace(username=None, client=SimpleNamespace(host="203.0.113.7"))
    refused = [_with_config('{"x": 1e999}'), _with_config('{"card": {"params": "lots"}}'),
               _with_config('{"x": NaN}'), _with_config('{"x": Infinity}'), "[" * 5000, "{not json",
               json.dumps(submission("fake-bad", value=7.0))]
    for i, text in enumerate(refused):
        message, _ = on_submit(str(_file(tmp_path, f"bad{i}.json", text)), visitor)
        assert message.startswith("Rejected:") and "\n" not in message, message
    message, _ = on_submit(str(_file(tmp_path, "good.json", json.dumps(submission("fake-good")))), visitor)
    assert message.startswith("Pending approval: run "), message
    run_id = message.split()[-1]
    assert store.get_run(run_id)["status"] == "pending"
    # every stored config is standard JSON now, the legacy Infinity row included; the broken one reads as {}
    conn = sqlite3.connect(store.path)
    texts = dict(conn.execute("SELECT run_id, config FROM runs").fetchall())
    conn.close()
    assert _strict_json(texts["legacy-inf"]) == {"x": "inf"}
    assert all(_strict_json(t) is not None for k, t in texts.items() if k != "legacy-broken")
    assert next(r for r in store.runs() if r["run_id"] == "legacy-broken")["config"] == {}


def test_an_upload_is_deleted_once_read_accepted_or_refused(store, tmp_path):
    from leaderboard.app import build_app

    on_submit = _upload_handler(build_app(store=store.path))
    visitor = SimpleNamespace(username="someone", client=None)
    for name, text in (("gradio-tmp-a", json.dumps(submission("fake-kept-upload"))), ("gradio-tmp-b", "{")):
        folder = tmp_path / name
        folder.mkdir()
        on_submit(str(_file(folder, "upload.json", text)), visitor)
        assert not folder.exists()  # the file, and the folder Gradio made for it


def test_a_stored_card_params_lots_neither_stops_the_app_nor_the_about_tab(store, caplog):
    from leaderboard.app import BoardSource, about_markdown, build_app

    _legacy_rows(store)
    assert build_app(store=store.path) is not None  # was: TypeError at start-up
    with caplog.at_level(logging.WARNING):
        text = about_markdown(BoardSource(store=store.path).board)
    row = next(line for line in text.splitlines() if "fake-legacy-card" in line)
    assert "lots" not in row and "mit" in row
    assert any("card.params 'lots' is not a positive number" in r.getMessage() for r in caplog.records)


def test_pending_shows_the_config_the_checks_and_the_results(store, tmp_path, capsys):
    payload = submission("fake-pending-full")
    payload["runs"][0]["config"] = {"beta": 0.25, "card": {"params": 7_000_000_000}}
    path = _file(tmp_path, "p.json", json.dumps(payload))
    assert main(["submit", str(path), "--store", str(store.path)]) == 0
    capsys.readouterr()
    assert main(["leaderboard", "pending", "--store", str(store.path)]) == 0
    listing = capsys.readouterr().out
    assert "'fake-pending-full'" in listing and '"beta": 0.25' in listing and '"params": 7000000000' in listing
    assert "vqa_rad/closed_accuracy = 0.6 [0.55, 0.65] n=272" in listing
    assert "test set: partial (vqa_rad: unverified: no predictions submitted)" in listing
    assert "test_set self-declared" in listing


def test_approve_all_is_not_blocked_by_a_malformed_stored_row(store):
    _legacy_rows(store)
    assert set(approve(store)) >= {"legacy-inf", "legacy-broken"}
