"""The Gradio leaderboard: comparison tabs, plots, a run page and (over a store) submissions.

``build_app(store=PATH)`` reads the SQLite results store and accepts uploads (stored as pending);
``build_app(snapshot=PATH)`` reads a JSON snapshot read-only (an exported Space). Submitter strings are
only ever shown in text cells (Dataframe ``str`` columns, textboxes, JSON) or escaped SVG, never as HTML
or markdown.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
import pandas as pd  # noqa: E402

from leaderboard import plots  # noqa: E402
from leaderboard import predictions as preds  # noqa: E402
from leaderboard.data import (  # noqa: E402
    AVERAGE,
    ID_COLUMNS,
    RUN_ID,
    TABS,
    Board,
    Filters,
    choices,
    method_deltas,
    pending_table,
    run_results,
    wide_table,
)

log = logging.getLogger(__name__)

TITLE = "Medical VLM preference-optimization leaderboard"
INTRO = (
    f"# {TITLE}\n"
    "Models aligned with MMedPO, DPO and their peers, scored by the harness on Med-VQA and report "
    "generation. Values are shown in display units (percent for rates) with bootstrap 95% intervals; "
    "**Δ** columns compare each run with its base model's own run on the same task. "
    "Submissions appear after a maintainer approves them."
)
ORDERS = ("best first", "descending", "ascending")
MAX_UPLOAD_BYTES = 1_000_000  # the schema's cap (leaderboard.schema.MAX_BYTES); checked again there
CSS = ".lb-plot svg {background: white; border-radius: 6px}"


class BoardSource:
    """Loads the board from a store or a snapshot; keeps the last load for cheap filter changes."""

    def __init__(self, store: str | Path | None = None, snapshot: str | Path | None = None):
        if (store is None) == (snapshot is None):
            raise ValueError("give exactly one of store or snapshot")
        self.store_path, self.snapshot = store, snapshot
        self._lock = threading.Lock()
        self._meta: tuple[dict, dict] | None = None
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
            store = self.store()
            runs = [r for r in store.runs() if r.get("status") != "rejected"]
            results = store.results()
            board = Board(runs, results)
            if self._meta is None:  # registries do not change while the app runs; method imports are slow
                from leaderboard.data import _harness_metadata

                families, _, citations = _harness_metadata([])
                self._meta = (families, citations)
            from leaderboard.data import _metric_info

            board.task_families, board.citations = self._meta
            board.metrics = {m: _metric_info(m, results) for m in {r["metric"] for r in results}}
        with self._lock:
            self._board = board
        return board

    @property
    def board(self) -> Board:
        with self._lock:
            return self._board


def _datatypes(frame: pd.DataFrame) -> list[str]:
    return ["number" if pd.api.types.is_numeric_dtype(frame[c]) else "str" for c in frame.columns]


def _frame_update(frame: pd.DataFrame) -> dict[str, Any]:
    # NaN shows as an empty cell; every submitter string stays a 'str' cell (rendered as text)
    shown = frame.astype(object).where(frame.notna(), None)
    return gr.update(value=shown, headers=list(frame.columns), datatype=_datatypes(frame))


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
    tab = TABS[tab_index]
    descending = None if order == ORDERS[0] else order == "descending"
    frame = wide_table(board, tab, filters, columns, show_ci=show_ci, show_delta=show_delta, sort_by=sort_by,
                       descending=descending)
    shown = [c for c in frame.columns if "/" in c and not c.endswith((" CI", " Δ"))]
    svg = plots.task_bars(frame, shown, _ci_map(board, frame, shown), f"{tab.title}: top runs, 95% intervals")
    return frame, svg


def build_app(store: str | Path | None = None, snapshot: str | Path | None = None) -> gr.Blocks:
    source = BoardSource(store=store, snapshot=snapshot)
    board = source.board
    opts = choices(board)
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(INTRO)
        with gr.Row():
            search = gr.Textbox(label="Search", placeholder="model, method, base model or run id", scale=2,
                                elem_id="lb-search")
            base_dd = gr.Dropdown(opts["base_models"], multiselect=True, label="Base model", elem_id="lb-base")
            method_dd = gr.Dropdown(opts["methods"], multiselect=True, label="Method", elem_id="lb-method")
            task_dd = gr.Dropdown(opts["tasks"], multiselect=True, label="Task", elem_id="lb-task")
            type_dd = gr.Dropdown(opts["model_types"], multiselect=True, label="Model type", elem_id="lb-type")
        with gr.Row():
            show_ci = gr.Checkbox(False, label="Show 95% intervals")
            show_delta = gr.Checkbox(True, label="Show Δ vs base model")
            refresh = gr.Button("Refresh", elem_id="lb-refresh", scale=0)
        filter_inputs = [search, base_dd, method_dd, task_dd, type_dd, show_ci, show_delta]
        tab_widgets = []
        with gr.Tabs():
            for i, tab in enumerate(TABS):
                with gr.Tab(tab.title, id=tab.key):
                    cols = gr.CheckboxGroup(board.columns(tab), value=board.default_columns(tab), label="Columns")
                    with gr.Row():
                        sort = gr.Dropdown([AVERAGE, *board.columns(tab)], value=AVERAGE, label="Sort by")
                        order = gr.Radio(list(ORDERS), value=ORDERS[0], label="Order")
                    frame, svg = render_tab(board, i, Filters(), None, AVERAGE, ORDERS[0], False, True)
                    table = gr.Dataframe(frame, datatype=_datatypes(frame), interactive=False, wrap=True,
                                         elem_id=f"lb-table-{tab.key}", label=f"{tab.title} (approved runs)",
                                         max_height=520)
                    plot = gr.HTML(svg, elem_classes="lb-plot")
                    tab_widgets.append((cols, sort, order, table, plot))
            with gr.Tab("Methods", id="methods"):
                metric_names = sorted({r["metric"] for r in board.results if "@" not in r["metric"]})
                first = "closed_accuracy" if "closed_accuracy" in metric_names else (metric_names or [None])[0]
                delta_metric = gr.Dropdown(metric_names, value=first, label="Δ on metric")
                methods_table = gr.Dataframe(interactive=False, wrap=True, elem_id="lb-methods",
                                             label="Methods, their citations and mean Δ vs base model")
                methods_plot = gr.HTML(elem_classes="lb-plot")
            with gr.Tab("Run", id="run"):
                run_dd = gr.Dropdown(_run_choices(board), label="Run", elem_id="lb-run")
                run_results_df = gr.Dataframe(interactive=False, label="Results")
                run_config = gr.JSON(label="Config and provenance")
                with gr.Row():
                    pass_dd = gr.Dropdown([], label="Predictions", scale=2)
                    wrong_only = gr.Checkbox(True, label="Wrong answers only")
                pred_df = gr.Dataframe(interactive=False, wrap=True, label="Per-sample predictions (select a row)",
                                       max_height=400)
                records_state = gr.State([])
                with gr.Row():
                    sample_image = gr.Image(label="Image", type="pil", height=300, interactive=False,
                                            elem_id="lb-sample-image")
                    sample_text = gr.Textbox(label="Sample", lines=10, interactive=False, elem_id="lb-sample")
            with gr.Tab("Submit", id="submit"):
                if source.writable:
                    gr.Markdown("Upload a `harness-results/1` JSON file (see the docs for the schema). "
                                "It is validated, then held as **pending** until a maintainer approves it.")
                    upload = gr.File(label="Results file", file_types=[".json"], type="filepath",
                                     elem_id="lb-upload")
                    submit_btn = gr.Button("Submit", variant="primary", elem_id="lb-submit")
                    submit_msg = gr.Textbox(label="Outcome", interactive=False, elem_id="lb-submit-msg")
                else:
                    gr.Markdown("This copy is a read-only snapshot. Submit with `harness submit FILE` "
                                "against the maintainers' store.")
                pending_df = gr.Dataframe(pending_table(board), interactive=False, elem_id="lb-pending",
                                          label="Pending submissions", datatype="str")

        def filters_of(values: list[Any]) -> Filters:
            q, bases, methods, tasks, types = values[:5]
            return Filters(q or "", bases or [], methods or [], tasks or [], types or [])

        def update_tables(*values: Any) -> list[Any]:
            current = source.board
            filters = filters_of(list(values))
            ci, delta = values[5], values[6]
            out = []
            for i in range(len(TABS)):
                cols, sort, order = values[7 + 3 * i: 10 + 3 * i]
                frame, svg = render_tab(current, i, filters, cols, sort, order, ci, delta)
                out += [_frame_update(frame), svg]
            return out

        tab_inputs = [w for cols, sort, order, _, _ in tab_widgets for w in (cols, sort, order)]
        tab_outputs = [w for *_, table, plot in tab_widgets for w in (table, plot)]
        for widget in [*filter_inputs, *tab_inputs]:
            event = widget.change
            # always_last: while typing, the last keystroke's query wins even if an update is running
            event(update_tables, [*filter_inputs, *tab_inputs], tab_outputs, show_progress="hidden",
                  trigger_mode="always_last")

        def update_methods(metric: str | None) -> list[Any]:
            current = source.board
            if not metric:
                return [_frame_update(method_deltas(current, "")), plots.delta_bars([], [], "Method deltas")]
            frame = method_deltas(current, metric)
            svg = plots.delta_bars(frame["Method"].tolist(), frame[frame.columns[1]].tolist(),
                                   f"Mean Δ {metric} against the base model (display units)")
            return [_frame_update(frame), svg]

        delta_metric.change(update_methods, delta_metric, [methods_table, methods_plot])

        def reload(*values: Any) -> list[Any]:
            current = source.reload()
            opts = choices(current)
            updates = [gr.update(choices=opts[k]) for k in ("base_models", "methods", "tasks", "model_types")]
            col_updates = []
            for i, tab in enumerate(TABS):
                cols = values[7 + 3 * i]
                available = current.columns(tab)
                keep = [c for c in (cols or []) if c in available] or current.default_columns(tab)
                col_updates += [gr.update(choices=available, value=keep),
                                gr.update(choices=[AVERAGE, *available])]
            return [*updates, *col_updates, _frame_update(pending_table(current)),
                    gr.update(choices=_run_choices(current))]

        reload_outputs = [base_dd, method_dd, task_dd, type_dd,
                          *[w for cols, sort, *_ in tab_widgets for w in (cols, sort)], pending_df, run_dd]
        for trigger in (refresh.click, demo.load):
            trigger(reload, [*filter_inputs, *tab_inputs], reload_outputs, show_progress="hidden").then(
                update_tables, [*filter_inputs, *tab_inputs], tab_outputs, show_progress="hidden").then(
                update_methods, delta_metric, [methods_table, methods_plot], show_progress="hidden")

        def show_run(run_id: str | None) -> list[Any]:
            current = source.board
            run = current.run(run_id) if run_id else None
            if run is None:
                return [_frame_update(run_results(current, "")), None, gr.update(choices=[], value=None)]
            info = {k: v for k, v in run.items() if k not in ("predictions_dir",)}
            passes = list(preds.prediction_files(run))
            return [_frame_update(run_results(current, run["run_id"])), info,
                    gr.update(choices=passes, value=passes[0] if passes else None)]

        run_dd.change(show_run, run_dd, [run_results_df, run_config, pass_dd])

        def show_predictions(run_id: str | None, pass_name: str | None, wrong: bool) -> list[Any]:
            run = source.board.run(run_id) if run_id else None
            path = preds.prediction_files(run).get(pass_name or "")
            records = preds.read_records(path) if path else []
            if wrong:
                records = [r for r in records if preds.is_correct(r) is False]
            return [_frame_update(preds.table(records)), records]

        for trigger in (pass_dd.change, wrong_only.change):
            trigger(show_predictions, [run_dd, pass_dd, wrong_only], [pred_df, records_state])

        def show_sample(run_id: str | None, pass_name: str | None, records: list[dict], evt: gr.SelectData):
            row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
            if not records or row is None or row >= len(records):
                return None, ""
            record = records[row]
            run = source.board.run(run_id) or {}
            path = preds.image_path(record, run, pass_name or "")
            image = None
            if path is not None:
                from PIL import Image

                try:
                    image = Image.open(path).convert("RGB")
                except OSError:
                    image = None
            text = (f"id: {record.get('id', '')}\nquestion: {record.get('question', '')}\n"
                    f"prediction: {record.get('prediction', '')}\nreference: {record.get('reference', '')}\n"
                    f"image: {path.name if path else 'not found'}")
            return image, text

        pred_df.select(show_sample, [run_dd, pass_dd, records_state], [sample_image, sample_text])

        def pick_run(evt: gr.SelectData) -> Any:
            row = evt.row_value or []
            return gr.update(value=row[-1]) if row else gr.update()

        for *_, table, _ in tab_widgets:
            table.select(pick_run, None, run_dd)

        if source.writable:
            def on_submit(path: str | None) -> list[Any]:
                from harness.errors import HarnessError
                from leaderboard.submit import read_submission, submit_bytes

                if not path:
                    return ["Choose a results file first.", gr.update()]
                try:
                    outcome = submit_bytes(read_submission(path), source.store(), source=Path(path).name)
                except HarnessError as exc:
                    return [f"Rejected: {exc}", gr.update()]
                current = source.reload()
                lines = [f"Pending approval: run {run_id}" for run_id in outcome.stored]
                lines += [f"Rejected: {line}" for line in outcome.rejected]
                return ["\n".join(lines), _frame_update(pending_table(current))]

            submit_btn.click(on_submit, upload, [submit_msg, pending_df])
    return demo


def _run_choices(board: Board) -> list[tuple[str, str]]:
    runs = sorted(board.approved_runs(), key=lambda r: str(r.get("created_at") or ""), reverse=True)
    return [(f"{r.get('model')} · {r.get('method') or 'base'} · {r['run_id']}", r["run_id"]) for r in runs]


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int | None = None, *, block: bool = True) -> Any:
    """Start the server (``block=False`` returns at once; close with ``demo.close()``)."""
    return demo.launch(server_name=host, server_port=port, prevent_thread_lock=not block, quiet=True,
                       css=CSS, max_file_size=MAX_UPLOAD_BYTES, footer_links=[], show_error=False)


__all__ = ["ID_COLUMNS", "BoardSource", "build_app", "launch", "render_tab"]
