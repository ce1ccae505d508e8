"""The Gradio leaderboard: comparison tabs, methods, studies, a run page, an About tab and submissions.

``build_app(store=PATH)`` reads the SQLite results store (and ``studies=DIR``, the studies ``harness study``
wrote) and accepts uploads (stored as pending); ``build_app(snapshot=PATH)`` reads a JSON snapshot
read-only (an exported Space). Submitter strings are only ever shown in text cells (Dataframe ``str``
columns, textboxes, JSON) or escaped SVG, never as HTML or markdown.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
import pandas as pd  # noqa: E402

from leaderboard import plots  # noqa: E402
from leaderboard import predictions as preds  # noqa: E402
from leaderboard.cite import bibliography  # noqa: E402
from leaderboard.data import (  # noqa: E402
    AVERAGE,
    ID_COLUMNS,
    LINK,
    PERCENT,
    RANK,
    RUN_ID,
    SEED,
    TABS,
    TEST_SET,
    Board,
    Filters,
    averaged_columns,
    base_run_id,
    choices,
    delta_direction,
    docs_url,
    forest_rows,
    last_updated,
    pending_table,
    provenance_lines,
    public_run,
    run_results,
    scrub_paths,
    short_model,
    study_label,
    study_metrics,
    study_table,
    train_seed,
    wide_table,
)
from leaderboard.method_table import forest_rows as method_forest_rows  # noqa: E402
from leaderboard.method_table import method_deltas  # noqa: E402

log = logging.getLogger(__name__)

TITLE = "Medical VLM preference-optimization leaderboard"
INTRO = (
    f"# {TITLE}\n"
    "Models aligned with MMedPO, DPO and their peers, scored by the harness on Med-VQA and report "
    "generation. Values are shown in display units (percent for rates) with bootstrap 95% intervals; "
    "**Δ** columns compare each run with the base run recorded in its provenance, green when the change "
    "is an improvement for that metric (for hallucination and false-finding rates lower is better). "
    "The **Average** takes the higher-is-better rates a row has (*Averaged* says how many); rows averaging "
    "fewer columns rank after rows averaging more, and runs on part of a test set (or on another split) "
    "are marked and ranked after the full runs. Submissions appear after a maintainer approves them."
)
ORDERS = ("best first", "descending", "ascending")
MAX_UPLOAD_BYTES = 1_000_000  # the schema's cap (leaderboard.schema.MAX_BYTES); checked again there
BETTER_CSS, WORSE_CSS = "color: #1a7f37; font-weight: 600", "color: #cf222e; font-weight: 600"
CSS = f"""
.lb-plot svg {{background: white; border-radius: 6px}}
body, .gradio-container {{font-family: {plots.FONTS}}}
/* a long name wraps inside its fixed-width cell instead of pushing the metrics off screen */
.lb-table [role=gridcell] span {{overflow-wrap: anywhere}}
/* headers wrap between words (task/metric breaks after the slash), never inside one */
.lb-table th, .lb-table th span {{word-break: normal !important; overflow-wrap: normal !important; hyphens: none}}
"""


class BoardSource:
    """Loads the board from a store or a snapshot; keeps the last load for cheap filter changes."""

    def __init__(self, store: str | Path | None = None, snapshot: str | Path | None = None,
                 studies: str | Path | None = None):
        if (store is None) == (snapshot is None):
            raise ValueError("give exactly one of store or snapshot")
        self.store_path, self.snapshot, self.studies = store, snapshot, studies
        self._lock = threading.Lock()
        self._meta: tuple[dict, dict, list] | None = None
        self._board = self.reload()

    @property
    def writable(self) -> bool:
        return self.store_path is not None

    def store(self) -> Any:
        from harness.results.store import ResultsStore

        return ResultsStore(self.store_path)

    def reload(self) -> Board:
        if self.snapshot is not None:
            board = Board.from_snapshot(self.snapshot)
        else:
            from leaderboard.cite import harness_url
            from leaderboard.data import (
                _harness_metadata,
                _metric_info,
                add_study_metrics,
                benchmark_cards,
                installed_harness_version,
                load_studies,
            )

            store = self.store()
            runs = [r for r in store.runs() if r.get("status") != "rejected"]
            results = store.results()
            board = Board(runs, results, harness_version=installed_harness_version(), harness_url=harness_url())
            if self._meta is None:  # registries do not change while the app runs; method imports are slow
                families, _, citations = _harness_metadata([])
                self._meta = (families, citations, benchmark_cards(results))
            board.task_families, board.citations, board.cards = self._meta
            board.metrics = {m: _metric_info(m, results) for m in {r["metric"] for r in results}}
            board.studies = load_studies(self.studies)
            add_study_metrics(board)
        with self._lock:
            self._board = board
        return board

    @property
    def board(self) -> Board:
        with self._lock:
            return self._board


def _datatypes(frame: pd.DataFrame) -> list[str]:
    """Every column is text or a number, except the Link column: markdown whose text and URL the app makes
    itself (``data.model_card`` keeps only https URLs of a plain character set)."""
    return ["markdown" if c == LINK else "number" if pd.api.types.is_numeric_dtype(frame[c]) else "str"
            for c in frame.columns]


def _link_cell(url: Any) -> str:
    if not url:
        return ""
    return f"[{'🤗 Hub' if str(url).startswith('https://huggingface.co/') else 'card'}]({url})"


def _cell_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{int(value)}" if value.is_integer() and abs(value) >= 1000 else f"{value:.2f}"
    return str(value)


def _delta_styles(frame: pd.DataFrame, board: Board | None) -> pd.DataFrame:
    styles = pd.DataFrame("", index=frame.index, columns=frame.columns)
    if board is None:
        return styles
    for column in frame.columns:
        if not str(column).endswith(" Δ") and not str(column).startswith(("Mean Δ", "Δ ")):
            continue
        if str(column).startswith("Mean Δ"):
            better = board.metric(str(column).removeprefix("Mean Δ ")).higher_is_better
        elif str(column).startswith("Δ ") and "Task/metric" in frame.columns:
            better = None
        else:
            better = delta_direction(board, column)
        for index, value in frame[column].items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value) or value == 0:
                continue
            row_better = better
            if row_better is None:  # a study table: each row names its own metric's direction
                row_better = "(lower better)" not in str(frame.at[index, "Task/metric"])
            styles.at[index, column] = BETTER_CSS if (value > 0) == row_better else WORSE_CSS
    return styles


WIDTHS = {RANK: 52, "Model": 190, "Method": 90, "Base model": 130, "Type": 96, "Test set": 130, AVERAGE: 80,
          RUN_ID: 150, "Citation": 480, "Task/metric": 330, "Mean ± sd": 110, "Tasks": 220, "Submitted": 210,
          "Status": 130, SEED: 56, "Averaged": 90, "Params (B)": 76, "Precision": 100, "Licence": 86, LINK: 60,
          "Setting": 200, "Seeds": 100, "Run IDs": 220, "Effect": 120, "Range": 120, "sd": 60}
INTEGER_COLUMNS = (RANK, SEED, "n", "Runs", "Comparisons", "Seeds", "Items")


def header_text(column: str) -> str:
    """A header that may wrap between words: after the ``/`` of ``task/metric`` and before ``Δ``."""
    return str(column).replace("/", "/\u200b")


def column_widths(columns: list[str]) -> list[str]:
    """Fixed widths, so a 200-character name wraps in its own column instead of pushing the metrics away."""
    out = []
    for column in columns:
        text = str(column)
        longest = max(len(word) for word in text.replace("/", " ").split() or [""])
        width = WIDTHS.get(text) or max(66 if text.endswith(" n") else 84, min(170, 9 * longest + 20))
        out.append(f"{width}px")
    return out


def _frame_update(frame: pd.DataFrame, board: Board | None = None, *, fixed: bool = True) -> dict[str, Any]:
    """The table as Gradio shows it: blank for NaN, whole numbers for ranks and n, two decimals for values,
    and each Δ green or red by the metric's direction. Every submitter string stays a text cell."""
    shown = frame.astype(object).where(frame.notna(), None)
    for column in shown.columns:
        if column == LINK:
            shown[column] = pd.Series([_link_cell(v) for v in shown[column]], index=shown.index, dtype=object)
        elif (str(column).endswith(" n") or column in INTEGER_COLUMNS) and pd.api.types.is_numeric_dtype(frame[column]):
            shown[column] = pd.Series([None if v is None else int(v) for v in shown[column]], index=shown.index,
                                      dtype=object)
    headers = [header_text(c) for c in frame.columns]
    styles = _delta_styles(frame, board)
    shown.columns, styles.columns = headers, headers
    styler = shown.style.apply(lambda _: styles, axis=None).format(_cell_text)
    extra = {"column_widths": column_widths(list(frame.columns))} if fixed else {}
    return gr.update(value=styler, headers=headers, datatype=_datatypes(frame), **extra)


