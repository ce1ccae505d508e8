"""Entry for the sharded-training tests (FSDP2, DeepSpeed), started by ``accelerate launch``: several
``harness train`` runs in one launch.

argv: JOURNAL RUN [--next RUN ...], each RUN the arguments of ``harness train`` (without ``train``),
optionally starting with ``--die-after-checkpoint N``: that run kills its own process (SIGKILL, on every
rank) in the first policy forward after checkpoint N is on disk, as a crash in the middle of a step would.

What each process saw goes to ``JOURNAL/<run>/rank<R>.json`` (the run's ``--output`` folder name): the
reference log-probs of every pair at every step, and which of the training core's writers it called.
One launch serves several runs because starting processes costs more than training the tiny model.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

from harness.cli import main
from harness.training import checkpoint, loop, reference

RANK = int(os.environ.get("RANK", "0"))


class Journal:
    """Records reference log-probs per pair id and the core's file writes, for one run in this process."""

    def __init__(self):
        self.reference: dict[str, list[dict[str, float]]] = {}
        self.writes: list[str] = []

    def groups(self, original):
        journal = self

        def wrapper(self, batch):
            out = original(self, batch)
            for i, pid in enumerate(batch.ids):
                journal.reference.setdefault(pid, []).append(
                    {name: float(values["sum"][i]) for name, values in out.items()})
            return out
        return wrapper

    def writer(self, original, label):
        def wrapper(*args, **kwargs):
            self.writes.append(label)
            return original(*args, **kwargs)
        return wrapper


def run(journal_dir: Path, args: list[str]) -> int:
    die_after = None
    if args[:1] == ["--die-after-checkpoint"]:
        die_after, args = int(args[1]), args[2:]
    journal = Journal()
    patches = {
        (reference.ModelReference, "groups"): journal.groups(reference.ModelReference.groups),
        (loop, "write_json"): journal.writer(loop.write_json, "train_config.json"),
        (loop, "write_jsonl"): journal.writer(loop.write_jsonl, "metrics.jsonl"),
        (loop, "atomic_dir"): journal.writer(loop.atomic_dir, "final weights"),
    }
    if die_after is not None:
        saved = checkpoint.save_checkpoint
        policy = loop.sequence_logps
        state = {"armed": False}

        def save_and_arm(output_dir, step, **kwargs):
            path = saved(output_dir, step, **kwargs)
            state["armed"] = state["armed"] or step == die_after
            return path

        def forward_or_die(model, batch, **kwargs):
            if state["armed"]:
                os.kill(os.getpid(), signal.SIGKILL)
            return policy(model, batch, **kwargs)

        patches[(loop.ckpt, "save_checkpoint")] = save_and_arm
        patches[(loop, "sequence_logps")] = forward_or_die
    originals = {key: getattr(*key) for key in patches}
    for (owner, name), value in patches.items():
        setattr(owner, name, value)
    try:
        code = main(["train", *args])
    finally:
        for (owner, name), value in originals.items():
            setattr(owner, name, value)
    out = Path(args[args.index("--output") + 1])
    folder = journal_dir / out.name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"rank{RANK}.json").write_text(json.dumps({"reference": journal.reference, "writes": journal.writes}))
    return code


if __name__ == "__main__":
    journal_dir, rest = Path(sys.argv[1]), sys.argv[2:]
    runs, current = [], []
    for arg in rest:
        if arg == "--next":
            runs.append(current)
            current = []
        else:
            current.append(arg)
    runs.append(current)
    for args in runs:
        code = run(journal_dir, args)
        if code:
            sys.exit(code)
