"""The submission schema: what is accepted, and the one-line errors for what is not."""

from __future__ import annotations

import json

import pytest
from lb_fakes import submission

from harness.core.errors import DataError
from leaderboard.schema import MAX_BYTES, clean_text, parse_bytes, validate


def test_a_valid_file_becomes_a_pending_submission_with_a_fingerprint():
    subs = validate(submission("fake-ok"), "x.json")
    assert len(subs) == 1
    run, rows = subs[0].run, subs[0].results
    assert (run.status, run.source, run.predictions_dir) == ("pending", "submission", None)
    assert run.fingerprint.startswith("sha256:") and len(rows) == 2
    assert rows[1].ci_low is None and rows[0].higher_is_better is True


def test_fields_a_submitter_must_not_set_are_ignored():
    payload = submission("fake-x", extra={"status": "approved", "source": "local", "predictions_dir": "/etc",
                                          "run_id": "theirs", "fingerprint": "sha256:0"})
    run = validate(payload, "x.json")[0].run
    assert run.status == "pending" and run.predictions_dir is None and run.run_id != "theirs"
    assert run.config["submitted_run_id"] == "theirs" and run.fingerprint != "sha256:0"


def test_the_bare_list_export_is_accepted():
    assert len(validate(submission("fake-list")["runs"], "x.json")) == 1


def test_fingerprint_ignores_run_ids_but_not_numbers():
    a = validate(submission("fake-a", extra={"run_id": "1"}), "x")[0].run.fingerprint
    b = validate(submission("fake-a", extra={"run_id": "2"}), "x")[0].run.fingerprint
    c = validate(submission("fake-a", value=0.61), "x")[0].run.fingerprint
    assert a == b != c


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.update(format="other/9"), "field 'format'"),
        (lambda p: p["runs"][0].update(model=""), "record run 0, field 'model'"),
        (lambda p: p["runs"][0].update(model=7), "field 'model'"),
        (lambda p: p["runs"][0].update(method=["dpo"]), "field 'method'"),
        (lambda p: p["runs"][0].update(seed="3"), "field 'seed'"),
        (lambda p: p["runs"][0].update(results=[]), "field 'results'"),
        (lambda p: p["runs"][0]["results"][0].update(task="imagenet"), "unknown task 'imagenet'"),
        (lambda p: p["runs"][0]["results"][0].update(metric="bleu"), "has no metric 'bleu'"),
        (lambda p: p["runs"][0]["results"][0].update(value=1.5), "outside [0, 1]"),
        (lambda p: p["runs"][0]["results"][0].update(value="0.5"), "expected a finite number"),
        (lambda p: p["runs"][0]["results"][0].update(value=True), "expected a finite number"),
        (lambda p: p["runs"][0]["results"][0].update(ci_low=0.7), "does not contain value"),
        (lambda p: p["runs"][0]["results"][0].update(ci_high=None), "both ci_low and ci_high"),
        (lambda p: p["runs"][0]["results"][0].update(n=0), "field 'n'"),
        (lambda p: p["runs"][0]["results"][0].update(higher_is_better=False), "higher-is-better"),
        (lambda p: p["runs"][0]["results"].append(dict(p["runs"][0]["results"][0])), "appears twice"),
        (lambda p: p["runs"][0].update(config={"x": "y" * 40_000}), "field 'config'"),
        (lambda p: p["runs"].append(json.loads(json.dumps(p["runs"][0]))), "same content as run 0"),
    ],
)
def test_bad_files_fail_with_one_line_naming_the_field(mutate, message):
    payload = submission("fake-bad")
    mutate(payload)
    with pytest.raises(DataError) as err:
        validate(payload, "bad.json")
    text = str(err.value)
    assert message in text and text.startswith("bad.json") and "\n" not in text


def test_nan_size_and_encoding_are_refused_before_validation():
    with pytest.raises(DataError, match="NaN is not a number"):
        parse_bytes(b'{"value": NaN}', "n.json")
    with pytest.raises(DataError, match="limit is"):
        parse_bytes(b" " * (MAX_BYTES + 1), "big.json")
    with pytest.raises(DataError, match="not UTF-8"):
        parse_bytes(b"\xff\xfe{", "enc.json")
    with pytest.raises(DataError, match="malformed JSON at line 1"):
        parse_bytes(b"{", "m.json")


def test_clean_text_drops_control_and_bidi_characters_but_keeps_markup_as_text():
    assert clean_text("a\x00b\u202ec  d\n") == "abc d"
    assert clean_text("<img src=x onerror=alert(1)>") == "<img src=x onerror=alert(1)>"
    assert len(clean_text("x" * 1000)) == 200


def test_a_deeply_nested_file_under_the_size_cap_is_a_one_line_error(tmp_path, capsys):
    from harness.cli import main
    from harness.results.store import ResultsStore

    data = b"[" * 200_000 + b"]" * 200_000  # 400 KB, under the cap: the JSON parser would recurse to death
    assert len(data) < MAX_BYTES
    with pytest.raises(DataError, match="nested too deeply"):
        parse_bytes(data, "deep.json")
    shallow_but_deep = submission("fake-deep")
    config: dict = {}
    node = config
    for _ in range(40):
        node["x"] = {}
        node = node["x"]
    shallow_but_deep["runs"][0]["config"] = config
    with pytest.raises(DataError, match="nested more than 32 levels"):
        validate(shallow_but_deep, "deep2.json")
    path = tmp_path / "deep.json"
    path.write_bytes(data)
    assert main(["submit", str(path), "--store", str(ResultsStore(tmp_path / "s.sqlite").path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: deep.json") and "nested too deeply" in err and "Traceback" not in err


def test_card_fields_are_checked_and_kept():
    run = validate(submission("fake-card", extra={"model_url": "https://example.org/m", "params": 7_000_000_000,
                                                  "license": "apache-2.0", "precision": "bf16"}), "c.json")[0].run
    assert run.config["card"] == {"model_url": "https://example.org/m", "params": 7_000_000_000,
                                  "license": "apache-2.0", "precision": "bf16"}
    with pytest.raises(DataError, match="field 'model_url'"):
        validate(submission("fake-card", extra={"model_url": "javascript:alert(1)"}), "c.json")