def _ci_map(board: Board, frame: pd.DataFrame, columns: list[str]) -> dict[tuple[str, str], tuple[float, float]]:
    wanted = set(frame[RUN_ID]) if not frame.empty else set()
    out = {}
    for row in board.results:
        key = f"{row['task']}/{row['metric']}"
        if row["run_id"] in wanted and key in columns and row.get("ci_low") is not None:
            scale = board.metric(row["metric"]).display_scale
            out[(row["run_id"], key)] = (row["ci_low"] * scale, row["ci_high"] * scale)
    return out


def render_tab(board: Board, tab_index: int, filters: Filters, columns: list[str] | None, sort_by: str | None,
               order: str, show_ci: bool, show_delta: bool) -> tuple[pd.DataFrame, str]:
    """The tab's table and its charts: one chart per unit (rates in percent; CIDEr on its own axis)."""
    tab = TABS[tab_index]
    descending = None if order == ORDERS[0] else order == "descending"
    frame = wide_table(board, tab, filters, columns, show_ci=show_ci, show_delta=show_delta, sort_by=sort_by,
                       descending=descending)
    shown = [c for c in frame.columns if "/" in c and not c.endswith((" CI", " Δ"))]
    units: dict[str, list[str]] = {}
    for column in shown:
        units.setdefault(board.metric(column.split("/", 1)[1]).unit, []).append(column)
    svgs = [_unit_chart(board, tab.title, frame, cols, unit)
            for unit, cols in sorted(units.items(), key=lambda kv: kv[0] != PERCENT)]
    note = ""
    if shown:
        averaged = averaged_columns(board, shown)
        note = ("<p class='lb-note'>Average: mean of those of " + (", ".join(averaged) if averaged else "no column")
                + " a row has (higher-is-better rates only)</p>")
    return frame, note + "".join(svgs or [plots.task_bars(frame, [], {}, tab.title)])


