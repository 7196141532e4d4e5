"""The one worker task every backend runs: start a worker process, then train runs in it.

`start` prepares a fresh process (TensorFlow imported quietly, its threads, its logical
devices: before TensorFlow runs its first op); a `Worker` resumes or starts one run at
a time, keeping what the next run can take over. The local backend's Worker trains in
this process; pool and Ray workers call `start` once, then their Worker's `train` per
run.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from bnexp.config import RunSpec, config_hash
from bnexp.reporter import Reporter
from bnexp.runs import Outcome, claims
from bnexp.runs.plan import settle
from bnexp.runs.reader import read_record


def start(threads: int | None, cpu_devices: int) -> None:
    """Import TensorFlow quietly, give it `threads` intra- and inter-op threads (None:
    its own choice) and split the CPU into `cpu_devices` logical devices."""
    from bnexp.tfquiet import import_tensorflow

    tf = import_tensorflow()
    if threads:
        with contextlib.suppress(RuntimeError):  # only before TensorFlow's first op
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
    from bnexp.training import distribute

    distribute.prepare_devices(cpu_devices)


class Worker:
    """What one process keeps between the runs it trains: the last dataset loaded (a
    sweep usually shares one; one at a time, so memory stays flat) and the compiled
    steps of its last few models (bnexp/training/compiled.py). Each backend owns one
    per training process: the local backend, each pool worker, each Ray worker process."""

    def __init__(self, preloaded: dict | None = None):
        self.datasets = dict(preloaded or {})  # data config as JSON -> Splits
        self.steps = None  # a StepCache, made with the first run (it imports TensorFlow)

    def splits(self, spec: RunSpec):
        from bnexp import data

        key = spec.config.data.model_dump_json()
        if key not in self.datasets:
            self.datasets.clear()
            self.datasets[key] = data.load(spec.config.data, spec.source)
        return self.datasets[key]

    def train(self, spec: RunSpec, runs_dir: Path, reporter: Reporter,
              fresh: bool = False) -> Outcome:
        """Train `spec` under runs_dir: the plan decided again for this run under the runs
        folder's lock (bnexp.runs.plan.settle) and the run begun (its summary saying
        "running" here) before the lock is released, so no other process or thread
        starts it too; then trained. Finished, or running elsewhere: skipped and reported
        (an interrupted run another process is resuming reads "running"). fresh
        (--force): a new folder unless a live process trains it."""
        from bnexp.training import compiled, lifecycle

        if self.steps is None:
            self.steps = compiled.StepCache()
        splits, runs_dir = self.splits(spec), Path(runs_dir)
        with claims.runs_folder(runs_dir):
            decision = settle(runs_dir, config_hash(spec.config), fresh)
            if decision.action == "skip":
                reporter.run_skipped(decision.path, decision.status, spec.label)
                return Outcome(decision.path, decision.status, skipped=True)
            if decision.action == "start":
                begun = lifecycle.begin_new(spec, splits, runs_dir)
            else:
                try:
                    with claims.run_folder(decision.path):
                        if read_record(decision.path).status == "running":  # --resume's now
                            raise claims.Taken(decision.path)
                        begun = lifecycle.begin_resume(decision.path, splits)
                except claims.Taken:  # `train --resume` or `eval` has it: theirs
                    reporter.run_skipped(decision.path, "running", spec.label)
                    return Outcome(decision.path, "running", skipped=True)
        return lifecycle.train(begun, reporter, self.steps)
