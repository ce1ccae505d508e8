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


@pytest.mark.parametrize("title", ["MedVQA: board", "#1 board", "it's \"quoted\" — 医学"])
def test_front_matter_is_yaml_that_keeps_any_title_and_names_the_python(title):
    import yaml

    from leaderboard.space import front_matter, python_version

    text = front_matter(title, "6.0.0")
    assert text.startswith("---\n") and text.endswith("---\n")
    data = yaml.safe_load(text.strip().strip("-"))
    assert data["title"] == title and data["sdk"] == "gradio" and data["sdk_version"] == "6.0.0"
    assert data["python_version"] == python_version() == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert data["tags"] == ["leaderboard"] and 0 < len(data["short_description"]) <= 60  # the Hub's cap


def test_the_exported_front_matter_pins_the_installed_gradio(store, tmp_path):
    from importlib import metadata

    import yaml

    out = tmp_path / "space"
    assert main(["leaderboard", "export-space", str(out), "--store", str(store.path)]) == 0
    data = yaml.safe_load((out / "README.md").read_text("utf-8").split("---")[1])
    assert data["sdk_version"] == metadata.version("gradio") and data["tags"] == ["leaderboard"]
    assert data["short_description"] and data["python_version"]


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_exported_files_follow_the_umask_and_hold_no_local_paths(store, tmp_path, umask):
    import stat

    from lb_fakes import write_fake_study

    from harness.results.store import ResultRow, RunRecord

    local = str(tmp_path / "models" / "llava-7b")
    store.add_run(RunRecord(model=f"{local}+dpo", base_model=local, method="dpo", predictions_dir=str(tmp_path),
                            config={"role": "method", "base_run_id": "fake-run-0",
                                    "pipeline": {"data_dir": str(tmp_path / "data")}}),
                  [ResultRow("vqa_rad", "closed_accuracy", 0.5)])
    write_fake_study(tmp_path / "studies")
    out = tmp_path / "space"
    old = os.umask(umask)
    try:
        assert main(["leaderboard", "export-space", str(out), "--store", str(store.path), "--title", "#1 board",
                     "--studies", str(tmp_path / "studies")]) == 0
    finally:
        os.umask(old)
    for path in [out, *out.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o777 if path.is_dir() else 0o666) & ~umask, (path.name, oct(mode))
    text = (out / "results.json").read_text("utf-8")
    assert str(tmp_path) not in text and "/home/" not in text and "sha256:" not in text
    snapshot = json.loads(text)
    assert snapshot["studies"][0]["study_id"] == "fake-study-1" and snapshot["cards"]
    assert "llava-7b+dpo" in {r["model"] for r in snapshot["runs"]}
    readme = (out / "README.md").read_text("utf-8")
    assert "title: '#1 board'" in readme and "python_version:" in readme


def test_requirements_resolve_for_the_front_matters_python(tmp_path):
    """pip's own resolver, for the Space's Python and wheels only (needs the package registry)."""
    from leaderboard.space import python_version, requirements

    reqs = tmp_path / "requirements.txt"
    reqs.write_text(requirements(), "utf-8")
    assert {line.split("==")[0] for line in requirements().splitlines()} == {"gradio", "pandas", "pillow"}
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--disable-pip-version-check",
           "--python-version", python_version(), "--only-binary=:all:", "-r", str(reqs),
           "--target", str(tmp_path / "target")]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    except subprocess.TimeoutExpired:
        pytest.skip("the package registry did not answer within 240 s")
    unreachable = ("Could not fetch URL", "Failed to establish a new connection", "Temporary failure in name",
                   "Network is unreachable", "connection error")
    if done.returncode and any(s in done.stderr for s in unreachable):
        pytest.skip(f"the package registry is unreachable: {done.stderr.strip().splitlines()[-1][:200]}")
    assert done.returncode == 0, done.stderr[-2000:]