def _unit_chart(board: Board, title: str, frame: pd.DataFrame, columns: list[str], unit: str) -> str:
    """The table's top ranked rows with a value in one of ``columns``, partial ones hatched; each named by
    its model (without the fingerprint), seed and, where that still repeats, its run id."""
    rows = frame[frame[RANK].notna() & frame[columns].notna().any(axis=1)] if not frame.empty else frame
    rows = rows.head(plots.MAX_SERIES)
    partial = [text != "full" for text in rows[TEST_SET]] if not rows.empty else []
    labels = [short_model(m) + ("" if pd.isna(s) else f" s{int(s)}") for m, s in zip(rows["Model"], rows[SEED])] \
        if not rows.empty else []
    labels = [f"{label} {run_id[-6:]}" if labels.count(label) > 1 else label
              for label, run_id in zip(labels, rows[RUN_ID] if not rows.empty else [])]
    what = "full-test-set runs" if not any(partial) else "runs, hatched: partial test set or other split"
    heading = f"{title}: top {what}, 95% intervals" + ("" if unit == PERCENT else f" ({unit}, own axis)")
    return plots.task_bars(rows, columns, _ci_map(board, rows, columns), heading, labels=labels, partial=partial)


def build_app(store: str | Path | None = None, snapshot: str | Path | None = None,
              studies: str | Path | None = None) -> gr.Blocks:
    source = BoardSource(store=store, snapshot=snapshot, studies=studies)
    board = source.board
    opts = choices(board)
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(INTRO)
        stamp = gr.Markdown(updated_line(board), elem_id="lb-updated")
        with gr.Row():
            search = gr.Textbox(label="Search", placeholder="model, method, base model or run id", scale=2,
                                elem_id="lb-search")
            base_dd = gr.Dropdown(opts["base_models"], multiselect=True, label="Base model", elem_id="lb-base")
            method_dd = gr.Dropdown(opts["methods"], multiselect=True, label="Method", elem_id="lb-method")
            task_dd = gr.Dropdown(opts["tasks"], multiselect=True, label="Task", elem_id="lb-task")
            type_dd = gr.Dropdown(opts["model_types"], multiselect=True, label="Model type", elem_id="lb-type")
        with gr.Row():
            size_dd = gr.Dropdown(opts["sizes"], multiselect=True, label="Parameters", elem_id="lb-size")
            precision_dd = gr.Dropdown(opts["precisions"], multiselect=True, label="Precision",
                                       elem_id="lb-precision")
            license_dd = gr.Dropdown(opts["licenses"], multiselect=True, label="Licence", elem_id="lb-license")
            show_ci = gr.Checkbox(False, label="Show 95% intervals")
            show_delta = gr.Checkbox(True, label="Show Δ vs base run")
            refresh = gr.Button("Refresh", elem_id="lb-refresh", scale=0)
        filter_dropdowns = [base_dd, method_dd, task_dd, type_dd, size_dd, precision_dd, license_dd]
        filter_inputs = [search, *filter_dropdowns, show_ci, show_delta]
        first_tab = len(filter_inputs)  # where each tab's (columns, sort, order) start in an event's values
        tab_widgets = []
        with gr.Tabs(elem_id="lb-tabs") as tabs:
            for i, tab in enumerate(TABS):
                with gr.Tab(tab.title, id=tab.key):
                    cols = gr.CheckboxGroup(board.columns(tab), value=board.default_columns(tab), label="Columns")
                    with gr.Row():
                        sort = gr.Dropdown([AVERAGE, *board.columns(tab)], value=AVERAGE, label="Sort by")
                        order = gr.Radio(list(ORDERS), value=ORDERS[0], label="Order")
                    frame, svg = render_tab(board, i, Filters(), None, AVERAGE, ORDERS[0], False, True)
                    table = gr.Dataframe(_frame_update(frame, board)["value"], datatype=_datatypes(frame),
                                         column_widths=column_widths(list(frame.columns)),
                                         interactive=False, wrap=True, elem_id=f"lb-table-{tab.key}",
                                         elem_classes="lb-table", label=f"{tab.title} (approved runs)",
                                         max_height=520)
                    plot = gr.HTML(svg, elem_classes="lb-plot", elem_id=f"lb-plot-{tab.key}")
                    tab_widgets.append((cols, sort, order, table, plot))
            with gr.Tab("Methods", id="methods"):
                metric_names = sorted({r["metric"] for r in board.results if "@" not in r["metric"]})
                first = "closed_accuracy" if "closed_accuracy" in metric_names else (metric_names or [None])[0]
                gr.Markdown("One row per base model, method (with its options) and training setting, its training "
                            "seeds aggregated: the mean of the metric, the mean Δ against each run's own base run, "
                            "the sd and range of that Δ over seeds, and how many seeds improved the metric. "
                            "*Setting* names what tells a method's rows apart (a learning rate, steps, the "
                            "evaluation split). Rows on part of a test set are marked and listed after the full "
                            "ones. The chart shows the first rows: a dot at the mean Δ, a bar over the seeds' range, "
                            "green or red only when every seed moved the metric the same way, an open dot for a "
                            "partial row. For paired tests over items and seeds, see the Studies tab.")
                delta_metric = gr.Dropdown(metric_names, value=first, label="Δ on metric")
                methods_table = gr.Dataframe(interactive=False, wrap=True, elem_id="lb-methods",
                                             elem_classes="lb-table", max_height=520,
                                             label="Methods: runs per setting, seeds aggregated (display units)")
                methods_plot = gr.HTML(elem_classes="lb-plot", elem_id="lb-methods-plot")
            with gr.Tab("Studies", id="studies"):
                gr.Markdown("Multi-seed studies (`harness study`): mean ± sd over training seeds, Δ against the "
                            "base model and the reference method, each tested on the metric as printed over "
                            "test items and training seeds (`*` p < 0.05, `**` p < 0.01, shown only when the "
                            "95% interval excludes 0, which the same test makes equivalent; `p adj.`: Holm over "
                            "the study's tests), and each method's effect with that interval. 'item-level only': "
                            "significant only with the seeds taken as given. A study on part of a test set says "
                            "so in its name.")
                study_choices = [(study_label(s), s["study_id"]) for s in board.studies]
                with gr.Row():
                    study_dd = gr.Dropdown(study_choices, value=study_choices[0][1] if study_choices else None,
                                           label="Study", elem_id="lb-study", scale=3)
                    study_metric = gr.Dropdown([], label="Forest plot metric", elem_id="lb-study-metric", scale=2)
                study_df = gr.Dataframe(interactive=False, wrap=True, elem_id="lb-study-table",
                                        elem_classes="lb-table", label="Study results (display units)")
                study_plot = gr.HTML(elem_classes="lb-plot", elem_id="lb-forest")
            with gr.Tab("Run", id="run"):
                run_options = _run_choices(board)
                first_run = run_options[0][1] if run_options else None
                run_dd = gr.Dropdown(run_options, value=first_run, label="Run", elem_id="lb-run")
                results0, info0, passes0 = _run_view(board, first_run)
                run_results_df = gr.Dataframe(_frame_update(results0)["value"], interactive=False, label="Results",
                                              elem_id="lb-run-results")
                run_provenance = gr.Textbox(run_provenance_text(board, first_run), label="Which fields were verified",
                                            lines=3, interactive=False, elem_id="lb-run-provenance")
                run_config = gr.JSON(info0, label="Config and provenance", elem_id="lb-run-config")
                with gr.Row():
                    pass_dd = gr.Dropdown(passes0, value=passes0[0] if passes0 else None, label="Predictions",
                                          scale=2, elem_id="lb-pass")
                    wrong_only = gr.Checkbox(True, label="Wrong answers only", elem_id="lb-wrong")
                pred_df = gr.Dataframe(interactive=False, wrap=True, label="Per-sample predictions (select a row)",
                                       max_height=400, elem_id="lb-preds")
                pred_note = gr.Markdown(elem_id="lb-pred-note")
                records_state = gr.State([])
                with gr.Row():
                    sample_image = gr.Image(label="Image", type="pil", height=300, interactive=False,
                                            elem_id="lb-sample-image")
                    sample_text = gr.Textbox(label="Sample", lines=10, interactive=False, elem_id="lb-sample")
            with gr.Tab("About", id="about"):
                about = gr.Markdown(about_markdown(board), elem_id="lb-about")
            with gr.Tab("Submit", id="submit"):
                if source.writable:
                    gr.Markdown("Upload a `harness-results/1` JSON file (the format: " + _docs_links(board)
                                + "). It is validated, then held as **pending** until a maintainer approves it. "
                                "Names stay hidden until then; keep the run id you are given.", elem_id="lb-submit-intro")
                    upload = gr.File(label="Results file", file_types=[".json"], type="filepath",
                                     elem_id="lb-upload")
                    submit_btn = gr.Button("Submit", variant="primary", elem_id="lb-submit")
                    submit_msg = gr.Textbox(label="Outcome", interactive=False, elem_id="lb-submit-msg")
                else:
                    gr.Markdown("This copy is a read-only snapshot. Submit with `harness submit FILE` "
                                "against the maintainers' store (the format: " + _docs_links(board) + ").")
                pending_df = gr.Dataframe(pending_table(board), interactive=False, elem_id="lb-pending",
                                          label="Pending submissions (names hidden until approved)", datatype="str")
                if board.guide:
                    with gr.Accordion("Submission guide (docs/leaderboard.md)", open=False, elem_id="lb-guide"):
                        gr.Markdown(board.guide, header_links=True, elem_id="lb-guide-text")

        def filters_of(values: list[Any]) -> Filters:
            q, *lists = values[:first_tab - 2]
            return Filters(q or "", *(v or [] for v in lists))

        def update_tables(*values: Any) -> list[Any]:
            current = source.board
            filters = filters_of(list(values))
            ci, delta = values[first_tab - 2], values[first_tab - 1]
            out = []
            for i in range(len(TABS)):
                cols, sort, order = values[first_tab + 3 * i: first_tab + 3 * i + 3]
                frame, svg = render_tab(current, i, filters, cols, sort, order, ci, delta)
                out += [_frame_update(frame, current), svg]
            return out

        tab_inputs = [w for cols, sort, order, _, _ in tab_widgets for w in (cols, sort, order)]
        tab_outputs = [w for *_, table, plot in tab_widgets for w in (table, plot)]
        for widget in [*filter_inputs, *tab_inputs]:
            # always_last: while typing, the last keystroke's query wins even if an update is running
            widget.change(update_tables, [*filter_inputs, *tab_inputs], tab_outputs, show_progress="hidden",
                          trigger_mode="always_last")

        def update_methods(metric: str | None) -> list[Any]:
            current = source.board
            frame = method_deltas(current, metric or "")
            if not metric:
                return [_frame_update(frame), plots.forest([], "Method deltas")]
            better = current.metric(metric).higher_is_better
            svg = plots.forest(method_forest_rows(frame, metric),
                               f"Mean Δ {metric} vs base run, range over seeds ({'higher' if better else 'lower'} "
                               "is better)", higher_is_better=better, label_width=330)
            return [_frame_update(frame, current), svg]

        delta_metric.change(update_methods, delta_metric, [methods_table, methods_plot])

        def show_study(study_id: str | None, metric: str | None) -> list[Any]:
            current = source.board
            study = next((s for s in current.studies if s["study_id"] == study_id), None)
            if study is None:  # a table with its headers: Gradio refuses a header-less one with a ValueError
                return [_frame_update(study_table(current, {"records": []})), gr.update(choices=[], value=None),
                        plots.forest([], "No study")]
            metrics = study_metrics(study)
            metric = metric if metric in metrics else (metrics[0] if metrics else None)
            better = next((bool(r.get("higher_is_better", True)) for r in study["records"]
                           if f"{r['task']}/{r['metric']}" == metric), True)
            svg = plots.forest(forest_rows(current, study, metric or ""),
                               f"{metric}: effect vs base, 95% interval ({'higher' if better else 'lower'} is better)",
                               higher_is_better=better)
            return [_frame_update(study_table(current, study), current), gr.update(choices=metrics, value=metric),
                    svg]

        study_dd.change(show_study, [study_dd, study_metric], [study_df, study_metric, study_plot])
        study_metric.input(show_study, [study_dd, study_metric], [study_df, study_metric, study_plot])

        def reload(*values: Any) -> list[Any]:
            current = source.reload()
            opts = choices(current)
            updates = [gr.update(choices=opts[k]) for k in ("base_models", "methods", "tasks", "model_types", "sizes",
                                                             "precisions", "licenses")]
            col_updates = []
            for i, tab in enumerate(TABS):
                cols = values[first_tab + 3 * i]
                available = current.columns(tab)
                keep = [c for c in (cols or []) if c in available] or current.default_columns(tab)
                col_updates += [gr.update(choices=available, value=keep),
                                gr.update(choices=[AVERAGE, *available])]
            study_ids = [(study_label(s), s["study_id"]) for s in current.studies]
            return [*updates, *col_updates, _frame_update(pending_table(current)),
                    gr.update(choices=_run_choices(current)), gr.update(choices=study_ids), about_markdown(current),
                    updated_line(current)]

        reload_outputs = [*filter_dropdowns,
                          *[w for cols, sort, *_ in tab_widgets for w in (cols, sort)], pending_df, run_dd, study_dd,
                          about, stamp]
        run_outputs = [run_results_df, run_config, pass_dd, run_provenance]
        pred_outputs = [pred_df, records_state, pred_note]
        for trigger in (refresh.click, demo.load):
            trigger(reload, [*filter_inputs, *tab_inputs], reload_outputs, show_progress="hidden").then(
                update_tables, [*filter_inputs, *tab_inputs], tab_outputs, show_progress="hidden").then(
                update_methods, delta_metric, [methods_table, methods_plot], show_progress="hidden").then(
                show_study, [study_dd, study_metric], [study_df, study_metric, study_plot], show_progress="hidden")

        def show_run(run_id: str | None) -> list[Any]:
            results, info, passes = _run_view(source.board, run_id)
            return [_frame_update(results, fixed=False), info,
                    gr.update(choices=passes, value=passes[0] if passes else None),
                    run_provenance_text(source.board, run_id)]

        def show_predictions(run_id: str | None, pass_name: str | None, wrong: bool) -> list[Any]:
            run = source.board.run(run_id) if run_id else None
            path = preds.prediction_files(run).get(pass_name or "")
            records = preds.read_records(path) if path else []
            marks = preds.mark_correct(records, pass_name or "")
            note = ""
            if wrong and records and all(m is None for m in marks):
                note = "These answers have no right or wrong (free-text reports): showing every sample."
            elif wrong:
                keep = [i for i, m in enumerate(marks) if m is False]
                records, marks = [records[i] for i in keep], [marks[i] for i in keep]
            elif not records and run is not None:
                note = "No per-sample predictions were stored for this run."
            return [_frame_update(preds.table(records, marks=marks), fixed=False), records, note]

        # the selected run's page renders on load too (the dropdown starts on the newest run)
        demo.load(show_run, run_dd, run_outputs, show_progress="hidden").then(
            show_predictions, [run_dd, pass_dd, wrong_only], pred_outputs, show_progress="hidden")
        run_dd.input(show_run, run_dd, run_outputs).then(show_predictions, [run_dd, pass_dd, wrong_only],
                                                         pred_outputs)
        for trigger in (pass_dd.input, wrong_only.input):
            trigger(show_predictions, [run_dd, pass_dd, wrong_only], pred_outputs)

        def show_sample(run_id: str | None, pass_name: str | None, records: list[dict], evt: gr.SelectData):
            row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
            if not records or row is None or row >= len(records):
                return None, ""
            record = records[row]
            run = source.board.run(run_id) or {}
            image, where = preds.load_image(record, run, pass_name or "")
            text = (f"id: {record.get('id', '')}\nquestion: {record.get('question', '')}\n"
                    f"prediction: {record.get('prediction', '')}\nreference: {record.get('reference', '')}\n"
                    f"image: {where}")
            return image, text

        pred_df.select(show_sample, [run_dd, pass_dd, records_state], [sample_image, sample_text])

        def pick_run(evt: gr.SelectData) -> list[Any]:
            row = evt.row_value or []
            run_id = row[-1] if row else None
            if not run_id or source.board.run(run_id) is None:
                return [gr.update(), gr.update()]
            return [gr.update(value=run_id), gr.Tabs(selected="run")]

        for *_, table, _ in tab_widgets:
            # the row's run page opens and renders even when that run is already the selected one
            table.select(pick_run, None, [run_dd, tabs]).then(show_run, run_dd, run_outputs).then(
                show_predictions, [run_dd, pass_dd, wrong_only], pred_outputs)

        if source.writable:
            def on_submit(path: str | None, request: gr.Request) -> list[Any]:
                from harness.core.errors import HarnessError
                from leaderboard.submit import read_submission, submit_bytes

                if not path:
                    return ["Choose a results file first.", gr.update()]
                try:
                    try:
                        data = read_submission(path)
                    finally:
                        _discard_upload(path)  # Gradio would keep every upload, refused ones too, forever
                    outcome = submit_bytes(data, source.store(), source=Path(path).name,
                                           submitter=_submitter(request))
                except HarnessError as exc:
                    return [f"Rejected: {exc}", gr.update()]
                except Exception as exc:  # never a bare "Error" or a lost pending table
                    log.exception("submission failed")
                    return [f"Rejected: {Path(path).name}: could not be read ({type(exc).__name__})", gr.update()]
                current = source.reload()
                lines = [f"Pending approval: run {run_id}" for run_id in outcome.stored]
                lines += [f"Rejected: {line}" for line in outcome.rejected]
                return ["\n".join(lines), _frame_update(pending_table(current))]

            submit_btn.click(on_submit, upload, [submit_msg, pending_df])
    return demo


