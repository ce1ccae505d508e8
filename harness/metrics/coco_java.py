"""The two Java tools of pycocoevalcap, driven efficiently: the PTB tokenizer and METEOR 1.5.

Both use the jars shipped inside the ``pycocoevalcap`` package with exactly the command lines
pycocoevalcap uses, so the tokens and METEOR scores are the same; what differs is only how they are
driven. Predictions and references are tokenized in ONE tokenizer run, and METEOR runs in ONE JVM per
scoring call whose input is written by a feeder thread while the output is read, so the JVM never waits
on a Python round trip per sample (pycocoevalcap writes a line, flushes, and blocks on the answer).

METEOR aligns segments on several threads of that one JVM (``HARNESS_METEOR_THREADS``, default: the
CPUs this process may use). A small driver class (:data:`_DRIVER_SOURCE`, compiled once with ``javac``
into ``HARNESS_HOME/java/``, keyed by the source and the jar's content) speaks the jar's ``-stdio``
protocol: it builds the scorer from the same arguments with the jar's own ``Meteor.createPropertiesFromArgs``,
gives each thread a copy made by the jar's resource-sharing constructor ``MeteorScorer(MeteorScorer)`` (its
own stemmer and aligner, the read-only synonym and paraphrase tables shared) and prints the answers in
input order, so its output is byte-identical to ``-stdio``'s. Without ``javac``, or with one thread, the
jar's own ``-stdio`` main runs, as in pycocoevalcap.
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
_DRIVER_SOURCE = r"""import edu.cmu.meteor.scorer.MeteorConfiguration;
import edu.cmu.meteor.scorer.MeteorScorer;
import edu.cmu.meteor.scorer.MeteorStats;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Meteor's -stdio protocol (SCORE and EVAL lines) with SCORE lines aligned by several threads.
 * args: threads, then Meteor's own arguments. Each thread owns a copy of the scorer made with
 * Meteor's sharing constructor (own stemmer and aligner; shared read-only synonym and paraphrase
 * tables); answers are printed in input order, so the output equals Meteor's -stdio output.
 */
public final class HarnessMeteor {
    private static final Object END = new Object();

