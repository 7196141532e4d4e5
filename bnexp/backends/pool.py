"""Several runs at once, each in its own process, the machine's cores split between them.

Workers are spawned (not forked: TensorFlow's threads do not survive a fork), pull
tasks from a queue and report back through another. They start at once, so their
TensorFlow imports overlap the parent's checks. Workers ignore SIGINT: on Ctrl-C the
parent sends each a SIGTERM, which (bnexp.training.stop) ends the run in hand after its
current step with status "interrupted"; the worker then takes no further task. A
worker whose parent dies (SIGKILL) does the same by itself; a run whose worker dies
(SIGKILL, the OOM killer) is recorded "interrupted" by the parent, with the signal.
This module imports no TensorFlow; only the workers do.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import signal
import threading
import time
from pathlib import Path

from bnexp import runs
from bnexp.backends import Todo, worker
from bnexp.errors import BadInput
from bnexp.reporter import NullReporter, Reporter
from bnexp.runs import Outcome
from bnexp.training import stop

MAX_THREADS = 1024  # more threads than any machine's cores is a typo, not a setting


def threads_per_job(jobs: int) -> int:
    """TensorFlow intra- and inter-op threads for each of `jobs` processes: the cores split
    evenly (measured against oversubscribing: benchmarks/jobs.py --threads-per-job).
    $BNEXP_THREADS_PER_JOB overrides it: a whole number from 1 to MAX_THREADS, else
    BadInput (the environment is input too)."""
    text = os.environ.get("BNEXP_THREADS_PER_JOB", "").strip()
    if not text:
        return max(1, usable_cores() // jobs)
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_THREADS):
        raise BadInput(f"BNEXP_THREADS_PER_JOB={text!r}: expected a whole number of threads "
                       f"from 1 to {MAX_THREADS}")
    return int(text)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class PoolBackend:
    """`n` worker processes with `threads` TensorFlow threads each; close() always."""

    def __init__(self, n: int, threads: int, cpu_devices: int = 0):
        ctx = mp.get_context("spawn")
        self.tasks, self.events = ctx.Queue(), ctx.Queue()
        self.workers = [
            ctx.Process(target=_worker, args=(self.tasks, self.events, threads, cpu_devices),
                        daemon=True)
            for _ in range(n)
        ]
        for process in self.workers:
            process.start()

    def check_buildable(self, models) -> None:
        """BadInput if a model cannot be built; checked by a worker (this process has no TF).
        A worker that dies meanwhile is bad input too, the environment's: TensorFlow aborts
        its process on a flag it does not know in TF_XLA_FLAGS (waiting for the dead
        worker's answer hung for ever while the other worker idled)."""
        self.tasks.put(("check", models))
        try:
            event = self._next_event(tick=self._a_worker_died)
        except RuntimeError:  # every worker has died
            event = None
        if event is None:
            codes = ", ".join(sorted({str(w.exitcode) for w in self.workers
                                      if w.exitcode is not None}))
            raise BadInput(f"a worker process died (exit code {codes}) before any run "
                           "started; TensorFlow's own message, if it left one, is above "
                           "(an unknown flag in TF_XLA_FLAGS or XLA_FLAGS? too little memory?)")
        kind, _, error = event
        if kind == "checked" and error:
            raise BadInput(error)

    def _a_worker_died(self) -> bool:
        return any(process.exitcode is not None for process in self.workers)

    def run(self, todo: list[Todo], runs_dir: Path, reporter: Reporter) -> list[Outcome]:
        """One Outcome per item, in order; a run whose worker died is "failed" (its folder
        reads interrupted, so the same command again resumes it), and the others go on."""
        specs = [item.spec for item in todo]
        if not specs:
            return []
        for index, (spec, fresh) in enumerate(todo):
            self.tasks.put(("run", index, spec, runs_dir, fresh))
        outcomes: dict[int, Outcome] = {}
        in_hand: dict[int, int] = {}  # worker pid -> the index of the run it took
        paths: dict[int, Path] = {}

        def tick():
            reporter.sweep_tick()
            for process in self.workers:
                index = in_hand.pop(process.pid, None)
                if process.exitcode is not None and index is not None and index not in outcomes:
                    outcomes[index] = _died(process, paths.get(index), specs[index].label,
                                            reporter)
                elif index is not None:
                    in_hand[process.pid] = index
            return len(outcomes) == len(specs)  # the last one may have just been marked

        reporter.sweep_started(len(specs), len(self.workers))
        try:
            while len(outcomes) < len(specs):
                try:
                    event = self._next_event(tick=tick)
                except RuntimeError:
                    break  # every worker is gone; the rest are marked failed below
                if event is None:
                    continue  # tick() has just marked the last run
                kind, index, *rest = event
                if kind == "took":
                    in_hand[rest[0]] = index
                elif kind == "started":
                    paths[index] = Path(rest[0])
                    reporter.sweep_run_started(Path(rest[0]))
                elif kind == "note":
                    reporter.note(rest[0])
                elif kind == "skipped":  # claimed or finished by another process meanwhile
                    path = Path(rest[0]) if rest[0] else None
                    outcomes[index] = Outcome(path, rest[1], skipped=True)
                    reporter.run_skipped(path, rest[1], specs[index].label)
                elif kind == "done":
                    path, summary = Path(rest[0]), rest[1]
                    outcomes[index] = Outcome(path, summary["status"])
                    reporter.sweep_run_done(path, summary)
                elif kind == "error":  # the worker could not even start the run
                    outcomes[index] = Outcome(None, "failed")
                    reporter.sweep_run_error(specs[index].label, rest[0])
        finally:
            reporter.sweep_finished()
        return [outcomes.get(i, Outcome(paths.get(i), "failed")) for i in range(len(specs))]

    def _next_event(self, tick=None):
        """The next worker event; KeyboardInterrupt on a stop request; RuntimeError if all
        died; None when tick(), called while no event comes, returns true."""
        while True:
            stop.check()
            try:
                return self.events.get(timeout=0.5)
            except queue.Empty:
                if not any(w.is_alive() for w in self.workers):
                    raise RuntimeError("every worker process has exited") from None
                if tick and tick():
                    return None

    def close(self) -> None:
        """Stop the workers: those mid-run record "interrupted"; idle ones just exit."""
        for process in self.workers:
            if process.is_alive():
                process.terminate()  # SIGTERM -> stop request in the worker
            self.tasks.put(None)  # wakes a worker waiting for a task
        for process in self.workers:
            process.join(timeout=60)
            if process.is_alive():
                process.kill()


def _died(process, path: Path | None, label: str, reporter: Reporter) -> Outcome:
    """The Outcome of a run whose worker died under it (SIGKILL, the OOM killer): its
    folder, where it had one, records "interrupted" and how the worker died."""
    how = death(process.exitcode)
    if path is None:
        reporter.sweep_run_error(label, f"its worker process died ({how})")
        return Outcome(None, "failed")
    summary = runs.record_death(path, process.pid, f"its worker process died ({how})")
    reporter.sweep_run_done(path, summary)
    return Outcome(path, summary["status"])


def death(exitcode: int) -> str:
    """How a process ended, from its exit code: "killed by SIGKILL", "exit code 3"."""
    if exitcode < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-exitcode).name}"
        return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