def _discard_upload(path: str) -> None:
    """Delete an uploaded file once read, and the per-upload folder Gradio made for it when now empty."""
    upload = Path(path)
    try:
        upload.unlink(missing_ok=True)
        upload.parent.rmdir()
    except OSError:  # the folder holds other files (or is gone): leave it
        pass


def _submitter(request: gr.Request | None) -> str:
    """Who submits, for the rate limit: the signed-in user on a Space, else the client address."""
    if request is None:
        return "unknown"
    user = getattr(request, "username", None)
    if user:
        return f"user:{user}"
    client = getattr(request, "client", None)
    return f"ip:{getattr(client, 'host', None) or 'unknown'}"


def _run_view(board: Board, run_id: str | None) -> tuple[pd.DataFrame, dict[str, Any] | None, list[str]]:
    run = board.run(run_id) if run_id else None
    if run is None:
        return run_results(board, ""), None, []
    # a local path in the config (a model folder) shows as its last part, as in an exported snapshot
    info = scrub_paths({k: v for k, v in run.items() if k not in ("predictions_dir", "fingerprint")})
    return run_results(board, run["run_id"]), info, list(preds.prediction_files(run))


def _docs_links(board: Board) -> str:
    """Where the format is described: the guide at the foot of the tab (the docs' own text), and the docs
    online when the harness's repository URL is known."""
    local = "[the submission guide](#lb-guide) below, from the docs" if board.guide else "`docs/leaderboard.md` in the harness"
    online = docs_url(board.harness_url)
    return local + (f", or [docs/leaderboard.md]({online}/leaderboard.md#submissions) online" if online else "")