    public static void main(String[] args) throws Exception {
        int threads = Math.max(1, Integer.parseInt(args[0]));
        String[] meteorArgs = Arrays.copyOfRange(args, 1, args.length);
        MeteorScorer scorer = new MeteorScorer(new MeteorConfiguration(Meteor.createPropertiesFromArgs(meteorArgs, 2)));
        // One segment on this thread first: lazily loaded statics (the normalizer's tables) are set before any worker runs.
        scorer.getMeteorStats("warm up .", new ArrayList<>(Arrays.asList("warm up .")));
        ThreadLocal<MeteorScorer> local = ThreadLocal.withInitial(() -> new MeteorScorer(scorer));
        ExecutorService pool = Executors.newFixedThreadPool(threads, r -> {
            Thread t = new Thread(r);
            t.setDaemon(true);
            return t;
        });
        BlockingQueue<Object> pending = new ArrayBlockingQueue<>(4096);
        PrintStream out = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), false, "UTF-8");
        Thread writer = new Thread(() -> {
            try {
                while (true) {
                    Object item = pending.take();
                    if (item == END) break;
                    if (item instanceof String) {
                        eval(scorer, (String) item, out);
                    } else {
                        out.println(((MeteorStats) ((Future<?>) item).get()).toString());
                    }
                    if (pending.isEmpty()) out.flush();
                }
                out.flush();
            } catch (Exception e) {
                e.printStackTrace();
                System.exit(1);
            }
        });
        writer.start();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, "UTF-8"));
        String line;
        while ((line = in.readLine()) != null) {
            if (line.startsWith("SCORE") || line.startsWith("score")) {
                String[] parts = line.split("\\|\\|\\|");
                if (parts.length < 3) {
                    pending.put("ERROR Error: specify hypothesis and at least one reference");
                    continue;
                }
                ArrayList<String> refs = new ArrayList<>();
                for (int i = 1; i < parts.length - 1; i++) refs.add(parts[i].trim());
                String hyp = parts[parts.length - 1].trim();
                pending.put(pool.submit(() -> local.get().getMeteorStats(hyp, refs)));
            } else if (line.startsWith("EVAL") || line.startsWith("eval")) {
                pending.put(line);
            }
        }
        pending.put(END);
        writer.join();
        pool.shutdownNow();
    }

    private static void eval(MeteorScorer scorer, String line, PrintStream out) {
        if (line.startsWith("ERROR ")) {
            out.println(line.substring(6));
            return;
        }
        String[] parts = line.split("\\|\\|\\|");
        if (parts.length < 2) {
            out.println("Error: specify Meteor stats");
            return;
        }
        MeteorStats total = new MeteorStats();
        for (int i = 1; i < parts.length; i++) {
            MeteorStats stats = new MeteorStats(parts[i].trim());
            scorer.computeMetrics(stats);
            out.println(stats.score);
            total.addStats(stats);
        }
        scorer.computeMetrics(total);
        out.println(total.score);
    }
}
"""
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
    digest = hashlib.sha256(_DRIVER_SOURCE.encode())
    digest.update(" ".join(_JAVAC_FLAGS).encode())
    digest.update(jar.read_bytes())
    return digest.hexdigest()[:20]


def _driver_classpath(java: str, jar: Path) -> str | None:
    """The folder holding the compiled threaded driver, compiled on first use; None when it cannot be built."""
    from harness.core.paths import harness_home

    # absolute: the JVM runs in the jar's folder, so a relative HARNESS_HOME would miss the driver
    final = Path(os.path.abspath(harness_home() / "java" / f"meteor-threads-{_driver_key(jar)}"))
    if (final / f"{_DRIVER_CLASS}.class").is_file():
        return str(final)
    javac = _javac(java)
    if javac is None:
        log.info("javac not found: METEOR scores on one thread (the jar's own -stdio mode)")
        return None
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-meteor-threads-", dir=final.parent))
    try:
        (tmp / f"{_DRIVER_CLASS}.java").write_text(_DRIVER_SOURCE)
        proc = subprocess.run(
            [javac, *_JAVAC_FLAGS, "-cp", str(jar), "-d", str(tmp), str(tmp / f"{_DRIVER_CLASS}.java")],
            capture_output=True, check=False,
        )
        if proc.returncode != 0:
            log.warning("could not compile the threaded METEOR driver (javac exit %d): METEOR scores on one "
                        "thread. %s", proc.returncode, proc.stderr.decode(errors="replace")[-300:].strip())
            return None
        try:
            tmp.rename(final)  # atomic; another process may have won the race, its folder is the same
        except OSError:
            if not (final / f"{_DRIVER_CLASS}.class").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(final)


class MeteorJVM:
    """One METEOR 1.5 process (``-l en -norm``, as pycocoevalcap) for one scoring call.

    Start it early (:meth:`start` returns at once; loading the paraphrase table takes seconds) and call
    :meth:`score` when the tokens are ready. Use as a context manager so the process always ends.
    """

    def __init__(self, threads: int | None = None) -> None:
        self._proc: subprocess.Popen | None = None
        self.threads = meteor_threads() if threads is None else max(1, int(threads))

    def command(self) -> list[str]:
        """pycocoevalcap's command line, or the same arguments to the threaded driver."""
        java = java_path()
        args = ["-", "-", "-stdio", "-l", "en", "-norm"]
        driver = _driver_classpath(java, _package_dir("meteor") / "meteor-1.5.jar") if self.threads > 1 else None
        if driver is None:
            return [java, "-jar", "-Xmx2G", "meteor-1.5.jar", *args]
        return [java, "-Xmx2G", "-cp", os.pathsep.join(["meteor-1.5.jar", driver]), _DRIVER_CLASS,
                str(self.threads), *args]

    def start(self) -> MeteorJVM:
        cmd = self.command()
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

