"""``harness leaderboard``: serve the Gradio leaderboard, approve or reject submissions, export a Space.

Example::

    harness leaderboard serve --port 7860
    harness leaderboard approve --all
"""

from __future__ import annotations

import argparse

EXAMPLE = """examples:
  harness leaderboard serve --host 127.0.0.1 --port 7860   # browse the store at http://127.0.0.1:7860
  harness leaderboard approve 20250101-120000-abc123        # publish one pending submission
  harness leaderboard approve --all                         # publish every pending submission
  harness leaderboard pending                               # what waits for review: names, results, config, flags
  harness leaderboard reject 20250101-120000-abc123         # keep it off the board
  harness leaderboard export-space space/                   # app.py, requirements.txt, README.md, snapshot
"""


def _store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", default=None, help="results database (default: $HARNESS_STORE or $HARNESS_HOME)")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "leaderboard",
        help="serve the leaderboard, approve or reject submissions, export a Hugging Face Space",
        description=__doc__.split("\n\n")[0],
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="leaderboard_command", metavar="ACTION", required=True)

    serve = sub.add_parser("serve", help="start the Gradio app over the results store")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default: Gradio's, 7860 or the next free)")
    serve.add_argument("--studies", default=None,
                       help="folder of harness study outputs for the Studies tab (default: $HARNESS_HOME/studies)")
    _store_option(serve)
    serve.set_defaults(func=handle_serve)

    approve = sub.add_parser("approve", help="publish pending submissions")
    target = approve.add_mutually_exclusive_group(required=True)
    target.add_argument("run_id", nargs="?", help="run id (or a unique prefix) of a pending submission")
    target.add_argument("--all", action="store_true", help="approve every pending submission")
    approve.add_argument("--force", action="store_true",
                         help="also approve submissions flagged for claiming an existing model's name")
    _store_option(approve)
    approve.set_defaults(func=handle_approve)

    pending = sub.add_parser("pending", help="list pending submissions in full: names, results, config, "
                                             "provenance checks and flags (maintainers)")
    _store_option(pending)
    pending.set_defaults(func=handle_pending)

    reject = sub.add_parser("reject", help="keep a submission off the board (it stays stored as 'rejected')")
    reject.add_argument("run_id", help="run id or a unique prefix")
    _store_option(reject)
    reject.set_defaults(func=handle_reject)

    export = sub.add_parser("export-space", help="write a Hugging Face Space folder with the approved runs")
    export.add_argument("directory", help="output folder (created; an earlier export there is overwritten)")
    export.add_argument("--title", default="MedPO leaderboard", help="the Space's title")
    export.add_argument("--studies", default=None,
                        help="folder of harness study outputs to include (default: $HARNESS_HOME/studies)")
    _store_option(export)
    export.set_defaults(func=handle_export)


def handle_serve(args: argparse.Namespace) -> int:
    from harness.core.extras import require

    require("gradio", "leaderboard", "harness leaderboard serve")
    from harness.results import ResultsStore
    from leaderboard.app import build_app, launch
    from leaderboard.submit import leaderboard_secret

    store = ResultsStore(args.store)
    leaderboard_secret()  # uploads are hashed with it: made now (HARNESS_HOME, mode 0600) when missing
    demo = build_app(store=store.path, studies=args.studies or _default_studies())
    launch(demo, host=args.host, port=args.port, block=False)
    # the port Gradio actually bound (7860 may be taken, and then it moves on)
    print(f"serving {store.path.name} on http://{args.host}:{demo.server_port} (Ctrl-C stops)", flush=True)
    try:
        demo.block_thread()
    except KeyboardInterrupt:
        pass
    finally:
        demo.close()
    return 0


def _default_studies() -> str:
    from harness.core.paths import harness_home

    return str(harness_home() / "studies")


def handle_approve(args: argparse.Namespace) -> int:
    from harness.results import ResultsStore
    from leaderboard.submit import approve

    flagged: list[str] = []
    ids = approve(ResultsStore(args.store), None if args.all else [args.run_id], force=args.force, flagged=flagged)
    print(f"approved {len(ids)} run(s)" + (": " + ", ".join(ids) if ids else ""))
    for flag in flagged:
        print(f"flagged, left pending: {flag} (check it, then approve with --force or reject it)")
    return 0 if not flagged or ids or args.all else 2


def handle_pending(args: argparse.Namespace) -> int:
    from harness.results import ResultsStore
    from leaderboard.submit import pending_report

    store = ResultsStore(args.store)
    runs = store.runs(status="pending")
    for run in runs:
        print(pending_report(store, run))
    print(f"{len(runs)} pending run(s)")
    return 0


def handle_reject(args: argparse.Namespace) -> int:
    from harness.results import ResultsStore
    from leaderboard.submit import reject

    print(f"rejected {reject(ResultsStore(args.store), args.run_id)}")
    return 0


def handle_export(args: argparse.Namespace) -> int:
    from harness.results import ResultsStore
    from leaderboard.space import export_space

    folder = export_space(args.directory, ResultsStore(args.store), title=args.title,
                          studies=args.studies or _default_studies())
    print(f"wrote a Space to {folder}: run it with 'python app.py' inside the folder")
    return 0
