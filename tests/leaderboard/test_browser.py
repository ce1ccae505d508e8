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
from lb_fakes import free_port, seed_store, submission, write_fake_study

CHROMIUM = os.environ.get("HARNESS_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
XSS = "<img src=x onerror=alert(1)>"
LONG_NAME = "fake-" + "very-long-model-name-" * 9 + "end"  # 200 characters

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"chromium not found at {CHROMIUM}"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    from harness.results.store import ResultRow, RunRecord
    from leaderboard.app import build_app, launch

    root = tmp_path_factory.mktemp("board")
    store = seed_store(root / "results.sqlite", root / "runs")
    # a run that got worse: +27 points of hallucination rate (red) with a small F1 gain (green)
    store.add_run(RunRecord(model="fake-base-7b-worse", base_model="fake-base-7b", method="simpo",
                            model_type="llava", config={"role": "method", "base_run_id": "fake-run-0"},
                            run_id="fake-run-worse", created_at="2024-12-01T00:00:00+00:00"),
                  [ResultRow("iu_xray", "hallucination_rate", 0.57, 0.55, 0.59, 100, False),
                   ResultRow("iu_xray", "chexpert_f1_micro", 0.35, 0.33, 0.37, 100),
                   ResultRow("vqa_rad", "closed_accuracy", 0.5, 0.47, 0.53, 200)])
    store.add_run(RunRecord(model=LONG_NAME, base_model="fake-base-7b", method="dpo", model_type="llava",
                            config={"role": "method", "base_run_id": "fake-run-0"}, run_id="fake-run-long",
                            created_at="2024-12-02T00:00:00+00:00"),
                  [ResultRow("vqa_rad", "closed_accuracy", 0.52, 0.49, 0.55, 200)])
    write_fake_study(root / "studies")
    demo = build_app(store=store.path, studies=root / "studies")
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


@pytest.fixture(scope="module")
def shared_page(browser, server):
    """One loaded page for the read-only checks below (a fresh page costs seconds each)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
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
    clear = page.locator("#lb-upload button[aria-label='Clear']")
    if clear.count():  # a file from an earlier upload is still shown
        clear.first.click()
    page.locator("#lb-upload input[type=file]").set_input_files(str(path))
    page.wait_for_timeout(500)
    box = page.locator("#lb-submit-msg textarea")
    before = box.input_value()
    page.locator("#lb-submit").click()
    assert wait_for(lambda: box.input_value() not in ("", before), 20)
    return box.input_value()


def test_upload_is_pending_until_approved_and_a_script_name_stays_text(page, server, tmp_path):
    store, _ = server
    path = tmp_path / "submission.json"
    path.write_text(json.dumps(submission(XSS, value=0.77)), "utf-8")
    deep = tmp_path / "deep.json"
    deep.write_bytes(b"[" * 200_000 + b"]" * 200_000)  # under the size cap, too deep for the JSON parser
    refused = _upload(page, deep)
    assert refused.startswith("Rejected: deep.json") and "nested too deeply" in refused, refused
    assert "Error" not in page.locator("#lb-pending").inner_text()  # the pending table is still there
    message = _upload(page, path)
    assert message.startswith("Pending approval: run "), message
    run_id = message.split()[-1]
    pending = page.locator("#lb-pending").inner_text()
    assert run_id in pending and XSS not in pending  # names stay hidden until a maintainer approves
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
    page.get_by_role("option", name="fake-base-7b-mmedpo · mmedpo · seed 2 · fake-run-2").click()
    assert wait_for(lambda: "synthetic test data" in page.content(), 20)
    assert wait_for(lambda: "Is the fake heart enlarged?" in page.content(), 20)
    assert "Is there a fake lesion?" not in page.content()  # right answers are hidden by default
    page.locator("span", has_text="Is the fake heart enlarged?").first.click()
    sample = page.locator("#lb-sample textarea")
    assert wait_for(lambda: "image: fake_scan.png" in sample.input_value(), 20)
    assert wait_for(lambda: page.locator("#lb-sample-image img").count() == 1, 20)
    shot(page, tmp_path, "run-page")


def _cell_color(page, table_id: str, row_text: str, header: str) -> str:
    """The computed text color of the cell in ``header``'s column on the row whose cells include every
    ``|``-separated text of ``row_text`` exactly."""
    return page.evaluate(
        """([tableId, rowText, header]) => {
            const root = document.querySelector(`#${tableId}`);
            const heads = [...root.querySelectorAll('thead th')].map(th => th.innerText.replace(/\u200b/g, '').trim());
            const col = heads.indexOf(header);
            if (col < 0) return 'no column ' + header + ' in ' + heads.join('|');
            const cells = [...root.querySelectorAll('[role=gridcell]')];
            const rows = [...new Set(cells.map(c => c.dataset.row))];
            const row = rows.find(r => rowText.split('|').every(t => cells.some(
                c => c.dataset.row === r && c.innerText.trim() === t)));
            if (row === undefined) return 'no row ' + rowText;
            const cell = root.querySelector(`[role=gridcell][data-row="${row}"][data-col="${col}"]`);
            return getComputedStyle(cell.querySelector('span') || cell).color;
        }""", [table_id, row_text, header])


def test_run_page_renders_the_preselected_run_and_a_table_row_opens_its_run(shared_page, tmp_path):
    page = shared_page
    page.get_by_role("tab", name="Run").click()
    results = page.locator("#lb-run-results")
    assert wait_for(lambda: "vqa_rad" in results.inner_text(), 20)  # no empty "1 2 3" table
    assert "closed_accuracy" in results.inner_text()
    assert wait_for(lambda: "fake-run-4" in page.locator("#lb-run-config").inner_text(), 10)
    page.get_by_role("tab", name="Med-VQA").click()
    page.locator("#lb-table-vqa [role=gridcell]", has_text="fake-base-7b-mmedpo").first.click()
    assert wait_for(lambda: "Is the fake heart enlarged?" in page.content(), 20)  # its wrong answer, on its page
    assert "fake-run-2" in page.locator("#lb-run-config").inner_text()


def test_a_long_model_name_wraps_and_leaves_the_metrics_on_screen(shared_page, tmp_path):
    page = shared_page
    page.get_by_role("tab", name="Med-VQA").click()
    table = page.locator("#lb-table-vqa")
    assert wait_for(lambda: "very-long-model-name" in table.inner_text(), 20)
    for metric in ("vqa_rad/closed_accuracy", "vqa_rad/open_recall"):
        header = table.locator("th", has_text=metric.split("/")[1]).first
        box = header.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 1280, (metric, box)  # on screen, not scrolled off
    cell = table.locator("[role=gridcell]", has_text="very-long-model-name").first.bounding_box()
    assert cell["width"] < 250 and cell["height"] > 40, cell  # the name wraps inside its own column
    # headers wrap between words only: no header word is wider than its column (cut mid-word)
    overflowing = page.evaluate("""() => [...document.querySelectorAll('#lb-table-vqa thead th')]
        .filter(th => { const s = th.querySelector('span'); return s && s.scrollWidth > s.clientWidth + 1; })
        .map(th => th.innerText)""")
    assert overflowing == [], overflowing
    shot(page, tmp_path, "long-name", table)


def test_delta_colors_follow_each_metrics_direction(shared_page, tmp_path):
    page = shared_page
    page.get_by_role("tab", name="Factuality & clinical efficacy").click()
    table = page.locator("#lb-table-factuality")
    assert wait_for(lambda: "fake-base-7b-worse" in table.inner_text(), 20)
    red, green = "rgb(207, 34, 46)", "rgb(26, 127, 55)"
    assert _cell_color(page, "lb-table-factuality", "fake-base-7b-worse", "iu_xray/hallucination_rate Δ") == red
    assert _cell_color(page, "lb-table-factuality", "fake-base-7b-worse", "iu_xray/chexpert_f1_micro Δ") == green
    # the mmedpo run lowered its hallucination rate: a negative Δ, shown as the improvement it is
    assert _cell_color(page, "lb-table-factuality", "fake-base-7b-mmedpo", "iu_xray/hallucination_rate Δ") == green


def test_studies_tab_shows_a_study_with_its_forest_plot(shared_page, tmp_path):
    page = shared_page
    page.get_by_role("tab", name="Studies").click()
    study = page.locator("#lb-study-table")
    assert wait_for(lambda: "75.0 ± 1.0" in study.inner_text(), 20)
    assert "synth_report/false_finding_rate (lower better)" in study.inner_text()
    forest = page.locator("#lb-forest svg")
    assert wait_for(lambda: forest.count() == 1 and page.locator("#lb-forest circle").count() == 2, 20)
    rate = "synth_report/false_finding_rate (lower better)"
    assert _cell_color(page, "lb-study-table", f"{rate}|dpo", "Δ base") == "rgb(207, 34, 46)"  # +7: worse
    assert _cell_color(page, "lb-study-table", f"{rate}|mmedpo", "Δ base") == "rgb(26, 127, 55)"  # -5: better
    assert _cell_color(page, "lb-study-table", "synth_vqa/closed_accuracy|dpo", "Δ base") == "rgb(26, 127, 55)"


def test_a_board_of_partial_single_task_runs_ranks_them_and_draws_a_chart_with_no_traceback(browser, tmp_path,
                                                                                           capfd):
    """Only runs on part of a test set, each on one task, and no studies: rows are ranked, the chart draws
    them hatched, and loading the page logs no error (it logged a ValueError per load without studies)."""
    from harness.results.store import ResultRow, ResultsStore, RunRecord
    from leaderboard.app import build_app, launch

    store = ResultsStore(tmp_path / "partial.sqlite")
    for i, (task, value) in enumerate((("vqa_rad", 0.7), ("slake", 0.8), ("vqa_rad", 0.6))):
        store.add_run(RunRecord(model=f"fake-partial-{i}", method="dpo", run_id=f"fake-partial-{i}",
                                config={"role": "method", "limit": 20, "train_seed": i}),
                      [ResultRow(task, "closed_accuracy", value, value - 0.1, value + 0.1, 20)])
    demo = build_app(store=store.path, studies=tmp_path / "no-studies")
    port = free_port()
    launch(demo, port=port, block=False)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("#lb-table-vqa table", timeout=30_000)
        assert wait_for(lambda: "fake-partial-2" in table_text(page), 20)
        cells = page.locator("#lb-table-vqa [role=gridcell][data-col='0']").all_inner_texts()
        assert [c.strip() for c in cells] == ["1", "2", "3"], cells
        plot = page.locator("#lb-plot-vqa")
        assert "No results to plot" not in plot.inner_text()
        assert plot.locator("rect.lb-partial").count() == 3 and "hatched: partial" in plot.inner_text()
        page.get_by_role("tab", name="Studies").click()
        page.wait_for_timeout(1500)  # the load events, the Studies tab's included, have all run
    finally:
        context.close()
        demo.close()
    err = capfd.readouterr().err
    assert "Traceback" not in err and "ValueError" not in err, err[-2000:]


def test_screenshots_of_every_tab(shared_page, tmp_path):
    """One picture per tab for docs/leaderboard.md (LEADERBOARD_SCREENSHOTS=docs/img keeps them)."""
    page = shared_page
    for name, key in (("Med-VQA", "vqa"), ("Report generation", "report"), ("Factuality & clinical efficacy",
                      "factuality"), ("Methods", "methods"), ("Studies", "studies"), ("Run", "run"),
                      ("About", "about"), ("Submit", "submit")):
        page.get_by_role("tab", name=name, exact=True).click()
        page.wait_for_timeout(700)
        box = page.locator("#lb-tabs").bounding_box()
        clip = {"x": box["x"], "y": box["y"], "width": box["width"], "height": min(box["height"], 1400)}
        path = tmp_path / f"tab-{key}.png"
        page.screenshot(path=str(path), clip=clip, full_page=True)  # the tab, at most 1400 px of it
        keep = os.environ.get("LEADERBOARD_SCREENSHOTS")
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, Path(keep) / path.name)
    assert "Benchmarks" in page.content() and "vqa_rad" in page.content()
