"""``harness eval``: evaluate a model on tasks, print metrics with 95% intervals, store the run.

Example::

    harness eval --model tiny --tasks synth_vqa,synth_report
    harness eval --model tiny --tasks vqa_rad --data-dir ../shared/data --image-ablation blank
    accelerate launch "$(which harness)" eval --model ./my-llava --tasks vqa_rad,slake   # sharded
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import MISSING, fields

from harness.cli.common import (
    add_data_dir_option,
    add_format_option,
    add_progress_options,
    add_task_option_option,
    add_tasks_option,
    format_table,
    print_json,
    stdout_for_data,
)
from harness.cli.config_file import add_config_option
from harness.evaluation.config import ABLATIONS, EvalConfig

EXAMPLE = """examples:
  harness eval --model tiny --tasks synth_vqa,synth_report
  harness eval --model tiny --tasks vqa_rad --data-dir ../shared/data --limit 50 --image-ablation blank
  harness eval --model tiny --tasks vqa_rad --run-id 20250101-120000-abcdef   # resume an interrupted run
  harness eval --model openai:gpt-4o-mini --tasks vqa_rad --timeout 30 --concurrency 8 --max-retries 3
  harness eval --model tiny --tasks vqa_rad --data-dir ../shared/data --task-option vqa_rad.source=osf
  harness eval --config RUN_DIR/config.yaml     # rerun an evaluation from the config saved beside its run.json
the run id is printed when the evaluation starts; a killed evaluation resumes under it with --run-id
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate a model on tasks (batched, resumable) and store the results",
        description=__doc__.split("\n\n")[0],
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_option(parser)
    parser.add_argument("--model", required=True,
                        help="registered name (tiny), model folder, 'hf:<hub id>', '<family>:<folder>' or 'openai:<model>'")
    add_tasks_option(parser, required=True)
    add_task_option_option(parser)
    add_data_dir_option(parser)
    _add_config_options(parser)
    parser.add_argument("--run-id", default=None, help="resume (or re-score) this run instead of starting a new one")
    parser.add_argument("--output-dir", default=None, help="run directory (default: $HARNESS_HOME/runs/<run id>)")
    parser.add_argument("--store", default=None, help="results database (default: $HARNESS_STORE or $HARNESS_HOME)")
    parser.add_argument("--no-store", action="store_true", help="do not write the results database")
    parser.add_argument("--device", default=None, help="torch device for local models (default: cuda if present)")
    parser.add_argument("--dtype", default=None, help="weights dtype for local models: auto, bf16, fp16, fp32")
    parser.add_argument("--adapter", default=None, help="a peft LoRA adapter folder to apply to a local model")
    endpoint = parser.add_argument_group("openai:<model> endpoints (keys come from $OPENAI_API_KEY only)")
    endpoint.add_argument("--timeout", type=float, default=None, help="seconds to wait for one answer (default 60)")
    endpoint.add_argument("--concurrency", type=int, default=None, help="requests in flight at once (default 4)")
    endpoint.add_argument("--max-retries", type=int, default=None,
                          help="retries after a 429, 5xx, time-out or dropped connection (default 5)")
    add_progress_options(parser)
    add_format_option(parser)
    parser.set_defaults(func=handle)


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    """One flag per ``EvalConfig`` field, with its default and help text."""
    for f in fields(EvalConfig):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not MISSING else None
        help_text = f.metadata.get("help", "").replace("%", "%%")
        kwargs = {"default": default, "help": f"{help_text} (default: {default})"}
        if f.type in (bool, "bool"):  # an on/off switch: no value, no metavar
            parser.add_argument(flag, dest=f"cfg_{f.name}", action="store_true", **kwargs)
            continue
        if f.name == "image_ablation":
            kwargs["choices"] = ABLATIONS
        elif f.type in (float, "float"):
            kwargs["type"] = float
        elif f.name != "split":
            kwargs["type"] = int
        parser.add_argument(flag, dest=f"cfg_{f.name}", metavar=f.name.split("_")[-1].upper(), **kwargs)


def _endpoint_options(args: argparse.Namespace) -> dict:
    """``--timeout``, ``--concurrency``, ``--max-retries``: options of an ``openai:`` model only."""
    given = {name: getattr(args, name) for name in ("timeout", "concurrency", "max_retries")
             if getattr(args, name) is not None}
    if given and not args.model.startswith("openai:"):
        from harness.core.errors import HarnessError

        flags = ", ".join("--" + n.replace("_", "-") for n in given)
        raise HarnessError(f"{flags}: only for an openai:<model> endpoint, not '{args.model}'")
    return given


def _check_model_spec(spec: str) -> None:
    """An unknown model name fails now (with suggestions), before the data loads; loading comes later."""
    from pathlib import Path

    from harness.core.errors import UnknownNameError
    from harness.models.hf import FAMILIES
    from harness.models.registry import MODELS
    from harness.models.resolve import _looks_like_hub_id, _unknown_message

    prefix, sep, rest = spec.partition(":")
    if (sep and rest and (prefix in ("openai", "hf") or prefix in FAMILIES)) or spec in MODELS \
            or Path(spec).expanduser().exists() or _looks_like_hub_id(spec):
        return
    raise UnknownNameError(_unknown_message(spec, [n for n in MODELS.names() if n != "hf"]))


