"""The leaderboard in a real browser: Playwright driving Debian's chromium (no ``playwright install``).

Screenshots land in tmp_path; set ``LEADERBOARD_SCREENSHOTS=DIR`` to also keep them (docs/img/ was made so).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from lb_fakes import free_port, seed_store, submission

CHROMIUM = os.environ.get("HARNESS_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
XSS = "<img src=x onerror=alert(1)>"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"chromium not found at {CHROMIUM}"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    from leaderboard.app import build_app, launch

    root = tmp_path_factory.mktemp("board")
    store = seed_store(root / "results.sqlite", root / "runs")
    demo = build_app(store=store.path)
    port = free_port()
    launch(demo, port=port, block=False)
    try:
        yield store, f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.dialogs = dialogs
    page.goto(server[1])
    page.wait_for_selector("#lb-table-vqa table", timeout=30_000)
    yield page
    context.close()


def shot(page, tmp_path, name: str, element=None) -> Path:
    path = tmp_path / f"{name}.png"
    (element or page).screenshot(path=str(path))
    keep = os.environ.get("LEADERBOARD_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(keep) / path.name)
    return path


def table_text(page, key: str = "vqa") -> str:
    return page.locator(f"#lb-table-{key}").inner_text()


def wait_for(predicate, timeout: float = 15.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def test_page_shows_recorded_runs_and_search_and_filter_change_rows(page, tmp_path):
    text = table_text(page)
    for model in ("fake-base-7b-mmedpo", "fake-base-7b-dpo", "fake-small-2b"):
        assert model in text
    shot(page, tmp_path, "leaderboard")
    search = page.locator("#lb-search textarea")
    search.press_sequentially("mmedpo")
    assert wait_for(lambda: "fake-small-2b" not in table_text(page))
    assert "fake-base-7b-mmedpo" in table_text(page)
    search.press("Control+a")
    search.press("Backspace")
    assert wait_for(lambda: "fake-small-2b" in table_text(page))
    page.locator("#lb-base input").first.click()
    page.get_by_role("option", name="fake-small-2b").click()
    page.keyboard.press("Escape")
    assert wait_for(lambda: "fake-base-7b-mmedpo" not in table_text(page))
    assert "fake-small-2b-dpo" in table_text(page)
    shot(page, tmp_path, "leaderboard-filtered")


def _upload(page, path: Path) -> str:
    page.get_by_role("tab", name="Submit").click()
    page.locator("#lb-upload input[type=file]").set_input_files(str(path))
    page.wait_for_timeout(500)
    page.locator("#lb-submit").click()
    box = page.locator("#lb-submit-msg textarea")
    assert wait_for(lambda: box.input_value() != "", 20)
    return box.input_value()


def test_upload_is_pending_until_approved_and_a_script_name_stays_text(page, server, tmp_path):
    store, _ = server
    path = tmp_path / "submission.json"
    path.write_text(json.dumps(submission(XSS, value=0.77)), "utf-8")
    message = _upload(page, path)
    assert message.startswith("Pending approval: run "), message
    run_id = message.split()[-1]
    pending = page.locator("#lb-pending").inner_text()
    assert XSS in pending and run_id in pending
    assert XSS not in table_text(page)
    shot(page, tmp_path, "submit-pending")

    from harness.cli import main

    assert main(["leaderboard", "approve", run_id, "--store", str(store.path)]) == 0
    page.get_by_role("tab", name="Med-VQA").click()
    page.locator("#lb-refresh").click()
    assert wait_for(lambda: XSS in table_text(page), 20)
    # the name is text in a cell: no <img> element was created from it, and no dialog fired
    assert page.locator("#lb-table-vqa img").count() == 0
    assert page.locator("img[src=x]").count() == 0
    page.wait_for_timeout(500)
    assert page.dialogs == []
    shot(page, tmp_path, "approved-row", page.locator("#lb-table-vqa"))


def test_run_page_shows_config_and_wrong_answers_with_their_image(page, tmp_path):
    page.get_by_role("tab", name="Run").click()
    page.locator("#lb-run input").first.click()
    page.get_by_role("option", name="fake-base-7b-mmedpo · mmedpo · fake-run-2").click()
    assert wait_for(lambda: "synthetic test data" in page.content(), 20)
    assert wait_for(lambda: "Is the fake heart enlarged?" in page.content(), 20)
    assert "Is there a fake lesion?" not in page.content()  # right answers are hidden by default
    page.locator("span", has_text="Is the fake heart enlarged?").first.click()
    sample = page.locator("#lb-sample textarea")
    assert wait_for(lambda: "image: fake_scan.png" in sample.input_value(), 20)
    assert wait_for(lambda: page.locator("#lb-sample-image img").count() == 1, 20)
    shot(page, tmp_path, "run-page")
