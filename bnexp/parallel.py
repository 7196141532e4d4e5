"""Several runs at once, each in its own process, the machine's cores split between them.

Workers are spawned (not forked: TensorFlow's threads do not survive a fork), pull
tasks from a queue and report back through another. They start at once, so their
TensorFlow imports overlap the parent's checks. Workers ignore SIGINT: on Ctrl-C the
parent sends each a SIGTERM, which (bnexp.stop) ends the run in hand after its
current step with status "interrupted"; the worker then takes no further task.
This module imports no TensorFlow; only the workers do.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
from pathlib import Path

from bnexp import stop
from bnexp.config import RunSpec
from bnexp.errors import BadInput
from bnexp.runs import Outcome


def threads_per_job(jobs: int) -> int:
    """TensorFlow intra- and inter-op threads for each of `jobs` processes: the cores split
    evenly (measured against oversubscribing: benchmarks/jobs.py --threads-per-job).
    $BNEXP_THREADS_PER_JOB overrides it."""
    if os.environ.get("BNEXP_THREADS_PER_JOB"):
        return max(1, int(os.environ["BNEXP_THREADS_PER_JOB"]))
    return max(1, usable_cores() // jobs)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Pool:
    """`n` worker processes with `threads` TensorFlow threads each; close() always."""

    def __init__(self, n: int, threads: int, cpu_devices: int = 0):
        ctx = mp.get_context("spawn")
        self.tasks, self.events = ctx.Queue(), ctx.Queue()
        self.workers = [
            ctx.Process(target=_worker, args=(self.tasks, self.events, threads, cpu_devices),
                        daemon=True)
            for _ in range(n)
        ]
        for worker in self.workers:
            worker.start()

    def check_buildable(self, models_and_shapes, source: str) -> None:
        """BadInput if a model cannot be built; checked by a worker (this process has no TF)."""
        self.tasks.put(("check", models_and_shapes, source))
        kind, _, error = self._next_event()
        if kind == "checked" and error:
            raise BadInput(error)

    def run(self, todo: list[tuple[RunSpec, Path | None]], runs_dir: Path, reporter,
            source: str) -> list[Outcome]:
        """todo: (spec, folder to resume or None). One Outcome each, in order; a run whose
        worker died is "failed"."""
        specs = [spec for spec, _ in todo]
        if not specs:
            return []
        for index, (spec, resume_path) in enumerate(todo):
            self.tasks.put(("run", index, spec, runs_dir, source, resume_path))
        outcomes: dict[int, Outcome] = {}
        reporter.sweep_started(len(specs), len(self.workers))
        try:
            while len(outcomes) < len(specs):
                try:
                    kind, index, *rest = self._next_event(tick=reporter.sweep_tick)
                except RuntimeError:
                    break  # every worker is gone; the rest are marked failed below
                if kind == "started":
                    reporter.sweep_run_started(Path(rest[0]))
                elif kind == "done":
                    path, summary = Path(rest[0]), rest[1]
                    outcomes[index] = Outcome(path, summary["status"])
                    reporter.sweep_run_done(path, summary)
                elif kind == "error":  # the worker could not even start the run
                    outcomes[index] = Outcome(None, "failed")
                    reporter.sweep_run_error(specs[index].label, rest[0])
        finally:
            reporter.sweep_finished()
        return [outcomes.get(i, Outcome(None, "failed")) for i in range(len(specs))]

    def _next_event(self, tick=None):
        """The next worker event; KeyboardInterrupt on a stop request; RuntimeError if all died."""
        while True:
            stop.check()
            try:
                return self.events.get(timeout=0.5)
            except queue.Empty:
                if not any(w.is_alive() for w in self.workers):
                    raise RuntimeError("every worker process has exited") from None
                if tick:
                    tick()

    def close(self) -> None:
        """Stop the workers: those mid-run record "interrupted"; idle ones just exit."""
        for worker in self.workers:
            if worker.is_alive():
                worker.terminate()  # SIGTERM -> stop request in the worker
            self.tasks.put(None)  # wakes a worker waiting for a task
        for worker in self.workers:
            worker.join(timeout=60)
            if worker.is_alive():
                worker.kill()


class _Events:
    """A reporter that forwards a run's start and end to the parent."""

    def __init__(self, events, index: int):
        self.events, self.index = events, index

    def run_started(self, path, epochs):
        self.events.put(("started", self.index, str(path)))

    def run_done(self, path, summary):
        self.events.put(("done", self.index, str(path), summary))

    def __getattr__(self, name):  # per-epoch and per-step progress stay in the worker
        return lambda *args, **kwargs: None


def _worker(tasks, events, threads: int, cpu_devices: int = 0) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it sends SIGTERM
    signal.signal(signal.SIGTERM, stop.request)
    from bnexp.tfquiet import import_tensorflow

    tf = import_tensorflow()
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    from bnexp import data, distribute, train

    distribute.prepare_devices(cpu_devices)  # before TensorFlow runs its first op

    cached_key, splits = None, None
    while True:
        task = tasks.get()
        if task is None or stop.requested():  # a stop may come while waiting for a task
            return
        if task[0] == "check":
            try:
                train.check_buildable(task[1], task[2])
                events.put(("checked", -1, None))
            except BadInput as e:
                events.put(("checked", -1, str(e)))
            continue
        _, index, spec, runs_dir, source, resume_path = task
        try:
            key = spec.config.data.model_dump_json()
            if key != cached_key:  # sweeps usually share one dataset: load it once
                cached_key, splits = key, data.load(spec.config.data, source)
            if resume_path:
                train.resume_run(resume_path, splits, _Events(events, index))
            else:
                train.run_one(spec, splits, runs_dir, _Events(events, index))
        except KeyboardInterrupt:
            return  # run_one has recorded "interrupted"
        except BaseException as e:  # noqa: BLE001 - report, and take the next run
            events.put(("error", index, f"{type(e).__name__}: {e}"))
