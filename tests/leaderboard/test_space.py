"""The exported Space folder: files, front matter, snapshot, and `python app.py` serving the table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest
from lb_fakes import free_port

from harness.cli import main


def test_export_space_writes_a_runnable_folder(store, tmp_path):
    out = tmp_path / "space"
    store.set_status("fake-run-4", "pending")  # pending runs are not exported
    assert main(["leaderboard", "export-space", str(out), "--store", str(store.path)]) == 0
    readme = (out / "README.md").read_text("utf-8")
    front = readme.split("---")[1]
    assert "sdk: gradio" in front and "app_file: app.py" in front and "sdk_version: " in front
    assert "gradio==" in (out / "requirements.txt").read_text("utf-8")
    snapshot = json.loads((out / "results.json").read_text("utf-8"))
    assert snapshot["format"] == "harness-results/1"
    assert {r["run_id"] for r in snapshot["runs"]} == {"fake-run-0", "fake-run-1", "fake-run-2", "fake-run-3"}

    # self-contained: the vendored display code never imports the harness
    probe = subprocess.run([sys.executable, "-c", "import sys, app; print('harness' in sys.modules)"], cwd=out,
                           env={**os.environ, "PYTHONPATH": ""}, capture_output=True, text=True, timeout=60)
    assert probe.stdout.strip().splitlines()[-1] == "False", probe.stderr[-2000:]

    port = free_port()
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "GRADIO_ANALYTICS_ENABLED": "False",
           "PYTHONPATH": ""}
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=out, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        body = _wait_http(f"http://127.0.0.1:{port}/config", proc, timeout=60)
        assert "fake-base-7b-mmedpo" in body and "fake-small-2b-dpo" not in body
        assert _wait_http(f"http://127.0.0.1:{port}/", proc, timeout=10)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _wait_http(url: str, proc: subprocess.Popen, timeout: float) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            pytest.fail(f"app.py exited with {proc.returncode}: {proc.stdout.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return response.read().decode("utf-8")
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"no HTTP 200 from {url} within {timeout} s")


def test_export_refuses_a_folder_that_is_not_a_space(store, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine", "utf-8")
    assert main(["leaderboard", "export-space", str(tmp_path), "--store", str(store.path)]) == 2
    assert "not an exported Space" in capsys.readouterr().err
