"""Several runs at once, each in its own process, the machine's cores split between them.

Workers are spawned (not forked: TensorFlow's threads do not survive a fork), pull
runs from a queue and report back through another. Workers ignore SIGINT: on Ctrl-C
the parent sends each a SIGTERM, which (bnexp.stop) stops the run in hand after its
current step with status "interrupted", and the worker takes no further run.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
from pathlib import Path

from bnexp import stop
from bnexp.config import RunSpec


def threads_per_job(jobs: int) -> int:
    """TensorFlow intra- and inter-op threads for each of `jobs` processes."""
    return max(1, usable_cores() // jobs)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def run(specs: list[RunSpec], runs_dir: Path, jobs: int, reporter, source: str) -> list:
    """Run `specs` in `jobs` worker processes; one Outcome per spec, in order."""
    from bnexp.train import Outcome

    ctx = mp.get_context("spawn")
    tasks, events = ctx.Queue(), ctx.Queue()
    for index, spec in enumerate(specs):
        tasks.put((index, spec, runs_dir, source))
    n_workers = min(jobs, len(specs))
    workers = [
        ctx.Process(target=_worker, args=(tasks, events, threads_per_job(jobs)), daemon=True)
        for _ in range(n_workers)
    ]
    for worker in workers:
        tasks.put(None)
        worker.start()
    outcomes: dict[int, Outcome] = {}
    reporter.sweep_started(len(specs), n_workers)
    try:
        while len(outcomes) < len(specs):
            stop.check()
            try:
                kind, index, *rest = events.get(timeout=0.5)
            except queue.Empty:
                if not any(w.is_alive() for w in workers):
                    break  # a worker died hard; its runs are marked failed below
                reporter.sweep_tick()
                continue
            if kind == "started":
                reporter.sweep_run_started(Path(rest[0]))
            elif kind == "done":
                path, summary = Path(rest[0]), rest[1]
                outcomes[index] = Outcome(path, summary["status"])
                reporter.sweep_run_done(path, summary)
            else:  # "error": the worker could not even start the run
                outcomes[index] = Outcome(None, "failed")
                reporter.sweep_run_error(specs[index].label, rest[0])
    except KeyboardInterrupt:
        _stop(workers)
        raise
    finally:
        reporter.sweep_finished()
    for worker in workers:
        worker.join(timeout=30)
    return [outcomes.get(i, Outcome(None, "failed")) for i in range(len(specs))]


def _stop(workers) -> None:
    for worker in workers:
        if worker.is_alive():
            worker.terminate()  # SIGTERM: the worker records "interrupted" and exits
    for worker in workers:
        worker.join(timeout=60)


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


def _worker(tasks, events, threads: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it sends SIGTERM
    signal.signal(signal.SIGTERM, stop.request)
    from bnexp.tfquiet import import_tensorflow

    tf = import_tensorflow()
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    from bnexp import data, train

    cached_key, splits = None, None
    try:
        while not stop.requested() and (item := tasks.get()) is not None:
            index, spec, runs_dir, source = item
            try:
                key = spec.config.data.model_dump_json()
                if key != cached_key:  # sweeps usually share one dataset: load it once
                    cached_key, splits = key, data.load(spec.config.data, source)
                train.run_one(spec, splits, runs_dir, _Events(events, index))
            except KeyboardInterrupt:
                raise
            except BaseException as e:  # noqa: BLE001 - report, and take the next run
                events.put(("error", index, f"{type(e).__name__}: {e}"))
    except KeyboardInterrupt:
        return
