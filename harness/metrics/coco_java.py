"""The two Java tools of pycocoevalcap, driven efficiently: the PTB tokenizer and METEOR 1.5.

Both use the jars shipped inside the ``pycocoevalcap`` package with exactly the command lines
pycocoevalcap uses, so the tokens and METEOR scores are the same; what differs is only how they are
driven. Predictions and references are tokenized in ONE tokenizer run, and METEOR runs in ONE JVM per
scoring call whose input is written by a feeder thread while the output is read, so the JVM never waits
on a Python round trip per sample (pycocoevalcap writes a line, flushes, and blocks on the answer).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from harness.core.errors import HarnessError

log = logging.getLogger(__name__)

# pycocoevalcap's PTBTokenizer drops these tokens after tokenizing.
PUNCTUATIONS = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";"]
)


def java_path() -> str:
    """The ``java`` executable, or a one-line error saying what needs it."""
    java = shutil.which("java")
    if java is None:
        raise HarnessError(
            "Java was not found on PATH: the PTB tokenizer and METEOR (pycocoevalcap) need a Java runtime "
            "(Debian: apt-get install default-jre-headless)"
        )
    return java


def _package_dir(sub: str) -> Path:
    import pycocoevalcap

    # pycocoevalcap is a namespace package (no __init__.py), so use __path__, not __file__.
    return Path(next(iter(pycocoevalcap.__path__))).resolve() / sub


def ptb_tokenize(texts: Sequence[str]) -> list[str]:
    """Tokenize like ``pycocoevalcap.tokenizer.ptbtokenizer.PTBTokenizer``: lowercased PTB tokens joined by
    single spaces, punctuation tokens removed. One JVM for all texts."""
    if not texts:
        return []
    jar_dir = _package_dir("tokenizer")
    # pycocoevalcap replaces only "\n"; "\r" would also split a line in Java and misalign every later text.
    body = "\n".join(str(t).replace("\n", " ").replace("\r", " ") for t in texts)
    with tempfile.TemporaryDirectory(prefix="harness-ptb-") as tmp:
        src = Path(tmp) / "sentences.txt"
        src.write_bytes(body.encode())
        cmd = [java_path(), "-cp", "stanford-corenlp-3.4.1.jar", "edu.stanford.nlp.process.PTBTokenizer",
               "-preserveLines", "-lowerCase", str(src)]
        proc = subprocess.run(cmd, cwd=jar_dir, capture_output=True, check=False)
    if proc.returncode != 0:
        raise HarnessError(f"PTB tokenizer failed (exit {proc.returncode}): {proc.stderr.decode()[-300:].strip()}")
    lines = proc.stdout.decode().split("\n")
    if len(lines) < len(texts):
        raise HarnessError(f"PTB tokenizer returned {len(lines)} lines for {len(texts)} texts")
    return [" ".join(w for w in line.rstrip().split(" ") if w not in PUNCTUATIONS) for line in lines[: len(texts)]]


class MeteorJVM:
    """One METEOR 1.5 process (``-l en -norm``, as pycocoevalcap) for one scoring call.

    Start it early (:meth:`start` returns at once; loading the paraphrase table takes seconds) and call
    :meth:`score` when the tokens are ready. Use as a context manager so the process always ends.
    """

    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None

    def start(self) -> MeteorJVM:
        cmd = [java_path(), "-jar", "-Xmx2G", "meteor-1.5.jar", "-", "-", "-stdio", "-l", "en", "-norm"]
        self._proc = subprocess.Popen(
            cmd, cwd=_package_dir("meteor"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        return self

    def __enter__(self) -> MeteorJVM:
        return self.start() if self._proc is None else self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._proc is not None:
            if self._proc.stdin and not self._proc.stdin.closed:
                try:
                    self._proc.stdin.close()
                except BrokenPipeError:
                    pass
            self._proc.kill()
            self._proc.wait()
            self._proc = None

    def _feed(self, lines: list[str], errors: list[BaseException]) -> None:
        try:
            assert self._proc is not None and self._proc.stdin is not None
            self._proc.stdin.write("".join(lines).encode())
            self._proc.stdin.flush()
        except BaseException as exc:  # reported by the reading side
            errors.append(exc)

    def _readline(self) -> str:
        assert self._proc is not None and self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise HarnessError("METEOR (Java) ended unexpectedly; is there enough memory for -Xmx2G?")
        return line.decode().strip()

    def score(self, hypotheses: Sequence[str], references: Sequence[str]) -> tuple[float, list[float], list[str]]:
        """(corpus score, per-sample scores, per-sample stats lines), one reference per hypothesis."""
        if self._proc is None:
            self.start()
        if not hypotheses:
            return float("nan"), [], []
        # Same SCORE line as pycocoevalcap's Meteor._stat. A segment's statistics depend only on its
        # (reference, hypothesis) text, so repeated pairs (template reports) are aligned once.
        lines = [f"SCORE ||| {r} ||| {h.replace('|||', '').replace('  ', ' ')}\n" for h, r in zip(hypotheses, references)]
        unique = list(dict.fromkeys(lines))
        errors: list[BaseException] = []
        feeder = threading.Thread(target=self._feed, args=(unique, errors), daemon=True)
        feeder.start()
        unique_stats = {line: self._readline() for line in unique}
        feeder.join()
        if errors:
            raise HarnessError(f"could not write to METEOR (Java): {errors[0]}")
        stats = [unique_stats[line] for line in lines]
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(("EVAL ||| " + " ||| ".join(stats) + "\n").encode())
        self._proc.stdin.flush()
        per_sample = [float(self._readline()) for _ in stats]
        return float(self._readline()), per_sample, stats