class _Events(NullReporter):
    """A worker's reporter: a run's start, notes and end go to the parent; per-epoch and
    per-step progress stay in the worker."""

    def __init__(self, events, index: int):
        self.events, self.index = events, index

    def note(self, text: str) -> None:
        self.events.put(("note", self.index, text))

    def run_started(self, path, epochs):
        self.events.put(("started", self.index, str(path)))

    def run_skipped(self, path, status, label=""):
        self.events.put(("skipped", self.index, str(path) if path else None, status))

    def run_done(self, path, summary):
        self.events.put(("done", self.index, str(path), summary))


def _worker(tasks, events, threads: int, cpu_devices: int = 0) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it sends SIGTERM
    signal.signal(signal.SIGTERM, stop.request)
    _die_with_parent(events)
    worker.start(threads, cpu_devices)
    trainer = worker.Worker()
    while (task := _next_task(tasks)) is not None:
        if task[0] == "check":
            try:
                from bnexp.model.build import check_buildable

                check_buildable(task[1])
                events.put(("checked", -1, None))
            except BadInput as e:
                events.put(("checked", -1, str(e)))
            continue
        _, index, spec, runs_dir, fresh = task
        events.put(("took", index, os.getpid()))  # the parent's to know if this process dies
        try:
            trainer.train(spec, runs_dir, _Events(events, index), fresh)
        except KeyboardInterrupt:
            return  # the run has recorded "interrupted"
        except BaseException as e:  # noqa: BLE001 - report, and take the next run
            events.put(("error", index, f"{type(e).__name__}: {e}"))


def _next_task(tasks):
    """The next task, or None once the parent says so or a stop was requested (a
    SIGTERM, the parent's death). Waits a second at a time: a stop does not wake a
    worker blocked on the queue."""
    while not stop.requested():
        try:
            return tasks.get(timeout=1.0)
        except queue.Empty:
            continue
    return None


def _die_with_parent(events, every: float = 0.5) -> None:
    """Watch the parent: once it is gone (SIGKILL: it could not stop us), request a stop
    as its SIGTERM would have, so the run in hand records "interrupted" after its step
    and the worker exits. Without this, workers of a killed sweep trained on, then
    waited for tasks for ever."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(every)
        events.cancel_join_thread()  # nobody reads the events now: exit without flushing
        stop.request()

    threading.Thread(target=watch, name="bnexp-parent-watch", daemon=True).start()