def handle(args: argparse.Namespace) -> int:
    with stdout_for_data(args.format == "json"):  # library banners go to stderr: stdout is the JSON only
        config, result = _evaluate(args)
    if not result.is_main:
        return 0
    if args.format == "json":
        print_json({"run_id": result.run_id, "run_dir": str(result.run_dir), "units": "display (x100 for rates)",
                    "results": json_rows(result)})
        return 0
    summary = result.summary()
    print(f"run {result.run_id}  model {result.model.get('name')}")
    print(format_table(summary))
    if config.image_ablation:
        print(f"drop: metric with images minus metric with '{config.image_ablation}' images "
              "(positive = the model uses the image)")
    print(f"predictions: {result.run_dir / 'predictions'}")
    if result.stored_in is not None:
        print(f"stored in: {result.stored_in}")
    return 0


def _evaluate(args: argparse.Namespace):
    from harness.cli.common import task_options_from_args
    from harness.tasks.task_options import task_options

    config = EvalConfig(**{f.name: getattr(args, f"cfg_{f.name}") for f in fields(EvalConfig)})
    tasks = args.tasks
    options = task_options_from_args(args, tasks)
    with task_options(options):  # every get_task below, the engine's included, sees them
        config, result = _evaluate_tasks(args, config, tasks, options)
    if result.is_main:
        from harness.cli.config_file import save_effective_config

        save_effective_config(args, result.run_dir, "eval")  # beside run.json: reruns this evaluation
    return config, result


def _evaluate_tasks(args: argparse.Namespace, config: EvalConfig, tasks: list[str], options: dict):
    import logging
    from contextlib import nullcontext

    from harness.core.errors import HarnessError
    from harness.core.options import shown
    from harness.core.paths import check_run_id, run_lock
    from harness.evaluation import evaluate
    from harness.evaluation.distributed import (
        current_process,
        held_by_main,
        local_rank_from_env,
        world_size_from_env,
    )
    from harness.evaluation.engine import load_task_data
    from harness.models import load_model
    from harness.results.store import new_run_id
    from harness.tasks import get_task

    run_id = check_run_id(args.run_id)
    endpoint = _endpoint_options(args)
    _check_model_spec(args.model)
    task_objects = [get_task(name) for name in tasks]  # unknown names fail (with suggestions)
    for task in task_objects:  # every task's split, before any task's data is read
        if config.split not in task.splits:
            raise HarnessError(f"--split {shown(config.split)}: task '{task.name}' has no such split "
                               f"(splits: {', '.join(task.splits)})")
    data = load_task_data(task_objects, config, args.data_dir)  # and bad data, before the model loads
    device = args.device
    if device is None and world_size_from_env() > 1:
        import torch

        device = f"cuda:{local_rank_from_env()}" if torch.cuda.is_available() else "cpu"
    process = current_process()
    run_id = process.broadcast(run_id or new_run_id())
    resume = _resume_flags(run_id, args.output_dir)
    # a run folder of its own is held before the model loads: a second launch on the same id fails at once
    with held_by_main(process, lambda: run_lock(run_id)) if args.output_dir is None else nullcontext():
        if process.is_main:
            print(f"run {run_id}: evaluating {args.model} on {', '.join(tasks)} (resume with {resume})",
                  file=sys.stderr)
            logging.getLogger("harness.eval").info("run %s started", run_id)
        from harness.cli.commands.train import checked_load

        try:
            model = checked_load(args.model, load_model, args.model, device=device, dtype=args.dtype,
                                 adapter=args.adapter, **endpoint)
            result = evaluate(
                model, tasks, data_dir=args.data_dir, output_dir=args.output_dir,
                store=False if args.no_store else args.store, run_id=run_id,
                run_config={"model_spec": args.model, "data_dir_given": args.data_dir is not None,
                            **({"task_options": options} if options else {})},
                config=config, process=process, progress=True, task_data=data,
            )
        except KeyboardInterrupt:
            # a new evaluation gets a new id: "rerun the same command" would start over
            raise HarnessError(f"interrupted: rerun with {resume} to resume") from None
    return config, result


def _resume_flags(run_id: str, output_dir: str | None) -> str:
    """The flags that resume this evaluation: its run id, and its folder when it is not the default one."""
    import shlex

    return f"--run-id {run_id}" + (f" --output-dir {shlex.quote(output_dir)}" if output_dir is not None else "")


def json_rows(result) -> list[dict]:
    """One row per task and metric with numbers in display units: value, ci_low, ci_high (null when there is no
    interval), n, higher_is_better; with an image ablation also the ablated value and the drop."""
    from harness.results.compare import display_scale

    def scaled(value, scale):
        return None if value is None or value != value else float(value) * scale

    rows = []
    for task in result.tasks.values():
        for name, m in task.metrics.items():
            scale = display_scale(name)
            row = {"task": task.task, "metric": name, "value": scaled(m.value, scale), "ci_low": scaled(m.ci_low, scale),
                   "ci_high": scaled(m.ci_high, scale), "n": m.n, "higher_is_better": m.higher_is_better}
            if task.ablation:
                ablated = task.ablated_metrics.get(name)
                row["ablation"] = task.ablation
                row["ablated_value"] = None if ablated is None else scaled(ablated.value, scale)
                row["drop"] = scaled(task.drop(name), scale)
            rows.append(row)
    return rows
