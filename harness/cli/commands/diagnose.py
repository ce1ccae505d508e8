"""``harness diagnose``: the measured properties of a base model on the synthetic suite.

Does the lesion evidence reach the language model (linear probes on its image tokens), can the model read
it (side and kind when a report names a lesion), does the text prior still win (how often reports name the
lesion while VQA sees it), and can the image move it (log p(true report) with the lesion erased or noised).
Definitions and targets: docs/testbed.md#diagnose.

Examples::

    harness diagnose --model testbed
    harness diagnose --model testbed --format json > testbed.json
    harness diagnose --model ./my-model --cases 500 --check     # exit 1 when a target is missed
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING, fields

EPILOG = __doc__.split("Examples::", 1)[1]


def register(subparsers: argparse._SubParsersAction) -> None:
    from harness.cli.common import add_progress_options
    from harness.experiments.diagnose import DiagnoseConfig

    parser = subparsers.add_parser(
        "diagnose", help="a base model's measured properties: sees the lesion? reads it? does its image move it?",
        description=__doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[1],
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", default="testbed",
                        help="built-in name (testbed, tiny) or a LLaVA-style model folder (default: testbed)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda when available)")
    for f in fields(DiagnoseConfig):
        default = f.default if f.default is not MISSING else None
        parser.add_argument("--" + f.name.replace("_", "-"), dest=f"cfg_{f.name}", default=default,
                            type=type(default), help=f"{f.metadata.get('help', '')} (default: {default})")
    parser.add_argument("--check", action="store_true", help="exit 1 when a property misses its target")
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    add_progress_options(parser)
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from harness.cli.common import format_table, print_json, stdout_for_data
    from harness.experiments.diagnose import DiagnoseConfig, diagnose
    from harness.models import load_model

    config = DiagnoseConfig(**{k[4:]: v for k, v in vars(args).items() if k.startswith("cfg_")})
    if args.model.startswith("openai:"):
        from harness.core.errors import HarnessError

        raise HarnessError("harness diagnose reads a model's image tokens and log-probabilities: it needs a local "
                           "model (a built-in name or a folder), not an endpoint")
    with stdout_for_data(args.format == "json"):  # only the JSON on stdout: library banners go to stderr
        model = load_model(args.model, device=args.device)
        result = diagnose(model, config, progress=not getattr(args, "no_progress", False))
    missed = [name for name, t in result["targets"].items() if not t["met"]]
    if args.format == "json":
        print_json(result)
    else:
        rows = []
        for name, value in result["properties"].items():
            target = result["targets"].get(name)
            rows.append({"property": name, "value": round(value, 3),
                         "target": target["target"] if target else "-",
                         "met": ("yes" if target["met"] else "NO") if target else "-"})
        print(format_table(rows))
        details = result["details"]
        print(f"{details['cases']} test cases ({details['lesion_cases']} with lesions, "
              f"{details['one_lesion_cases']} with one); probes fit on {details['probe_train_cases']} sft cases; "
              f"margins are log p(true report) in nats, median over lesion cases")
    return 1 if args.check and missed else 0
