"""The local backend: the runs one after another in this process."""

from __future__ import annotations

from pathlib import Path

from bnexp.backends import Todo, worker
from bnexp.reporter import Reporter
from bnexp.runs import Outcome
from bnexp.training import stop


class LocalBackend:
    """Trains in this process, with the datasets the sweep's checks already loaded."""

    def __init__(self, datasets: dict | None = None):
        self.worker = worker.Worker(datasets)

    def run(self, todo: list[Todo], runs_dir: Path, reporter: Reporter) -> list[Outcome]:
        outcomes = []
        for spec, fresh in todo:
            stop.check()
            outcomes.append(self.worker.train(spec, runs_dir, reporter, fresh))
        return outcomes
