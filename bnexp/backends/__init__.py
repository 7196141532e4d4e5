"""Where a sweep's runs train: here (local), in worker processes (pool), or on Ray.

Every backend takes the same list of Todo items and returns one Outcome per item,
in order, and every one trains a run through the same worker task (backends.worker).
This package's __init__ imports neither TensorFlow nor Ray.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple, Protocol

from bnexp.config import RunSpec
from bnexp.reporter import Reporter
from bnexp.runs import Outcome


class Todo(NamedTuple):
    """A run to train: its spec, and whether it starts afresh whatever is there (--force).
    Whether it resumes an interrupted attempt is decided by the worker that trains it,
    under the runs folder's lock (backends.worker.Worker.train)."""

    spec: RunSpec
    fresh: bool = False


class Backend(Protocol):
    def run(self, todo: list[Todo], runs_dir: Path, reporter: Reporter) -> list[Outcome]:
        """Train every item; one Outcome each, in order. A failing run is an outcome,
        not an exception; Ctrl-C (KeyboardInterrupt) stops the backend's runs."""
        ...