def run_provenance_text(board: Board, run_id: str | None) -> str:
    """The Run page's provenance lines (``data.provenance_lines``), as plain text: they quote submitted names."""
    run = board.run(run_id) if run_id else None
    return "\n".join(provenance_lines(board, run)) if run is not None else ""


def updated_line(board: Board) -> str:
    stamp = last_updated(board)
    runs = len(board.approved_runs())
    return f"Last updated: **{stamp}** · {runs} approved runs" if stamp else "No approved runs yet."


def _run_choices(board: Board) -> list[tuple[str, str]]:
    runs = sorted(board.approved_runs(), key=lambda r: str(r.get("created_at") or ""), reverse=True)
    return [(f"{r.get('model')} · {r.get('method') or 'base'} · "
             f"{'' if train_seed(r) is None else f'seed {train_seed(r)} · '}{r['run_id']}", r["run_id"]) for r in runs]


def _md_text(value: Any) -> str:
    """Registry text as literal markdown (descriptions are ours, but stay inert anyway)."""
    import html

    return html.escape(str(value or ""), quote=False).replace("|", "\\|").replace("[", "\\[").replace("]", "\\]")


def about_markdown(board: Board) -> str:
    """Benchmark cards (from the task and metric registries), the models on the board, a last-updated
    stamp and BibTeX for the harness, each benchmark and each method (``cite.bibliography``)."""
    runs = board.approved_runs()
    stamp = last_updated(board) or "no runs yet"
    lines = ["## About", f"Last updated: **{_md_text(stamp)}** (newest approved run). "
             f"{len(runs)} approved runs.", "", "### Benchmarks"]
    if not board.cards:
        lines.append("No benchmark cards in this copy.")
    for card in board.cards:
        n = card.get("test_n")
        lines += ["", f"#### {_md_text(card['task'])} ({_md_text(card['family'])}, version {_md_text(card['version'])})",
                  _md_text(card["description"]), "",
                  f"- Splits: {', '.join(card['splits'])}; test n: {n if n else 'unknown'}"
                  + (f" (from {card['n_source']})" if n else ""),
                  f"- Loader: `{_md_text(card['loader'])}`",
                  f"- Source: {_md_text(card['citation']) or 'generated by the harness (cite the harness)'}", "",
                  "| metric | scoring rule | better | unit | code |",
                  "| --- | --- | --- | --- | --- |"]
        for metric in card["metrics"]:
            lines.append(f"| {_md_text(metric['name'])} | {_md_text(metric['description'])} | "
                         f"{'higher' if metric['higher_is_better'] else 'lower'} | {metric['unit']} | "
                         f"`{_md_text(metric['code'])}` |")
    lines += ["", "### Models", "| model | method | seed | run id | base run | params | precision | licence | link "
              "| submitted |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for run in sorted(runs, key=lambda r: str(r.get("created_at") or ""), reverse=True):
        config = public_run(run)["config"]  # one shape for store runs and snapshot runs (precision, card)
        card = config.get("card") if isinstance(config.get("card"), dict) else {}
        url = str(card.get("model_url") or "")
        link = f"[model card]({url})" if url.startswith("https://") and not any(c in url for c in " ()<>[]") else ""
        params = _params(card.get("params"), run.get("run_id"))
        lines.append(
            f"| {_md_text(run.get('model'))} | {_md_text(run.get('method') or 'base')} | "
            f"{'' if train_seed(run) is None else train_seed(run)} | {_md_text(run['run_id'])} | "
            f"{_md_text(base_run_id(board, run) or '')} | {f'{params / 1e9:.1f}B' if params else ''} | "
            f"{_md_text(card.get('precision') or config.get('precision') or '')} | {_md_text(card.get('license') or '')} "
            f"| {link} | {_md_text(str(run.get('created_at') or '')[:10])} |")
    cites = bibliography(board)
    lines += ["", "### Citation", "The harness:", "```bibtex", cites["harness"], "```"]
    lines += ["", "The benchmarks (the synthetic tasks are the harness's own):", "```bibtex", cites["benchmarks"],
              "```"] if cites["benchmarks"] else []
    lines += ["", "The methods (those on the board first):", "```bibtex", cites["methods"], "```"] \
        if cites["methods"] else []
    return "\n".join(lines)


def _params(value: Any, run_id: Any) -> float | None:
    """A card's parameter count, or None (blank) for a value stored before submissions were validated."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        log.warning("run %s: card.params %.40r is not a positive number; shown blank", run_id, value)
        return None
    return value


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int | None = None, *, block: bool = True) -> Any:
    """Start the server (``block=False`` returns at once; close with ``demo.close()``); ``demo.server_port``
    is the port it took."""
    return demo.launch(server_name=host, server_port=port, prevent_thread_lock=not block, quiet=True,
                       css=CSS, max_file_size=MAX_UPLOAD_BYTES, footer_links=[], show_error=False)


__all__ = ["ID_COLUMNS", "BoardSource", "about_markdown", "build_app", "launch", "render_tab"]
