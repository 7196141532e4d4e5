"""The one worker task every backend runs: start a worker process, then train runs in it.

`start` prepares a fresh process (TensorFlow imported quietly, its threads, its logical
devices: before TensorFlow runs its first op); `train` resumes or starts one run,
loading its dataset only when it differs from the last one (a sweep usually shares
one). The local backend calls `train` in this process; pool and Ray workers call
`start` once, then `train` per run.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from bnexp.config import RunSpec
from bnexp.reporter import Reporter
from bnexp.runs import Outcome


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


class DatasetCache:
    """The last dataset loaded, by its data config: consecutive runs of a sweep share it."""

    def __init__(self, preloaded: dict | None = None):
        self.splits = dict(preloaded or {})

    def get(self, spec: RunSpec):
        from bnexp import data

        key = spec.config.data.model_dump_json()
        if key not in self.splits:
            self.splits.clear()  # one dataset at a time: memory stays flat over a sweep
            self.splits[key] = data.load(spec.config.data, spec.source)
        return self.splits[key]


def train(spec: RunSpec, resume_path: Path | None, runs_dir: Path, reporter: Reporter,
          cache: DatasetCache) -> Outcome:
    """Resume the run at resume_path, or start `spec` in a new folder under runs_dir."""
    from bnexp.training import lifecycle

    splits = cache.get(spec)
    if resume_path:
        return lifecycle.resume_run(Path(resume_path), splits, reporter)
    return lifecycle.run_one(spec, splits, Path(runs_dir), reporter)
