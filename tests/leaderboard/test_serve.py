"""`harness leaderboard serve` reports the port Gradio actually bound."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

import pytest


@pytest.mark.slow
def test_serve_prints_the_port_it_took_when_the_default_is_busy(store, tmp_path):
    blocker = socket.socket()
    try:
        blocker.bind(("127.0.0.1", 7860))
        blocker.listen(1)
    except OSError:
        pass  # 7860 is busy already: the situation under test
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    env.pop("GRADIO_SERVER_PORT", None)
    proc = subprocess.Popen([sys.executable, "-m", "harness", "leaderboard", "serve", "--store", str(store.path),
                             "--studies", str(tmp_path / "none")], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        end, line = time.monotonic() + 120, ""
        while time.monotonic() < end and "serving" not in line:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                pytest.fail(f"serve exited with {proc.returncode}")
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)", line).group(1))
        assert port != 7860
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=10) as response:
            assert response.status == 200 and "fake-base-7b-mmedpo" in response.read().decode()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        blocker.close()
