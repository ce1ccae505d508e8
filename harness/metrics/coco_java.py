"""The two Java tools of pycocoevalcap, driven efficiently: the PTB tokenizer and METEOR 1.5.

Both use the jars shipped inside the ``pycocoevalcap`` package with the arguments pycocoevalcap uses, so
the tokens and METEOR scores are the same; what differs is only how they are driven. Predictions and
references are tokenized in ONE tokenizer run, and METEOR runs in ONE JVM per scoring call, fed all its
segments at once (pycocoevalcap writes a line, flushes, and blocks on the answer).

METEOR runs a small driver class (``HarnessMeteor.java`` beside this module, compiled once with ``javac``
into ``HARNESS_HOME/java/``, keyed by its source and the jar's content). It speaks the jar's ``-stdio``
protocol and builds the scorer with the jar's own ``Meteor.createPropertiesFromArgs`` and constructors;
for each batch of segments it

- prepares each distinct text once (the scorer's own ``Normalizer`` call and lowercasing, which the jar
  would repeat for every segment the text appears in);
- loads only the paraphrase entries whose words all occur in the batch's normalized tokens, from an index
  of the paraphrase table built once per table (``HARNESS_HOME/java/meteor-paraphrase-*.idx``, keyed by the
  table's and the driver's content, ~87 MB, ~6 s to build). METEOR matches a paraphrase only when every
  word of both of its phrases is found in the two sentences, so the other entries can match nothing: the
  alignments are the same, and loading the whole table (5.3M entries, ~5 s) is skipped;
- aligns segments on ``HARNESS_METEOR_THREADS`` threads (default: the CPUs this process may use), each with
  a scorer copy made by the jar's resource-sharing constructor, and prints the answers in input order, so
  its output is byte-identical to ``-stdio``'s.

For calls of up to :data:`C1_MAX_SEGMENTS` segments the JVM compiles with its quick compiler only
(``-XX:TieredStopAtLevel=1``): on a 2-core machine the optimizing compiler's ~5 s of compile time costs
more than its faster code saves on 10,000 segments (Java 17 floating point is strict, so the numbers are
the same bit for bit). Without ``javac`` the jar's own ``-stdio`` main runs, as in pycocoevalcap.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
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


_DRIVER_CLASS = "HarnessMeteor"
# The driver's source ships beside this module; it is compiled on first use (see the module docstring).
_DRIVER_FILE = Path(__file__).with_name(f"{_DRIVER_CLASS}.java")
_JAVAC_FLAGS = ("--release", "8", "-nowarn")


def meteor_threads() -> int:
    """Threads METEOR aligns on: ``HARNESS_METEOR_THREADS`` if set, else the CPUs this process may use."""
    value = os.environ.get("HARNESS_METEOR_THREADS", "").strip()
    if value:
        try:
            threads = int(value)
        except ValueError:
            threads = 0
        if threads < 1:
            raise HarnessError(f"HARNESS_METEOR_THREADS={value!r}: expected a whole number >= 1")
        return threads
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _javac(java: str) -> str | None:
    sibling = Path(os.path.realpath(java)).with_name("javac")
    if sibling.is_file() and os.access(sibling, os.X_OK):
        return str(sibling)
    return shutil.which("javac")


@functools.cache
def _driver_key(jar: Path) -> str:
    digest = hashlib.sha256(_DRIVER_FILE.read_bytes())
    digest.update(" ".join(_JAVAC_FLAGS).encode())
    digest.update(jar.read_bytes())
    return digest.hexdigest()[:20]


def _java_dir() -> Path:
    from harness.core.paths import harness_home

    # absolute: the JVM runs in the jar's folder, so a relative HARNESS_HOME would miss the driver
    return Path(os.path.abspath(harness_home() / "java"))


def _driver_classpath(java: str, jar: Path) -> str | None:
    """The folder holding the compiled driver, compiled on first use; None when it cannot be built."""
    final = _java_dir() / f"meteor-threads-{_driver_key(jar)}"
    if (final / f"{_DRIVER_CLASS}.class").is_file():
        return str(final)
    javac = _javac(java)
    if javac is None:
        log.info("javac not found: METEOR runs the jar's own -stdio mode (one thread, whole paraphrase table)")
        return None
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-meteor-threads-", dir=final.parent))
    try:
        shutil.copyfile(_DRIVER_FILE, tmp / _DRIVER_FILE.name)
        proc = subprocess.run(
            [javac, *_JAVAC_FLAGS, "-cp", str(jar), "-d", str(tmp), str(tmp / _DRIVER_FILE.name)],
            capture_output=True, check=False,
        )
        if proc.returncode != 0:
            log.warning("could not compile the METEOR driver (javac exit %d): METEOR runs the jar's own -stdio "
                        "mode. %s", proc.returncode, proc.stderr.decode(errors="replace")[-300:].strip())
            return None
        try:
            tmp.rename(final)  # atomic; another process may have won the race, its folder is the same
        except OSError:
            if not (final / f"{_DRIVER_CLASS}.class").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(final)


@functools.cache
def _table_key(table: Path, driver: str) -> str:
    digest = hashlib.sha256(driver.encode())
    with table.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()[:20]


def _paraphrase_index(java: str, driver: str) -> str | None:
    """The paraphrase table's index (built on first use, ~6 s); None when it cannot be built."""
    table = _package_dir("meteor") / "data" / "paraphrase-en.gz"
    if not table.is_file():
        return None
    final = _java_dir() / f"meteor-paraphrase-{_table_key(table, Path(driver).name)}.idx"
    if final.is_file():
        return str(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-meteor-paraphrase-", dir=final.parent)
    os.close(fd)
    log.info("building METEOR's paraphrase index once for this HARNESS_HOME (about 6 s, 87 MB)")
    try:
        proc = subprocess.run(
            [java, "-Xmx2G", "-cp", os.pathsep.join([str(_package_dir("meteor") / "meteor-1.5.jar"), driver]),
             _DRIVER_CLASS, "index", str(table), tmp],
            capture_output=True, check=False,
        )
        if proc.returncode != 0:
            log.warning("could not index METEOR's paraphrase table (exit %d): METEOR loads the whole table. %s",
                        proc.returncode, proc.stderr.decode(errors="replace")[-300:].strip())
            return None
        os.replace(tmp, final)
    finally:
        for leftover in (tmp, tmp + ".entries"):
            if os.path.exists(leftover):
                os.unlink(leftover)
    return str(final)


# Up to this many segments per call the JVM uses only its quick compiler (see the module docstring):
# 10,000 IU-Xray segments score in 5.5 s instead of 8 s; at 40,000 the optimizing compiler is 1.3 s ahead.
C1_MAX_SEGMENTS = 20_000


class MeteorJVM:
    """One METEOR 1.5 process (``-l en -norm``, as pycocoevalcap) for one scoring call.

    Start it early (:meth:`start` returns at once) and call :meth:`score` when the tokens are ready. Use as
    a context manager so the process always ends. ``segments`` (the number of segments the call will score,
    when known) picks the JVM's compiler (:data:`C1_MAX_SEGMENTS`).
    """

    def __init__(self, threads: int | None = None, segments: int | None = None) -> None:
        self._proc: subprocess.Popen | None = None
        self._batched = False
        self.threads = meteor_threads() if threads is None else max(1, int(threads))
        self.segments = segments

    def command(self) -> list[str]:
        """The driver's command line, or pycocoevalcap's when the driver cannot be compiled."""
        java = java_path()
        args = ["-", "-", "-stdio", "-l", "en", "-norm"]
        driver = _driver_classpath(java, _package_dir("meteor") / "meteor-1.5.jar")
        if driver is None:
            return [java, "-jar", "-Xmx2G", "meteor-1.5.jar", *args]
        index = _paraphrase_index(java, driver)
        quick = index is not None and self.segments is not None and self.segments <= C1_MAX_SEGMENTS
        return [java, "-Xmx2G", *(["-XX:TieredStopAtLevel=1"] if quick else []),
                "-cp", os.pathsep.join(["meteor-1.5.jar", driver]), _DRIVER_CLASS, "score", str(self.threads),
                index or "-", *args]

    def start(self) -> MeteorJVM:
        cmd = self.command()
        self._batched = _DRIVER_CLASS in cmd  # the driver scores the SCORE lines it has when told FLUSH
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
        feeder = threading.Thread(target=self._feed, args=(unique + ["FLUSH\n"] if self._batched else unique, errors),
                                  daemon=True)
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

